"""The shape of a journey report: what `journeys report --json` prints and the dashboard shows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from journeys.spec import Goal


class Period(BaseModel):
    """What a report counts: entries, sends and events from `since` (None: from the start)
    until `until`."""

    since: datetime | None = None
    until: datetime


class ChannelFigures(BaseModel):
    sent: int = 0
    failed: int = 0


class JourneyFigures(BaseModel):
    """One journey over a period: a line of the overview."""

    journey_id: str
    entered: int = Field(0, description="Entries that started in the period")
    active: int = Field(0, description="Of those, in the journey now (the store's record)")
    finished: int = Field(0, description="Of those, reached an end step")
    exited_early: int = Field(
        0, description="Of those, left before the end: an exit event, merged away, unreadable"
    )
    conversions: int | None = Field(
        None,
        description="Of those, the entries whose contact had the goal event between entering and "
        "the end of the goal's window, each entry once; None: the journey has no goal",
    )
    sends: dict[str, ChannelFigures] = Field(
        {},
        description="Ledger rows created in the period, by channel: sent, and failed (refused for "
        "good); capped and undecided sends are in neither",
    )
    delivered: int = Field(0, description="Delivery reports from providers (SMS) in the period")
    human_opens: int = Field(0, description="Opens by people in the period (each open)")
    machine_opens: int = Field(
        0, description="Opens fetched by privacy proxies and scanners in the period"
    )
    clicks: int = Field(0, description="Clicks by people in the period (scanners' left out)")
    unsubscribes: int = Field(0, description="Unsubscribes from its messages in the period")
    failures: int = Field(
        0,
        description="Sends failed (refused for good) and undelivered or failed delivery reports, "
        "in the period",
    )


class StepFigures(BaseModel):
    """One step of one journey: how many came through it and where they went."""

    step_id: str
    kind: str
    entered: int = Field(0, description="Entries that visited the step in the period (once each)")
    visits: int = Field(0, description="Times it was entered in the period (loops count each)")
    waiting: int | None = Field(
        None, description="Runs waiting there now, from Temporal; None: not asked or no wait"
    )
    next: dict[str, int] = Field(
        {}, description="Of those visits, how many went on to each next step (a branch's split)"
    )
    sent: int | None = Field(None, description="A send step's messages sent in the period")
    opens: int | None = Field(None, description="A send step's opens by people in the period")
    clicks: int | None = Field(None, description="A send step's clicks by people in the period")


class VariantFigures(BaseModel):
    name: str
    entered: int = Field(0, description="Entries of the period drawn into the variant")
    sent: int = Field(0, description="Its messages sent in the period")
    opens: int = Field(
        0,
        description="Of its entries, those whose contact opened the message (a person) after "
        "the draw",
    )
    clicks: int = Field(
        0, description="Of its entries, those whose contact clicked in it (a person) after the draw"
    )
    conversions: int | None = Field(
        None, description="Of its entries, those that converted; None: the journey has no goal"
    )
    rate: float | None = Field(
        None, description="The tested metric (conversions, else clicks) over `entered`"
    )


class Comparison(BaseModel):
    """One variant against the first (the control) on the test's metric."""

    variant: str
    against: str
    difference: float = Field(description="Its rate minus the control's")
    z: float | None = None
    p_value: float | None = Field(None, description="Two-sided; None: too few entries to test")
    significant: bool = False


class ABTest(BaseModel):
    step_id: str
    metric: Literal["conversion", "click"] = Field(
        description="The goal when the journey has one, else clicks"
    )
    test: Literal["two-proportion z-test"] = "two-proportion z-test"
    confidence: float = Field(0.95, description="A winner needs p below 1 - confidence")
    variants: list[VariantFigures] = []
    comparisons: list[Comparison] = []
    winner: str | None = Field(None, description="None until a difference is significant")


class NpsWeek(BaseModel):
    week_of: date = Field(description="The Monday the week starts on (UTC)")
    answers: int
    score: float


class NpsFigures(BaseModel):
    answers: int = Field(
        0, description="Surveys first answered in the period (one changed since: its latest score)"
    )
    promoters: int = Field(0, description="Scores 9 and 10")
    passives: int = Field(0, description="Scores 7 and 8")
    detractors: int = Field(0, description="Scores 0 to 6")
    score: float | None = Field(None, description="% promoters - % detractors; None: no answers")
    distribution: list[int] = Field([0] * 11, description="Answers by score, 0 to 10")
    trend: list[NpsWeek] = []


class JourneyReport(BaseModel):
    """Everything about one journey over a period."""

    journey_id: str
    version: int
    description: str
    period: Period
    figures: JourneyFigures
    goal: Goal | None = None
    steps: list[StepFigures] = []
    ab_tests: list[ABTest] = []
    nps: NpsFigures | None = Field(
        None,
        description="None: the journey neither waits for nps_answered nor has answers recorded",
    )
    live: bool = Field(False, description="Whether `waiting` came from Temporal just now")


class Overview(BaseModel):
    """Every journey in the library over a period."""

    period: Period
    journeys: list[JourneyFigures]
