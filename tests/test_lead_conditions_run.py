"""A journey's branch on a behaviour count, through the facts activity and the store: the
window ends at the run's clock (Temporal's time, skipped ahead in this test), not the worker's."""

from __future__ import annotations

from datetime import timedelta

from journeys.models import JourneyEvent
from tests.temporal_fixtures import Stack
from tests.test_interpreter import ANN, run, spec

BOUGHT_ONCE = "count:purchase within 180d == 1"


def branch(step_id: str, then: str) -> dict[str, object]:
    return {
        "id": step_id,
        "kind": "branch",
        "conditions": [{"when": BOUGHT_ONCE, "next": f"{step_id}_once"}],
        "otherwise": then,
    }


async def test_a_count_branch_counts_the_events_in_the_window_ending_at_the_runs_clock(
    stack: Stack,
) -> None:
    journey = spec(
        [
            branch("now", "later"),
            {"id": "now_once", "kind": "wait", "duration": "175d", "next": "later"},
            {"id": "later", "kind": "goto", "target": "half_a_year_on"},
            branch("half_a_year_on", "done"),
            {"id": "half_a_year_on_once", "kind": "end"},
            {"id": "done", "kind": "end"},
        ],
        events=["purchase"],
    )
    await stack.store.upsert_contacts([ANN])
    # The test server's clock, which tests before this one may have skipped far ahead.
    bought = await stack.env.get_current_time() - timedelta(days=10)
    await stack.store.record_event(ANN.id, JourneyEvent(kind="purchase", occurred_at=bought))

    result = await (await run(stack, journey)).result()

    # Bought once in the last 180 days at the start; 175 days on, that purchase is 185 days old.
    assert [(v.step, v.outcome) for v in result.visits if v.step in ("now", "half_a_year_on")] == [
        ("now", BOUGHT_ONCE),
        ("half_a_year_on", "otherwise"),
    ]
