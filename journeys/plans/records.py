"""A plan run as the store keeps it: the plan workflow writes its record after every change, and
the pages, the calendar feed and the report read it. Temporal holds the truth while a run lasts;
this record is what everyone else sees of it, and the history the estimates are learned from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from journeys.plans.state import TaskStatus

# running: tasks are open; finished: every task done; cancelled: stopped by a person.
PlanRunState = Literal["running", "finished", "cancelled"]


def plan_workflow_id(template: str, instance: str) -> str:
    """One run per (template, instance): `instance` names this piece of work (opaque, no PII)."""
    return f"plan:{template}:{instance}"


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
    # What its owner said came of it ("reached", "no_answer"), for a task that asks.
    outcome: str | None = None


class PlanRecord(BaseModel):
    plan_id: str
    template: str
    version: int
    instance: str
    target: date
    manager: str | None = None
    state: PlanRunState = "running"
    started_at: datetime
    finished_at: datetime | None = None
    tasks: list[TaskRecord]


class OpenTask(BaseModel):
    """One task someone may act on now, with what a page or a calendar shows around it."""

    plan: PlanRecord
    task: TaskRecord
