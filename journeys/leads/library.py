"""Loading the library's grading file (`<library>/grading.yaml`): every problem with the file and
the line it is on (`file:line: what is wrong`), as journeys and plans are checked."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from journeys.leads.grading import GradingSpec
from journeys.yamlfile import Problem, SpecError, read_yaml

GRADING_FILE = "grading.yaml"
# A key only a grading file has at its top level.
_GRADING_KEY = "half_life_days:"


def _node_at(root: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """The deepest node of the file along a pydantic error's location (a key, an index)."""
    node, found = root, root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            node = None
        if node is None:
            break
        found = node
    return found


def _problems(file: str, root: yaml.Node | None, err: ValidationError) -> list[Problem]:
    problems = []
    for e in err.errors():
        node = _node_at(root, e["loc"])
        line = node.start_mark.line + 1 if node is not None else None
        # fit.1.when.0 -> fit[2].when[1]: counted as an author counts entries.
        field = "".join(
            f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in e["loc"]
        ).removeprefix(".")
        message = e["msg"].removeprefix("Value error, ")
        problems.append(Problem(file, f"{field}: {message}" if field else message, None, line))
    return problems


def load_grading(path: Path) -> GradingSpec:
    """Read and validate a grading file, or raise SpecError with every problem."""
    file, root, raw = read_yaml(path, "fit")
    try:
        return GradingSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_problems(file, root, e)) from None


def is_grading_file(path: Path) -> bool:
    """Whether a file given to `journeys validate` is the grading file: named so, or with
    `half_life_days:` at its top level."""
    if path.name == GRADING_FILE:
        return True
    try:
        return any(line.startswith(_GRADING_KEY) for line in path.read_text("utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return False  # the journey loader says what is wrong with it


def grading_of(library_dir: Path) -> GradingSpec | None:
    """The library's grading rules; None when it has no grading file (its leads are not graded).
    SpecError when the file is broken."""
    path = library_dir / GRADING_FILE
    return load_grading(path) if path.exists() else None
