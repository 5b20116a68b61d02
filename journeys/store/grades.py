"""Lead grades in the store: each contact's grade as last computed (`lead_grades`), and the
behaviour counts branch conditions read from `events`. Each function is one unit of work on a
connection; `ContactStore` runs it on its threads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from journeys.store.rows import in_utc, utc_now
from journeys.store.schema import events, lead_grades


def grade_and_score(conn: Connection, contact_id: str) -> tuple[str | None, float | None]:
    """The contact's grade and score as last computed; (None, None) before the first."""
    row = conn.execute(
        select(lead_grades.c.grade, lead_grades.c.score).where(
            lead_grades.c.contact_id == contact_id
        )
    ).first()
    return (row.grade, row.score) if row else (None, None)


def counts(
    conn: Connection, contact_id: str, keys: Sequence[str], at: datetime | None
) -> dict[str, int]:
    """For each `<kind>/<days>` key, how many of the contact's events of that kind happened in
    the `days` days up to `at` (after `at - days`, up to and including `at`)."""
    end = in_utc(at or utc_now())
    found: dict[str, int] = {}
    for key in keys:
        kind, _, days = key.rpartition("/")
        found[key] = conn.execute(
            select(func.count()).where(
                events.c.contact_id == contact_id,
                events.c.kind == kind,
                events.c.occurred_at > end - timedelta(days=int(days)),
                events.c.occurred_at <= end,
            )
        ).scalar_one()
    return found
