"""Every path of the seed journeys, as data: who enters, what they do, and what must reach them.

Shared by the path tests and by `tests/record_histories.py`, which records a replay history for
each scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import WorkflowHandle

from journeys.contacts import Contact
from journeys.identity import workflow_id
from journeys.library import load_journey
from journeys.models import JourneyEvent, JourneyInput, JourneyResult
from journeys.settings import LIBRARY_DIR
from tests.temporal_fixtures import Stack, wait_for_step
from workflows.journey import JourneyWorkflow

ADA = Contact(
    id="c-ada",
    email="ada@example.com",
    phone="+48601234567",
    attributes={"first_name": "Ada"},
    consent={"email": True, "sms": True},
)
BOB = Contact(id="c-bob", email="bob@example.com", consent={"email": True})
CAL = Contact(id="c-cal", email="cal@example.com", in_mobile_app=True, consent={"email": True})

INTRO = "Welcome, Ada: part 1 of 3"
INTRO_BOB = "Welcome: part 1 of 3"
PART_2 = "Part 2 of 3: the feature most people miss"
PART_3 = "Part 3 of 3: what our best customers do"
FOLLOWUP = "In case you missed it: part 1 of 3"
NUDGE = "Something interesting is waiting in your email inbox"
SMS_FOLLOWUP = "Still there?"


@dataclass(frozen=True)
class Scenario:
    name: str
    journey: str
    contact: Contact
    # (step the run must stand at, event it then receives, the send step the event is about)
    actions: tuple[tuple[str, str, str | None], ...] = ()
    subjects: tuple[str, ...] = ()
    sms: tuple[str, ...] = ()  # the start of each SMS body, in order
    tags: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    ledger: tuple[tuple[str, str], ...] = field(default=())  # (step, channel) of every delivery


SCENARIOS = [
    Scenario(
        "opened",
        "lead_nurturing",
        ADA,
        actions=(("intro_opened", "opened", "intro"),),
        subjects=(INTRO, PART_2, PART_3),
        tags=("NURTURE_COMPLETED",),
    ),
    Scenario(
        "phone_then_followup_opened",
        "lead_nurturing",
        ADA,
        actions=(("followup_opened", "opened", "followup_email"),),
        subjects=(INTRO, FOLLOWUP, PART_2, PART_3),
        sms=(NUDGE,),
        tags=("NURTURE_COMPLETED",),
    ),
    Scenario(
        "phone_never_opened",
        "lead_nurturing",
        ADA,
        subjects=(INTRO, FOLLOWUP),
        sms=(NUDGE, SMS_FOLLOWUP),
        tags=("NURTURE_SMS_FOLLOWUP",),
    ),
    Scenario(
        "no_phone_resend_opened",
        "lead_nurturing",
        BOB,
        actions=(("resend_opened", "opened", "resend_intro"),),
        subjects=(INTRO_BOB, INTRO_BOB),
        tags=("NURTURE_REENGAGED",),
    ),
    Scenario(
        "no_phone_never_opened",
        "lead_nurturing",
        BOB,
        subjects=(INTRO_BOB, INTRO_BOB),
        tags=("NURTURE_AUDIENCE",),
        audiences=("gads_brand_presence",),
    ),
    Scenario(
        "mobile_app",
        "mobile_app_nurturing",
        CAL,
        tags=("MOBILE_NURTURE_COMPLETED",),
        ledger=(("push_1", "mobile_push"), ("push_2", "mobile_push"), ("push_3", "mobile_push")),
    ),
]


def event(kind: str, step: str | None = None, **data: object) -> JourneyEvent:
    return JourneyEvent(kind=kind, step=step, occurred_at=datetime.now(UTC), data=data)


async def start(stack: Stack, journey: str, contact_id: str, speed: float = 1.0) -> WorkflowHandle:
    spec = load_journey(LIBRARY_DIR / f"{journey}.yaml", LIBRARY_DIR)
    return await stack.env.client.start_workflow(
        JourneyWorkflow.run,
        JourneyInput(spec=spec, contact_id=contact_id, speed=speed),
        id=workflow_id(journey, contact_id),
        task_queue=stack.settings.task_queue,
    )


async def play(stack: Stack, scenario: Scenario) -> tuple[WorkflowHandle, JourneyResult]:
    """Run one scenario to its end, delivering its events when the run reaches each step."""
    await stack.store.upsert_contacts([scenario.contact])
    handle = await start(stack, scenario.journey, scenario.contact.id)
    for at_step, kind, about in scenario.actions:
        await wait_for_step(stack.env, handle, at_step)
        await handle.signal(JourneyWorkflow.event, event(kind, about))
    result = await handle.result()
    return handle, result


async def assert_outcome(stack: Stack, scenario: Scenario, result: JourneyResult) -> None:
    """What reached the contact, in order, and what the store holds, is what the seed says."""
    contact = scenario.contact
    assert [m["Subject"] for m in stack.mail.messages] == list(scenario.subjects)
    assert all(m["To"] == contact.email for m in stack.mail.messages)
    assert len(stack.sms.messages) == len(scenario.sms)
    for sent, expected in zip(stack.sms.messages, scenario.sms, strict=True):
        assert sent["to"] == contact.phone
        assert sent["body"].startswith(expected)
    assert await stack.store.tags_of(contact.id) == sorted(scenario.tags)
    assert await stack.store.audiences_of(contact.id) == sorted(scenario.audiences)
    if scenario.ledger:
        rows = await stack.store.deliveries_of(contact.id)
        assert [(r["step_id"], r["channel"]) for r in rows] == list(scenario.ledger)
        assert {r["status"] for r in rows} == {"sent"}
    assert result.reason == "end"
