"""Data hygiene in the store (journeys/store/hygiene.py), on SQLite and on a real PostgreSQL
server: the contacts a run reads, page by page; changes applied with their audit, once however
often a batch is retried; duplicate groups; merges checked row by row (nothing lost, no consent
widened, the merged-away id still resolving, its runs told); imports never re-subscribing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from typer.testing import CliRunner

from activities.deliveries import reason_not_to_send
from journeys.contacts import Contact
from journeys.events import CONTACT_MERGED
from journeys.hygiene.changes import HygieneChange, HygienePolicy
from journeys.hygiene.rules import decide
from journeys.models import JourneyEvent
from journeys.store import ContactStore, open_store
from journeys.store.schema import (
    audience_memberships,
    contact_aliases,
    contacts,
    deliveries,
    events,
    held_events,
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
from starters.cli import app
from tests.channel_fixtures import make_request

T0 = datetime(2027, 1, 4, 9, tzinfo=UTC)
POLICY = HygienePolicy(sunset_after_days=180)
# Every table a contact's rows are in, for "nothing changed" checks.
CONTACT_TABLES = (
    contacts,
    tags,
    audience_memberships,
    suppressions,
    opt_changes,
    events,
    deliveries,
    send_checks,
    nps_answers,
    onsite_messages,
    push_subscriptions,
    processed_events,
    lead_grades,
    plan_runs,
    contact_aliases,
    hygiene_changes,
    held_events,
)


@pytest.fixture
def store(store_on_each_database: ContactStore) -> ContactStore:
    return store_on_each_database


async def rows(store: ContactStore, table: Table, *columns: str) -> list[tuple[Any, ...]]:
    """The table's rows as tuples of `columns`, sorted."""
    query = select(*(table.c[c] for c in columns))

    def read() -> list[tuple[Any, ...]]:
        with store.engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(query))

    return await asyncio.to_thread(read)


async def snapshot(store: ContactStore) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: await rows(store, t, *t.c.keys()) for t in CONTACT_TABLES}


async def write(store: ContactStore, table: Table, **values: Any) -> None:
    def run() -> None:
        with store.engine.begin() as conn:
            conn.execute(insert(table).values(**values))

    await asyncio.to_thread(run)


async def created(store: ContactStore, contact_id: str, at: datetime) -> None:
    """Backdate a contact (the store stamps its own clock at import)."""

    def run() -> None:
        with store.engine.begin() as conn:
            conn.execute(contacts.update().where(contacts.c.id == contact_id).values(created_at=at))

    await asyncio.to_thread(run)


def event(kind: str, at: datetime, **data: Any) -> JourneyEvent:
    return JourneyEvent(kind=kind, occurred_at=at, data=data)


# candidates -----------------------------------------------------------------------------------


async def test_candidates_come_page_by_page_in_id_order_with_their_engagement(
    store: ContactStore,
) -> None:
    await store.upsert_contacts(
        [
            Contact(id=f"c{i}", email=f"c{i}@example.com", attributes={"country": "PL"})
            for i in (3, 1, 5, 2, 4)
        ]
    )
    await store.record_event("c2", event("opened", T0))
    await store.record_event("c2", event("purchase", T0 + timedelta(days=3)))
    # Things that happened TO the contact are no engagement.
    await store.record_event("c2", event("delivered", T0 + timedelta(days=9)))
    await store.record_event("c3", event("unsubscribed", T0))
    await store.change_tags("c4", ["SUNSET"], [])

    pages, after = [], None
    while page := await store.hygiene_candidates(after, 2):
        pages.append([c.id for c in page])
        after = page[-1].id
    assert pages == [["c1", "c2"], ["c3", "c4"], ["c5"]]

    by_id = {c.id: c for c in await store.hygiene_candidates(None, 10)}
    assert by_id["c2"].last_engaged_at == T0 + timedelta(days=3)
    assert by_id["c3"].last_engaged_at is None
    assert by_id["c1"].country == "PL" and by_id["c1"].email == "c1@example.com"
    assert [c.id for c in by_id.values() if c.sunset] == ["c4"]
    assert by_id["c4"].sunset_at is not None


# applying changes -----------------------------------------------------------------------------


async def test_a_batch_applied_twice_changes_each_contact_once(store: ContactStore) -> None:
    await store.upsert_contacts(
        [
            Contact(id="p1", phone="+48601234567", email="p1@example.com"),
            Contact(id="p2", email="p2@example.com"),
        ]
    )
    # Rows stored before the rules held (an older import): a local number, a broken address.
    await _set(store, "p1", phone="601 234 567", attributes={"country": "PL"})
    await _set(store, "p2", phone="12", email="p2@@example.com")
    batch = [
        change
        for c in await store.hygiene_candidates(None, 10)
        for change in decide("run1", c, POLICY, T0)
    ]
    assert [(c.contact_id, c.kind) for c in batch] == [
        ("p1", "phone_normalised"),
        ("p2", "phone_invalid"),
        ("p2", "email_invalid"),
    ]

    assert await store.apply_hygiene(batch) == 3
    after_first = await snapshot(store)
    assert await store.apply_hygiene(batch) == 0
    assert await snapshot(store) == after_first

    assert await rows(store, contacts, "id", "phone", "email") == [
        ("p1", "+48601234567", "p1@example.com"),
        ("p2", None, None),
    ]
    audit = await store.hygiene_changes_since(None)
    assert [(c.run_id, c.contact_id, c.kind) for c in audit] == [
        ("run1", "p1", "phone_normalised"),
        ("run1", "p2", "phone_invalid"),
        ("run1", "p2", "email_invalid"),
    ]
    assert audit[0].detail == {"before": "601 234 567", "after": "+48601234567"}
    assert audit[0].changed_at == T0
    assert await store.hygiene_changes_since(T0 + timedelta(seconds=1)) == []


async def test_a_change_the_row_no_longer_fits_is_skipped_and_not_audited(
    store: ContactStore,
) -> None:
    await store.upsert_contacts([Contact(id="p1")])
    await _set(store, "p1", phone="601 234 567", attributes={"country": "PL"})
    [c] = await store.hygiene_candidates(None, 10)
    batch = decide("run1", c, POLICY, T0)
    # The contact was imported again with a new number between the read and the write.
    await store.upsert_contacts([Contact(id="p1", phone="+48501234567")])
    assert await store.apply_hygiene(batch) == 0
    assert await rows(store, contacts, "id", "phone") == [("p1", "+48501234567")]
    assert await store.hygiene_changes_since(None) == []


async def test_sunset_tags_and_suppresses_marketing_and_engaging_again_lifts_both(
    store: ContactStore,
) -> None:
    await store.upsert_contacts(
        [Contact(id="s1", email="s1@example.com"), Contact(id="s2", email="s2@example.com")]
    )
    for contact_id in ("s1", "s2"):
        await created(store, contact_id, T0 - timedelta(days=400))
        await store.record_event(contact_id, event("clicked", T0 - timedelta(days=200)))
    # s2 also unsubscribed from marketing itself: lifting sunset must not undo that.
    await store.suppress("s2", "marketing", "unsubscribed")

    sunsets = [
        ch for c in await store.hygiene_candidates(None, 10) for ch in decide("r1", c, POLICY, T0)
    ]
    assert [(ch.contact_id, ch.kind) for ch in sunsets] == [("s1", "sunset"), ("s2", "sunset")]
    assert await store.apply_hygiene(sunsets) == 2
    assert await rows(store, tags, "contact_id", "tag") == [("s1", "SUNSET"), ("s2", "SUNSET")]
    assert await rows(store, suppressions, "contact_id", "channel", "reason") == [
        ("s1", "marketing", "sunset"),
        ("s2", "marketing", "unsubscribed"),
    ]
    # A later run finds them sunset already: nothing to do.
    later = T0 + timedelta(days=1)
    candidates = await store.hygiene_candidates(None, 10)
    assert all(c.sunset for c in candidates)
    assert [decide("r2", c, POLICY, later) for c in candidates] == [[], []]

    for contact_id in ("s1", "s2"):
        await store.record_event(contact_id, event("purchase", later))
    lifts = [
        ch
        for c in await store.hygiene_candidates(None, 10)
        for ch in decide("r3", c, POLICY, later)
    ]
    assert [(ch.contact_id, ch.kind) for ch in lifts] == [
        ("s1", "sunset_lifted"),
        ("s2", "sunset_lifted"),
    ]
    assert await store.apply_hygiene(lifts) == 2
    assert await store.apply_hygiene(lifts) == 0
    assert await rows(store, tags, "contact_id", "tag") == []
    assert await rows(store, suppressions, "contact_id", "channel", "reason") == [
        ("s2", "marketing", "unsubscribed")
    ]
    assert [(c.contact_id, c.kind) for c in await store.hygiene_changes_since(None)] == [
        ("s1", "sunset"),
        ("s2", "sunset"),
        ("s1", "sunset_lifted"),
        ("s2", "sunset_lifted"),
    ]


async def test_a_merge_is_not_applied_as_a_change(store: ContactStore) -> None:
    merge = HygieneChange(run_id="r", contact_id="x", kind="merged", changed_at=T0)
    with pytest.raises(ValueError, match="merged"):
        await store.apply_hygiene([merge])


# duplicates -----------------------------------------------------------------------------------


async def test_duplicate_groups_by_email_then_phone_page_by_page(store: ContactStore) -> None:
    await store.upsert_contacts(
        [
            Contact(id="d1", email="Ana@Example.com", phone="+48601234567"),
            Contact(id="d2", email="ana@example.com"),
            Contact(id="d3", email="bo@example.com", phone="+48601234567"),
            Contact(id="d4", email="cy@example.com", phone="+12024561111"),
            Contact(id="d5", phone="+12024561111"),
            Contact(id="d6", email="cy@example.com"),
            Contact(id="d7", email="solo@example.com", phone="+48501234567"),
        ]
    )
    pages, after = [], None
    while page := await store.duplicate_groups(after, 2):
        pages.append([(g.key, g.contact_ids) for g in page])
        after = page[-1].key
    assert pages == [
        [("email:ana@example.com", ["d1", "d2"]), ("email:cy@example.com", ["d4", "d6"])],
        [("phone:+12024561111", ["d4", "d5"]), ("phone:+48601234567", ["d1", "d3"])],
    ]
    assert (
        await store.duplicate_groups("email:zz", 10) == (await store.duplicate_groups(None, 10))[2:]
    )
    assert await store.duplicate_groups("phone:+9", 10) == []


# merges ---------------------------------------------------------------------------------------


async def _set(store: ContactStore, contact_id: str, **values: Any) -> None:
    def run() -> None:
        with store.engine.begin() as conn:
            conn.execute(contacts.update().where(contacts.c.id == contact_id).values(**values))

    await asyncio.to_thread(run)


async def _two_duplicates(store: ContactStore) -> None:
    """`a` (older) and `b`, the same person imported twice, with something of everything."""
    await store.upsert_contacts(
        [
            Contact(
                id="a",
                email="ana@example.com",
                time_zone="Europe/Warsaw",
                attributes={"first_name": "Ana", "plan": "pro"},
                consent={"email": True, "sms": True},
            ),
            Contact(
                id="b",
                email="ANA@example.com",
                phone="+48601234567",
                attributes={"plan": "free", "city": "Kraków"},
                consent={"email": True, "sms": False, "web_push": True},
                web_push=True,
            ),
            Contact(id="z", email="ana@example.com", consent={"email": True}),
        ]
    )
    await created(store, "a", T0 - timedelta(days=30))
    await created(store, "b", T0 - timedelta(days=10))
    await store.change_tags("a", ["vip", "shared"], [])
    await store.change_tags("b", ["shared", "webinar"], [])
    await store.change_audience("a", "newsletter", True)
    await store.change_audience("b", "trial", True)
    await store.suppress("a", "email", "unsubscribed")
    await store.suppress("b", "email", "bounced")
    await store.suppress("b", "sms", "sms_stop")
    await store.opt_in_out("a", "sms", False, T0 - timedelta(days=5), "tw-a1")
    await store.opt_in_out("b", "sms", True, T0 - timedelta(days=2), "tw-b1")
    await store.opt_in_out("b", "whatsapp", True, T0 - timedelta(days=3), "tw-b2")
    await store.record_event("a", event("opened", T0 - timedelta(days=4)))
    await store.record_event("b", event("clicked", T0 - timedelta(days=3)))
    await store.record_event("b", event("purchase", T0 - timedelta(days=1), sku="x1"))
    req = make_request("email", contact_id="b", journey="welcome")
    await store.claim_delivery(req)
    await write(
        store,
        send_checks,
        key=req.key,
        contact_id="b",
        channel="email",
        journey_id="welcome",
        step_id="intro",
        status="allowed",
        decided_at=T0,
    )
    await store.record_nps_answer(req.key, 9, "fine")
    await store.queue_onsite("onsite-b", "b", "welcome", "chat", {"text": "hi"})
    await store.add_push_subscription("a", "web", "https://push.example/1", {"auth": "a"})
    await store.add_push_subscription("b", "web", "https://push.example/1", {"auth": "a"})
    await store.add_push_subscription("b", "mobile", "token-b", {})
    await write(
        store,
        plan_runs,
        plan_id="plan:cd_lead_followup__sales_call:b.1.1",
        template="cd_lead_followup__sales_call",
        version=1,
        instance="b.1.1",
        target=T0.date(),
        contact_id="b",
        state="running",
        started_at=T0,
        updated_at=T0,
    )
    await store.first_time_event("ev-1", "a")
    await store.first_time_event("ev-1", "b")
    await store.first_time_event("ev-2", "b")
    for contact_id in ("a", "b"):
        await write(
            store,
            lead_grades,
            contact_id=contact_id,
            grade="C",
            fit="C",
            score=1.0,
            computed_at=T0,
            changed_at=T0,
        )
    # z was merged into b by an earlier run: after b goes, z resolves to a.
    assert await store.merge_contacts("run0", "b", "z", "same email", T0 - timedelta(hours=1))


async def test_a_merge_loses_nothing_and_widens_no_consent(store: ContactStore) -> None:
    await _two_duplicates(store)
    assert await store.merge_contacts("run1", "a", "b", "same email", T0)

    assert await rows(
        store, contacts, "id", "email", "phone", "time_zone", "attributes", "consent", "web_push"
    ) == [
        (
            "a",
            "ana@example.com",  # the survivor's own
            "+48601234567",  # the merged one's, where the survivor had none
            "Europe/Warsaw",
            {"city": "Kraków", "first_name": "Ana", "plan": "pro"},
            {"email": True, "sms": False, "web_push": False},
            True,
        )
    ]
    assert await rows(store, tags, "contact_id", "tag") == [
        ("a", "shared"),
        ("a", "vip"),
        ("a", "webinar"),
    ]
    assert await rows(store, audience_memberships, "contact_id", "audience") == [
        ("a", "newsletter"),
        ("a", "trial"),
    ]
    assert await rows(store, suppressions, "contact_id", "channel", "reason") == [
        ("a", "email", "unsubscribed"),
        ("a", "sms", "sms_stop"),
        ("a", "whatsapp", "whatsapp_stop"),
    ]
    # Per channel the later STOP or START.
    assert await rows(store, opt_changes, "contact_id", "channel", "opted_out") == [
        ("a", "sms", True),
        ("a", "whatsapp", True),
    ]
    assert await rows(store, events, "contact_id", "kind") == [
        ("a", "clicked"),
        ("a", "opened"),
        ("a", "purchase"),
    ]
    key = make_request("email", contact_id="b", journey="welcome").key
    assert await rows(store, deliveries, "key", "contact_id") == [(key, "a")]
    assert await rows(store, send_checks, "key", "contact_id") == [(key, "a")]
    assert await rows(store, nps_answers, "delivery_key", "contact_id", "score") == [(key, "a", 9)]
    assert await rows(store, onsite_messages, "delivery_key", "contact_id") == [("onsite-b", "a")]
    assert await rows(store, plan_runs, "contact_id") == [("a",)]
    assert await rows(store, push_subscriptions, "contact_id", "kind", "endpoint") == [
        ("a", "mobile", "token-b"),
        ("a", "web", "https://push.example/1"),
    ]
    assert await rows(store, processed_events, "contact_id", "event_id") == [
        ("a", "ev-1"),
        ("a", "ev-2"),
        ("a", "tw-a1"),
        ("a", "tw-b1"),
        ("a", "tw-b2"),
    ]
    assert await rows(store, lead_grades, "contact_id") == [("a",)]
    assert await rows(store, contact_aliases, "merged_id", "survivor_id", "run_id") == [
        ("b", "a", "run1"),
        ("z", "a", "run0"),
    ]
    assert await store.resolve("b") == "a" and await store.resolve("z") == "a"
    assert [
        (c.run_id, c.contact_id, c.kind, c.detail) for c in await store.hygiene_changes_since(T0)
    ] == [("run1", "b", "merged", {"into": "a", "because": "same email"})]
    # The merged-away contact's runs are told, through the gateway's outbox.
    held = await store.claim_held(timedelta(minutes=1))
    assert held is not None
    assert (held.contact_id, held.journey_id) == ("z", None)  # the earlier merge's first
    held = await store.claim_held(timedelta(minutes=1))
    assert held is not None
    assert (held.contact_id, held.journey_id, held.event.kind) == ("b", None, CONTACT_MERGED)
    assert held.event.data == {"into": "a"}
    assert held.event.occurred_at == T0 and held.event.id

    facts = await store.facts("a")
    assert facts.consent == {"email": False, "sms": False, "web_push": False}


async def test_merging_again_changes_nothing(store: ContactStore) -> None:
    await _two_duplicates(store)
    assert await store.merge_contacts("run1", "a", "b", "same email", T0)
    merged = await snapshot(store)
    assert not await store.merge_contacts("run1", "a", "b", "same email", T0)
    assert not await store.merge_contacts("run2", "a", "b", "same phone", T0)
    # The other way round: b is gone, and resolves to a.
    assert not await store.merge_contacts("run2", "b", "a", "same phone", T0)
    assert not await store.merge_contacts("run2", "a", "nobody", "same phone", T0)
    assert await snapshot(store) == merged


async def test_a_group_whose_survivor_was_merged_away_merges_into_its_survivor(
    store: ContactStore,
) -> None:
    await store.upsert_contacts(
        [
            Contact(id="m1", email="m@example.com"),
            Contact(id="m2", email="m@example.com", phone="+48601234567"),
            Contact(id="m3", phone="+48601234567"),
        ]
    )
    assert await store.merge_contacts("r", "m1", "m2", "same email", T0)
    # The phone group (m2, m3), read before: m2 is gone into m1.
    assert await store.merge_contacts("r", "m2", "m3", "same phone", T0)
    assert await rows(store, contacts, "id", "phone") == [("m1", "+48601234567")]
    assert await rows(store, contact_aliases, "merged_id", "survivor_id") == [
        ("m2", "m1"),
        ("m3", "m1"),
    ]


async def test_an_id_merged_before_that_is_back_merges_again(store: ContactStore) -> None:
    await store.upsert_contacts(
        [Contact(id="a", email="a@example.com"), Contact(id="b", email="a@example.com")]
    )
    assert await store.merge_contacts("r1", "a", "b", "same email", T0)
    # Written by an import that resolved `b` just before the merge committed (PostgreSQL's
    # read committed): the contact is there again beside its alias.
    await write(
        store,
        contacts,
        id="b",
        email="a@example.com",
        time_zone="UTC",
        locale="en",
        attributes={},
        consent={},
        in_mobile_app=False,
        web_push=False,
        created_at=T0,
        updated_at=T0,
    )
    assert await store.merge_contacts("r2", "a", "b", "same email", T0)
    assert await rows(store, contacts, "id") == [("a",)]
    assert await rows(store, contact_aliases, "merged_id", "survivor_id", "run_id") == [
        ("b", "a", "r2")
    ]


async def test_an_import_of_a_merged_away_id_updates_its_survivor(store: ContactStore) -> None:
    await store.upsert_contacts(
        [Contact(id="a", email="a@example.com"), Contact(id="b", email="a@example.com")]
    )
    assert await store.merge_contacts("r", "a", "b", "same email", T0)
    await store.upsert_contacts(
        [Contact(id="b", email="new@example.com", locale="pl"), Contact(id="c")]
    )
    assert await rows(store, contacts, "id", "email", "locale") == [
        ("a", "new@example.com", "pl"),
        ("c", None, "en"),
    ]


# imports never re-subscribe --------------------------------------------------------------------


async def test_an_import_with_consent_does_not_resubscribe_a_suppressed_contact(
    store: ContactStore,
) -> None:
    await store.upsert_contacts(
        [Contact(id="r1", email="r1@example.com", phone="+48601234567", consent={"sms": True})]
    )
    assert await store.opt_in_out("r1", "sms", True, T0, "tw-stop") == "applied"
    await store.suppress("r1", "email", "unsubscribed")
    # The customer's system still says yes, and sends the contact again.
    again = Contact(
        id="r1", email="r1@example.com", phone="+48601234567", consent={"sms": True, "email": True}
    )
    await store.upsert_contacts([again])

    facts = await store.facts("r1")
    assert facts.consent == {"sms": False, "email": False}
    contact, suppressed = await store.recipient("r1")
    assert suppressed == {"sms", "email"}
    for channel, address in (("sms", "+48601234567"), ("email", "r1@example.com")):
        reason = reason_not_to_send(make_request(channel, "r1"), contact, suppressed, address)
        assert reason == f"contact is suppressed on {channel} (unsubscribed, STOP or bounced)"


def test_a_csv_import_does_not_resubscribe_an_unsubscribed_contact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'journeys.db'}"
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", url)
    file = tmp_path / "contacts.csv"
    file.write_text("id,email,consent\nu1,u1@example.com,email;newsletter\n")
    runner = CliRunner()
    assert runner.invoke(app, ["contacts", "import", str(file)]).exit_code == 0

    async def unsubscribe_then_read(imported_again: bool) -> Any:
        store = await open_store(url)
        try:
            if not imported_again:
                await store.suppress("u1", "email", "unsubscribed")
                return None
            return await store.facts("u1")
        finally:
            await store.close()

    asyncio.run(unsubscribe_then_read(False))
    result = runner.invoke(app, ["contacts", "import", str(file)])
    assert result.exit_code == 0, result.output
    facts = asyncio.run(unsubscribe_then_read(True))
    assert facts.consent == {"email": False, "newsletter": True}
