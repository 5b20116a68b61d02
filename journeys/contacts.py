"""Contacts as the store keeps them, validated the same way for CSV import and the API."""

from __future__ import annotations

from typing import Annotated, Any

import phonenumbers
from pydantic import BaseModel, Field, StrictBool, field_validator

from journeys.channels import CHANNELS
from journeys.csvfile import RowProblem, parse_records
from journeys.fields import Email, OpaqueId, Text, TimeZone
from journeys.limits import MAX_ATTRIBUTES, MAX_ATTRIBUTES_BYTES, check_json_object

# What a contact may consent to: the channels, and the newsletter a journey may branch on.
CONSENT_CHANNELS = (*(c.consent_key for c in CHANNELS.values()), "newsletter")


class Contact(BaseModel):
    """A contact as it comes in (the API, the CSV import). The store reads back what it took
    without validating again, so a rule added here never makes a stored contact unreadable."""

    id: OpaqueId
    email: Email = None
    phone: str | None = None
    time_zone: TimeZone = "UTC"
    locale: Annotated[Text, Field(max_length=16)] = "en"
    attributes: dict[str, Any] = Field(
        {},
        description=f"At most {MAX_ATTRIBUTES} keys and {MAX_ATTRIBUTES_BYTES} bytes as JSON",
    )
    consent: dict[str, StrictBool] = {}
    in_mobile_app: StrictBool = False
    web_push: StrictBool = False

    def display_name(self) -> str:
        """How a person on the team reads this contact (a task to call them): the name in the
        `first_name` and `last_name` attributes the import keeps, else the id."""
        names = [
            str(self.attributes[k]) for k in ("first_name", "last_name") if self.attributes.get(k)
        ]
        return " ".join(names) or self.id

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(v) > MAX_ATTRIBUTES:
            raise ValueError(f"{len(v)} attributes, more than {MAX_ATTRIBUTES}")
        return check_json_object(v, MAX_ATTRIBUTES_BYTES, "attributes")

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if not v:
            return None
        try:
            # phonenumbers reads "++48..." as "+48...": a number written so is a typo.
            number = phonenumbers.parse(v, None) if v.count("+") <= 1 else None
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValueError("phone is not a valid international number (E.164, e.g. +48601234567)")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("consent")
    @classmethod
    def _consent_channels(cls, v: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(v) - set(CONSENT_CHANNELS))
        if unknown:
            raise ValueError(f"unknown channels {unknown} (known: {', '.join(CONSENT_CHANNELS)})")
        return v


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
    """Every contact of a CSV file validated; problems by line (see journeys.csvfile)."""
    return parse_records(text, _row_to_contact)
