"""Step kinds and run mechanics beyond the seed journeys: loops and their bounds,
continue-as-new, A/B variants, splits, refused sends, local-time waits, speed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from devstack.sinks.sms import INVALID_NUMBER
from journeys.contacts import Contact
from journeys.models import JourneyEvent, JourneyInput
from journeys.spec import JourneySpec
from tests.temporal_fixtures import Stack
from workflows.journey import JourneyWorkflow

ANN = Contact(
    id="c-ann",
    email="ann@example.com",
    phone="+48601234567",
    time_zone="Europe/Warsaw",
    consent={"email": True, "sms": True},
)


def spec(steps: list[dict[str, Any]], **extra: Any) -> JourneySpec:
    return JourneySpec.model_validate(
        {
            "id": "test",
            "version": 1,
            "description": "test",
            "trigger": "manual",
            "steps": steps,
            **extra,
        }
    )


async def run(
    stack: Stack, journey: JourneySpec, contact: Contact = ANN, **options: Any
) -> WorkflowHandle:
    await stack.store.upsert_contacts([contact])
    return await stack.env.client.start_workflow(
        JourneyWorkflow.run,
        JourneyInput(spec=journey, contact_id=contact.id, **options),
        id=f"journey:test:{contact.id}",
        task_queue=stack.settings.task_queue,
    )


NOW = datetime(2026, 11, 23, tzinfo=UTC)

WEEKLY_LOOP = [
    {"id": "hello", "kind": "send", "channel": "email", "template": "lead_part_2"},
    {"id": "pause", "kind": "wait", "duration": "7d"},
    {"id": "again", "kind": "goto", "target": "hello"},
]


async def test_a_loop_continues_as_new_and_stops_at_its_step_bound(stack: Stack) -> None:
    handle = await run(stack, spec(WEEKLY_LOOP, max_steps=14), steps_per_run=4)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "executed 14 steps (its max_steps) at step" in str(failure.value.cause)
    # 14 steps of send/wait/goto: sends at steps 1, 4, 7, 10, 13, each a new message.
    assert len(stack.mail.messages) == 5
    assert len({m["Message-ID"] for m in stack.mail.messages}) == 5
    # Runs of 4 steps each: the run continued as new three times, carrying its state along.
    assert await runs_in_chain(stack, handle) == 4


@pytest.mark.parametrize(
    ("journey_says", "run_says"), [(4, 200), (100, 4)], ids=["journey's", "run's"]
)
async def test_the_fewer_steps_per_run_of_the_journey_and_the_run_hold(
    stack: Stack, journey_says: int, run_says: int
) -> None:
    """A journey that loops for months asks for shorter runs than the default; it never makes
    a run longer than its starter asked."""
    journey = spec(WEEKLY_LOOP, max_steps=14, steps_per_run=journey_says)
    handle = await run(stack, journey, steps_per_run=run_says)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert await runs_in_chain(stack, handle) == 4


async def runs_in_chain(stack: Stack, handle: WorkflowHandle) -> int:
    run_id: str | None = handle.result_run_id
    runs = 0
    while run_id:
        runs += 1
        history = await stack.env.client.get_workflow_handle(
            handle.id, run_id=run_id
        ).fetch_history()
        last = history.events[-1]
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return runs


async def test_speed_divides_every_duration(stack: Stack) -> None:
    journey = spec(
        [
            {"id": "first", "kind": "send", "channel": "email", "template": "lead_part_2"},
            {"id": "pause", "kind": "wait", "duration": "1d"},
            {"id": "second", "kind": "send", "channel": "email", "template": "lead_part_3"},
            {"id": "done", "kind": "end"},
        ]
    )
    handle = await run(stack, journey, speed=8640)
    result = await handle.result()
    at = {v.step: v.at for v in result.visits}
    assert abs(at["second"] - at["pause"] - timedelta(seconds=10)) < timedelta(seconds=2)


async def test_ab_variant_is_drawn_once_per_run_and_recorded(stack: Stack) -> None:
    journey = spec(
        [
            {
                "id": "offer",
                "kind": "send",
                "channel": "email",
                "variants": [
                    {"name": "a", "template": "lead_part_2", "weight": 1},
                    {"name": "b", "template": "lead_part_3", "weight": 1},
                ],
            },
            {"id": "done", "kind": "end"},
        ]
    )
    result = await (await run(stack, journey)).result()
    (row,) = await stack.store.deliveries_of(ANN.id)
    subject = stack.mail.messages[0]["Subject"]
    expected = {"a": "Part 2 of 3", "b": "Part 3 of 3"}[row["variant"]]
    assert subject.startswith(expected)
    assert result.visits[0].outcome == f"sent (variant {row['variant']})"


async def test_split_follows_one_arm(stack: Stack) -> None:
    journey = spec(
        [
            {
                "id": "coin",
                "kind": "split",
                "arms": [{"weight": 1, "next": "heads"}, {"weight": 1, "next": "tails"}],
            },
            {"id": "heads", "kind": "end", "tag": "HEADS"},
            {"id": "tails", "kind": "end", "tag": "TAILS"},
        ]
    )
    result = await (await run(stack, journey)).result()
    tags = await stack.store.tags_of(ANN.id)
    assert tags in (["HEADS"], ["TAILS"])
    assert [v.step for v in result.visits] == ["coin", tags[0].lower()]


async def test_a_refused_sms_becomes_a_failed_event_the_journey_branches_on(stack: Stack) -> None:
    journey = spec(
        [
            {
                "id": "text",
                "kind": "send",
                "channel": "sms",
                "template": "lead_inbox_nudge",
                "on_failure": "by_email",
            },
            {"id": "texted", "kind": "end", "tag": "TEXTED"},
            {"id": "by_email", "kind": "send", "channel": "email", "template": "lead_followup"},
            {"id": "emailed", "kind": "end", "tag": "EMAILED"},
        ]
    )
    unreachable = ANN.model_copy(update={"phone": INVALID_NUMBER})
    handle = await run(stack, journey, unreachable)
    result = await handle.result()
    assert stack.sms.messages == []
    assert [m["Subject"] for m in stack.mail.messages] == ["In case you missed it: part 1 of 3"]
    assert await stack.store.tags_of(ANN.id) == ["EMAILED"]
    assert "21211" in (result.visits[0].outcome or "")
    status = await handle.query(JourneyWorkflow.status)
    assert [(e.kind, e.step) for e in status.events] == [("failed", "text")]
    (row, _) = await stack.store.deliveries_of(ANN.id)
    assert row["status"] == "failed"


async def test_wait_until_a_local_time_of_day(stack: Stack) -> None:
    journey = spec(
        [
            {"id": "morning", "kind": "wait", "until": "09:00"},
            {"id": "hello", "kind": "send", "channel": "email", "template": "lead_part_2"},
            {"id": "done", "kind": "end"},
        ]
    )
    result = await (await run(stack, journey)).result()
    sent_at = next(v.at for v in result.visits if v.step == "hello")
    local = sent_at.astimezone(ZoneInfo("Europe/Warsaw"))
    assert (local.hour, local.minute) == (9, 0)


async def test_an_ab_variant_stays_the_same_when_a_loop_comes_back(stack: Stack) -> None:
    journey = spec(
        [
            {
                "id": "offer",
                "kind": "send",
                "channel": "email",
                "variants": [
                    {"name": "a", "template": "lead_part_2"},
                    {"name": "b", "template": "lead_part_3"},
                ],
            },
            {"id": "pause", "kind": "wait", "duration": "7d"},
            {"id": "again", "kind": "goto", "target": "offer"},
        ],
        max_steps=12,
    )
    with pytest.raises(WorkflowFailureError):
        await (await run(stack, journey)).result()
    rows = await stack.store.deliveries_of(ANN.id)
    assert len(rows) == 4
    assert len({r["variant"] for r in rows}) == 1
    assert len({m["Subject"] for m in stack.mail.messages}) == 1


async def test_cancelling_a_run_stops_it_even_while_a_send_is_retrying(stack: Stack) -> None:
    await stack.mail.stop()  # the SMTP server is down: the send retries
    journey = spec(
        [
            {"id": "hello", "kind": "send", "channel": "email", "template": "lead_part_2"},
            {"id": "done", "kind": "end", "tag": "DONE"},
        ]
    )
    handle = await run(stack, journey)
    async with asyncio.timeout(20):
        while not await retrying(handle):  # noqa: ASYNC110 - polls Temporal, nothing to await
            await asyncio.sleep(0.1)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert await stack.store.tags_of(ANN.id) == []


async def retrying(handle: WorkflowHandle) -> bool:
    pending = (await handle.describe()).raw_description.pending_activities
    return any(activity.attempt >= 2 for activity in pending)


async def test_continue_as_new_carries_only_the_events_a_step_can_still_use(stack: Stack) -> None:
    journey = spec(
        [
            {"id": "pause", "kind": "wait", "duration": "1d"},
            {"id": "again", "kind": "goto", "target": "pause"},
        ],
        exit_events=["unsubscribed"],
        max_steps=6,
    )
    handle = await run(stack, journey, steps_per_run=4)
    for kind in ("visited_url", "visited_url", "unsubscribed_elsewhere"):
        await handle.signal(JourneyWorkflow.event, JourneyEvent(kind=kind, occurred_at=NOW))
    with pytest.raises(WorkflowFailureError):
        await handle.result()  # the step bound, in the second run
    assert await runs_in_chain(stack, handle) == 2
    # The second run started without the page visits nobody waits for.
    status = await handle.query(JourneyWorkflow.status)
    assert status.events == []
    assert [v.step for v in status.visits][-2:] == ["pause", "again"]


async def test_a_branch_reads_answers_by_when_they_were_given_not_when_they_arrived(
    stack: Stack,
) -> None:
    journey = spec(
        [
            {"id": "pause", "kind": "wait", "duration": "1d"},
            {
                "id": "score",
                "kind": "branch",
                "conditions": [{"when": "nps:promoter", "next": "promoter"}],
                "otherwise": "other",
            },
            {"id": "promoter", "kind": "end", "tag": "PROMOTER"},
            {"id": "other", "kind": "end", "tag": "NOT_PROMOTER"},
        ]
    )
    handle = await run(stack, journey)
    # The first answer (3) was kept while Temporal was down and arrives after the second (9).
    for score, at in ((9, NOW), (3, NOW - timedelta(hours=1))):
        answer = JourneyEvent(kind="nps_answered", occurred_at=at, data={"score": score})
        await handle.signal(JourneyWorkflow.event, answer)
    await handle.result()
    assert await stack.store.tags_of(ANN.id) == ["PROMOTER"]


async def test_a_copy_of_an_event_is_ignored_even_after_continue_as_new(stack: Stack) -> None:
    journey = spec(
        [
            {
                "id": "first",
                "kind": "wait_for",
                "event": "clicked",
                "timeout": "1d",
                "on_event": "second",
                "on_timeout": "none",
            },
            {
                "id": "second",
                "kind": "wait_for",
                "event": "clicked",
                "timeout": "1d",
                "on_event": "twice",
                "on_timeout": "once",
            },
            {"id": "none", "kind": "end", "tag": "NONE"},
            {"id": "once", "kind": "end", "tag": "ONCE"},
            {"id": "twice", "kind": "end", "tag": "TWICE"},
        ]
    )
    started = await run(stack, journey, steps_per_run=1)
    latest = stack.env.client.get_workflow_handle(started.id)  # whichever run is current
    click = JourneyEvent(kind="clicked", occurred_at=NOW, id="click-1")
    await latest.signal(JourneyWorkflow.event, click)
    # The click is used by the first wait, then left behind when the run continues as new.
    async with asyncio.timeout(10):
        while True:
            if (await latest.describe()).run_id != started.result_run_id:
                break
            await asyncio.sleep(0.05)
    assert await runs_in_chain(stack, started) == 2
    # Handed over again (the gateway's answer from Temporal was lost): the same click.
    await latest.signal(JourneyWorkflow.event, click)
    await started.result()  # follows the chain to its last run
    assert await stack.store.tags_of(ANN.id) == ["ONCE"]


@pytest.mark.parametrize(
    ("first_step", "stored", "detail"),
    [
        (
            {
                "id": "first",
                "kind": "branch",
                # The branch reads the attribute: only the facts a branch reads are loaded.
                "conditions": [{"when": "attribute:name == Ann", "next": "done"}],
                "otherwise": "done",
            },
            {"attributes": {"name": "\ud800"}},
            "surrogate",
        ),
        ({"id": "first", "kind": "wait", "until": "09:00"}, {"time_zone": "Mars/Olympus"}, "Mars"),
    ],
    ids=["branch on text no JSON carries", "wait until local time in no time zone"],
)
async def test_a_contact_that_cannot_be_read_ends_the_run_with_the_reason(
    stack: Stack, first_step: dict[str, Any], stored: dict[str, Any], detail: str
) -> None:
    journey = spec([first_step, {"id": "done", "kind": "end"}])
    # Stored before the gateway refused such data: no activity can use it, however often it tries.
    broken = Contact.model_construct(**{**ANN.model_dump(), **stored})
    handle = await run(stack, journey, broken)
    async with asyncio.timeout(30):
        result = await handle.result()
    assert result.reason == "contact_unreadable"
    assert result.ended_at_step == "first"
    status = await handle.query(JourneyWorkflow.status)
    assert status.finished and "cannot be read" in status.details
    assert detail in status.details
