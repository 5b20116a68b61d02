"""Each run records its entry's path for the journey reports: the steps it visited in order,
where it went after each, the A/B variant drawn, and how it ended."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from journeys.models import JourneyEvent
from journeys.store.schema import journey_entries, journey_visits
from tests.temporal_fixtures import Stack, wait_for_step
from tests.test_interpreter import ANN, run, spec
from tests.test_journey_report import SCRIPTED


async def path_rows(stack: Stack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with stack.store.engine.connect() as conn:
        entries = [
            dict(r)
            for r in conn.execute(
                select(journey_entries).where(journey_entries.c.contact_id == ANN.id)
            ).mappings()
        ]
        visits = [
            dict(r)
            for r in conn.execute(
                select(journey_visits).order_by(journey_visits.c.entry_id, journey_visits.c.n)
            ).mappings()
        ]
    return entries, visits


async def test_a_run_records_each_step_it_visits_where_it_went_and_how_it_ended(
    stack: Stack,
) -> None:
    journey = spec(SCRIPTED, goal={"event": "opened", "within": "14d"})
    handle = await run(stack, journey)
    await wait_for_step(stack.env, handle, "opened")
    # Waiting: the entry is recorded, not ended, the wait's visit open.
    (entry,), visits = await path_rows(stack)
    assert entry["journey_id"] == "test" and entry["ended_at"] is None
    assert [(v["n"], v["step_id"], v["next_step"]) for v in visits] == [
        (0, "offer", "opened"),
        (1, "opened", None),
    ]
    assert visits[0]["variant"] in {"a", "b"}
    assert visits[1]["left_at"] is None

    opened = JourneyEvent(
        kind="opened", step="offer", occurred_at=await stack.env.get_current_time()
    )
    await handle.signal("event", opened)
    result = await handle.result()
    (entry,), visits = await path_rows(stack)
    assert entry["end_reason"] == "end" and entry["ended_at"] is not None
    assert entry["entry_id"] == handle.result_run_id
    assert entry["goal_until"] - entry["entered_at"] == timedelta(days=14)
    assert [(v["step_id"], v["next_step"], v["outcome"]) for v in visits] == [
        ("offer", "opened", f"sent (variant {visits[0]['variant']})"),
        ("opened", "thanks", "opened"),
        ("thanks", "bye", "sent"),
        ("bye", None, "ended"),
    ]
    assert all(v["left_at"] is not None for v in visits)
    assert [v.step for v in result.visits] == [v["step_id"] for v in visits]


async def test_an_exit_event_ends_the_entry_early(stack: Stack) -> None:
    handle = await run(stack, spec(SCRIPTED, exit_events=["purchase"]))
    await wait_for_step(stack.env, handle, "opened")
    at = await stack.env.get_current_time()
    await handle.signal("event", JourneyEvent(kind="purchase", occurred_at=at))
    await handle.result()
    (entry,), visits = await path_rows(stack)
    assert entry["end_reason"] == "exit_event"
    assert entry["goal_until"] is None
    assert [v["step_id"] for v in visits] == ["offer", "opened"]
    assert visits[1]["outcome"] == "left" and visits[1]["left_at"] is not None
