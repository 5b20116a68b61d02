"""The hygiene rules (journeys/hygiene/rules.py), pure: what a run would change on one contact,
which duplicate survives, what consent a merged contact keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeys.hygiene.changes import HygienePolicy
from journeys.hygiene.rules import (
    Candidate,
    decide,
    email_problem,
    merged_consent,
    normalise_phone,
    survivor,
)
from journeys.store.schema import contacts

NOW = datetime(2027, 6, 1, 12, tzinfo=UTC)
POLICY = HygienePolicy(default_region="US", sunset_after_days=180)
PHONE_COLUMN = contacts.c.phone.type.length
REGIONS = ["US", "PL", "GB", "DE", "FR", "IN", "BR", "JP"]


def candidate(**given: object) -> Candidate:
    fields: dict[str, object] = {
        "id": "c1",
        "email": None,
        "phone": None,
        "country": None,
        "created_at": NOW - timedelta(days=30),
        "last_engaged_at": None,
        "sunset": False,
    }
    return Candidate.model_validate(fields | given)


def kinds_and_details(c: Candidate, **undeliverable: frozenset[str]) -> list[tuple[str, dict]]:
    return [(ch.kind, ch.detail) for ch in decide("run1", c, POLICY, NOW, **undeliverable)]


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(202) 456-1111", "US", "+12024561111"),
        ("601 234 567", "PL", "+48601234567"),
        ("0048 601 234 567", "PL", "+48601234567"),
        ("+48 601-234-567", "US", "+48601234567"),  # a country code wins over the region
        ("020 7946 0018", "gb", "+442079460018"),
        ("+4920100000000000", "US", "+4920100000000000"),  # 16 digits, valid in Germany
        ("12", "US", None),
        ("not a number", "US", None),
        ("++48601234567", "PL", None),
        ("601 234 567", "ZZ", None),  # no such region, no country code
    ],
)
def test_normalise_phone(raw: str, region: str, e164: str | None) -> None:
    assert normalise_phone(raw, region) == e164


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="+0123456789 ()-.", max_size=20), st.sampled_from(REGIONS))
def test_normalise_phone_gives_e164_and_is_idempotent(raw: str, region: str) -> None:
    e164 = normalise_phone(raw, region)
    if e164 is not None:
        # libphonenumber's metadata allows some national numbers (Germany's) a digit beyond
        # E.164's 15: what matters is that the store's column holds it.
        assert e164.startswith("+") and e164[1:].isdigit()
        assert len(e164) <= PHONE_COLUMN
        assert normalise_phone(e164, region) == e164
        assert all(normalise_phone(e164, other) == e164 for other in REGIONS)


def test_email_problem_is_the_syntax_only() -> None:
    assert email_problem("ana@example.com") is None
    # No domain is looked up: a domain without mail servers is still good syntax.
    assert email_problem("ana@no-mail-here.invalid") is not None  # a special-use name
    assert email_problem("ana@nomailserver-f3c1.example") is None
    problem = email_problem("ana@@example.com")
    assert problem and "@" in problem
    assert email_problem("ana example.com")


def test_a_phone_is_rewritten_in_the_contacts_country_or_the_default_region() -> None:
    polish = candidate(phone="601 234 567", country="pl")
    assert kinds_and_details(polish) == [
        ("phone_normalised", {"before": "601 234 567", "after": "+48601234567"})
    ]
    american = candidate(phone="(202) 456-1111", country="not a country")
    assert kinds_and_details(american) == [
        ("phone_normalised", {"before": "(202) 456-1111", "after": "+12024561111"})
    ]
    assert kinds_and_details(candidate(phone="+48601234567")) == []


def test_a_phone_no_region_reads_is_cleared() -> None:
    assert kinds_and_details(candidate(phone="12345")) == [
        ("phone_invalid", {"before": "12345", "reason": "not a valid phone number in region US"})
    ]


def test_an_email_is_cleared_when_its_syntax_is_wrong_or_its_domain_has_no_mail_server() -> None:
    [(kind, detail)] = kinds_and_details(candidate(email="ana@@example.com"))
    assert kind == "email_invalid"
    assert detail["before"] == "ana@@example.com" and detail["reason"]
    assert set(detail) == {"before", "reason"}

    dead = candidate(email="Ana@Dead.Example")
    assert kinds_and_details(dead) == []
    assert kinds_and_details(dead, undeliverable=frozenset({"dead.example"})) == [
        (
            "email_undeliverable",
            {"before": "Ana@Dead.Example", "reason": "the domain has no mail server"},
        )
    ]


def test_sunset_after_the_policys_days_without_engagement() -> None:
    engaged = NOW - timedelta(days=181)
    old = candidate(created_at=NOW - timedelta(days=400), last_engaged_at=engaged)
    assert kinds_and_details(old) == [
        ("sunset", {"last_engaged_at": engaged.isoformat(), "days": 180})
    ]
    never = candidate(created_at=NOW - timedelta(days=180))
    assert kinds_and_details(never) == [("sunset", {"last_engaged_at": None, "days": 180})]
    # Created lately, or engaged lately: not yet.
    assert kinds_and_details(candidate(created_at=NOW - timedelta(days=179))) == []
    recent = candidate(
        created_at=NOW - timedelta(days=400), last_engaged_at=NOW - timedelta(days=10)
    )
    assert kinds_and_details(recent) == []
    # Sunset already: nothing again.
    assert kinds_and_details(old.model_copy(update={"sunset": True})) == []


def test_sunset_is_lifted_when_the_contact_engaged_since() -> None:
    sunset_at = NOW - timedelta(days=20)
    sunset = candidate(
        created_at=NOW - timedelta(days=400),
        last_engaged_at=NOW - timedelta(days=300),
        sunset=True,
        sunset_at=sunset_at,
    )
    assert kinds_and_details(sunset) == []
    clicked = NOW - timedelta(days=2)
    back = sunset.model_copy(update={"last_engaged_at": clicked})
    assert kinds_and_details(back) == [("sunset_lifted", {"last_engaged_at": clicked.isoformat()})]


def test_every_change_names_the_run_the_contact_and_the_moment() -> None:
    c = candidate(id="c9", phone="12", email="bad@", created_at=NOW - timedelta(days=999))
    changes = decide("run7", c, POLICY, NOW)
    assert [ch.kind for ch in changes] == ["phone_invalid", "email_invalid", "sunset"]
    assert {(ch.run_id, ch.contact_id, ch.changed_at) for ch in changes} == {("run7", "c9", NOW)}


def test_the_survivor_is_the_oldest_then_the_smallest_id() -> None:
    t = NOW
    assert survivor([("b", t), ("a", t + timedelta(seconds=1))]) == "b"
    assert survivor([("b", t), ("a", t), ("c", t)]) == "a"
    with pytest.raises(ValueError, match="no contacts"):
        survivor([])


def test_merged_consent_is_the_most_restrictive_per_channel() -> None:
    a = {"email": True, "sms": True, "push": False}
    b = {"email": True, "sms": False, "newsletter": True}
    assert merged_consent(a, b) == {
        "email": True,
        "sms": False,
        "push": False,
        "newsletter": False,  # a never consented to it
    }
    assert merged_consent({}, {"email": True}) == {"email": False}


@given(
    st.dictionaries(st.sampled_from(["email", "sms", "push", "newsletter"]), st.booleans()),
    st.dictionaries(st.sampled_from(["email", "sms", "push", "newsletter"]), st.booleans()),
)
def test_merged_consent_never_grants_what_either_withheld(
    a: dict[str, bool], b: dict[str, bool]
) -> None:
    merged = merged_consent(a, b)
    assert merged == merged_consent(b, a)
    assert set(merged) == set(a) | set(b)
    for channel, granted in merged.items():
        assert granted == (a.get(channel, False) and b.get(channel, False))


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="+0123456789 ()-", max_size=18),
    st.sampled_from([None, *REGIONS]),
    st.sampled_from([None, "ana@example.com", "ana@@example.com", "Ana@Dead.Example"]),
)
def test_a_contact_cleaned_once_needs_no_cleaning_again(
    phone: str, country: str | None, email: str | None
) -> None:
    c = candidate(phone=phone or None, country=country, email=email)
    dead = frozenset({"dead.example"})
    for change in decide("run1", c, POLICY, NOW, dead):
        if change.kind.startswith("phone"):
            c = c.model_copy(update={"phone": change.detail.get("after")})
        if change.kind.startswith("email"):
            c = c.model_copy(update={"email": None})
    assert decide("run2", c, POLICY, NOW, dead) == []
