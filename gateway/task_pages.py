"""The pages a team member reaches from their plan notifications: one task's page, where they
mark it done, approve or reject it (`/tasks/{token}`), and their own page of open tasks
(`/my-tasks/{token}`). The calendar feed of the same tasks is `gateway.task_calendar`.

The pages read the store's record of plan runs (the plan workflow writes it after every change);
a change goes to the plan workflow itself (`workflows.plan_runs.change_plan`), which decides.
Times are shown on the person's own clock (their time zone in the team; UTC when unknown).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse

from gateway.deps import Gateway, GatewayDep
from gateway.pages import TokenRoute, page
from gateway.responses import documented
from journeys.plans.changes import Approve, Complete, PlanChange, Reject
from journeys.plans.records import PlanRecord, TaskRecord
from journeys.plans.spec import PlanSpec
from journeys.plans.state import Refused
from journeys.tokens import (
    MY_TASKS,
    TASK,
    PersonClaims,
    TaskClaims,
    person_links,
    task_links,
    verify,
)
from workflows.plan_runs import PlanNotFound, change_plan

router = APIRouter(route_class=TokenRoute, responses=documented(400))

COMMENT_MAX = 2000
DONE, APPROVE, REJECT = "done", "approve", "reject"


def plan_template(gw: Gateway, plan: PlanRecord) -> PlanSpec | None:
    """The template `plan` runs, when the library still has its version (None otherwise: the
    pages then go by the record alone)."""
    found = gw.plans.get(plan.template)
    return found if found is not None and found.version == plan.version else None


class Clock:
    """A person's time zone and the names of their team, for showing a plan to them."""

    def __init__(self, zone: str, names: dict[str, str]) -> None:
        self.zone = zone
        self._tz = ZoneInfo(zone)
        self._names = names

    def when(self, moment: datetime) -> str:
        return moment.astimezone(self._tz).strftime("%a %d %b %Y, %H:%M")

    def who(self, people: list[str]) -> str:
        return ", ".join(self._names.get(p, p) for p in people) or "nobody yet"


async def _clock_of(gw: GatewayDep, person_id: str) -> Clock:
    person = await gw.store.person(person_id)
    names = {p.id: p.name for p in await gw.store.team_members()}
    zone = person.time_zone if person else "UTC"
    try:
        return Clock(zone, names)
    except ZoneInfoNotFoundError:  # stored before this machine's tz database dropped it
        return Clock("UTC", names)


def _task_of(plan: PlanRecord, task_id: str) -> TaskRecord | None:
    return next((t for t in plan.tasks if t.task_id == task_id), None)


def neighbours(
    plan: PlanRecord, template: PlanSpec | None, task_id: str
) -> tuple[list[TaskRecord], list[TaskRecord]]:
    """The tasks whose work comes before `task_id` and those that wait for it: by the template's
    dependencies, or by the order of the record (the order of the work) without the template."""
    tasks = {t.task_id: t for t in plan.tasks}
    if template is not None and task_id in template.positions:
        before = template.task(task_id).after
        after = [t.id for t in template.tasks if task_id in t.after]
        return [tasks[t] for t in before if t in tasks], [tasks[t] for t in after if t in tasks]
    index = list(tasks).index(task_id)
    return plan.tasks[max(index - 1, 0) : index], plan.tasks[index + 1 : index + 2]


def _plan_heading(plan: PlanRecord, template: PlanSpec | None) -> str:
    what = template.description if template else plan.template
    return f"{escape(what)} <span class=muted>(target date {plan.target.isoformat()})</span>"


async def _contact(gw: Gateway, plan: PlanRecord) -> str:
    """Whom a journey's task is about (a sales call: whom to call), for its owner, an operator
    of this contact; nothing for a team's own plan."""
    contact = await gw.store.get_contact(plan.contact_id) if plan.contact_id else None
    if contact is None:
        return ""
    reach = [f"phone {contact.phone}" if contact.phone else "", contact.email or ""]
    details = ", ".join(escape(x) for x in (contact.display_name(), *reach) if x)
    return f'<p class="contact">About: {details}</p>'


def _status(task: TaskRecord, plan: PlanRecord, clock: Clock) -> str:
    if plan.state == "cancelled":
        return "The plan was cancelled."
    if task.status == "done" and task.done_at:
        outcome = f" ({escape(task.outcome)})" if task.outcome else ""
        by = escape(clock.who([task.done_by] if task.done_by else []))
        return f"Done by {by} on {clock.when(task.done_at)}{outcome}."
    if task.status == "waiting":
        return "Not active yet: it waits for the work before it."
    waiting = [p for p in task.people if p not in task.approved_by]
    approved = f"approved by {escape(clock.who(task.approved_by))}; " if task.approved_by else ""
    return f"Active: {approved}waiting for {escape(clock.who(waiting))}."


def _sent_back(task: TaskRecord, clock: Clock) -> str:
    """What the approver who sent the work back said, while it is to do again."""
    if task.status != "active" or not task.sent_back_comment:
        return ""
    by = escape(clock.who([task.sent_back_by] if task.sent_back_by else []))
    return (
        f'<div class="sent-back"><p>Sent back by {by}:</p>'
        f"<blockquote>{escape(task.sent_back_comment)}</blockquote></div>"
    )


def _others(title: str, tasks: list[TaskRecord], clock: Clock) -> str:
    if not tasks:
        return ""
    items = []
    for t in tasks:
        if t.status == "done" and t.done_at:
            who = f"done by {clock.who([t.done_by] if t.done_by else [])}, {clock.when(t.done_at)}"
        else:
            who = f"{clock.who(t.people)}, due {clock.when(t.due_at)}"
        items.append(f"<li>{escape(t.title)}: {escape(who)}</li>")
    return f"<h2>{title}</h2><ul>{''.join(items)}</ul>"


def _may_act(plan: PlanRecord, task: TaskRecord, person_id: str) -> bool:
    """Whether the page offers its buttons: the plan workflow decides, the page only spares
    people buttons that would be refused (the manager may finish a task, never approve one; an
    approver who approved in this round has nothing left to do on it)."""
    if plan.state != "running" or task.status != "active" or person_id in task.approved_by:
        return False
    return person_id in task.people or (task.kind == "task" and person_id == plan.manager)


def _buttons(task: TaskRecord, outcomes: list[str], comment: str) -> str:
    if task.kind == "approval":
        return (
            '<form method="post"><button type="submit" name="action" '
            f'value="{APPROVE}">Approve</button></form>'
            '<form method="post"><label for="comment">What should change?</label>'
            f'<textarea id="comment" name="comment" required maxlength="{COMMENT_MAX}">'
            f"{escape(comment)}</textarea>"
            f'<button type="submit" name="action" value="{REJECT}">Reject</button></form>'
        )
    choose = ""
    if outcomes:
        options = "".join(f'<option value="{escape(o)}">{escape(o)}</option>' for o in outcomes)
        choose = (
            '<label for="outcome">What came of it?</label>'
            f'<select id="outcome" name="outcome" required>'
            f'<option value="">Choose…</option>{options}</select>'
        )
    return (
        f'<form method="post">{choose}'
        f'<button type="submit" name="action" value="{DONE}">Done</button></form>'
    )


async def _task_page(
    gw: GatewayDep,
    claims: TaskClaims,
    plan: PlanRecord,
    error: str | None = None,
    comment: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    task = _task_of(plan, claims.task_id)
    if task is None:
        return page("This task is not in the plan", "<p>Nothing was changed.</p>", 404)
    template = plan_template(gw, plan)
    clock = await _clock_of(gw, claims.person_id)
    before, after = neighbours(plan, template, task.task_id)
    outcomes = task.outcomes
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    actions = ""
    if _may_act(plan, task, claims.person_id):
        actions = f'<div class="actions">{_buttons(task, outcomes, comment)}</div>'
    body = (
        f"{alert}<p>{_plan_heading(plan, template)}</p>{await _contact(gw, plan)}"
        f"<p>Due <strong>{clock.when(task.due_at)}</strong> "
        f"<span class=muted>({escape(clock.zone)})</span></p>"
        f'<p class="status">{_status(task, plan, clock)}</p>'
        f"{_sent_back(task, clock)}{actions}"
        f"{_others('Before it', before, clock)}{_others('After it', after, clock)}"
        f'<p><a href="{escape(person_links(gw.settings, claims.person_id)["my_tasks"])}">'
        "All my tasks</a></p>"
    )
    return page(task.title, body, status_code=status_code)


def _unknown_plan() -> HTMLResponse:
    return page("This plan is not known", "<p>Nothing was changed.</p>", status_code=404)


@router.get(
    "/tasks/{token}",
    summary="A task's page for the person it was sent to",
    response_class=HTMLResponse,
    responses=documented(404),
)
async def task_page(token: str, gw: GatewayDep) -> HTMLResponse:
    claims = verify(gw.settings, TASK, token, TaskClaims)
    plan = await gw.store.plan(claims.plan_id)
    if plan is None:
        return _unknown_plan()
    return await _task_page(gw, claims, plan)


@router.post(
    "/tasks/{token}",
    summary="Mark a task done, approve or reject it",
    response_class=HTMLResponse,
    responses=documented(404, 409, 413),
)
async def act_on_task(
    token: str,
    gw: GatewayDep,
    action: Annotated[str | None, Form()] = None,
    outcome: Annotated[str | None, Form()] = None,
    comment: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """The signed token in the URL is the credential, as for unsubscribing: only the person the
    link was sent to has it, and the page keeps it out of Referer headers, so another site cannot
    forge this post without it (no CSRF token would add anything). Only form fields are read: a
    JSON body names no action and gets the form back."""
    claims = verify(gw.settings, TASK, token, TaskClaims)
    comment = (comment or "").strip()
    change = await _change_asked(gw, claims, action, outcome or None, comment)
    if isinstance(change, str):
        plan = await gw.store.plan(claims.plan_id)
        if plan is None:
            return _unknown_plan()
        return await _task_page(gw, claims, plan, change, comment, status_code=422)
    try:
        plan = await change_plan(gw.client, claims.plan_id, change)
    except PlanNotFound:
        return _unknown_plan()
    except Refused as refused:
        current = await gw.store.plan(claims.plan_id)
        if current is None:
            return page("Not changed", f'<p class="error">{escape(str(refused))}</p>', 409)
        return await _task_page(gw, claims, current, str(refused), comment, status_code=409)
    # The plan as the workflow answered it: the store's record may lag the change by a moment.
    return await _task_page(gw, claims, plan)


async def _change_asked(
    gw: GatewayDep, claims: TaskClaims, action: str | None, outcome: str | None, comment: str
) -> PlanChange | str:
    """The change the form asks for, or what is wrong with the form (for the person to fix)."""
    task, by = claims.task_id, claims.person_id
    if action == DONE:
        plan = await gw.store.plan(claims.plan_id)
        template = plan and plan_template(gw, plan)
        outcomes = template.task(task).outcomes if template and task in template.positions else []
        if outcomes and outcome not in outcomes:
            return f"Choose what came of it: {', '.join(outcomes)}."
        return Complete(task=task, by=by, outcome=outcome)
    if action == APPROVE:
        return Approve(task=task, by=by)
    if action == REJECT:
        if not comment or len(comment) > COMMENT_MAX:
            return f"Say what should change, in at most {COMMENT_MAX} characters."
        return Reject(task=task, by=by, comment=comment)
    return "Choose Done, Approve or Reject."


@router.get(
    "/my-tasks/{token}",
    summary="A team member's open tasks",
    response_class=HTMLResponse,
)
async def my_tasks(token: str, gw: GatewayDep) -> HTMLResponse:
    claims = verify(gw.settings, MY_TASKS, token, PersonClaims)
    clock = await _clock_of(gw, claims.person_id)
    now = datetime.now(UTC)
    items = []
    for open_task in await gw.store.open_tasks_of(claims.person_id):
        plan, task = open_task.plan, open_task.task
        template = plan_template(gw, plan)
        before, after = neighbours(plan, template, task.task_id)
        link = task_links(gw.settings, plan.plan_id, task.task_id, claims.person_id)["task"]
        overdue = task.due_at < now
        flag = '<strong class="error">Overdue</strong> ' if overdue else ""
        items.append(
            f'<li class="{"overdue" if overdue else "open"}">'
            f'<a href="{escape(link)}"><strong>{escape(task.title)}</strong></a><br>'
            f"{flag}due {clock.when(task.due_at)}<br>"
            f"<span class=muted>{_plan_heading(plan, template)}</span><br>"
            f"<span class=muted>before: {escape(clock.who(_people(before)))}; "
            f"after: {escape(clock.who(_people(after)))}</span></li>"
        )
    body = (
        f'<p class=muted>Times in {escape(clock.zone)}.</p><ol class="tasks">{"".join(items)}</ol>'
        if items
        else "<p>Nothing is waiting for you.</p>"
    )
    return page("My tasks", body)


def _people(tasks: list[TaskRecord]) -> list[str]:
    """Who did (or does) `tasks`, once each, in order."""
    found: list[str] = []
    for t in tasks:
        for p in [t.done_by] if t.status == "done" and t.done_by else t.people:
            if p not in found:
                found.append(p)
    return found
