from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractbench.tasks import SPLITS, TASKS
from extractbench.tasks.jsonl import JsonlTask

SIZES = {"attack_pool": 1000, "heldout": 10, "benign": 5}


def _write(tmp_path: Path, rows: list[object], name: str = "t.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return p


def _qa(n: int) -> list[object]:
    return [{"prompt": f"What is {i} squared?", "answer": str(i * i)} for i in range(n)]


def test_splits_disjoint_reproducible_and_pool_takes_the_rest(tmp_path: Path) -> None:
    path = _write(tmp_path, _qa(40))
    task = TASKS.get("jsonl")(0, SIZES, path=str(path), scorer="numeric")
    keys = {s: {i.key for i in task.split(s)} for s in SPLITS}
    assert [len(keys[s]) for s in ("heldout", "benign", "attack_pool")] == [10, 5, 25]
    assert not keys["heldout"] & keys["attack_pool"] and not keys["benign"] & keys["heldout"]
    again = JsonlTask(0, SIZES, path=str(path), scorer="numeric")
    assert again.split("heldout") == task.split("heldout")
    assert JsonlTask(1, SIZES, path=str(path)).split("heldout") != task.split("heldout")
    assert task.reference_model == "" and task.reasoning_suffix is None


def test_scorers(tmp_path: Path) -> None:
    rows: list[object] = [
        {"prompt": "Capital of France?", "answer": "Paris"},
        {"prompt": "2+2?", "answer": 4},
        {"prompt": "Sentiment: great film", "answer": "positive",
         "choices": ["positive", "negative"]},
    ]
    path = _write(tmp_path, rows)
    sizes = {"heldout": 2, "benign": 1}

    def items(scorer: str) -> tuple[JsonlTask, dict[str, object]]:
        t = JsonlTask(0, sizes, path=str(path), scorer=scorer)
        return t, {i.prompt: i for s in SPLITS for i in t.split(s)}

    exact, by = items("exact")
    paris = by["Capital of France?"]
    assert exact.score(exact.extract("**Paris.**"), paris) == 1.0  # type: ignore[arg-type]
    assert exact.score(exact.extract("Answer: paris"), paris) == 1.0  # type: ignore[arg-type]
    assert exact.score(exact.extract("Lyon"), paris) == 0.0  # type: ignore[arg-type]
    numeric, by = items("numeric")
    four = by["2+2?"]
    assert numeric.score(numeric.extract("It is 4.0"), four) == 1.0  # type: ignore[arg-type]
    assert numeric.score(numeric.extract("5"), four) == 0.0  # type: ignore[arg-type]
    assert numeric.score(numeric.extract("none"), four) == 0.0  # type: ignore[arg-type]
    label, by = items("label")
    pos = by["Sentiment: great film"]
    assert label.extract("I'd say **Positive**.") == "positive"
    assert label.score(label.extract("The sentiment is positive"), pos) == 1.0  # type: ignore[arg-type]
    assert label.score(label.extract("negative"), pos) == 0.0  # type: ignore[arg-type]
    assert pos.choices == ("positive", "negative")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("rows", "match"), [
    ([], r"t.jsonl: empty task file"),
    (["", "  "], r"t.jsonl: empty task file"),
    ([{"prompt": "a", "answer": "b"}, "{not json"], r"t.jsonl:2: malformed JSON"),
    ([{"prompt": "a"}], r"t.jsonl:1: missing field 'answer'"),
    ([{"prompt": "a", "answer": "b"}, "", {"answer": "c"}], r"t.jsonl:3: missing field 'prompt'"),
    (["[1, 2]"], r"t.jsonl:1: expected a JSON object"),
    ([{"prompt": "", "answer": "b"}], r"t.jsonl:1: field 'prompt' must be a non-empty string"),
    ([{"prompt": "a", "answer": None}], r"t.jsonl:1: field 'answer' must be a string"),
    ([{"prompt": "a", "answer": "b", "choices": "b"}], r"t.jsonl:1: field 'choices' must be"),
    ([{"prompt": "a", "answer": "b", "choices": ["c"]}], r"t.jsonl:1: answer 'b' is not one"),
    ([{"prompt": "a", "answer": "b", "label": "x"}], r"t.jsonl:1: unknown field 'label'"),
    ([{"prompt": "a", "answer": "b"}, {"prompt": "a", "answer": "c"}],
     r"t.jsonl:2: duplicate prompt \(same as line 1\)"),
])
def test_bad_files_name_file_and_line(tmp_path: Path, rows: list[object], match: str) -> None:
    path = _write(tmp_path, rows)
    with pytest.raises(ValueError, match=match):
        TASKS.get("jsonl")(0, {"heldout": 1}, path=str(path))


def test_bad_params_are_clear_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, _qa(5))
    with pytest.raises(ValueError, match="no such task file"):
        TASKS.get("jsonl")(0, SIZES, path=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="scorer must be one of exact, numeric, label"):
        TASKS.get("jsonl")(0, {"heldout": 1}, path=str(path), scorer="fuzzy")
    with pytest.raises(ValueError, match=r"need params\.path"):
        TASKS.get("jsonl")(0, SIZES)
    with pytest.raises(ValueError, match="unknown jsonl parameter 'file'"):
        TASKS.get("jsonl")(0, SIZES, file=str(path))
    with pytest.raises(ValueError, match="heldout \\+ benign ask for 15 items but the file has "
                                         "only 5"):
        TASKS.get("jsonl")(0, SIZES, path=str(path))
