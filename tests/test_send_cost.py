"""The send-cost bench (bench/send_cost.py) in short: a few checked sends of each channel through
the real store, SMTP server and Twilio stand-in, each sent (it stops on any other outcome), and a
CPU figure for each, at any hour."""

from __future__ import annotations

import pytest

from bench.send_cost import measure


async def test_every_send_goes_out_and_each_channel_has_its_cpu_per_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Night all day where it runs: the bench's SMS go out all the same, as its workers' do.
    monkeypatch.setenv("JOURNEYS_QUIET_HOURS", "sms=00:00-23:59")

    cost = await measure(5)

    assert set(cost) == {"email", "sms"}
    # A send is milliseconds of work, never none: composing, signing, the ledger's statements.
    assert all(0 < ms < 1000 for ms in cost.values()), cost
