"""The gateway's outbox in the store: every event the gateway records is kept in `held_events`,
in the same transaction, until Temporal has taken it (see gateway.outbox). Each function is one
unit of work on a connection; `ContactStore` runs it on its threads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from journeys.models import JourneyEvent
from journeys.store.rows import event_row, remembered, utc_now
from journeys.store.schema import events, held_events

# What every event does here, built once over bind parameters (an event's path runs them).
_RECORDED = insert(events)
_HELD = insert(held_events).returning(held_events.c.id)
_RELEASED = delete(held_events).where(held_events.c.id == bindparam("held"))


@dataclass(frozen=True)
class HeldEvent:
    """An event kept until Temporal takes it (see `ContactStore.keep_event`)."""

    id: int
    contact_id: str
    # The run it is for; None: the contact's runs, and the journeys it triggers.
    journey_id: str | None
    event: JourneyEvent
    attempts: int


def keep(
    conn: Connection,
    contact_id: str,
    journey_id: str | None,
    ev: JourneyEvent,
    lease: timedelta,
    once_id: str | None,
) -> HeldEvent:
    """Record the event and keep it, leased for `lease` to the caller; with `once_id`, raises
    IntegrityError if that id was kept before."""
    at = utc_now()
    if once_id is not None:
        conn.execute(remembered(once_id, contact_id))
    conn.execute(_RECORDED, event_row(contact_id, ev, journey_id))
    return hold(conn, contact_id, journey_id, ev, retry_at=at + lease)


def hold(
    conn: Connection, contact_id: str, journey_id: str | None, ev: JourneyEvent, retry_at: datetime
) -> HeldEvent:
    """Keep an event in the outbox, handed over from `retry_at` (without recording it in
    `events`: hygiene's `contact_merged` is for the runs of a contact that no longer exists)."""
    row = {
        "contact_id": contact_id,
        "journey_id": journey_id,
        "event": ev.model_dump(mode="json"),
        "held_at": utc_now(),
        "retry_at": retry_at,
        "attempts": 1,
    }
    held_id: int = conn.execute(_HELD, row).scalar_one()
    return HeldEvent(held_id, contact_id, journey_id, ev, attempts=1)


def claim_due(conn: Connection, lease: timedelta) -> HeldEvent | None:
    """The oldest kept event that is due, leased for `lease`; None when none is due."""
    at = utc_now()
    due = held_events.c.retry_at <= at
    row = conn.execute(
        select(held_events)
        .where(due)
        .order_by(held_events.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL: skip rows another process holds
    ).first()
    if row is None:
        return None
    # Still due when written: on SQLite another process may have claimed it since the read.
    taken = conn.execute(
        update(held_events)
        .where(held_events.c.id == row.id, due)
        .values(retry_at=at + lease, attempts=row.attempts + 1)
    )
    if taken.rowcount != 1:
        return None
    event = JourneyEvent.model_validate(row.event)
    return HeldEvent(row.id, row.contact_id, row.journey_id, event, row.attempts + 1)


def summary(conn: Connection) -> tuple[int, datetime | None]:
    """How many events are kept, and when the oldest was kept."""
    count, oldest = conn.execute(select(func.count(), func.min(held_events.c.held_at))).one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite keeps UTC without the zone
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), oldest


def release(conn: Connection, held_id: int) -> None:
    conn.execute(_RELEASED, {"held": held_id})


def put_off(conn: Connection, held_id: int, error: str, until: datetime) -> None:
    stmt = update(held_events).where(held_events.c.id == held_id)
    conn.execute(stmt.values(retry_at=until, last_error=error))
