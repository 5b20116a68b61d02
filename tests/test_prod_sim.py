"""The production simulation (devstack/prod_sim.py) at a small size: two workers and two gateways
on one PostgreSQL store, outside dev, a worker killed mid-send, a backlog in the outbox left to
both gateways at once."""

from __future__ import annotations

from pathlib import Path

from devstack.prod_sim import BACKLOG_PER_CONTACT, SimPlan, simulate

CONTACTS = 12


async def test_the_production_shape_sends_each_message_once_and_hands_each_event_once(
    tmp_path: Path,
) -> None:
    figures = await simulate(SimPlan(contacts=CONTACTS), tmp_path)
    print(figures.summary())
    assert figures.failures() == []
    # Every other contact has a phone: 2 or 4 messages on the paths without an open, 3 with.
    assert figures.unfinished == 0 and figures.tally.expected >= 2 * CONTACTS
    assert figures.tally.delivered == figures.tally.expected
    assert (figures.tally.lost, figures.tally.duplicates, figures.undecided) == (0, 0, 0)
    assert figures.backlog == figures.backlog_handed_once == BACKLOG_PER_CONTACT * CONTACTS
    assert (figures.handed_twice, figures.held_left) == (0, 0)
    # Every third contact opened the intro and clicked: 4 opens and 4 clicks.
    assert figures.tracked_recorded == figures.tracked_handed == 8
    assert figures.api_handed == figures.api_events == CONTACTS
    assert figures.worker_kills == 1 and figures.own_exits == {}
    # Both gateways handed over events; which of them drained the outbox after the thaw is up
    # to the scheduler (on a busy machine one may take all of it): the summary says.
    assert figures.signals_by["gateway-1"] and figures.signals_by["gateway-2"]
