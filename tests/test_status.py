"""What a run says about time, in its status and in `journeys status`: when each step was entered
and left, and when each event happened (not when the wait it ended began)."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from journeys.identity import workflow_id
from journeys.library import load_journey
from journeys.models import JourneyEvent
from journeys.settings import LIBRARY_DIR
from tests.api_fixtures import new_contact_id
from tests.gateway_fixtures import wait_at
from tests.scenarios import ADA
from tests.temporal_fixtures import PAYLOAD_KEYS, Stack
from workflows.journey import JourneyWorkflow
from workflows.runs import start_journey

JOURNEYS = str(Path(sys.executable).parent / "journeys")
WARSAW_SUMMER = timezone(timedelta(hours=2))


def utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


async def test_steps_show_when_entered_and_left_and_events_when_they_happened(
    stack: Stack,
) -> None:
    spec = load_journey(LIBRARY_DIR / "lead_nurturing.yaml", LIBRARY_DIR)
    # A contact of its own: the time-skipping server is shared, and Ada went through already.
    contact = ADA.model_copy(update={"id": new_contact_id()})
    await stack.store.upsert_contacts([contact])
    outcome = await start_journey(stack.env.client, spec, contact.id, stack.settings.task_queue)
    assert outcome == "started"
    handle = stack.env.client.get_workflow_handle_for(
        JourneyWorkflow.run, workflow_id(spec.id, contact.id)
    )
    # Polled without skipping time: the wait for the open begins at `entered`.
    await wait_at(handle, "intro_opened")
    entered = (await handle.query(JourneyWorkflow.status)).visits[-1].at
    await stack.env.sleep(timedelta(hours=1))
    # Opened an hour into the wait, reported a moment later in the reader's own zone.
    opened_at = (entered + timedelta(hours=1)).astimezone(WARSAW_SUMMER)
    await handle.signal(
        JourneyWorkflow.event, JourneyEvent(kind="opened", step="intro", occurred_at=opened_at)
    )
    await wait_at(handle, "between_parts")

    status = await handle.query(JourneyWorkflow.status)
    intro, wait, part_2, between = status.visits
    assert (wait.step, wait.at, wait.outcome) == ("intro_opened", entered, "opened")
    assert intro.left_at == entered
    # Left when the open reached the run, which is when the next step began.
    assert wait.left_at is not None
    assert timedelta(hours=1) <= wait.left_at - entered < timedelta(hours=1, seconds=10)
    assert part_2.at == wait.left_at
    assert between.left_at is None
    (opened,) = status.events
    assert opened.occurred_at == opened_at

    # `journeys status` says the same, every time in UTC.
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
        "JOURNEYS_LIBRARY": str(LIBRARY_DIR),
        "JOURNEYS_PAYLOAD_KEYS": PAYLOAD_KEYS,
        "COLUMNS": "200",
    }
    proc = await asyncio.create_subprocess_exec(
        JOURNEYS, "status", contact.id, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert out.decode().splitlines() == [
        f"lead_nurturing v2 (running): {status.details}",
        "  entered (UTC)        left (UTC)           step                 outcome",
        f"  {utc(intro.at)}  {utc(entered)}  intro                sent",
        f"  {utc(entered)}  {utc(part_2.at)}  intro_opened         opened",
        f"  {utc(part_2.at)}  {utc(between.at)}  part_2               sent",
        f"  {utc(between.at)}  -                    between_parts",
        "  happened (UTC)       event",
        f"  {utc(entered + timedelta(hours=1))}  opened about intro",
    ]
