"""The send-cost bench (bench/send_cost.py) in short: a few checked sends of each channel through
the real store, SMTP server and Twilio stand-in, each sent (it stops on any other outcome), and a
CPU figure for each."""

from __future__ import annotations

from bench.send_cost import measure


async def test_every_send_goes_out_and_each_channel_has_its_cpu_per_send() -> None:
    cost = await measure(5)

    assert set(cost) == {"email", "sms"}
    # A send is milliseconds of work, never none: composing, signing, the ledger's statements.
    assert all(0 < ms < 1000 for ms in cost.values()), cost
