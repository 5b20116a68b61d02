"""The demo behind `make run`, run twice on the same store and Temporal (a second `make run`):
the second sends nothing the first one sent."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from devstack.demo import DEMO_CONTACTS, run_demo
from journeys.identity import workflow_id
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


def _sent(stack: Stack) -> dict[str, int]:
    return {
        "email": len(stack.mail.messages),
        "sms": len(stack.sms.messages),
        "web_push": len(stack.web_push.messages),
        "mobile_push": len(stack.fcm.messages),
    }


async def test_a_second_demo_sends_nothing_the_first_one_sent(stack: Stack) -> None:
    await run_demo(stack.env.client, stack.store, stack.settings, 1.0, stack.web_push)
    first_runs = await _finish_every_run(stack)
    first = _sent(stack)
    # The purchases reached nps_omnichannel by SMS (Ada) and by web push (Gus).
    assert first["sms"] > 0 and first["web_push"] > 0

    await run_demo(stack.env.client, stack.store, stack.settings, 1.0, stack.web_push)
    # nps_omnichannel allows re-entry after exit, but not for the same purchase: no new runs.
    assert await _finish_every_run(stack) == first_runs
    assert _sent(stack) == first
