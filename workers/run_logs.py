"""Every log line an activity writes names the run it works for: its workflow id, run id and
activity type are bound to structlog's context while it runs (journeys.logging merges them in),
so a line in the worker's log leads to the run's history in the Temporal UI."""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)


class BindRunToLogs(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BoundActivity(next)


class _BoundActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        # Each activity runs in a task of its own, so what is bound here is its own.
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id, run_id=info.workflow_run_id, activity=info.activity_type
        ):
            return await super().execute_activity(input)
