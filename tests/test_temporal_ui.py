"""What the Temporal UI shows of a run on its default view, read back through the client on the
dev server: the run's summary and details, and a summary on every activity and every timer."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

from temporalio.api.enums.v1 import EventType

from journeys.channels import CHANNELS
from journeys.contacts import Contact
from journeys.identity import workflow_id
from journeys.models import JourneyEvent
from journeys.spec import JourneySpec
from tests.api_fixtures import GatewayStack, new_contact_id
from tests.gateway_fixtures import wait_at
from tests.temporal_fixtures import summaries
from workflows.journey import SEND_HEARTBEAT_TIMEOUT, JourneyWorkflow
from workflows.runs import hand_event, start_journey


async def test_a_run_started_by_its_trigger_tells_its_story(gateway_stack: GatewayStack) -> None:
    stack = gateway_stack
    contact_id = new_contact_id()
    await stack.store.upsert_contacts(
        [Contact(id=contact_id, email="lee@example.com", consent={"email": True})]
    )
    # Given in the caller's zone: the details say it in UTC, like every time the UI shows.
    added = JourneyEvent(
        kind="contact_added", occurred_at=datetime.fromisoformat("2026-11-30T10:15:00+01:00")
    )
    library = [stack.gw.library["lead_nurturing"]]
    await hand_event(stack.client, library, contact_id, added, stack.settings.task_queue)
    handle = stack.client.get_workflow_handle(workflow_id("lead_nurturing", contact_id))
    await wait_at(handle, "intro_opened")

    description = await handle.describe()
    assert await description.static_summary() == f"lead_nurturing v2 for contact {contact_id}"
    assert await description.static_details() == (
        "Intro email, then three installments by email; leads who do not open get an SMS nudge "
        "(if we have their phone) or a resend, and those who never open join the brand-presence "
        "ad audience.\n\n"
        "Trigger: contact_added. Started by event 'contact_added' that happened at "
        "2026-11-30 09:15:00 UTC."
    )
    assert await summaries(stack.client, handle) == [
        ("activity", "email 'intro' with template lead_intro"),
        ("local activity", "record the path for the journey reports"),
        ("timer", "wait up to 3 days for 'intro' to be opened"),
    ]


# Every kind of step that schedules an activity or starts a timer, each once.
EVERY_KIND = JourneySpec.model_validate(
    {
        "id": "ui_story",
        "version": 2,
        "description": "Every step kind that acts or waits.",
        "trigger": "purchase",
        "active": False,
        "steps": [
            {
                "id": "offer",
                "kind": "send",
                "channel": "email",
                "variants": [
                    {"name": "a", "template": "lead_part_2"},
                    {"name": "b", "template": "lead_part_3"},
                ],
            },
            {"id": "morning", "kind": "wait", "until": "09:00"},
            {"id": "pause", "kind": "wait", "duration": "2h"},
            {
                "id": "bought",
                "kind": "wait_for",
                "event": "purchase",
                "timeout": "1d",
                "on_event": "check",
                "on_timeout": "check",
            },
            {
                "id": "check",
                "kind": "branch",
                "conditions": [{"when": "has_phone", "next": "retag"}],
                "otherwise": "retag",
            },
            {"id": "retag", "kind": "tag", "add": ["VIP"], "remove": ["LEAD"]},
            {"id": "leave", "kind": "audience", "audience": "gads", "action": "remove"},
            {"id": "done", "kind": "end", "tag": "FINISHED"},
        ],
    }
)


async def test_every_activity_and_timer_has_a_summary(gateway_stack: GatewayStack) -> None:
    stack = gateway_stack
    contact_id = new_contact_id()
    await stack.store.upsert_contacts(
        [Contact(id=contact_id, email="kim@example.com", consent={"email": True})]
    )
    # A day lasts a second.
    await start_journey(
        stack.client, EVERY_KIND, contact_id, stack.settings.task_queue, speed=86400
    )
    handle = stack.client.get_workflow_handle_for(
        JourneyWorkflow.run, workflow_id("ui_story", contact_id)
    )
    result = await asyncio.wait_for(handle.result(), 20)
    variant = "a" if result.visits[0].outcome == "sent (variant a)" else "b"
    template = {"a": "lead_part_2", "b": "lead_part_3"}[variant]

    description = await handle.describe()
    assert await description.static_summary() == f"ui_story v2 for contact {contact_id}"
    assert await description.static_details() == (
        "Every step kind that acts or waits.\n\n"
        "Trigger: purchase (inactive: started by hand only). Started by hand.\n\n"
        "Speed 86400: every wait lasts 1/86400 of its duration."
    )
    found = await summaries(stack.client, handle)
    # At a speed other than 1 a timer also says how long it really lasts; until 09:00 depends on
    # the clock.
    kind, until = found.pop(3)
    assert kind == "timer"
    assert re.fullmatch(r"wait until 09:00 local \([0-9.e-]+ s at speed 86400\)", until)
    assert found == [
        ("activity", f"email 'offer' with template {template} (variant {variant})"),
        ("local activity", "record the path for the journey reports"),
        ("local activity", "seconds until 09:00 local"),
        ("local activity", "record the path for the journey reports"),
        ("timer", "wait 2 hours (0.083333 s at speed 86400)"),
        ("local activity", "record the path for the journey reports"),
        ("timer", "wait up to 1 day for event 'purchase' (1 s at speed 86400)"),
        ("local activity", "load contact facts for branch 'check'"),
        ("activity", "tag +VIP -LEAD"),
        ("activity", "audience remove 'gads'"),
        ("activity", "tag +FINISHED"),
        ("local activity", "record the path for the journey reports"),
    ]
    # A send whose worker died is retried within seconds: it heartbeats.
    [send] = [
        e.activity_task_scheduled_event_attributes
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == CHANNELS["email"].checked_activity
    ]
    assert send.heartbeat_timeout.ToTimedelta() == SEND_HEARTBEAT_TIMEOUT
