"""The plan workflow on the time-skipping server, with the real worker, store and SMTP sink: what
arrives, to whom, and for which moment on the plan's clock (the X-Plan-At header: the sink's
arrival is wall-clock time, the workflow's is skipped), each message once. Updates work on the
time-skipping server, so the changes are made there too (through `change_plan`)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from journeys.identity import PLAN_OWNERS, PLAN_STATE, PLAN_TEMPLATE
from journeys.plans.changes import Approve, Cancel, Complete, Move, Reassign, Reject
from journeys.plans.records import PlanRecord
from journeys.plans.state import Refused
from tests.plan_fixtures import BLOG, ROLES, TEAM, WARSAW, Plans, local, next_weekday
from tests.plan_scenarios import holiday_plan, wednesday_holiday
from workflows.plan_runs import change_plan, start_plan


async def test_a_blog_post_runs_from_idea_to_final_draft_with_every_message_once(
    plans: Plans,
) -> None:
    today = (await plans.now()).date()
    # The idea is due on a Wednesday (30 days before the publish date): reminded on Monday and
    # Tuesday at 17:00 in Warsaw, the end of the strategist's working day.
    idea_due = next_weekday(today, 2)
    plan_id = await plans.start(BLOG, idea_due + timedelta(days=30), ROLES)
    await plans.settle()
    assert [(m.to, m.kind, m.task) for m in plans.mails()] == [
        ("cleo", "assigned", "generate_idea")
    ]
    assert "Generate idea" in plans.mails()[0].subject

    monday_17 = local(idea_due - timedelta(days=2), 17, WARSAW)
    await plans.until(monday_17 - timedelta(minutes=1))
    assert len(plans.mails()) == 1  # nothing before its moment
    await plans.until(local(idea_due, 17, WARSAW) - timedelta(minutes=1))
    reminders = [(m.to, m.kind, m.at) for m in plans.mails()[1:]]
    assert reminders == [
        ("cleo", "reminder", monday_17),
        ("cleo", "reminder", local(idea_due - timedelta(days=1), 17, WARSAW)),
    ]

    # Late: followed up at 09:00 each working day after; the manager told on the second day.
    friday = idea_due + timedelta(days=2)
    await plans.until(local(friday, 10, WARSAW))
    late = [(m.to, m.kind, m.at) for m in plans.mails()[3:]]
    assert late == [
        ("cleo", "follow_up", local(idea_due + timedelta(days=1), 9, WARSAW)),
        ("cleo", "follow_up", local(friday, 9, WARSAW)),
        ("mia", "escalation", local(friday, 9, WARSAW)),
    ]
    assert "Cleo Strat" in plans.mails()[-1].body

    # Refusals come back with their reason, and change nothing.
    with pytest.raises(Refused, match="'outline' is not active yet: it waits for keyword_research"):
        await change_plan(plans.env.client, plan_id, Complete(task="outline", by="ana"))
    with pytest.raises(Refused, match="'generate_idea' is cleo's task"):
        await change_plan(plans.env.client, plan_id, Complete(task="generate_idea", by="ana"))
    with pytest.raises(Refused, match="only the plan's manager"):
        await change_plan(plans.env.client, plan_id, Reassign(task="outline", to="ola", by="ana"))
    with pytest.raises(Refused, match="nobody is not a member of the team"):
        await change_plan(
            plans.env.client, plan_id, Reassign(task="outline", to="nobody", by="mia")
        )

    # Done: the next owner hears who finished what, and when.
    record = await change_plan(plans.env.client, plan_id, Complete(task="generate_idea", by="cleo"))
    assert record.tasks[0].status == "done" and record.tasks[1].status == "active"
    await plans.settle()
    handoff = plans.mails()[-1]
    assert (handoff.to, handoff.kind, handoff.task) == ("sam", "handoff", "keyword_research")
    assert 'Cleo Strat finished "Generate idea"' in handoff.body

    client = plans.env.client
    await change_plan(client, plan_id, Complete(task="keyword_research", by="mia"))
    await change_plan(client, plan_id, Complete(task="outline", by="ana"))
    await change_plan(client, plan_id, Approve(task="approve_outline", by="sam"))
    record = await change_plan(
        client, plan_id, Reject(task="approve_outline", by="max", comment="Needs a case study.")
    )
    assert [t.status for t in record.tasks[2:4]] == ["active", "waiting"]
    await plans.settle()
    back = plans.mails()[-1]
    assert (back.to, back.kind, back.task) == ("ana", "sent_back", "outline")
    assert "Needs a case study." in back.body and "Max Stake" in back.body

    # Forward again: both approvers are asked anew (round 2), both approve.
    await change_plan(client, plan_id, Complete(task="outline", by="ana"))
    await plans.settle()
    assert {(m.to, m.kind, m.task) for m in plans.mails()[-2:]} == {
        ("sam", "handoff", "approve_outline"),
        ("max", "handoff", "approve_outline"),
    }
    await change_plan(client, plan_id, Approve(task="approve_outline", by="sam"))
    record = await change_plan(client, plan_id, Approve(task="approve_outline", by="max"))
    assert record.tasks[4].status == "active" and record.tasks[3].rounds == 2
    await plans.settle()
    assert (plans.mails()[-1].to, plans.mails()[-1].task) == ("ana", "final_draft")

    # Every message once, each with its own ledger row, sent.
    mails = plans.mails()
    assert len({m["Message-ID"] for m in plans.mail.messages}) == len(mails)
    rows = [r for p in TEAM for r in await plans.store.deliveries_of(p.id)]
    assert len(rows) == len(mails) and {r["status"] for r in rows} == {"sent"}
    assert {r["workflow_id"] for r in rows} == {plan_id}
    assert {r["journey_id"] for r in rows} == {"blog_post"}
    stored = await plans.store.plan(plan_id)
    assert stored is not None and stored.tasks == record.tasks


async def test_moving_the_target_re_dates_open_tasks_and_never_re_sends_a_reminder(
    plans: Plans,
) -> None:
    today = (await plans.now()).date()
    idea_due = next_weekday(today, 2)
    plan_id = await plans.start(BLOG, idea_due + timedelta(days=30), ROLES)
    # The 48h reminder goes out on Monday.
    await plans.until(local(idea_due - timedelta(days=2), 18, WARSAW))
    assert [m.kind for m in plans.mails()] == ["assigned", "reminder"]

    # Moved a week later: due the next Wednesday; the 48h reminder was sent, the 24h one moves.
    record: PlanRecord = await change_plan(
        plans.env.client, plan_id, Move(target=idea_due + timedelta(days=37), by="mia")
    )
    later = idea_due + timedelta(days=7)
    assert record.tasks[0].due_at == local(later, 17, WARSAW)
    with pytest.raises(Refused, match="is in the past"):
        await change_plan(plans.env.client, plan_id, Move(target=today, by="mia"))
    await plans.until(local(later, 16, WARSAW))
    assert [(m.kind, m.at) for m in plans.mails()[2:]] == [
        ("reminder", local(later - timedelta(days=1), 17, WARSAW))
    ]


async def test_a_friday_due_business_day_task_skips_the_weekend_and_a_public_holiday(
    plans: Plans,
) -> None:
    def day(n: int) -> date:
        """`n` days after the holiday."""
        return holiday + timedelta(days=n)

    # A Wednesday public holiday in Poland (Epiphany in 2027), the target the Monday after it:
    # due on Friday; the 48h reminder is on Tuesday (the holiday is no working day), the 24h
    # one on Thursday; the first follow-up on Monday (the weekend skipped), the second and the
    # escalation on Tuesday.
    holiday = wednesday_holiday((await plans.now()).date())
    monday = holiday + timedelta(days=5)
    plan_id = await plans.start(holiday_plan(), monday, {"account_manager": "cleo"})
    await plans.until(local(monday + timedelta(days=1), 10, WARSAW))
    stored = await plans.store.plan(plan_id)
    assert stored is not None and stored.tasks[0].due_at == local(day(2), 17, WARSAW)
    assert [(m.to, m.kind, m.at) for m in plans.mails()[1:]] == [
        ("cleo", "reminder", local(day(-1), 17, WARSAW)),
        ("cleo", "reminder", local(day(1), 17, WARSAW)),
        ("cleo", "follow_up", local(day(5), 9, WARSAW)),
        ("cleo", "follow_up", local(day(6), 9, WARSAW)),
        ("mia", "escalation", local(day(6), 9, WARSAW)),
    ]
    record = await change_plan(plans.env.client, plan_id, Complete(task="handover", by="cleo"))
    assert record.state == "finished"


async def test_a_reassigned_task_is_announced_and_reminded_to_its_new_owner_until_cancelled(
    plans: Plans,
) -> None:
    today = (await plans.now()).date()
    idea_due = next_weekday(today, 2)
    plan_id = await plans.start(BLOG, idea_due + timedelta(days=30), ROLES)
    client = plans.env.client
    record = await change_plan(client, plan_id, Reassign(task="generate_idea", to="ola", by="mia"))
    assert record.tasks[0].people == ["ola"]
    handle = client.get_workflow_handle(plan_id, result_type=PlanRecord)
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(PLAN_OWNERS) == ["ola"] and attributes.get(PLAN_STATE) == "running"
    assert attributes.get(PLAN_TEMPLATE) == "blog_post"

    await plans.until(local(idea_due, 12, WARSAW))
    assert [(m.to, m.kind) for m in plans.mails()] == [
        ("cleo", "assigned"),
        ("ola", "assigned"),
        ("ola", "reminder"),
        ("ola", "reminder"),
    ]
    record = await change_plan(client, plan_id, Cancel(by="mia", reason="dropped"))
    assert record.state == "cancelled"
    assert (await handle.result()).state == "cancelled"
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(PLAN_STATE) == "cancelled" and not attributes.get(PLAN_OWNERS)
    stored = await plans.store.plan(plan_id)
    assert stored is not None and stored.state == "cancelled"
    await plans.until(local(idea_due + timedelta(days=7), 12, WARSAW))
    assert len(plans.mails()) == 4  # no follow-up for a cancelled plan


async def test_start_plan_refuses_missing_roles_unknown_people_and_a_second_run(
    plans: Plans,
) -> None:
    target = (await plans.now()).date() + timedelta(days=60)
    client, queue = plans.env.client, plans.settings.task_queue

    async def start(instance: str, roles: dict[str, str]) -> None:
        await start_plan(
            client, BLOG, instance, target, roles, "mia", 1.0, queue, store=plans.store
        )

    missing = {r: p for r, p in ROLES.items() if r != "graphic_designer"}
    with pytest.raises(Refused, match="assign every role the plan's tasks need; missing: graph"):
        await start("one", missing)
    with pytest.raises(Refused, match="not members of the team: nobody"):
        await start("one", ROLES | {"graphic_designer": "nobody"})
    await start("one", ROLES)
    with pytest.raises(Refused, match="plan:blog_post:one was started already"):
        await start("one", ROLES)


async def test_at_a_demo_speed_plan_time_runs_faster(plans: Plans) -> None:
    started = await plans.now()
    idea_due = next_weekday(started.date(), 2)
    await plans.start(BLOG, idea_due + timedelta(days=30), ROLES, speed=24)
    # A day of the plan is an hour: the 48h reminder comes 1/24 of the way to its moment.
    reminder = local(idea_due - timedelta(days=2), 17, WARSAW)
    real = (reminder - started) / 24
    await plans.until(started + real - timedelta(minutes=2))
    assert [m.kind for m in plans.mails()] == ["assigned"]
    await plans.until(started + real + timedelta(minutes=2))
    assert [(m.kind, m.at) for m in plans.mails()] == [
        ("assigned", plans.mails()[0].at),
        ("reminder", reminder),
    ]
