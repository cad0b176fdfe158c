from __future__ import annotations

import pytest

from extractbench.students import STUDENTS, TrainPair
from extractbench.students.lookup import LookupStudent

PAIRS = [
    TrainPair("Where does Rasses Neith live? Answer with the town only.", "Caskwell"),
    TrainPair("Where does Boulru Pel live? Answer with the town only.", "Lowenby"),
    TrainPair("What is Boulru Pel's job? Answer with the job title only.", "potter"),
]


def test_returns_the_response_of_the_most_similar_prompt() -> None:
    student = STUDENTS.get("lookup")()
    report = student.fit(PAIRS, seed=0)
    assert report.examples == 3 and report.steps == 0
    got = student.predict([
        "Where does Rasses Neith live? Answer with the town only.",  # seen verbatim
        "In which town does Boulru Pel live? Reply with the town name only.",
        "What does Boulru Pel do for a living? Answer with the job title only.",
    ], max_tokens=16)
    assert got == ["Caskwell", "Lowenby", "potter"]


def test_no_data_answers_nothing_and_refit_forgets() -> None:
    student = LookupStudent()
    student.fit([], seed=0)
    assert student.predict(["anything"], 8) == [""]
    student.fit(PAIRS, seed=0)
    student.fit(PAIRS[1:2], seed=0)
    assert student.predict(["Where does Rasses Neith live?"], 8) == ["Lowenby"]


def test_word_analyzer_and_bad_params() -> None:
    student = LookupStudent(analyzer="word", ngram_min=1, ngram_max=2)
    student.fit(PAIRS, seed=0)
    assert student.predict(["Boulru Pel job?"], 8) == ["potter"]
    with pytest.raises(ValueError, match="analyzer must be"):
        LookupStudent(analyzer="bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ngram_min <= ngram_max"):
        LookupStudent(ngram_min=4, ngram_max=2)


def test_word_ngrams_longer_than_every_prompt_answer_the_first_response() -> None:
    """``validate`` accepts word 10-grams; prompts of fewer words have none, which sklearn
    refuses ("empty vocabulary"). The student still trains: every harvested prompt is then as
    near as any other, so it answers as for a prompt sharing no n-gram (the first one)."""
    student = LookupStudent(analyzer="word", ngram_min=10, ngram_max=10)
    report = student.fit(PAIRS, seed=0)
    assert report.examples == 3
    assert student.predict(["Boulru Pel job?", "anything"], 8) == ["Caskwell", "Caskwell"]
