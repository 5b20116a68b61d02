"""Lead grades and behaviour counts in the store, row by row, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.leads import LeadActivities
from journeys.contacts import Contact
from journeys.leads.grading import GradingSpec, LeadGrade, RegradeProgress, RegradeRequest
from journeys.models import JourneyEvent
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.store.schema import events, held_events, lead_grades

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


SPEC = GradingSpec.model_validate(
    {
        "fit": [{"grade": "C", "when": ["attribute:role == 'adviser'"]}],
        "weights": {"clicked": 5, "purchase": 25},
        "half_life_days": 10,
        "raise_at": [20, 60],
    }
)
ADVISER = Contact(id="c1", attributes={"role": "adviser"})


async def rows(store: ContactStore, table: Table, *columns: str) -> list[tuple[Any, ...]]:
    query = select(*(table.c[c] for c in columns)).order_by(*(table.c[c] for c in columns[:1]))

    def read() -> list[tuple[Any, ...]]:
        with store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]

    return await asyncio.to_thread(read)


async def grade_changes(store: ContactStore) -> list[tuple[str, dict[str, Any]]]:
    """The grade_changed events recorded: (contact, data)."""
    recorded = await rows(store, events, "id", "contact_id", "kind", "data")
    return [(c, data) for _, c, kind, data in recorded if kind == "grade_changed"]


async def held(store: ContactStore) -> list[tuple[str, str | None, str, dict[str, Any]]]:
    """What the outbox keeps: (contact, journey, event kind, event data)."""
    kept = await rows(store, held_events, "id", "contact_id", "journey_id", "event")
    return [(c, journey, e["kind"], e["data"]) for _, c, journey, e in kept]


async def test_a_regrade_keeps_the_grade_and_records_each_change_in_the_events_and_the_outbox(
    store: ContactStore,
) -> None:
    await store.upsert_contacts([ADVISER])

    first = await store.regrade("c1", SPEC, AT)
    assert first is not None
    assert (first.before, first.after) == (None, LeadGrade(grade="C", fit="C", score=0))
    assert await rows(store, lead_grades, "contact_id", "grade", "fit", "score") == [
        ("c1", "C", "C", 0)
    ]
    assert await grade_changes(store) == [("c1", {"from": None, "to": "C", "score": 0})]
    assert await held(store) == [
        ("c1", None, "grade_changed", {"from": None, "to": "C", "score": 0})
    ]
    # Kept with no lease: the gateway's outbox hands it over as soon as it looks.
    claimed = await store.claim_held(timedelta(minutes=1))
    assert claimed is not None and claimed.event == first.held.event
    assert claimed.event.kind == "grade_changed" and claimed.event.id
    await store.release_held(claimed.id)

    # Nothing new: the score is kept as computed, no event.
    assert await store.regrade("c1", SPEC, AT + timedelta(hours=1)) is None
    kept = await store.lead_grade("c1")
    assert kept is not None and (kept.computed_at, kept.changed_at) == (AT + timedelta(hours=1), AT)
    for ago in (timedelta(0), timedelta(hours=1), timedelta(hours=2), timedelta(days=40)):
        await store.record_event("c1", event("clicked", ago, AT + timedelta(days=1)))
    await store.record_event("c1", event("opened", timedelta(0), AT + timedelta(days=1)))
    assert await store.regrade("c1", SPEC, AT + timedelta(days=1, hours=1)) is None  # just over 15

    # The fourth click in a day reaches 20 (with what is left of the old one): C raised to B.
    later = AT + timedelta(days=1, hours=2)
    await store.record_event("c1", event("clicked", timedelta(0), later))
    change = await store.regrade("c1", SPEC, later, lease=timedelta(minutes=1))
    assert change is not None and (change.before, change.after.grade) == ("C", "B")
    kept = await store.lead_grade("c1")
    assert kept is not None
    assert (kept.grade, kept.fit, kept.computed_at, kept.changed_at) == ("B", "C", later, later)
    # Clicks 0, 2, 3 and 4 hours and 40 days 2 hours old, halved every 10 days (240 hours).
    ages = [0, 2, 3, 4, 40 * 24 + 2]
    assert kept.score == pytest.approx(sum(5 * 0.5 ** (hours / 240) for hours in ages))
    assert (await grade_changes(store))[1:] == [("c1", {"from": "C", "to": "B", "score": 20.2})]
    assert await held(store) == [
        ("c1", None, "grade_changed", {"from": "C", "to": "B", "score": 20.2})
    ]
    # Leased to the gateway that regraded: nobody else hands it over meanwhile.
    assert await store.claim_held(timedelta(minutes=1)) is None

    facts = await store.facts("c1")
    assert (facts.grade, facts.score) == ("B", kept.score)

    # Three days later the clicks weigh less: back to C.
    change = await store.regrade("c1", SPEC, later + timedelta(days=3))
    assert change is not None and change.after.grade == "C"
    assert [d["to"] for _, d in await grade_changes(store)] == ["C", "B", "C"]


async def test_an_unknown_contact_is_not_graded(store: ContactStore) -> None:
    assert await store.regrade("nobody", SPEC, AT) is None
    assert await rows(store, lead_grades, "contact_id") == []
    assert await grade_changes(store) == [] and await held(store) == []


async def test_a_batch_regrades_the_next_contacts_by_id_and_counts_the_changes(
    store: ContactStore,
) -> None:
    await store.upsert_contacts([Contact(id=f"c{n}") for n in (3, 1, 2)])
    await store.regrade("c2", SPEC, AT)  # a D already: no change for it in the batch

    assert await store.regrade_batch(None, 2, SPEC, AT) == ("c2", 1)
    assert await store.regrade_batch("c2", 2, SPEC, AT) == ("c3", 1)
    assert await store.regrade_batch("c3", 2, SPEC, AT) == (None, 0)
    assert await rows(store, lead_grades, "contact_id", "grade") == [
        ("c1", "D"),
        ("c2", "D"),
        ("c3", "D"),
    ]
    assert [c for c, _ in await grade_changes(store)] == ["c2", "c1", "c3"]
    assert [c for c, *_ in await held(store)] == ["c2", "c1", "c3"]


GRADING_YAML = """\
fit:
  - grade: C
    when: ["attribute:role == 'adviser'"]
weights: {clicked: 5}
half_life_days: 10
raise_at: [20]
"""


async def test_regrading_every_contact_heartbeats_each_batch_and_a_retry_goes_on_after_it(
    store: ContactStore, tmp_path: Path
) -> None:
    (tmp_path / "grading.yaml").write_text(GRADING_YAML)
    leads = LeadActivities(store, Settings().model_copy(update={"library_dir": tmp_path}))
    await store.upsert_contacts([ADVISER, *(Contact(id=f"c{n}") for n in range(2, 6))])
    beats: list[RegradeProgress] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details[0])

    done = await env.run(leads.regrade_contacts, RegradeRequest(at=AT, batch_size=2))

    assert done == RegradeProgress(last_id="c5", changes=5)
    assert beats == [
        RegradeProgress(last_id="c2", changes=2),
        RegradeProgress(last_id="c4", changes=4),
        RegradeProgress(last_id="c5", changes=5),
    ]
    assert await rows(store, lead_grades, "contact_id", "grade") == [
        ("c1", "C"),
        *((f"c{n}", "D") for n in range(2, 6)),
    ]

    # A retry of an attempt whose worker died after the first batch: on from c3, as of its
    # own moment (a later one here, to tell the contacts it regraded from those it did not).
    env.info = dataclasses.replace(env.info, heartbeat_details=[beats[0].model_dump()])
    later = AT + timedelta(hours=1)
    resumed = await env.run(leads.regrade_contacts, RegradeRequest(at=later, batch_size=2))
    assert resumed == RegradeProgress(last_id="c5", changes=2)
    kept = [await store.lead_grade(f"c{n}") for n in range(1, 6)]
    assert [g.computed_at if g else None for g in kept] == [AT, AT, later, later, later]
    assert len(await grade_changes(store)) == 5


async def test_a_broken_grading_file_fails_the_regrade_for_good(
    store: ContactStore, tmp_path: Path
) -> None:
    (tmp_path / "grading.yaml").write_text(GRADING_YAML.replace("half_life_days: 10", ""))
    leads = LeadActivities(store, Settings().model_copy(update={"library_dir": tmp_path}))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(leads.regrade_contacts, RegradeRequest(at=AT))
    assert err.value.non_retryable
    assert "grading.yaml:1: half_life_days: Field required" in str(err.value)


async def test_regrades_of_one_contact_at_once_record_its_change_once(store: ContactStore) -> None:
    await store.upsert_contacts([ADVISER])
    for _ in range(5):
        results = await asyncio.gather(*(store.regrade("c1", SPEC, AT) for _ in range(8)))
        assert len([r for r in results if r is not None]) <= 1
    assert await grade_changes(store) == [("c1", {"from": None, "to": "C", "score": 0})]
