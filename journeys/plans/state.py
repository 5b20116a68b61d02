"""Where a plan run stands, and the changes people make to it, as pure decisions: which tasks are
someone's now, who may complete, approve or reject what, and where a rejection sends the work.
The plan workflow keeps a `PlanState`, asks these functions, and acts on what they return; a
change that does not apply is refused with the reason, and changes nothing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from journeys.plans.spec import PlanSpec, TaskSpec

# waiting: for the tasks it comes after; active: its owner's (or approvers') now; done: finished
# (an approval: approved).
TaskStatus = Literal["waiting", "active", "done"]


class Refused(ValueError):
    """A change that does not apply, with the reason a person reads."""


class Rejection(BaseModel):
    by: str
    at: datetime
    comment: str


class TaskState(BaseModel):
    status: TaskStatus = "waiting"
    # When it became someone's, each time (a rejection makes the work someone's again).
    activated_at: list[datetime] = []
    done_at: datetime | None = None
    done_by: str | None = None
    # What its owner said came of it, for a task that names its outcomes.
    outcome: str | None = None
    # Given to someone other than its role's person by the manager (role -> person id).
    reassigned: dict[str, str] = {}
    # An approval: who approved, by role, in this round.
    approvals: dict[str, str] = {}
    # An approval: every rejection, with its comment, over all rounds.
    rejections: list[Rejection] = []


class PlanState(BaseModel):
    target: date
    # Role -> person id; a task's owner is the person its role is assigned to.
    assignments: dict[str, str]
    # Who may act on any task (complete it for its owner, reassign): the plan's manager.
    manager: str | None = None
    tasks: dict[str, TaskState]
    cancelled: bool = False

    @classmethod
    def new(
        cls, plan: PlanSpec, target: date, assignments: dict[str, str], manager: str | None
    ) -> PlanState:
        missing = sorted({r for t in plan.tasks for r in t.roles} - set(assignments))
        if missing:
            raise Refused(f"assign every role the plan's tasks need; missing: {', '.join(missing)}")
        unknown = sorted(set(assignments) - set(plan.roles))
        if unknown:
            raise Refused(f"the plan has no roles {', '.join(unknown)}")
        return cls(
            target=target,
            assignments=assignments,
            manager=manager,
            tasks={t.id: TaskState() for t in plan.tasks},
        )

    def person(self, task: TaskSpec, role: str) -> str:
        """Who acts on `task` in `role`: whom the manager gave it to, or the role's person."""
        return self.tasks[task.id].reassigned.get(role, self.assignments[role])

    def people(self, task: TaskSpec) -> list[str]:
        """Who acts on `task`: its owner, or its approvers."""
        return [self.person(task, r) for r in task.roles]

    def open_tasks(self) -> list[str]:
        return [t for t, s in self.tasks.items() if s.status == "active"]


def activate_ready(plan: PlanSpec, state: PlanState, now: datetime) -> list[str]:
    """Make every waiting task whose dependencies are done someone's; the ones it made so, in
    the plan's order (each owner is then notified)."""
    ready = [
        t.id
        for t in plan.tasks
        if state.tasks[t.id].status == "waiting"
        and all(state.tasks[d].status == "done" for d in t.after)
    ]
    for task_id in ready:
        task = state.tasks[task_id]
        task.status = "active"
        task.activated_at.append(now)
        task.approvals = {}
    return ready


def finished(state: PlanState) -> bool:
    return all(t.status == "done" for t in state.tasks.values())


def _active(plan: PlanSpec, state: PlanState, task_id: str) -> TaskSpec:
    if task_id not in plan.positions:
        raise Refused(f"the plan has no task {task_id!r}")
    if state.cancelled:
        raise Refused("the plan was cancelled")
    task, status = plan.task(task_id), state.tasks[task_id].status
    if status == "done":
        raise Refused(f"{task_id!r} is done already")
    if status == "waiting":
        waits_for = [d for d in task.after if state.tasks[d].status != "done"]
        raise Refused(f"{task_id!r} is not active yet: it waits for {', '.join(waits_for)}")
    return task


def complete(
    plan: PlanSpec,
    state: PlanState,
    task_id: str,
    person: str,
    now: datetime,
    outcome: str | None = None,
) -> None:
    """`person` marks a task done: its owner, or the plan's manager; with one of the task's
    `outcomes` when it names them."""
    task = _active(plan, state, task_id)
    if task.kind == "approval":
        raise Refused(f"{task_id!r} is an approval: approve or reject it")
    owner = state.person(task, task.owner or "")
    if person not in (owner, state.manager):
        raise Refused(f"{task_id!r} is {owner}'s task: only they or the plan's manager finish it")
    if task.outcomes and outcome not in task.outcomes:
        said = f"not {outcome!r}" if outcome is not None else "it is required"
        raise Refused(f"say what came of {task_id!r}: one of {', '.join(task.outcomes)} ({said})")
    if not task.outcomes and outcome is not None:
        raise Refused(f"{task_id!r} names no outcomes: complete it without one")
    current = state.tasks[task_id]
    current.status, current.done_at, current.done_by, current.outcome = "done", now, person, outcome


def _approver_role(plan: PlanSpec, state: PlanState, task: TaskSpec, person: str) -> str:
    """The role `person` approves `task` in: one of theirs not yet given in this round."""
    theirs = [r for r in task.approvers if state.person(task, r) == person]
    if not theirs:
        raise Refused(f"{person} is not an approver of {task.id!r}")
    open_roles = [r for r in theirs if r not in state.tasks[task.id].approvals]
    if not open_roles:
        raise Refused(f"{person} has approved {task.id!r} already")
    return open_roles[0]


def approve(plan: PlanSpec, state: PlanState, task_id: str, person: str, now: datetime) -> bool:
    """`person` approves; True when that settles the approval (all roles, or any one)."""
    task = _active(plan, state, task_id)
    if task.kind != "approval":
        raise Refused(f"{task_id!r} is not an approval")
    current = state.tasks[task_id]
    current.approvals[_approver_role(plan, state, task, person)] = person
    if task.approve == "any" or set(current.approvals) == set(task.approvers):
        current.status, current.done_at, current.done_by = "done", now, person
        return True
    return False


def reject(
    plan: PlanSpec, state: PlanState, task_id: str, person: str, comment: str, now: datetime
) -> str:
    """`person` rejects: the work goes back to the owner of the approval's `sent_back_to` task,
    and every task between it and the approval waits again. Returns the task sent back."""
    task = _active(plan, state, task_id)
    if task.kind != "approval":
        raise Refused(f"{task_id!r} is not an approval")
    if not comment.strip():
        raise Refused("say what should change: a rejection needs a comment")
    _approver_role(plan, state, task, person)
    back_to = task.sent_back_to
    assert back_to is not None  # validation: every approval says where a rejection goes
    state.tasks[task_id].rejections.append(Rejection(by=person, at=now, comment=comment))
    for again in _between(plan, back_to, task_id):
        state.tasks[again].status = "waiting"
        state.tasks[again].approvals = {}
    redo = state.tasks[back_to]
    redo.status, redo.done_at, redo.done_by = "active", None, None
    redo.activated_at.append(now)
    return back_to


def _between(plan: PlanSpec, start: str, end: str) -> list[str]:
    """The tasks after `start` that `end` comes after, and `end` itself: the work to do again."""
    later = {start}
    for t in plan.tasks:  # in file order, which validation keeps acyclic
        if any(d in later for d in t.after):
            later.add(t.id)
    before_end: set[str] = {end}
    frontier = [end]
    while frontier:
        for d in plan.task(frontier.pop()).after:
            if d not in before_end:
                before_end.add(d)
                frontier.append(d)
    return [t.id for t in plan.tasks if t.id in later and t.id in before_end and t.id != start]


def _managed(state: PlanState, person: str, what: str) -> None:
    """Only the plan's manager changes the plan itself, and only while it runs."""
    if state.cancelled:
        raise Refused("the plan was cancelled")
    if finished(state):
        raise Refused("the plan is finished")
    if state.manager is None:
        raise Refused(f"the plan has no manager: nobody may {what}")
    if person != state.manager:
        raise Refused(f"only the plan's manager ({state.manager}) may {what}")


def reassign(
    plan: PlanSpec,
    state: PlanState,
    by: str,
    to: str,
    task_id: str | None = None,
    role: str | None = None,
) -> list[str]:
    """The manager gives one task, or a role (every task of it not given to someone by name),
    to `to`, who must be a team member (the workflow asks the store). Returns the active tasks
    that became `to`'s, whom they are then announced to."""
    _managed(state, by, "reassign work")
    if role is not None:
        if role not in state.assignments:
            raise Refused(f"the plan has no role {role!r}")
        state.assignments[role] = to
        tasks = [
            t for t in plan.tasks if role in t.roles and role not in state.tasks[t.id].reassigned
        ]
    else:
        if task_id not in plan.positions:
            raise Refused(f"the plan has no task {task_id!r}")
        task = plan.task(task_id)
        if state.tasks[task.id].status == "done":
            raise Refused(f"{task.id!r} is done already")
        if len(task.roles) != 1:
            raise Refused(f"{task.id!r} has several approvers: reassign one of their roles")
        state.tasks[task.id].reassigned[task.roles[0]] = to
        tasks = [task]
    return [t.id for t in tasks if state.tasks[t.id].status == "active"]


def move(state: PlanState, by: str, target: date, today: date) -> None:
    """The manager moves the target date; every due date moves with it. `today` on the plan's
    clock (its manager's): a target already past is refused."""
    _managed(state, by, "move the target date")
    if target < today:
        raise Refused(f"{target:%Y-%m-%d} is in the past (today is {today:%Y-%m-%d})")
    state.target = target


def cancel(state: PlanState, by: str) -> None:
    """The manager stops the plan: nothing more is due, nobody is reminded."""
    _managed(state, by, "cancel the plan")
    state.cancelled = True
