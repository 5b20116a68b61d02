"""Paths through the plan workflow whose histories are recorded (`make histories`) and replayed
(tests/test_replay.py): each ends its run, finished or cancelled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta

from journeys.plans.calendar import public_holidays
from journeys.plans.changes import Approve, Cancel, Complete, Move, Reassign, Reject
from journeys.plans.spec import PlanSpec
from tests.plan_fixtures import BLOG, ROLES, WARSAW, Plans, local, next_weekday
from workflows.plan_runs import change_plan


def holiday_plan() -> PlanSpec:
    """Polish public holidays, business days: a task due one business day before a Monday."""
    return PlanSpec.model_validate(
        {
            "id": "handover",
            "version": 1,
            "description": "A handover due the Friday before the target Monday.",
            "roles": {"account_manager": "Account manager"},
            "holidays": "PL",
            "tasks": [
                {"id": "handover", "title": "Hand over", "owner": "account_manager", "due": "-1bd"}
            ],
        }
    )


def wednesday_holiday(after: date) -> date:
    """The first Polish public holiday on a Wednesday two weeks after `after` or later, with
    the working days around it that a test counts on (Tuesday before, Thursday, Friday, Monday
    and Tuesday after) none: Epiphany, 6 January 2027, say."""
    days_off = public_holidays("PL")
    day = after + timedelta(days=14)
    while not (
        day.weekday() == 2
        and day in days_off
        and not any(day + timedelta(days=n) in days_off for n in (-1, 1, 2, 5, 6))
    ):
        day += timedelta(days=1)
    return day


async def rejected_then_approved(plans: Plans) -> str:
    """Each task done in turn; the outline rejected with a comment, redone, approved by both;
    then the plan cancelled."""
    today = (await plans.now()).date()
    plan_id = await plans.start(BLOG, next_weekday(today, 2) + timedelta(days=30), ROLES)
    client = plans.env.client
    for change in [
        Complete(task="generate_idea", by="cleo"),
        Complete(task="keyword_research", by="sam"),
        Complete(task="outline", by="ana"),
        Approve(task="approve_outline", by="sam"),
        Reject(task="approve_outline", by="max", comment="Needs a case study."),
        Complete(task="outline", by="ana"),
        Approve(task="approve_outline", by="sam"),
        Approve(task="approve_outline", by="max"),
        Cancel(by="mia", reason="enough for the history"),
    ]:
        await change_plan(client, plan_id, change)
    await plans.settle()
    return plan_id


async def late_escalated_moved_reassigned(plans: Plans) -> str:
    """Reminded, late, followed up and escalated; moved a week, reassigned, done; cancelled."""
    today = (await plans.now()).date()
    idea_due = next_weekday(today, 2)
    plan_id = await plans.start(BLOG, idea_due + timedelta(days=30), ROLES)
    await plans.until(local(idea_due + timedelta(days=2), 10, WARSAW))
    client = plans.env.client
    await change_plan(client, plan_id, Move(target=idea_due + timedelta(days=44), by="mia"))
    await change_plan(client, plan_id, Reassign(task="generate_idea", to="ola", by="mia"))
    await change_plan(client, plan_id, Complete(task="generate_idea", by="ola"))
    await change_plan(client, plan_id, Cancel(by="mia"))
    await plans.settle()
    return plan_id


async def holidays_finished(plans: Plans) -> str:
    """Business days over a weekend and a public holiday, late and escalated, then finished."""
    monday = wednesday_holiday((await plans.now()).date()) + timedelta(days=5)
    plan_id = await plans.start(holiday_plan(), monday, {"account_manager": "cleo"})
    await plans.until(local(monday + timedelta(days=1), 10, WARSAW))
    await change_plan(plans.env.client, plan_id, Complete(task="handover", by="cleo"))
    await plans.settle()
    return plan_id


@dataclass(frozen=True)
class PlanScenario:
    name: str
    play: Callable[[Plans], Awaitable[str]]


PLAN_SCENARIOS = [
    PlanScenario("blog_post__rejected_then_approved", rejected_then_approved),
    PlanScenario("blog_post__late_escalated_moved_reassigned", late_escalated_moved_reassigned),
    PlanScenario("handover__holidays_finished", holidays_finished),
]
