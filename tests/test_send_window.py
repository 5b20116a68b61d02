"""Quiet hours and frequency caps as pure functions: DST days in two zones, rolling caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from journeys.models import SendWindow
from journeys.send_window import (
    FrequencyCap,
    Policy,
    QuietHours,
    decide,
    policies,
)
from journeys.settings import Settings

WARSAW = ZoneInfo("Europe/Warsaw")  # 2026: forward 29 March 02:00, back 25 October 03:00
NEW_YORK = ZoneInfo("America/New_York")  # 2026: forward 8 March 02:00, back 1 November 02:00
NIGHT = QuietHours.parse("21:00-08:00")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("zone", "now", "ends"),
    [
        # 23:00 the evening before the clocks go forward: 08:00 summer time, a night of 8 hours.
        (WARSAW, utc(2026, 3, 28, 22), utc(2026, 3, 29, 6)),
        (NEW_YORK, utc(2026, 3, 8, 4), utc(2026, 3, 8, 12)),
        # 23:00 the evening before they go back: 08:00 winter time, a night of 10 hours.
        (WARSAW, utc(2026, 10, 24, 21), utc(2026, 10, 25, 7)),
        (NEW_YORK, utc(2026, 11, 1, 3), utc(2026, 11, 1, 13)),
        # Inside the repeated hour (the second 02:30 in Warsaw, the second 01:30 in New York).
        (WARSAW, utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 7)),
        (NEW_YORK, utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 13)),
        # Early on the day after: the night began the evening before.
        (WARSAW, utc(2026, 3, 29, 5, 59), utc(2026, 3, 29, 6)),
    ],
)
def test_a_night_ends_at_eight_on_the_contacts_clock_across_dst(
    zone: ZoneInfo, now: datetime, ends: datetime
) -> None:
    assert NIGHT.ends(now, zone) == ends
    assert ends.astimezone(zone).hour == 8


@pytest.mark.parametrize(
    ("zone", "now"),
    [
        (WARSAW, utc(2026, 3, 29, 6)),  # 08:00 exactly: the end is not quiet
        (WARSAW, utc(2026, 3, 29, 18, 59)),  # 20:59 summer time
        (NEW_YORK, utc(2026, 11, 1, 13)),
        (NEW_YORK, utc(2026, 3, 8, 0, 59)),  # 19:59 EST the evening before
    ],
)
def test_daytime_is_not_quiet(zone: ZoneInfo, now: datetime) -> None:
    assert NIGHT.ends(now, zone) is None


def test_quiet_hours_begin_at_their_start_on_the_contacts_clock() -> None:
    assert NIGHT.ends(utc(2026, 3, 29, 19), WARSAW) == utc(2026, 3, 30, 6)  # 21:00 CEST
    assert NIGHT.ends(utc(2026, 3, 29, 18, 59), WARSAW) is None


@pytest.mark.parametrize(
    ("zone", "now", "ends"),
    [
        # The clock jumps from 02:00 to 03:00: at that jump it is past 02:30.
        (WARSAW, utc(2026, 3, 29, 0), utc(2026, 3, 29, 1)),
        (NEW_YORK, utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)),
    ],
)
def test_an_end_in_the_skipped_hour_is_the_jump(
    zone: ZoneInfo, now: datetime, ends: datetime
) -> None:
    quiet = QuietHours.parse("22:00-02:30")
    assert quiet.ends(now, zone) == ends
    assert ends.astimezone(zone).hour == 3
    assert quiet.ends(ends - timedelta(seconds=1), zone) == ends


def test_an_end_in_the_repeated_hour_is_its_first_time() -> None:
    quiet = QuietHours.parse("22:00-01:30")
    first = utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert quiet.ends(utc(2026, 11, 1, 5), NEW_YORK) == first
    # 01:45 EST, the clock's second time through the hour: the night is over.
    assert quiet.ends(utc(2026, 11, 1, 6, 45), NEW_YORK) is None


def test_a_start_in_the_skipped_hour_begins_at_the_jump() -> None:
    quiet = QuietHours.parse("02:30-06:00")
    assert quiet.ends(utc(2026, 3, 29, 0, 59), WARSAW) is None  # 01:59 CET
    assert quiet.ends(utc(2026, 3, 29, 1), WARSAW) == utc(2026, 3, 29, 4)  # 03:00 CEST


def test_daytime_quiet_hours_do_not_wrap() -> None:
    lunch = QuietHours.parse("12:00-13:00")
    assert lunch.ends(utc(2026, 6, 1, 10, 30), WARSAW) == utc(2026, 6, 1, 11)
    assert lunch.ends(utc(2026, 6, 1, 11), WARSAW) is None


def test_a_rolling_cap_frees_when_the_oldest_counted_send_ages_out() -> None:
    cap = FrequencyCap.parse("3/7d")
    sent = [utc(2026, 6, 1), utc(2026, 6, 3), utc(2026, 6, 5)]
    assert cap.frees(utc(2026, 6, 6), sent[:2]) is None
    assert cap.frees(utc(2026, 6, 6), sent) == utc(2026, 6, 8)
    assert cap.frees(utc(2026, 6, 8), sent) is None
    # Over the cap already (a transactional message counted): the two oldest must age out.
    assert cap.frees(utc(2026, 6, 6), [*sent, utc(2026, 6, 5, 12)]) == utc(2026, 6, 10)


def sms(**policy: object) -> Policy:
    return Policy(**policy)  # type: ignore[arg-type]


def test_a_send_in_quiet_hours_waits_for_their_end() -> None:
    got = decide(utc(2026, 3, 28, 22), WARSAW, "sms", sms(quiet_hours=NIGHT), [], "wait")
    assert got == SendWindow(
        action="wait", until=utc(2026, 3, 29, 6), reason="quiet hours (until 08:00 Europe/Warsaw)"
    )


def test_a_capped_send_waits_then_the_night_holds_it_until_morning() -> None:
    policy = sms(quiet_hours=NIGHT, cap=FrequencyCap.parse("1/1d"))
    sent = [utc(2026, 6, 1, 18)]  # 20:00 in Warsaw; the cap frees at 20:00 next day, still day
    got = decide(utc(2026, 6, 2, 9), WARSAW, "sms", policy, sent, "wait")
    assert got == SendWindow(
        action="wait", until=utc(2026, 6, 2, 18), reason="frequency cap (1 SMS per day)"
    )
    sent = [utc(2026, 6, 1, 19, 30)]  # 21:30: the cap frees at 21:30, in quiet hours
    got = decide(utc(2026, 6, 2, 9), WARSAW, "sms", policy, sent, "wait")
    assert got.until == utc(2026, 6, 3, 6)
    until = "quiet hours (until 08:00 Europe/Warsaw)"
    assert got.reason == f"frequency cap (1 SMS per day), then {until}"


def test_a_capped_send_is_skipped_when_the_step_says_so() -> None:
    policy = sms(cap=FrequencyCap.parse("1/1d"))
    got = decide(utc(2026, 6, 2), WARSAW, "sms", policy, [utc(2026, 6, 1, 12)], "skip")
    assert got == SendWindow(action="skip", reason="frequency cap (1 SMS per day)")
    assert decide(utc(2026, 6, 2), WARSAW, "sms", policy, [utc(2026, 6, 1)], "skip").action == (
        "now"
    )


def test_policies_are_the_channel_defaults_overridden_by_settings() -> None:
    default = policies()
    assert default["sms"] == Policy(NIGHT, FrequencyCap(1, timedelta(days=1)))
    assert default["web_push"] == Policy(NIGHT, None)
    assert default["email"] == Policy(None, FrequencyCap(3, timedelta(days=7)))
    assert default["onsite"] == Policy()
    custom = policies("sms=22:00-07:00, email=none", "email=none,onsite=5/1d")
    assert custom["sms"].quiet_hours == QuietHours.parse("22:00-07:00")
    assert custom["email"] == Policy()
    assert custom["onsite"].cap == FrequencyCap(5, timedelta(days=1))


@pytest.mark.parametrize(
    ("quiet", "caps", "message"),
    [
        ("fax=21:00-08:00", "", "does not name a channel"),
        ("sms=21-08", "", "is not quiet hours"),
        ("sms=25:00-08:00", "", "is not quiet hours"),
        ("sms=08:00-08:00", "", "different times"),
        ("", "sms=1", "is not a frequency cap"),
        ("", "sms=0/1d", "is not a frequency cap"),
        ("", "sms=1/day", "is not a duration"),
    ],
)
def test_a_misconfigured_policy_is_refused_with_what_is_wrong(
    quiet: str, caps: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        policies(quiet, caps)


def test_settings_refuse_a_misconfigured_policy_when_read() -> None:
    with pytest.raises(ValueError, match="is not quiet hours"):
        Settings(quiet_hours="sms=late")
    settings = Settings(frequency_caps="sms=2/1d")
    assert settings.send_policies()["sms"].cap == FrequencyCap(2, timedelta(days=1))
