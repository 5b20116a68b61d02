"""The delivery ledger's rules, written once: `ChannelActivities.send_once` sends a message
exactly once per idempotency key, whatever the channel, as far as the channel's provider lets
the ledger tell.

A send claims its key (`claimed`) before it composes and connects, and turns the claim into
`sending` at the hand-over, the moment the message leaves for the provider (`HandOver`); the
outcome is recorded after. What an earlier attempt left under the key decides what a retry does:
'sent' -> duplicate, 'failed' -> the same failure, 'claimed' -> the attempt died before the
hand-over, so nothing left: send; 'sending' -> it died after, so the message may have gone out:
the channel reconciles (`Reconcile`: asks the provider, or sends a copy the provider takes for the
same message). Every write after the claim names the attempt holding it, so an attempt that a
retry overtook (a worker presumed dead that still runs) can neither hand over nor record.

A channel supplies the contact's address and an attempt, which says what became of the message:
`Sent`, `Refused` for good, `NotTaken` (surely not sent: the claim is released for a retry) or
`Unknown` (it may have gone out: the claim stays). An error the attempt raises is read by the
channel's `Classify`, which knows its provider's errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp
import structlog
from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError

from activities.send_window import SendWindows
from journeys.channels import CHANNELS, MARKETING, Channel
from journeys.contacts import Contact
from journeys.logging import mask
from journeys.metrics import count_send, observe_event_to_send
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.store.rows import CLAIMED, SENDING, Claim
from journeys.templates import load_template

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Sent:
    """The provider took the message."""

    provider_id: str | None
    # Logged with the send (how many devices took it, say).
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    """The provider refused the message for good (a 5xx to RCPT, Twilio 21211): a retry would be
    refused too. `dead_address`: the address itself is gone (no such mailbox, a dead number)."""

    reason: str
    dead_address: bool = False


@dataclass(frozen=True)
class NotTaken:
    """Surely not sent (could not connect, throttled, the provider's 5xx, an error before the
    hand-over): the claim is released and `error` raised, so Temporal retries the send."""

    error: BaseException


@dataclass(frozen=True)
class Unknown:
    """It may have gone out (the connection went after the hand-over): the claim stays
    `sending`, so the retry reconciles; `error` is raised."""

    error: BaseException


Outcome = Sent | Refused | NotTaken | Unknown


class HandOver:
    """Given to an attempt, which awaits it just before the message leaves for the provider (the
    request, SMTP DATA): an error before that moment means nothing went out. It records
    `sending` for the attempt holding the claim (with what the provider's log will show, when
    the channel reconciles by it), and raises when a later attempt holds it instead."""

    def __init__(self, store: ContactStore, key: str, attempt: int) -> None:
        self.store = store
        self.key = key
        self.attempt = attempt
        self.done = False

    async def __call__(self, fingerprint: str | None = None) -> None:
        if not await self.store.hand_over_delivery(self.key, self.attempt, fingerprint):
            raise ApplicationError(
                "a later attempt holds this send's claim; this one does not send", type="ClaimLost"
            )
        self.done = True


# Sends the message for `req` to the contact at `address`, awaiting the hand-over on the way.
Attempt = Callable[[SendRequest, Contact, str, HandOver], Awaitable[Outcome]]
# What an error an attempt raised says about the message; the bool: the hand-over had come.
Classify = Callable[[BaseException, bool], Outcome]
# Settles an earlier attempt's unknown outcome for `req` to `address` (its ledger row given):
# Sent when the provider has the message (not sent again), None to send it again, which the
# channel makes harmless (the same Message-ID, the same collapse key, a queue keyed by the key).
Reconcile = Callable[[SendRequest, str, dict[str, Any]], Awaitable[Sent | None]]
# How often a send tells Temporal it is alive; the workflow's heartbeat timeout is a few of these.
HEARTBEAT_EVERY = 2.0

# aiohttp's errors for a request that never reached the provider, at whatever moment.
NEVER_CONNECTED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def unclassified(error: BaseException, handed_over: bool) -> NotTaken | Unknown:
    """An error without an answer from the provider: before the hand-over, or on a connection
    never made, nothing went out; after it, the message may have."""
    if not handed_over or isinstance(error, NEVER_CONNECTED):
        return NotTaken(error)
    return Unknown(error)


def no_address(channel: str) -> str:
    """Why a contact cannot be reached on `channel`; journeys branch on this failed send."""
    return f"contact has no {CHANNELS[channel].address}"


async def resend(_req: SendRequest, _address: str, _row: dict[str, Any]) -> Sent | None:
    """Reconciles by sending again: for a channel whose provider takes a copy for the message."""
    return None


async def claim(store: ContactStore, req: SendRequest) -> Claim | SendResult:
    """Claim `req.key`: the claim this attempt holds, or the result the activity returns without
    sending. Raises (retried) while another attempt holds it."""
    claimed = await store.claim_delivery(req)
    if claimed.held:
        return claimed
    if claimed.status in (CLAIMED, SENDING):
        raise ApplicationError(
            "another attempt took this send over at the same moment", type="ClaimLost"
        )
    row = await store.delivery(req.key) or {}
    # Counted as a duplicate either way: the attempt that settled it counted its outcome.
    count_send(_meter(), req, "duplicate")
    if claimed.status == "failed":
        return SendResult(status="failed", reason=row.get("error"))
    return SendResult(status="duplicate", provider_id=row.get("provider_id"))


def _meter() -> MetricMeter:
    """Where a send's outcome is counted: the worker's /metrics in an activity, nowhere for a
    test that calls the ledger's rules directly."""
    return activity.metric_meter() if activity.in_activity() else MetricMeter.noop


def reason_not_to_send(
    req: SendRequest, contact: Contact | None, suppressed: set[str], address: str | None
) -> str | None:
    """Compliance at send time, whatever the journey says: why this message may not leave (no
    contact, no address on this channel, no consent, unsubscribed or STOP, marketing to a sunset
    contact), or None.
    `contact` and `suppressed` as `ContactStore.recipient` reads them."""
    if contact is None:
        return "no such contact"
    if not address:
        return no_address(req.channel)
    channel = CHANNELS[req.channel]
    if channel.opt_in and contact.consent.get(channel.consent_key) is not True:
        return f"contact has not consented to {channel.consent_key}"
    if req.channel in suppressed:
        return f"contact is suppressed on {req.channel} (unsubscribed, STOP or bounced)"
    if MARKETING in suppressed and not req.transactional:
        return "contact is sunset: no engagement for long, marketing stopped"
    return None


async def refuse(store: ContactStore, req: SendRequest, reason: str) -> SendResult:
    """Refuse a send before any provider call (no contact, no address, no consent), recorded in
    the ledger as failed so it shows up next to the sends."""
    claimed = await claim(store, req)
    if isinstance(claimed, SendResult):
        return claimed
    log.info("send refused", key=req.key, channel=req.channel, reason=reason)
    return await fail(store, req, claimed, reason)


async def fail(
    store: ContactStore, req: SendRequest, claimed: Claim, reason: str, dead_address: bool = False
) -> SendResult:
    """Record a claimed send as failed for good; a retry returns the same failure.

    `dead_address`: the provider says the address itself is gone (a mailbox that does not exist,
    an invalid or opted-out number): the channel is suppressed, so no journey tries it again.
    """
    await store.finish_delivery(req.key, claimed.attempt, "failed", error=reason)
    if dead_address:
        await store.suppress(req.contact_id, req.channel, "hard_bounce")
    log.info("send failed for good", key=req.key, channel=req.channel, reason=reason)
    count_send(_meter(), req, "failed")
    return SendResult(status="failed", reason=reason)


def render(
    settings: Settings, req: SendRequest, contact: Contact, links: dict[str, str]
) -> dict[str, str]:
    """The parts of `req.template` for `req.channel`, rendered for this contact."""
    context = message_context(settings, req, contact, links)
    return load_template(settings.library_dir, req.channel, req.template).render(context)


def message_context(
    settings: Settings, req: SendRequest, contact: Contact, links: dict[str, str]
) -> dict[str, Any]:
    """What a template of a send is rendered with: the contact, the message's `links` and the
    site's (where calls to action lead), the journey and step."""
    return {
        "contact": {
            "id": contact.id,
            "email": contact.email,
            "phone": contact.phone,
            "locale": contact.locale,
            "time_zone": contact.time_zone,
            "attributes": contact.attributes,
        },
        "links": {**links, "site": settings.site_url.rstrip("/")},
        "journey": req.journey_id,
        "step": req.step_id,
    }


def provider_error(detail: str, kind: str) -> ApplicationError:
    """A retryable failure for Temporal with addresses masked: the workflow history keeps it."""
    return ApplicationError(mask(detail), type=kind)


def _described(error: BaseException) -> str:
    """An error as the log says it: its kind, and its message if it has one."""
    text = str(error)
    if isinstance(error, ApplicationError):
        return mask(text)  # its text starts with its type already
    return mask(f"{type(error).__name__}: {text}" if text else type(error).__name__)


class ChannelActivities:
    """What every channel's activities share: the store, and the one way to send."""

    def __init__(self, store: ContactStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.windows = SendWindows(store, settings)

    async def send_once(
        self,
        req: SendRequest,
        contact: Contact | None,
        suppressed: set[str],
        address: str | None,
        attempt: Attempt,
        classify: Classify = unclassified,
        reconcile: Reconcile = resend,
    ) -> SendResult:
        """Send `req` exactly once: compliance before any provider call (the send window when
        `req.window` asks for it, then consent and suppression), then `deliver_once`.
        `contact` and `suppressed` as `ContactStore.recipient` reads them; `address` is the
        contact's on this channel."""
        if req.window is not None:
            async with _heartbeating():  # it may wait for another check of the contact
                window = await self.windows.check(req, req.window)
            if window.action == "wait":
                return SendResult(status="held", reason=window.reason, until=window.until)
            if window.action == "skip":
                return SendResult(status="skipped", reason=window.reason)
        if reason := reason_not_to_send(req, contact, suppressed, address):
            async with _heartbeating():
                return await refuse(self.store, req, reason)
        assert contact is not None and address is not None  # reason_not_to_send refused both
        return await self.deliver_once(
            req, address, partial(attempt, req, contact, address), classify, reconcile
        )

    async def deliver_once(
        self,
        req: SendRequest,
        address: str,
        attempt: Callable[[HandOver], Awaitable[Outcome]],
        classify: Classify = unclassified,
        reconcile: Reconcile = resend,
    ) -> SendResult:
        """Send `req` to `address` exactly once, with no compliance check: the claim, the
        reconciliation of an earlier attempt's unknown outcome, the attempt, and the ledger as
        its outcome says. Marketing goes through `send_once`; a colleague's work message
        (activities.team_mail) comes here directly."""
        async with _heartbeating():
            claimed = await claim(self.store, req)
            if isinstance(claimed, SendResult):
                return claimed
            reconciled = None
            if claimed.status == SENDING:
                row = await self.store.delivery(req.key) or {}
                if (found := await reconcile(req, address, row)) is not None:
                    return await self._record_sent(req, claimed, found.provider_id, "found")
                reconciled = "resent"
                log.warning(
                    f"{req.channel} outcome of an earlier attempt unknown, sending again",
                    key=req.key,
                    attempt=claimed.attempt,
                )
            hand_over = HandOver(self.store, req.key, claimed.attempt)

            async def attempted() -> SendResult:
                try:
                    outcome = await attempt(hand_over)
                except BaseException as e:
                    outcome = classify(e, hand_over.done)
                return await self._record(req, claimed, outcome, reconciled)

            return await _kept_once_handed_over(attempted(), hand_over)

    async def _record(
        self, req: SendRequest, claimed: Claim, outcome: Outcome, reconciled: str | None
    ) -> SendResult:
        """The ledger as the attempt's outcome says; raises the error of one not known to be
        sent, so Temporal retries."""
        match outcome:
            case Sent(provider_id, details):
                return await self._record_sent(req, claimed, provider_id, reconciled, **details)
            case Refused(reason, dead_address):
                return await fail(self.store, req, claimed, mask(reason), dead_address)
            case NotTaken(error):
                # A resend that was not taken leaves the earlier attempt's `sending` in place:
                # that copy may still have gone out, and the next retry reconciles again.
                if claimed.status == CLAIMED:
                    await self.store.release_delivery(req.key, claimed.attempt)
                log.warning(
                    f"{req.channel} not sent, will retry", key=req.key, error=_described(error)
                )
                raise error
            case Unknown(error):
                log.warning(
                    f"{req.channel} outcome unknown, the retry reconciles",
                    key=req.key,
                    error=_described(error),
                )
                raise error

    async def _record_sent(
        self,
        req: SendRequest,
        claimed: Claim,
        provider_id: str | None,
        reconciled: str | None = None,
        **details: Any,
    ) -> SendResult:
        """The provider took the message: the ledger says so, and so does the log."""
        if not await self.store.finish_delivery(
            req.key, claimed.attempt, "sent", provider_id=provider_id, reconciled=reconciled
        ):
            # Overtaken by a retry after the hand-over: the retry reconciles and records.
            log.warning(f"{req.channel} sent by an attempt a retry overtook", key=req.key)
        log.info(
            f"{req.channel} sent",
            key=req.key,
            journey_id=req.journey_id,
            step_id=req.step_id,
            contact_id=req.contact_id,
            provider_id=provider_id,
            reconciled=reconciled,
            **details,
        )
        meter = _meter()
        count_send(meter, req, "reconciled" if reconciled == "found" else "sent")
        observe_event_to_send(meter, req, datetime.now(UTC))
        return SendResult(status="sent", provider_id=provider_id)


Send = Callable[[SendRequest], Awaitable[SendResult]]


async def _kept_once_handed_over(
    attempted: Coroutine[Any, Any, SendResult], hand_over: HandOver
) -> SendResult:
    """`attempted`, the attempt and the ledger's record of its outcome. Cancelled once the message
    is with the provider (Temporal took the attempt for dead: its heartbeat timeout passed on a
    busy server), it goes on, within the provider's own timeouts, until the outcome is recorded:
    the retry then finds the message sent, where an outcome left unknown is sent again.
    Cancelled before the hand-over, it stops there."""
    running = asyncio.ensure_future(attempted)
    while True:
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            if running.done():  # the attempt itself ended so, cancelled before its hand-over
                raise
            if hand_over.done:
                # Temporal may cancel again (a heartbeat it no longer takes, worker shutdown).
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
            elif not running.cancelling():  # once: it lets go of its claim on the way out
                running.cancel()


def checked(channel: Channel, send: Send) -> Send:
    """`send`, the channel's activity, registered again as its `checked_activity`."""

    @activity.defn(name=CHANNELS[channel].checked_activity)
    async def send_checked(req: SendRequest) -> SendResult:
        return await send(req)

    return send_checked


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeats while a send runs (in an activity), so a retry follows a worker that died
    within the heartbeat timeout rather than the whole start-to-close timeout. The first comes
    HEARTBEAT_EVERY after the attempt started, not at once: a beat is a call to Temporal (and a
    write of the run's state there), and most sends are over in milliseconds. The server counts
    the timeout from the start, so a send that gets here late (a busy store) beats at once."""
    if not activity.in_activity():
        yield
        return

    async def beat() -> None:
        running = (datetime.now(UTC) - activity.info().started_time).total_seconds()
        await asyncio.sleep(max(0.0, HEARTBEAT_EVERY - running))
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
