"""Reading the YAML files of the library (journeys, plans): every problem with its file, line and
entry; hostile files (aliases, deep nesting, bytes that are not UTF-8, keys given twice) refused
with a clear problem before anything expands."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    # The entry of the file's list the problem is in (a journey's step, a plan's task), if any.
    step: str | None = None
    line: int | None = None
    # What such an entry is called.
    item: str = "step"

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {f'{self.item} {self.step!r}: ' if self.step else ''}{self.message}"


class SpecError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


_BOOL = "tag:yaml.org,2002:bool"


class _Loader(yaml.CSafeLoader):
    """libyaml's safe loader with YAML 1.2's booleans: only true and false. YAML 1.1 also reads
    on, off, yes, no, y and n as booleans, so a task step's `on:` would be the key True."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


# Deeper than any journey or plan needs; deep enough nesting would overflow Python's stack.
MAX_NESTING = 64


def parse(file: str, text: str) -> tuple[yaml.Node | None, Any]:
    """The file's node tree (for lines) and its data, with libyaml. Refused first, from the event
    stream: aliases (`*name`), whose copies of copies can expand a small file into millions of
    values, and nesting deeper than MAX_NESTING."""

    def refuse(message: str, mark: Any) -> SpecError:
        return SpecError([Problem(file, f"not valid YAML: {message}", None, mark.line + 1)])

    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise refuse("aliases (*name) are not allowed in this file", event.start_mark)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    raise refuse(f"nested deeper than {MAX_NESTING} levels", event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            return root, None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise SpecError(
            [Problem(file, f"not valid YAML: {getattr(e, 'problem', e)}", None, line)]
        ) from None


def _items_node(root: yaml.Node | None, items: str) -> yaml.SequenceNode | None:
    """The list under `items` of a composed file (the last, as the loaded data keeps it)."""
    found = None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == items and isinstance(value, yaml.SequenceNode):
                found = value
    return found


def item_lines(root: yaml.Node | None, items: str) -> list[int]:
    """The line where each entry of the list under `items` starts, to point authors at it."""
    found = _items_node(root, items)
    return [item.start_mark.line + 1 for item in found.value] if found else []


def mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node under `key` of a mapping node (the last, as the loaded data keeps it)."""
    found = None
    if isinstance(node, yaml.MappingNode):
        for k, value in node.value:
            if k.value == key:
                found = value
    return found


def item_values(root: yaml.Node | None, items: str, key: str) -> list[yaml.Node | None]:
    """The value node under `key` of each entry of the list under `items` (None where an entry
    has none), to change a file where those values are written."""
    found = _items_node(root, items)
    return [mapping_value(item, key) for item in found.value] if found else []


def replace_scalars(text: str, replacements: list[tuple[yaml.Node, str]]) -> str:
    """`text` with each one-line scalar node's text replaced where it is written, so that the rest
    of the file (comments, blank lines, how other values are written) stays as its author wrote
    it, as a dump of the parsed data would not."""
    lines = text.splitlines(keepends=True)
    for node, new in replacements:
        start, end = node.start_mark, node.end_mark
        if start.line != end.line:
            raise ValueError(f"line {start.line + 1}: only a value on one line can be replaced")
        line = lines[start.line]
        lines[start.line] = line[: start.column] + new + line[end.column :]
    return "".join(lines)


def item_name(entry: Any, index: int) -> str:
    """How problems name an entry of the list: its id as written, else its place in the list."""
    item_id = entry.get("id") if isinstance(entry, dict) else None
    return str(item_id) if item_id else f"#{index + 1}"


def _repeated_keys(file: str, root: yaml.Node | None, raw: Any, items: str) -> list[Problem]:
    """Every key a mapping gives twice, with its line and entry. YAML forbids them, yet PyYAML
    silently keeps the last value, so the author could not tell which one counts."""
    problems: list[Problem] = []
    walked: set[int] = set()

    def walk(node: yaml.Node, step: str | None) -> None:
        # An alias repeats a node, even inside itself: each node is walked once.
        if id(node) in walked:
            return
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in first_line:
                        message = (
                            f"{key.value!r} is given twice (first on line {first_line[key.value]})"
                        )
                        problems.append(Problem(file, message, step, line, kind))
                    first_line.setdefault(key.value, line)
                walk(value, step)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, step)

    # Entries first, to name the one a repeated key is in; the walk of the rest passes them by.
    kind = items.removesuffix("s")
    found = _items_node(root, items)
    entries = raw.get(items) if isinstance(raw, dict) else None
    for index, item in enumerate(found.value if found else []):
        entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
        walk(item, item_name(entry, index))
    if root is not None:
        walk(root, None)
    return sorted(problems, key=lambda p: p.line or 0)


def read_yaml(path: Path, items: str) -> tuple[str, yaml.Node | None, Any]:
    """(file name, node tree, data) of a YAML file whose entries under `items` problems name;
    SpecError when it cannot be read, is not UTF-8 or valid YAML, or gives a key twice (which of
    two values counts is anybody's guess: nothing else is checked until it is fixed)."""
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SpecError([Problem(file, f"cannot read: {e.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SpecError(
            [Problem(file, f"not UTF-8 text (byte 0x{data[e.start]:02x})", None, line)]
        ) from None
    root, raw = parse(file, text)
    if problems := _repeated_keys(file, root, raw, items):
        raise SpecError(problems)
    return file, root, raw


def schema_problems(
    file: str,
    raw: Any,
    err: ValidationError,
    lines: list[int],
    items: str,
    skip: Collection[str] = (),
) -> list[Problem]:
    """pydantic's errors as problems, each at the line of the entry under `items` it is in.
    `skip`: parts of an error's location that are noise to the author (a step's kind)."""
    problems = []
    kind = items.removesuffix("s")
    entries = raw.get(items) if isinstance(raw, dict) else None
    for e in err.errors():
        loc = list(e["loc"])
        name, line = None, None
        if len(loc) >= 2 and loc[0] == items and isinstance(loc[1], int):
            index = loc[1]
            entry = entries[index] if isinstance(entries, list) else None
            name = item_name(entry, index)
            line = lines[index] if index < len(lines) else None
            # "steps.3.send.next" reads as "next" inside the step
            loc = [p for p in loc[2:] if p not in skip]
        field = ".".join(str(p) for p in loc)
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "union_tag_invalid":
            message = (
                f"unknown kind {e['input'].get('kind')!r}; use one of: {e['ctx']['expected_tags']}"
            )
        text = f"{field}: {message}" if field else message
        problems.append(Problem(file, text, name, line, kind))
    return problems


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """The known name closest to a misspelt one, as " (did you mean 'x'?)", if any is close."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Loaded = TypeVar("Loaded", bound=_Identified)


def load_each(
    paths: Iterable[Path], load: Callable[[Path], Loaded], what: str
) -> dict[str, Loaded]:
    """Every file of a library folder loaded, by id; SpecError with the problems of every file
    (and ids used twice) when any is broken: a broken library fails loudly, whole."""
    loaded: dict[str, Loaded] = {}
    problems: list[Problem] = []
    for path in paths:
        try:
            item = load(path)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        if item.id in loaded:
            problems.append(Problem(str(path), f"{what} id {item.id!r} is used by another file"))
        loaded[item.id] = item
    if problems:
        raise SpecError(problems)
    return loaded
