"""bench/history_cost.py against a history counted by hand: lead_nurturing v2, the contact who
opens the intro (tests/histories/lead_nurturing_v2__opened.json)."""

from __future__ import annotations

import json
from collections import Counter

from bench.history_cost import HISTORIES, history_cost, latest_histories


def test_a_run_is_counted_as_temporal_cloud_bills_it() -> None:
    events = json.loads((HISTORIES / "lead_nurturing_v2__opened.json").read_text())["events"]

    cost = history_cost(events)

    assert (cost.events, cost.workflow_tasks, cost.timers, cost.signals) == (57, 8, 2, 1)
    assert cost.activities == Counter(send_email=3, change_tags=1)
    assert cost.local_activities == Counter(send_window=3, record_path=3)
    assert (cost.patches, cost.upserts) == (2, 6)
    # Eight markers in six workflow tasks: six Actions, not eight.
    assert cost.marker_tasks == 6
    # The start, 4 activities, 2 timers, 1 signal, 6 upserts, 6 marker tasks.
    assert cost.actions == 20
    assert (cost.bookkeeping_events, cost.bookkeeping_actions) == (14, 12)
    # The journey's spec and the contact's entry in the start (3,927 bytes, encrypted) and
    # the rest.
    assert cost.payload_bytes == 9814


def test_only_each_journeys_latest_version_is_counted() -> None:
    latest = latest_histories()

    assert {p.name for p in latest["lead_nurturing"]} == {
        f"lead_nurturing_v2__{path}.json"
        for path in (
            "merged_while_waiting",
            "no_phone_never_opened",
            "no_phone_resend_opened",
            "opened",
            "phone_never_opened",
            "phone_then_followup_opened",
        )
    }
    assert all(p.name.startswith("nps_omnichannel_v3__") for p in latest["nps_omnichannel"])
