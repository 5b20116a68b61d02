"""What the outside world may hand in, checked once at the boundary (the gateway, the command
line, the CSV import): text that every store and Temporal's JSON can carry, and sizes that fit in a
run's history. Anything the checks let through can be stored, serialized and replayed."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

# A request body, checked before it is parsed (and before the API key is): the largest legitimate
# one is a batch of contacts (gateway.api.contacts.MAX_BATCH) with small attributes.
MAX_BODY_BYTES = 2 * 1024 * 1024
# A contact's attributes travel to every branch of its runs (ContactFacts, an activity result) and
# an event's data stays in the run's state: Temporal refuses payloads over 2 MB, and a run's whole
# history is bounded too, so both stay small.
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_EVENT_DATA_BYTES = 16 * 1024
# A run's waits are divided by its speed: below this a day's wait lasts years and the run blocks
# re-entry; above it a year's wait is over in half a minute, which is a demo's limit.
MIN_SPEED = 0.001
MAX_SPEED = 1_000_000.0
Speed = Annotated[
    float,
    Field(
        strict=True,
        ge=MIN_SPEED,
        le=MAX_SPEED,
        allow_inf_nan=False,
        description=f"Divides every wait of the run (demos, previews); 1 is real time; "
        f"from {MIN_SPEED:g} to {MAX_SPEED:g}",
    ),
]

Location = tuple[str | int, ...]


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as it is, or None. A lone UTF-16 surrogate (JSON's "\\ud800")
    is not Unicode: neither UTF-8 nor Temporal's JSON can carry it. PostgreSQL refuses NUL."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate: not Unicode text"
    return None


def find_bad_text(value: Any, loc: Location = ()) -> tuple[Location, str] | None:
    """The first string (key or value) in a parsed JSON value that `text_problem` refuses."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (loc, problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key) if isinstance(key, str) else None
            if problem:
                return (loc, f"a key {problem}")
            found = find_bad_text(item, (*loc, key))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = find_bad_text(item, (*loc, index))
            if found:
                return found
    return None


def check_json_object(value: dict[str, Any], max_bytes: int, what: str) -> dict[str, Any]:
    """`value` if its text is storable and it is at most `max_bytes` as UTF-8 JSON; ValueError."""
    found = find_bad_text(value)
    if found:
        loc, problem = found
        at = ".".join(str(part) for part in loc)
        raise ValueError(f"{what}{'.' + at if at else ''}: {problem}")
    size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    if size > max_bytes:
        raise ValueError(f"{what} is {size} bytes as JSON, more than {max_bytes}")
    return value
