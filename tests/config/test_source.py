"""Reading a scenario file: every way the bytes can be wrong is one line naming the file, fast,
and the loader's limits (size, depth, nodes with aliases expanded) hold."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from extractbench.config.scenario import ScenarioError, load_scenario
from extractbench.config.source import MAX_BYTES, MAX_DEPTH, MAX_NODES, SourceError, read_yaml

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
version: 1
name: t
endpoints:
  ref: {kind: reference, model: arith-ref}
tasks:
  arith: {family: arithmetic, params: {digits: 2, ops: ["+"]}, attack_pool: 100, heldout: 20}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 10}]
students:
  s: {name: tinylm}
"""

# "billion laughs": 9 levels of 9 aliases each, 10^9 strings once expanded, in under 1 KB
BOMB = 'lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9))


def lines_of(tmp_path: Path, data: bytes | str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    return err.value.lines


def one_line(tmp_path: Path, data: bytes | str) -> str:
    lines = lines_of(tmp_path, data)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{tmp_path / 's.yaml'}: ")
    return lines[0].removeprefix(f"{tmp_path / 's.yaml'}: ")


# -- duplicate keys --------------------------------------------------------------------------


def test_a_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    text = GOOD.replace("  s: {name: tinylm}\n", "  s: {name: tinylm}\n  s: {name: lookup}\n")
    assert one_line(tmp_path, text) == (
        "students.s: duplicate key 's' at lines 11 and 12 (remove one; YAML would silently "
        "keep the last)")


def test_every_duplicate_is_reported_at_any_depth(tmp_path: Path) -> None:
    text = GOOD + "budgets: [{queries: 5, queries: 6}]\n"
    lines = lines_of(tmp_path, text)
    assert [line.split(": ", 1)[1] for line in lines] == [
        "budgets.0.queries: duplicate key 'queries' twice on line 12 (remove one; YAML would "
        "silently keep the last)",
        "budgets: duplicate key 'budgets' at lines 9 and 12 (remove one; YAML would silently "
        "keep the last)",
    ]


def test_keys_that_yaml_reads_as_the_same_value_are_duplicates(tmp_path: Path) -> None:
    data = read_yaml_text(tmp_path, "a: {1: x, 2: y}\n")
    assert data == {"a": {1: "x", 2: "y"}}
    with pytest.raises(SourceError, match=r"a\.1: duplicate key 1 at lines 1 and 2"):
        read_yaml_text(tmp_path, "a: {1: x,\n  0x1: y}\n")


def test_a_merge_key_may_override_what_it_merges(tmp_path: Path) -> None:
    data = read_yaml_text(tmp_path, "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n")
    assert data == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}}


def read_yaml_text(tmp_path: Path, text: str) -> object:
    path = tmp_path / "y.yaml"
    path.write_text(text)
    return read_yaml(path)


# -- bytes, size, file -----------------------------------------------------------------------


def test_bytes_that_are_not_utf8_give_the_offset(tmp_path: Path) -> None:
    data = GOOD.encode().replace(b"name: t", b"name: t\xe9")
    assert one_line(tmp_path, data) == "not UTF-8 at byte 18 (save it as UTF-8)"


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_scenario(path).name == "t"


def test_a_control_character_is_one_line_with_its_place(tmp_path: Path) -> None:
    line = one_line(tmp_path, GOOD.replace("name: t", "name: t\x07"))
    assert line.startswith("line 2, column 8: malformed YAML: unacceptable character #x0007")


def test_a_directory_and_a_missing_file_are_one_line(tmp_path: Path) -> None:
    for path, reason in ((tmp_path, "it is a directory"),
                         (tmp_path / "absent.yaml", "No such file or directory")):
        with pytest.raises(ScenarioError) as err:
            load_scenario(path)
        assert err.value.lines == [f"{path}: cannot read file: {reason} "
                                   + ("(give a scenario YAML file)" if path == tmp_path
                                      else "(check the path)")]


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    line = one_line(tmp_path, GOOD + "#" * MAX_BYTES)
    assert line.startswith(f"file is larger than {MAX_BYTES:,} bytes")


# -- depth and nodes -------------------------------------------------------------------------


@pytest.mark.parametrize("nested", ["[" * 1000 + "]" * 1000,
                                    "{a: " * 1000 + "1" + "}" * 1000,
                                    "\n" + "".join(" " * i + "a:\n" for i in range(1, 1000))
                                    + " " * 1000 + "1\n"],
                         ids=["lists", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path: Path, nested: str) -> None:
    line = one_line(tmp_path, "version: 1\nname: t\ndescription: " + nested)
    assert f"nested deeper than {MAX_DEPTH} levels" in line


def test_nesting_at_the_limit_is_read(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 1  # below the top-level mapping
    assert read_yaml_text(tmp_path, "a: " + "[" * depth + "]" * depth) is not None
    with pytest.raises(SourceError, match="nested deeper"):
        read_yaml_text(tmp_path, "a: " + "[" * (depth + 1) + "]" * (depth + 1))


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    start = time.perf_counter()
    line = one_line(tmp_path, GOOD.replace("params: {digits: 2", "params: {digits: *l8")
                    .replace("version: 1\n", "version: 1\n" + BOMB))
    assert time.perf_counter() - start < 1.0
    assert line.startswith("line 6, column ")  # where the count passes the limit
    assert f"more than {MAX_NODES} YAML nodes, counting each use of an alias" in line


def test_aliases_of_a_scalar_count_too(tmp_path: Path) -> None:
    wide = ", ".join(["*a"] * 2000)
    fans = ", ".join(["*b"] * 6)
    with pytest.raises(SourceError, match="counting each use of an alias"):
        read_yaml_text(tmp_path, f"a: &a x\nb: &b [{wide}]\nc: [{fans}]\n")
    assert read_yaml_text(tmp_path, f"a: &a x\nb: &b [{wide}]\nc: [*b, *b, *b]\n") is not None


def test_an_alias_deepens_where_it_is_used(tmp_path: Path) -> None:
    inner = "[" * 15 + "]" * 15
    assert read_yaml_text(tmp_path, f"a: &a {inner}\nb: *a\n") is not None
    with pytest.raises(SourceError, match="nested deeper"):
        read_yaml_text(tmp_path, f"a: &a {inner}\nb: [[[[[[*a]]]]]]\n")


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"alias \*a is used inside the node it names"):
        read_yaml_text(tmp_path, "a: &a [1, *a]\n")


def test_small_aliases_are_fine(tmp_path: Path) -> None:
    assert read_yaml_text(tmp_path, "a: &a [1, 2]\nb: *a\nc: *a\n") == {
        "a": [1, 2], "b": [1, 2], "c": [1, 2]}


def test_many_plain_nodes_are_refused_too(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"more than 10000 YAML nodes \(a scenario has"):
        read_yaml_text(tmp_path, "a: [" + "1, " * MAX_NODES + "]\n")


# -- values YAML cannot construct ------------------------------------------------------------


@pytest.mark.parametrize(("value", "problem"), [
    ("9" * 5000, "cannot read this value: Exceeds the limit (4300 digits)"),
    ("2021-02-30", "cannot read this value: day is out of range for month"),
    ("!!python/object:os.system x", "could not determine a constructor for the tag"),
])
def test_a_value_yaml_cannot_build_is_one_line(tmp_path: Path, value: str, problem: str) -> None:
    line = one_line(tmp_path, GOOD.replace("name: t", f"name: {value}"))
    assert line.startswith("line 2, column 7: ") and problem in line, line


def test_the_shipped_scenarios_are_within_the_limits() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert isinstance(read_yaml(path), dict)
        assert path.stat().st_size < MAX_BYTES // 50


def test_validate_refuses_a_bomb_quickly_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(GOOD.replace("params: {digits: 2", "params: {digits: *l8")
                    .replace("version: 1\n", "version: 1\n" + BOMB))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "extractbench", "validate", str(path)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert time.perf_counter() - start < 30  # the interpreter's start-up, not the file
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and "YAML nodes" in out.stderr
