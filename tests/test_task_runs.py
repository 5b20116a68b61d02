"""A journey's task step running: the owner chosen from the team in the store, the task's plan
mailing them, their outcome through change_plan choosing the branch, overdue at its moment."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from journeys.contacts import Contact
from journeys.decisions import task_owner
from journeys.library import load_journey
from journeys.models import JourneyInput
from journeys.plans.calendar import Offset
from journeys.plans.changes import Complete
from journeys.plans.records import PlanRecord
from journeys.plans.schedule import WorkingTime
from journeys.settings import LIBRARY_DIR
from journeys.spec import JourneySpec, TaskStep
from journeys.tasks import assigned, task_instance, task_plan
from journeys.tokens import TASK, TaskClaims, verify
from tests.scenarios import ADA, CD_CALL, SALES, start, task_plan_of
from tests.temporal_fixtures import Stack
from workflows.journey import JourneyWorkflow
from workflows.plan_runs import change_plan

JOURNEY = "cd_lead_followup"
ADDRESS = {p.id: str(p.email) for p in SALES}


async def run_to_call(
    stack: Stack, contact: Contact = ADA
) -> tuple[WorkflowHandle[Any, Any], PlanRecord]:
    await stack.store.upsert_people(SALES)
    await stack.store.upsert_contacts([contact])
    handle = await start(stack, JOURNEY, contact.id)
    return handle, await task_plan_of(stack, handle, "sales_call")


def test_a_task_is_due_at_the_end_of_its_owners_working_day_in_business_days() -> None:
    warsaw = WorkingTime(time_zone="Europe/Warsaw")
    # Friday 27 November 2026, 23:30 in Warsaw: still Friday there, so 2bd is Tuesday, 17:00.
    friday_night = datetime(2026, 11, 27, 22, 30, tzinfo=UTC)
    found = assigned("s-ola", warsaw, Offset.parse("2bd"), friday_night)
    assert found.reached_on == date(2026, 11, 27)
    assert found.due_at == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


def test_a_tasks_plan_is_named_by_ids_only_within_their_lengths() -> None:
    journey = load_journey(LIBRARY_DIR / f"{JOURNEY}.yaml", LIBRARY_DIR)
    step = journey.step("sales_call")
    assert isinstance(step, TaskStep)
    plan = task_plan(journey, step)
    assert plan.id == "cd_lead_followup__sales_call"
    assert plan.tasks[0].outcomes == ["reached", "no_answer", "not_interested"]
    long = journey.model_copy(update={"id": "j" * 64})
    assert len(task_plan(long, step).id) == 64
    entry = "0f6c1e2a-1b7e-4a53-9b1e-2f3d4c5b6a79"
    assert task_instance("c-ada", entry, 2) == "c-ada.0f6c1e2a.2"
    # A contact id an instance cannot hold (a ':'), or one at the longest, still fits.
    assert task_instance("crm:42", entry, 1).startswith("c") and ":" not in task_instance(
        "crm:42", entry, 1
    )
    assert len(task_instance("x" * 64, entry, 99999)) <= 100


async def test_nobody_with_the_role_takes_unassigned_at_once(own_stack: Stack) -> None:
    await own_stack.store.upsert_contacts([ADA])
    handle = await start(own_stack, JOURNEY, ADA.id)
    result = await handle.result()
    assert result.ended_at_step == "call_overdue"
    status = await handle.query(JourneyWorkflow.status)
    call = next(v for v in status.visits if v.step == "sales_call")
    assert call.outcome == "unassigned: nobody on the team has the role 'sales'"
    assert call.left_at is not None and call.left_at - call.at < timedelta(minutes=1)
    assert await own_stack.store.tags_of(ADA.id) == ["CD_CALL_NOT_MADE"]


async def test_the_owner_gets_the_task_and_reached_takes_the_reached_branch(
    own_stack: Stack,
) -> None:
    handle, plan = await run_to_call(own_stack)
    owner = task_owner(["s-ola", "s-jan"], ADA.id)
    assert plan.tasks[0].people == [owner]
    # The task page shows its owner whom to call and what they may answer.
    assert plan.contact_id == ADA.id
    assert plan.tasks[0].outcomes == ["reached", "no_answer", "not_interested"]
    # The task mail went to the owner, with the task's link; nothing of the contact is in it.
    mail = [m for m in own_stack.mail.messages if m["To"] == ADDRESS[owner]]
    assert [m["Subject"] for m in mail] == [CD_CALL]
    plain = mail[0].get_body(("plain",))
    assert plain is not None
    body = plain.get_content()
    # Its signed link names the plan, the task and the owner.
    [token] = re.findall(rf"{own_stack.settings.gateway_url}/tasks/([^\s]+)", body)
    claims = verify(own_stack.settings, TASK, token, TaskClaims)
    assert (claims.plan_id, claims.task_id, claims.person_id) == (plan.plan_id, "sales_call", owner)
    assert ADA.email not in body and "Ada" not in body and ADA.phone not in body
    await change_plan(
        own_stack.env.client,
        plan.plan_id,
        Complete(task="sales_call", by=owner, outcome="reached"),
    )
    result = await handle.result()
    assert result.ended_at_step == "reached"
    assert await own_stack.store.tags_of(ADA.id) == ["CD_CALL_REACHED"]
    call = next(v for v in result.visits if v.step == "sales_call")
    assert call.outcome == "reached"


async def test_no_outcome_by_the_due_moment_is_overdue_and_the_plan_is_cancelled(
    own_stack: Stack,
) -> None:
    handle, plan = await run_to_call(own_stack)
    result = await handle.result()
    assert result.ended_at_step == "call_overdue"
    call = next(v for v in result.visits if v.step == "sales_call")
    assert call.outcome == "overdue"
    # Due at the end of the owner's working day, two of their working days after the step.
    expected = assigned("x", WorkingTime(), Offset.parse("2bd"), call.at).due_at
    assert expected == plan.tasks[0].due_at
    assert call.left_at is not None and timedelta(0) <= call.left_at - expected < timedelta(
        minutes=1
    )
    assert await own_stack.store.tags_of(ADA.id) == ["CD_CALL_NOT_MADE"]
    await plan_cancelled(own_stack, plan)


def calling(**who: str) -> JourneySpec:
    """A journey that is one call, by `role` or `owner_attribute`."""
    call = {"id": "call", "kind": "task", "title": "Call your account", "due": "1d", **who}
    steps = [
        {**call, "on": {"no_answer": "missed"}},
        {"id": "talked", "kind": "end", "tag": "TALKED"},
        {"id": "missed", "kind": "end", "tag": "MISSED"},
    ]
    return JourneySpec.model_validate(
        {"id": "calling", "version": 1, "description": "t", "trigger": "manual", "steps": steps}
    )


async def start_calling(
    stack: Stack, spec: JourneySpec, contact: Contact
) -> WorkflowHandle[Any, Any]:
    await stack.store.upsert_people(SALES)
    await stack.store.upsert_contacts([contact])
    return await stack.env.client.start_workflow(
        JourneyWorkflow.run,
        JourneyInput(spec=spec, contact_id=contact.id),
        id=f"journey:calling:{contact.id}",
        task_queue=stack.settings.task_queue,
    )


async def call_plan(
    stack: Stack, spec: JourneySpec, contact: Contact
) -> tuple[WorkflowHandle[Any, Any], PlanRecord]:
    handle = await start_calling(stack, spec, contact)
    return handle, await task_plan_of(stack, handle, "call", spec)


async def test_the_owner_may_come_from_an_attribute_and_no_answer_branches(
    own_stack: Stack,
) -> None:
    spec = calling(owner_attribute="account_owner")
    contact = Contact(id="c-acct", attributes={"account_owner": "s-jan"})
    handle, plan = await call_plan(own_stack, spec, contact)
    assert plan.tasks[0].people == ["s-jan"]
    await change_plan(
        own_stack.env.client, plan.plan_id, Complete(task="call", by="s-jan", outcome="no_answer")
    )
    result = await handle.result()
    assert result.ended_at_step == "missed"


async def test_an_attribute_naming_nobody_on_the_team_is_unassigned(own_stack: Stack) -> None:
    spec = calling(owner_attribute="account_owner")
    contact = Contact(id="c-gone", attributes={"account_owner": "s-left-us"})
    result = await (await start_calling(own_stack, spec, contact)).result()
    # No `on: unassigned`: on with `next`; the reason names no value the attribute held.
    assert result.ended_at_step == "talked"
    assert result.visits[0].outcome == "unassigned: the task's owner is nobody on the team"


async def test_the_members_of_a_role_take_turns_by_contact(own_stack: Stack) -> None:
    # Two contacts the hash gives to different people.
    contacts = [Contact(id=f"c-lead-{i}") for i in range(2)]
    owners = [task_owner(["s-ola", "s-jan"], c.id) for c in contacts]
    assert set(owners) == {"s-ola", "s-jan"}
    for contact, owner in zip(contacts, owners, strict=True):
        handle, plan = await call_plan(own_stack, calling(role="sales"), contact)
        assert plan.tasks[0].people == [owner]
        # A journey stopped while it waits asks its task's plan to cancel as it closes.
        await handle.cancel()
        await plan_cancelled(own_stack, plan)


async def plan_cancelled(stack: Stack, plan: PlanRecord) -> None:
    """The plan ends cancelled, and says so to the store: the task is no one's any more."""
    handle = stack.env.client.get_workflow_handle(plan.plan_id, result_type=PlanRecord)
    ended = await handle.result()
    assert ended.state == "cancelled" and ended.tasks[0].status == "active"
    stored = await stack.store.plan(plan.plan_id)
    assert stored is not None and stored.state == "cancelled"
    assert await stack.store.open_tasks_of(plan.tasks[0].people[0]) == []
