"""Loading and validating journey files: every problem, with the file, line and step id."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from journeys import conditions
from journeys.events import BUILT_IN_EVENTS
from journeys.graphs import cycles
from journeys.leads.library import GRADING_FILE
from journeys.spec import (
    MANUAL,
    OVERDUE,
    STEP_KINDS,
    UNASSIGNED,
    BranchStep,
    JourneySpec,
    SendStep,
    Step,
    TaskStep,
    WaitForStep,
)
from journeys.templates import TemplateError, load_template
from journeys.yamlfile import (
    Problem,
    SpecError,
    did_you_mean,
    item_lines,
    item_name,
    load_each,
    mapping_value,
    read_yaml,
    schema_problems,
)

__all__ = ["Problem", "SpecError", "journey_files", "load_journey", "load_library"]

# The list in a journey file whose entries problems are named by.
ITEMS = "steps"


_PARAM = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")


def _substitute_params(file: str, raw: Any, lines: list[int]) -> list[Problem]:
    """Replace ${name} in the steps by the journey's `params`, in place; name what is unknown."""
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list):
        return []
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        return []  # the schema reports it
    problems: list[Problem] = []

    def fill(value: Any, step: str, line: int | None) -> Any:
        if isinstance(value, str):
            for name in _PARAM.findall(value):
                if name not in params:
                    problems.append(Problem(file, f"unknown parameter ${{{name}}}", step, line))
            return _PARAM.sub(lambda m: str(params.get(m[1], m[0])), value)
        if isinstance(value, dict):
            return {k: fill(v, step, line) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, step, line) for v in value]
        return value

    for index, entry in enumerate(raw["steps"]):
        line = lines[index] if index < len(lines) else None
        raw["steps"][index] = fill(entry, item_name(entry, index), line)
    return problems


def _loops_without_wait(spec: JourneySpec) -> list[list[str]]:
    """Cycles along which no time passes (they would spin forever)."""
    graph = spec.instant_graph()
    return cycles([s.id for s in spec.steps], lambda step: graph.get(step, []))


def known_events(spec: JourneySpec) -> frozenset[str]:
    """The event kinds that can reach a run of `spec`: the system's own, and those the journey
    names as its trigger ("manual" is none), its exits or its declared custom events."""
    return BUILT_IN_EVENTS | ({spec.trigger} - {MANUAL}) | set(spec.exit_events) | set(spec.events)


def _step_problems(
    spec: JourneySpec, step: Step, known_ids: set[str], events: frozenset[str], library_dir: Path
) -> list[str]:
    """What is wrong with one step beyond its schema: what it refers to and what it uses."""
    found = [
        f"unknown next step {t!r}{did_you_mean(t, known_ids)}"
        for t in step.successors()
        if t not in known_ids
    ]
    if isinstance(step, WaitForStep):
        about = next((s for s in spec.steps if s.id == step.step), None)
        if step.step is not None and step.step not in known_ids:
            found.append(
                f"wait_for refers to unknown step {step.step!r}{did_you_mean(step.step, known_ids)}"
            )
        elif about is not None and not isinstance(about, SendStep):
            found.append(f"wait_for refers to {step.step!r}, a {about.kind} step, not a send")
        if step.event not in events:
            found.append(
                f"event {step.event!r} is never produced{did_you_mean(step.event, events)}; "
                "declare custom events under 'events:'"
            )
    if isinstance(step, SendStep):
        for name in step.templates():
            try:
                load_template(library_dir, step.channel, name)
            except TemplateError as e:
                found.append(str(e))
        names = [v.name for v in step.variants]
        if len(set(names)) != len(names):
            found.append("variant names repeat")
    if isinstance(step, TaskStep):
        known = [*step.outcomes, OVERDUE, UNASSIGNED]
        found += [
            f"'on' names {k!r}, which is no outcome of this task{did_you_mean(k, known)}: "
            f"one of {', '.join(known)}"
            for k in step.unknown_outcomes()
        ]
    if isinstance(step, BranchStep):
        for c in step.conditions:
            try:
                conditions.parse(c.when)
            except conditions.UnknownCondition as e:
                found.append(str(e))
                continue
            counted = conditions.counted_kind(c.when)
            if counted is not None and counted not in events:
                found.append(
                    f"'{c.when}' counts event {counted!r}, which is never produced"
                    f"{did_you_mean(counted, events)}; declare custom events under 'events:'"
                )
    return found


def _unreachable(spec: JourneySpec, graph: dict[str, list[str]]) -> list[str]:
    """The steps no path from the first step leads to. A path into an unknown step id (a
    misspelt `next`) may have been meant for any step, so then none is called unreachable: one
    wrong reference is one problem, not one more for every step behind it."""
    reachable: set[str] = set()
    frontier = [spec.first_step]
    while frontier:
        node = frontier.pop()
        if node not in graph:
            return []
        if node not in reachable:
            reachable.add(node)
            frontier.extend(graph[node])
    return [s.id for s in spec.steps if s.id not in reachable]


def _shape_problems(spec: JourneySpec) -> list[tuple[str, str]]:
    """(step id, problem) for the shape of the graph: dead ends, unreachable steps, busy loops."""
    graph = spec.graph()
    found = [
        (s.id, "nothing follows this step: give it 'next' or finish with an 'end' step")
        for s in spec.steps
        if not graph[s.id] and s.kind != "end"
    ]
    found += [
        (step_id, "step is not reachable from the first step")
        for step_id in _unreachable(spec, graph)
    ]
    found += [
        (loop[0], f"loop with no wait in it: {' -> '.join(loop)}")
        for loop in _loops_without_wait(spec)
    ]
    return found


def graph_problems(
    spec: JourneySpec,
    file: str,
    library_dir: Path,
    lines: list[int],
    refused: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Everything pydantic cannot see: references, events, templates, conditions, and the shape
    of the graph. `refused` are the ids of steps left out of `spec` because the schema refused
    them: references to them count as known, and the shape waits until they pass (what follows
    what is not known before)."""
    problems: list[Problem] = []
    line_of = {s.id: (lines[i] if i < len(lines) else None) for i, s in enumerate(spec.steps)}

    def add(step: str, message: str) -> None:
        problems.append(Problem(file, message, step, line_of.get(step)))

    known_ids = {s.id for s in spec.steps} | refused
    events = known_events(spec)
    seen: set[str] = set()
    for s in spec.steps:
        if s.id in seen:
            add(s.id, "step id is used twice")
        seen.add(s.id)
        for message in _step_problems(spec, s, known_ids, events, library_dir):
            add(s.id, message)
    if not refused:
        for step_id, message in _shape_problems(spec):
            add(step_id, message)
    return problems


def _problems_beyond_the_schema(
    file: str, raw: Any, err: ValidationError, library_dir: Path, lines: list[int]
) -> list[Problem]:
    """graph_problems of the steps the schema accepted, so that one refused step (a duration
    that is not one) does not hide the rest of the file's problems. Nothing when the schema
    refused something outside the steps too: without the journey's own fields there is no spec
    to check against."""
    refused_at = {
        e["loc"][1]
        for e in err.errors()
        if len(e["loc"]) >= 2 and e["loc"][0] == "steps" and isinstance(e["loc"][1], int)
    }
    steps = raw.get("steps") if isinstance(raw, dict) else None
    if not refused_at or not isinstance(steps, list):
        return []
    try:
        spec = JourneySpec.model_validate(
            {**raw, "steps": [s for i, s in enumerate(steps) if i not in refused_at]}
        )
    except ValidationError:
        return []
    refused = frozenset(item_name(steps[i], i) for i in refused_at)
    kept_lines = [line for i, line in enumerate(lines) if i not in refused_at]
    return graph_problems(spec, file, library_dir, kept_lines, refused)


def load_journey(path: Path, library_dir: Path | None = None) -> JourneySpec:
    """Read, parse and fully validate one journey file, or raise SpecError with every problem."""
    file, root, raw = read_yaml(path, ITEMS)
    library_dir = library_dir or path.parent
    lines = item_lines(root, ITEMS)
    if problems := _substitute_params(file, raw, lines):
        raise SpecError(problems)
    try:
        spec = JourneySpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(
            schema_problems(file, raw, e, lines, ITEMS, skip=STEP_KINDS)
            + _problems_beyond_the_schema(file, raw, e, library_dir, lines)
        ) from None
    problems = graph_problems(spec, file, library_dir, lines) + _goal_problems(spec, file, root)
    if problems:
        raise SpecError(problems)
    return spec


def _goal_problems(spec: JourneySpec, file: str, root: yaml.Node | None) -> list[Problem]:
    """The goal's event must be one something produces, as a wait_for's must."""
    if spec.goal is None or spec.goal.event in (events := known_events(spec)):
        return []
    node = mapping_value(root, "goal")
    return [
        Problem(
            file,
            f"goal: event {spec.goal.event!r} is never produced"
            f"{did_you_mean(spec.goal.event, events)}; declare custom events under 'events:'",
            line=node.start_mark.line + 1 if node is not None else None,
        )
    ]


def journey_files(library_dir: Path) -> list[Path]:
    # The grading file lives beside the journeys and is no journey.
    return sorted(p for p in library_dir.glob("*.yaml") if p.name != GRADING_FILE)


def load_library(library_dir: Path) -> dict[str, JourneySpec]:
    """Every journey in the library by id; a broken file fails the whole load, loudly."""
    return load_each(
        journey_files(library_dir), lambda path: load_journey(path, library_dir), "journey"
    )
