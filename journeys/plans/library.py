"""Loading and validating plan templates (`<library>/plans/*.yaml`): every problem with the file,
line and task id. Beyond the schema: unknown roles, unknown dependencies, dependency cycles,
approvals with nothing to approve, and due dates earlier than a task they come after."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from pydantic import ValidationError

from journeys import graphs
from journeys.plans.calendar import (
    WORKWEEK,
    due_date,
    public_holidays,
    supported_calendars,
)
from journeys.plans.spec import PlanSpec, TaskSpec
from journeys.yamlfile import (
    Problem,
    SpecError,
    did_you_mean,
    item_lines,
    load_each,
    read_yaml,
    schema_problems,
)

ITEMS = "tasks"
PLANS_FOLDER = "plans"
# Target dates a template's due dates are compared on: two weeks, so that business days meet
# every weekday and a weekend, from a day no holiday calendar makes special.
SAMPLE_TARGETS = [date(2031, 3, 3) + timedelta(days=n) for n in range(14)]


def _reference_problems(plan: PlanSpec, task: TaskSpec) -> list[str]:
    found = [
        f"unknown role {role!r}{did_you_mean(role, plan.roles)}; the plan's roles: "
        f"{', '.join(plan.roles)}"
        for role in task.roles
        if role not in plan.roles
    ]
    found += [
        f"comes after unknown task {dep!r}{did_you_mean(dep, plan.positions)}"
        for dep in task.after
        if dep not in plan.positions
    ]
    if task.id in task.after:
        found.append("comes after itself")
    if task.kind == "approval":
        if not task.after:
            found.append(
                "an approval with nothing to approve: name the tasks whose work it approves "
                "under 'after'"
            )
        elif task.sent_back_to is None:
            found.append(
                "approves more than one task: say which one a rejection goes back to ('on_reject')"
            )
        elif task.sent_back_to not in _before(plan, task.id):
            found.append(f"on_reject {task.sent_back_to!r} is not a task this approval comes after")
    return found


def _before(plan: PlanSpec, task_id: str) -> set[str]:
    """Every task `task_id` comes after, directly or not (known tasks only)."""
    found: set[str] = set()
    frontier = [task_id]
    while frontier:
        for dep in plan.task(frontier.pop()).after:
            if dep in plan.positions and dep not in found:
                found.add(dep)
                frontier.append(dep)
    return found


def _due_before_dependency(plan: PlanSpec, task: TaskSpec) -> list[str]:
    """A due date earlier than one of the tasks it comes after, for some target date."""
    days_off = public_holidays(plan.holidays)
    found = []
    for dep in task.after:
        if dep not in plan.positions:
            continue
        early = [
            target
            for target in SAMPLE_TARGETS
            if due_date(target, task.offset, WORKWEEK, days_off)
            < due_date(target, plan.task(dep).offset, WORKWEEK, days_off)
        ]
        if early:
            found.append(
                f"due {task.due} comes before {dep!r} (due {plan.task(dep).due}), which it comes "
                f"after (for a target date of {early[0]:%A %Y-%m-%d}, say)"
            )
    return found


def plan_problems(plan: PlanSpec, file: str, lines: list[int]) -> list[Problem]:
    """Everything the schema cannot see, by task."""
    problems: list[Problem] = []
    line_of = {t.id: (lines[i] if i < len(lines) else None) for i, t in enumerate(plan.tasks)}

    def add(task: str | None, message: str) -> None:
        problems.append(Problem(file, message, task, line_of.get(task or ""), "task"))

    if plan.holidays is not None and plan.holidays not in supported_calendars():
        add(None, f"holidays: unknown calendar {plan.holidays!r}: use a country code (PL, US)")
    seen: set[str] = set()
    for task in plan.tasks:
        if task.id in seen:
            add(task.id, "task id is used twice")
        seen.add(task.id)
        for message in _reference_problems(plan, task):
            add(task.id, message)
    cycles = graphs.cycles(
        plan.positions, lambda t: (d for d in plan.task(t).after if d in plan.positions)
    )
    for cycle in cycles:
        add(cycle[0], f"dependency cycle: {' -> '.join(cycle)} (each waits for the next)")
    if not cycles and not problems:  # dates compare only on a sound graph and calendar
        for task in plan.tasks:
            for message in _due_before_dependency(plan, task):
                add(task.id, message)
    return problems


def load_plan(path: Path) -> PlanSpec:
    """Read, parse and fully validate one plan template, or raise SpecError with every problem."""
    file, root, raw = read_yaml(path, ITEMS)
    lines = item_lines(root, ITEMS)
    try:
        plan = PlanSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(schema_problems(file, raw, e, lines, ITEMS)) from None
    if problems := plan_problems(plan, file, lines):
        raise SpecError(problems)
    return plan


def is_plan_file(path: Path) -> bool:
    """Whether a file given to `journeys validate` is a plan: it lives in a `plans` folder or
    lists `tasks:` at its top level."""
    if path.parent.name == PLANS_FOLDER:
        return True
    try:
        return any(line.startswith(f"{ITEMS}:") for line in path.read_text("utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return False  # the journey loader says what is wrong with it


def plan_files(library_dir: Path) -> list[Path]:
    return sorted((library_dir / PLANS_FOLDER).glob("*.yaml"))


def find_plan(library_dir: Path, plan_id: str) -> tuple[Path, PlanSpec] | None:
    """The file and the template of plan `plan_id`, for a command that shows or edits the file;
    None when the library has no such plan. The library is loaded whole first: SpecError when
    any file of it is broken, as `load_plans`."""
    if plan_id not in load_plans(library_dir):
        return None
    return next((p, plan) for p in plan_files(library_dir) if (plan := load_plan(p)).id == plan_id)


def load_plans(library_dir: Path) -> dict[str, PlanSpec]:
    """Every plan template in the library by id; a broken file fails the whole load, loudly."""
    return load_each(plan_files(library_dir), load_plan, "plan")
