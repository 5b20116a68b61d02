"""The hygiene rules, pure: what one contact's row should become (`decide`), which of two
duplicates survives a merge and what consent the merged contact keeps. The store reads the
candidates and applies the changes (`journeys/store/hygiene.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel

from journeys.events import CLICKED, NPS_ANSWERED, OPENED, SMS_REPLY, VISITED_URL
from journeys.hygiene.changes import ChangeKind, HygieneChange, HygienePolicy

# What counts as the contact engaging: the built-in signs that a person read, clicked, visited or
# answered, and the two custom kinds backend services send for what matters most to a marketer
# (a form filled in, a purchase), which say more about a living relationship than any open.
# Deliveries, unsubscribes and skips are things that happened TO the contact, not by them.
ENGAGEMENT: frozenset[str] = frozenset(
    {OPENED, CLICKED, VISITED_URL, NPS_ANSWERED, SMS_REPLY, "form_submitted", "purchase"}
)

# The tag a sunset contact carries (the store also suppresses it on the `marketing` channel).
SUNSET = "SUNSET"


class Candidate(BaseModel):
    """One contact as hygiene reads it (`ContactStore.hygiene_candidates`)."""

    id: str
    email: str | None
    phone: str | None
    # The contact's `country` attribute (ISO 3166 alpha-2), the region its phone is read in.
    country: str | None
    created_at: datetime
    # The latest event of an ENGAGEMENT kind, if any.
    last_engaged_at: datetime | None
    # Currently sunset (tagged SUNSET), and since when.
    sunset: bool
    sunset_at: datetime | None = None


class DuplicateGroup(BaseModel):
    """Contacts sharing a normalised email (`email:<lower-case address>`) or an E.164 phone
    (`phone:<number>`): merged into one (`survivor`)."""

    key: str
    contact_ids: list[str]


def normalise_phone(raw: str, region: str) -> str | None:
    """`raw` in E.164, read in `region` (ISO alpha-2) when it has no country code; None when it
    is no valid number there."""
    # phonenumbers reads "++48..." as "+48...": a number written so is a typo (as in Contact).
    if raw.count("+") > 1:
        return None
    try:
        number = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_problem(address: str) -> str | None:
    """What is wrong with `address`'s syntax (email-validator's reason), or None. The domain's
    mail servers are not looked up here (that is deliverability, done with a cache and a time
    limit by the hygiene run)."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as e:
        return str(e)
    return None


def email_domain(address: str) -> str:
    """The lower-case domain of an address, as `decide`'s `undeliverable` names domains."""
    return address.rpartition("@")[2].lower()


def _region(c: Candidate, policy: HygienePolicy) -> str:
    country = (c.country or "").strip().upper()
    return country if len(country) == 2 and country.isalpha() else policy.default_region.upper()


def decide(
    run_id: str,
    c: Candidate,
    policy: HygienePolicy,
    now: datetime,
    undeliverable: frozenset[str] = frozenset(),
) -> list[HygieneChange]:
    """What hygiene run `run_id` changes on contact `c` at `now`: its phone rewritten to E.164 or
    cleared, its email cleared when invalid or its domain is in `undeliverable` (lower-case
    domains without mail servers), sunset after `policy.sunset_after_days` without engagement,
    or sunset lifted when it engaged since. A detail holds only what the row held."""

    def change(kind: ChangeKind, **detail: Any) -> HygieneChange:
        return HygieneChange(
            run_id=run_id, contact_id=c.id, kind=kind, detail=detail, changed_at=now
        )

    changes = []
    if c.phone:
        region = _region(c, policy)
        e164 = normalise_phone(c.phone, region)
        if e164 is None:
            reason = f"not a valid phone number in region {region}"
            changes.append(change("phone_invalid", before=c.phone, reason=reason))
        elif e164 != c.phone:
            changes.append(change("phone_normalised", before=c.phone, after=e164))
    if c.email:
        problem = email_problem(c.email)
        if problem is not None:
            changes.append(change("email_invalid", before=c.email, reason=problem))
        elif email_domain(c.email) in undeliverable:
            reason = "the domain has no mail server"
            changes.append(change("email_undeliverable", before=c.email, reason=reason))
    window = timedelta(days=policy.sunset_after_days)
    last = c.last_engaged_at or c.created_at
    if not c.sunset and now - last >= window:
        engaged = c.last_engaged_at.isoformat() if c.last_engaged_at else None
        changes.append(change("sunset", last_engaged_at=engaged, days=policy.sunset_after_days))
    elif c.sunset and c.last_engaged_at is not None:
        # Engaged since it was sunset (or, with no record of when, within the window).
        since = c.sunset_at if c.sunset_at is not None else now - window
        if c.last_engaged_at > since:
            changes.append(change("sunset_lifted", last_engaged_at=c.last_engaged_at.isoformat()))
    return changes


def survivor(ids_with_created: Sequence[tuple[str, datetime]]) -> str:
    """Which of duplicate contacts the others merge into: the oldest, then the smallest id (so
    the same group gives the same survivor, whoever asks)."""
    if not ids_with_created:
        raise ValueError("no contacts to choose a survivor from")
    return min(ids_with_created, key=lambda pair: (pair[1], pair[0]))[0]


def merged_consent(a: dict[str, bool], b: dict[str, bool]) -> dict[str, bool]:
    """Consent of two contacts merged into one, per channel the most restrictive: True only where
    both granted it (a channel one of them never consented to is not consented to)."""
    return {ch: a.get(ch, False) and b.get(ch, False) for ch in sorted(a.keys() | b.keys())}
