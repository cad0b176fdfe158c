"""Reading a scenario file: bytes, then UTF-8 text, then YAML, each step bounded.

A scenario is a few kilobytes of YAML, so anything far outside that shape is refused before it
can cost time or memory: files over :data:`MAX_BYTES`, nesting deeper than :data:`MAX_DEPTH`,
and more than :data:`MAX_NODES` YAML nodes, counting every use of an alias as a copy of what it
names (a "billion laughs" file of a kilobyte expands to 10^9 nodes when it is walked). A key
that appears twice in one mapping is an error, not "the last one wins". Every problem is a
:class:`SourceError` with one line per problem, ``FILE: where: problem (hint)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from extractbench.errors import ExtractbenchError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "SourceError", "read_yaml"]

MAX_BYTES = 1_000_000
"""Largest scenario file read (the shipped ones are 3-9 KB)."""
MAX_DEPTH = 20
"""Deepest nesting of mappings and lists (the shipped scenarios reach 10)."""
MAX_NODES = 10_000
"""Most YAML nodes in a file, each alias counted as a copy of its anchor's nodes (the shipped
scenarios have 300-600)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class SourceError(ExtractbenchError):
    """A file that cannot be read as bounded YAML; ``lines`` are one-line problems."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class _Refused(yaml.MarkedYAMLError, ExtractbenchError):
    """A limit of the loader was passed, or a value cannot be read (reported at its node;
    never leaves :func:`read_yaml`)."""


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that bounds depth and node count (aliases included), refuses
    recursive aliases, and records duplicate mapping keys in :attr:`duplicates`."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []
        """``field.path: duplicate key ...`` lines, in file order."""
        self._depth = 0  # of the node being composed (the document's root is 1)
        self._reach = 0  # deepest level reached so far, aliases expanded
        self._nodes = 0  # nodes composed so far, aliases expanded
        self._anchored: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height)
        self._open: set[str] = set()  # anchors of collections still being composed
        self._path: list[str] = []
        self._aliased = False  # whether an alias was used (for the message)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()
        if isinstance(event, AliasEvent):
            name: str = event.anchor or ""
            mark: Any = event.start_mark  # the stubs type it as one of two Mark classes
            if name in self._open:
                raise _Refused(None, None, f"alias *{name} is used inside the node it names "
                               "(recursive structures are not allowed)", mark)
            nodes, height = self._anchored.get(name, (1, 1))
            self._aliased = True
            self._charge(nodes, self._depth + height, event)
            return super().compose_node(parent, index)
        before, reach = self._nodes, self._reach
        self._depth += 1
        self._charge(1, self._depth, event)
        segment = (index.value if isinstance(index, ScalarNode)
                   else str(index) if isinstance(index, int) else None)
        if segment is not None:
            self._path.append(segment)
        anchor = event.anchor
        if anchor is not None and isinstance(event, CollectionStartEvent):
            self._open.add(anchor)
        self._reach = self._depth
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
            self._anchored[anchor] = (self._nodes - before, self._reach - self._depth + 1)
        self._reach = max(reach, self._reach)
        if segment is not None:
            self._path.pop()
        self._depth -= 1
        return node

    def _charge(self, nodes: int, depth: int, event: Any) -> None:
        self._nodes += nodes
        self._reach = max(self._reach, depth)
        if depth > MAX_DEPTH:
            raise _Refused(None, None, f"nested deeper than {MAX_DEPTH} levels (a scenario "
                           "needs about 10; flatten it)", event.start_mark)
        if self._nodes > MAX_NODES:
            why = (", counting each use of an alias as a copy of what it names (is an alias "
                   "repeated many times?)" if self._aliased else " (a scenario has a few hundred)")
            raise _Refused(None, None, f"more than {MAX_NODES} YAML nodes{why}",
                           event.start_mark)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            line = key_node.start_mark.line + 1
            try:
                key = self.construct_object(key_node)
                first = seen.get(key)
            except (yaml.YAMLError, ValueError, TypeError):
                continue  # not a usable key: construction reports it
            if first is None:
                seen[key] = line
                continue
            where = ".".join([*self._path, str(key)])
            lines = f"twice on line {line}" if first == line else f"at lines {first} and {line}"
            self.duplicates.append(f"{where}: duplicate key {key!r} {lines} (remove one; YAML "
                                   "would silently keep the last)")
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. a 5,000-digit int, 2021-02-30
            raise _Refused(None, None, f"cannot read this value: {exc} (quote it to make it a "
                           "string)", node.start_mark) from None


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError([f"{name}: not UTF-8 at byte {exc.start} (save it as UTF-8)"]) from None


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, at most :data:`MAX_BYTES`; :class:`SourceError` otherwise."""
    name = str(path)
    p = Path(path)
    try:
        if p.is_dir():
            raise SourceError([f"{name}: cannot read file: it is a directory "
                               "(give a scenario YAML file)"])
        with p.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SourceError([f"{name}: cannot read file: {reason} (check the path)"]) from None
    if len(data) > MAX_BYTES:
        raise SourceError([f"{name}: file is larger than {MAX_BYTES:,} bytes (a scenario is a "
                           "few KB; is this the right file?)"])
    return data


def _yaml_line(exc: yaml.YAMLError, text: str, name: str) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else 0
        return (f"{name}: line {line}, column {col}: malformed YAML: unacceptable character "
                f"#x{char:04x} (remove it, or write it as an escape in a double-quoted string)")
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(top level)"
    problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
    if isinstance(exc, _Refused):
        return f"{name}: {where}: {problem}"
    if isinstance(exc, yaml.constructor.ConstructorError):
        return (f"{name}: {where}: {problem} (write plain YAML: mappings, lists, strings, "
                "numbers, true/false)")
    return f"{name}: {where}: malformed YAML: {problem} (fix the syntax)"


def read_yaml(path: str | Path) -> Any:
    """The one YAML document in ``path``, bounded as the module docstring says; raises
    :class:`SourceError` with one line per problem."""
    name = str(path)
    text = _decode(read_bytes(path), name)
    try:
        loader = BoundedLoader(text)  # checks every character is allowed in YAML
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise SourceError([_yaml_line(exc, text, name)]) from None
    if loader.duplicates:
        raise SourceError([f"{name}: {line}" for line in loader.duplicates])
    return data
