"""How fast the journey reports answer over a store of real volumes.

    .venv/bin/python -m bench.dashboard [--events 1000000] [--deliveries 200000] \
        [--database-url postgresql+psycopg://...]

Fills an empty store (SQLite in a temporary directory by default) with the library's journeys
over the last 90 days: entries (journey_entries) until their sends make `deliveries`, each
walking its journey's graph for up to `VISITS_PER_ENTRY` steps (journey_visits, the A/B variant
drawn at a send step with variants), a ledger row per send visited, the events about those
sends (opens by people and by machines, clicks, unsubscribes, SMS delivery reports) and other
events (page visits, purchases: the goal) up to `events`, and NPS answers to a share of the NPS
journeys' sends. One journey, `nps_omnichannel` (an A/B step, an NPS question and, here, the
goal: a purchase within 14 days), takes a third of the entries. Rows go in with bulk inserts of
`ROWS_PER_INSERT`.

Then it times `ContactStore.overview` (every journey) and `ContactStore.journey_report`
(`nps_omnichannel`) over the 90 days and over the last 7, each warmed once and then run
`--repeat` times, and prints the medians. The target: under a second each.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import make_url

from journeys import eventloop
from journeys.library import load_library
from journeys.logging import configure_logging
from journeys.reports.models import Overview, Period
from journeys.settings import LIBRARY_DIR
from journeys.spec import Goal, JourneySpec, SendStep
from journeys.store import ContactStore, open_store
from journeys.store.schema import deliveries, events, journey_entries, journey_visits, nps_answers

BUSIEST = "nps_omnichannel"
BUSIEST_SHARE = 1 / 3
GOAL = Goal(event="purchase", within="14d")
DAYS = 90
VISITS_PER_ENTRY = 6
ROWS_PER_INSERT = 5000
# Of the sends: what became of them, and what the people (and machines) they reached did.
FAILED, CAPPED = 0.03, 0.02
HUMAN_OPEN, MACHINE_OPEN, CLICK, MACHINE_CLICK, UNSUBSCRIBE = 0.40, 0.20, 0.12, 0.02, 0.01
DELIVERED, UNDELIVERED = 0.92, 0.04
NPS_ANSWER = 0.3
# Of the other events, the share that are purchases (the rest page visits).
PURCHASE = 0.1


@dataclass
class Rows:
    entries: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    nps: list[dict[str, Any]] = field(default_factory=list)


def journeys() -> list[JourneySpec]:
    """The library's journeys, the busiest given a goal."""
    library = load_library(LIBRARY_DIR)
    library[BUSIEST] = library[BUSIEST].model_copy(update={"goal": GOAL})
    return list(library.values())


def generate(specs: list[JourneySpec], sends: int, total_events: int, now: datetime) -> Rows:
    """The store's rows: entries until `sends` ledger rows, then events up to `total_events`."""
    rng = random.Random(13)
    rows = Rows()
    others = [s for s in specs if s.id != BUSIEST]
    busiest = next(s for s in specs if s.id == BUSIEST)
    n = 0
    while len(rows.deliveries) < sends:
        spec = busiest if rng.random() < BUSIEST_SHARE else rng.choice(others)
        _entry(rng, rows, spec, f"c{n}", now - timedelta(seconds=rng.uniform(0, DAYS * 86400)))
        n += 1
    del rows.deliveries[sends:]
    for d in rows.deliveries:
        _reactions(rng, rows, d)
    while len(rows.events) < total_events:
        contact = f"c{rng.randrange(n)}"
        at = now - timedelta(seconds=rng.uniform(0, DAYS * 86400))
        kind = "purchase" if rng.random() < PURCHASE else "visited_url"
        rows.events.append(_event(contact, kind, at, None, None, {}))
    del rows.events[total_events:]
    return rows


def _entry(rng: random.Random, rows: Rows, spec: JourneySpec, contact: str, at: datetime) -> None:
    entry = f"{spec.id}:{contact}"
    graph = spec.graph()
    step: str | None = spec.first_step
    visited = 0
    while step is not None and visited < VISITS_PER_ENTRY:
        s = spec.step(step)
        nexts = graph[step]
        after = rng.choice(nexts) if nexts else None
        variant = None
        if isinstance(s, SendStep):
            variant = rng.choice(s.variants).name if s.variants else None
            _send(rng, rows, spec, s, entry, contact, at, variant)
        rows.visits.append(
            {
                "entry_id": entry, "n": visited, "journey_id": spec.id, "step_id": step,
                "entered_at": at, "left_at": at, "outcome": None, "next_step": after,
                "variant": variant,
            }
        )  # fmt: skip
        step, visited = after, visited + 1
        at += timedelta(hours=rng.uniform(1, 72))
    ended = step is None or rng.random() < 0.8
    rows.entries.append(
        {
            "entry_id": entry, "workflow_id": f"journey:{spec.id}:{contact}",
            "journey_id": spec.id, "version": spec.version, "contact_id": contact,
            "entered_at": rows.visits[-visited]["entered_at"],
            "goal_until": rows.visits[-visited]["entered_at"] + GOAL.window()
            if spec.goal else None,
            "ended_at": at if ended else None,
            "end_reason": (("end" if rng.random() < 0.85 else "exit_event") if ended else None),
        }
    )  # fmt: skip


def _send(
    rng: random.Random,
    rows: Rows,
    spec: JourneySpec,
    step: SendStep,
    entry: str,
    contact: str,
    at: datetime,
    variant: str | None,
) -> None:
    roll = rng.random()
    status = "failed" if roll < FAILED else "capped" if roll < FAILED + CAPPED else "sent"
    rows.deliveries.append(
        {
            "key": f"{entry}:{step.id}:{len(rows.deliveries)}", "workflow_id": entry,
            "journey_id": spec.id, "step_id": step.id, "contact_id": contact,
            "channel": step.channel, "template": step.templates()[0], "variant": variant,
            "status": status, "attempt": 1, "created_at": at, "updated_at": at,
        }
    )  # fmt: skip


def _reactions(rng: random.Random, rows: Rows, d: dict[str, Any]) -> None:
    """What became of a send: the events its recipient (or a machine) caused, an NPS answer."""
    if d["status"] != "sent":
        return
    contact, journey, step = d["contact_id"], d["journey_id"], d["step_id"]
    at: datetime = d["created_at"]
    later = at + timedelta(minutes=rng.uniform(1, 3000))
    happened = []
    if d["channel"] == "sms":
        happened.append(("delivered" if rng.random() < DELIVERED else "undelivered", False))
    if d["channel"] == "email":
        for kind, chance, machine in (
            ("opened", HUMAN_OPEN, False), ("opened", MACHINE_OPEN, True),
            ("clicked", CLICK, False), ("clicked", MACHINE_CLICK, True),
            ("unsubscribed", UNSUBSCRIBE, False),
        ):  # fmt: skip
            if rng.random() < chance:
                happened.append((kind, machine))
    for kind, machine in happened:
        data = {"machine": machine} if kind in ("opened", "clicked") else {}
        rows.events.append(_event(contact, kind, later, journey, step, data))
    if journey.startswith("nps_") and rng.random() < NPS_ANSWER:
        rows.nps.append(
            {
                "delivery_key": d["key"], "contact_id": contact, "journey_id": journey,
                "step_id": step, "score": rng.choice(range(11)), "comment": None,
                "answered_at": later, "updated_at": later,
            }
        )  # fmt: skip


def _event(
    contact: str,
    kind: str,
    at: datetime,
    journey: str | None,
    step: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "contact_id": contact, "kind": kind, "step_id": step, "journey_id": journey,
        "occurred_at": at, "data": data,
    }  # fmt: skip


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), ROWS_PER_INSERT):
        yield rows[start : start + ROWS_PER_INSERT]


def fill(store: ContactStore, rows: Rows) -> None:
    tables: list[tuple[Table, list[dict[str, Any]]]] = [
        (journey_entries, rows.entries),
        (journey_visits, rows.visits),
        (deliveries, rows.deliveries),
        (events, rows.events),
        (nps_answers, rows.nps),
    ]
    with store.engine.begin() as conn:
        for table, table_rows in tables:
            for batch in _batches(table_rows):
                conn.execute(insert(table), batch)
    # The planners' statistics, and on PostgreSQL the visibility map index-only scans read, as
    # autovacuum keeps them in a store that has run for 90 days (outside a transaction: an
    # ANALYZE rolled back with one is forgotten, and VACUUM refuses to run in one).
    postgres = store.engine.dialect.name == "postgresql"
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if postgres else "ANALYZE")


@dataclass(frozen=True)
class Timing:
    what: str
    median_s: float
    runs_s: list[float]


async def timed(what: str, call: Callable[[], Awaitable[Any]], repeat: int) -> Timing:
    await call()  # warm: the pages and the plan caches
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        runs.append(time.perf_counter() - began)
    return Timing(what, statistics.median(runs), runs)


@dataclass(frozen=True)
class Figures:
    rows: dict[str, int]
    seconds_to_fill: float
    timings: list[Timing]
    # Over the 90 days: what the figures the bench timed add up to.
    overview: Overview

    def lines(self) -> list[str]:
        counts = ", ".join(f"{n} {table}" for table, n in self.rows.items())
        found = [f"store: {counts} (filled in {self.seconds_to_fill:.0f} s)"]
        for t in self.timings:
            runs = " ".join(f"{r * 1000:.0f}" for r in t.runs_s)
            found.append(f"{t.what}: median {t.median_s * 1000:.0f} ms (runs, ms: {runs})")
        return found


async def run_bench(
    sends: int, total_events: int, repeat: int, data_dir: Path, database_url: str | None = None
) -> Figures:
    url = database_url or f"sqlite:///{data_dir / 'journeys.db'}"
    specs = journeys()
    now = datetime.now(UTC)
    rows = generate(specs, sends, total_events, now)
    store = await open_store(url)
    try:
        began = time.perf_counter()
        fill(store, rows)
        filled = time.perf_counter() - began
        busiest = next(s for s in specs if s.id == BUSIEST)
        timings = []
        whole = await store.overview(specs, Period(until=now + timedelta(days=1)))
        for days in (DAYS, 7):
            period = Period(since=now - timedelta(days=days), until=now + timedelta(days=1))
            overview = functools.partial(store.overview, specs, period)
            report = functools.partial(store.journey_report, busiest, period)
            timings.append(await timed(f"overview, {days} days", overview, repeat))
            timings.append(await timed(f"report of {BUSIEST}, {days} days", report, repeat))
    finally:
        await store.close()
    counts = {
        "journey_entries": len(rows.entries),
        "journey_visits": len(rows.visits),
        "deliveries": len(rows.deliveries),
        "events": len(rows.events),
        "nps_answers": len(rows.nps),
    }
    return Figures(counts, filled, timings, whole)


async def main(sends: int, total_events: int, repeat: int, database_url: str | None) -> None:
    configure_logging("WARNING")
    store = "SQLite" if database_url is None else make_url(database_url).get_backend_name()
    print(f"journey reports over {sends} deliveries and {total_events} events, {store} store")
    with tempfile.TemporaryDirectory() as tmp:
        figures = await run_bench(sends, total_events, repeat, Path(tmp), database_url)
    for line in figures.lines():
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--database-url",
        help="an empty store's database (postgresql+psycopg://...); SQLite in a temporary "
        "directory by default",
    )
    args = parser.parse_args()
    eventloop.run(main(args.deliveries, args.events, args.repeat, args.database_url))
