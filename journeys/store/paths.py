"""Each journey entry's path as its run records it (journeys.models.PathRecord): the rows the
journey reports count. Each function is one unit of work on a connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from journeys.models import PathRecord
from journeys.store.rows import in_utc
from journeys.store.schema import journey_entries, journey_visits


def _utc(t: Any) -> Any:
    return None if t is None else in_utc(t)


def record(conn: Connection, path: PathRecord, insert: Callable[[Any], Any]) -> None:
    """Upsert the entry and the visits `path` carries (`insert`: the dialect's insert, for its
    on-conflict clause). An end, once recorded, stays."""
    entry = insert(journey_entries).values(
        entry_id=path.entry_id,
        workflow_id=path.workflow_id,
        journey_id=path.journey_id,
        version=path.version,
        contact_id=path.contact_id,
        entered_at=in_utc(path.entered_at),
        goal_until=_utc(path.goal_until),
        ended_at=_utc(path.ended_at),
        end_reason=path.end_reason,
    )
    if path.ended_at is None:
        conn.execute(entry.on_conflict_do_nothing(index_elements=["entry_id"]))
    else:
        conn.execute(
            entry.on_conflict_do_update(
                index_elements=["entry_id"],
                set_={"ended_at": entry.excluded.ended_at, "end_reason": entry.excluded.end_reason},
            )
        )
    if not path.visits:
        return
    visits = insert(journey_visits).values(
        [
            {
                "entry_id": path.entry_id,
                "n": v.n,
                "journey_id": path.journey_id,
                "step_id": v.step,
                "entered_at": in_utc(v.entered_at),
                "left_at": _utc(v.left_at),
                "outcome": (v.outcome or "")[:200] or None,
                "next_step": v.next_step,
                "variant": v.variant,
            }
            for v in path.visits
        ]
    )
    conn.execute(
        visits.on_conflict_do_update(
            index_elements=["entry_id", "n"],
            set_={c: visits.excluded[c] for c in ("left_at", "outcome", "next_step", "variant")},
        )
    )
