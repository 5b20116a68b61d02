"""A plan run as the plan workflow carries it (`PlanInput`, `PlanRun`), and the pure decisions
it asks: when each task is due, what a change does to the run and whom it tells, and the
store's record of the run. Everything here is in plan time (see `PlanRun.started_at`)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from journeys.durations import parse_duration
from journeys.fields import OpaqueId
from journeys.plans import state as rules
from journeys.plans.calendar import due_date
from journeys.plans.changes import Approve, Cancel, Complete, Move, PlanChange, Reassign, Reject
from journeys.plans.notices import About, Notice, NoticeKind
from journeys.plans.records import PlanRecord, TaskRecord, plan_workflow_id
from journeys.plans.schedule import WorkingTime, due_at, follow_ups, reminders
from journeys.plans.spec import PlanSpec, TaskSpec
from journeys.plans.state import PlanState

# The ApplicationError type of `load_clocks` for a person the team does not have.
UNKNOWN_PEOPLE = "UnknownPeople"


class Clocks(BaseModel):
    """The clocks of the people asked for, by person id."""

    clocks: dict[str, WorkingTime]


class HolidaysRequest(BaseModel):
    calendar: str
    first_year: int
    last_year: int


class Holidays(BaseModel):
    days: list[date]


class PlanRun(BaseModel):
    """Everything a plan run has done so far; carried across continue-as-new."""

    plan: PlanState
    # When the run started. Plan time runs `speed` times faster from here (1: real time).
    started_at: datetime
    finished_at: datetime | None = None
    # The clock of everyone the run has named (time zone, working days and hours), by person
    # id, as loaded when they were named: no addresses or names, those stay in the store.
    clocks: dict[str, WorkingTime]
    # The public holidays of the template's calendar through the end of `holidays_through`
    # (a year), loaded by an activity: the holidays package reads files as it counts, which
    # workflow code may not; loaded further when the target moves past them.
    holidays: set[date] = set()
    holidays_through: int = 0
    # When each person got a task they were given after it became active ("task/person"):
    # reminders from before that moment are not theirs.
    given: dict[str, datetime] = {}
    # Ledger keys of every notification sent: a notification goes out once, whatever moves.
    sent: set[str] = set()
    # Notifications decided and not yet sent (the workflow's loop sends them).
    outbox: list[Notice] = []


class PlanInput(BaseModel):
    spec: PlanSpec
    # Names this piece of work among the template's runs (opaque, no PII): plan:<template>:<it>.
    instance: OpaqueId
    target: date
    # Role -> person id, for every role the plan's tasks need.
    assignments: dict[str, OpaqueId]
    manager: OpaqueId | None = None
    # The contact a journey's task is about (a sales call): its owner is shown whom to call.
    contact_id: OpaqueId | None = None
    # Divides every duration (demos): plan time runs this many times faster than real time.
    speed: float = Field(1.0, gt=0)
    state: PlanRun | None = None

    @property
    def plan_id(self) -> str:
        return plan_workflow_id(self.spec.id, self.instance)

    def people(self) -> list[str]:
        """Everyone the run starts with: the assigned people and the manager."""
        named = set(self.assignments.values()) | ({self.manager} if self.manager else set())
        return sorted(named)


def due_of(spec: PlanSpec, run: PlanRun, task: TaskSpec) -> datetime:
    """When `task` is due: its due date counted on its (first) person's working days, skipping
    the plan's holidays, at the end of their working hours (on their last working day before
    it, should they not work that day)."""
    clock = run.clocks[run.plan.people(task)[0]]
    day = due_date(run.plan.target, task.offset, clock.working_days, run.holidays)
    return due_at(day, clock, run.holidays)


def acting(run: PlanRun, task: TaskSpec) -> list[str]:
    """Who still has to act on an active task: its owner, or the approvers yet to approve."""
    approved = set(run.plan.tasks[task.id].approvals.values())
    return [p for p in dict.fromkeys(run.plan.people(task)) if p not in approved]


def owners(spec: PlanSpec, run: PlanRun) -> list[str]:
    """Everyone an open task waits for (the PlanOwners search attribute): nobody, once the
    plan is cancelled."""
    if run.plan.cancelled:
        return []
    return sorted({p for t in run.plan.open_tasks() for p in acting(run, spec.task(t))})


def announce(
    spec: PlanSpec,
    run: PlanRun,
    task_ids: list[str],
    kind: NoticeKind,
    now: datetime,
    about: About | None = None,
    only: str | None = None,
) -> list[Notice]:
    """A notification now to each person who acts on `task_ids` (or `only` them)."""
    return [
        Notice(
            kind=kind,
            task=t,
            round=len(run.plan.tasks[t].activated_at),
            person=person,
            at=now,
            about=about,
        )
        for t in task_ids
        for person in acting(run, spec.task(t))
        if only is None or person == only
    ]


def plan_today(run: PlanRun, now: datetime) -> date:
    """Today on the plan's clock: its manager's, when they have one."""
    manager = run.plan.manager
    return run.clocks[manager].local_date(now) if manager in run.clocks else now.date()


def apply_change(spec: PlanSpec, run: PlanRun, change: PlanChange, now: datetime) -> list[Notice]:
    """Apply `change` (Refused with the reason if it does not apply, `run` then unchanged in
    what matters: validators try it on a copy first) and return the notifications it causes.
    Whether a reassignment's new person is on the team only the store knows: the workflow asks
    it (and loads their clock) before it applies the change."""
    plan = run.plan
    notices: list[Notice] = []
    match change:
        case Complete(task=task_id, by=by, outcome=outcome):
            rules.complete(spec, plan, task_id, by, now, outcome)
            notices = _hand_off(spec, run, task_id, by, now)
        case Approve(task=task_id, by=by):
            if rules.approve(spec, plan, task_id, by, now):
                notices = _hand_off(spec, run, task_id, by, now)
        case Reject(task=task_id, by=by, comment=comment):
            back = rules.reject(spec, plan, task_id, by, comment, now)
            why = About(after_task=task_id, by=by, when=now, comment=comment)
            notices = announce(spec, run, [back], "sent_back", now, why)
        case Reassign(task=task_id, role=role, to=to, by=by):
            mine = rules.reassign(spec, plan, by, to, task_id, role)
            run.given.update({f"{t}/{to}": now for t in mine})
            notices = announce(spec, run, mine, "assigned", now, only=to)
        case Move(target=target, by=by):
            rules.move(plan, by, target, plan_today(run, now))
        case Cancel(by=by):
            rules.cancel(plan, by)
    if plan.cancelled or rules.finished(plan):
        run.finished_at = now
    return notices


def _hand_off(spec: PlanSpec, run: PlanRun, done: str, by: str, now: datetime) -> list[Notice]:
    """The tasks a finished one lets start, each announced to its people with who finished
    what and when."""
    ready = rules.activate_ready(spec, run.plan, now)
    return announce(spec, run, ready, "handoff", now, About(after_task=done, by=by, when=now))


def timed(spec: PlanSpec, run: PlanRun, plan_id: str, now: datetime) -> list[Notice]:
    """The reminders, follow-ups and escalations of the open tasks not sent yet, earliest
    first: those at or before `now` are to send, the next one is what the workflow sleeps
    until. Counted afresh from the due dates as they stand (a moved target or a reassigned
    task moves what is pending), while a key once sent is never sent again. A reminder from
    before the person got the task is not theirs; of the follow-ups already due only the
    latest goes (after a worker was away for days: one message, not one per day missed)."""
    if run.plan.cancelled:
        return []
    days_off = run.holidays
    before = [parse_duration(r) for r in spec.reminders]
    found: list[Notice] = []
    for task_id in run.plan.open_tasks():
        task, current = spec.task(task_id), run.plan.tasks[task_id]
        due, started = due_of(spec, run, task), current.activated_at[-1]
        late = max(0, (now - due).days) + 2 + spec.escalate_after
        at = {"task": task_id, "round": len(current.activated_at)}
        for person in acting(run, task):
            clock, since = run.clocks[person], run.given.get(f"{task_id}/{person}", started)
            for i, moment in enumerate(reminders(due, before, clock, days_off)):
                if moment >= since:
                    found.append(Notice(kind="reminder", index=i, person=person, at=moment, **at))
            follow = [m for m in follow_ups(due, clock, days_off, late) if m >= since]
            passed = [m for m in follow if m <= now]
            for moment in passed[-1:] + [m for m in follow if m > now][:1]:
                # Indexed by its day (20270111): one follow-up a day, however the due date moves.
                day = int(f"{clock.local_date(moment):%Y%m%d}")
                found.append(Notice(kind="follow_up", index=day, person=person, at=moment, **at))
        owner = run.plan.people(task)[0]
        escalate = follow_ups(due, run.clocks[owner], days_off, spec.escalate_after)
        if run.plan.manager and len(escalate) == spec.escalate_after:
            found.append(
                Notice(
                    kind="escalation",
                    person=run.plan.manager,
                    at=escalate[-1],
                    about=About(by=owner),
                    **at,
                )
            )
    return sorted((n for n in found if n.key(plan_id) not in run.sent), key=lambda n: n.at)


def record(spec: PlanSpec, inp: PlanInput, run: PlanRun) -> PlanRecord:
    """The run as the store keeps it (see journeys.plans.records)."""
    plan = run.plan
    state = "cancelled" if plan.cancelled else "finished" if rules.finished(plan) else "running"
    return PlanRecord(
        plan_id=inp.plan_id,
        template=spec.id,
        version=spec.version,
        instance=inp.instance,
        target=plan.target,
        manager=plan.manager,
        contact_id=inp.contact_id,
        state=state,
        started_at=run.started_at,
        finished_at=run.finished_at,
        tasks=[_task_record(spec, run, t) for t in spec.tasks],
    )


def _task_record(spec: PlanSpec, run: PlanRun, task: TaskSpec) -> TaskRecord:
    current = run.plan.tasks[task.id]
    back = _last_rejection(spec, run.plan, task.id)
    return TaskRecord(
        task_id=task.id,
        title=task.title,
        kind=task.kind,
        people=run.plan.people(task),
        status=current.status,
        due_at=due_of(spec, run, task),
        activated_at=next(iter(current.activated_at), None),
        rounds=len(current.activated_at),
        done_at=current.done_at,
        done_by=current.done_by,
        outcomes=list(task.outcomes),
        outcome=current.outcome,
        approved_by=list(dict.fromkeys(current.approvals.values())),
        sent_back_by=back.by if back else None,
        sent_back_comment=back.comment if back else None,
    )


def _last_rejection(spec: PlanSpec, plan: PlanState, task_id: str) -> rules.Rejection | None:
    """The last rejection that sent the work back to `task_id`."""
    rejections = [
        r for a in spec.tasks if a.sent_back_to == task_id for r in plan.tasks[a.id].rejections
    ]
    return max(rejections, key=lambda r: r.at, default=None)
