"""Rows and statements more than one part of the store writes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from journeys.models import JourneyEvent
from journeys.store.schema import processed_events

# A send's ledger row from its claim until the message is handed over to the provider: nothing
# has left, so whoever holds the claim next sends.
CLAIMED = "claimed"
# Handed over, the outcome not yet recorded: it may have gone out.
SENDING = "sending"


@dataclass(frozen=True)
class Claim:
    """What claiming a send found. `held`: this attempt holds the key under number `attempt`,
    taken from `status`: `claimed` (send) or `sending` (an earlier attempt handed the message
    over and its outcome is unknown: reconcile). Not held: `sent` or `failed` (final), or
    `claimed`/`sending` taken over by another attempt at the same moment."""

    status: str
    attempt: int
    held: bool


@functools.cache
def upsert(dialect: str, table: Table, keys: tuple[str, ...], updated: tuple[str, ...]) -> Any:
    """INSERT into `table` in `dialect` (its name) that, for a row whose `keys` are there, sets
    the `updated` columns from the new row, or does nothing when there are none; its values are
    the parameters it is executed with. Built once: building a statement per call was most of
    the CPU of the store's writes on an event's path (the SQL itself about a tenth)."""
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    if not updated:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={column: stmt.excluded[column] for column in updated}
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def in_utc(t: datetime) -> datetime:
    """Aware and in UTC: SQLite keeps a time's wall clock without its zone (and compares them as
    text), so every time is written in UTC and read back as UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def in_utc_or_none(t: datetime | str | None) -> datetime | None:
    """`in_utc` of a column that may be null; text too (SQLite returns an aggregate's time as
    text: no column type reaches it through MAX)."""
    if t is None:
        return None
    return in_utc(datetime.fromisoformat(t) if isinstance(t, str) else t)


def event_row(contact_id: str, ev: JourneyEvent, journey_id: str | None = None) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "kind": ev.kind,
        "step_id": ev.step,
        "journey_id": journey_id,
        # In UTC: SQLite would keep the wall clock of another offset, and windows over
        # `occurred_at` (behaviour counts) compare it.
        "occurred_at": in_utc(ev.occurred_at),
        "data": ev.data,
    }


def remembered(event_id: str, contact_id: str) -> Any:
    """Remembering an event id; fails (IntegrityError) for an id seen before."""
    return insert(processed_events).values(
        event_id=event_id, contact_id=contact_id, created_at=utc_now()
    )
