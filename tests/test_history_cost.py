"""bench/history_cost.py against a history counted by hand: lead_nurturing v2, the contact who
opens the intro (tests/histories/lead_nurturing_v2__opened.json)."""

from __future__ import annotations

import json
from collections import Counter

from bench.history_cost import CURRENT, HISTORIES, history_cost, latest_histories


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


def test_a_run_started_now_is_lean_and_its_sends_check_their_window() -> None:
    """The lean-runs and checked-sends patches: against the same path recorded before them
    (phone, never opened: two emails, two SMS, a branch on the contact's facts)."""
    path = "lead_nurturing_v2__phone_never_opened.json"
    before = json.loads((HISTORIES / path).read_text())["events"]
    now = json.loads((CURRENT / path).read_text())["events"]

    was, lean = history_cost(before), history_cost(now)

    assert (was.patches, lean.patches) == (4, 1)
    assert (was.activities["load_contact_facts"], lean.activities["load_contact_facts"]) == (1, 0)
    assert lean.local_activities["load_contact_facts"] == 1
    # Each send checks quiet hours and the cap itself: no local activity before it.
    assert (was.local_activities["send_window"], lean.local_activities["send_window"]) == (4, 0)
    assert (lean.activities["send_email_checked"], lean.activities["send_sms_checked"]) == (2, 2)
    # The journey, its version and the contact come with the start; the run only says where
    # it waits (Step) and which patch it carries (TemporalChangeVersion).
    upserted = [
        sorted(
            e["upsertWorkflowSearchAttributesEventAttributes"]["searchAttributes"]["indexedFields"]
        )
        for e in now
        if e["eventType"] == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"
    ]
    assert upserted == [["TemporalChangeVersion"], ["Step"], ["Step"], ["Step"]]
    assert (was.events, lean.events) == (70, 54)
    assert (was.actions, lean.actions) == (25, 17)
