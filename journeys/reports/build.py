"""A report from the store's counts (journeys.store.reports), as pure functions: what each
figure adds up is decided here, once, for the overview, a journey's page and the command line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from journeys.reports.models import (
    ABTest,
    ChannelFigures,
    JourneyFigures,
    JourneyReport,
    NpsFigures,
    Period,
    StepFigures,
    VariantFigures,
)
from journeys.reports.stats import CONFIDENCE, compare, nps_figures, rate
from journeys.spec import JourneySpec, SendStep


@dataclass
class EntryCounts:
    """Entries of one journey that started in the period, by where they stand."""

    entered: int = 0
    active: int = 0
    finished: int = 0
    exited_early: int = 0


@dataclass
class ActivityCounts:
    """What the sends of one journey (or one step) did in the period: ledger rows by channel
    and status, and reported events by kind and whether a machine caused them."""

    sends: dict[tuple[str, str], int] = field(default_factory=dict)
    events: dict[tuple[str, bool], int] = field(default_factory=dict)


def summed(parts: Iterable[ActivityCounts]) -> ActivityCounts:
    """A journey's activity from its steps'."""
    total = ActivityCounts()
    for part in parts:
        for place, n in part.sends.items():
            total.sends[place] = total.sends.get(place, 0) + n
        for kind, n in part.events.items():
            total.events[kind] = total.events.get(kind, 0) + n
    return total


@dataclass
class VariantCounts:
    """Entries of the period drawn into one A/B variant, and how many of them did what (at any
    time after the draw)."""

    entered: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0


@dataclass
class StepCounts:
    entered: int = 0
    visits: int = 0
    next: dict[str, int] = field(default_factory=dict)


# Delivery reports that say a message did not arrive (Twilio's undelivered and failed).
NOT_DELIVERED = ("undelivered", "failed")


def journey_figures(
    journey_id: str,
    entries: EntryCounts | None,
    activity: ActivityCounts | None,
    conversions: int | None,
) -> JourneyFigures:
    """One journey's line of the overview; `conversions` None when it has no goal."""
    entries = entries or EntryCounts()
    activity = activity or ActivityCounts()
    sends: dict[str, ChannelFigures] = {}
    for (channel, status), n in sorted(activity.sends.items()):
        figures = sends.setdefault(channel, ChannelFigures())
        if status == "sent":
            figures.sent += n
        elif status == "failed":
            figures.failed += n
    events = activity.events
    return JourneyFigures(
        journey_id=journey_id,
        entered=entries.entered,
        active=entries.active,
        finished=entries.finished,
        exited_early=entries.exited_early,
        conversions=conversions,
        sends=sends,
        delivered=_events(events, "delivered"),
        human_opens=events.get(("opened", False), 0),
        machine_opens=events.get(("opened", True), 0),
        clicks=events.get(("clicked", False), 0),
        unsubscribes=_events(events, "unsubscribed"),
        failures=sum(f.failed for f in sends.values())
        + sum(_events(events, kind) for kind in NOT_DELIVERED),
    )


def _events(events: Mapping[tuple[str, bool], int], kind: str) -> int:
    return events.get((kind, False), 0) + events.get((kind, True), 0)


def step_figures(
    spec: JourneySpec,
    steps: Mapping[str, StepCounts],
    activity: Mapping[str | None, ActivityCounts],
) -> list[StepFigures]:
    """Every step of the journey in the file's order, with the entries that reached it, its
    visits and where they went next; a send step's sent messages, human opens and clicks."""
    found = []
    for step in spec.steps:
        counts = steps.get(step.id, StepCounts())
        figures = StepFigures(
            step_id=step.id,
            kind=step.kind,
            entered=counts.entered,
            visits=counts.visits,
            next=dict(sorted(counts.next.items())),
        )
        if isinstance(step, SendStep):
            done = activity.get(step.id, ActivityCounts())
            figures.sent = sum(n for (_, status), n in done.sends.items() if status == "sent")
            figures.opens = done.events.get(("opened", False), 0)
            figures.clicks = done.events.get(("clicked", False), 0)
        found.append(figures)
    return found


def ab_steps(spec: JourneySpec) -> list[str]:
    """The send steps with A/B variants."""
    return [s.id for s in spec.steps if isinstance(s, SendStep) and s.variants]


def ab_tests(
    spec: JourneySpec,
    variants: Mapping[tuple[str, str], VariantCounts],
    sent: Mapping[tuple[str, str], int],
) -> list[ABTest]:
    """Each send step with variants: every variant's figures and each against the first on
    conversions (the journey's goal) or, without a goal, clicks."""
    metric = "conversion" if spec.goal else "click"
    tests = []
    for step in spec.steps:
        if not isinstance(step, SendStep) or not step.variants:
            continue
        figures, arms = [], []
        for variant in step.variants:
            counts = variants.get((step.id, variant.name), VariantCounts())
            hits = counts.converted if spec.goal else counts.clicked
            arms.append((variant.name, hits, counts.entered))
            figures.append(
                VariantFigures(
                    name=variant.name,
                    entered=counts.entered,
                    sent=sent.get((step.id, variant.name), 0),
                    opens=counts.opened,
                    clicks=counts.clicked,
                    conversions=counts.converted if spec.goal else None,
                    rate=rate(hits, counts.entered),
                )
            )
        comparisons, winner = compare(arms, CONFIDENCE)
        tests.append(
            ABTest(
                step_id=step.id,
                metric=metric,
                confidence=CONFIDENCE,
                variants=figures,
                comparisons=comparisons,
                winner=winner,
            )
        )
    return tests


def journey_report(
    spec: JourneySpec,
    period: Period,
    figures: JourneyFigures,
    steps: list[StepFigures],
    tests: list[ABTest],
    nps: tuple[Sequence[tuple[datetime, int]], bool],
) -> JourneyReport:
    """The whole report of one journey (`waiting` unknown: see workflows.runs.with_waiting)."""
    answers, asks_nps = nps
    nps_part: NpsFigures | None = (
        nps_figures(answers) if asks_nps or "nps_answered" in spec.events_used() else None
    )
    return JourneyReport(
        journey_id=spec.id,
        version=spec.version,
        description=spec.description,
        period=period,
        figures=figures,
        goal=spec.goal,
        steps=steps,
        ab_tests=tests,
        nps=nps_part,
        live=False,
    )
