"""Quiet hours and the frequency cap in running journeys, on the time-skipping server: a send
waits durably for its window, an exit event still ends the run meanwhile, a capped send waits
or is skipped, and a transactional one goes at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHandle
from temporalio.worker import Replayer

from journeys.contacts import Contact
from journeys.models import JourneyInput, JourneyResult
from journeys.spec import JourneySpec
from tests.channel_fixtures import NO_SEND_WINDOW
from tests.scenarios import event
from tests.temporal_fixtures import CONVERTER, Stack, running_stack, summaries, wait_for_step
from workflows.journey import JourneyWorkflow

WARSAW = ZoneInfo("Europe/Warsaw")
ANN = Contact(id="c-ann", phone="+48601234567", time_zone="Europe/Warsaw", consent={"sms": True})


@pytest.fixture
async def night(stack: Stack) -> AsyncIterator[Stack]:
    """A worker with the default quiet hours (SMS 21:00-08:00) and no cap."""
    settings = stack.settings.model_copy(
        update={"quiet_hours": "", "frequency_caps": NO_SEND_WINDOW}
    )
    async with running_stack(
        stack.env, stack.store, settings, stack.mail, stack.sms, stack.web_push, stack.fcm
    ) as worker:
        yield worker


@pytest.fixture
async def capped(stack: Stack) -> AsyncIterator[Stack]:
    """A worker with the default cap of one SMS a day and no quiet hours."""
    settings = stack.settings.model_copy(
        update={"quiet_hours": NO_SEND_WINDOW, "frequency_caps": ""}
    )
    async with running_stack(
        stack.env, stack.store, settings, stack.mail, stack.sms, stack.web_push, stack.fcm
    ) as worker:
        yield worker


def journey(name: str, *steps: dict[str, Any], **extra: Any) -> JourneySpec:
    return JourneySpec.model_validate(
        {"id": name, "version": 1, "description": name, "trigger": "manual", "steps": steps} | extra
    )


TEXT = {"id": "text", "kind": "send", "channel": "sms", "template": "lead_inbox_nudge"}
AT_23 = {"id": "late", "kind": "wait", "until": "23:00"}
DONE = {"id": "done", "kind": "end"}


async def start(stack: Stack, spec: JourneySpec, contact: Contact = ANN) -> WorkflowHandle:
    await stack.store.upsert_contacts([contact])
    return await stack.env.client.start_workflow(
        JourneyWorkflow.run,
        JourneyInput(spec=spec, contact_id=contact.id),
        id=f"journey:{spec.id}:{contact.id}",
        task_queue=stack.settings.task_queue,
    )


def left(result: JourneyResult, step: str) -> Any:
    visit = next(v for v in result.visits if v.step == step)
    assert visit.left_at is not None
    return visit


async def test_an_sms_due_at_23_local_goes_out_at_8_local(night: Stack) -> None:
    handle = await start(night, journey("late_sms", AT_23, TEXT, DONE))
    result = await handle.result()
    text = left(result, "text")
    assert (text.at.astimezone(WARSAW).hour, text.at.astimezone(WARSAW).minute) == (23, 0)
    assert (text.left_at.astimezone(WARSAW).hour, text.left_at.astimezone(WARSAW).minute) == (8, 0)
    assert text.outcome == "sent"
    assert len(night.sms.messages) == 1
    [check] = await night.store.send_checks_of(ANN.id)
    assert (check["status"], check["reason"]) == (
        "allowed",
        "quiet hours (until 08:00 Europe/Warsaw)",
    )
    # The Temporal UI says what the timer is for.
    shown = [text for _, text in await summaries(night.env.client, handle)]
    assert "hold SMS 'text': quiet hours (until 08:00 Europe/Warsaw)" in shown
    # The held path replays: the workflow decides the same from the same history.
    history = await handle.fetch_history()
    replayer = Replayer(workflows=[JourneyWorkflow], data_converter=CONVERTER)
    await replayer.replay_workflow(history)


async def test_an_exit_event_ends_the_run_while_a_send_waits_for_morning(night: Stack) -> None:
    handle = await start(
        night, journey("late_sms", AT_23, TEXT, DONE, exit_events=["unsubscribed"])
    )
    await wait_for_step(night.env, handle, "text")
    status = await handle.query(JourneyWorkflow.status)
    assert "held back by quiet hours (until 08:00 Europe/Warsaw)" in status.details
    await handle.signal(JourneyWorkflow.event, event("unsubscribed"))
    result = await handle.result()
    assert result.reason == "exit_event"
    assert left(result, "text").outcome == "left"
    assert night.sms.messages == []


async def test_a_transactional_sms_goes_at_once_in_quiet_hours(night: Stack) -> None:
    receipt = TEXT | {"transactional": True}
    result = await (await start(night, journey("receipt", AT_23, receipt, DONE))).result()
    text = left(result, "text")
    assert text.left_at.astimezone(WARSAW).hour == 23
    assert await night.store.send_checks_of(ANN.id) == []


async def sent_first(stack: Stack, *steps: dict[str, Any]) -> WorkflowHandle:
    """A journey's SMS sent, its run still going. Time skips only while a test awaits a result:
    the next journey starts at the moment of this SMS, not after whatever came to pass since."""
    handle = await start(stack, journey("first", TEXT, *steps))
    async with asyncio.timeout(20):
        while not stack.sms.messages:  # noqa: ASYNC110 - the stand-in has nothing to await
            await asyncio.sleep(0.05)
    return handle


async def test_a_second_journeys_sms_waits_a_day_for_the_cap(capped: Stack) -> None:
    first = await sent_first(capped, DONE)
    second = left(await (await start(capped, journey("second", TEXT, DONE))).result(), "text")
    assert second.outcome == "sent"
    gap = second.left_at - left(await first.result(), "text").left_at
    assert gap.total_seconds() == pytest.approx(86400, abs=60)
    assert len(capped.sms.messages) == 2


async def test_a_capped_send_the_step_says_to_skip_is_skipped_and_the_journey_sees_it(
    capped: Stack,
) -> None:
    first = await sent_first(capped, {"id": "pause", "kind": "wait", "duration": "7d"})
    skippable = TEXT | {"when_capped": "skip"}
    handle = await start(capped, journey("second", skippable, DONE))
    result = await handle.result()
    await first.result()
    assert left(result, "text").outcome == "skipped: frequency cap (1 SMS per day)"
    assert len(capped.sms.messages) == 1
    status = await handle.query(JourneyWorkflow.status)
    assert [(e.kind, e.step) for e in status.events] == [("skipped", "text")]
    statuses = {r["journey_id"]: r["status"] for r in await capped.store.deliveries_of(ANN.id)}
    assert statuses == {"first": "sent", "second": "capped"}


def test_old_send_steps_read_as_before() -> None:
    step = journey("old", TEXT).steps[0]
    assert step.model_dump(include={"transactional", "when_capped"}) == {
        "transactional": False,
        "when_capped": "wait",
    }


def test_a_transactional_send_cannot_say_what_to_do_when_capped() -> None:
    with pytest.raises(ValueError, match="never skipped"):
        journey("bad", TEXT | {"transactional": True, "when_capped": "skip"})
