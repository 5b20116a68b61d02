"""Data hygiene in the store: the contacts a run reads, the changes it applies with their audit
rows, duplicate groups, and merges (see journeys.hygiene). Each function is one unit of work on
a connection (one transaction per contact); `ContactStore` runs it on its threads. `insert` is
the dialect's INSERT (it has ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Delete,
    Table,
    Update,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)

from journeys.channels import MARKETING
from journeys.events import CONTACT_MERGED
from journeys.hygiene.changes import HygieneChange
from journeys.hygiene.rules import ENGAGEMENT, SUNSET, Candidate, DuplicateGroup, merged_consent
from journeys.models import JourneyEvent
from journeys.store import outbox
from journeys.store.rows import in_utc, in_utc_or_none, utc_now
from journeys.store.schema import (
    audience_memberships,
    contact_aliases,
    contacts,
    deliveries,
    events,
    hygiene_changes,
    lead_grades,
    nps_answers,
    onsite_messages,
    opt_changes,
    plan_runs,
    processed_events,
    push_subscriptions,
    send_checks,
    suppressions,
    tags,
)

Insert = Callable[[Table], Any]

# The reason of the suppression on MARKETING a sunset adds (sunset_lifted removes only that).
SUNSET_REASON = "sunset"

# What a merge does to the merged contact's other rows, in order, as statements built once
# (building them is most of a merge's time) over the parameters `merged` and `survivor`.
_MERGED: BindParameter[str] = bindparam("merged")
_SURVIVOR: BindParameter[str] = bindparam("survivor")


def _moved(table: Table) -> Update:
    """The merged contact's rows of `table` are the survivor's."""
    stmt = update(table).where(table.c.contact_id == _MERGED)
    return stmt.values(contact_id=_SURVIVOR)


def _united(table: Table, *keys: str) -> tuple[Update, Delete]:
    """The merged contact's rows of `table` (keyed by the contact and `keys`) are the survivor's,
    but for those the survivor has already (its own is kept, the other dropped)."""
    theirs = table.alias("theirs")
    had = exists().where(
        theirs.c.contact_id == _SURVIVOR, *(theirs.c[k] == table.c[k] for k in keys)
    )
    stmt = update(table).where(table.c.contact_id == _MERGED, ~had)
    return stmt.values(contact_id=_SURVIVOR), delete(table).where(table.c.contact_id == _MERGED)


_MERGE_ROWS: tuple[Update | Delete, ...] = (
    *(
        _moved(t)
        for t in (events, deliveries, send_checks, nps_answers, onsite_messages, plan_runs)
    ),
    *_united(tags, "tag"),
    *_united(audience_memberships, "audience"),
    *_united(suppressions, "channel"),
    *_united(processed_events, "event_id"),
    *_united(push_subscriptions, "kind", "endpoint"),
    delete(lead_grades).where(lead_grades.c.contact_id == _MERGED),
    # Aliases resolve in one step: those that pointed at the merged id follow it.
    update(contact_aliases)
    .where(contact_aliases.c.survivor_id == _MERGED)
    .values(survivor_id=_SURVIVOR),
)


def candidates(conn: Connection, after_id: str | None, limit: int) -> list[Candidate]:
    """Up to `limit` contacts with ids after `after_id`, in id order, with their latest
    engagement and when they were sunset."""
    engaged = (
        select(func.max(events.c.occurred_at))
        .where(events.c.contact_id == contacts.c.id, events.c.kind.in_(sorted(ENGAGEMENT)))
        .scalar_subquery()
    )
    sunset_at = (
        select(tags.c.added_at)
        .where(tags.c.contact_id == contacts.c.id, tags.c.tag == SUNSET)
        .scalar_subquery()
    )
    query = (
        select(
            contacts.c.id,
            contacts.c.email,
            contacts.c.phone,
            contacts.c.attributes,
            contacts.c.created_at,
            engaged.label("last_engaged_at"),
            sunset_at.label("sunset_at"),
        )
        .order_by(contacts.c.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(contacts.c.id > after_id)
    found = []
    for row in conn.execute(query):
        country = row.attributes.get("country")
        found.append(
            Candidate(
                id=row.id,
                email=row.email,
                phone=row.phone,
                country=country if isinstance(country, str) else None,
                created_at=in_utc(row.created_at),
                last_engaged_at=in_utc_or_none(row.last_engaged_at),
                sunset=row.sunset_at is not None,
                sunset_at=in_utc_or_none(row.sunset_at),
            )
        )
    return found


def apply(conn: Connection, insert: Insert, changes: Sequence[HygieneChange]) -> int:
    """Apply one contact's changes with their audit rows; a change audited before (a retried
    batch) or that no longer fits the row (changed since it was read, or gone) is skipped.
    How many were applied."""
    applied = 0
    for change in changes:
        audit = insert(hygiene_changes).values(
            run_id=change.run_id,
            contact_id=change.contact_id,
            kind=change.kind,
            detail=change.model_dump(mode="json")["detail"],
            changed_at=in_utc(change.changed_at),
        )
        if conn.execute(audit.on_conflict_do_nothing().returning(hygiene_changes.c.id)).first():
            if _apply_one(conn, insert, change):
                applied += 1
            else:
                conn.execute(
                    delete(hygiene_changes).where(
                        hygiene_changes.c.run_id == change.run_id,
                        hygiene_changes.c.contact_id == change.contact_id,
                        hygiene_changes.c.kind == change.kind,
                    )
                )
    return applied


def _apply_one(conn: Connection, insert: Insert, change: HygieneChange) -> bool:
    contact_id, at, detail = change.contact_id, in_utc(change.changed_at), change.detail
    row = contacts.c.id == contact_id
    stmt: Update | Delete
    if change.kind in ("phone_normalised", "phone_invalid"):
        stmt = update(contacts).where(row, contacts.c.phone == detail["before"])
        stmt = stmt.values(phone=detail.get("after"), updated_at=at)
    elif change.kind in ("email_invalid", "email_undeliverable"):
        stmt = update(contacts).where(row, contacts.c.email == detail["before"])
        stmt = stmt.values(email=None, updated_at=at)
    elif change.kind == "sunset":
        if conn.execute(select(contacts.c.id).where(row)).first() is None:
            return False
        tag = insert(tags).values(contact_id=contact_id, tag=SUNSET, added_at=at)
        conn.execute(tag.on_conflict_do_nothing())
        suppression = insert(suppressions).values(
            contact_id=contact_id, channel=MARKETING, reason=SUNSET_REASON, created_at=at
        )
        conn.execute(suppression.on_conflict_do_nothing())
        return True
    elif change.kind == "sunset_lifted":
        # Only the suppression sunset made: an unsubscribe from marketing stays.
        conn.execute(
            delete(suppressions).where(
                suppressions.c.contact_id == contact_id,
                suppressions.c.channel == MARKETING,
                suppressions.c.reason == SUNSET_REASON,
            )
        )
        stmt = delete(tags).where(tags.c.contact_id == contact_id, tags.c.tag == SUNSET)
    else:
        raise ValueError(f"hygiene change '{change.kind}' is not applied this way (merges: merge)")
    return bool(conn.execute(stmt).rowcount)


def duplicate_groups(conn: Connection, after_key: str | None, limit: int) -> list[DuplicateGroup]:
    """Up to `limit` groups of contacts sharing a lower-case email or a phone, keys after
    `after_key` in key order (every `email:` key comes before every `phone:` key)."""
    found: list[DuplicateGroup] = []
    kinds = (("email", func.lower(contacts.c.email)), ("phone", contacts.c.phone))
    for kind, value in kinds:
        prefix = f"{kind}:"
        if after_key is not None and after_key[: len(prefix)] > prefix:
            continue  # the page starts after every key of this kind
        query = (
            select(value.label("value"))
            .where(value.is_not(None))
            .group_by(value)
            .having(func.count() > 1)
            .order_by(value)
            .limit(limit - len(found))
        )
        if after_key is not None and after_key.startswith(prefix):
            query = query.where(value > after_key[len(prefix) :])
        values = [r.value for r in conn.execute(query)]
        members: dict[str, list[str]] = {v: [] for v in values}
        if values:
            rows = conn.execute(
                select(contacts.c.id, value.label("value"))
                .where(value.in_(values))
                .order_by(contacts.c.id)
            )
            for r in rows:
                members[r.value].append(r.id)
        found += [DuplicateGroup(key=prefix + v, contact_ids=members[v]) for v in values]
        if len(found) >= limit:
            break
    return found


def _survivor_of(conn: Connection, contact_id: str) -> str:
    query = select(contact_aliases.c.survivor_id).where(contact_aliases.c.merged_id == contact_id)
    return conn.execute(query).scalar() or contact_id


def merge(
    conn: Connection,
    insert: Insert,
    run_id: str,
    survivor_id: str,
    merged_id: str,
    because: str,
    now: datetime,
) -> bool:
    """Merge contact `merged_id` into `survivor_id` (or into whom that was merged into): False,
    changing nothing, when either is gone or they are one."""
    now = in_utc(now)
    survivor_id = _survivor_of(conn, survivor_id)
    if survivor_id == merged_id:
        return False
    both = (
        select(contacts)
        .where(contacts.c.id.in_((survivor_id, merged_id)))
        .order_by(contacts.c.id)  # locked in one order, so two merges cannot deadlock
        .with_for_update()
    )
    rows = {r.id: r for r in conn.execute(both)}
    if survivor_id not in rows or merged_id not in rows:
        return False
    kept, gone = rows[survivor_id], rows[merged_id]
    conn.execute(
        update(contacts)
        .where(contacts.c.id == survivor_id)
        .values(
            email=kept.email or gone.email,
            phone=kept.phone or gone.phone,
            attributes={**gone.attributes, **kept.attributes},
            consent=merged_consent(kept.consent, gone.consent),
            in_mobile_app=kept.in_mobile_app or gone.in_mobile_app,
            web_push=kept.web_push or gone.web_push,
            updated_at=now,
        )
    )
    for stmt in _MERGE_ROWS:
        conn.execute(stmt, {"merged": merged_id, "survivor": survivor_id})
    _keep_later_opt_changes(conn, insert, survivor_id, merged_id)
    # An id merged before may be back (imported at the moment of its merge): it goes again.
    alias = {"survivor_id": survivor_id, "run_id": run_id, "merged_at": now}
    stmt = insert(contact_aliases).values(merged_id=merged_id, **alias)
    conn.execute(stmt.on_conflict_do_update(index_elements=["merged_id"], set_=alias))
    conn.execute(delete(contacts).where(contacts.c.id == merged_id))
    conn.execute(
        insert(hygiene_changes)
        .values(
            run_id=run_id,
            contact_id=merged_id,
            kind="merged",
            detail={"into": survivor_id, "because": because},
            changed_at=now,
        )
        .on_conflict_do_nothing()
    )
    # The merged-away contact's running journeys end on it (the gateway hands it over).
    ev = JourneyEvent(
        kind=CONTACT_MERGED,
        occurred_at=now,
        data={"into": survivor_id},
        id=f"{CONTACT_MERGED}:{run_id}:{merged_id}",
    )
    outbox.hold(conn, merged_id, None, ev, retry_at=utc_now())
    return True


def _keep_later_opt_changes(
    conn: Connection, insert: Insert, survivor_id: str, merged_id: str
) -> None:
    """Per channel the later STOP or START of the two, so an older one handled later still
    cannot undo it."""
    mine = opt_changes.c.contact_id == merged_id
    for row in conn.execute(select(opt_changes).where(mine)).all():
        stmt = insert(opt_changes).values(
            contact_id=survivor_id,
            channel=row.channel,
            opted_out=row.opted_out,
            changed_at=row.changed_at,
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["contact_id", "channel"],
                set_={"opted_out": row.opted_out, "changed_at": row.changed_at},
                where=opt_changes.c.changed_at < stmt.excluded.changed_at,
            )
        )
    conn.execute(delete(opt_changes).where(mine))


def changes_since(conn: Connection, since: datetime | None, limit: int) -> list[HygieneChange]:
    """The audit, oldest first, from `since` on."""
    query = select(hygiene_changes).order_by(hygiene_changes.c.changed_at, hygiene_changes.c.id)
    if since is not None:
        query = query.where(hygiene_changes.c.changed_at >= in_utc(since))
    return [_change(r) for r in conn.execute(query.limit(limit))]


def changes_of(conn: Connection, run_id: str, limit: int) -> list[HygieneChange]:
    """What hygiene run `run_id` changed, oldest first (at most `limit` rows)."""
    query = (
        select(hygiene_changes)
        .where(hygiene_changes.c.run_id == run_id)
        .order_by(hygiene_changes.c.changed_at, hygiene_changes.c.id)
        .limit(limit)
    )
    return [_change(r) for r in conn.execute(query)]


def _change(row: Any) -> HygieneChange:
    return HygieneChange(
        run_id=row.run_id,
        contact_id=row.contact_id,
        kind=row.kind,
        detail=row.detail,
        changed_at=in_utc(row.changed_at),
    )


def resolved(conn: Connection, contact_ids: Sequence[str]) -> dict[str, str]:
    """The survivor of each of `contact_ids` that was merged away."""
    query = select(contact_aliases.c.merged_id, contact_aliases.c.survivor_id).where(
        contact_aliases.c.merged_id.in_(contact_ids)
    )
    return {r.merged_id: r.survivor_id for r in conn.execute(query)}
