"""A journey's task step running: the owner chosen from the team in the store, the task's plan
mailing them, their outcome through change_plan choosing the branch, overdue at its moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from journeys.library import load_journey
from journeys.plans.calendar import Offset
from journeys.plans.people import Person
from journeys.plans.schedule import WorkingTime
from journeys.settings import LIBRARY_DIR
from journeys.spec import TaskStep
from journeys.tasks import assigned, task_instance, task_plan
from tests.scenarios import ADA, start
from tests.temporal_fixtures import Stack
from workflows.journey import JourneyWorkflow

JOURNEY = "cd_lead_followup"
SALES = [
    Person(id="s-ola", name="Ola Sales", email="ola@team.example", roles=["sales"]),
    Person(id="s-jan", name="Jan Sales", email="jan@team.example", roles=["sales"]),
]


def test_a_task_is_due_at_the_end_of_its_owners_working_day_in_business_days() -> None:
    warsaw = WorkingTime(time_zone="Europe/Warsaw")
    # Friday 27 November 2026, 23:30 in Warsaw: still Friday there, so 2bd is Tuesday, 17:00.
    found = assigned(
        "s-ola", warsaw, Offset.parse("2bd"), datetime(2026, 11, 27, 22, 30, tzinfo=UTC)
    )
    assert found.reached_on.isoformat() == "2026-11-27"
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


async def test_nobody_with_the_role_takes_unassigned_at_once(stack: Stack) -> None:
    await stack.store.upsert_contacts([ADA])
    handle = await start(stack, JOURNEY, ADA.id)
    result = await handle.result()
    assert result.ended_at_step == "call_overdue"
    status = await handle.query(JourneyWorkflow.status)
    call = next(v for v in status.visits if v.step == "sales_call")
    assert call.outcome == "unassigned: nobody on the team has the role 'sales'"
    assert call.left_at - call.at < timedelta(minutes=1)
    assert await stack.store.tags_of(ADA.id) == ["CD_CALL_NOT_MADE"]
