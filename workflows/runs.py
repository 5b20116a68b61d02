"""The client side of the journey workflow: start a run, hand an event to runs, read where a
contact stands. The command line, the gateway and the dev stack's demo all call these."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, timedelta
from typing import Literal

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from journeys.identity import CONTACT_ID, JOURNEY_ID, JOURNEY_VERSION, STEP, workflow_id
from journeys.models import JourneyEvent, JourneyInput, JourneyStatus
from journeys.reports.models import JourneyReport
from journeys.spec import WAITING_KINDS, JourneySpec
from journeys.store import ContactStore
from workflows.journey import JourneyWorkflow

StartOutcome = Literal["started", "already"]


async def _start(
    client: Client,
    spec: JourneySpec,
    contact_id: str,
    task_queue: str,
    speed: float,
    first_event: JourneyEvent | None = None,
) -> StartOutcome:
    """Start one run (signal-with-start when an event comes along); never a duplicate."""
    try:
        await client.start_workflow(
            JourneyWorkflow.run,
            JourneyInput(spec=spec, contact_id=contact_id, speed=speed),
            id=workflow_id(spec.id, contact_id),
            task_queue=task_queue,
            # never: a contact who is in, or went through, the journey is not started again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE
            if spec.re_entry == "never"
            else WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=run_search_attributes(spec, contact_id),
            start_signal="event" if first_event else None,
            start_signal_args=[first_event] if first_event else [],
            # What the Temporal UI shows of the run before anyone opens it.
            static_summary=f"{spec.id} v{spec.version} for contact {contact_id}",
            static_details=_details(spec, speed, first_event),
        )
    except WorkflowAlreadyStartedError:
        return "already"
    return "started"


def run_search_attributes(spec: JourneySpec, contact_id: str) -> TypedSearchAttributes:
    """What the Temporal UI and the reports find a run by, set as it starts (the run itself sets
    none of them again)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(JOURNEY_ID, spec.id),
            SearchAttributePair(JOURNEY_VERSION, spec.version),
            SearchAttributePair(CONTACT_ID, contact_id),
        ]
    )


def _details(spec: JourneySpec, speed: float, first_event: JourneyEvent | None) -> str:
    """The journey's description, its trigger and what started this run (paragraphs in Temporal
    markdown). Only the event's kind and time: its data may carry an address."""
    trigger = spec.trigger if spec.active else f"{spec.trigger} (inactive: started by hand only)"
    started = (
        f"event '{first_event.kind}' that happened at "
        f"{first_event.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        if first_event
        else "hand"
    )
    paragraphs = [spec.description, f"Trigger: {trigger}. Started by {started}."]
    if speed != 1:
        paragraphs.append(f"Speed {speed:g}: every wait lasts 1/{speed:g} of its duration.")
    return "\n\n".join(paragraphs)


async def start_journey(
    client: Client, spec: JourneySpec, contact_id: str, task_queue: str, speed: float = 1.0
) -> StartOutcome:
    """Start one run; starting a contact who is already in the journey starts nothing."""
    return await _start(client, spec, contact_id, task_queue, speed)


async def hand_event(
    client: Client,
    library: Iterable[JourneySpec],
    contact_id: str,
    event: JourneyEvent,
    task_queue: str,
    journey_id: str | None = None,
    speed: float = 1.0,
) -> dict[str, str]:
    """Hand an event (already recorded by the caller) to runs: to the run of `journey_id` (the
    one a tracked message came from), or without one to every run of the contact, starting the
    journeys it triggers.

    Returns, per journey, what happened: "started or signalled" or "signalled"; a journey whose
    run is not running is left out.
    """
    if journey_id is not None:
        signalled = await _signal(client, journey_id, contact_id, event)
        return {journey_id: "signalled"} if signalled else {}
    outcome: dict[str, str] = {}
    for spec in library:
        if spec.active and spec.trigger == event.kind:
            # Signal-with-start: a running run gets the event, otherwise a new run starts with it.
            # "already" means the contact went through and may not re-enter.
            if await _start(client, spec, contact_id, task_queue, speed, event) == "started":
                outcome[spec.id] = "started or signalled"
                continue
        if await _signal(client, spec.id, contact_id, event):
            outcome[spec.id] = "signalled"
    return outcome


async def hand_new_event(
    client: Client,
    store: ContactStore,
    library: Iterable[JourneySpec],
    contact_id: str,
    event: JourneyEvent,
    task_queue: str,
    once_id: str,
    speed: float = 1.0,
    journey_id: str | None = None,
) -> dict[str, str] | None:
    """Hand `event` to the contact's runs (`hand_event`) and record it, unless `once_id` was
    handled before: then None, and nothing is done. Should either fail, the id is forgotten, so
    the caller's retry with the same id goes through. `journey_id`: the journey whose message
    the event is about (an open the caller tracked itself), for the journey reports."""
    async with store.first_time(once_id, contact_id) as fresh:
        if not fresh:
            return None
        outcome = await hand_event(client, library, contact_id, event, task_queue, speed=speed)
        # Recorded once it was handed over: a failed handover's retry adds no second row, and a
        # second handover of the same event is ignored by the runs (it carries the same id).
        await store.record_event(contact_id, event, journey_id)
        return outcome


async def _signal(client: Client, journey_id: str, contact_id: str, event: JourneyEvent) -> bool:
    """Signal one run; False when it is not running."""
    handle = client.get_workflow_handle(workflow_id(journey_id, contact_id))
    try:
        await handle.signal(JourneyWorkflow.event, event)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True


async def journey_statuses(
    client: Client, library: Iterable[JourneySpec], contact_id: str
) -> list[tuple[str, WorkflowExecutionStatus | None, JourneyStatus]]:
    """Each run of the contact (latest per journey): Temporal's status and the run's own view."""
    found = []
    for spec in library:
        handle = client.get_workflow_handle(workflow_id(spec.id, contact_id))
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        try:
            status = await handle.query(JourneyWorkflow.status)
        except WorkflowQueryFailedError as err:
            # The run exists but cannot answer (its code no longer replays it): say so.
            status = JourneyStatus(
                journey_id=spec.id,
                journey_version=spec.version,
                contact_id=contact_id,
                current_step=None,
                details=f"its state could not be read: {err}",
                finished=description.status != WorkflowExecutionStatus.RUNNING,
                visits=[],
                events=[],
            )
        found.append((spec.id, description.status, status))
    return found


# How long a report waits for Temporal's counts before it goes without them.
WAITING_COUNTS_TIMEOUT = timedelta(seconds=5)


async def waiting_counts(client: Client, spec: JourneySpec) -> dict[str, int]:
    """How many running runs of the journey wait at each of its waiting steps now, from
    Temporal's visibility (the `Step` search attribute, set where a contact stays), one count
    per step, asked at once."""
    steps = [s.id for s in spec.steps if s.kind in WAITING_KINDS]

    async def count(step: str) -> int:
        # Journey and step ids are slugs ([a-z][a-z0-9_]*): nothing in them needs quoting.
        query = (
            f"{JOURNEY_ID.name} = '{spec.id}' AND {STEP.name} = '{step}' "
            "AND ExecutionStatus = 'Running'"
        )
        return (await client.count_workflows(query)).count

    return dict(zip(steps, await asyncio.gather(*(count(s) for s in steps)), strict=True))


async def with_waiting(
    client: Client | None, spec: JourneySpec, report: JourneyReport
) -> JourneyReport:
    """`report` with each waiting step's `waiting` from Temporal and `live` set; as it was
    (`live` False) when there is no client or Temporal does not answer in time: a report never
    fails for want of Temporal."""
    if client is None:
        return report
    try:
        async with asyncio.timeout(WAITING_COUNTS_TIMEOUT.total_seconds()):
            waiting = await waiting_counts(client, spec)
    except (RPCError, TimeoutError, RuntimeError):
        return report
    steps = [s.model_copy(update={"waiting": waiting.get(s.step_id)}) for s in report.steps]
    return report.model_copy(update={"steps": steps, "live": True})
