"""cd_lead_nurturing (seed 002's eNurturing) walked for a year on the time-skipping server: a C
lead's monthly newsletters on their own morning, the quarterly invitations, a call from their
sales owner after two clicks within 30 days, and the hand-off to sales once they are a B."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from journeys.contacts import Contact
from journeys.decisions import task_owner
from journeys.events import CLICKED
from journeys.identity import workflow_id
from journeys.library import load_journey
from journeys.models import JourneyEvent, JourneyResult
from journeys.plans.changes import Complete
from journeys.plans.records import PlanRecord
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from tests.scenarios import (
    CD_HANDOFF,
    CD_INVITATION,
    CD_NURTURE_CALL,
    CD_NURTURE_NEWSLETTER,
    LARGER_COMPANY,
    LEA,
    SALES,
    regraded,
)
from tests.temporal_fixtures import Stack
from workflows.journey import JourneyWorkflow
from workflows.plan_runs import change_plan
from workflows.runs import hand_event

JOURNEY = "cd_lead_nurturing"
SPEC = load_journey(LIBRARY_DIR / f"{JOURNEY}.yaml", LIBRARY_DIR)
OWNER = "s-ola"
# Lea, a C lead, as a B: the same role at a larger company.
AT_A_LARGER_COMPANY = LEA.model_copy(update={"attributes": {**LEA.attributes, **LARGER_COMPANY}})


@pytest.fixture
def store(store_on_each_database: ContactStore) -> ContactStore:
    """The journey's reads and writes (grades, counts, send checks, task plans), on SQLite and
    on PostgreSQL."""
    return store_on_each_database


@pytest.fixture
def push_settings(push_settings: Settings) -> Settings:
    """The worker with email's frequency cap on (3 in 7 days, its default): the nurturing keeps
    under it, and each send's check is recorded with the run's clock (`send_checks`)."""
    return push_settings.model_copy(update={"frequency_caps": ""})


async def graded_as(stack: Stack, contact: Contact) -> None:
    """The lead stored as `contact` and regraded, as the gateway regrades after an event; its
    grade_changed handed to the lead's runs (cd_lead_nurturing's trigger), as the outbox does."""
    await stack.store.upsert_contacts([contact])
    event = await regraded(stack, contact.id)
    assert event is not None
    await hand_event(stack.env.client, [SPEC], contact.id, event, stack.settings.task_queue)


async def walk(stack: Stack, until: Callable[[], Awaitable[bool]], days: int = 366) -> None:
    """Let journey time pass, a day at a time, until `until` holds; at most `days` days."""
    for _ in range(days):
        if await until():
            return
        await stack.env.sleep(timedelta(days=1))
    raise AssertionError(f"still not there after {days} days")


def mail_to(stack: Stack, address: str) -> list[EmailMessage]:
    return [m for m in stack.mail.messages if m["To"] == address]


def subjects(stack: Stack) -> list[str]:
    return [str(m["Subject"]) for m in mail_to(stack, str(LEA.email))]


def run_of(stack: Stack) -> WorkflowHandle[JourneyWorkflow, JourneyResult]:
    """The lead's run, whichever of its runs (after continue-as-new) is the latest."""
    return stack.env.client.get_workflow_handle_for(
        JourneyWorkflow.run, workflow_id(JOURNEY, LEA.id)
    )


async def standing_at(stack: Stack, step: str, newsletters: int) -> bool:
    status = await run_of(stack).query(JourneyWorkflow.status)
    return (
        status.current_step == step and subjects(stack).count(CD_NURTURE_NEWSLETTER) == newsletters
    )


async def task_of(stack: Stack, step: str) -> PlanRecord:
    """The plan of the run's one task at `step`, once its task is someone's."""

    async def given() -> bool:
        if await stack.store.plans_of(f"{JOURNEY}__{step}"):
            return True
        if (await run_of(stack).query(JourneyWorkflow.status)).current_step != step:
            return False
        # The run is at the task: its plan's record follows within moments. Waited for without
        # letting journey time pass: a day skipped here could take the task past its due time.
        async with asyncio.timeout(10):
            while True:
                if await stack.store.plans_of(f"{JOURNEY}__{step}"):
                    return True
                await asyncio.sleep(0.05)

    await walk(stack, given, days=35)
    [plan] = await stack.store.plans_of(f"{JOURNEY}__{step}")
    return plan


async def test_a_c_lead_is_nurtured_for_a_year_then_handed_to_sales(own_stack: Stack) -> None:
    stack = own_stack
    # The lead's own owner, not whom the sales role's turns would give the lead.
    assert task_owner([p.id for p in SALES], LEA.id) != OWNER
    await stack.store.upsert_people(SALES)
    await graded_as(stack, LEA)
    first_run = (await run_of(stack).describe()).run_id

    # Month 3: the lead clicks twice, days after its newsletter.
    await walk(stack, lambda: standing_at(stack, "m3", newsletters=3))
    await stack.env.sleep(timedelta(days=5))
    for _ in range(2):
        now = await stack.env.get_current_time()
        await stack.store.record_event(LEA.id, JourneyEvent(kind=CLICKED, occurred_at=now))
        # Regraded as the gateway does after a click: five points each, still a C.
        assert await regraded(stack, LEA.id) is None
        await stack.env.sleep(timedelta(hours=3))

    # At the month's end: a call for the lead's own sales owner, who reaches them.
    call = await task_of(stack, "call")
    assert (call.contact_id, call.tasks[0].people) == (LEA.id, [OWNER])
    await change_plan(
        stack.env.client, call.plan_id, Complete(task="call", by=OWNER, outcome="reached")
    )

    # Month 12, its newsletter sent: the lead becomes a B.
    await walk(stack, lambda: standing_at(stack, "m3", newsletters=12))
    await graded_as(stack, AT_A_LARGER_COMPANY)
    handoff = await task_of(stack, "handoff")
    assert (handoff.contact_id, handoff.tasks[0].people) == (LEA.id, [OWNER])
    await change_plan(
        stack.env.client, handoff.plan_id, Complete(task="handoff", by=OWNER, outcome="met")
    )
    result = await run_of(stack).result()

    # Twelve newsletters, an invitation with the first of each quarter, nothing else.
    quarter = [CD_NURTURE_NEWSLETTER, CD_INVITATION, CD_NURTURE_NEWSLETTER, CD_NURTURE_NEWSLETTER]
    assert subjects(stack) == quarter * 4
    ledger = await stack.store.deliveries_of(LEA.id)
    assert [r["status"] for r in ledger] == ["sent"] * 16
    # Each went at 09:00 on the lead's clock (the run's clock when the send was let go).
    checks = await stack.store.send_checks_of(LEA.id)
    mornings = [c["decided_at"].astimezone(ZoneInfo(LEA.time_zone)) for c in checks]
    assert len(mornings) == 16
    assert all((m.hour, m.minute) == (9, 0) for m in mornings), mornings
    newsletter_days = [
        m.date() for c, m in zip(checks, mornings, strict=True) if "newsletter" in c["step_id"]
    ]
    gaps = [(b - a).days for a, b in itertools.pairwise(newsletter_days)]
    # A month apart (30 days and the wait for the next morning; a call's days after month 3).
    assert len(newsletter_days) == 12 and all(30 <= gap <= 35 for gap in gaps), gaps
    # Their call to action is a tracked link.
    newsletter = mail_to(stack, str(LEA.email))[0]
    plain = newsletter.get_body(("plain",))
    assert plain is not None and f"{stack.settings.gateway_url}/t/c/" in plain.get_content()

    # The owner got the call and the hand-off, and no one else a task.
    team = [m for m in stack.mail.messages if m["To"] != LEA.email]
    owner_address = next(str(p.email) for p in SALES if p.id == OWNER)
    assert {m["To"] for m in team} == {owner_address}
    assert [s for s in (str(m["Subject"]) for m in team) if s.startswith("New task")] == [
        CD_NURTURE_CALL,
        CD_HANDOFF,
    ]

    # One journey run across continue-as-new: its first run continued as new, and the tasks
    # of month 3 and month 12 belong to the same entry.
    first = stack.env.client.get_workflow_handle(workflow_id(JOURNEY, LEA.id), run_id=first_run)
    history = await first.fetch_history()
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert (await run_of(stack).describe()).run_id != first_run
    assert call.instance.split(".")[1] == handoff.instance.split(".")[1] == first_run[:8]
    assert result.reason == "end" and result.ended_at_step == "handed_off"
    assert result.visits[0].step == "enters" and len(result.visits) < SPEC.max_steps
    assert await stack.store.tags_of(LEA.id) == ["CD_HANDED_TO_SALES"]


async def test_a_lead_graded_a_or_b_or_not_to_be_emailed_is_not_nurtured(
    own_stack: Stack,
) -> None:
    await graded_as(own_stack, AT_A_LARGER_COMPANY)
    result = await run_of(own_stack).result()
    assert (result.reason, result.ended_at_step) == ("end", "not_cd")
    # Back to a C, but without email consent: re-entered (after_exit), and left at once.
    await graded_as(own_stack, LEA.model_copy(update={"consent": {"email": False}}))
    result = await run_of(own_stack).result()
    assert (result.reason, result.ended_at_step) == ("end", "not_emailable")
    assert own_stack.mail.messages == []


async def test_a_c_lead_who_becomes_a_d_stays_and_the_month_starts_afresh(
    own_stack: Stack,
) -> None:
    stack = own_stack
    await graded_as(stack, LEA)
    await walk(stack, lambda: standing_at(stack, "m1", newsletters=1))
    await stack.env.sleep(timedelta(days=10))
    # A spoiler, by the grading's fit rules: a D.
    await graded_as(stack, LEA.model_copy(update={"attributes": {**LEA.attributes, "role": "x"}}))
    changed = await stack.env.get_current_time()

    await walk(stack, lambda: standing_at(stack, "m2", newsletters=2), days=45)
    status = await run_of(stack).query(JourneyWorkflow.status)
    # Its start's grade change and this one were each read, and neither was an A or B.
    assert [v.outcome for v in status.visits if v.step == "m1_grade"] == ["otherwise"] * 2
    second = next(v for v in status.visits if v.step == "m2_newsletter")
    assert timedelta(days=30) <= second.at - changed <= timedelta(days=31)
    assert await stack.store.plans_of(f"{JOURNEY}__handoff") == []
    await run_of(stack).cancel()
