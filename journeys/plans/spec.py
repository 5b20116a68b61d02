"""The plan template: a team's repeatable piece of work as data. Roles, and tasks with an owner
role, a due date relative to the plan's target date and the tasks they come after; an approval is
a task whose approvers accept or send the work back. Validated in full (journeys.plans.library)
before any plan starts; a plan run keeps the version it started with."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journeys.durations import parse_duration
from journeys.plans.calendar import Offset

Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Model):
    id: Id
    title: str = Field(min_length=1, max_length=200)
    # task: its owner does it and marks it done; approval: its approvers accept the work of the
    # tasks it comes after, or send it back to `on_reject`'s owner with a comment.
    kind: Literal["task", "approval"] = "task"
    owner: Id | None = None
    approvers: list[Id] = []
    # all: every approver role must approve; any: the first approval settles it.
    approve: Literal["all", "any"] = "all"
    # The task whose owner gets the work back, with the comment, when an approver rejects it;
    # by default the approval's only dependency.
    on_reject: Id | None = None
    # Relative to the plan's target date: -30d (days before), -5bd (business days before), 0d.
    due: str
    # Tasks that must be done first; the task becomes its owner's when they are.
    after: list[Id] = []
    # What may come of a task (a sales call: reached, no_answer): its owner names one when they
    # complete it. None declared: nothing is asked.
    outcomes: list[Id] = []
    # How the author reads the source of the task (the seed's sentence); shown by nothing else.
    note: str | None = None

    @field_validator("due")
    @classmethod
    def _due(cls, v: str) -> str:
        Offset.parse(v)
        return v

    @model_validator(mode="after")
    def _who(self) -> TaskSpec:
        if self.kind == "task" and (self.owner is None or self.approvers):
            raise ValueError("a task needs an 'owner' role (and no 'approvers')")
        if self.kind == "approval" and (not self.approvers or self.owner is not None):
            raise ValueError("an approval needs 'approvers' roles (and no 'owner')")
        if self.kind == "task" and self.on_reject is not None:
            raise ValueError("only an approval has 'on_reject'")
        if self.kind == "approval" and self.outcomes:
            raise ValueError("an approval's outcome is approved or rejected: no 'outcomes'")
        if len(set(self.outcomes)) != len(self.outcomes):
            raise ValueError("an outcome is named twice in 'outcomes'")
        return self

    @property
    def offset(self) -> Offset:
        return Offset.parse(self.due)

    @property
    def roles(self) -> list[str]:
        """The roles that act on this task: its owner, or its approvers."""
        return [self.owner] if self.owner else list(self.approvers)

    @property
    def sent_back_to(self) -> str | None:
        """The task a rejection sends the work back to."""
        if self.kind != "approval":
            return None
        return self.on_reject or (self.after[0] if len(self.after) == 1 else None)


class PlanSpec(_Model):
    """One plan template as authored."""

    id: Id
    version: int = Field(ge=1)
    description: str
    # Role id -> who that is, in words ("Blog writer"). Assigned to people when a plan starts.
    roles: dict[Id, str] = Field(min_length=1)
    # Whose public holidays business days skip: a country code of the holidays package ("PL").
    holidays: str | None = None
    # When each task's owner is reminded before it is due.
    reminders: list[str] = ["48h", "24h"]
    # How many of its owner's working days a task may be late before the plan's manager is told
    # (its owner is followed up every working day from the first).
    escalate_after: int = Field(2, ge=1, le=60)
    tasks: list[TaskSpec] = Field(min_length=1)

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_duration(text)
        return v

    @cached_property
    def positions(self) -> dict[str, int]:
        """Where each task id stands in `tasks` (the first, should an id repeat)."""
        found: dict[str, int] = {}
        for index, t in enumerate(self.tasks):
            found.setdefault(t.id, index)
        return found

    def task(self, task_id: str) -> TaskSpec:
        return self.tasks[self.positions[task_id]]
