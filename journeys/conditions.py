"""Branch conditions: parsed once at validation, evaluated purely on a contact's facts.

Grammar, one condition per string, optionally prefixed by `not `:
  has_email | has_phone | in_mobile_app | has_web_push | subscribed_newsletter
  opted_in:<channel> | has_tag:<TAG> | in_audience:<name> | nps:<promoter|passive|detractor>
  attribute:<name> <op> <value>     op: == != > >= < <=   value: number, true/false, or text
  grade:<A-D> | grade_in:[C,D]      the contact's current lead grade (journeys.leads)
  score <op> <number>               the contact's current engagement score, e.g. score>=40
  count:<event kind> within <N>d <op> <M>
                                    how many events of that kind the contact had in the N days
                                    up to the run's clock, e.g. count:purchase within 180d == 1
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, get_args

from journeys.models import ContactFacts, FactsRequest, JourneyEvent

Predicate = Callable[[ContactFacts, Sequence[JourneyEvent]], bool]

# What each flag reads: a boolean field of ContactFacts, or a consent.
_FLAGS: dict[str, tuple[str, str]] = {
    "has_email": ("flags", "has_email"),
    "has_phone": ("flags", "has_phone"),
    "in_mobile_app": ("flags", "in_mobile_app"),
    "has_web_push": ("flags", "web_push"),
    "subscribed_newsletter": ("consent", "newsletter"),
}
# name:<arg> conditions and the facts they read.
_NAMED = {"opted_in": "consent", "has_tag": "tags", "in_audience": "audiences", "nps": "nps"}
NPS_CLASSES = ("promoter", "passive", "detractor")
_OP = r"(?P<op>==|!=|>=|<=|>|<)"
_ATTRIBUTE = re.compile(rf"^attribute:(?P<name>[\w.-]+)\s*{_OP}\s*(?P<value>.+)$")
# Lead grades (journeys.leads), best first.
Grade = Literal["A", "B", "C", "D"]
GRADES: tuple[Grade, ...] = get_args(Grade)
_GRADE_IN = re.compile(r"^grade_in:\[(?P<grades>[^\]]*)\]$")
_SCORE = re.compile(rf"^score\s*{_OP}\s*(?P<value>\S+)$")
_COUNT = re.compile(
    rf"^count:(?P<kind>[a-z][a-z0-9_]*)\s+within\s+(?P<window>\S+)\s*{_OP}\s*(?P<value>\S+)$"
)
_WINDOW = re.compile(r"^(?P<days>\d+)d$")
# Ten years: a longer window is surely a mistake (and far longer ones overflow date arithmetic).
MAX_WINDOW_DAYS = 3660
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


class UnknownCondition(ValueError):
    pass


def nps_class(score: int) -> str:
    """Promoters answer 9-10, passives 7-8, detractors 0-6."""
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def _latest_nps(events: Sequence[JourneyEvent]) -> str | None:
    for event in reversed(events):
        if event.kind == "nps_answered" and isinstance(event.data.get("score"), int):
            return nps_class(event.data["score"])
    return None


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text.strip().strip("'\"")


def _compare(op: Callable[[Any, Any], bool], actual: Any, expected: Any) -> bool:
    try:
        return actual is not None and op(actual, expected)
    except TypeError:  # "abc" > 3: a mismatch of types never holds
        return False


def _grades(text: str) -> list[str] | None:
    """The grades a `grade:` or `grade_in:` condition accepts; None for another condition."""
    if text.startswith("grade:"):
        letters = [text.removeprefix("grade:").strip()]
    elif text.startswith("grade_in:"):
        match = _GRADE_IN.match(text)
        if match is None:
            raise UnknownCondition(f"'{text}': write the grades in brackets, e.g. grade_in:[C,D]")
        letters = [g.strip() for g in match["grades"].split(",") if g.strip()]
    else:
        return None
    unknown = [g for g in letters if g not in GRADES]
    if unknown or not letters:
        what = f"unknown grade '{unknown[0]}'" if unknown else "no grade named"
        raise UnknownCondition(f"'{text}': {what} (grades are {', '.join(GRADES)})")
    return letters


def _number(text: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise UnknownCondition(f"'{text}': '{value}' is not a number")
    return number


def _count(text: str) -> tuple[str, int, str, int] | None:
    """A `count:` condition's event kind, window in days, operator and count; None for another
    condition."""
    if not text.startswith("count:"):
        return None
    match = _COUNT.match(text)
    if match is None:
        raise UnknownCondition(
            f"'{text}': write a count as count:<event kind> within <N>d <op> <M>, "
            "e.g. count:purchase within 180d == 1"
        )
    window = _WINDOW.match(match["window"])
    if window is None or not 1 <= int(window["days"]) <= MAX_WINDOW_DAYS:
        raise UnknownCondition(
            f"'{text}': the window '{match['window']}' is not a number of days "
            f"from 1d to {MAX_WINDOW_DAYS}d"
        )
    if not match["value"].isdigit():
        raise UnknownCondition(f"'{text}': '{match['value']}' is not a whole number of events")
    return match["kind"], int(window["days"]), match["op"], int(match["value"])


def reads_attribute(condition: str) -> bool:
    """Whether `condition` is an `attribute:` condition (negated or not)."""
    return _ATTRIBUTE.match(_negations(condition)[1]) is not None


def count_key(kind: str, days: int) -> str:
    """How a behaviour count is named in FactsRequest.counts and ContactFacts.counts."""
    return f"{kind}/{days}"


def counted_kind(condition: str) -> str | None:
    """The event kind a `count:` condition counts (for validation to know it is produced)."""
    count = _count(_negations(condition)[1])
    return count[0] if count else None


def _reads(text: str) -> tuple[str, str] | None:
    """What a condition (without `not `) reads: a FactsRequest field and the name within it,
    ("grade", "") for the grade and score, or ("nps", class) for the run's events; None for no
    known condition. A malformed grade, score or count condition raises UnknownCondition."""
    if text in _FLAGS:
        return _FLAGS[text]
    if match := _ATTRIBUTE.match(text):
        return "attributes", match["name"]
    if _grades(text) is not None:
        return "grade", ""
    if match := _SCORE.match(text):
        _number(text, match["value"])
        return "grade", ""
    if count := _count(text):
        return "counts", count_key(count[0], count[1])
    name, _, arg = text.partition(":")
    if arg and name in _NAMED and (name != "nps" or arg in NPS_CLASSES):
        return _NAMED[name], arg
    return None


def _negations(condition: str) -> tuple[int, str]:
    text, count = condition.strip(), 0
    while text.startswith("not "):
        text, count = text[4:].strip(), count + 1
    return count, text


def parse(condition: str) -> Predicate:
    """Turn a condition string into a predicate, or raise UnknownCondition saying why."""
    negations, text = _negations(condition)
    reads = _reads(text)
    if reads is None:
        known = ", ".join(
            [
                *_FLAGS,
                "opted_in:<channel>",
                "has_tag:<TAG>",
                "in_audience:<name>",
                "nps:<promoter|passive|detractor>",
                "attribute:<name> <op> <value>",
                "grade:<A-D>",
                "grade_in:[<A-D>,...]",
                "score <op> <number>",
                "count:<event kind> within <N>d <op> <M>",
            ]
        )
        raise UnknownCondition(f"unknown condition '{condition}' (known: {known})")
    predicate = _predicate(text, *reads)
    if negations % 2:
        return lambda f, e: not predicate(f, e)
    return predicate


def _predicate(text: str, kind: str, name: str) -> Predicate:
    if kind == "flags":
        return lambda f, _: bool(getattr(f, name))
    if kind == "consent":
        return lambda f, _: f.consent.get(name, False)
    if kind == "tags":
        return lambda f, _: name in f.tags
    if kind == "audiences":
        return lambda f, _: name in f.audiences
    if kind == "nps":
        return lambda _, e: _latest_nps(e) == name
    if kind == "grade":
        if (grades := _grades(text)) is not None:
            return lambda f, _: f.grade in grades
        score = _SCORE.match(text)
        assert score is not None  # _reads said it is one
        op, expected = _OPS[score["op"]], _number(text, score["value"])
        return lambda f, _: _compare(op, f.score, expected)
    if kind == "counts":
        count = _count(text)
        assert count is not None
        op, expected = _OPS[count[2]], count[3]
        # No events of the kind in the window is a count of 0, not an unknown.
        return lambda f, _: op(f.counts.get(name, 0), expected)
    match = _ATTRIBUTE.match(text)
    assert match is not None  # _reads said it is one
    op, expected = _OPS[match["op"]], _literal(match["value"])
    return lambda f, _: _compare(op, f.attributes.get(name), expected)


def facts_needed(
    contact_id: str, conditions: Sequence[str], at: datetime | None = None
) -> FactsRequest:
    """The facts `conditions` read of a contact, and nothing more: a branch loads only these.
    `at` is the run's clock, where the windows of behaviour counts end."""
    request = FactsRequest(contact_id=contact_id, at=at)
    for condition in conditions:
        reads = _reads(_negations(condition)[1])
        if reads is None or reads[0] == "nps":
            continue
        kind, name = reads
        if kind == "grade":
            request.grade = True
            continue
        names: list[str] = getattr(request, kind)
        if name not in names:
            names.append(name)
    return request


def holds(condition: str, facts: ContactFacts, events: Sequence[JourneyEvent]) -> bool:
    return parse(condition)(facts, events)
