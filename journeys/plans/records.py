"""A plan run as the store keeps it: the plan workflow writes its record after every change, and
the pages, the calendar feed and the report read it. Temporal holds the truth while a run lasts;
this record is what everyone else sees of it, and the history the estimates are learned from."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from journeys.plans.state import TaskStatus

# running: tasks are open; finished: every task done; cancelled: stopped by a person.
PlanRunState = Literal["running", "finished", "cancelled"]


# What names one piece of work in its plan's id, which Temporal's UI and the logs show: a slug,
# never a person's name or address.
INSTANCE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
Instance = Annotated[str, Field(pattern=f"^{INSTANCE_PATTERN}$", max_length=100)]
_PLAN_ID = re.compile(rf"plan:[a-z][a-z0-9_]*:{INSTANCE_PATTERN}")


def plan_workflow_id(template: str, instance: str) -> str:
    """One run per (template, instance)."""
    return f"plan:{template}:{instance}"


def is_plan_id(text: str) -> bool:
    """Whether `text` is shaped like a plan run's id (not a journey run's, say)."""
    return _PLAN_ID.fullmatch(text) is not None


class TaskRecord(BaseModel):
    task_id: str
    title: str
    kind: Literal["task", "approval"]
    # Who acts on it now: its owner, or its approvers (person ids).
    people: list[str]
    status: TaskStatus
    # When it is due: the end of its owner's working hours on its due date.
    due_at: datetime
    # When it first became someone's, and how many times it did (a rejection makes it again).
    activated_at: datetime | None = None
    rounds: int = 0
    done_at: datetime | None = None
    done_by: str | None = None
    # What its owner may say came of it (the template's `outcomes`; none: nothing is asked), and
    # what they said ("reached", "no_answer").
    outcomes: list[str] = []
    outcome: str | None = None
    # An approval: who has approved it in this round (an approval that needs all its approvers
    # waits for the rest; those who approved have nothing left to do on it).
    approved_by: list[str] = []
    # A task an approver sent the work back to: the last such rejection, who made it and what
    # they said should change (shown to whoever does the work again).
    sent_back_by: str | None = None
    sent_back_comment: str | None = None


class PlanRecord(BaseModel):
    plan_id: str
    template: str
    version: int
    instance: str
    target: date
    manager: str | None = None
    # The contact a journey's task is about, for a plan a task step started.
    contact_id: str | None = None
    state: PlanRunState = "running"
    started_at: datetime
    finished_at: datetime | None = None
    tasks: list[TaskRecord]


class OpenTask(BaseModel):
    """One task someone may act on now, with what a page or a calendar shows around it."""

    plan: PlanRecord
    task: TaskRecord
