"""pydantic models that cross a boundary: workflow input and state, signals, queries, activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from journeys.channels import Channel
from journeys.spec import JourneySpec

# The ApplicationError type of an activity that found the contact's stored data unusable (text
# no JSON can carry, stored before the gateway refused it): retrying cannot help, the run ends.
CONTACT_UNREADABLE = "ContactUnreadable"


class ContactFacts(BaseModel):
    """What a branch may ask about a contact, loaded fresh when the branch is evaluated."""

    contact_id: str
    has_email: bool = False
    has_phone: bool = False
    time_zone: str = "UTC"
    locale: str = "en"
    consent: dict[str, bool] = {}
    in_mobile_app: bool = False
    web_push: bool = False
    tags: list[str] = []
    audiences: list[str] = []
    attributes: dict[str, Any] = {}
    # The lead grade (A-D) and engagement score (journeys.leads); None before the first grading.
    grade: str | None = None
    score: float | None = None
    # Behaviour counts asked for: events of a kind within a window, by `<kind>/<days>`.
    counts: dict[str, int] = {}


class FactsRequest(BaseModel):
    """The facts a branch's conditions read (`conditions.facts_needed`): only these leave the
    store, as the activity's result is kept in the run's history."""

    contact_id: str
    # Names of ContactFacts' boolean fields (has_email, web_push, ...).
    flags: list[str] = []
    consent: list[str] = []
    tags: list[str] = []
    audiences: list[str] = []
    attributes: list[str] = []
    # The lead grade and score.
    grade: bool = False
    # Behaviour counts, `<kind>/<days>`: events of that kind in the days up to `at`.
    counts: list[str] = []
    # The run's clock, where count windows end; None (requests from before counts): now.
    at: datetime | None = None

    def keep(self, facts: ContactFacts) -> ContactFacts:
        """`facts` with only what was asked for; the rest keeps ContactFacts' defaults."""
        return ContactFacts(
            contact_id=facts.contact_id,
            **{flag: getattr(facts, flag) for flag in self.flags},
            consent={k: v for k, v in facts.consent.items() if k in self.consent},
            tags=[t for t in facts.tags if t in self.tags],
            audiences=[a for a in facts.audiences if a in self.audiences],
            attributes={k: v for k, v in facts.attributes.items() if k in self.attributes},
            **({"grade": facts.grade, "score": facts.score} if self.grade else {}),
            counts={k: v for k, v in facts.counts.items() if k in self.counts},
        )


class JourneyEvent(BaseModel):
    """Something a contact did (or that happened to a send), handed to a run as a signal."""

    kind: str
    # The send step the event is about (an open of the 'intro' email), if any.
    step: str | None = None
    occurred_at: datetime = Field(
        description="When it happened, as its reporter says (an API caller, the gateway when a "
        "request arrived; for 'failed', when the run learned of the refusal)"
    )
    data: dict[str, Any] = {}
    # Given by the gateway: an event handed over twice (again after Temporal's answer to the
    # first attempt was lost) reaches a run once.
    id: str | None = None


class Visit(BaseModel):
    step: str
    at: datetime = Field(description="When the run entered the step")
    # What happened there, in a few words: "sent", "opened", "timed out", "variant b", ...
    outcome: str | None = None
    left_at: datetime | None = Field(
        None,
        description="When the run moved on, the step's outcome known (a send answered, a wait "
        "over, the awaited event arrived); null while the run is at the step",
    )


class RunState(BaseModel):
    """Everything a run has done so far; carried across continue-as-new."""

    # Distinguishes separate entries of the same contact (re-entry) in ledger keys.
    entry_id: str
    current_step: str | None
    steps_executed: int = 0
    visits: list[Visit] = []
    events: list[JourneyEvent] = []
    # Ids of the latest events received (JourneyEvent.id), so one handed over twice counts once,
    # even after the first copy was used by a wait and left behind at continue-as-new.
    seen_event_ids: list[str] = []
    # How many events a wait_for has already used: each event satisfies at most one wait.
    consumed: list[int] = []
    # Times each step has been entered, so a send inside a loop gets a fresh idempotency key.
    entered: dict[str, int] = {}
    # The A/B variant drawn at each send step with variants.
    variants: dict[str, str] = {}
    # How many of `visits` the store has in full (journey reports): the next record starts there.
    recorded: int = 0
    # When the event that ended the last wait_for happened, until the next send or wait: that
    # send's latency after the event (operators' metrics).
    woken_at: datetime | None = None


class JourneyInput(BaseModel):
    spec: JourneySpec
    contact_id: str
    # Divides every duration (demos, previews); 1 is real time.
    speed: float = Field(1.0, gt=0)
    # Continue-as-new after this many steps in one run, or earlier when Temporal suggests it.
    steps_per_run: int = Field(200, ge=1)
    state: RunState | None = None


class JourneyStatus(BaseModel):
    journey_id: str
    journey_version: int
    contact_id: str
    current_step: str | None
    details: str
    finished: bool
    visits: list[Visit]
    events: list[JourneyEvent]


# Why a run ended: its end step, an exit event, a contact it could not read, or the contact merged
# into another by data hygiene (journeys.events.CONTACT_MERGED).
EndReason = Literal["end", "exit_event", "contact_unreadable", "contact_merged"]


class JourneyResult(BaseModel):
    journey_id: str
    contact_id: str
    ended_at_step: str | None
    reason: EndReason
    visits: list[Visit]


class WindowCheck(BaseModel):
    """May a send leave at `now` (the run's clock), given quiet hours and the frequency cap?"""

    now: datetime
    # What a send over the cap does: wait for room under it, or not go at all.
    when_capped: Literal["wait", "skip"] = "wait"


class SendRequest(BaseModel):
    """One message to one contact; `key` makes the send idempotent across retries."""

    key: str
    workflow_id: str
    journey_id: str
    step_id: str
    contact_id: str
    channel: Channel
    template: str
    variant: str | None = None
    # The send step's `transactional`: it goes to a contact whose marketing is stopped (sunset).
    transactional: bool = False
    # When the event this send answers happened (an open that ended a wait_for), if it directly
    # follows one: the worker measures the time from the event to the send.
    after_event_at: datetime | None = None
    # Quiet hours and the frequency cap, checked by the send itself before it sends; None: no
    # check (transactional, or a run from before that asks the send_window activity first).
    window: WindowCheck | None = None


class SendResult(BaseModel):
    # sent: the provider accepted it now; duplicate: an earlier attempt already did;
    # failed: refused for good (invalid number, no address, no consent): the journey may branch;
    # held: not sent, ask again at `until` (quiet hours, the cap); skipped: capped, not sent.
    status: Literal["sent", "duplicate", "failed", "held", "skipped"]
    provider_id: str | None = None
    reason: str | None = None
    until: datetime | None = None


class TagChange(BaseModel):
    contact_id: str
    add: list[str] = []
    remove: list[str] = []


class AudienceChange(BaseModel):
    contact_id: str
    audience: str
    action: Literal["add", "remove"]


class LocalTimeRequest(BaseModel):
    contact_id: str
    at: str
    now: datetime


class SendWindowRequest(WindowCheck):
    """May `send` leave at `now`? Asked by runs from before sends checked it themselves."""

    send: SendRequest


class SendWindow(BaseModel):
    """`now`: send; `wait`: ask again at `until`; `skip`: capped, and the step says skip."""

    action: Literal["now", "wait", "skip"]
    until: datetime | None = None
    # Why it is held back or skipped: "quiet hours (until 08:00 Europe/Warsaw)".
    reason: str | None = None


class VisitRecord(BaseModel):
    """One step an entry visited, as the journey reports keep it."""

    n: int = Field(ge=0, description="Its place in the entry's path, from 0")
    step: str
    entered_at: datetime
    left_at: datetime | None = None
    outcome: str | None = None
    # The step visited after it (how a branch split); None while unknown or at the last one.
    next_step: str | None = None
    # The A/B variant drawn at a send step with variants.
    variant: str | None = None


class PathRecord(BaseModel):
    """What a run tells the store of its entry: written at each step where it waits and when it
    ends (ids and clocks only). Visits are upserted by place, so a record sent again changes
    nothing and a later one completes the visit an earlier one left open."""

    entry_id: str
    workflow_id: str
    journey_id: str
    version: int
    contact_id: str
    entered_at: datetime
    # The end of the window in which the journey's goal event counts as this entry's conversion.
    goal_until: datetime | None = None
    visits: list[VisitRecord] = []
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
