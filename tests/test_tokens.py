"""Tokens verify as they were signed, character for character."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from journeys.tokens import OPEN, BadToken, make_token, read_token

SECRET = "test-secret"


def test_a_token_reads_back() -> None:
    assert read_token(SECRET, OPEN, make_token(SECRET, OPEN, {"a": 1}), 60) == {"a": 1}


@pytest.mark.parametrize(
    "alter",
    [
        lambda t: t + "==",
        lambda t: t + "=",
        lambda t: t + "é",
        lambda t: t[:-1] + "ł" + t[-1],
        lambda t: " " + t,
        lambda t: t + "\n",
        lambda t: t.replace(".", "..", 1),
    ],
)
def test_anything_appended_or_outside_the_alphabet_is_refused(alter: Callable[[str], str]) -> None:
    token = make_token(SECRET, OPEN, {"a": 1})
    with pytest.raises(BadToken):
        read_token(SECRET, OPEN, alter(token), 60)
