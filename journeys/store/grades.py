"""Lead grades in the store: each contact's grade as last computed (`lead_grades`), and the
behaviour counts branch conditions read from `events`. Each function is one unit of work on a
connection; `ContactStore` runs it on its threads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, Connection, bindparam, func, select

from journeys.events import GRADE_CHANGED
from journeys.leads.grading import GradingSpec, LeadGrade, grade, rounded
from journeys.models import JourneyEvent
from journeys.store import outbox
from journeys.store.outbox import HeldEvent
from journeys.store.rows import in_utc, upsert, utc_now
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


# What a regrade reads, built once over bind parameters (a regrade follows every event).
_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
# Locked (PostgreSQL): two regrades of one contact at once would both see the old grade and
# both record the change.
_GRADED = (
    select(contacts.c.id, contacts.c.attributes)
    .where(contacts.c.id.in_(_IDS))
    .order_by(contacts.c.id)
    .with_for_update()
)
_WEIGHTED = select(events.c.contact_id, events.c.kind, events.c.occurred_at).where(
    events.c.contact_id.in_(_IDS),
    events.c.kind.in_(bindparam("kinds", expanding=True)),
    events.c.occurred_at >= bindparam("since"),
)
_BEFORE = select(lead_grades.c.contact_id, lead_grades.c.grade).where(
    lead_grades.c.contact_id.in_(_IDS)
)


def regrade(
    conn: Connection,
    dialect: str,
    contact_ids: Sequence[str],
    spec: GradingSpec,
    now: datetime,
    lease: timedelta,
) -> list[GradeChange]:
    """Grade the contacts at `now` from their attributes and their weighted events and keep the
    grades (in `dialect`, the store's, for the upsert); for each grade that changed, record a
    grade_changed event and keep it in the outbox, leased for `lease`, in the same
    transaction. The changes; a contact that does not exist is none. A few statements for the
    whole batch: the schedule regrades a hundred thousand contacts in batches of hundreds."""
    now = in_utc(now)
    found = conn.execute(_GRADED, {"ids": list(contact_ids)}).all()
    if not found:
        return []
    ids = [row.id for row in found]
    weighted: dict[str, list[tuple[str, datetime]]] = {contact_id: [] for contact_id in ids}
    params = {"ids": ids, "kinds": list(spec.weights), "since": now - spec.horizon()}
    for contact_id, kind, at in conn.execute(_WEIGHTED, params):
        weighted[contact_id].append((kind, in_utc(at)))
    before: dict[str, str] = dict(conn.execute(_BEFORE, {"ids": ids}).all())
    graded = {row.id: grade(row.attributes, weighted[row.id], spec, now) for row in found}
    # The grade, fit and score always; when it last changed only when it changed now.
    for changed in (False, True):
        rows = [
            {
                "contact_id": contact_id,
                "grade": after.grade,
                "fit": after.fit,
                "score": after.score,
                "computed_at": now,
                "changed_at": now,
            }
            for contact_id, after in graded.items()
            if (before.get(contact_id) != after.grade) == changed
        ]
        if rows:
            columns: tuple[str, ...] = ("grade", "fit", "score", "computed_at")
            columns += ("changed_at",) if changed else ()
            conn.execute(upsert(dialect, lead_grades, ("contact_id",), columns), rows)
    changes = []
    for contact_id, after in graded.items():
        if before.get(contact_id) == after.grade:
            continue
        event = JourneyEvent(
            kind=GRADE_CHANGED,
            occurred_at=now,
            data={"from": before.get(contact_id), "to": after.grade, "score": rounded(after.score)},
            id=uuid.uuid4().hex,
        )
        held = outbox.keep(conn, contact_id, None, event, lease, once_id=None)
        changes.append(GradeChange(contact_id, before.get(contact_id), after, held))
    return changes


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
