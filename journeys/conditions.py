"""Branch conditions: parsed once at validation, evaluated purely on a contact's facts.

Grammar, one condition per string, optionally prefixed by `not `:
  has_email | has_phone | in_mobile_app | has_web_push | subscribed_newsletter
  opted_in:<channel> | has_tag:<TAG> | in_audience:<name> | nps:<promoter|passive|detractor>
  attribute:<name> <op> <value>     op: == != > >= < <=   value: number, true/false, or text
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

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
_ATTRIBUTE = re.compile(r"^attribute:(?P<name>[\w.-]+)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>.+)$")
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


def _reads(text: str) -> tuple[str, str] | None:
    """What a condition (without `not `) reads: a FactsRequest field and the name within it, or
    ("nps", class) for the run's events; None for no known condition."""
    if text in _FLAGS:
        return _FLAGS[text]
    if match := _ATTRIBUTE.match(text):
        return "attributes", match["name"]
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
    match = _ATTRIBUTE.match(text)
    assert match is not None  # _reads said it is one
    op, expected = _OPS[match["op"]], _literal(match["value"])
    return lambda f, _: _compare(op, f.attributes.get(name), expected)


def facts_needed(contact_id: str, conditions: Sequence[str]) -> FactsRequest:
    """The facts `conditions` read of a contact, and nothing more: a branch loads only these."""
    request = FactsRequest(contact_id=contact_id)
    for condition in conditions:
        reads = _reads(_negations(condition)[1])
        if reads is not None and reads[0] != "nps":
            kind, name = reads
            names: list[str] = getattr(request, kind)
            if name not in names:
                names.append(name)
    return request


def holds(condition: str, facts: ContactFacts, events: Sequence[JourneyEvent]) -> bool:
    return parse(condition)(facts, events)
