"""Lead grades and behaviour counts in the store, row by row, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeys.contacts import Contact
from journeys.models import JourneyEvent
from journeys.store import ContactStore

AT = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(store_on_each_database: ContactStore) -> ContactStore:
    return store_on_each_database


def event(kind: str, ago: timedelta, at: datetime = AT) -> JourneyEvent:
    return JourneyEvent(kind=kind, occurred_at=at - ago)


async def test_behaviour_counts_are_the_events_of_a_kind_in_the_window_up_to_the_runs_clock(
    store: ContactStore,
) -> None:
    await store.upsert_contacts([Contact(id="c1"), Contact(id="c2")])
    for ev in [
        event("purchase", timedelta(days=180)),  # the window's first instant is not in it
        event("purchase", timedelta(days=179, hours=23)),
        event("purchase", timedelta(0)),  # at the run's clock: in
        event("purchase", -timedelta(seconds=1)),  # after it: not yet
        event("clicked", timedelta(days=3)),
    ]:
        await store.record_event("c1", ev)
    await store.record_event("c2", event("purchase", timedelta(days=1)))
    # Another offset is the same instant: 10:00+01:00 is 09:00 UTC, the run's clock.
    await store.record_event(
        "c1",
        JourneyEvent(kind="clicked", occurred_at=datetime.fromisoformat("2027-03-01T10:00+01:00")),
    )

    facts = await store.facts("c1", ["purchase/180", "clicked/30", "visited_url/7"], at=AT)
    assert facts.counts == {"purchase/180": 2, "clicked/30": 2, "visited_url/7": 0}
    assert (await store.facts("c1", ["purchase/1"], at=AT)).counts == {"purchase/1": 1}
    assert (await store.facts("c1")).counts == {}
