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
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import IntegrityError

from journeys.contacts import Contact
from journeys.models import ContactFacts, JourneyEvent, SendRequest
from journeys.store import outbox
from journeys.store.migrations import migrate
from journeys.store.outbox import HeldEvent
from journeys.store.rows import CLAIMED, SENDING, Claim, event_row, remembered, utc_now
from journeys.store.schema import (
    audience_memberships,
    contacts,
    deliveries,
    events,
    nps_answers,
    onsite_messages,
    processed_events,
    push_subscriptions,
    suppressions,
    tags,
)

T = TypeVar("T")
# PostgreSQL connections (and threads) per process.
POSTGRES_CONNECTIONS = 10


def _contact_of(row: RowMapping) -> Contact:
    """The Contact in a row of `contacts` (other columns of a join are left out)."""
    return Contact.model_validate({k: row[k] for k in Contact.model_fields})


def _recipient(conn: Connection, contact_id: str) -> tuple[Contact | None, set[str]]:
    query = (
        select(contacts, suppressions.c.channel.label("suppressed_on"))
        .outerjoin(suppressions, suppressions.c.contact_id == contacts.c.id)
        .where(contacts.c.id == contact_id)
    )
    rows = conn.execute(query).all()
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

    def _insert(self, table: Any) -> Any:
        dialect = self.engine.dialect.name
        return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)

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
        rows = [{**c.model_dump(), "created_at": now, "updated_at": now} for c in batch]
        stmt = self._insert(contacts).values(rows)
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
        await self._write(lambda conn: conn.execute(stmt))

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

    async def facts(self, contact_id: str) -> ContactFacts:
        def read(conn: Connection) -> ContactFacts:
            contact, suppressed = _recipient(conn, contact_id)
            if contact is None:
                return ContactFacts(contact_id=contact_id)
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
        row = {**req.model_dump(), "status": CLAIMED, "attempt": 1}
        fresh = self._insert(deliveries).values(**row, created_at=now, updated_at=now)
        current = select(deliveries.c.status, deliveries.c.attempt).where(
            deliveries.c.key == req.key
        )

        def claim(conn: Connection) -> Claim:
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here.
            if conn.execute(fresh.on_conflict_do_nothing().returning(deliveries.c.key)).first():
                return Claim(CLAIMED, 1, held=True)
            status, attempt = conn.execute(current).one()
            if status not in (CLAIMED, SENDING):
                return Claim(status, attempt, held=False)
            take_over = (
                update(deliveries)
                .where(
                    and_(
                        deliveries.c.key == req.key,
                        deliveries.c.status == status,
                        deliveries.c.attempt == attempt,
                    )
                )
                .values(attempt=attempt + 1, updated_at=utc_now())
            )
            held = bool(conn.execute(take_over).rowcount)
            return Claim(status, attempt + 1 if held else attempt, held=held)

        return await self._write(claim)

    async def hand_over_delivery(
        self, key: str, attempt: int, fingerprint: str | None = None
    ) -> bool:
        """The message is about to leave: `sending` from now on. False (and nothing changed)
        when `attempt` no longer holds the claim: a later attempt took it over, so this one must
        not send."""
        stmt = (
            update(deliveries)
            .where(
                and_(
                    deliveries.c.key == key,
                    deliveries.c.attempt == attempt,
                    deliveries.c.status.in_((CLAIMED, SENDING)),
                )
            )
            .values(status=SENDING, fingerprint=fingerprint, updated_at=utc_now())
        )
        return await self._write(lambda conn: bool(conn.execute(stmt).rowcount))

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
        stmt = (
            update(deliveries)
            .where(and_(deliveries.c.key == key, deliveries.c.attempt == attempt))
            .values(
                status=status,
                provider_id=provider_id,
                error=error,
                reconciled=reconciled,
                updated_at=utc_now(),
            )
        )
        return await self._write(lambda conn: bool(conn.execute(stmt).rowcount))

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

    # events -----------------------------------------------------------------------------------

    async def record_event(self, contact_id: str, ev: JourneyEvent) -> None:
        stmt = insert(events).values(**event_row(contact_id, ev))
        await self._write(lambda conn: conn.execute(stmt))

    @contextlib.asynccontextmanager
    async def first_time(self, event_id: str, contact_id: str) -> AsyncIterator[bool]:
        """Whether `event_id` is new; if the block handling it fails, the id is forgotten again so
        a retry is handled rather than taken for a duplicate."""
        fresh = await self.first_time_event(event_id, contact_id)
        try:
            yield fresh
        except BaseException:
            if fresh:
                await self.forget_event(event_id)
            raise

    async def first_time_event(self, event_id: str, contact_id: str) -> bool:
        """Remember an event id; False when it was seen before (a retried call)."""
        stmt = remembered(event_id, contact_id)
        try:
            await self._write(lambda conn: conn.execute(stmt))
            return True
        except IntegrityError:
            return False

    async def forget_event(self, event_id: str) -> None:
        """Undo `first_time_event` for an event that could not be delivered, so a retry is not
        taken for a duplicate."""
        stmt = delete(processed_events).where(processed_events.c.event_id == event_id)
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

    async def suppress(self, contact_id: str, channel: str, reason: str) -> None:
        stmt = self._insert(suppressions).values(
            contact_id=contact_id, channel=channel, reason=reason, created_at=utc_now()
        )
        await self._write(lambda conn: conn.execute(stmt.on_conflict_do_nothing()))

    async def unsuppress(self, contact_id: str, channel: str) -> None:
        stmt = delete(suppressions).where(
            and_(suppressions.c.contact_id == contact_id, suppressions.c.channel == channel)
        )
        await self._write(lambda conn: conn.execute(stmt))

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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the worker, the CLI and the gateway share one file without "database is locked".
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL is still safe from corruption; it skips an fsync per commit, which is
    # most of the time a send or an event takes (a power loss may forget the last commits).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
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
