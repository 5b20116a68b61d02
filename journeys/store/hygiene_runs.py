"""What a hygiene run reads besides the rules' inputs (journeys.store.hygiene): who of a group of
duplicates is who now (and since when), and what the run changed, counted from the audit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, select

from journeys.hygiene.changes import ChangeKind
from journeys.store.rows import in_utc
from journeys.store.schema import contact_aliases, contacts, hygiene_changes


def members(conn: Connection, contact_ids: Sequence[str]) -> list[tuple[str, datetime]]:
    """The contacts `contact_ids` are now, each once, with when they were created: an id merged
    away (by an earlier group of the same run) stands for its survivor."""
    aliases = select(contact_aliases.c.merged_id, contact_aliases.c.survivor_id).where(
        contact_aliases.c.merged_id.in_(contact_ids)
    )
    now_named = {r.merged_id: r.survivor_id for r in conn.execute(aliases)}
    ids = {now_named.get(i, i) for i in contact_ids}
    rows = conn.execute(select(contacts.c.id, contacts.c.created_at).where(contacts.c.id.in_(ids)))
    return sorted((r.id, in_utc(r.created_at)) for r in rows)


def counts(conn: Connection, run_id: str) -> dict[ChangeKind, int]:
    """How many changes of each kind hygiene run `run_id` made."""
    query = (
        select(hygiene_changes.c.kind, func.count())
        .where(hygiene_changes.c.run_id == run_id)
        .group_by(hygiene_changes.c.kind)
    )
    return {kind: n for kind, n in conn.execute(query)}


def latest_run(conn: Connection) -> str | None:
    """The hygiene run that changed something last (None: none has yet)."""
    query = (
        select(hygiene_changes.c.run_id)
        .order_by(hygiene_changes.c.changed_at.desc(), hygiene_changes.c.id.desc())
        .limit(1)
    )
    found: str | None = conn.execute(query).scalar()
    return found
