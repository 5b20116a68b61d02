"""When things happen to a task, on its owner's clock: when it is due, when its owner is reminded,
and when a late task is followed up. Pure functions: the plan workflow asks them with
`workflow.now()` and sleeps until the moment they name.

A task is due at the end of its owner's working hours on its due date (on their last working
day before it, when the due date is one of their days off). A reminder of whole days
(48h, 24h) comes that many of the owner's working days earlier at the same time of day, so a
task due on Monday is reminded on Thursday and Friday, not over the weekend; any other reminder
that falls outside working hours comes at the last working moment before it: a heads-up should
come early, never in the owner's night. A late task is followed up at the start of each working
day after it was due.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from journeys.plans.calendar import WORKWEEK

# How far a search for a working moment looks (a person with no working day at all is refused
# when they are stored; this only bounds the loop).
_SEARCH_DAYS = 366


class WorkingTime(BaseModel):
    """A person's clock: their time zone, working days (Monday 0) and working hours."""

    model_config = ConfigDict(frozen=True)

    time_zone: str = "UTC"
    working_days: frozenset[int] = Field(WORKWEEK, min_length=1)
    starts: time = time(9, 0)
    ends: time = time(17, 0)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    @field_validator("working_days")
    @classmethod
    def _days(cls, v: frozenset[int]) -> frozenset[int]:
        if not v <= set(range(7)):
            raise ValueError("working days are weekday numbers, Monday 0 to Sunday 6")
        return v

    def works_on(self, day: date, days_off: Container[date]) -> bool:
        return day.weekday() in self.working_days and day not in days_off

    def at(self, day: date, moment: time) -> datetime:
        """`moment` on `day` on this person's wall clock, in UTC."""
        return datetime.combine(day, moment, ZoneInfo(self.time_zone)).astimezone(UTC)

    def local_date(self, when: datetime) -> date:
        return when.astimezone(ZoneInfo(self.time_zone)).date()


def due_at(due: date, person: WorkingTime, days_off: Container[date]) -> datetime:
    """When a task due on `due` is due: the end of its owner's working hours that day, or of
    their last working day before it when they do not work that day. Thirty calendar days
    before a publish date can be a Saturday or a public holiday; nobody hands work in then, and
    a due date a team lead reads must be one somebody is at work on."""
    day = due
    for _ in range(_SEARCH_DAYS):
        if person.works_on(day, days_off):
            return person.at(day, person.ends)
        day -= timedelta(days=1)
    raise ValueError("no working day in a year before the due date")


def last_working_moment(
    nominal: datetime, person: WorkingTime, days_off: Container[date]
) -> datetime:
    """`nominal` if it falls in the person's working hours, else the end of their last working
    hours before it."""
    day = person.local_date(nominal)
    for _ in range(_SEARCH_DAYS):
        if person.works_on(day, days_off):
            starts, ends = person.at(day, person.starts), person.at(day, person.ends)
            if starts <= nominal <= ends:
                return nominal
            if ends < nominal:
                return ends
        day -= timedelta(days=1)
    raise ValueError("no working day in a year before the reminder")


def reminder_at(
    due: datetime, before: timedelta, person: WorkingTime, days_off: Container[date]
) -> datetime:
    """When the owner of a task due at `due` is reminded `before` it (see the module's rules)."""
    days, rest = divmod(before, timedelta(days=1))
    if rest or not days:
        return last_working_moment(due - before, person, days_off)
    local = due.astimezone(ZoneInfo(person.time_zone))
    day = local.date()
    for _ in range(_SEARCH_DAYS):
        if not days:
            return last_working_moment(person.at(day, local.time()), person, days_off)
        day -= timedelta(days=1)
        if person.works_on(day, days_off):
            days -= 1
    raise ValueError("no working day in a year before the reminder")


def reminders(
    due: datetime, before: list[timedelta], person: WorkingTime, days_off: Container[date]
) -> list[datetime]:
    """Every reminder of a task due at `due`, earliest first, one per moment."""
    return sorted({reminder_at(due, b, person, days_off) for b in before})


def follow_ups(
    due: datetime, person: WorkingTime, days_off: Container[date], count: int
) -> list[datetime]:
    """The first `count` follow-ups of a task late since `due`: the start of each of the owner's
    working days after it."""
    found: list[datetime] = []
    day = person.local_date(due)
    for _ in range(_SEARCH_DAYS):
        if len(found) == count:
            break
        day += timedelta(days=1)
        if person.works_on(day, days_off):
            found.append(person.at(day, person.starts))
    return found
