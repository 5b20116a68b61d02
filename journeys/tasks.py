"""A journey's task step run as a plan of one task: who is given it, when it is due, and the plan
that notifies them and takes their outcome (journeys.plans). Pure: the workflow and the activity
that reads the team ask these with the store's answers and the run's clock."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime

from pydantic import BaseModel

from journeys.plans.calendar import Offset, due_date, public_holidays
from journeys.plans.records import INSTANCE_PATTERN
from journeys.plans.schedule import WorkingTime, due_at
from journeys.plans.spec import PlanSpec, TaskSpec
from journeys.spec import JourneySpec, TaskStep

# The one role of a task step's plan: the person the run gave the task to.
OWNER = "owner"
# Plan template ids are ids (journeys.plans.spec.Id) of at most this many characters.
_TEMPLATE_ID_MAX = 64
# An instance is the contact, the entry and the visit: a contact id up to this long stays as it
# is (opaque ids are at most 64), which with the rest fits the instance's 100 characters.
_CONTACT_MAX = 64
_INSTANCE = re.compile(INSTANCE_PATTERN)


class TaskRequest(BaseModel):
    """Whom a task step about `contact_id` goes to, and when it is due, from `now` (the run's
    clock)."""

    contact_id: str
    role: str | None = None
    owner_attribute: str | None = None
    due: str
    now: datetime


class TaskAssignment(BaseModel):
    """The owner's id and the task's dates (ids and dates only: the history keeps it); or no
    owner, with the reason, when nobody can be given the task."""

    owner: str | None = None
    # The day the step was reached on the owner's clock, which the due offset counts from.
    reached_on: date | None = None
    due_at: datetime | None = None
    reason: str | None = None


def assigned(owner: str, clock: WorkingTime, offset: Offset, now: datetime) -> TaskAssignment:
    """`owner` is given a task reached at `now`, due `offset` later on their clock. The plan
    computes the same moment (journeys.plans.run.due_of: the owner's working days, no public
    holidays, the end of their working day), so the journey's overdue comes as the plan's."""
    reached_on = clock.local_date(now)
    days_off = public_holidays(None)
    due = due_date(reached_on, offset, clock.working_days, days_off)
    return TaskAssignment(owner=owner, reached_on=reached_on, due_at=due_at(due, clock, days_off))


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def task_plan(journey: JourneySpec, step: TaskStep) -> PlanSpec:
    """The plan of one task a step runs: `<journey>__<step>` (cut to an id's length with a hash
    of the whole when longer), the step's title and outcomes, due `step.due` after the day it
    was reached, one reminder four working hours before it is due."""
    template = f"{journey.id}__{step.id}"
    if len(template) > _TEMPLATE_ID_MAX:
        template = f"{template[: _TEMPLATE_ID_MAX - 9]}_{_short_hash(template, 8)}"
    return PlanSpec(
        id=template,
        version=journey.version,
        description=f"task '{step.id}' of journey '{journey.id}'",
        roles={OWNER: "the team member the journey gave the task to"},
        # A call due in a day or two: a 24 or 48 hour reminder would come as it is given.
        reminders=["4h"],
        tasks=[
            TaskSpec(
                id=step.id, title=step.title, owner=OWNER, due=step.due, outcomes=step.outcomes
            )
        ],
    )


def task_instance(contact_id: str, entry_id: str, visit: int) -> str:
    """`<contact>.<entry>.<visit>`: the contact id (or, when it is no slug an instance may
    hold, `c` and its hash), the first 8 characters of the entry's run id and the visit of the
    step, so every entry and every visit has a plan of its own."""
    contact = contact_id
    if len(contact) > _CONTACT_MAX or not _INSTANCE.fullmatch(contact):
        contact = f"c{_short_hash(contact_id, 16)}"
    return f"{contact}.{entry_id[:8]}.{visit}"
