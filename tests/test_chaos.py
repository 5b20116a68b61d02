"""The chaos bench (bench/chaos.py) in short: a few dozen runs on the embedded stack while the
worker is killed mid-send, Twilio fails 30% of its requests and the SMTP server goes away."""

from __future__ import annotations

import time

import aiohttp

from bench.chaos import Plan, run_scenario
from devstack.sinks.sms import SmsSink

# 24 contacts, half with a phone: 72 messages, in bursts as the 15 s waits (3 days at this
# speed) time out. Each kill lands while a burst is being sent: intros, then resends and nudges,
# then the follow-up emails; SMTP is away while the second burst goes out.
SHORT = Plan(
    contacts=24,
    speed=17280,
    chaos_seconds=45,
    kill_at_messages=(6, 34, 56),
    temporal_stops=(),
    smtp_down=(14, 5),
    # A bound, not the expected time: the runs complete some 20-60 s after the chaos.
    drain_limit=120,
)


async def test_no_message_is_lost_or_sent_twice_through_worker_kills_and_failing_providers() -> (
    None
):
    began = time.monotonic()
    figures = await run_scenario(
        "short", frozenset({"worker-kills", "twilio-flaky", "smtp-down"}), SHORT
    )
    print(figures.row(), figures.chaos, f"{time.monotonic() - began:.0f} s")
    assert figures.chaos[0] == "SMTP server down 5 s"
    assert figures.chaos[2] == "worker SIGKILLed 3 times"
    assert (figures.unfinished, figures.tally.expected, figures.tally.delivered) == (0, 72, 72)
    assert (figures.tally.lost, figures.tally.duplicates, figures.undecided) == (0, 0, 0)


async def test_a_flaky_stand_in_fails_the_share_of_posts_it_is_told() -> None:
    sms = SmsSink()
    await sms.start()
    sms.be_flaky(0.3, seed=7)
    async with aiohttp.ClientSession() as http:
        statuses = [
            (await http.post(f"{sms.base_url}/2010-04-01/Accounts/ACdev/Messages.json")).status
            for _ in range(200)
        ]
    await sms.stop()
    failed = [s for s in statuses if s in (500, 429)]
    assert 40 <= len(failed) <= 80 and {500, 429} <= set(failed)
    assert sms.flaky_failures == len(failed)
