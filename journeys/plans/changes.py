"""The changes people make to a running plan, as the command line, the API and the task pages
send them to the plan workflow (each a Temporal update, validated before it is accepted). `by` is
the person acting: the plan's rules (journeys.plans.state) say who may do what."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, model_validator


class Complete(BaseModel):
    kind: Literal["complete"] = "complete"
    task: str
    by: str
    # For a task that names its outcomes (a sales call: reached, no_answer, not_interested).
    outcome: str | None = None


class Approve(BaseModel):
    kind: Literal["approve"] = "approve"
    task: str
    by: str


class Reject(BaseModel):
    kind: Literal["reject"] = "reject"
    task: str
    by: str
    comment: str = Field(max_length=2000)


class Reassign(BaseModel):
    """Give one task, or a role (every task of it from now on), to another person; only the
    plan's manager may. Exactly one of `task` and `role`."""

    kind: Literal["reassign"] = "reassign"
    task: str | None = None
    role: str | None = None
    to: str
    by: str

    @model_validator(mode="after")
    def _one(self) -> Reassign:
        if (self.task is None) == (self.role is None):
            raise ValueError("reassign either one task or one role")
        return self


class Move(BaseModel):
    """A new target date: every open task's due date and pending reminders move with it."""

    kind: Literal["move"] = "move"
    target: date
    by: str


class Cancel(BaseModel):
    kind: Literal["cancel"] = "cancel"
    by: str
    reason: str = Field("", max_length=500)


PlanChange = Complete | Approve | Reject | Reassign | Move | Cancel
