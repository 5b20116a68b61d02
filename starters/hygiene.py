"""`journeys hygiene`: run data hygiene now, keep the nightly Temporal Schedule that runs it,
and read what it changed and why from the audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from journeys.connection import connect
from journeys.hygiene.changes import HygieneChange
from journeys.settings import Settings
from journeys.store import open_store
from starters.running import fail, run
from workflows.hygiene_runs import BadCron, HygieneRun, ensure_schedule, policy_from, run_hygiene

hygiene_app = typer.Typer(
    help="Data hygiene: clean phones and emails, merge duplicates, sunset the unengaged.",
    no_args_is_help=True,
)
out = Console()
# Audit rows a report prints at most (the oldest first).
REPORT_ROWS = 10_000


@hygiene_app.command("run")
def run_now(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; change nothing")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Start the run and return at once")
    ] = False,
) -> None:
    """Run hygiene over every contact now (the worker does the work)."""
    settings = Settings()

    async def go() -> HygieneRun:
        return await run_hygiene(
            await connect(settings), settings, policy_from(settings, dry_run), wait=not no_wait
        )

    started = run(go())
    workflow_id, report = started.workflow_id, started.report
    if report is None:
        typer.echo(f"{workflow_id}: started")
        return
    would = " (dry run: nothing was changed)" if report.dry_run else ""
    out.print(
        f"{workflow_id}: {report.contacts} contacts, {report.groups} duplicate groups{would}",
        highlight=False,
    )
    table = Table("kind", "count")
    for kind, count in sorted(report.counts.items()):
        table.add_row(kind, str(count))
    out.print(table)


@hygiene_app.command("schedule")
def schedule(
    cron: Annotated[
        str | None,
        typer.Option(help="When it runs, in UTC (default JOURNEYS_HYGIENE_CRON, 0 3 * * *)"),
    ] = None,
) -> None:
    """Create or update the Temporal Schedule `hygiene`; a run is skipped while one is going."""
    settings = Settings()
    when = cron or settings.hygiene_cron

    async def go() -> list[datetime]:
        try:
            described = await ensure_schedule(await connect(settings), settings, when)
        except BadCron as e:
            raise fail(f"--cron '{when}' is not a schedule Temporal reads: {e}") from None
        return list(described.info.next_action_times)

    upcoming = run(go())
    nexts = ", ".join(f"{t.astimezone(UTC):%Y-%m-%d %H:%M}" for t in upcoming[:3])
    typer.echo(f"schedule hygiene: '{when}' (UTC); next runs {nexts}")


@hygiene_app.command("report")
def report(
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Changes from this day on (UTC)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What hygiene changed and why, oldest first, from the audit."""
    settings = Settings()

    async def read() -> list[HygieneChange]:
        store = await open_store(settings.database_url)
        try:
            return await store.hygiene_changes_since(
                since.replace(tzinfo=UTC) if since else None, REPORT_ROWS
            )
        finally:
            await store.close()

    changes = run(read())
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in changes], indent=2))
        return
    table = Table("when (UTC)", "contact", "kind", "what", "why")
    for c in changes:
        table.add_row(
            f"{c.changed_at.astimezone(UTC):%Y-%m-%d %H:%M}",
            c.contact_id,
            c.kind,
            *c.what_and_why(),
        )
    out.print(table)
    if len(changes) == REPORT_ROWS:
        out.print(f"(the first {REPORT_ROWS} changes; --since a later day shows the rest)")
