"""The gateway's outbox: how it hands what people do to Temporal without losing any of it.

Every event is recorded in the store and, in the same transaction, kept in `held_events`; then
it is handed to Temporal and released. What Temporal does not take (down, unreachable,
overloaded, or the gateway stopped first, or died) stays kept and is handed over, oldest first,
once Temporal answers again. Each event carries an id, so one handed over twice (Temporal took it
but its answer was lost) reaches a run once. A person waits for the store's write, and for
Temporal at most HANDOVER_WAIT.

The /v1 API does not go through here: it answers 503 and its caller retries with the same id.

After an event the contact is regraded (journeys.leads) in the background, and a grade change is
handed over like any other kept event.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.deps import Gateway
from journeys.connection import temporal_unavailable
from journeys.leads.grading import UNWEIGHTED, GradingSpec
from journeys.models import JourneyEvent
from journeys.store import HeldEvent

log = structlog.get_logger(__name__)

# How long a response waits for Temporal to take an event. Past it the response goes out and the
# handover carries on in the background.
HANDOVER_WAIT = 1.0
# Longest one attempt may take; well inside LEASE, so no other gateway process hands over an
# event while an attempt at it is still running.
ATTEMPT_LIMIT = 20.0
LEASE = timedelta(minutes=1)
# Held events are looked for this often; while Temporal stays unreachable, ever less often.
RETRY_INTERVAL = 5.0
RETRY_INTERVAL_MAX = 60.0
# Temporal answered but refused one event: the others go on, and that one is tried again this
# much later, so nothing is dropped on a guess.
REFUSED_RETRY = timedelta(minutes=10)
# How often the outbox's depth and oldest age are read for /metrics (a scrape every 15 s or so).
REPORT_INTERVAL = 5.0

_handovers: set[asyncio.Task[None]] = set()


async def hand_over(
    gw: Gateway,
    contact_id: str,
    event: JourneyEvent,
    journey_id: str | None = None,
    once_id: str | None = None,
) -> bool:
    """Keep `event` and hand it to the run of `journey_id` (the one a tracked message came from)
    or, without one, to the contact's runs and the journeys it triggers; wait for Temporal at
    most HANDOVER_WAIT, the rest goes on in the background. With `once_id` (a provider's id for
    what it reports), a report seen before is dropped.

    Returns False only if the event could not be recorded (the store failed; logged): the caller
    may ask its client to retry. Anything else is not the caller's problem.
    """
    try:
        held = await gw.store.keep_event(
            contact_id,
            journey_id,
            event.model_copy(update={"id": uuid.uuid4().hex}),
            LEASE,
            once_id,
        )
    except Exception:
        log.error("event not recorded", kind=event.kind, contact_id=contact_id, exc_info=True)
        return False
    if held is None:
        return True  # reported before
    gw.metrics.count_event(event.kind)
    task = _in_background(_attempt_logged(gw, held))
    if grading := _grading_after(gw, event.kind):
        # The person waits for the handover at most, never for the regrade that follows it.
        _in_background(_regrade_after(gw, grading, task, contact_id))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), HANDOVER_WAIT)
    return True


def regrade_in_background(gw: Gateway, contact_id: str, kind: str | None) -> None:
    """After an event of `kind` was recorded and handed over elsewhere (the /v1 API), or the
    contact was stored (None: its attributes, which fit rules read, may have changed): regrade
    it in the background (see `_regrade`)."""
    if grading := _grading_after(gw, kind):
        _in_background(_regrade(gw, grading, contact_id))


def _grading_after(gw: Gateway, kind: str | None) -> GradingSpec | None:
    """The grading to regrade a contact by after an event of `kind`; None: no regrade."""
    return None if kind in UNWEIGHTED else gw.grading


async def _regrade(gw: Gateway, grading: GradingSpec, contact_id: str) -> None:
    """Regrade the contact, and hand a change over at once. The change's grade_changed event was
    kept in the outbox with the grade, so what this attempt does not hand over is handed over
    later; a regrade that fails or never happens (the process died) is made up by the hygiene
    schedule's."""
    try:
        change = await gw.store.regrade(contact_id, grading, datetime.now(UTC), LEASE)
    except Exception:
        log.warning("contact not regraded", contact_id=contact_id, exc_info=True)
        return
    if change is not None:
        await _attempt_logged(gw, change.held)


def _in_background(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task `finish_handovers` waits for on shutdown."""
    task = asyncio.create_task(work)
    _handovers.add(task)
    task.add_done_callback(_handovers.discard)
    return task


async def _regrade_after(
    gw: Gateway, grading: GradingSpec, handover: asyncio.Task[None], contact_id: str
) -> None:
    # The event reaches runs before the grade change it made.
    await asyncio.wait([handover])
    await _regrade(gw, grading, contact_id)


async def finish_handovers(timeout: float) -> None:  # noqa: ASYNC109 - bounded on purpose
    """On shutdown: let handovers in flight finish for at most `timeout` seconds. What is cut
    off stays kept and is handed over again when its lease is over."""
    if not _handovers:
        return
    _, late = await asyncio.wait(set(_handovers), timeout=timeout)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)


async def hand_over_held(gw: Gateway) -> bool:
    """Hand over the kept events that are due, oldest first. False if Temporal is still
    unreachable: the event tried is due again at once, first in line."""
    while (held := await gw.store.claim_held(LEASE)) is not None:
        if not await _attempt(gw, held):
            return False
    return True


async def keep_handing_over(gw: Gateway) -> None:
    """`hand_over_held` every RETRY_INTERVAL, backing off while Temporal stays away;
    runs until cancelled."""
    interval = RETRY_INTERVAL
    while True:
        await asyncio.sleep(interval)
        try:
            reached = await hand_over_held(gw)
        except Exception:  # the store failed: what it keeps is safe there, try again later
            log.warning("kept events not handed over", exc_info=True)
            reached = False
        interval = RETRY_INTERVAL if reached else min(2 * interval, RETRY_INTERVAL_MAX)


async def keep_reporting_outbox(gw: Gateway) -> None:
    """The outbox's depth and oldest age on /metrics, read every REPORT_INTERVAL (from the
    start); runs until cancelled. While the store does not answer the last values stay."""
    while True:
        try:
            depth, oldest_at = await gw.store.held_summary()
        except Exception:
            log.warning("outbox not measured", exc_info=True)
        else:
            gw.metrics.report_outbox(depth, oldest_at, datetime.now(UTC))
        await asyncio.sleep(REPORT_INTERVAL)


async def _attempt(gw: Gateway, held: HeldEvent) -> bool:
    """Hand a kept event to Temporal once; released if it took it. False if Temporal could not
    be reached (the event is due again at once); a refusal puts it off REFUSED_RETRY."""
    try:
        async with asyncio.timeout(ATTEMPT_LIMIT):
            await gw.hand(held.contact_id, held.event, held.journey_id)
    except Exception as err:
        unavailable = temporal_unavailable(err) or isinstance(err, TimeoutError)
        now = datetime.now(UTC)
        error = f"{type(err).__name__}: {err}"[:500] if str(err) else type(err).__name__
        await gw.store.put_off_held(held.id, error, now if unavailable else now + REFUSED_RETRY)
        log.warning(
            "event kept for another handover",
            kind=held.event.kind,
            contact_id=held.contact_id,
            attempts=held.attempts,
            error=error,
        )
        return not unavailable
    await gw.store.release_held(held.id)
    return True


async def _attempt_logged(gw: Gateway, held: HeldEvent) -> None:
    try:
        await _attempt(gw, held)
    except Exception:  # the store failed after the event was kept: handed over after its lease
        log.warning("event outcome not stored", kind=held.event.kind, exc_info=True)
