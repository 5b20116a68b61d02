"""The people plans are run with: who they are, how to reach them, which roles they take, and
their clock (time zone, working days and hours), which their tasks' due dates, reminders and
follow-ups are counted on."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from journeys.csvfile import RowProblem, parse_records
from journeys.fields import Email, Name, OpaqueId, TimeZone
from journeys.plans.calendar import WORKWEEK
from journeys.plans.schedule import WorkingTime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RoleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class Person(BaseModel):
    """A team member as the import and the API take them (validated like contacts)."""

    model_config = ConfigDict(extra="forbid")

    id: OpaqueId
    name: Name
    email: Email
    # The roles they usually take; a plan is started with its roles assigned to people.
    roles: list[RoleId] = []
    time_zone: TimeZone = "UTC"
    # Weekday numbers, Monday 0.
    working_days: frozenset[int] = Field(WORKWEEK, min_length=1)
    starts: time = time(9, 0)
    ends: time = time(17, 0)

    @field_validator("email")
    @classmethod
    def _reachable(cls, v: str | None) -> str:
        if not v:
            raise ValueError("a team member needs an email address: their tasks come by email")
        return v

    @field_validator("working_days", mode="before")
    @classmethod
    def _days(cls, v: object) -> object:
        if isinstance(v, str):
            return _days_of(v)
        if isinstance(v, list | set | frozenset) and not set(v) <= set(range(7)):
            raise ValueError("working days are weekday numbers, Monday 0 to Sunday 6")
        return v

    @field_validator("starts", "ends")
    @classmethod
    def _wall_clock(cls, v: time) -> time:
        if v.tzinfo is not None:
            raise ValueError("a time of day on the person's own clock, without a zone (09:00)")
        return v

    @field_validator("ends")
    @classmethod
    def _after_start(cls, v: time, info: ValidationInfo) -> time:
        starts = info.data.get("starts")
        if starts is not None and v <= starts:
            raise ValueError("working hours must end after they start, on the same day")
        return v

    def working_time(self) -> WorkingTime:
        return WorkingTime(
            time_zone=self.time_zone,
            working_days=self.working_days,
            starts=self.starts,
            ends=self.ends,
        )


def _days_of(text: str) -> frozenset[int]:
    """'mon-fri', or days separated by ';' ('mon;tue;thu'), as weekday numbers."""
    text = text.strip().lower()
    if "-" in text:
        first, _, last = text.partition("-")
        if first in DAYS and last in DAYS and DAYS.index(first) <= DAYS.index(last):
            return frozenset(range(DAYS.index(first), DAYS.index(last) + 1))
    else:
        days = [d.strip() for d in text.split(";") if d.strip()]
        if days and all(d in DAYS for d in days):
            return frozenset(DAYS.index(d) for d in days)
    raise ValueError(
        f"'{text}' is not working days: a range such as mon-fri, or days separated by ';'"
    )


def _row_to_person(row: dict[str, str]) -> Person:
    """CSV columns: id, name, email, roles (separated by ';'), time_zone, working_days (mon-fri,
    or days separated by ';'), hours (09:00-17:00)."""
    fields: dict[str, object] = {
        "id": (row.get("id") or "").strip(),
        "name": (row.get("name") or "").strip(),
        "email": (row.get("email") or "").strip() or None,
        "roles": [r.strip() for r in (row.get("roles") or "").split(";") if r.strip()],
        "time_zone": (row.get("time_zone") or "").strip() or "UTC",
    }
    if days := (row.get("working_days") or "").strip():
        fields["working_days"] = days
    if hours := (row.get("hours") or "").strip():
        # Each end as the model reads a time: a wrong one is named by its field.
        fields["starts"], _, fields["ends"] = hours.partition("-")
    return Person.model_validate(fields)


def parse_people_csv(text: str) -> tuple[list[Person], list[RowProblem]]:
    """Every team member of a CSV file validated; problems by line (see journeys.csvfile)."""
    return parse_records(text, _row_to_person)
