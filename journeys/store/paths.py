"""Each journey entry's path as its run records it (journeys.models.PathRecord): the rows the
journey reports count. Each function is one unit of work on a connection."""

from __future__ import annotations

from sqlalchemy import Connection, select

from journeys.models import PathRecord, VisitRecord
from journeys.store.rows import in_utc, in_utc_or_none, upsert
from journeys.store.schema import journey_entries, journey_visits

# What a visit recorded again may complete: it was left, and where to, since the last record.
_VISIT_UPDATED = ("left_at", "outcome", "next_step", "variant")


def record(conn: Connection, path: PathRecord, dialect: str) -> None:
    """Upsert the entry and the visits `path` carries (in `dialect`, the store's, for its
    on-conflict clause): the visits as one statement executed for each. An end, once
    recorded, stays."""
    ended = ("ended_at", "end_reason") if path.ended_at is not None else ()
    conn.execute(
        upsert(dialect, journey_entries, ("entry_id",), ended),
        {
            "entry_id": path.entry_id,
            "workflow_id": path.workflow_id,
            "journey_id": path.journey_id,
            "version": path.version,
            "contact_id": path.contact_id,
            "entered_at": in_utc(path.entered_at),
            "goal_until": in_utc_or_none(path.goal_until),
            "ended_at": in_utc_or_none(path.ended_at),
            "end_reason": path.end_reason,
        },
    )
    if not path.visits:
        return
    conn.execute(
        upsert(dialect, journey_visits, ("entry_id", "n"), _VISIT_UPDATED),
        [
            {
                "entry_id": path.entry_id,
                "n": v.n,
                "journey_id": path.journey_id,
                "step_id": v.step,
                "entered_at": in_utc(v.entered_at),
                "left_at": in_utc_or_none(v.left_at),
                "outcome": (v.outcome or "")[:200] or None,
                "next_step": v.next_step,
                "variant": v.variant,
            }
            for v in path.visits
        ],
    )


def of_contact(conn: Connection, contact_id: str) -> list[PathRecord]:
    """Every entry of `contact_id` with its visits in order, latest entry first: the contact's
    page of the dashboard."""
    entries = conn.execute(
        select(journey_entries)
        .where(journey_entries.c.contact_id == contact_id)
        .order_by(journey_entries.c.entered_at.desc(), journey_entries.c.entry_id)
    ).all()
    visits: dict[str, list[VisitRecord]] = {e.entry_id: [] for e in entries}
    if visits:
        query = (
            select(journey_visits)
            .where(journey_visits.c.entry_id.in_(list(visits)))
            .order_by(journey_visits.c.entry_id, journey_visits.c.n)
        )
        for v in conn.execute(query):
            visits[v.entry_id].append(
                VisitRecord(
                    n=v.n,
                    step=v.step_id,
                    entered_at=in_utc(v.entered_at),
                    left_at=in_utc_or_none(v.left_at),
                    outcome=v.outcome,
                    next_step=v.next_step,
                    variant=v.variant,
                )
            )
    return [
        PathRecord(
            entry_id=e.entry_id,
            workflow_id=e.workflow_id,
            journey_id=e.journey_id,
            version=e.version,
            contact_id=e.contact_id,
            entered_at=in_utc(e.entered_at),
            goal_until=in_utc_or_none(e.goal_until),
            visits=visits[e.entry_id],
            ended_at=in_utc_or_none(e.ended_at),
            end_reason=e.end_reason,
        )
        for e in entries
    ]
