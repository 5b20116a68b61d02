"""The team in the store: the people plans are run with. Each function is one unit of work on a
connection; `ContactStore` runs it on its threads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from journeys.plans.people import Person
from journeys.store.rows import utc_now
from journeys.store.schema import people


def _row(person: Person) -> dict[str, Any]:
    return {
        **person.model_dump(exclude={"working_days", "starts", "ends"}),
        "working_days": sorted(person.working_days),
        "starts": person.starts.isoformat("minutes"),
        "ends": person.ends.isoformat("minutes"),
    }


def _person(row: RowMapping) -> Person:
    """As stored, without validating again (a rule added later never makes it unreadable)."""
    return Person.model_construct(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        roles=list(row["roles"]),
        time_zone=row["time_zone"],
        working_days=frozenset(row["working_days"]),
        starts=time.fromisoformat(row["starts"]),
        ends=time.fromisoformat(row["ends"]),
    )


def upsert(conn: Connection, insert: Any, batch: Sequence[Person]) -> None:
    """Insert or replace `batch`; `insert` is the dialect's INSERT into `people` (an upsert is
    spelt the same on SQLite and PostgreSQL, but built by each dialect's own insert)."""
    now = utc_now()
    stmt = insert.values([{**_row(p), "created_at": now, "updated_at": now} for p in batch])
    replaced = [c for c in _row(batch[0]) if c != "id"] + ["updated_at"]
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"], set_={c: stmt.excluded[c] for c in replaced}
        )
    )


def one(conn: Connection, person_id: str) -> Person | None:
    row = conn.execute(select(people).where(people.c.id == person_id)).first()
    return _person(row._mapping) if row else None


def everyone(conn: Connection) -> list[Person]:
    return [_person(r._mapping) for r in conn.execute(select(people).order_by(people.c.id))]
