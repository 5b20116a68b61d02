"""The journey reports' statements: each function answers one question for a period with a
few GROUP BY statements over a connection; `journeys.reports.build` turns the counts into the
report's figures. Times are compared in UTC (journeys.store.rows.in_utc)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, distinct, exists, false, func, select
from sqlalchemy.sql import ColumnElement

from journeys.reports.build import ActivityCounts, EntryCounts, StepCounts, VariantCounts
from journeys.reports.models import Period
from journeys.store.rows import in_utc
from journeys.store.schema import deliveries, events, journey_entries, journey_visits, nps_answers

# The events about a tracked send a report counts (opens, clicks, unsubscribes, SMS delivery
# reports); `events.journey_id` is set on them only.
REPORTED_EVENTS = ("opened", "clicked", "unsubscribed", "delivered", "undelivered", "failed")


def _within(column: Any, period: Period) -> ColumnElement[bool]:
    until = column < in_utc(period.until)
    return until if period.since is None else and_(column >= in_utc(period.since), until)


def _machine() -> ColumnElement[bool]:
    """Whether an open or click was a machine's (a privacy proxy, a scanner): `data.machine`."""
    return func.coalesce(events.c.data["machine"].as_boolean(), false())


def entry_counts(
    conn: Connection, journey_ids: Collection[str], period: Period
) -> dict[str, EntryCounts]:
    """Per journey, its entries of the period by where they stand (journeys.models.EndReason:
    `end` finished, any other reason left early)."""
    e = journey_entries.c
    ended_early = and_(e.end_reason.is_not(None), e.end_reason != "end")
    query = (
        select(
            e.journey_id,
            func.count(),
            func.count(case((e.ended_at.is_(None), 1))),
            func.count(case((e.end_reason == "end", 1))),
            func.count(case((ended_early, 1))),
        )
        .where(e.journey_id.in_(journey_ids), _within(e.entered_at, period))
        .group_by(e.journey_id)
    )
    return {row[0]: EntryCounts(*row[1:]) for row in conn.execute(query)}


def _converted(goal_event: str) -> ColumnElement[bool]:
    """An entry (a row of journey_entries) whose contact had `goal_event` within its window."""
    e, ev = journey_entries.c, events.c
    return exists().where(
        ev.kind == goal_event,
        ev.contact_id == e.contact_id,
        ev.occurred_at >= e.entered_at,
        ev.occurred_at <= e.goal_until,
    )


def conversions(conn: Connection, goals: Mapping[str, str], period: Period) -> dict[str, int]:
    """Per journey (`goals`: journey -> its goal event), the entries of the period that
    converted, each once. One statement per goal event."""
    e = journey_entries.c
    by_event: dict[str, list[str]] = {}
    for journey_id, goal_event in goals.items():
        by_event.setdefault(goal_event, []).append(journey_id)
    found = dict.fromkeys(goals, 0)
    for goal_event, journey_ids in by_event.items():
        query = (
            select(e.journey_id, func.count())
            .where(
                e.journey_id.in_(journey_ids),
                _within(e.entered_at, period),
                _converted(goal_event),
            )
            .group_by(e.journey_id)
        )
        found.update({journey_id: n for journey_id, n in conn.execute(query)})
    return found


def activity_counts(
    conn: Connection, journey_ids: Collection[str], period: Period, by_step: bool = False
) -> dict[tuple[str, str | None], ActivityCounts]:
    """Per journey (and per step, when `by_step`): its ledger rows created in the period by
    channel and status, and the events about its sends that happened in the period by kind and
    machine."""
    d, ev = deliveries.c, events.c
    send_keys = [d.journey_id, *([d.step_id] if by_step else []), d.channel, d.status]
    sends = (
        select(*send_keys, func.count())
        .where(d.journey_id.in_(journey_ids), _within(d.created_at, period))
        .group_by(*send_keys)
    )
    machine = _machine().label("machine")
    event_keys = [ev.journey_id, *([ev.step_id] if by_step else []), ev.kind]
    reported = (
        select(*event_keys, machine, func.count())
        .where(
            ev.journey_id.in_(journey_ids),
            ev.kind.in_(REPORTED_EVENTS),
            _within(ev.occurred_at, period),
        )
        .group_by(*event_keys, machine)
    )
    found: dict[tuple[str, str | None], ActivityCounts] = {}
    for row in conn.execute(sends):
        place = (row[0], row[1] if by_step else None)
        channel, status, n = row[-3:]
        found.setdefault(place, ActivityCounts()).sends[(channel, status)] = n
    for row in conn.execute(reported):
        place = (row[0], row[1] if by_step else None)
        kind, is_machine, n = row[-3:]
        counts = found.setdefault(place, ActivityCounts()).events
        counts[(kind, bool(is_machine))] = counts.get((kind, bool(is_machine)), 0) + n
    return found


def step_counts(conn: Connection, journey_id: str, period: Period) -> dict[str, StepCounts]:
    """Per step, the visits made in the period, the entries that made them (once each), and the
    visits by the step visited next. By the visits' own time, as sends and events are: joined
    to their entries for the entries' time, the two statements took 1.3 s for 260,000 visits on
    SQLite (bench/dashboard.py), from the covering index alone about 0.5 s."""
    v = journey_visits.c
    of_period = (v.journey_id == journey_id, _within(v.entered_at, period))
    by_step = (
        select(v.step_id, func.count(distinct(v.entry_id)), func.count())
        .where(*of_period)
        .group_by(v.step_id)
    )
    by_next = (
        select(v.step_id, v.next_step, func.count())
        .where(*of_period, v.next_step.is_not(None))
        .group_by(v.step_id, v.next_step)
    )
    found: dict[str, StepCounts] = {}
    for step_id, entered, visits in conn.execute(by_step):
        found[step_id] = StepCounts(entered=entered, visits=visits)
    for step_id, next_step, n in conn.execute(by_next):
        found.setdefault(step_id, StepCounts()).next[next_step] = n
    return found


def variant_counts(
    conn: Connection,
    journey_id: str,
    ab_steps: Collection[str],
    goal_event: str | None,
    period: Period,
) -> dict[tuple[str, str], VariantCounts]:
    """Per (send step, variant) of `ab_steps`, the entries of the period drawn into it, and of
    them those whose contact opened (a person), clicked (a person) that step's message after
    the draw, and converted (the goal, when the journey has one)."""
    if not ab_steps:
        return {}
    v, e, ev = journey_visits.c, journey_entries.c, events.c

    def did(kind: str) -> ColumnElement[bool]:
        return exists().where(
            ev.kind == kind,
            ev.contact_id == e.contact_id,
            ev.occurred_at >= v.entered_at,
            ev.journey_id == journey_id,
            ev.step_id == v.step_id,
            ~_machine(),
        )

    def entries_that(condition: ColumnElement[bool]) -> Any:
        return func.count(distinct(case((condition, v.entry_id))))

    query = (
        select(
            v.step_id,
            v.variant,
            func.count(distinct(v.entry_id)),
            entries_that(did("opened")),
            entries_that(did("clicked")),
            entries_that(_converted(goal_event)) if goal_event else func.count(None),
        )
        .join_from(journey_visits, journey_entries, e.entry_id == v.entry_id)
        .where(
            v.journey_id == journey_id,
            # By step, on journey_visits_step: only the A/B steps' visits are read.
            v.step_id.in_(ab_steps),
            v.variant.is_not(None),
            e.journey_id == journey_id,
            _within(e.entered_at, period),
        )
        .group_by(v.step_id, v.variant)
    )
    return {(row[0], row[1]): VariantCounts(*row[2:]) for row in conn.execute(query)}


def variant_sends(conn: Connection, journey_id: str, period: Period) -> dict[tuple[str, str], int]:
    """Per (send step, variant), the messages sent in the period."""
    d = deliveries.c
    query = (
        select(d.step_id, d.variant, func.count())
        .where(
            d.journey_id == journey_id,
            d.variant.is_not(None),
            d.status == "sent",
            _within(d.created_at, period),
        )
        .group_by(d.step_id, d.variant)
    )
    return {(step_id, variant): n for step_id, variant, n in conn.execute(query)}


def nps_answers_of(
    conn: Connection, journey_id: str, period: Period
) -> tuple[list[tuple[datetime, int]], bool]:
    """The journey's NPS answers of the period (when, in UTC, and the score), and whether it
    has any answer at all."""
    n = nps_answers.c
    query = select(n.answered_at, n.score).where(
        n.journey_id == journey_id, _within(n.answered_at, period)
    )
    answers = [(in_utc(at), score) for at, score in conn.execute(query)]
    ever = (
        bool(answers)
        or conn.execute(select(exists().where(n.journey_id == journey_id))).scalar_one()
    )
    return answers, bool(ever)
