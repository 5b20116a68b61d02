"""Lead grades in the store: each contact's grade as last computed (`lead_grades`), and the
behaviour counts branch conditions read from `events`. Each function is one unit of work on a
connection; `ContactStore` runs it on its threads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from journeys.events import GRADE_CHANGED
from journeys.leads.grading import GradingSpec, LeadGrade, grade, rounded
from journeys.models import JourneyEvent
from journeys.store import outbox
from journeys.store.outbox import HeldEvent
from journeys.store.rows import in_utc, utc_now
from journeys.store.schema import contacts, events, lead_grades


class KeptGrade(LeadGrade):
    """A contact's grade as the store keeps it: when it was computed and when it last changed."""

    computed_at: datetime
    changed_at: datetime


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


@dataclass(frozen=True)
class GradeChange:
    """A contact's grade changed (or was given for the first time: `before` None)."""

    contact_id: str
    before: str | None
    after: LeadGrade
    # The grade_changed event, recorded and kept in the outbox: whoever regraded hands it over
    # (the gateway at once), or the gateway's outbox does once its lease is over.
    held: HeldEvent


def regrade(
    conn: Connection,
    upsert: Any,
    contact_id: str,
    spec: GradingSpec,
    now: datetime,
    lease: timedelta,
) -> GradeChange | None:
    """Grade the contact at `now` from its attributes and its weighted events and keep the grade
    (`upsert`: the dialect's INSERT into `lead_grades`); when the grade changed, record a
    grade_changed event and keep it in the outbox, leased for `lease`, in the same transaction.
    None when the grade stayed, or there is no such contact."""
    now = in_utc(now)
    # Locked (PostgreSQL): two regrades of one contact at once would both see the old grade and
    # both record the change.
    attributes = conn.scalar(
        select(contacts.c.attributes).where(contacts.c.id == contact_id).with_for_update()
    )
    if attributes is None:
        return None
    weighted = conn.execute(
        select(events.c.kind, events.c.occurred_at).where(
            events.c.contact_id == contact_id,
            events.c.kind.in_(list(spec.weights)),
            events.c.occurred_at >= now - spec.horizon(),
        )
    ).all()
    after = grade(attributes, [(kind, in_utc(at)) for kind, at in weighted], spec, now)
    before = conn.scalar(select(lead_grades.c.grade).where(lead_grades.c.contact_id == contact_id))
    kept = {"grade": after.grade, "fit": after.fit, "score": after.score, "computed_at": now}
    if before != after.grade:
        kept["changed_at"] = now
    stmt = upsert.values({"contact_id": contact_id, "changed_at": now, **kept})
    conn.execute(stmt.on_conflict_do_update(index_elements=["contact_id"], set_=kept))
    if before == after.grade:
        return None
    event = JourneyEvent(
        kind=GRADE_CHANGED,
        occurred_at=now,
        data={"from": before, "to": after.grade, "score": rounded(after.score)},
        id=uuid.uuid4().hex,
    )
    held = outbox.keep(conn, contact_id, None, event, lease, once_id=None)
    return GradeChange(contact_id, before, after, held)


def contact_ids_after(conn: Connection, after_id: str | None, limit: int) -> list[str]:
    """The next `limit` contact ids after `after_id` (from the first when None), in id order."""
    query = select(contacts.c.id).order_by(contacts.c.id).limit(limit)
    if after_id is not None:
        query = query.where(contacts.c.id > after_id)
    return list(conn.scalars(query))


def lead_grade_of(conn: Connection, contact_id: str) -> KeptGrade | None:
    row = conn.execute(select(lead_grades).where(lead_grades.c.contact_id == contact_id)).first()
    if row is None:
        return None
    return KeptGrade(
        grade=row.grade,
        fit=row.fit,
        score=row.score,
        computed_at=in_utc(row.computed_at),
        changed_at=in_utc(row.changed_at),
    )
