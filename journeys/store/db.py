"""Queries over the contact store (SQLAlchemy Core, async; SQLite file or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from journeys.contacts import Contact
from journeys.models import ContactFacts, JourneyEvent, SendRequest
from journeys.store.migrations import migrate
from journeys.store.schema import audience_memberships, contacts, deliveries, events, tags


def _now() -> datetime:
    return datetime.now(UTC)


class ContactStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _insert(self, table: Any) -> Any:
        dialect = self.engine.dialect.name
        return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)

    async def close(self) -> None:
        await self.engine.dispose()

    # contacts -------------------------------------------------------------------------------

    async def upsert_contacts(self, batch: Sequence[Contact]) -> None:
        """Insert or replace the given contacts in one transaction."""
        if not batch:
            return
        now = _now()
        rows = [{**c.model_dump(), "created_at": now, "updated_at": now} for c in batch]
        stmt = self._insert(contacts).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                col: stmt.excluded[col]
                for col in (
                    "email",
                    "phone",
                    "time_zone",
                    "locale",
                    "attributes",
                    "consent",
                    "in_mobile_app",
                    "web_push",
                    "updated_at",
                )
            },
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def get_contact(self, contact_id: str) -> Contact | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(contacts).where(contacts.c.id == contact_id))).first()
        if row is None:
            return None
        return Contact.model_validate(
            {k: v for k, v in row._mapping.items() if k not in ("created_at", "updated_at")}
        )

    async def facts(self, contact_id: str) -> ContactFacts:
        contact = await self.get_contact(contact_id)
        if contact is None:
            return ContactFacts(contact_id=contact_id, found=False)
        return ContactFacts(
            contact_id=contact_id,
            has_email=bool(contact.email),
            has_phone=bool(contact.phone),
            time_zone=contact.time_zone,
            locale=contact.locale,
            consent=contact.consent,
            in_mobile_app=contact.in_mobile_app,
            web_push=contact.web_push,
            tags=await self.tags_of(contact_id),
            audiences=await self.audiences_of(contact_id),
            attributes=contact.attributes,
        )

    # tags and audiences ---------------------------------------------------------------------

    async def change_tags(self, contact_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
        async with self.engine.begin() as conn:
            if add:
                stmt = self._insert(tags).values(
                    [{"contact_id": contact_id, "tag": t, "added_at": _now()} for t in add]
                )
                await conn.execute(stmt.on_conflict_do_nothing())
            if remove:
                await conn.execute(
                    delete(tags).where(
                        and_(tags.c.contact_id == contact_id, tags.c.tag.in_(remove))
                    )
                )

    async def tags_of(self, contact_id: str) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(tags.c.tag).where(tags.c.contact_id == contact_id).order_by(tags.c.tag)
            )
            return [r[0] for r in rows]

    async def change_audience(self, contact_id: str, audience: str, member: bool) -> None:
        table = audience_memberships
        async with self.engine.begin() as conn:
            if member:
                stmt = self._insert(table).values(
                    contact_id=contact_id, audience=audience, added_at=_now()
                )
                await conn.execute(stmt.on_conflict_do_nothing())
            else:
                await conn.execute(
                    delete(table).where(
                        and_(table.c.contact_id == contact_id, table.c.audience == audience)
                    )
                )

    async def audiences_of(self, contact_id: str) -> list[str]:
        table = audience_memberships
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(table.c.audience)
                .where(table.c.contact_id == contact_id)
                .order_by(table.c.audience)
            )
            return [r[0] for r in rows]

    # the delivery ledger ----------------------------------------------------------------------

    async def claim_delivery(self, req: SendRequest) -> str | None:
        """Record that this send is being handed to the provider.

        Returns None when the claim is new (go ahead and send), otherwise the status an earlier
        attempt left: 'sent', 'failed', or 'sending' (an attempt died mid-call: outcome unknown).
        """
        now = _now()
        row = {**req.model_dump(), "status": "sending", "created_at": now, "updated_at": now}
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(deliveries).values(row))
            return None
        except IntegrityError:
            async with self.engine.connect() as conn:
                status = await conn.scalar(
                    select(deliveries.c.status).where(deliveries.c.key == req.key)
                )
            return str(status)

    async def finish_delivery(
        self, key: str, status: str, provider_id: str | None = None, error: str | None = None
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.key == key)
                .values(status=status, provider_id=provider_id, error=error, updated_at=_now())
            )

    async def release_delivery(self, key: str) -> None:
        """The provider certainly did not take the message (connection refused, 5xx): forget the
        claim so the retry sends it."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(deliveries).where(
                    and_(deliveries.c.key == key, deliveries.c.status == "sending")
                )
            )

    async def deliveries_of(self, contact_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(deliveries)
                .where(deliveries.c.contact_id == contact_id)
                .order_by(deliveries.c.created_at)
            )
            return [dict(r._mapping) for r in rows]

    # events -----------------------------------------------------------------------------------

    async def record_event(self, contact_id: str, ev: JourneyEvent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(events).values(
                    contact_id=contact_id,
                    kind=ev.kind,
                    step_id=ev.step,
                    occurred_at=ev.occurred_at,
                    data=ev.data,
                )
            )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the worker, the CLI and the gateway share one file without "database is locked".
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


async def open_store(database_url: str) -> ContactStore:
    """Connect, create the SQLite file's folder if needed, and apply pending migrations."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    async with engine.begin() as conn:
        await migrate(conn)
    return ContactStore(engine)
