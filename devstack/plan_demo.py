"""The team-plan half of the demo behind `make run`: a demo team and a `blog_post` plan for a
publish date five weeks out, run at demo speed, and a stand-in for the team that works through
its tasks the way people do: some early, the first one only after its reminders, the outline
sent back once with a comment, the images late enough to be followed up and escalated. Within a
minute or two the Maildir shows assignments, reminders, hand-offs, the approval round trip,
follow-ups and an escalation; the Temporal UI shows the plan's state and open tasks' owners.

Starting is idempotent: a second `make run` finds the plan started and only goes on acting."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import structlog
from temporalio.client import Client

from journeys.plans.changes import Approve, Complete, PlanChange, Reject
from journeys.plans.library import load_plans
from journeys.plans.people import Person
from journeys.plans.records import TaskRecord, plan_workflow_id
from journeys.plans.state import Refused
from journeys.settings import Settings
from journeys.store import ContactStore
from workflows.plan_runs import AlreadyStarted, change_plan, start_plan

log = structlog.get_logger()


def _member(name: str, role: str | None, time_zone: str = "UTC") -> Person:
    """A demo team member: `demo-<name>`, mailed at <name>@example.com."""
    login = name.split()[0].lower()
    return Person(
        id=f"demo-{login}",
        name=name,
        email=f"{login}@example.com",
        roles=[role] if role else [],
        time_zone=time_zone,
    )


DEMO_TEAM = [
    _member("Mia (marketing manager)", None),
    _member("Cora", "content_strategist", "Europe/Warsaw"),
    _member("Sam", "seo_strategist", "Europe/London"),
    _member("Wen", "blog_writer", "America/New_York"),
    _member("Kit", "marketing_stakeholder", "Europe/Warsaw"),
    _member("Gia", "graphic_designer", "Europe/Rome"),
    _member("Sol", "social_media_manager", "America/Los_Angeles"),
]
# Sales, who takes the phone calls `cd_lead_followup` asks for (a journey's task step).
SALES = _member("Rex (sales)", "sales", "Europe/Warsaw")
# What came of each C/D lead's call; a lead not here is never called (the task goes overdue).
CALL_OUTCOMES = {"demo-cy": "reached"}
DEMO_PLAN = "demo-post"
MANAGER = "demo-mia"
# When the demo team finishes a task, in plan days: most soon after it became theirs; the first
# one just before it is due (after its 48 h and 24 h reminders); the images well after it is
# due (followed up each working day, then escalated to the manager after two of Gia's working
# days: 9 days hold them whatever lies between, a weekend and the year's end holidays; 4 did
# not when the due date fell on the last day of the year).
FINISH_AFTER_ACTIVE = timedelta(days=1.5)
FINISH_BEFORE_DUE = {"generate_idea": timedelta(hours=8)}
FINISH_AFTER_DUE = {"images": timedelta(days=9)}
# The approver who sends the outline back once, and what they say.
SENT_BACK_BY = "demo-kit"
SENT_BACK_WITH = "Please add a section comparing the three pricing plans."
POLL = 0.2


def _assignments() -> dict[str, str]:
    return {role: p.id for p in DEMO_TEAM for role in p.roles}


async def run_plan_demo(
    client: Client,
    store: ContactStore,
    settings: Settings,
    speed: float,
    instance: str = DEMO_PLAN,
) -> None:
    """Start the demo plan (once per `instance`) and act for the demo team until it is over."""
    spec = load_plans(settings.library_dir)["blog_post"]
    await store.upsert_people([*DEMO_TEAM, SALES])
    try:
        handle = await start_plan(
            client,
            spec,
            instance,
            date.today() + timedelta(days=35),
            _assignments(),
            MANAGER,
            speed,
            settings.task_queue,
            store=store,
        )
        log.info("demo plan started", plan_id=handle.id)
    except AlreadyStarted as e:
        log.info("demo plan goes on", reason=str(e))
    plan_id = plan_workflow_id(spec.id, instance)
    seen: dict[tuple[str, int], datetime] = {}
    sent_back = False
    while (record := await store.plan(plan_id)) is None or record.state == "running":
        await asyncio.sleep(POLL)
        if record is None:
            continue  # the run has not recorded itself yet
        # Plan time runs `speed` times faster than real time from the run's start.
        now = record.started_at + (datetime.now(UTC) - record.started_at) * speed
        for task in (t for t in record.tasks if t.status == "active"):
            since = seen.setdefault((task.task_id, task.rounds), now)
            if now < _finishes_at(task, since):
                continue
            for change in _changes(task, sent_back):
                sent_back = sent_back or isinstance(change, Reject)
                await _apply(client, plan_id, change)
    log.info("demo plan over", plan_id=plan_id, state=record.state)


def _finishes_at(task: TaskRecord, since: datetime) -> datetime:
    if task.task_id in FINISH_BEFORE_DUE:
        return task.due_at - FINISH_BEFORE_DUE[task.task_id]
    if task.task_id in FINISH_AFTER_DUE:
        return task.due_at + FINISH_AFTER_DUE[task.task_id]
    return since + FINISH_AFTER_ACTIVE


async def answer_calls(
    client: Client, store: ContactStore, speed: float, after: timedelta = FINISH_AFTER_ACTIVE
) -> None:
    """Act for sales on the calls journeys give them, until cancelled (with the stack): each
    lead in CALL_OUTCOMES is called `after` (in plan time) once the task came."""
    while True:
        await asyncio.sleep(POLL)
        for found in await store.open_tasks_of(SALES.id):
            plan, task = found.plan, found.task
            outcome = CALL_OUTCOMES.get(plan.contact_id or "")
            now = plan.started_at + (datetime.now(UTC) - plan.started_at) * speed
            if outcome and now >= (task.activated_at or now) + after:
                done = Complete(task=task.task_id, by=SALES.id, outcome=outcome)
                await _apply(client, plan.plan_id, done)


def _changes(task: TaskRecord, rejected: bool) -> list[PlanChange]:
    """What the demo team does with an active task it has had long enough."""
    if task.kind == "task":
        return [Complete(task=task.task_id, by=task.people[0])]
    if not rejected:
        return [Reject(task=task.task_id, by=SENT_BACK_BY, comment=SENT_BACK_WITH)]
    return [Approve(task=task.task_id, by=p) for p in dict.fromkeys(task.people)]


async def _apply(client: Client, plan_id: str, change: PlanChange) -> None:
    try:
        await change_plan(client, plan_id, change)
        log.info("demo team", plan_id=plan_id, change=change.kind, by=change.by)
    except Refused as e:
        # Done already before a restart of `make run`, or approved by this approver before.
        log.info("demo change refused", change=change.kind, reason=str(e))
