"""The contact store's own rules, on SQLite and on a real PostgreSQL server: which database URLs
it takes, what a send reads, which answers it refuses, the delivery ledger, events held for
handover, and that work whose caller gave up leaves nothing behind."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, UniqueConstraint, create_engine, insert, inspect, text

from journeys.contacts import Contact
from journeys.models import JourneyEvent, SendWindow
from journeys.store import ContactStore, metadata, migrations, open_store
from journeys.store.db import Decide
from journeys.store.migrations import migrate
from journeys.store.rows import Claim
from journeys.store.schema import processed_events, suppressions
from tests.channel_fixtures import make_request
from tests.gateway_fixtures import stored_events


@pytest.fixture
def store(store_on_each_database: ContactStore) -> ContactStore:
    return store_on_each_database


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite+aiosqlite:///{dir}/journeys.db", "aiosqlite"),
        ("postgresql+asyncpg://u@h/db", "asyncpg"),
    ],
)
async def test_an_asyncio_driver_is_refused_by_name_before_anything_is_created(
    tmp_path: Path, url: str, driver: str
) -> None:
    data_dir = tmp_path / "data"
    with pytest.raises(ValueError, match=f"asyncio driver '{driver}'.*sqlite:///"):
        await open_store(url.format(dir=data_dir))
    assert not data_dir.exists()


async def test_a_recipient_comes_with_every_channel_it_is_suppressed_on(
    store: ContactStore,
) -> None:
    await store.upsert_contacts(
        [
            Contact(id="both", email="both@example.com", phone="+48601234567"),
            Contact(id="none", email="none@example.com"),
        ]
    )
    await store.suppress("both", "email", "unsubscribed")
    await store.suppress("both", "sms", "stop")

    contact, suppressed = await store.recipient("both")
    assert contact is not None and contact.email == "both@example.com"
    assert suppressed == {"email", "sms"}
    contact, suppressed = await store.recipient("none")
    assert contact is not None and contact.id == "none" and suppressed == set()
    assert await store.recipient("unknown") == (None, set())


async def test_an_answer_to_an_unknown_send_is_refused_by_its_key(store: ContactStore) -> None:
    with pytest.raises(KeyError, match="no-such-send"):
        await store.record_nps_answer("no-such-send", 9, "great")


async def test_a_write_whose_caller_is_cancelled_is_rolled_back(store: ContactStore) -> None:
    await store.upsert_contacts([Contact(id="c1", email="c1@example.com")])
    started, release = threading.Event(), threading.Event()

    def suppress_then_wait(conn: Connection) -> None:
        conn.execute(
            insert(suppressions).values(
                contact_id="c1", channel="email", reason="test", created_at=datetime.now(UTC)
            )
        )
        started.set()
        release.wait(5)

    task = asyncio.create_task(store._write(suppress_then_wait))
    assert await asyncio.to_thread(started.wait, 5)
    task.cancel()
    for _ in range(3):  # the task takes its cancellation before the work may finish
        await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.suppressed_channels("c1") == set()


async def test_kept_events_are_recorded_and_come_back_oldest_first_once_their_lease_is_over(
    store: ContactStore,
) -> None:
    now = datetime.now(UTC)
    opened = JourneyEvent(kind="opened", step="intro", occurred_at=now, id="e1")
    visited = JourneyEvent(kind="visited_url", occurred_at=now, data={"url": "https://shop/"})
    clicked = JourneyEvent(kind="clicked", step="intro", occurred_at=now, id="e3")
    # As if the processes handing these over died at once: their leases are over.
    first = await store.keep_event("c1", "lead_nurturing", opened, lease=timedelta(0))
    await store.keep_event("c1", None, visited, lease=timedelta(0))
    # Being handed over right now.
    in_flight = await store.keep_event("c1", "lead_nurturing", clicked, lease=timedelta(minutes=1))
    assert first is not None and in_flight is not None
    assert await stored_events(store, "c1") == ["opened", "visited_url", "clicked"]

    lease = timedelta(minutes=1)
    again = await store.claim_held(lease)
    assert again is not None
    assert (again.id, again.journey_id, again.event, again.attempts) == (
        first.id,
        "lead_nurturing",
        opened,
        2,
    )
    # Leased to whoever claimed it: the next claim takes the next one, then none is due.
    second = await store.claim_held(lease)
    assert second is not None
    assert (second.journey_id, second.event) == (None, visited)
    assert await store.claim_held(lease) is None

    # Temporal unreachable: put back in line, first again.
    await store.put_off_held(first.id, "temporal down", until=datetime.now(UTC))
    third = await store.claim_held(lease)
    assert third is not None
    assert (third.id, third.attempts) == (first.id, 3)

    count, oldest = await store.held_summary()
    assert count == 3 and oldest is not None and abs(oldest - now) < timedelta(minutes=1)
    for held in (first, second, in_flight):
        await store.release_held(held.id)
    assert await store.held_summary() == (0, None)
    await store.put_off_held(first.id, "released: no row to change", until=datetime.now(UTC))
    assert await store.claim_held(timedelta(0)) is None


async def test_a_send_is_claimed_once_and_answering_its_survey_again_updates_the_answer(
    store: ContactStore,
) -> None:
    req = make_request("email", journey="nps_email", step="survey")
    assert await store.claim_delivery(req) == Claim("claimed", 1, held=True)
    assert await store.hand_over_delivery(req.key, 1)
    # A retry finds the hand-over of the one before: it holds the claim to reconcile.
    assert await store.claim_delivery(req) == Claim("sending", 2, held=True)
    assert await store.finish_delivery(req.key, 2, "sent", provider_id="<id@example.com>")
    assert await store.claim_delivery(req) == Claim("sent", 2, held=False)

    await store.record_nps_answer(req.key, 6, None)
    await store.record_nps_answer(req.key, 9, "better after the call")
    [answer] = await store.nps_answers_of("nps_email")
    assert (answer["contact_id"], answer["step_id"]) == ("c1", "survey")
    assert (answer["score"], answer["comment"]) == (9, "better after the call")


async def test_a_claim_left_by_a_dead_attempt_is_taken_over_once_and_only_its_holder_sends(
    store: ContactStore,
) -> None:
    req = make_request("sms")
    assert (await store.claim_delivery(req)).held  # attempt 1 dies before the hand-over

    # Retries taking it over at the same moment never hold it under the same number; the last
    # to take it holds it.
    claims = await asyncio.gather(*(store.claim_delivery(req) for _ in range(3)))
    held = [c.attempt for c in claims if c.held]
    assert held and len(set(held)) == len(held)
    holder = max(held)

    # The attempts overtaken, still running somewhere, can neither hand over nor record nor
    # release.
    for overtaken in {1, *held} - {holder}:
        assert not await store.hand_over_delivery(req.key, overtaken)
        assert not await store.finish_delivery(req.key, overtaken, "sent")
        await store.release_delivery(req.key, overtaken)
    row = await store.delivery(req.key)
    assert row is not None and (row["status"], row["attempt"]) == ("claimed", holder)

    assert await store.hand_over_delivery(req.key, holder, fingerprint="f" * 64)
    row = await store.delivery(req.key)
    assert row is not None and (row["status"], row["fingerprint"]) == ("sending", "f" * 64)
    await store.release_delivery(req.key, holder)
    assert await store.delivery(req.key) is None


async def test_tags_and_audiences_are_sets_per_contact(store: ContactStore) -> None:
    await store.change_tags("c1", add=["VIP", "NPS_EMAIL_DONE"], remove=[])
    await store.change_tags("c1", add=["VIP"], remove=["NPS_EMAIL_DONE"])
    await store.change_audience("c1", "lookalikes", member=True)
    await store.change_audience("c1", "lookalikes", member=True)
    assert await store.tags_of("c1") == ["VIP"]
    assert await store.audiences_of("c1") == ["lookalikes"]
    assert await store.tags_of("c2") == []


async def test_a_report_kept_once_is_not_kept_again(store: ContactStore) -> None:
    delivered = JourneyEvent(kind="delivered", step="text", occurred_at=datetime.now(UTC))
    lease = timedelta(minutes=1)
    once = "twilio:SM1:delivered"
    assert await store.keep_event("c1", "nps_sms", delivered, lease, once_id=once) is not None
    # Twilio sends the same status callback again.
    assert await store.keep_event("c1", "nps_sms", delivered, lease, once_id=once) is None
    assert await stored_events(store, "c1") == ["delivered"]


async def test_an_event_id_is_remembered_per_contact(store: ContactStore) -> None:
    assert await store.first_time_event("order-1", "a")
    assert await store.first_time_event("order-1", "b")
    assert not await store.first_time_event("order-1", "a")
    await store.forget_event("order-1", "b")
    assert not await store.first_time_event("order-1", "a")
    assert await store.first_time_event("order-1", "b")


async def test_event_ids_remembered_before_migration_6_are_kept(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(database_url)
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
    with engine.begin() as conn:
        migrate(conn)
        conn.execute(
            insert(processed_events).values(
                event_id="order-1", contact_id="a", created_at=datetime.now(UTC)
            )
        )
    engine.dispose()
    monkeypatch.undo()
    store = await open_store(database_url)
    try:
        assert not await store.first_time_event("order-1", "a")
        assert await store.first_time_event("order-1", "b")
    finally:
        await store.close()


async def test_processes_starting_at_once_on_a_new_store_each_open_it(database_url: str) -> None:
    """Workers and gateways start together and each migrates: on a fresh file or database one
    migrates and the others find it done (a second creating the tables failed, "table contacts
    already exists", and a second turning a new SQLite file to WAL, "database is locked")."""
    # Ten new SQLite files (the race is over within a file's first moments).
    sqlite = database_url.startswith("sqlite")
    for url in [f"{database_url}.{n}" for n in range(10)] if sqlite else [database_url]:
        opened = await asyncio.gather(*(open_store(url) for _ in range(4)))
        for store in opened:
            await store.close()
        engine = create_engine(url)
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version FROM schema_migrations")).scalars()
            assert sorted(versions) == [version for version, _, _ in migrations.MIGRATIONS]
        engine.dispose()


async def test_an_opt_out_or_in_applies_once_and_never_over_a_later_one(
    store: ContactStore,
) -> None:
    await store.upsert_contacts([Contact(id="c1", phone="+48601234567")])
    at = [datetime.now(UTC) + timedelta(seconds=s) for s in range(4)]
    assert await store.opt_in_out("c1", "sms", False, at[1], "twilio:SM2") == "applied"
    # A STOP that arrived earlier, handled after (another gateway process), is too late.
    assert await store.opt_in_out("c1", "sms", True, at[0], "twilio:SM1") == "outdated"
    assert await store.suppressed_channels("c1") == set()
    assert await store.opt_in_out("c1", "sms", True, at[2], "twilio:SM3") == "applied"
    assert await store.suppressed_channels("c1") == {"sms"}
    assert await store.opt_in_out("c1", "sms", False, at[3], "twilio:SM2") == "duplicate"
    assert await store.suppressed_channels("c1") == {"sms"}


async def test_the_migrations_create_exactly_the_tables_and_columns_the_schema_declares(
    store: ContactStore,
) -> None:
    def read(conn: Connection) -> dict[str, dict[str, Any]]:
        found = inspect(conn)
        tables = {}
        for table in found.get_table_names():
            if table == "schema_migrations":  # the migrations' own bookkeeping
                continue
            key = set(found.get_pk_constraint(table)["constrained_columns"])
            tables[table] = {
                # SQLite reports a primary key column that is not an integer as nullable.
                "columns": {
                    c["name"]: (
                        c["nullable"] and c["name"] not in key,
                        getattr(c["type"], "length", None),
                    )
                    for c in found.get_columns(table)
                },
                "primary_key": key,
                "unique": {tuple(u["column_names"]) for u in found.get_unique_constraints(table)},
                # PostgreSQL lists the index behind a unique constraint as well.
                "indexes": {
                    i["name"] for i in found.get_indexes(table) if "duplicates_constraint" not in i
                },
            }
        return tables

    declared = {
        table.name: {
            "columns": {
                c.name: (c.nullable, getattr(c.type, "length", None)) for c in table.columns
            },
            "primary_key": {c.name for c in table.primary_key.columns},
            "unique": {
                tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, UniqueConstraint)
            },
            "indexes": {i.name for i in table.indexes},
        }
        for table in metadata.sorted_tables
    }
    with store.engine.connect() as conn:
        assert read(conn) == declared


def window_of(sent: list[datetime], cap: int = 1) -> Decide:
    """A decision that lets a send go while fewer than `cap` were sent; records what it saw."""

    def decide(zone: str, times: list[datetime]) -> SendWindow:
        sent[:] = times
        if len(times) < cap:
            return SendWindow(action="now")
        return SendWindow(action="wait", until=max(times) + timedelta(days=1), reason="capped")

    return decide


async def test_a_send_check_counts_the_sends_let_go_and_those_sent_without_one(
    store: ContactStore,
) -> None:
    await store.upsert_contacts([Contact(id="c1", time_zone="Europe/Warsaw")])
    seen: list[datetime] = []
    # Sent without a check (a transactional SMS): counted from its ledger row.
    receipt = make_request("sms", step="receipt")
    assert (await store.claim_delivery(receipt)).held
    await store.finish_delivery(receipt.key, 1, "sent")
    now = datetime.now(UTC) + timedelta(minutes=1)
    since = now - timedelta(days=1)
    first = make_request("sms", step="first")
    assert (await store.check_send(first, now, since, window_of(seen, cap=2))).action == "now"
    assert len(seen) == 1
    # A check let go counts from its decision, before its delivery exists; asking again for the
    # same send does not count it against itself.
    second = make_request("sms", step="second")
    assert (await store.check_send(second, now, since, window_of(seen, cap=2))).action == "wait"
    assert sorted(seen)[1:] == [now]
    assert (await store.check_send(first, now, since, window_of(seen, cap=2))).action == "now"
    # A refused delivery went nowhere: its place is free again.
    assert (await store.claim_delivery(first)).held
    await store.finish_delivery(first.key, 1, "failed", error="no consent")
    assert (await store.check_send(second, now, since, window_of(seen, cap=2))).action == "now"
    # Only what went after `since` counts.
    third = make_request("sms", step="third")
    assert (await store.check_send(third, now, now, window_of(seen, cap=2))).action == "now"
    assert seen == []
    # Once let go, a send stays let go (a retry of it may follow a copy the provider took), though
    # the cap is full now (the receipt and the third).
    assert (await store.check_send(second, now, since, window_of(seen, cap=2))).action == "now"
    assert seen == []  # not decided again
    checks = {c["step_id"]: c for c in await store.send_checks_of("c1")}
    assert checks["second"]["status"] == "allowed"
    assert checks["second"]["reason"] == "capped"  # it was held back once


async def test_a_skipped_send_is_in_the_ledger_as_capped(store: ContactStore) -> None:
    await store.upsert_contacts([Contact(id="c1")])
    now = datetime(2026, 6, 2, 12, tzinfo=UTC)
    req = make_request("sms")

    def skip(zone: str, times: list[datetime]) -> SendWindow:
        return SendWindow(action="skip", reason="frequency cap (1 SMS per day)")

    assert (await store.check_send(req, now, now, skip)).action == "skip"
    # A retried check stays skipped, though the cap has room by now: let go, the send would
    # find its capped row and pass for sent.
    retried = await store.check_send(req, now, now, window_of([], cap=1))
    assert (retried.action, retried.reason) == ("skip", "frequency cap (1 SMS per day)")
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["error"]) == ("capped", "frequency cap (1 SMS per day)")
    [check] = await store.send_checks_of("c1")
    assert check["status"] == "skipped"


async def test_two_checks_at_once_cannot_both_take_the_last_place(store: ContactStore) -> None:
    await store.upsert_contacts([Contact(id="c1")])
    now = datetime(2026, 6, 2, 12, tzinfo=UTC)
    since = now - timedelta(days=1)
    deciding = threading.Event()

    def slow(zone: str, times: list[datetime]) -> SendWindow:
        # The first check holds its transaction open while the second starts; were the second
        # to decide meanwhile, it would not see the first's place taken.
        deciding.set()
        threading.Event().wait(0.3)
        return window_of([])(zone, times)

    async def second() -> SendWindow:
        await asyncio.to_thread(deciding.wait)
        return await store.check_send(make_request("sms", step="b"), now, since, window_of([]))

    first_window, second_window = await asyncio.gather(
        store.check_send(make_request("sms", step="a"), now, since, slow), second()
    )
    assert (first_window.action, second_window.action) == ("now", "wait")


async def test_services_starting_at_once_on_an_empty_postgresql_database_all_migrate_it(
    postgres_url: str,
) -> None:
    # Workers and gateways of a deployment start together; each opens the store, which migrates.
    stores = await asyncio.gather(*(open_store(postgres_url) for _ in range(4)))
    try:
        assert {len(await s.deliveries_of("nobody")) for s in stores} == {0}
    finally:
        for s in stores:
            await s.close()
