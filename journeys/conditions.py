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

from journeys.models import ContactFacts, JourneyEvent

Predicate = Callable[[ContactFacts, Sequence[JourneyEvent]], bool]

_FLAGS: dict[str, Predicate] = {
    "has_email": lambda f, _: f.has_email,
    "has_phone": lambda f, _: f.has_phone,
    "in_mobile_app": lambda f, _: f.in_mobile_app,
    "has_web_push": lambda f, _: f.web_push,
    "subscribed_newsletter": lambda f, _: f.consent.get("newsletter", False),
}
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


def parse(condition: str) -> Predicate:
    """Turn a condition string into a predicate, or raise UnknownCondition saying why."""
    text = condition.strip()
    if text.startswith("not "):
        inner = parse(text[4:])
        return lambda f, e: not inner(f, e)
    if text in _FLAGS:
        return _FLAGS[text]
    if match := _ATTRIBUTE.match(text):
        name, op, expected = match["name"], _OPS[match["op"]], _literal(match["value"])
        return lambda f, _: _compare(op, f.attributes.get(name), expected)
    name, _, arg = text.partition(":")
    if arg:
        if name == "opted_in":
            return lambda f, _: f.consent.get(arg, False)
        if name == "has_tag":
            return lambda f, _: arg in f.tags
        if name == "in_audience":
            return lambda f, _: arg in f.audiences
        if name == "nps" and arg in NPS_CLASSES:
            return lambda _, e: _latest_nps(e) == arg
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


def holds(condition: str, facts: ContactFacts, events: Sequence[JourneyEvent]) -> bool:
    return parse(condition)(facts, events)
