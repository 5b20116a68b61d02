"""The pure decisions behind branches, waits and draws."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.contacts import seconds_until
from journeys import conditions, decisions
from journeys.contacts import parse_csv
from journeys.durations import parse_duration
from journeys.models import ContactFacts, JourneyEvent
from journeys.spec import BranchStep, Condition, JourneySpec

NOW = datetime(2026, 11, 23, tzinfo=UTC)
FACTS = ContactFacts(
    contact_id="c1",
    has_email=True,
    has_phone=False,
    consent={"email": True, "newsletter": True},
    tags=["REVIEW_LEFT"],
    attributes={"orders": 3, "plan": "pro"},
    grade="C",
    score=42.5,
    counts={"purchase/180": 1, "clicked/30": 2},
)


def ev(kind: str, step: str | None = None, **data: object) -> JourneyEvent:
    return JourneyEvent(kind=kind, step=step, occurred_at=NOW, data=data)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("has_email", True),
        ("has_phone", False),
        ("not has_phone", True),
        ("opted_in:email", True),
        ("opted_in:sms", False),
        ("subscribed_newsletter", True),
        ("has_tag:REVIEW_LEFT", True),
        ("has_tag:NO_CAMPAIGN", False),
        ("attribute:orders >= 3", True),
        ("attribute:orders > 3", False),
        ("attribute:plan == 'pro'", True),
        ("attribute:plan > 3", False),  # a type mismatch never holds
        ("attribute:missing == 1", False),
        ("grade:C", True),
        ("grade:B", False),
        ("not grade:C", False),
        ("grade_in:[C,D]", True),
        ("grade_in:[A, B]", False),
        ("score>=42.5", True),
        ("score > 42.5", False),
        ("score<50", True),
        ("not score>=40", False),
        ("count:purchase within 180d == 1", True),
        ("count:purchase within 180d >= 2", False),
        ("count:clicked within 30d >= 2", True),
        ("not count:clicked within 30d >= 2", False),
        # Not loaded (no events of the kind in the window): none.
        ("count:visited_url within 7d == 0", True),
    ],
)
def test_conditions_on_contact_facts(condition: str, expected: bool) -> None:
    assert conditions.holds(condition, FACTS, []) is expected


def test_a_contact_never_graded_has_no_grade_and_no_score() -> None:
    ungraded = ContactFacts(contact_id="c2")
    assert not conditions.holds("grade_in:[A,B,C,D]", ungraded, [])
    assert not conditions.holds("score>=0", ungraded, [])
    assert conditions.holds("not score>=0", ungraded, [])


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        ("grade:E", "'grade:E': unknown grade 'E' (grades are A, B, C, D)"),
        ("not grade_in:[C,X]", "'grade_in:[C,X]': unknown grade 'X'"),
        ("grade_in:C,D", "write the grades in brackets, e.g. grade_in:[C,D]"),
        ("grade_in:[]", "'grade_in:[]': no grade named"),
        ("score>=lots", "'score>=lots': 'lots' is not a number"),
        ("score>=nan", "'nan' is not a number"),
        ("count:purchase within 0d == 1", "the window '0d' is not a number of days from 1d"),
        ("count:purchase within 6m == 1", "the window '6m' is not a number of days"),
        ("count:purchase within 99999d == 1", "the window '99999d'"),
        ("count:purchase within 180d == 1.5", "'1.5' is not a whole number of events"),
        ("count:purchase == 1", "write a count as count:<event kind> within <N>d <op> <M>"),
    ],
)
def test_malformed_grade_score_and_count_conditions_say_what_is_wrong(
    condition: str, why: str
) -> None:
    with pytest.raises(conditions.UnknownCondition) as err:
        conditions.parse(condition)
    assert why in str(err.value)


def test_nps_class_reads_the_latest_answer() -> None:
    answers = [ev("nps_answered", score=3), ev("nps_answered", score=9)]
    assert conditions.holds("nps:promoter", FACTS, answers)
    assert not conditions.holds("nps:detractor", FACTS, answers)

    assert [conditions.nps_class(s) for s in (0, 6, 7, 8, 9, 10)] == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
    ]


def test_unknown_condition_lists_what_is_known() -> None:
    with pytest.raises(
        conditions.UnknownCondition, match=r"unknown condition 'has_fax'.*has_phone"
    ):
        conditions.parse("has_fax")


def test_first_matching_condition_wins_else_otherwise() -> None:
    branch = BranchStep(
        id="b",
        kind="branch",
        conditions=[
            Condition(when="has_phone", next="sms"),
            Condition(when="has_email", next="mail"),
        ],
        otherwise="ads",
    )
    assert decisions.branch_target(branch, FACTS, []) == ("mail", "has_email")
    nothing = ContactFacts(contact_id="c2")
    assert decisions.branch_target(branch, nothing, []) == ("ads", "otherwise")


def test_a_wait_uses_each_event_once_and_only_about_its_step() -> None:
    events = [ev("opened", "part_2"), ev("opened", "intro"), ev("opened", "intro")]
    assert decisions.find_event(events, [], "opened", "intro") == 1
    assert decisions.find_event(events, [1], "opened", "intro") == 2
    assert decisions.find_event(events, [1, 2], "opened", "intro") is None
    assert decisions.find_event(events, [], "opened", None) == 0
    assert decisions.find_event(events, [], "clicked", None) is None


def test_weighted_choice_follows_the_weights() -> None:
    picks = [decisions.weighted_choice([1, 3], i / 100) for i in range(100)]
    assert picks.count(0) == 25 and picks.count(1) == 75


def test_csv_rows_are_checked_and_reported_by_line() -> None:
    contacts, problems = parse_csv(
        "id,email,phone,time_zone,consent,plan\n"
        "a1,A1@Example.com,+48 601 234 567,Europe/Warsaw,email;sms,pro\n"
        "a2,,12345,Mars/Base,,\n"
        "a1,x@example.com,,,,\n"
        "a3,,,,fax,\n"
    )
    assert [c.id for c in contacts] == ["a1"]
    assert contacts[0].phone == "+48601234567"
    assert contacts[0].email == "A1@example.com"
    assert contacts[0].consent == {"email": True, "sms": True}
    assert contacts[0].attributes == {"plan": "pro"}
    assert [str(p) for p in problems] == [
        "line 3: phone: phone is not a valid international number (E.164, e.g. +48601234567)",
        "line 3: time_zone: time_zone 'Mars/Base' is not an IANA time zone (e.g. Europe/Warsaw)",
        "line 4: id 'a1' repeats line 2",
        "line 5: consent: unknown channels ['fax'] "
        "(known: email, sms, web_push, mobile_push, onsite, newsletter)",
    ]


def test_machine_opens_count_only_when_the_wait_says_so() -> None:
    events = [ev("opened", "intro", machine=True), ev("opened", "intro", machine=False)]
    assert decisions.find_event(events, [], "opened", "intro") == 1
    assert decisions.find_event(events, [], "opened", "intro", machine=True) == 0


def test_next_step_is_the_chosen_one_else_next_else_the_one_listed_after() -> None:
    spec = JourneySpec.model_validate(
        {
            "id": "j",
            "version": 1,
            "description": "d",
            "trigger": "manual",
            "steps": [
                {"id": "a", "kind": "tag", "add": ["A"], "next": "c"},
                {"id": "b", "kind": "tag", "add": ["B"]},
                {"id": "c", "kind": "end"},
            ],
        }
    )
    a, b, _ = spec.steps
    assert spec.next_of(a, None) == "c"
    assert spec.next_of(a, "b") == "b"
    assert spec.next_of(b, None) == "c"


def test_local_time_waits_count_the_hours_a_dst_change_takes() -> None:
    # Warsaw moves its clocks forward at 02:00 on 2026-03-29: noon UTC on the 28th (13:00 local)
    # to 09:00 local on the 29th (07:00 UTC) is 19 hours, not 20.
    now = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert seconds_until(now, "Europe/Warsaw", "09:00") == 19 * 3600
    assert seconds_until(now, "Europe/Warsaw", "14:00") == 3600


def test_absurdly_long_durations_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="longer than the longest wait"):
        parse_duration("99999999999999w")


def test_csv_ids_that_are_addresses_long_local_parts_and_nul_are_refused() -> None:
    contacts, problems = parse_csv(
        "id,email,notes\n"
        "48-601-234-567,,\n"
        "ann@example.com,,\n"
        f"b1,{'a' * 65}@example.com,\n"
        "b2,,a\x00b\n"
        "12345,,\n"
    )
    assert [c.id for c in contacts] == ["12345"]
    assert [str(p).split(":")[0:2] for p in problems] == [
        ["line 2", " id"],
        ["line 3", " id"],
        ["line 4", " email"],
        ["line 5", " attributes"],
    ]
    assert "looks like a phone number" in str(problems[0])
    assert "looks like an email address" in str(problems[1])
    assert "longer than 64" in str(problems[2])
    assert "NUL" in str(problems[3])
