"""What a merge means for the runs of the contact merged away: they end at once with a recorded
reason and send nothing more, on the time-skipping server with the real mail sink."""

from __future__ import annotations

from journeys import events
from journeys.plans.records import PlanRecord
from tests.scenarios import (
    ADA,
    CD_CALL,
    INTRO,
    SALES,
    assert_outcome,
    event,
    play,
    scenario,
    start,
    task_plan_of,
)
from tests.temporal_fixtures import Stack
from workflows.journey import JourneyWorkflow


async def test_a_merged_contacts_run_ends_saying_into_whom_and_sends_nothing_more(
    stack: Stack,
) -> None:
    merged = scenario("lead_nurturing", "merged_while_waiting")
    handle, result = await play(stack, merged)
    await assert_outcome(stack, merged, result)
    assert (result.reason, result.ended_at_step) == ("contact_merged", "intro_opened")
    status = await handle.query(JourneyWorkflow.status)
    assert status.finished and status.details == "merged into c-ada-kept"
    # Days later still only the intro: the part 2 and the SMS nudge never went.
    await stack.env.sleep(7 * 86400)
    assert [m["Subject"] for m in stack.mail.messages] == [INTRO]
    assert stack.sms.messages == []


async def test_a_merge_ends_the_run_whatever_its_exit_events(stack: Stack) -> None:
    # lead_nurturing exits on `unsubscribed` only; the merge is not in its spec.
    await stack.store.upsert_contacts([ADA])
    handle = await start(stack, "lead_nurturing", ADA.id)
    await handle.signal(JourneyWorkflow.event, event(events.CONTACT_MERGED, into="c-ada-kept"))
    result = await handle.result()
    assert result.reason == "contact_merged"
    assert len(stack.mail.messages) <= 1  # the intro, if it was on its way


async def test_a_merge_during_a_task_withdraws_the_task_from_its_owner(own_stack: Stack) -> None:
    stack = own_stack
    await stack.store.upsert_people(SALES)
    await stack.store.upsert_contacts([ADA])
    handle = await start(stack, "cd_lead_followup", ADA.id)
    plan = await task_plan_of(stack, handle, "sales_call")
    owner = plan.tasks[0].people[0]
    assert [t.task.task_id for t in await stack.store.open_tasks_of(owner)] == ["sales_call"]
    await handle.signal(JourneyWorkflow.event, event(events.CONTACT_MERGED, into="c-ada-kept"))
    result = await handle.result()
    assert (result.reason, result.ended_at_step) == ("contact_merged", "sales_call")
    ended = await stack.env.client.get_workflow_handle(
        plan.plan_id, result_type=PlanRecord
    ).result()
    assert ended.state == "cancelled"
    stored = await stack.store.plan(plan.plan_id)
    assert stored is not None and stored.state == "cancelled"
    assert await stack.store.open_tasks_of(owner) == []
    # The owner was told of the task once, and nothing reached the merged lead after the merge.
    team = [m["Subject"] for m in stack.mail.messages if m["To"] != ADA.email]
    assert len(team) == 1 and team[0].startswith(CD_CALL)
