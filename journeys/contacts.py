"""Contacts as the store keeps them, validated the same way for CSV import and the API."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, Field, ValidationError, field_validator

from journeys.channels import CHANNELS

# What a contact may consent to: the channels, and the newsletter a journey may branch on.
CONSENT_CHANNELS = (*(c.consent_key for c in CHANNELS.values()), "newsletter")


class Contact(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    email: str | None = None
    phone: str | None = None
    time_zone: str = Field("UTC", max_length=64)
    locale: str = Field("en", max_length=16)
    attributes: dict[str, Any] = {}
    consent: dict[str, bool] = {}
    in_mobile_app: bool = False
    web_push: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if not v:
            return None
        try:
            return validate_email(v, check_deliverability=False).normalized
        except EmailNotValidError as e:
            raise ValueError(f"email is not valid: {e}") from None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if not v:
            return None
        try:
            number = phonenumbers.parse(v, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValueError("phone is not a valid international number (E.164, e.g. +48601234567)")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"time_zone '{v}' is not an IANA time zone (e.g. Europe/Warsaw)"
            ) from None
        return v

    @field_validator("consent")
    @classmethod
    def _consent_channels(cls, v: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(v) - set(CONSENT_CHANNELS))
        if unknown:
            raise ValueError(f"unknown channels {unknown} (known: {', '.join(CONSENT_CHANNELS)})")
        return v


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


_TRUE = {"1", "true", "yes", "y"}
_KNOWN_COLUMNS = {
    "id",
    "email",
    "phone",
    "time_zone",
    "locale",
    "consent",
    "in_mobile_app",
    "web_push",
}


def _row_to_contact(row: dict[str, str]) -> Contact:
    """CSV columns: id, email, phone, time_zone, locale, consent (channels separated by ';'),
    in_mobile_app, web_push; any other column becomes an attribute."""
    consent = {c.strip(): True for c in (row.get("consent") or "").split(";") if c.strip()}
    return Contact(
        id=(row.get("id") or "").strip(),
        email=(row.get("email") or "").strip() or None,
        phone=(row.get("phone") or "").strip() or None,
        time_zone=(row.get("time_zone") or "").strip() or "UTC",
        locale=(row.get("locale") or "").strip() or "en",
        consent=consent,
        in_mobile_app=(row.get("in_mobile_app") or "").strip().lower() in _TRUE,
        web_push=(row.get("web_push") or "").strip().lower() in _TRUE,
        attributes={k: v for k, v in row.items() if k not in _KNOWN_COLUMNS and k and v},
    )


def parse_csv(text: str) -> tuple[list[Contact], list[RowProblem]]:
    """Every row validated; problems carry the file's line number (the header is line 1)."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "id" not in reader.fieldnames:
        return [], [RowProblem(1, "the header must name an 'id' column")]
    contacts: list[Contact] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            problems.append(RowProblem(line, "more fields than the header has columns"))
            continue
        try:
            contact = _row_to_contact(row)
        except ValidationError as e:
            for err in e.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append(
                    RowProblem(line, f"{field}: {err['msg'].removeprefix('Value error, ')}")
                )
            continue
        if contact.id in seen:
            problems.append(RowProblem(line, f"id '{contact.id}' repeats line {seen[contact.id]}"))
            continue
        seen[contact.id] = line
        contacts.append(contact)
    return contacts, problems
