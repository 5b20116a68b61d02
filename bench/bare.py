"""The baseline: bare Temporal, no project code. A workflow waits for a signal, then runs one
activity; the activity notes when it started. Same server, same rate as the journey bench."""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity, workflow

# perf_counter() when each run's activity started, by workflow id (the bench reads it).
STARTED: dict[str, float] = {}


@activity.defn
async def note_start(run: str) -> None:
    STARTED[run] = time.perf_counter()


@workflow.defn
class BareWorkflow:
    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._go)
        await workflow.execute_activity(
            note_start, workflow.info().workflow_id, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class BareListener:
    """Takes signals until told to stop: each signal is one short workflow task, as an open is
    for a journey that only listens (bench/gateway_capacity.py)."""

    def __init__(self) -> None:
        self._heard = 0
        self._stop = False

    @workflow.signal
    def hear(self) -> None:
        self._heard += 1

    @workflow.signal
    def stop(self) -> None:
        self._stop = True

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self._stop)
        return self._heard
