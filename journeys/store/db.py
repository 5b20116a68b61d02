"""Queries over the contact store (SQLAlchemy Core; SQLite file or PostgreSQL).

Each store method's work, its statements and its commit, runs as one call on one of the store's
threads (SQLite: one), with the standard blocking driver. An asyncio driver (aiosqlite) hands
every driver call (cursor, execute, fetch, close, commit, rollback) to its thread and back: five
to nine round trips per method, about half of each method's CPU at 20 events/s on the embedded
stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import IntegrityError

from journeys.contacts import Contact
from journeys.hygiene.changes import ChangeKind, HygieneChange
from journeys.hygiene.rules import Candidate, DuplicateGroup
from journeys.leads.grading import GradingSpec
from journeys.models import ContactFacts, JourneyEvent, PathRecord, SendRequest, SendWindow
from journeys.plans.people import Person
from journeys.plans.records import OpenTask, PlanRecord
from journeys.reports import build
from journeys.reports.models import JourneyReport, Overview, Period
from journeys.spec import JourneySpec
from journeys.store import grades, hygiene, hygiene_runs, outbox, paths, plans, reports, team
from journeys.store.grades import GradeChange, KeptGrade
from journeys.store.migrations import migrate
from journeys.store.outbox import HeldEvent
from journeys.store.rows import (
    CLAIMED,
    SENDING,
    Claim,
    event_row,
    in_utc,
    remembered,
    upsert,
    utc_now,
)
from journeys.store.schema import (
    audience_memberships,
    contact_aliases,
    contacts,
    deliveries,
    events,
    nps_answers,
    onsite_messages,
    opt_changes,
    people,
    plan_runs,
    plan_tasks,
    processed_events,
    push_subscriptions,
    send_checks,
    suppressions,
    tags,
)

T = TypeVar("T")
# A decision on a send from the contact's time zone and the instants of their recent sends.
Decide = Callable[[str, list[datetime]], SendWindow]
# PostgreSQL connections (and threads) per process.
POSTGRES_CONNECTIONS = 10


def _contact_of(row: RowMapping) -> Contact:
    """The Contact in a row of `contacts` (other columns of a join are left out), as it was
    validated when it was stored: a rule added since must not make it unreadable."""
    return Contact.model_construct(**{k: row[k] for k in Contact.model_fields})


# A contact with the channels it is suppressed on (a row each), built once: every send reads it.
_RECIPIENT = (
    select(contacts, suppressions.c.channel.label("suppressed_on"))
    .outerjoin(suppressions, suppressions.c.contact_id == contacts.c.id)
    .where(contacts.c.id == bindparam("contact_id"))
)
# The id a merged-away contact goes by now (see `ContactStore.resolve`); every tracked link asks.
_SURVIVOR = select(contact_aliases.c.survivor_id).where(
    contact_aliases.c.merged_id == bindparam("contact_id")
)


def _recipient(conn: Connection, contact_id: str) -> tuple[Contact | None, set[str]]:
    rows = conn.execute(_RECIPIENT, {"contact_id": contact_id}).all()
    if not rows:
        return None, set()
    return _contact_of(rows[0]._mapping), {r.suppressed_on for r in rows if r.suppressed_on}


def _column_of(conn: Connection, query: Any) -> list[Any]:
    return [r[0] for r in conn.execute(query)]


def _rows_of(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


def _tags_query(contact_id: str) -> Any:
    return select(tags.c.tag).where(tags.c.contact_id == contact_id).order_by(tags.c.tag)


def _audiences_query(contact_id: str) -> Any:
    table = audience_memberships
    return (
        select(table.c.audience).where(table.c.contact_id == contact_id).order_by(table.c.audience)
    )


def _subscriptions_query(contact_id: str, kind: str | None = None) -> Any:
    query = select(push_subscriptions).where(push_subscriptions.c.contact_id == contact_id)
    if kind is not None:
        query = query.where(push_subscriptions.c.kind == kind)
    return query.order_by(push_subscriptions.c.id)


# What a send request carries that the ledger has no column for: it decides the send (or feeds
# the metrics) only.
NOT_IN_LEDGER = {"transactional", "after_event_at", "window"}


# The sends that count against a cap (see `_sends`), built once over bind parameters.
_CHECKED = send_checks.c
_SENDS = union_all(
    select(_CHECKED.decided_at).where(
        _CHECKED.contact_id == bindparam("contact_id"),
        _CHECKED.channel == bindparam("channel"),
        _CHECKED.status == "allowed",
        _CHECKED.decided_at > bindparam("since"),
        _CHECKED.key != bindparam("key"),
        ~exists().where(deliveries.c.key == _CHECKED.key, deliveries.c.status == "failed"),
    ),
    select(deliveries.c.created_at).where(
        deliveries.c.contact_id == bindparam("contact_id"),
        deliveries.c.channel == bindparam("channel"),
        deliveries.c.status.in_(("sending", "sent")),
        deliveries.c.created_at > bindparam("since"),
        deliveries.c.key != bindparam("key"),
        ~exists().where(_CHECKED.key == deliveries.c.key),
    ),
)
# What the last check of a send decided, and why: a retry of the send keeps a decision to let it
# go or to skip it (see check_send).
_DECIDED = select(send_checks.c.status, send_checks.c.reason).where(
    send_checks.c.key == bindparam("key")
)
# The contact's time zone, its row locked (PostgreSQL) while a send is checked.
_ZONE_LOCKED = (
    select(contacts.c.time_zone).where(contacts.c.id == bindparam("contact_id")).with_for_update()
)


def _sends(conn: Connection, req: SendRequest, since: datetime) -> list[datetime]:
    """When the contact's messages on `req`'s channel went after `since`, other than `req`: the
    sends let go by a check (counted from then, unless their delivery failed), and those sent
    without one (transactional, or by a run from before checks) from their ledger row."""
    params = {"contact_id": req.contact_id, "channel": req.channel, "since": since, "key": req.key}
    return [in_utc(t) for t in conn.scalars(_SENDS, params)]


# The ledger's steps on every send (see `ContactStore.claim_delivery`), built once over bind
# parameters (named apart from the columns, which UPDATE reserves): the key `row` and the
# attempt `holder` that holds it.
_ROW = deliveries.c.key == bindparam("row")
_HOLDS = and_(_ROW, deliveries.c.attempt == bindparam("holder"))
_LEDGER_STATE = select(deliveries.c.status, deliveries.c.attempt).where(_ROW)
_TAKEN_OVER = (
    update(deliveries)
    .where(_HOLDS, deliveries.c.status == bindparam("found"))
    .values(attempt=deliveries.c.attempt + 1, updated_at=bindparam("now"))
)
_HANDED_OVER = (
    update(deliveries)
    .where(_HOLDS, deliveries.c.status.in_((CLAIMED, SENDING)))
    .values(status=SENDING, fingerprint=bindparam("handed"), updated_at=bindparam("now"))
)
_FINISHED = (
    update(deliveries)
    .where(_HOLDS)
    .values(
        status=bindparam("outcome"),
        provider_id=bindparam("provider"),
        error=bindparam("why"),
        reconciled=bindparam("how"),
        updated_at=bindparam("now"),
    )
)


@functools.cache
def _claiming(dialect: str) -> Any:
    """A new ledger row, claimed; its key back, or nothing when the key was there already."""
    return upsert(dialect, deliveries, ("key",), ()).returning(deliveries.c.key)


class _Abandoned(Exception):
    """The caller of a store method was cancelled while its work ran: roll the work back."""


class ContactStore:
    def __init__(self, engine: Engine, connections: int) -> None:
        """`engine` pools `connections` connections; the store runs as many threads, so work on
        a thread never waits for a connection."""
        self.engine = engine
        self._threads = ThreadPoolExecutor(connections, thread_name_prefix="contact-store")

    async def _read(self, work: Callable[[Connection], T]) -> T:
        """`work` on a connection, on a store thread."""
        return await self._on_thread(self.engine.connect, work)

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """`work` in one transaction on a store thread: committed when it returns, rolled back
        if it raises or if the caller was cancelled meanwhile."""
        return await self._on_thread(self.engine.begin, work)

    async def _on_thread(
        self,
        opened: Callable[[], AbstractContextManager[Connection]],
        work: Callable[[Connection], T],
    ) -> T:
        # A caller cancelled mid-work (an activity cancelled at worker shutdown, a request cut
        # off) must leave nothing behind, as an asyncio driver's transaction would: a committed
        # delivery claim nobody sends, or an API event id nobody delivered, would lose them.
        abandoned = threading.Event()

        def run() -> T:
            with opened() as conn:
                result = work(conn)
                if abandoned.is_set():
                    raise _Abandoned
                return result

        done = asyncio.get_running_loop().run_in_executor(self._threads, run)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            abandoned.set()
            with contextlib.suppress(Exception):
                await done  # the work winds down (rolled back) before the cancellation goes on
            raise

    @property
    def _dialect(self) -> str:
        return self.engine.dialect.name

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self._dialect == "postgresql" else sqlite_insert)(table)

    async def close(self) -> None:
        """Let work in flight finish, refuse new work, close the connections."""
        await asyncio.to_thread(self._threads.shutdown)
        await asyncio.to_thread(self.engine.dispose)

    # contacts -------------------------------------------------------------------------------

    async def upsert_contacts(self, batch: Sequence[Contact]) -> None:
        """Insert or replace the given contacts in one transaction."""
        if not batch:
            return
        now = utc_now()
        stmt = self._insert(contacts)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                col: stmt.excluded[col]
                for col in (
                    "email",
                    "phone",
                    "time_zone",
                    "locale",
                    "attributes",
                    "consent",
                    "in_mobile_app",
                    "web_push",
                    "updated_at",
                )
            },
        )

        def upsert(conn: Connection) -> None:
            # A merged-away id (an import from before the merge) updates its survivor; of rows
            # for one contact the batch's last wins.
            survivors = hygiene.resolved(conn, [c.id for c in batch])
            rows = {
                survivors.get(c.id, c.id): {
                    **c.model_dump(),
                    "id": survivors.get(c.id, c.id),
                    "created_at": now,
                    "updated_at": now,
                }
                for c in batch
            }
            conn.execute(stmt.values(list(rows.values())))

        await self._write(upsert)

    # data hygiene (statements in journeys.store.hygiene) ---------------------------------------

    async def hygiene_candidates(self, after_id: str | None, limit: int) -> list[Candidate]:
        """Up to `limit` contacts with ids after `after_id`, in id order, as hygiene reads them."""
        return await self._read(lambda conn: hygiene.candidates(conn, after_id, limit))

    async def apply_hygiene(self, changes: Sequence[HygieneChange]) -> int:
        """Apply hygiene changes, each contact's in one transaction with their audit rows; a
        change already audited (a retried batch) is skipped. How many were applied."""
        by_contact: dict[str, list[HygieneChange]] = {}
        for change in changes:
            by_contact.setdefault(change.contact_id, []).append(change)
        applied = 0
        for group in by_contact.values():
            applied += await self._write(
                functools.partial(hygiene.apply, insert=self._insert, changes=group)
            )
        return applied

    async def duplicate_groups(self, after_key: str | None, limit: int) -> list[DuplicateGroup]:
        """Up to `limit` groups of contacts sharing an email or a phone, keys after `after_key`."""
        return await self._read(lambda conn: hygiene.duplicate_groups(conn, after_key, limit))

    async def merge_contacts(
        self, run_id: str, survivor_id: str, merged_id: str, because: str, now: datetime
    ) -> bool:
        """Merge `merged_id` into `survivor_id` in one transaction, losing nothing and widening
        no consent (see journeys.store.hygiene.merge); False when there was nothing to merge
        (merged already, or gone)."""
        return await self._write(
            lambda conn: hygiene.merge(
                conn, self._insert, run_id, survivor_id, merged_id, because, now
            )
        )

    async def hygiene_changes_since(
        self, since: datetime | None, limit: int = 10_000
    ) -> list[HygieneChange]:
        """What hygiene changed (the audit), oldest first."""
        return await self._read(lambda conn: hygiene.changes_since(conn, since, limit))

    async def latest_hygiene_run(self) -> str | None:
        """The id of the hygiene run that changed something last; None before the first."""
        return await self._read(hygiene_runs.latest_run)

    async def hygiene_changes_of(self, run_id: str, limit: int = 10_000) -> list[HygieneChange]:
        """What hygiene run `run_id` changed (the audit), oldest first."""
        return await self._read(lambda conn: hygiene.changes_of(conn, run_id, limit))

    # the team (statements in journeys.store.team) --------------------------------------------

    async def upsert_people(self, batch: Sequence[Person]) -> None:
        """Insert or replace the given team members in one transaction."""
        if batch:
            insert = self._insert(people)
            await self._write(lambda conn: team.upsert(conn, insert, batch))

    async def person(self, person_id: str) -> Person | None:
        return await self._read(lambda conn: team.one(conn, person_id))

    async def team_members(self) -> list[Person]:
        return await self._read(team.everyone)

    # journey paths (statements in journeys.store.paths) ---------------------------------------

    async def paths_of(self, contact_id: str) -> list[PathRecord]:
        """Each entry of the contact into a journey, with the steps it visited; latest first."""
        return await self._read(lambda conn: paths.of_contact(conn, contact_id))

    async def record_path(self, path: PathRecord) -> None:
        """Keep what a run recorded of its entry (the journey workflow, where it waits and at
        its end)."""
        await self._write(lambda conn: paths.record(conn, path, self._dialect))

    # journey reports (statements in journeys.store.reports) -----------------------------------

    async def overview(self, journeys: Sequence[JourneySpec], period: Period) -> Overview:
        """Every journey's figures over `period` (journeys.reports.models.JourneyFigures)."""
        ids = [spec.id for spec in journeys]
        goals = {spec.id: spec.goal.event for spec in journeys if spec.goal}
        # At once, each on a connection of its own (PostgreSQL: the report takes the longest
        # statement's time, not their sum; SQLite's one connection takes them in turn).
        entries, activity, converted = await asyncio.gather(
            self._read(lambda conn: reports.entry_counts(conn, ids, period)),
            self._read(lambda conn: reports.activity_counts(conn, ids, period)),
            self._read(lambda conn: reports.conversions(conn, goals, period)),
        )
        return Overview(
            period=period,
            journeys=[
                build.journey_figures(
                    journey_id,
                    entries.get(journey_id),
                    activity.get((journey_id, None)),
                    converted.get(journey_id),
                )
                for journey_id in ids
            ],
        )

    async def journey_report(self, spec: JourneySpec, period: Period) -> JourneyReport:
        """One journey over `period`: its figures, each step's, its A/B tests and NPS; how many
        wait at each step is Temporal's to say (`waiting` None, `live` False)."""
        ids, goal = [spec.id], spec.goal.event if spec.goal else None
        goals = {spec.id: goal} if goal else {}
        ab_steps = build.ab_steps(spec)
        # At once, as in `overview`.
        (by_step, entries, converted), (steps, variants, sent, nps) = await asyncio.gather(
            asyncio.gather(
                self._read(lambda conn: reports.activity_counts(conn, ids, period, by_step=True)),
                self._read(lambda conn: reports.entry_counts(conn, ids, period)),
                self._read(lambda conn: reports.conversions(conn, goals, period)),
            ),
            asyncio.gather(
                self._read(lambda conn: reports.step_counts(conn, spec.id, period)),
                self._read(
                    lambda conn: reports.variant_counts(conn, spec.id, ab_steps, goal, period)
                ),
                self._read(lambda conn: reports.variant_sends(conn, spec.id, period)),
                self._read(lambda conn: reports.nps_answers_of(conn, spec.id, period)),
            ),
        )
        figures = build.journey_figures(
            spec.id, entries.get(spec.id), build.summed(by_step.values()), converted.get(spec.id)
        )
        return build.journey_report(
            spec,
            period,
            figures,
            build.step_figures(spec, steps, {step: c for (_, step), c in by_step.items()}),
            build.ab_tests(spec, variants, sent),
            nps,
        )

    # plan runs (statements in journeys.store.plans) ------------------------------------------

    async def record_plan(self, plan: PlanRecord) -> None:
        """Write a plan run as it stands now (the plan workflow, after every change)."""
        runs, tasks = self._insert(plan_runs), self._insert(plan_tasks)
        await self._write(lambda conn: plans.record(conn, runs, tasks, plan))

    async def plan(self, plan_id: str) -> PlanRecord | None:
        return await self._read(lambda conn: plans.one(conn, plan_id))

    async def plans_of(self, template: str) -> list[PlanRecord]:
        return await self._read(lambda conn: plans.of_template(conn, template))

    async def open_tasks_of(self, person_id: str) -> list[OpenTask]:
        return await self._read(lambda conn: plans.open_tasks_of(conn, person_id))

    async def running_plans(self) -> list[PlanRecord]:
        return await self._read(plans.running)

    async def plan_templates(self) -> list[str]:
        """The templates of which a run was recorded (a journey's task steps' among them)."""
        return await self._read(plans.templates)

    async def resolve(self, contact_id: str) -> str:
        """The id a contact goes by now: the survivor's, for a contact hygiene merged into
        another (links in old emails, API calls and imports name it still), else the id itself."""
        params = {"contact_id": contact_id}
        survivor = await self._read(lambda conn: conn.execute(_SURVIVOR, params).scalar())
        return survivor or contact_id

    async def hygiene_members(self, contact_ids: Sequence[str]) -> list[tuple[str, datetime]]:
        """Who a group of duplicates is now, with when each was created (a merged-away id stands
        for its survivor): what `journeys.hygiene.rules.survivor` chooses from."""
        return await self._read(lambda conn: hygiene_runs.members(conn, contact_ids))

    async def hygiene_counts(self, run_id: str) -> dict[ChangeKind, int]:
        """The changes per kind hygiene run `run_id` made, as the audit has them."""
        return await self._read(lambda conn: hygiene_runs.counts(conn, run_id))

    async def get_contact(self, contact_id: str) -> Contact | None:
        query = select(contacts).where(contacts.c.id == contact_id)
        row = await self._read(lambda conn: conn.execute(query).first())
        return _contact_of(row._mapping) if row else None

    async def recipient(self, contact_id: str) -> tuple[Contact | None, set[str]]:
        """The contact (None if unknown) and the channels it is suppressed on, in one query:
        every send and every branch on facts needs both."""
        return await self._read(lambda conn: _recipient(conn, contact_id))

    async def push_recipient(
        self, contact_id: str, kind: str
    ) -> tuple[Contact | None, set[str], list[dict[str, Any]]]:
        """`recipient`, and the contact's push subscriptions of `kind`, in one read."""

        def read(conn: Connection) -> tuple[Contact | None, set[str], list[dict[str, Any]]]:
            contact, suppressed = _recipient(conn, contact_id)
            return contact, suppressed, _rows_of(conn, _subscriptions_query(contact_id, kind))

        return await self._read(read)

    async def contact_ids_by_phone(self, phone: str) -> list[str]:
        """The contacts with this E.164 number; several may share one (a family, a shop)."""
        query = select(contacts.c.id).where(contacts.c.phone == phone).order_by(contacts.c.id)
        return await self._read(lambda conn: _column_of(conn, query))

    async def facts(
        self, contact_id: str, counts: Sequence[str] = (), at: datetime | None = None
    ) -> ContactFacts:
        """What branches read of the contact, with the behaviour `counts` (`<kind>/<days>`)
        whose windows end at `at` (None: now)."""

        def read(conn: Connection) -> ContactFacts:
            contact, suppressed = _recipient(conn, contact_id)
            if contact is None:
                return ContactFacts(contact_id=contact_id)
            grade, score = grades.grade_and_score(conn, contact_id)
            subscribed = {s["kind"] for s in _rows_of(conn, _subscriptions_query(contact_id))}
            return ContactFacts(
                contact_id=contact_id,
                has_email=bool(contact.email),
                has_phone=bool(contact.phone),
                time_zone=contact.time_zone,
                locale=contact.locale,
                # An unsubscribe or STOP withdraws consent, whatever the contact record says.
                consent={ch: ok and ch not in suppressed for ch, ok in contact.consent.items()},
                in_mobile_app=contact.in_mobile_app or "mobile" in subscribed,
                web_push=contact.web_push or "web" in subscribed,
                tags=_column_of(conn, _tags_query(contact_id)),
                audiences=_column_of(conn, _audiences_query(contact_id)),
                attributes=contact.attributes,
                grade=grade,
                score=score,
                counts=grades.counts(conn, contact_id, counts, at),
            )

        return await self._read(read)

    # tags and audiences ---------------------------------------------------------------------

    async def change_tags(self, contact_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
        def change(conn: Connection) -> None:
            if add:
                stmt = self._insert(tags).values(
                    [{"contact_id": contact_id, "tag": t, "added_at": utc_now()} for t in add]
                )
                conn.execute(stmt.on_conflict_do_nothing())
            if remove:
                conn.execute(
                    delete(tags).where(
                        and_(tags.c.contact_id == contact_id, tags.c.tag.in_(remove))
                    )
                )

        await self._write(change)

    # lead grades (journeys/store/grades.py) ---------------------------------------------------

    async def regrade(
        self, contact_id: str, spec: GradingSpec, now: datetime, lease: timedelta = timedelta(0)
    ) -> GradeChange | None:
        """Grade the contact and keep the grade; a change is a grade_changed event, recorded and
        kept in the outbox in the same transaction, leased to the caller for `lease` (none: the
        gateway's outbox hands it over). See `grades.regrade`."""
        changes = await self._write(
            lambda conn: grades.regrade(conn, self._dialect, [contact_id], spec, now, lease)
        )
        return changes[0] if changes else None

    async def regrade_batch(
        self, after_id: str | None, limit: int, spec: GradingSpec, now: datetime
    ) -> tuple[str | None, int]:
        """Regrade the next `limit` contacts after `after_id` in one transaction: the last id
        done (None when there were none left) and how many grades changed. Their changes are
        kept in the outbox unleased: the gateway's outbox hands them over."""

        def regrade(conn: Connection) -> tuple[str | None, int]:
            ids = grades.contact_ids_after(conn, after_id, limit)
            changes = grades.regrade(conn, self._dialect, ids, spec, now, timedelta(0))
            return (ids[-1] if ids else None), len(changes)

        return await self._write(regrade)

    async def lead_grade(self, contact_id: str) -> KeptGrade | None:
        return await self._read(lambda conn: grades.lead_grade_of(conn, contact_id))

    async def tags_of(self, contact_id: str) -> list[str]:
        return await self._read(lambda conn: _column_of(conn, _tags_query(contact_id)))

    async def change_audience(self, contact_id: str, audience: str, member: bool) -> None:
        table = audience_memberships
        if member:
            stmt = (
                self._insert(table)
                .values(contact_id=contact_id, audience=audience, added_at=utc_now())
                .on_conflict_do_nothing()
            )
        else:
            stmt = delete(table).where(
                and_(table.c.contact_id == contact_id, table.c.audience == audience)
            )
        await self._write(lambda conn: conn.execute(stmt))

    async def audiences_of(self, contact_id: str) -> list[str]:
        return await self._read(lambda conn: _column_of(conn, _audiences_query(contact_id)))

    # the delivery ledger ----------------------------------------------------------------------

    async def claim_delivery(self, req: SendRequest) -> Claim:
        """Claim `req.key` for this attempt (see `Claim`).

        A new key is claimed as attempt 1. A key left `claimed` (an attempt died before handing
        the message over) or `sending` (after) is taken over under the next attempt number, in
        one UPDATE that compares the number read: of two attempts taking it over at once, one
        holds it. `sent` and `failed` are final.
        """
        now = utc_now()
        row = {**req.model_dump(exclude=NOT_IN_LEDGER), "status": CLAIMED, "attempt": 1}
        row |= {"created_at": now, "updated_at": now}
        fresh = _claiming(self._dialect)

        def claim(conn: Connection) -> Claim:
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here.
            if conn.execute(fresh, row).first():
                return Claim(CLAIMED, 1, held=True)
            status, attempt = conn.execute(_LEDGER_STATE, {"row": req.key}).one()
            if status not in (CLAIMED, SENDING):
                return Claim(status, attempt, held=False)
            params = {"row": req.key, "found": status, "holder": attempt, "now": utc_now()}
            held = bool(conn.execute(_TAKEN_OVER, params).rowcount)
            return Claim(status, attempt + 1 if held else attempt, held=held)

        return await self._write(claim)

    async def hand_over_delivery(
        self, key: str, attempt: int, fingerprint: str | None = None
    ) -> bool:
        """The message is about to leave: `sending` from now on. False (and nothing changed)
        when `attempt` no longer holds the claim: a later attempt took it over, so this one must
        not send."""
        params = {"row": key, "holder": attempt, "handed": fingerprint, "now": utc_now()}
        return await self._write(lambda conn: bool(conn.execute(_HANDED_OVER, params).rowcount))

    async def finish_delivery(
        self,
        key: str,
        attempt: int,
        status: str,
        provider_id: str | None = None,
        error: str | None = None,
        reconciled: str | None = None,
    ) -> bool:
        """Record the outcome of `attempt`; False when a later attempt holds the claim."""
        params = {
            "row": key,
            "holder": attempt,
            "outcome": status,
            "provider": provider_id,
            "why": error,
            "how": reconciled,
            "now": utc_now(),
        }
        return await self._write(lambda conn: bool(conn.execute(_FINISHED, params).rowcount))

    async def release_delivery(self, key: str, attempt: int) -> None:
        """The provider certainly did not take the message (connection refused, 5xx): forget the
        claim so the retry sends it."""
        stmt = delete(deliveries).where(
            and_(
                deliveries.c.key == key,
                deliveries.c.attempt == attempt,
                deliveries.c.status.in_((CLAIMED, SENDING)),
            )
        )
        await self._write(lambda conn: conn.execute(stmt))

    async def delivery(self, key: str) -> dict[str, Any] | None:
        query = select(deliveries).where(deliveries.c.key == key)
        rows = await self._read(lambda conn: _rows_of(conn, query))
        return rows[0] if rows else None

    async def deliveries_of(self, contact_id: str) -> list[dict[str, Any]]:
        query = (
            select(deliveries)
            .where(deliveries.c.contact_id == contact_id)
            .order_by(deliveries.c.created_at)
        )
        return await self._read(lambda conn: _rows_of(conn, query))

    # compliance at send time: quiet hours and the frequency cap ---------------------------------

    async def check_send(
        self, req: SendRequest, now: datetime, since: datetime, decide: Decide
    ) -> SendWindow:
        """Whether `req` may leave at `now` by `decide`, given the contact's time zone and the
        instants of their sends on the channel after `since`; the decision is recorded in the
        same transaction (see `send_checks`), and once `req` was let go or skipped that stands
        (`deferred` is decided again). The contact's row is locked meanwhile (PostgreSQL), so
        two checks for one contact take turns and the second counts the first's place."""

        now, since = in_utc(now), in_utc(since)

        def check(conn: Connection) -> SendWindow:
            zone = conn.scalar(_ZONE_LOCKED, {"contact_id": req.contact_id})
            if zone is None:
                return SendWindow(action="now")  # the send refuses it: no such contact
            # A send retried after its check let it go may already be with the provider: it is
            # not held or skipped now (the ledger keeps it to one message). One skipped is in the
            # ledger as capped: let go now, it would find that row and pass for sent.
            decided = conn.execute(_DECIDED, {"key": req.key}).first()
            if decided is not None and decided.status == "allowed":
                return SendWindow(action="now")
            if decided is not None and decided.status == "skipped":
                return SendWindow(action="skip", reason=decided.reason)
            window = decide(zone, _sends(conn, req, since))
            if window.action == "skip":
                row = {
                    **req.model_dump(exclude=NOT_IN_LEDGER),
                    "status": "capped",
                    "error": window.reason,
                }
                row |= {"created_at": now, "updated_at": now}
                conn.execute(self._insert(deliveries).values(row).on_conflict_do_nothing())
            status = {"now": "allowed", "wait": "deferred", "skip": "skipped"}[window.action]
            changed: dict[str, Any] = {"status": status, "decided_at": now}
            if window.action != "now":
                until = window.until and in_utc(window.until)
                changed |= {"reason": window.reason, "held_until": until}
            recorded = upsert(self._dialect, send_checks, ("key",), tuple(changed))
            row = {
                "key": req.key,
                "contact_id": req.contact_id,
                "channel": req.channel,
                "journey_id": req.journey_id,
                "step_id": req.step_id,
            }
            conn.execute(recorded, row | changed)
            return window

        return await self._write(check)

    async def send_checks_of(self, contact_id: str) -> list[dict[str, Any]]:
        query = (
            select(send_checks)
            .where(send_checks.c.contact_id == contact_id)
            .order_by(send_checks.c.decided_at)
        )
        return await self._read(lambda conn: _rows_of(conn, query))

    # events -----------------------------------------------------------------------------------

    async def record_event(
        self, contact_id: str, ev: JourneyEvent, journey_id: str | None = None
    ) -> None:
        stmt = insert(events).values(**event_row(contact_id, ev, journey_id))
        await self._write(lambda conn: conn.execute(stmt))

    async def events_of(self, contact_id: str) -> list[dict[str, Any]]:
        """Every event the contact did or that was about them, oldest first."""
        query = (
            select(events)
            .where(events.c.contact_id == contact_id)
            .order_by(events.c.occurred_at, events.c.id)
        )
        return await self._read(lambda conn: _rows_of(conn, query))

    @contextlib.asynccontextmanager
    async def first_time(self, event_id: str, contact_id: str) -> AsyncIterator[bool]:
        """Whether `event_id` is new; if the block handling it fails, the id is forgotten again so
        a retry is handled rather than taken for a duplicate."""
        fresh = await self.first_time_event(event_id, contact_id)
        try:
            yield fresh
        except BaseException:
            if fresh:
                await self.forget_event(event_id, contact_id)
            raise

    async def first_time_event(self, event_id: str, contact_id: str) -> bool:
        """Remember an event id of the contact; False when it was seen before (a retried call)."""
        stmt = remembered(event_id, contact_id)
        try:
            await self._write(lambda conn: conn.execute(stmt))
            return True
        except IntegrityError:
            return False

    async def forget_event(self, event_id: str, contact_id: str) -> None:
        """Undo `first_time_event` for an event that could not be delivered, so a retry is not
        taken for a duplicate."""
        stmt = delete(processed_events).where(
            processed_events.c.contact_id == contact_id, processed_events.c.event_id == event_id
        )
        await self._write(lambda conn: conn.execute(stmt))

    # the gateway's outbox (statements in journeys.store.outbox) -----------------------------

    async def keep_event(
        self,
        contact_id: str,
        journey_id: str | None,
        ev: JourneyEvent,
        lease: timedelta,
        once_id: str | None = None,
    ) -> HeldEvent | None:
        """Record the event and, in the same transaction, keep it in the outbox: the caller hands
        it to Temporal and then calls `release_held`. Should the caller never get there (its
        process died), it is handed over again once `lease` is over.

        With `once_id` (a provider's id for what it reports), None if that id was kept before:
        the provider sent the same report again.
        """
        try:
            return await self._write(
                lambda conn: outbox.keep(conn, contact_id, journey_id, ev, lease, once_id)
            )
        except IntegrityError:
            if once_id is None:
                raise
            return None

    async def claim_held(self, lease: timedelta) -> HeldEvent | None:
        """The oldest kept event that is due, leased for `lease` so no other gateway process
        hands it over meanwhile; None when none is due."""
        return await self._write(lambda conn: outbox.claim_due(conn, lease))

    async def held_summary(self) -> tuple[int, datetime | None]:
        """How many events are kept, not yet taken by Temporal, and when the oldest was kept."""
        return await self._read(outbox.summary)

    async def release_held(self, held_id: int) -> None:
        """Temporal took the event."""
        await self._write(lambda conn: outbox.release(conn, held_id))

    async def put_off_held(self, held_id: int, error: str, until: datetime) -> None:
        """Temporal did not take the event: keep it, due again at `until`."""
        await self._write(lambda conn: outbox.put_off(conn, held_id, error, until))

    # suppression ------------------------------------------------------------------------------

    def _suppressing(self, contact_id: str, channel: str, reason: str) -> Any:
        return (
            self._insert(suppressions)
            .values(contact_id=contact_id, channel=channel, reason=reason, created_at=utc_now())
            .on_conflict_do_nothing()
        )

    async def suppress(self, contact_id: str, channel: str, reason: str) -> None:
        stmt = self._suppressing(contact_id, channel, reason)
        await self._write(lambda conn: conn.execute(stmt))

    async def opt_in_out(
        self, contact_id: str, channel: str, opted_out: bool, at: datetime, once_id: str
    ) -> Literal["applied", "duplicate", "outdated"]:
        """The contact's own STOP (`opted_out`) or START on `channel`, which arrived `at`, in one
        transaction: `duplicate` if `once_id` (the provider's message id) was handled before,
        `outdated` if a change that arrived later was applied already; else `applied`."""

        def apply(conn: Connection) -> Literal["applied", "outdated"]:
            conn.execute(remembered(once_id, contact_id))
            stmt = self._insert(opt_changes).values(
                contact_id=contact_id, channel=channel, opted_out=opted_out, changed_at=at
            )
            changed = conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["contact_id", "channel"],
                    set_={"opted_out": opted_out, "changed_at": at},
                    where=opt_changes.c.changed_at < stmt.excluded.changed_at,
                ).returning(opt_changes.c.contact_id)
            ).first()
            if changed is None:
                return "outdated"
            if opted_out:
                conn.execute(self._suppressing(contact_id, channel, f"{channel}_stop"))
            else:
                conn.execute(
                    delete(suppressions).where(
                        suppressions.c.contact_id == contact_id, suppressions.c.channel == channel
                    )
                )
            return "applied"

        try:
            return await self._write(apply)
        except IntegrityError:
            return "duplicate"

    async def suppressed_channels(self, contact_id: str) -> set[str]:
        query = select(suppressions.c.channel).where(suppressions.c.contact_id == contact_id)
        return set(await self._read(lambda conn: _column_of(conn, query)))

    # push subscriptions -------------------------------------------------------------------------

    async def add_push_subscription(
        self, contact_id: str, kind: str, endpoint: str, keys: dict[str, str]
    ) -> None:
        """Register a web push subscription (kind 'web') or a mobile app token ('mobile')."""
        stmt = self._insert(push_subscriptions).values(
            contact_id=contact_id, kind=kind, endpoint=endpoint, keys=keys, created_at=utc_now()
        )
        await self._write(lambda conn: conn.execute(stmt.on_conflict_do_nothing()))

    async def push_subscriptions_of(
        self, contact_id: str, kind: str | None = None
    ) -> list[dict[str, Any]]:
        query = _subscriptions_query(contact_id, kind)
        return await self._read(lambda conn: _rows_of(conn, query))

    async def remove_push_subscription(self, subscription_id: int) -> None:
        """The push service said the subscription is gone (404/410)."""
        stmt = delete(push_subscriptions).where(push_subscriptions.c.id == subscription_id)
        await self._write(lambda conn: conn.execute(stmt))

    # NPS ----------------------------------------------------------------------------------------

    async def record_nps_answer(
        self, delivery_key: str, score: int, comment: str | None
    ) -> dict[str, Any]:
        """Store the answer to the send `delivery_key`; answering again updates it."""

        def record(conn: Connection) -> dict[str, Any]:
            sent = _rows_of(conn, select(deliveries).where(deliveries.c.key == delivery_key))
            if not sent:
                raise KeyError(delivery_key)
            now = utc_now()
            stmt = self._insert(nps_answers).values(
                delivery_key=delivery_key,
                contact_id=sent[0]["contact_id"],
                journey_id=sent[0]["journey_id"],
                step_id=sent[0]["step_id"],
                score=score,
                comment=comment,
                answered_at=now,
                updated_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["delivery_key"],
                    set_={"score": score, "comment": comment, "updated_at": now},
                )
            )
            return sent[0]

        return await self._write(record)

    async def nps_answers_of(self, journey_id: str) -> list[dict[str, Any]]:
        query = (
            select(nps_answers)
            .where(nps_answers.c.journey_id == journey_id)
            .order_by(nps_answers.c.answered_at)
        )
        return await self._read(lambda conn: _rows_of(conn, query))

    # on-site messages ---------------------------------------------------------------------------

    async def queue_onsite(
        self, key: str, contact_id: str, journey_id: str, step_id: str, content: dict[str, Any]
    ) -> None:
        stmt = self._insert(onsite_messages).values(
            delivery_key=key,
            contact_id=contact_id,
            journey_id=journey_id,
            step_id=step_id,
            content=content,
            created_at=utc_now(),
        )
        await self._write(lambda conn: conn.execute(stmt.on_conflict_do_nothing()))

    async def onsite_queued(self, key: str) -> bool:
        """Whether the on-site message of send `key` was queued (shown or not)."""
        query = select(onsite_messages.c.delivery_key).where(onsite_messages.c.delivery_key == key)
        return await self._read(lambda conn: conn.execute(query).first() is not None)

    async def pending_onsite(self, contact_id: str) -> list[dict[str, Any]]:
        query = (
            select(onsite_messages)
            .where(
                and_(
                    onsite_messages.c.contact_id == contact_id,
                    onsite_messages.c.shown_at.is_(None),
                )
            )
            .order_by(onsite_messages.c.created_at)
        )
        return await self._read(lambda conn: _rows_of(conn, query))

    async def mark_onsite_shown(self, key: str, contact_id: str) -> bool:
        stmt = (
            update(onsite_messages)
            .where(
                and_(
                    onsite_messages.c.delivery_key == key,
                    onsite_messages.c.contact_id == contact_id,
                    onsite_messages.c.shown_at.is_(None),
                )
            )
            .values(shown_at=utc_now())
        )
        return await self._write(lambda conn: bool(conn.execute(stmt).rowcount))


# How long a connection waits for another's lock on the SQLite file before "database is locked".
SQLITE_BUSY_MS = 10_000


def _into_wal(cursor: sqlite3.Cursor) -> None:
    """PRAGMA journal_mode=WAL. While another process turns a new file to WAL (processes starting
    at once on a fresh store), SQLite refuses at once, without the busy wait: asked again until
    the busy timeout is over."""
    deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the worker, the CLI and the gateway share one file without "database is locked".
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    _into_wal(cursor)
    # In WAL mode NORMAL is still safe from corruption; it skips an fsync per commit, which is
    # most of the time a send or an event takes (a power loss may forget the last commits).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


async def open_store(database_url: str) -> ContactStore:
    """Connect, create the SQLite file's folder if needed, and apply pending migrations."""
    url = make_url(database_url)
    if url.get_dialect().is_async:
        raise ValueError(
            f"the contact store's URL names the asyncio driver '{url.get_driver_name()}'; the "
            "store runs blocking drivers on threads of its own: use sqlite:///path/to/file.db "
            "or postgresql+psycopg://user@host/db"
        )
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # SQLite takes one writer at a time; connections of one process queueing for the file's lock
    # sleep in its busy handler (p50 of an open-to-next-email went from 0.8 s to 0.13 s with one
    # connection). One connection per process makes them queue in order instead.
    connections = 1 if sqlite else POSTGRES_CONNECTIONS
    engine = create_engine(url, pool_size=connections, max_overflow=0)
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    store = ContactStore(engine, connections)
    try:
        await store._write(migrate)
    except BaseException:
        await store.close()
        raise
    return store
