"""Record a replay history for every scenario in `tests/scenarios.py`, every plan path in
`tests/plan_scenarios.py`, a hygiene run (`hygiene__clean_dedup_report.json`, the contacts
of `tests/test_hygiene_workflow.py`) and sends held back and skipped by the send window (the
journeys of `tests/test_send_window_runs.py`): `make histories` (`python -m tests.record_histories
--plans`: the plans' only; `--missing`: only the paths that have none yet, leaving the others
as the runs in flight recorded them).

Run it after a deliberate change to the workflow's commands (guarded by `workflow.patched()`),
never to make a failing replay test pass by hiding the change.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from bench.history_cost import CURRENT, HISTORIES
from devstack.embedded import test_server_path
from devstack.sinks.mail import MailSink
from devstack.sinks.push import FcmSink, WebPushSink, new_vapid_key, settings_for
from devstack.sinks.sms import SmsSink
from journeys.hygiene.changes import HygienePolicy
from journeys.identity import register_search_attributes
from journeys.library import load_journey
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import open_store
from tests.channel_fixtures import NO_SEND_WINDOW, TWILIO_SID, TWILIO_TOKEN, sink_settings
from tests.plan_fixtures import plan_stack
from tests.plan_scenarios import PLAN_SCENARIOS, PlanScenario
from tests.push_fixtures import FCM_PROJECT, FCM_TOKEN
from tests.scenarios import SCENARIOS, Scenario, assert_outcome, play
from tests.temporal_fixtures import CONVERTER, Stack, running_stack
from tests.test_hygiene_workflow import add_people, hygiene, hygiene_worker
from tests.test_send_window_runs import AT_23, DONE, TEXT, journey, left, sent_first, start

# Journey runs as a worker records them now (bench.history_cost.CURRENT): those recorded before
# stay in HISTORIES and its other folders as the runs then in flight recorded them, and must
# replay.
JOURNEY_HISTORIES = CURRENT


def history_path(scenario: Scenario) -> Path:
    """`<journey>__<scenario>.json`, `<journey>_v<N>__<scenario>.json` from version 2 on: the
    histories of earlier versions stay, as runs started on them must keep replaying."""
    version = load_journey(LIBRARY_DIR / f"{scenario.journey}.yaml", LIBRARY_DIR).version
    journey = scenario.journey if version == 1 else f"{scenario.journey}_v{version}"
    return JOURNEY_HISTORIES / f"{journey}__{scenario.name}.json"


# A hygiene run through every phase, in batches of 4 (several batches a phase).
HYGIENE_HISTORY = HISTORIES / "hygiene__clean_dedup_report.json"


async def record_hygiene(env: WorkflowEnvironment) -> None:
    queue = "record-hygiene"
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(f"sqlite:///{Path(tmp) / 'journeys.db'}")
        try:
            await add_people(store, await env.get_current_time())
            async with hygiene_worker(env, store, Settings(env="dev"), queue):
                workflow_id, _ = await hygiene(env.client, queue, HygienePolicy(batch_size=4))
            history = await env.client.get_workflow_handle(workflow_id).fetch_history()
        finally:
            await store.close()
    HYGIENE_HISTORY.write_text(history.to_json())
    print(f"recorded {HYGIENE_HISTORY.relative_to(Path.cwd())}")


def plan_history_path(scenario: PlanScenario) -> Path:
    """`plan_<template>__<path>.json`."""
    return HISTORIES / f"plan_{scenario.name}.json"


async def record_plans(env: WorkflowEnvironment, scenarios: list[PlanScenario]) -> None:
    for scenario in scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            mail, sms = MailSink(), SmsSink(TWILIO_SID, TWILIO_TOKEN)
            for sink in (mail, sms):
                await sink.start()
            settings = sink_settings(Path(tmp), mail, sms)
            store = await open_store(settings.database_url)
            try:
                async with plan_stack(env, store, settings, mail) as plans:
                    plan_id = await scenario.play(plans)
                    history = await env.client.get_workflow_handle(plan_id).fetch_history()
            finally:
                await store.close()
                for sink in (mail, sms):
                    await sink.stop()
        path = plan_history_path(scenario)
        path.write_text(history.to_json())
        print(f"recorded {path.relative_to(Path.cwd())}")


@asynccontextmanager
async def recording_stack(env: WorkflowEnvironment, **settings: str) -> AsyncIterator[Stack]:
    """A worker with its store and stand-ins, all its own; `settings` over the sinks' settings
    (which hold no message back: see SEND_WINDOW_HISTORIES)."""
    with tempfile.TemporaryDirectory() as tmp:
        mail, sms = MailSink(), SmsSink(TWILIO_SID, TWILIO_TOKEN)
        web_push, fcm = WebPushSink(), FcmSink(FCM_PROJECT, FCM_TOKEN)
        for sink in (mail, sms, web_push, fcm):
            await sink.start()
        recording = sink_settings(Path(tmp), mail, sms).model_copy(
            update=settings_for(fcm, new_vapid_key()[0]) | settings
        )
        store = await open_store(recording.database_url)
        try:
            async with running_stack(env, store, recording, mail, sms, web_push, fcm) as stack:
                yield stack
        finally:
            await store.close()
            for sink in (mail, sms, web_push, fcm):
                await sink.stop()


def save(history: WorkflowHistory, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(history.to_json())
    print(f"recorded {path.relative_to(Path.cwd())}")


# Sends the send window holds back and skips (the journeys of tests/test_send_window_runs.py),
# apart from the library's paths, which bench.history_cost counts.
SEND_WINDOW_HISTORIES = JOURNEY_HISTORIES / "send-window"
HELD_UNTIL_MORNING = SEND_WINDOW_HISTORIES / "late_sms__held_until_morning.json"
SKIPPED_OVER_THE_CAP = SEND_WINDOW_HISTORIES / "second__skipped_over_the_cap.json"


async def record_send_windows(env: WorkflowEnvironment) -> None:
    async with recording_stack(env, quiet_hours="", frequency_caps=NO_SEND_WINDOW) as night:
        handle = await start(night, journey("late_sms", AT_23, TEXT, DONE))
        assert left(await handle.result(), "text").outcome == "sent"
        save(await handle.fetch_history(), HELD_UNTIL_MORNING)
    async with recording_stack(env, quiet_hours=NO_SEND_WINDOW, frequency_caps="") as capped:
        first = await sent_first(capped, {"id": "pause", "kind": "wait", "duration": "7d"})
        handle = await start(capped, journey("second", TEXT | {"when_capped": "skip"}, DONE))
        assert left(await handle.result(), "text").outcome.startswith("skipped")
        await first.result()
        save(await handle.fetch_history(), SKIPPED_OVER_THE_CAP)


async def record(
    scenarios: list[Scenario],
    plans: list[PlanScenario],
    with_hygiene: bool,
    with_send_windows: bool,
) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=CONVERTER
    )
    await register_search_attributes(env.client, "default")
    try:
        for scenario in scenarios:
            async with recording_stack(env) as stack:
                handle, result = await play(stack, scenario)
                # Only a history of the path the seed describes is worth keeping.
                await assert_outcome(stack, scenario, result)
                save(await handle.fetch_history(), history_path(scenario))
        await record_plans(env, plans)
        if with_hygiene:
            await record_hygiene(env)
        if with_send_windows:
            await record_send_windows(env)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    missing = "--missing" in sys.argv[1:]
    asyncio.run(
        record(
            []
            if "--plans" in sys.argv[1:]
            else [s for s in SCENARIOS if not (missing and history_path(s).is_file())],
            [p for p in PLAN_SCENARIOS if not (missing and plan_history_path(p).is_file())],
            with_hygiene="--plans" not in sys.argv[1:]
            and not (missing and HYGIENE_HISTORY.is_file()),
            with_send_windows="--plans" not in sys.argv[1:]
            and not (missing and HELD_UNTIL_MORNING.is_file() and SKIPPED_OVER_THE_CAP.is_file()),
        )
    )
