"""`journeys plan` and `journeys task`: start a team plan, see where it stands, make the changes
people make to it (done, approve, reject, reassign, move, cancel), and report how a template's
runs went with the due offsets learned from them.
Every change goes to the plan workflow, which validates it: a refusal is printed with its reason
and exits 1, and changes nothing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from journeys.connection import connect
from journeys.limits import MAX_SPEED, MIN_SPEED
from journeys.plans.changes import Approve, Cancel, Complete, Move, PlanChange, Reassign, Reject
from journeys.plans.library import find_plan, load_plans
from journeys.plans.records import INSTANCE_PATTERN, PlanRecord, TaskRecord, plan_workflow_id
from journeys.plans.report import Figures, plan_report, template_diff
from journeys.plans.spec import PlanSpec
from journeys.settings import Settings
from journeys.store import open_store
from journeys.yamlfile import SpecError
from starters.running import fail, run
from workflows.plan_runs import change_plan, start_plan

plan_app = typer.Typer(
    help="Team plans: start one, see it, move or cancel it.", no_args_is_help=True
)
task_app = typer.Typer(
    help="A task of a running plan: done, approve, reject, reassign.", no_args_is_help=True
)
out = Console()

By = Annotated[str, typer.Option("--by", help="Who does it (a team member's id)")]
PlanId = Annotated[
    str, typer.Argument(metavar="PLAN", help="The plan's id, as `plan start` printed it")
]
TaskId = Annotated[str, typer.Argument(metavar="TASK", help="The task's id in the plan's template")]


def _templates(settings: Settings) -> dict[str, PlanSpec]:
    try:
        return load_plans(settings.library_dir)
    except SpecError as e:
        raise fail(f"the plan library has problems:\n{e}") from None


def _assignments(assign: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for text in assign:
        role, sep, person = text.partition("=")
        if not sep or not role.strip() or not person.strip():
            raise fail(f"--assign '{text}' is not ROLE=PERSON (writer=ana)")
        if role.strip() in found:
            raise fail(f"--assign names role '{role.strip()}' twice")
        found[role.strip()] = person.strip()
    return found


@plan_app.command("start")
def start(
    template: str,
    target: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="The target date (publish date)")
    ],
    assign: Annotated[list[str], typer.Option(help="ROLE=PERSON, once per role")] = [],  # noqa: B006
    manager: Annotated[
        str | None, typer.Option(help="Who may act on any task, and hears of late ones")
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(help="Names this piece of work (no personal data); one run per name"),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(min=MIN_SPEED, max=MAX_SPEED, help="Divide every duration (demos)"),
    ] = 1.0,
) -> None:
    """Start a plan from its template for a target date, with its roles assigned to people."""
    settings = Settings()
    spec = _templates(settings).get(template)
    if spec is None:
        raise fail(f"no plan template '{template}' in {settings.library_dir / 'plans'}")
    name = instance or f"{target:%Y-%m-%d}-{uuid.uuid4().hex[:6]}"
    if not re.fullmatch(INSTANCE_PATTERN, name) or len(name) > 100:
        raise fail(f"--instance '{name}' is not a slug: letters, digits, '.', '_' and '-'")

    async def go() -> None:
        store = await open_store(settings.database_url)
        try:
            await start_plan(
                await connect(settings),
                spec,
                name,
                target.date(),
                _assignments(assign),
                manager,
                speed,
                settings.task_queue,
                store=store,
            )
        finally:
            await store.close()

    run(go())
    typer.echo(f"{plan_workflow_id(template, name)}: started")


def _change(plan_id: str, change: PlanChange) -> None:
    """Send `change` to the plan; print where the plan stands after it."""
    settings = Settings()

    async def go() -> PlanRecord:
        return await change_plan(await connect(settings), plan_id, change)

    _print_plan(run(go()))


@plan_app.command("move")
def move(
    plan: PlanId,
    target: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="The new target date")],
    by: By,
) -> None:
    """Move the target date: every open task's due date and pending reminders move with it."""
    _change(plan, Move(target=target.date(), by=by))


@plan_app.command("cancel")
def cancel(
    plan: PlanId,
    by: By,
    reason: Annotated[str, typer.Option(help="Why, for the people on it")] = "",
) -> None:
    """Cancel the plan: no more reminders; finished tasks keep their history."""
    _change(plan, Cancel(by=by, reason=reason))


@task_app.command("done")
def done(
    plan: PlanId,
    task: TaskId,
    by: By,
    outcome: Annotated[
        str | None, typer.Option(help="For a task that asks what came of it")
    ] = None,
) -> None:
    """Mark an active task done (its owner, or the plan's manager)."""
    _change(plan, Complete(task=task, by=by, outcome=outcome))


@task_app.command("approve")
def approve(plan: PlanId, task: TaskId, by: By) -> None:
    """Approve an approval task as one of its approvers."""
    _change(plan, Approve(task=task, by=by))


@task_app.command("reject")
def reject(
    plan: PlanId,
    task: TaskId,
    by: By,
    comment: Annotated[str, typer.Option(help="What should change; goes to the task's owner")],
) -> None:
    """Reject an approval: the work goes back to its owner with the comment."""
    _change(plan, Reject(task=task, by=by, comment=comment))


@task_app.command("reassign")
def reassign(
    plan: PlanId,
    to: Annotated[str, typer.Option("--to", help="The team member who takes it")],
    by: By,
    task: Annotated[str | None, typer.Option(help="One task")] = None,
    role: Annotated[str | None, typer.Option(help="A role: every task of it from now on")] = None,
) -> None:
    """Give one task, or a role, to another team member (the plan's manager)."""
    if (task is None) == (role is None):
        raise fail("give exactly one of --task or --role")
    _change(plan, Reassign(task=task, role=role, to=to, by=by))


@plan_app.command("status")
def status(plan: PlanId, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where a plan stands: each task, who has it, when it is due, when it was done."""
    settings = Settings()

    async def read() -> PlanRecord | None:
        store = await open_store(settings.database_url)
        try:
            return await store.plan(plan)
        finally:
            await store.close()

    record = run(read())
    if record is None:
        raise fail(f"no plan '{plan}' recorded (journeys plan list shows them)")
    if as_json:
        typer.echo(record.model_dump_json(indent=2))
        return
    _print_plan(record)


@plan_app.command("list")
def list_plans(template: str) -> None:
    """Every run of a template: its target date, state and open tasks."""
    settings = Settings()

    async def read() -> list[PlanRecord]:
        store = await open_store(settings.database_url)
        try:
            return await store.plans_of(template)
        finally:
            await store.close()

    table = Table("plan", "target", "state", "open tasks")
    for record in run(read()):
        open_tasks = ", ".join(t.task_id for t in record.tasks if t.status == "active")
        table.add_row(record.plan_id, record.target.isoformat(), record.state, open_tasks)
    out.print(table)


def _utc(at: datetime | None) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}" if at else "-"


def _print_plan(record: PlanRecord) -> None:
    out.print(
        f"[bold]{record.plan_id}[/bold] v{record.version}, target {record.target}, "
        f"{record.state}" + (f", manager {record.manager}" if record.manager else ""),
        highlight=False,
    )
    table = Table("task", "status", "who", "due (UTC)", "done (UTC)", "by", "notes")
    for t in record.tasks:
        table.add_row(
            t.task_id,
            t.status,
            ", ".join(t.people),
            _utc(t.due_at),
            _utc(t.done_at),
            t.done_by or "",
            _notes(t),
        )
    out.print(table)


def _notes(task: TaskRecord) -> str:
    """What else a team lead asks of a task: what came of it, who has approved it so far, and
    what the approver who sent it back said."""
    notes = []
    if task.outcome:
        notes.append(f"outcome {task.outcome}")
    if task.status == "active" and task.approved_by:
        notes.append(f"approved by {', '.join(task.approved_by)}")
    if task.status == "active" and task.sent_back_comment:
        notes.append(f"sent back by {task.sent_back_by}: {task.sent_back_comment}")
    return "; ".join(notes)


@plan_app.command("report")
def report_plan(
    template: Annotated[str, typer.Argument(help="The plan template's id (blog_post)")],
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Only runs started on or after this date"),
    ] = None,
) -> None:
    """How the template's recorded runs went, per task and per person: runs, on time, lateness,
    time to complete; and a due offset per task learned from them, as a diff of the file."""
    settings = Settings()
    try:
        found = find_plan(settings.library_dir, template)
    except SpecError as e:
        raise fail(f"the plan library has problems:\n{e}") from None
    if found is None:
        raise fail(f"no plan template '{template}' in {settings.library_dir}")
    path, plan = found

    async def read() -> list[PlanRecord]:
        store = await open_store(settings.database_url)
        try:
            return await store.plans_of(template)
        finally:
            await store.close()

    report = plan_report(plan, run(read()), since.date() if since else None)
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    if not report.runs:
        typer.echo(f"{template} has no recorded runs{f' since {since:%Y-%m-%d}' if since else ''}")
        return
    typer.echo(
        f"{template} v{plan.version}: {report.runs} runs ({report.finished} finished, "
        f"{report.running} running, {report.cancelled} cancelled); lateness is done minus due"
    )
    tasks = Table(
        "task", "runs", "on time", "median late", "p80 late", "to complete", "open", "redone"
    )
    for t in report.tasks:
        tasks.add_row(
            t.task_id,
            *_figure_cells(t),
            _span(t.median_hours_to_complete),
            str(t.open),
            str(t.redone),
        )
    out.print(tasks)
    people = Table("person", "runs", "on time", "median late", "p80 late", "tasks")
    for p in report.people:
        people.add_row(p.person, *_figure_cells(p), ", ".join(p.tasks))
    out.print(people)
    typer.echo(f"suggested offsets ({report.rule}):")
    suggestions = Table("task", "due", "suggested", "why")
    for s in report.suggestions:
        suggestions.add_row(s.task_id, s.current, s.suggested, s.reason)
    out.print(suggestions)
    # Named as from here when the file is below, for `patch -p0` or an editor.
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    diff = template_diff(path.read_text("utf-8"), str(shown), plan, report)
    typer.echo(diff if diff else "the template's offsets stand: no change suggested")


def _figure_cells(figures: Figures) -> list[str]:
    rate = figures.on_time_rate
    return [
        str(figures.runs),
        f"{figures.on_time} ({rate:.0%})" if rate is not None else "-",
        _late(figures.median_late_hours),
        _late(figures.p80_late_hours),
    ]


def _late(hours: float | None) -> str:
    """Lateness in whole hours as days and hours, signed: +2d 4h late, -1d 3h early."""
    if hours is None:
        return "-"
    whole = round(hours)
    return ("-" if whole < 0 else "+" if whole > 0 else "") + _span(abs(whole))


def _span(hours: float | None) -> str:
    if hours is None:
        return "-"
    days, rest = divmod(round(hours), 24)
    if not days:
        return f"{rest}h"
    return f"{days}d {rest}h" if rest else f"{days}d"
