"""What a template's recorded runs say about its estimates (`journeys plan report`): per task and
per person how often the work was done on time and how late, and a due offset per task learned
from that history, shown as a change to the template file so the team can revise its estimates
as the runs come in (seed 003: "constantly revise and update as more accurate data comes in").

Pure functions over the template and the store's records of its runs (`PlanRecord`):

- A task counts once per run in which it is done (`done_at` set), whatever the run's state: a
  task finished before its run was cancelled was still done when it was. A task not done is not
  counted in the figures: in a running run it is shown as still open; in a cancelled run it was
  never going to be done and is left out.
- Lateness is `done_at - due_at` of the run's own record (negative: done early); on time means
  `done_at <= due_at`. Time to complete is `done_at - activated_at`: from when the task first
  became someone's to when it was last done, so a task sent back by an approval (`rounds > 1`)
  includes its rework, and the runs in which that happened are counted as redone.
- An approval is done by the approver who settled it (`done_by`): with `approve: all`, the last
  of them; its figures are that person's.
- The median is the middle value (the mean of the two middle ones for an even count); the 80th
  percentile is by nearest rank: the smallest value that at least 80% of the values are at most,
  always one that happened.
"""

from __future__ import annotations

import difflib
import math
import statistics
from collections import defaultdict
from collections.abc import Container, Iterable
from datetime import date, timedelta

from pydantic import BaseModel

from journeys.plans.calendar import WORKWEEK, Offset, due_date, public_holidays
from journeys.plans.library import ITEMS, SAMPLE_TARGETS
from journeys.plans.records import PlanRecord, TaskRecord
from journeys.plans.spec import PlanSpec
from journeys.yamlfile import item_values, mapping_value, parse, replace_scalars

# Fewer runs than this and one odd run would move a task's due date: its offset is kept.
MIN_RUNS = 3
ON_TIME_SHARE = 0.8
RULE = (
    "backwards from the target: a task nothing comes after keeps its offset (the target holds); "
    "each other task is due the earliest, over the tasks that come after it, of that task's "
    "suggested due date less its p80 time to complete (first activation to done, in the done "
    "runs of this version), in whole days rounded earlier (business days for a 'bd' task, on "
    f"the plan's holidays); never after a task that comes after it; kept with fewer than "
    f"{MIN_RUNS} runs of the task after it"
)
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)


class Figures(BaseModel):
    """How a set of done tasks went against their due dates. Hours; None when none was done."""

    runs: int
    on_time: int
    on_time_rate: float | None
    median_late_hours: float | None
    p80_late_hours: float | None


class TaskFigures(Figures):
    task_id: str
    title: str
    kind: str
    # Not done yet (someone's now, or waiting for the tasks before it), in runs still running.
    open: int
    # Done runs in which an approval sent it back, and it was done again.
    redone: int
    median_hours_to_complete: float | None


class PersonFigures(Figures):
    person: str
    # The tasks they did (an approval: settled), in the template's order.
    tasks: list[str]


class Suggestion(BaseModel):
    task_id: str
    current: str
    suggested: str
    # Why: the rule's figure, "too few runs (2 of 3)", or the later task that caps it.
    reason: str


class PlanReport(BaseModel):
    template: str
    version: int
    since: date | None
    runs: int
    running: int
    finished: int
    cancelled: int
    rule: str
    tasks: list[TaskFigures]
    people: list[PersonFigures]
    suggestions: list[Suggestion]

    @property
    def changes(self) -> list[Suggestion]:
        return [s for s in self.suggestions if s.suggested != s.current]


def p80(values: Iterable[float]) -> float:
    """The nearest-rank 80th percentile: the value at rank ceil(0.8 n) in ascending order."""
    ordered = sorted(values)
    return ordered[math.ceil(ON_TIME_SHARE * len(ordered)) - 1]


def _hours(span: timedelta) -> float:
    return round(span / _HOUR, 1)


def _late(task: TaskRecord) -> timedelta:
    assert task.done_at is not None
    return task.done_at - task.due_at


def _figures(done: list[TaskRecord]) -> dict[str, float | int | None]:
    late = [_hours(_late(t)) for t in done]
    on_time = sum(1 for t in done if _late(t) <= timedelta(0))
    return {
        "runs": len(done),
        "on_time": on_time,
        "on_time_rate": round(on_time / len(done), 3) if done else None,
        "median_late_hours": statistics.median(late) if late else None,
        "p80_late_hours": p80(late) if late else None,
    }


def _not_after(offset: Offset, later: Offset, days_off: Container[date]) -> bool:
    """Whether `offset` is due no later than `later` for every sample target (the units may
    differ, as the template's validation compares them)."""
    return all(
        due_date(t, offset, WORKWEEK, days_off) <= due_date(t, later, WORKWEEK, days_off)
        for t in SAMPLE_TARGETS
    )


def _latest_first(plan: PlanSpec) -> list[str]:
    """The task ids, each after every task that comes after it (the template has no cycles)."""
    dependents: dict[str, list[str]] = defaultdict(list)
    for task in plan.tasks:
        for dep in task.after:
            dependents[dep].append(task.id)
    placed: list[str] = []
    waiting = [t.id for t in plan.tasks]
    while waiting:
        ready = [t for t in waiting if all(d in placed for d in dependents[t])]
        placed += ready
        waiting = [t for t in waiting if t not in ready]
    return placed


def suggestions(plan: PlanSpec, runs: list[PlanRecord]) -> list[Suggestion]:
    """A due offset per task learned from `runs` (RULE): backward scheduling from the target.

    Why this rule: the target (the publish date) is the fixed point a team lead plans to, and an
    estimate should say when work must start for it to hold, not move it to where late work
    ended up. So a task nothing comes after keeps its offset, and, latest first, each task is
    due early enough that the task after it, starting then, is done by its own due date in 80%
    of the runs: that task's suggested offset less the 80th percentile of its time to complete
    (first activation to final done, rework included), rounded up to whole days so the due date
    is never later than the history allows. A task with several after it takes the earliest. A
    time to complete is never counted as less than nothing (a record done before it was
    activated). Only runs of the template's current version count, as for the figures of a
    version. With fewer than MIN_RUNS durations of a task after it, one odd run would move the
    earlier task: its offset is kept. A task is still never due after a task that comes after
    it (by construction, checked as the template's validation counts it: Monday to Friday, on
    the plan's holidays, over sample targets)."""
    days_off = public_holidays(plan.holidays)
    durations: dict[str, list[timedelta]] = defaultdict(list)
    for run in runs:
        if run.version != plan.version:
            continue
        for task in run.tasks:
            if task.done_at is None or task.activated_at is None:
                continue
            durations[task.task_id].append(max(task.done_at - task.activated_at, timedelta(0)))
    found: dict[str, Suggestion] = {}
    chosen: dict[str, Offset] = {}
    for task_id in _latest_first(plan):
        spec = plan.task(task_id)
        current = spec.offset
        later_tasks = [t.id for t in plan.tasks if task_id in t.after]
        few = [t for t in later_tasks if len(durations[t]) < MIN_RUNS]
        offset = current
        if not later_tasks:
            reason = "nothing comes after it: kept on the target"
        elif few:
            reason = f"too few runs of {few[0]} ({len(durations[few[0]])} of {MIN_RUNS})"
        else:
            options = []
            for later in later_tasks:
                days = math.ceil(p80(d / _DAY for d in durations[later]))
                options.append(
                    (
                        _before(current.business, chosen[later], days, days_off),
                        f"{later} (due {chosen[later]}) less p80 {days}d to complete "
                        f"of {len(durations[later])} runs",
                    )
                )
            offset, reason = min(options, key=lambda o: _earliest_due(o[0], days_off))
        # Kept offsets too: a task after this one may have moved earlier.
        for later in later_tasks:
            if not _not_after(offset, chosen[later], days_off):
                offset = _capped(offset, chosen[later], days_off)
                reason += f", capped by {later} (due {chosen[later]})"
        chosen[task_id] = offset
        found[task_id] = Suggestion(
            task_id=task_id, current=spec.due, suggested=str(offset), reason=reason
        )
    return [found[t.id] for t in plan.tasks]


def _before(business: bool, later: Offset, days: int, days_off: Container[date]) -> Offset:
    """The latest offset in the unit `business` due at least `days` calendar days before
    `later` for every sample target."""

    def meets(offset: Offset) -> bool:
        return all(
            due_date(t, offset, WORKWEEK, days_off)
            <= due_date(t, later, WORKWEEK, days_off) - days * _DAY
            for t in SAMPLE_TARGETS
        )

    # A calendar offset needs exactly the calendar count; a business-day one is no later than
    # it when positive and may be a little later when negative (over a weekend): from 0 or the
    # count, whichever is later, earlier until it meets.
    counts = [
        (due_date(t, later, WORKWEEK, days_off) - days * _DAY - t).days for t in SAMPLE_TARGETS
    ]
    offset = Offset(max(max(counts), 0) if business else min(counts), business)
    while not meets(offset):
        offset = Offset(offset.days - 1, business)
    return offset


def _earliest_due(offset: Offset, days_off: Container[date]) -> date:
    return min(due_date(t, offset, WORKWEEK, days_off) for t in SAMPLE_TARGETS)


def _capped(offset: Offset, later: Offset, days_off: Container[date]) -> Offset:
    """The latest offset in `offset`'s unit not after `later`."""
    while not _not_after(offset, later, days_off):
        offset = Offset(offset.days - 1, offset.business)
    return offset


def plan_report(plan: PlanSpec, runs: list[PlanRecord], since: date | None = None) -> PlanReport:
    """The report of `plan` over its recorded runs (started on or after `since`, if given)."""
    runs = [r for r in runs if since is None or r.started_at.date() >= since]
    done: dict[str, list[TaskRecord]] = defaultdict(list)
    by_person: dict[str, list[TaskRecord]] = defaultdict(list)
    still_open: dict[str, int] = defaultdict(int)
    for run in runs:
        for task in run.tasks:
            if task.done_at is not None:
                done[task.task_id].append(task)
                if task.done_by is not None:
                    by_person[task.done_by].append(task)
            elif run.state == "running":
                still_open[task.task_id] += 1
    tasks = []
    for spec in plan.tasks:
        mine = done[spec.id]
        to_complete = [
            _hours(t.done_at - t.activated_at) for t in mine if t.done_at and t.activated_at
        ]
        tasks.append(
            TaskFigures(
                task_id=spec.id,
                title=spec.title,
                kind=spec.kind,
                open=still_open[spec.id],
                redone=sum(1 for t in mine if t.rounds > 1),
                median_hours_to_complete=statistics.median(to_complete) if to_complete else None,
                **_figures(mine),
            )
        )
    people = [
        PersonFigures(
            person=person,
            tasks=[t.id for t in plan.tasks if any(r.task_id == t.id for r in mine)],
            **_figures(mine),
        )
        for person, mine in sorted(by_person.items())
    ]
    return PlanReport(
        template=plan.id,
        version=plan.version,
        since=since,
        runs=len(runs),
        running=sum(1 for r in runs if r.state == "running"),
        finished=sum(1 for r in runs if r.state == "finished"),
        cancelled=sum(1 for r in runs if r.state == "cancelled"),
        rule=RULE,
        tasks=tasks,
        people=people,
        suggestions=suggestions(plan, runs),
    )


def suggested_template(text: str, file: str, plan: PlanSpec, report: PlanReport) -> str:
    """The template's text with each changed task's `due:` value replaced where it is written,
    and its version one higher (a run keeps the version it started with, and the report learns
    only from runs of the current one); everything else as written."""
    changes = {s.task_id: s.suggested for s in report.changes}
    if not changes:
        return text
    root, _ = parse(file, text)
    version = mapping_value(root, "version")
    assert version is not None, "a validated template has a version"
    replacements = [(version, str(plan.version + 1))]
    for task, due in zip(plan.tasks, item_values(root, ITEMS, "due"), strict=True):
        if task.id in changes and due is not None:
            replacements.append((due, changes[task.id]))
    return replace_scalars(text, replacements)


def template_diff(text: str, file: str, plan: PlanSpec, report: PlanReport) -> str:
    """The suggested change to the template file as a unified diff ('' when there is none)."""
    suggested = suggested_template(text, file, plan, report)
    return "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True),
            suggested.splitlines(keepends=True),
            fromfile=file,
            tofile=f"{file} (suggested)",
        )
    )
