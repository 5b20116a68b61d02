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
