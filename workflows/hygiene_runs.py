"""The client side of data hygiene: a run started by hand (`journeys hygiene run`), and the
Temporal Schedule `hygiene` that starts one every night (`journeys hygiene schedule`). The
schedule skips a start while a run of its own is still going: two scheduled runs never overlap."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from journeys.hygiene.changes import HygienePolicy
from journeys.hygiene.runs import HYGIENE, HygieneInput, HygieneReport
from journeys.settings import Settings
from workflows.hygiene import HygieneWorkflow

# A night missed (the cluster down at 3 a.m.) is made up once it is back, within a day.
CATCHUP_WINDOW = timedelta(days=1)


class BadCron(ValueError):
    """Temporal refused the cron expression; the message says why."""


def policy_from(settings: Settings, dry_run: bool = False) -> HygienePolicy:
    return HygienePolicy(
        default_region=settings.hygiene_region,
        sunset_after_days=settings.sunset_days,
        check_deliverability=settings.check_deliverability,
        dry_run=dry_run,
    )


@dataclass
class HygieneRun:
    workflow_id: str
    # None when the caller did not wait for it.
    report: HygieneReport | None


async def run_hygiene(
    client: Client, settings: Settings, policy: HygienePolicy, wait: bool
) -> HygieneRun:
    """Start a hygiene run now, and wait for its report when `wait`."""
    handle = await client.start_workflow(
        HygieneWorkflow.run,
        HygieneInput(policy=policy),
        id=f"{HYGIENE}-{uuid.uuid4().hex[:12]}",
        task_queue=settings.task_queue,
        static_summary="data hygiene" + (" (dry run)" if policy.dry_run else ""),
    )
    return HygieneRun(handle.id, await handle.result() if wait else None)


async def ensure_schedule(client: Client, settings: Settings, cron: str) -> ScheduleDescription:
    """Create the `hygiene` schedule, or update its times and what it starts (a pause an
    operator set stays); describe it. BadCron when Temporal refuses `cron`."""
    action = ScheduleActionStartWorkflow(
        HygieneWorkflow.run,
        HygieneInput(policy=policy_from(settings)),
        id=HYGIENE,  # Temporal appends the scheduled time
        task_queue=settings.task_queue,
        static_summary="data hygiene (scheduled)",
    )
    spec = ScheduleSpec(cron_expressions=[cron])
    policy = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW)

    def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = current.description.schedule
        return ScheduleUpdate(
            schedule=dataclasses.replace(schedule, action=action, spec=spec, policy=policy)
        )

    handle = client.get_schedule_handle(HYGIENE)
    try:
        await client.create_schedule(HYGIENE, Schedule(action=action, spec=spec, policy=policy))
    except ScheduleAlreadyRunningError:
        await handle.update(updated)
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            raise BadCron(err.message) from None
        raise
    return await handle.describe()
