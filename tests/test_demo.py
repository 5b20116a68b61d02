"""The demo behind `make run`, run twice on the same store and Temporal (a second `make run`):
the second sends nothing the first one sent."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from devstack.demo import DEMO_CONTACTS, run_demo
from journeys.identity import workflow_id
from journeys.library import load_journey
from journeys.reports.models import Period
from journeys.settings import LIBRARY_DIR
from journeys.spec import JourneySpec
from tests.temporal_fixtures import Stack

BUYERS = ("demo-ada", "demo-gus")


async def _finish_every_run(stack: Stack) -> dict[str, str]:
    """Let journey time pass, a day at a time, until every demo run has ended; each run's id by
    workflow id."""
    ids = [workflow_id("lead_nurturing", c.id) for c, _ in DEMO_CONTACTS]
    ids += [workflow_id("mobile_app_nurturing", "demo-fay")]
    ids += [workflow_id("nps_omnichannel", buyer) for buyer in BUYERS]
    async with asyncio.timeout(60):
        while True:
            runs = [await stack.env.client.get_workflow_handle(i).describe() for i in ids]
            if all(r.status != WorkflowExecutionStatus.RUNNING for r in runs):
                break
            await stack.env.sleep(timedelta(days=1))
    assert all(r.status == WorkflowExecutionStatus.COMPLETED for r in runs)
    return {r.id: r.run_id for r in runs}


def lead_nurturing() -> JourneySpec:
    return load_journey(LIBRARY_DIR / "lead_nurturing.yaml")


def _sent(stack: Stack) -> dict[str, int]:
    return {
        "email": len(stack.mail.messages),
        "sms": len(stack.sms.messages),
        "web_push": len(stack.web_push.messages),
        "mobile_push": len(stack.fcm.messages),
    }


async def test_a_second_demo_sends_nothing_the_first_one_sent(own_stack: Stack) -> None:
    # A server of its own, its clock the wall clock's: the demo's purchases are stamped with
    # the wall clock, and a shared server years ahead would put them before the entries.
    stack = own_stack
    await run_demo(stack.env.client, stack.store, stack.settings, 1.0, stack.web_push)
    first_runs = await _finish_every_run(stack)
    first = _sent(stack)
    # The purchases reached nps_omnichannel by SMS (Ada) and by web push (Gus).
    assert first["sms"] > 0 and first["web_push"] > 0
    # The dashboard shows what the demo's contacts did with lead_nurturing's messages: four
    # opened one (Eve's privacy proxy's fetch is a machine's), Ada clicked, two bought.
    until = await stack.env.get_current_time() + timedelta(days=1)
    (nurturing,) = (await stack.store.overview([lead_nurturing()], Period(until=until))).journeys
    assert (nurturing.entered, nurturing.finished, nurturing.conversions) == (7, 7, 2)
    assert (nurturing.human_opens, nurturing.machine_opens, nurturing.clicks) == (4, 1, 1)

    await run_demo(stack.env.client, stack.store, stack.settings, 1.0, stack.web_push)
    # nps_omnichannel allows re-entry after exit, but not for the same purchase: no new runs.
    assert await _finish_every_run(stack) == first_runs
    assert _sent(stack) == first
