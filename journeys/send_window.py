"""When a message may leave: quiet hours on the contact's own clock and a frequency cap per
contact and channel. Compliance is decided at send time, whatever the journey says; a send step
only says whether it is transactional (neither applies) and what a capped send does.

Pure functions of instants; the `send_window` activity reads the contact's time zone and their
recent sends and calls `decide`. Every instant is aware; quiet hours are turned into instants per
night (`_instant`), so a night of 23 or 25 hours (a DST change) ends when the local clock says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from journeys.channels import CHANNELS
from journeys.durations import describe_duration, parse_duration
from journeys.models import SendWindow

_QUIET = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
_CAP = re.compile(r"^(\d+)/(\S+)$")
OFF = "none"


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The first instant the clock of `zone` shows `at` or later on `day`: the first of two in
    the repeated hour, the end of the gap when `at` falls in the hour skipped."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap the two folds straddle it: the clock jumps at a whole second between them.
    low, high = sorted((first, wall.replace(tzinfo=zone, fold=1).astimezone(UTC)))
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


@dataclass(frozen=True)
class QuietHours:
    """No message from `start` until `end` on the contact's clock ("21:00-08:00": overnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        match = _QUIET.match(text.strip())
        if match is None:
            raise ValueError(f"'{text}' is not quiet hours: use HH:MM-HH:MM, e.g. 21:00-08:00")
        try:
            h1, m1, h2, m2 = (int(x) for x in match.groups())
            quiet = cls(time(h1, m1), time(h2, m2))
        except ValueError:
            raise ValueError(f"'{text}' is not quiet hours: a time is not HH:MM") from None
        if quiet.start == quiet.end:
            raise ValueError(f"'{text}': quiet hours must start and end at different times")
        return quiet

    def ends(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """When the quiet hours `now` falls in end, or None when `now` is not in them."""
        overnight = self.start > self.end
        today = now.astimezone(zone).date()
        for night in (today - timedelta(days=1), today):
            begins = _instant(night, self.start, zone)
            ends = _instant(night + timedelta(days=1 if overnight else 0), self.end, zone)
            if begins <= now < ends:
                return ends
        return None


@dataclass(frozen=True)
class FrequencyCap:
    """At most `count` messages in any `period` (rolling, not calendar days)."""

    count: int
    period: timedelta

    @classmethod
    def parse(cls, text: str) -> FrequencyCap:
        match = _CAP.match(text.strip())
        if match is None or int(match.group(1)) < 1:
            raise ValueError(f"'{text}' is not a frequency cap: use COUNT/DURATION, e.g. 3/7d")
        return cls(int(match.group(1)), parse_duration(match.group(2)))

    def frees(self, now: datetime, sent: Sequence[datetime]) -> datetime | None:
        """When one more message fits, given the instants of earlier sends; None: it fits now."""
        recent = sorted(t for t in sent if t > now - self.period)
        if len(recent) < self.count:
            return None
        # Once this one is older than the period, fewer than `count` are left inside it.
        return recent[len(recent) - self.count] + self.period


@dataclass(frozen=True)
class Policy:
    """What holds a channel's messages back."""

    quiet_hours: QuietHours | None = None
    cap: FrequencyCap | None = None


def policies(quiet_hours: str = "", frequency_caps: str = "") -> dict[str, Policy]:
    """Every channel's policy: its defaults in `journeys.channels`, overridden per channel by
    settings such as "sms=22:00-07:00,email=none" and "sms=2/1d,email=none"."""
    quiet = {n: c.quiet_hours for n, c in CHANNELS.items()} | _overrides(quiet_hours)
    capped = {n: c.frequency_cap for n, c in CHANNELS.items()} | _overrides(frequency_caps)
    return {
        name: Policy(
            quiet_hours=QuietHours.parse(q) if (q := quiet[name]) not in (None, OFF) else None,
            cap=FrequencyCap.parse(c) if (c := capped[name]) not in (None, OFF) else None,
        )
        for name in CHANNELS
    }


def _overrides(text: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        channel, sep, value = item.partition("=")
        if not sep or channel.strip() not in CHANNELS:
            raise ValueError(
                f"'{item}' does not name a channel: use CHANNEL=VALUE with one of "
                f"{', '.join(CHANNELS)}"
            )
        out[channel.strip()] = value.strip()
    return out


def decide(
    now: datetime,
    zone: ZoneInfo,
    channel: str,
    policy: Policy,
    sent: Sequence[datetime],
    when_capped: Literal["wait", "skip"],
) -> SendWindow:
    """The first moment from `now` outside the quiet hours with room under the cap; `sent`: when
    the contact's earlier messages on this channel went (or were let go)."""
    moment, reasons = now, list[str]()
    display = CHANNELS[channel].display
    while True:
        if policy.quiet_hours and (ends := policy.quiet_hours.ends(moment, zone)):
            local = ends.astimezone(zone)
            reasons.append(f"quiet hours (until {local:%H:%M} {zone.key})")
            moment = ends
        elif policy.cap and (frees := policy.cap.frees(moment, sent)):
            per = describe_duration(policy.cap.period).removeprefix("1 ")
            reason = f"frequency cap ({policy.cap.count} {display} per {per})"
            if when_capped == "skip":
                return SendWindow(action="skip", reason=reason)
            reasons.append(reason)
            moment = frees
        else:
            break
    if moment == now:
        return SendWindow(action="now")
    return SendWindow(action="wait", until=moment, reason=", then ".join(dict.fromkeys(reasons)))
