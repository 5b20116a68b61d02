"""How the gateway hands what people do to Temporal without losing any of it.

Every event is recorded in the store first, then handed to Temporal. If Temporal cannot take it
(down, unreachable, overloaded), the event is held in the store and redelivered, oldest first,
once Temporal answers again: a gateway that stays up while Temporal restarts loses no open, click,
unsubscribe or answer. A person never waits on any of this for more than DELIVERY_WAIT.

The /v1 API does not go through here: it answers 503 and its caller retries with the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import structlog
from temporalio.service import RPCError

from gateway.app import Gateway
from journeys.connection import temporal_unavailable
from journeys.models import JourneyEvent

log = structlog.get_logger(__name__)

# How long a response waits for Temporal to take an event. Past it the response goes out and the
# delivery carries on in the background.
DELIVERY_WAIT = 1.0
# Held events are looked for this often; while Temporal stays unreachable, ever less often.
REDELIVERY_INTERVAL = 5.0
REDELIVERY_INTERVAL_MAX = 60.0
# A held event being redelivered is not taken by another gateway process for this long.
LEASE = timedelta(minutes=1)
# Temporal answered but refused one event (it cannot be delivered as it is): the others go on,
# and that one is tried again this much later, so nothing is dropped on a guess.
REFUSED_RETRY = timedelta(minutes=10)

_deliveries: set[asyncio.Task[None]] = set()


async def deliver(
    gw: Gateway, contact_id: str, event: JourneyEvent, journey_id: str | None = None
) -> None:
    """Record `event` and hand it to the run of `journey_id` (the one a tracked message came
    from) or, without one, to the contact's runs and the journeys it triggers. What Temporal does
    not take is held for redelivery. Raises only if the store fails."""
    await gw.store.record_event(contact_id, event)
    try:
        await gw.reach(contact_id, event, journey_id)
    except (Exception, asyncio.CancelledError) as err:
        # Cancelled: the gateway is stopping with this delivery still in flight.
        await gw.store.hold_event(contact_id, journey_id, event, _describe(err))
        log.warning("event held for redelivery", kind=event.kind, contact_id=contact_id)
        if isinstance(err, asyncio.CancelledError):
            raise


async def _deliver_logged(
    gw: Gateway, contact_id: str, event: JourneyEvent, journey_id: str | None
) -> None:
    try:
        await deliver(gw, contact_id, event, journey_id)
    except Exception:  # the store is down too: the person's part is done anyway
        log.error("event lost", kind=event.kind, contact_id=contact_id, exc_info=True)


async def deliver_soon(
    gw: Gateway, contact_id: str, event: JourneyEvent, journey_id: str | None = None
) -> None:
    """`deliver`, waiting for it at most DELIVERY_WAIT; the rest goes on in the background.

    Never raises: a person who clicked or answered has done their part whatever state Temporal
    is in.
    """
    task = asyncio.create_task(_deliver_logged(gw, contact_id, event, journey_id))
    _deliveries.add(task)
    task.add_done_callback(_deliveries.discard)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), DELIVERY_WAIT)


async def finish_deliveries(timeout: float) -> None:  # noqa: ASYNC109 - bounded on purpose
    """On shutdown: let deliveries in flight finish for at most `timeout` seconds, then hold
    what is left for the next gateway to redeliver."""
    if not _deliveries:
        return
    _, late = await asyncio.wait(set(_deliveries), timeout=timeout)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)


async def redeliver_held(gw: Gateway) -> bool:
    """Redeliver the held events that are due, oldest first. False if Temporal is still
    unreachable: the event tried stays first in line and the rest wait with it."""
    while (held := await gw.store.claim_held(LEASE)) is not None:
        try:
            await gw.reach(held.contact_id, held.event, held.journey_id)
        except Exception as err:
            refused = isinstance(err, RPCError) and not temporal_unavailable(err)
            now = datetime.now(UTC)
            await gw.store.put_off_held(
                held.id, _describe(err), now + REFUSED_RETRY if refused else now
            )
            log.warning(
                "held event not redelivered",
                kind=held.event.kind,
                contact_id=held.contact_id,
                attempts=held.attempts,
                error=_describe(err),
            )
            if not refused:
                return False
            continue
        await gw.store.release_held(held.id)
        log.info("held event redelivered", kind=held.event.kind, contact_id=held.contact_id)
    return True


async def keep_redelivering(gw: Gateway) -> None:
    """`redeliver_held` every REDELIVERY_INTERVAL, backing off while Temporal stays away;
    runs until cancelled."""
    interval = REDELIVERY_INTERVAL
    while True:
        await asyncio.sleep(interval)
        try:
            reached = await redeliver_held(gw)
        except Exception:  # the store is unavailable: the events are safe in it, try later
            log.warning("held events not read", exc_info=True)
            reached = False
        interval = REDELIVERY_INTERVAL if reached else min(2 * interval, REDELIVERY_INTERVAL_MAX)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:500] if str(err) else type(err).__name__
