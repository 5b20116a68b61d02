"""Due dates counted from a plan's target date: in calendar days (`-30d`), or in business days
(`-5bd`) counted on the owner's working days, skipping the plan's public holidays."""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays

_OFFSET = re.compile(r"^([+-]?)(\d{1,4})(d|bd)$")
# Monday to Friday (date.weekday()), unless a person says otherwise.
WORKWEEK = frozenset(range(5))


@dataclass(frozen=True)
class Offset:
    """How far a due date is from the target date: negative is before it."""

    days: int
    business: bool

    @classmethod
    def parse(cls, text: str) -> Offset:
        match = _OFFSET.match(text.strip())
        if not match:
            raise ValueError(
                f"'{text}' is not a due offset: days before the target date as -30d, or "
                "business days as -5bd (0d is the target date itself)"
            )
        sign, count, unit = match.groups()
        return cls(days=-int(count) if sign == "-" else int(count), business=unit == "bd")

    def __str__(self) -> str:
        return f"{self.days}{'bd' if self.business else 'd'}"


def due_date(
    target: date, offset: Offset, working_days: Container[int], days_off: Container[date]
) -> date:
    """The date `offset` from `target`. Business days count only `working_days` (weekday
    numbers, Monday 0) that are not in `days_off`; the target itself counts as day 0."""
    if not offset.business:
        return target + timedelta(days=offset.days)
    step = timedelta(days=-1 if offset.days < 0 else 1)
    day, left = target, abs(offset.days)
    while left:
        day += step
        if day.weekday() in working_days and day not in days_off:
            left -= 1
    return day


def supported_calendars() -> frozenset[str]:
    """The holiday calendars a plan may name: ISO 3166 country codes the holidays package has."""
    return frozenset(holidays.list_supported_countries())


@lru_cache(maxsize=64)
def public_holidays(calendar: str | None) -> Container[date]:
    """The public holidays of `calendar` (a country code), any year; none without one."""
    if calendar is None:
        return frozenset()
    return holidays.country_holidays(calendar)
