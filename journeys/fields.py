"""Fields more than one record validates the same way (a contact, a team member): opaque ids,
email addresses, time zones. Each check is written once, as an annotated type."""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, Field

from journeys.limits import text_problem

# RFC 5321 4.5.3.1.1.
MAX_LOCAL_PART = 64
# What a phone number written as an id looks like once its separators are gone.
_PHONE_SHAPED = re.compile(r"^(?:\+|00)?(\d{7,15})$")
_OPAQUE = "ids end up in workflow ids and search attributes: use an opaque id"


def _looks_like_phone(value: str) -> bool:
    digits = _PHONE_SHAPED.match(re.sub(r"[-.() ]", "", value))
    if digits is None:
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(f"+{digits[1]}", None))
    except phonenumbers.NumberParseException:
        return False


def _opaque(v: object) -> object:
    if isinstance(v, str) and "@" in v:
        raise ValueError(f"looks like an email address: {_OPAQUE}")
    if isinstance(v, str) and _looks_like_phone(v):
        raise ValueError(f"looks like a phone number: {_OPAQUE}")
    return v


def _email(v: str | None) -> str | None:
    if not v:
        return None
    try:
        email = validate_email(v, check_deliverability=False)
    except EmailNotValidError as e:
        raise ValueError(f"email is not valid: {e}") from None
    if len(email.local_part.encode()) > MAX_LOCAL_PART:
        raise ValueError(
            f"email is not valid: the part before the @ is longer than {MAX_LOCAL_PART} bytes"
        )
    return email.normalized


def _text(v: str) -> str:
    if problem := text_problem(v):
        raise ValueError(problem)
    return v


def _zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time_zone '{v}' is not an IANA time zone (e.g. Europe/Warsaw)") from None
    return v


OpaqueId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$"), BeforeValidator(_opaque)]
Email = Annotated[str | None, AfterValidator(_email)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_text), AfterValidator(_zone)]
Text = Annotated[str, AfterValidator(_text)]
# A person's name as they are addressed in messages.
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_text)]
