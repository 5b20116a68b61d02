"""Durations as journey authors write them: "3d", "12h", "1d12h", "90s", "2w"."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"^(?:\d+[wdhms])+$")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_LONGEST = 10 * 366 * 86400


def parse_duration(text: str) -> timedelta:
    """Parse a compact duration; raise ValueError naming the text when it is not one."""
    cleaned = text.strip().replace(" ", "")
    if not _WHOLE.match(cleaned):
        raise ValueError(
            f"'{text}' is not a duration: use numbers with units w, d, h, m, s (e.g. 3d, 1d12h)"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(cleaned))
    if seconds <= 0:
        raise ValueError(f"'{text}' must be longer than zero")
    if seconds > _LONGEST:
        raise ValueError(f"'{text}' is longer than the longest wait a journey may have (10 years)")
    return timedelta(seconds=seconds)


def describe_duration(delta: timedelta) -> str:
    """The largest whole unit that reads naturally: "3 days", "12 hours", "90 seconds"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
