"""`journeys report [JOURNEY]`: the journey reports' figures from the store (and how many wait
at each step, from Temporal), as terminal tables or as the JSON the dashboard shows."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client

from journeys.codec import PayloadKeyError
from journeys.connection import connect
from journeys.durations import parse_duration
from journeys.reports.models import JourneyFigures, JourneyReport, Overview, Period
from journeys.settings import Settings
from journeys.spec import JourneySpec
from journeys.store import open_store
from starters.running import journey_library, journey_named, run
from workflows.runs import with_waiting

out = Console()
err = Console(stderr=True)
# How long the command waits for Temporal before it reports from the store alone.
CONNECT_TIMEOUT_S = 3.0
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_since(value: str | None) -> datetime | None:
    """A day (2026-11-01, from its midnight UTC) or a time back from now (7d, 12h)."""
    if value is None:
        return None
    if _DAY.match(value):
        try:
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as e:
            raise typer.BadParameter(f"'{value}' is not a day: {e}") from None
    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError:
        raise typer.BadParameter(
            f"'{value}' is neither a day (2026-11-01) nor a time back from now (7d, 12h)"
        ) from None


def report(
    journey: Annotated[
        str | None, typer.Argument(help="One journey's report; without it, the overview")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="From this day (2026-11-01, UTC) or this long ago (7d); default: from the start"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The report as JSON, as the dashboard shows it")
    ] = False,
) -> None:
    """The journeys' figures over a period: every journey's entries, sends, opens, clicks,
    unsubscribes, failures and conversions; with JOURNEY, each step's, the A/B tests and NPS."""
    period = Period(since=parse_since(since), until=datetime.now(UTC))
    settings = Settings()
    if journey is None:
        overview = run(_overview(settings, list(journey_library(settings).values()), period))
        if as_json:
            print(overview.model_dump_json(indent=2))
        else:
            _print_overview(overview)
        return
    spec = journey_named(settings, journey)
    found = run(journey_report(settings, spec, period))
    if as_json:
        print(found.model_dump_json(indent=2))
        return
    if not found.live:
        err.print(
            f"no live counts of who waits where: Temporal at {settings.temporal_address} did "
            "not answer (the figures are the store's)",
            highlight=False,
        )
    _print_journey(found)


async def _overview(settings: Settings, journeys: list[JourneySpec], period: Period) -> Overview:
    store = await open_store(settings.database_url)
    try:
        return await store.overview(journeys, period)
    finally:
        await store.close()


async def journey_report(settings: Settings, spec: JourneySpec, period: Period) -> JourneyReport:
    """The journey's report from the store, with who waits where now when Temporal answers."""
    store = await open_store(settings.database_url)
    try:
        found = await store.journey_report(spec, period)
    finally:
        await store.close()
    return await with_waiting(await _temporal(settings), spec, found)


async def _temporal(settings: Settings) -> Client | None:
    """A client, or None when Temporal cannot be reached soon (or without payload keys to
    connect with): the store's figures stand alone."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            return await connect(settings)
    except (TimeoutError, RuntimeError, OSError, PayloadKeyError):
        return None


def _period(period: Period) -> str:
    since = f"{period.since:%Y-%m-%d %H:%M}" if period.since else "the start"
    return f"from {since} to {period.until:%Y-%m-%d %H:%M} UTC"


def _sends(figures: JourneyFigures) -> str:
    return ", ".join(f"{channel} {f.sent}" for channel, f in figures.sends.items()) or "-"


def _print_overview(overview: Overview) -> None:
    out.print(f"Journeys {_period(overview.period)}", highlight=False)
    table = Table(
        "journey", "entered", "in now", "finished", "exited early", "converted", "sent",
        "delivered", "opens (people)", "opens (machines)", "clicks", "unsubscribed", "failures",
    )  # fmt: skip
    for f in overview.journeys:
        table.add_row(
            f.journey_id,
            *map(str, (f.entered, f.active, f.finished, f.exited_early)),
            "-" if f.conversions is None else str(f.conversions),
            _sends(f),
            *map(str, (f.delivered, f.human_opens, f.machine_opens, f.clicks)),
            *map(str, (f.unsubscribes, f.failures)),
        )
    out.print(table)


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print_journey(found: JourneyReport) -> None:
    f = found.figures
    out.print(
        f"[bold]{found.journey_id}[/bold] v{found.version}: {found.description}\n"
        f"{_period(found.period)}\n"
        f"entered {f.entered}: in it now {f.active}, finished {f.finished}, exited early "
        f"{f.exited_early}",
        highlight=False,
    )
    if found.goal:
        out.print(
            f"goal: {found.goal.event} within {found.goal.within}: {f.conversions} converted",
            highlight=False,
        )
    out.print(
        f"sent: {_sends(f)}; failures {f.failures}; delivered {f.delivered}; opens "
        f"{f.human_opens} by people, {f.machine_opens} by machines; clicks {f.clicks}; "
        f"unsubscribed {f.unsubscribes}",
        highlight=False,
    )
    steps = Table("step", "kind", "entered", "visits", "waiting now", "went on to", "sent",
                  "opens", "clicks")  # fmt: skip
    for s in found.steps:
        went = ", ".join(f"{step} {n}" for step, n in s.next.items())
        steps.add_row(
            s.step_id, s.kind, str(s.entered), str(s.visits), _number(s.waiting), went,
            _number(s.sent), _number(s.opens), _number(s.clicks),
        )  # fmt: skip
    out.print(steps)
    for test in found.ab_tests:
        threshold = f"p < {1 - test.confidence:.2f}"
        out.print(
            f"A/B test at '{test.step_id}': {test.metric} rate, {test.test} (two-sided), a "
            f"winner needs {threshold}",
            highlight=False,
        )
        variants = Table("variant", "entered", "sent", "opens", "clicks", "converted", "rate",
                         "vs control", "z", "p")  # fmt: skip
        against = {c.variant: c for c in test.comparisons}
        for v in test.variants:
            c = against.get(v.name)
            variants.add_row(
                v.name, str(v.entered), str(v.sent), str(v.opens), str(v.clicks),
                _number(v.conversions), _percent(v.rate),
                f"{100 * c.difference:+.1f} pts" if c else "control",
                f"{c.z:.3f}" if c and c.z is not None else "-",
                f"{c.p_value:.4f}" if c and c.p_value is not None else "-",
            )  # fmt: skip
        out.print(variants)
        verdict = f"winner: {test.winner}" if test.winner else f"no winner: nothing at {threshold}"
        out.print(verdict, highlight=False)
    if found.nps is not None:
        n = found.nps
        score = "-" if n.score is None else f"{n.score:g}"
        out.print(
            f"NPS {score} from {n.answers} answers: {n.promoters} promoters, {n.passives} "
            f"passives, {n.detractors} detractors",
            highlight=False,
        )
        out.print("by score 0-10: " + " ".join(map(str, n.distribution)), highlight=False)
        for week in n.trend:
            out.print(f"  week of {week.week_of}: {week.score:g} ({week.answers})", highlight=False)
