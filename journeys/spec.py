"""The journey spec: a journey is data, a graph of steps with ids, interpreted by one workflow.

Each step kind is one model here, with what it leads to (`successors`) and how it reads in the
Temporal UI (`describe`); what it *does* lives in `workflows.journey`, one method per kind.
A step without `next` continues with the step listed right after it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journeys.channels import CHANNELS, Channel
from journeys.durations import describe_duration, parse_duration
from journeys.plans.calendar import Offset
from journeys.plans.people import RoleId

StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
MANUAL = "manual"
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Step(_Model):
    id: StepId
    # Where the author explains how the step reads the source document; shown by `journeys list`.
    note: str | None = None

    def successors(self) -> list[str]:
        return []

    def describe(self) -> str:
        return f"at step '{self.id}'"


class _Sequential(_Step):
    next: StepId | None = None

    def successors(self) -> list[str]:
        return [self.next] if self.next else []


class Variant(_Model):
    """One arm of an A/B test: the template it sends and its relative weight."""

    name: str
    template: str
    weight: int = Field(1, ge=1)


class SendStep(_Sequential):
    kind: Literal["send"]
    channel: Channel
    template: str | None = None
    # A/B test: one variant is drawn per run (deterministically) and recorded in the ledger.
    variants: list[Variant] = []
    # Where to go when the provider refuses permanently (invalid number, no address, no consent);
    # without it the journey continues with `next`, and a `failed` event is recorded either way.
    on_failure: StepId | None = None
    # A message the contact asked for (a receipt, a password reset): sent at once, whatever the
    # quiet hours and the frequency cap (journeys.send_window) say.
    transactional: bool = False
    # A message over the frequency cap waits for room under it, or is skipped (the journey goes
    # on with `next` and a `skipped` event).
    when_capped: Literal["wait", "skip"] = "wait"

    @model_validator(mode="after")
    def _one_template_source(self) -> SendStep:
        if bool(self.template) == bool(self.variants):
            raise ValueError("a send needs either 'template' or 'variants' (not both)")
        return self

    @model_validator(mode="after")
    def _skipped_only_if_not_transactional(self) -> SendStep:
        # On the values, not on which were given: the spec travels to the worker with all of them.
        if self.transactional and self.when_capped == "skip":
            raise ValueError("a transactional send is never capped, so never skipped")
        return self

    def templates(self) -> list[str]:
        return [self.template] if self.template else [v.template for v in self.variants]

    def successors(self) -> list[str]:
        return super().successors() + ([self.on_failure] if self.on_failure else [])

    def describe(self) -> str:
        return f"sending {CHANNELS[self.channel].display} '{self.id}'"


class WaitStep(_Sequential):
    kind: Literal["wait"]
    duration: str | None = None
    # "HH:MM" in the contact's own time zone: the next such moment.
    until: str | None = None

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @field_validator("until")
    @classmethod
    def _until(cls, v: str | None) -> str | None:
        if v is not None and not _LOCAL_TIME.match(v):
            raise ValueError(f"'{v}' is not a local time of day (HH:MM, 24-hour)")
        return v

    @model_validator(mode="after")
    def _one_of(self) -> WaitStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a wait needs exactly one of 'duration' or 'until'")
        return self

    def delta(self) -> timedelta:
        assert self.duration is not None
        return parse_duration(self.duration)

    def describe(self) -> str:
        if self.until:
            return f"waiting until {self.until} in the contact's time zone"
        return f"waiting {describe_duration(self.delta())}"


class WaitForStep(_Step):
    kind: Literal["wait_for"]
    event: str
    # The earlier send this event must be about (an open of *that* email), if any.
    step: StepId | None = None
    timeout: str
    on_event: StepId
    on_timeout: StepId
    # Opens fetched by privacy proxies (Apple Mail Privacy Protection and the like) say nothing
    # about the person; they count only when the author says so.
    machine_opens: bool = False

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        parse_duration(v)
        return v

    def timeout_delta(self) -> timedelta:
        return parse_duration(self.timeout)

    def successors(self) -> list[str]:
        return [self.on_event, self.on_timeout]

    def awaited(self) -> str:
        """What it waits for, in words: "'intro' to be opened", "event 'purchase'"."""
        return f"'{self.step}' to be {self.event}" if self.step else f"event '{self.event}'"

    def describe(self) -> str:
        return f"waiting up to {describe_duration(self.timeout_delta())} for {self.awaited()}"


class Condition(_Model):
    when: str
    next: StepId


class BranchStep(_Step):
    kind: Literal["branch"]
    # Evaluated in order on the contact's facts at that moment; the first that holds wins.
    conditions: list[Condition] = Field(min_length=1)
    otherwise: StepId

    def successors(self) -> list[str]:
        return [c.next for c in self.conditions] + [self.otherwise]

    def describe(self) -> str:
        return f"checking {', '.join(c.when for c in self.conditions)}"


class SplitArm(_Model):
    weight: int = Field(ge=1)
    next: StepId


class SplitStep(_Step):
    kind: Literal["split"]
    arms: list[SplitArm] = Field(min_length=2)

    def successors(self) -> list[str]:
        return [a.next for a in self.arms]

    def describe(self) -> str:
        return "drawing a random split"


class TagStep(_Sequential):
    kind: Literal["tag"]
    add: list[str] = []
    remove: list[str] = []

    @model_validator(mode="after")
    def _something(self) -> TagStep:
        if not self.add and not self.remove:
            raise ValueError("a tag step needs 'add' or 'remove'")
        return self

    def describe(self) -> str:
        return f"tagging (+{self.add} -{self.remove})"


class AudienceStep(_Sequential):
    kind: Literal["audience"]
    audience: str
    action: Literal["add", "remove"] = "add"

    def describe(self) -> str:
        verb = "adding to" if self.action == "add" else "removing from"
        return f"{verb} audience '{self.audience}'"


# What the owner of a task step may say came of it when the step names no outcomes: a sales call.
DEFAULT_OUTCOMES = ("reached", "no_answer", "not_interested")
# Outcomes the run gives a task step itself, never its owner: the task's due moment passed before
# it was done, or no team member could be given it (no one has the role, the contact's attribute
# names no team member).
OVERDUE = "overdue"
UNASSIGNED = "unassigned"
Outcome = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class TaskStep(_Sequential):
    """Work for a team member about this contact (a call by sales): the run hands it to one
    person, waits for what came of it, and goes on with `on[outcome]`, else with `next`."""

    kind: Literal["task"]
    # Plain text the team member reads, never a template: a contact's name, address or number
    # cannot reach the task's mail, its page or the plan's history unless an author typed it in.
    title: str = Field(min_length=1, max_length=200)
    # Who does it, exactly one of: the team members with this role take turns, one per contact
    # (journeys.decisions.task_owner), or the team member whose id this contact attribute holds
    # (their account owner, say).
    role: RoleId | None = None
    owner_attribute: str | None = Field(None, min_length=1, max_length=64)
    # From the day the step is reached, on the owner's clock: 2bd (business days), 1d. It falls
    # due at the end of the owner's working day, as a plan's task does (journeys.plans.schedule).
    due: str
    outcomes: list[Outcome] = Field(list(DEFAULT_OUTCOMES), min_length=1)
    # Outcome (or overdue, unassigned) -> the step it leads to; any other goes on with `next`.
    on: dict[str, StepId] = {}

    @field_validator("title")
    @classmethod
    def _plain(cls, v: str) -> str:
        if "{{" in v or "{%" in v:
            raise ValueError("a task's title is plain text: no contact data is templated into it")
        return v

    @field_validator("due")
    @classmethod
    def _due(cls, v: str) -> str:
        # 0d could already be over: a step reached after the owner's working day would be late
        # as it starts.
        if Offset.parse(v).days < 1:
            raise ValueError(f"'{v}' is not a due offset of at least a day after the step (2bd)")
        return v

    @field_validator("outcomes")
    @classmethod
    def _outcomes(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("an outcome is named twice")
        if taken := {OVERDUE, UNASSIGNED} & set(v):
            raise ValueError(f"{', '.join(sorted(taken))}: the run's own outcomes, not an owner's")
        return v

    @model_validator(mode="after")
    def _one_owner(self) -> TaskStep:
        if (self.role is None) == (self.owner_attribute is None):
            raise ValueError("a task needs exactly one of 'role' or 'owner_attribute'")
        return self

    @property
    def offset(self) -> Offset:
        return Offset.parse(self.due)

    def successors(self) -> list[str]:
        return super().successors() + list(self.on.values())

    def unknown_outcomes(self) -> list[str]:
        """Keys of `on` that no owner and no run can give."""
        return [k for k in self.on if k not in (*self.outcomes, OVERDUE, UNASSIGNED)]

    def owner(self) -> str:
        """Who does it, in words."""
        if self.role is not None:
            return f"role '{self.role}'"
        return f"the team member in attribute '{self.owner_attribute}'"

    def describe(self) -> str:
        return f"waiting for task '{self.id}' ({self.owner()}, due {self.due})"


class GotoStep(_Step):
    kind: Literal["goto"]
    target: StepId

    def successors(self) -> list[str]:
        return [self.target]


class EndStep(_Step):
    kind: Literal["end"]
    tag: str | None = None

    def describe(self) -> str:
        return f"ended{f' with tag {self.tag}' if self.tag else ''}"


Step = Annotated[
    SendStep
    | WaitStep
    | WaitForStep
    | BranchStep
    | SplitStep
    | TaskStep
    | TagStep
    | AudienceStep
    | GotoStep
    | EndStep,
    Field(discriminator="kind"),
]
STEP_KINDS = (
    "send", "wait", "wait_for", "branch", "split", "task", "tag", "audience", "goto", "end"
)  # fmt: skip
# Kinds that pass time: every loop must contain one, or it would spin without end. A task step
# passes none when it goes on `unassigned` (JourneySpec.instant_graph).
WAITING_KINDS = ("wait", "wait_for", "task")


class Goal(_Model):
    """What a journey is for: an event (a purchase) within a time of entering. Each entry
    converts at most once; reports attribute it to the journey and to the A/B variants the
    entry was drawn into."""

    event: str = Field(min_length=1, max_length=64)
    within: str

    @field_validator("within")
    @classmethod
    def _within(cls, v: str) -> str:
        parse_duration(v)
        return v

    def window(self) -> timedelta:
        return parse_duration(self.within)


class JourneySpec(_Model):
    """One journey as authored: validated in full before any run starts."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    version: int = Field(ge=1)
    description: str
    # The event that makes a contact enter (contact_added, app_installed, purchase) or "manual".
    trigger: str
    # Whether the trigger starts it. The library keeps proven alternatives (five ways to run an
    # NPS survey); a team switches on the ones it uses. Any journey can be started by hand.
    active: bool = True
    # never: a contact goes through once; after_exit: again once the previous run has ended.
    re_entry: Literal["never", "after_exit"] = "never"
    # Any of these events ends the run at once, wherever it is.
    exit_events: list[str] = []
    # Custom event kinds backend services send that steps wait for (webinar_attended, say),
    # beyond those the system produces (journeys.events), so a misspelt event can be caught.
    events: list[str] = []
    # Values the steps refer to as ${name} (waits "to be determined" by the seed, for example);
    # substituted when the file is loaded, kept here so a run shows what it was started with.
    params: dict[str, str] = {}
    # Hard bound on steps one contact may execute in this journey (loops included).
    max_steps: int = Field(1000, ge=1, le=100_000)
    # A journey that loops for months continues-as-new after this many steps (fewer than the
    # run's own `steps_per_run` when it says so), so one run's history stays short.
    steps_per_run: int | None = Field(None, ge=1)
    goal: Goal | None = None
    steps: list[Step] = Field(min_length=1)

    @property
    def first_step(self) -> str:
        return self.steps[0].id

    @cached_property
    def positions(self) -> dict[str, int]:
        """Where each step id stands in `steps` (the first, should an id repeat): a journey of
        thousands of steps is looked up, not searched."""
        found: dict[str, int] = {}
        for index, s in enumerate(self.steps):
            found.setdefault(s.id, index)
        return found

    def step(self, step_id: str) -> Step:
        return self.steps[self.positions[step_id]]

    def next_of(self, step: Step, chosen: str | None) -> str | None:
        """The step after `step`: the one it chose, else its `next`, else the one listed after."""
        if chosen is not None:
            return chosen
        if isinstance(step, _Sequential) and step.next is not None:
            return step.next
        index = self.positions[step.id]
        return self.steps[index + 1].id if index + 1 < len(self.steps) else None

    def events_used(self) -> set[str]:
        """The event kinds any step or exit reacts to (a send's refusal is `failed`)."""
        kinds = {s.event for s in self.steps if isinstance(s, WaitForStep)}
        if any(
            "nps:" in c.when for s in self.steps if isinstance(s, BranchStep) for c in s.conditions
        ):
            kinds.add("nps_answered")
        return kinds | set(self.exit_events) | {"failed"}

    def graph(self) -> dict[str, list[str]]:
        """Every step's successors, implicit `next` resolved."""
        out: dict[str, list[str]] = {}
        for index, s in enumerate(self.steps):
            succ = list(s.successors())
            if isinstance(s, _Sequential) and s.next is None and index + 1 < len(self.steps):
                succ.insert(0, self.steps[index + 1].id)
            out[s.id] = succ
        return out

    def instant_graph(self) -> dict[str, list[str]]:
        """The successors each step reaches with no time passing: every one of a step that
        takes none, none of a wait, and of a task step the one `unassigned` leads to (nobody
        is given the task, so nothing is waited for)."""
        graph = self.graph()
        out: dict[str, list[str]] = {}
        for s in self.steps:
            if isinstance(s, TaskStep):
                after = s.on.get(UNASSIGNED) or self.next_of(s, None)
                out[s.id] = [after] if after is not None else []
            else:
                out[s.id] = [] if s.kind in WAITING_KINDS else graph[s.id]
        return out
