"""When a task is due, reminded and followed up, on its owner's clock: working days and hours,
public holidays, time zones, daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from journeys.plans.calendar import public_holidays
from journeys.plans.schedule import WorkingTime, due_at, follow_ups, reminders

POLAND = public_holidays("PL")
ANA = WorkingTime(time_zone="Europe/Warsaw")  # Monday to Friday, 09:00 to 17:00
BEFORE = [timedelta(hours=48), timedelta(hours=24)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_task_is_due_at_the_end_of_its_owners_working_day() -> None:
    assert due_at(date(2027, 1, 11), ANA, POLAND) == utc(2027, 1, 11, 16)  # 17:00 in Warsaw, winter
    assert due_at(date(2027, 7, 12), ANA, POLAND) == utc(2027, 7, 12, 15)  # 17:00 in Warsaw, summer
    bo = WorkingTime(time_zone="America/New_York", ends=time(18, 30))
    assert due_at(date(2027, 1, 11), bo, POLAND) == utc(2027, 1, 11, 23, 30)


def test_a_due_date_on_a_day_off_is_the_owners_last_working_day_before_it() -> None:
    # Saturday 2027-01-09 -> Friday; Wednesday 2027-01-06 (Epiphany in Poland) -> Tuesday.
    assert due_at(date(2027, 1, 9), ANA, POLAND) == utc(2027, 1, 8, 16)
    assert due_at(date(2027, 1, 6), ANA, POLAND) == utc(2027, 1, 5, 16)
    assert due_at(date(2027, 1, 6), ANA, frozenset()) == utc(2027, 1, 6, 16)
    weekend_worker = WorkingTime(time_zone="Europe/Warsaw", working_days=frozenset({5, 6}))
    assert due_at(date(2027, 1, 8), weekend_worker, POLAND) == utc(2027, 1, 3, 16)


def test_reminders_count_working_days_over_a_weekend() -> None:
    # Due Monday 2027-01-11: reminded Thursday and Friday at the same hour, not at the weekend.
    due = due_at(date(2027, 1, 11), ANA, POLAND)
    assert reminders(due, BEFORE, ANA, POLAND) == [utc(2027, 1, 7, 16), utc(2027, 1, 8, 16)]


def test_a_friday_task_is_reminded_around_a_public_holiday() -> None:
    # Due Friday 2027-01-08; Wednesday the 6th is Epiphany: 24 h is Thursday, 48 h Tuesday.
    due = due_at(date(2027, 1, 8), ANA, POLAND)
    assert reminders(due, BEFORE, ANA, POLAND) == [utc(2027, 1, 5, 16), utc(2027, 1, 7, 16)]
    # Without the holiday calendar, Wednesday and Thursday.
    assert reminders(due, BEFORE, ANA, ()) == [utc(2027, 1, 6, 16), utc(2027, 1, 7, 16)]


def test_a_reminder_of_hours_outside_working_hours_comes_at_the_last_working_moment() -> None:
    due = due_at(date(2027, 1, 11), ANA, POLAND)  # Monday 17:00
    # Ten hours before is Monday 07:00, before work starts: Friday 17:00.
    assert reminders(due, [timedelta(hours=10)], ANA, POLAND) == [utc(2027, 1, 8, 16)]
    # Two hours before is in working hours: as it is.
    assert reminders(due, [timedelta(hours=2)], ANA, POLAND) == [utc(2027, 1, 11, 14)]


def test_reminders_keep_the_local_hour_across_a_daylight_saving_change() -> None:
    # New York moves its clocks forward on Sunday 2027-03-14: due Tuesday the 16th at 17:00 EDT
    # (21:00 UTC), reminded Friday the 12th at 17:00 EST (22:00 UTC) and Monday at 17:00 EDT.
    bo = WorkingTime(time_zone="America/New_York")
    due = due_at(date(2027, 3, 16), bo, POLAND)
    assert due == utc(2027, 3, 16, 21)
    assert reminders(due, BEFORE, bo, ()) == [utc(2027, 3, 12, 22), utc(2027, 3, 15, 21)]
    # In Warsaw the change falls on Easter Sunday 2027-03-28, and Easter Monday is a holiday:
    # due Tuesday the 30th, reminded Thursday the 25th and Friday the 26th, in CET.
    due = due_at(date(2027, 3, 30), ANA, POLAND)
    assert reminders(due, BEFORE, ANA, POLAND) == [utc(2027, 3, 25, 16), utc(2027, 3, 26, 16)]


def test_a_late_task_is_followed_up_each_working_morning() -> None:
    due = due_at(date(2027, 1, 8), ANA, POLAND)  # Friday
    # Monday, Tuesday; Wednesday the 6th was last week's holiday, so Wednesday the 13th counts.
    assert follow_ups(due, ANA, POLAND, 3) == [
        utc(2027, 1, 11, 8),
        utc(2027, 1, 12, 8),
        utc(2027, 1, 13, 8),
    ]
    # Someone working Tuesday to Saturday is followed up on Saturday first.
    cy = WorkingTime(time_zone="Europe/Warsaw", working_days=frozenset({1, 2, 3, 4, 5}))
    assert follow_ups(due, cy, POLAND, 1) == [utc(2027, 1, 9, 8)]
