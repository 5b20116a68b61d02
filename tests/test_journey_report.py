"""The journey reports count what contacts did: a scripted set of contacts run through a small
journey with a branch, an A/B send and a goal, and every figure of the overview and of the
journey's report checked against the script; the A/B significance against values worked out
by hand; `journeys report` printing the same figures. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from journeys.contacts import Contact
from journeys.models import JourneyEvent
from journeys.reports.models import Period
from journeys.store import ContactStore
from journeys.store.schema import (
    journey_entries,
    journey_visits,
)
from tests.temporal_fixtures import Stack, wait_for_step
from tests.test_interpreter import run, spec


@pytest.fixture
def store(store_on_each_database: ContactStore) -> ContactStore:
    """The runs' records and the report's statements on SQLite and on PostgreSQL."""
    return store_on_each_database


# offer (A/B) -> wait for its open -> thanks | (no open) has a phone? -> nudge | bye
SCRIPTED = [
    {
        "id": "offer",
        "kind": "send",
        "channel": "email",
        "variants": [
            {"name": "a", "template": "lead_part_2"},
            {"name": "b", "template": "lead_part_3"},
        ],
    },
    {
        "id": "opened",
        "kind": "wait_for",
        "event": "opened",
        "step": "offer",
        "timeout": "3d",
        "on_event": "thanks",
        "on_timeout": "phone",
    },
    {
        "id": "phone",
        "kind": "branch",
        "conditions": [{"when": "has_phone", "next": "nudge"}],
        "otherwise": "bye",
    },
    {"id": "nudge", "kind": "send", "channel": "email", "template": "lead_part_2", "next": "bye"},
    {"id": "thanks", "kind": "send", "channel": "email", "template": "lead_part_3"},
    {"id": "bye", "kind": "end"},
]
GOAL = {"event": "purchase", "within": "14d"}
EVERYTHING = Period(until=datetime(2100, 1, 1, tzinfo=UTC))


@dataclass
class Script:
    """What one contact does while (and after) it runs through SCRIPTED."""

    phone: bool = False
    opens: list[bool] = field(default_factory=list)  # each open: by a machine?
    clicks: list[bool] = field(default_factory=list)  # each click: by a machine?
    unsubscribes: bool = False
    purchase_after: timedelta | None = None  # after entering


SCRIPTS = {
    "s-open-click-buy": Script(opens=[False], clicks=[False], purchase_after=timedelta(days=2)),
    "s-proxy-late-buy": Script(
        phone=True, opens=[True], purchase_after=timedelta(days=20)
    ),  # a proxy's open does not end the wait; bought after the window
    "s-open-twice": Script(opens=[True, False]),
    "s-silent": Script(),
    "s-unsubscribes": Script(unsubscribes=True, purchase_after=timedelta(days=1)),
    "s-open-clicks-buy": Script(
        opens=[False], clicks=[False, True], purchase_after=timedelta(hours=30)
    ),
    "s-silent-phone": Script(phone=True),
}


async def keep(stack: Stack, contact_id: str, ev: JourneyEvent, signal: bool = True) -> None:
    """What the gateway does with an event about a tracked send: recorded with the send's
    journey (and kept in the outbox), then handed to the run."""
    held = await stack.store.keep_event(contact_id, "test", ev, timedelta(minutes=1))
    assert held is not None
    await stack.store.release_held(held.id)
    if signal:
        handle = stack.env.client.get_workflow_handle(f"journey:test:{contact_id}")
        await handle.signal("event", ev)


async def test_the_report_counts_what_a_scripted_set_of_contacts_did(stack: Stack) -> None:
    journey = spec(SCRIPTED, goal=GOAL, exit_events=["unsubscribed"])
    handles = {}
    for contact_id, script in SCRIPTS.items():
        contact = Contact(
            id=contact_id,
            email=f"{contact_id}@example.com",
            phone="+48601234567" if script.phone else None,
            consent={"email": True},
        )
        handles[contact_id] = await run(stack, journey, contact)
    for handle in handles.values():
        await wait_for_step(stack.env, handle, "opened")
    now = await stack.env.get_current_time()
    for contact_id, script in SCRIPTS.items():
        for machine in script.opens:
            await keep(stack, contact_id, opened(now, machine))
        if script.unsubscribes:
            await keep(stack, contact_id, JourneyEvent(kind="unsubscribed", occurred_at=now))
    for handle in handles.values():
        await handle.result()
    entered = {e.contact_id: e.entered_at for e in await entries(stack.store)}
    for contact_id, script in SCRIPTS.items():
        for machine in script.clicks:
            click = JourneyEvent(
                kind="clicked", step="offer", occurred_at=now, data={"machine": machine}
            )
            await keep(stack, contact_id, click, signal=False)
        if script.purchase_after is not None:
            at = entered[contact_id] + script.purchase_after
            await stack.store.record_event(
                contact_id, JourneyEvent(kind="purchase", occurred_at=at)
            )
    variant = await drawn(stack.store)
    assert set(variant.values()) == {"a", "b"}, "both variants drawn (the draw is by run id)"

    found = await stack.store.journey_report(journey, EVERYTHING)

    # Each entry once, within 14 days of entering, also after leaving early (s-unsubscribes);
    # s-proxy-late-buy bought after its window.
    converted = {"s-open-click-buy", "s-open-clicks-buy", "s-unsubscribes"}
    assert found.figures.model_dump() == {
        "journey_id": "test",
        "entered": 7,
        "active": 0,
        "finished": 6,
        "exited_early": 1,
        "conversions": 3,
        "sends": {"email": {"sent": 7 + 3 + 2, "failed": 0}},  # offer, thanks, nudge
        "delivered": 0,
        "human_opens": 3,
        "machine_opens": 2,
        "clicks": 2,
        "unsubscribes": 1,
        "failures": 0,
    }
    steps = {
        s.step_id: (s.entered, s.visits, s.next, s.sent, s.opens, s.clicks) for s in found.steps
    }
    assert steps == {
        "offer": (7, 7, {"opened": 7}, 7, 3, 2),
        "opened": (7, 7, {"phone": 3, "thanks": 3}, None, None, None),
        "phone": (3, 3, {"bye": 1, "nudge": 2}, None, None, None),
        "nudge": (2, 2, {"bye": 2}, 2, 0, 0),
        "thanks": (3, 3, {"bye": 3}, 3, 0, 0),
        "bye": (6, 6, {}, None, None, None),
    }
    assert [s.waiting for s in found.steps] == [None] * 6 and not found.live

    (test,) = found.ab_tests
    assert (test.step_id, test.metric, test.test) == (
        "offer",
        "conversion",
        "two-proportion z-test",
    )
    by_name = {v.name: v for v in test.variants}
    for name in ("a", "b"):
        members = {c for c, v in variant.items() if v == name}
        human_openers = {c for c in members if False in SCRIPTS[c].opens}
        clickers = {c for c in members if False in SCRIPTS[c].clicks}
        assert by_name[name].model_dump() == {
            "name": name,
            "entered": len(members),
            "sent": len(members),
            "opens": len(human_openers),
            "clicks": len(clickers),
            "conversions": len(members & converted),
            "rate": len(members & converted) / len(members),
        }
    x_a, n_a = by_name["a"].conversions, by_name["a"].entered
    x_b, n_b = by_name["b"].conversions, by_name["b"].entered
    assert x_a is not None and x_b is not None
    (comparison,) = test.comparisons
    pooled = (x_a + x_b) / (n_a + n_b)
    if 0 < pooled < 1:
        z = (x_b / n_b - x_a / n_a) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
        assert comparison.z == pytest.approx(z)
        assert comparison.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    else:
        assert comparison.z is None and comparison.p_value is None
    assert found.nps is None

    overview = await stack.store.overview([journey], EVERYTHING)
    assert overview.journeys == [found.figures]


def opened(at: datetime, machine: bool) -> JourneyEvent:
    return JourneyEvent(kind="opened", step="offer", occurred_at=at, data={"machine": machine})


async def entries(store: ContactStore) -> list[Any]:
    def read() -> list[Any]:
        with store.engine.connect() as conn:
            return list(conn.execute(journey_entries.select()))

    return await asyncio.to_thread(read)


async def drawn(store: ContactStore) -> dict[str, str]:
    """The A/B variant each contact's run drew, as the store recorded it."""
    query = (
        select(journey_entries.c.contact_id, journey_visits.c.variant)
        .join_from(
            journey_visits, journey_entries, journey_visits.c.entry_id == journey_entries.c.entry_id
        )
        .where(journey_visits.c.step_id == "offer")
    )

    def read() -> dict[str, str]:
        with store.engine.connect() as conn:
            return {c: v for c, v in conn.execute(query)}

    return await asyncio.to_thread(read)
