"""What one run of each journey costs Temporal, counted from its recorded history: history
events, workflow tasks, activities, local activities, timers, signals, search-attribute
upserts, the Temporal Cloud Actions they come to, and the bytes of their payloads.

    .venv/bin/python -m bench.history_cost [HISTORY.json ...]

Without arguments: every history under tests/histories/ of each journey's latest version (the
paths the replay tests keep, recorded from real runs). Actions are counted as Temporal Cloud
bills them (docs.temporal.io/cloud/actions): the start, every activity scheduled and every
retry of it, every timer started, every signal received, every search-attribute upsert, and
the markers (local activities, patches) of one workflow task as one Action together. Queries
and reads of visibility are not in a history and are left out.

`bookkeeping` is what the engine adds to the same path written by hand: its search-attribute
upserts (the Temporal UI's Step, Channel and Outcome columns) and its markers (patches, and the
local activities that check send windows and record paths for the reports).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.journey import CHECKED_SENDS_PATCH

HISTORIES = Path(__file__).parent.parent / "tests" / "histories"
# Runs as a worker records them now (tests/record_histories.py), in a folder named after the
# patch whose marker a run records at its start.
CURRENT = HISTORIES / CHECKED_SENDS_PATCH
# `<journey>__<path>.json`, `<journey>_v<N>__<path>.json`.
HISTORY_NAME = re.compile(r"(?P<journey>[a-z0-9_]+?)(?:_v(?P<version>\d+))?__(?P<path>.+)\.json")


@dataclass
class HistoryCost:
    events: int = 0
    workflow_tasks: int = 0
    activities: Counter[str] = field(default_factory=Counter)
    activity_retries: int = 0
    local_activities: Counter[str] = field(default_factory=Counter)
    patches: int = 0
    timers: int = 0
    signals: int = 0
    upserts: int = 0
    # Workflow tasks that recorded at least one marker: one Action each.
    marker_tasks: int = 0
    # Of payloads (inputs, results, markers, search attributes) as the codec left them: what
    # Temporal stores beside the events themselves.
    payload_bytes: int = 0

    @property
    def actions(self) -> int:
        return (
            1
            + sum(self.activities.values())
            + self.activity_retries
            + self.timers
            + self.signals
            + self.upserts
            + self.marker_tasks
        )

    @property
    def bookkeeping_events(self) -> int:
        return self.upserts + self.patches + sum(self.local_activities.values())

    @property
    def bookkeeping_actions(self) -> int:
        return self.upserts + self.marker_tasks


def _marker_activity(attributes: dict[str, Any]) -> str:
    """The activity type of a local activity's marker (its details are plain JSON)."""
    payload = attributes["details"]["data"]["payloads"][0]["data"]
    return str(json.loads(base64.b64decode(payload))["activity_type"])


def _payload_bytes(value: Any) -> int:
    """The bytes of every payload's data in an event (base64 in Temporal's JSON form)."""
    if isinstance(value, list):
        return sum(_payload_bytes(v) for v in value)
    if not isinstance(value, dict):
        return 0
    if "metadata" in value and isinstance(value.get("data"), str):
        return len(base64.b64decode(value["data"]))
    return sum(_payload_bytes(v) for v in value.values())


def history_cost(events: list[dict[str, Any]]) -> HistoryCost:
    """The cost of one run from its history's events (Temporal's JSON form)."""
    cost = HistoryCost(events=len(events))
    marker_tasks: set[str] = set()
    for event in events:
        cost.payload_bytes += _payload_bytes(event)
        kind = event["eventType"].removeprefix("EVENT_TYPE_")
        if kind == "WORKFLOW_TASK_COMPLETED":
            cost.workflow_tasks += 1
        elif kind == "ACTIVITY_TASK_SCHEDULED":
            cost.activities[
                event["activityTaskScheduledEventAttributes"]["activityType"]["name"]
            ] += 1
        elif kind == "ACTIVITY_TASK_STARTED":
            cost.activity_retries += (
                int(event["activityTaskStartedEventAttributes"].get("attempt", 1)) - 1
            )
        elif kind == "TIMER_STARTED":
            cost.timers += 1
        elif kind == "WORKFLOW_EXECUTION_SIGNALED":
            cost.signals += 1
        elif kind == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
            cost.upserts += 1
        elif kind == "MARKER_RECORDED":
            attributes = event["markerRecordedEventAttributes"]
            marker_tasks.add(attributes["workflowTaskCompletedEventId"])
            if attributes["markerName"] == "core_local_activity":
                cost.local_activities[_marker_activity(attributes)] += 1
            else:
                cost.patches += 1
    cost.marker_tasks = len(marker_tasks)
    return cost


def latest_histories(folder: Path = CURRENT) -> dict[str, list[Path]]:
    """Each journey's histories of its latest recorded version, by journey."""
    found: dict[str, dict[int, list[Path]]] = {}
    for path in sorted(folder.glob("*.json")):
        if match := HISTORY_NAME.fullmatch(path.name):
            version = int(match["version"] or 1)
            found.setdefault(match["journey"], {}).setdefault(version, []).append(path)
    return {journey: versions[max(versions)] for journey, versions in sorted(found.items())}


def _row(name: str, cost: HistoryCost) -> str:
    local = sum(cost.local_activities.values())
    kb = cost.payload_bytes / 1000
    return (
        f"{name[:57]:<58}{cost.events:>7}{cost.workflow_tasks:>6}{sum(cost.activities.values()):>6}"
        f"{local:>6}{cost.timers:>7}{cost.signals:>8}{cost.upserts:>8}{cost.actions:>8}"
        f"{cost.bookkeeping_events:>8}{cost.bookkeeping_actions:>8}{kb:>8.1f}"
    )


HEADER = (
    f"{'run (journey: path)':<58}{'events':>7}{'WFTs':>6}{'acts':>6}{'local':>6}{'timers':>7}"
    f"{'signals':>8}{'upserts':>8}{'actions':>8}{'book ev':>8}{'book ac':>8}{'kB':>8}"
)


def main(paths: list[Path]) -> None:
    groups = {"given": paths} if paths else latest_histories()
    print(HEADER)
    for journey, files in groups.items():
        costs = [history_cost(json.loads(f.read_text())["events"]) for f in files]
        for f, cost in zip(files, costs, strict=True):
            print(_row(f.stem, cost))
        if len(costs) > 1:
            mean_events = statistics.fmean(c.events for c in costs)
            mean_actions = statistics.fmean(c.actions for c in costs)
            mean_kb = statistics.fmean(c.payload_bytes for c in costs) / 1000
            print(
                f"  {journey}: mean {mean_events:.1f} events, {mean_actions:.1f} actions, "
                f"{mean_kb:.1f} kB of payloads a run"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="histories (default: the latest)")
    main(parser.parse_args().paths)
