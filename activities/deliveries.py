"""The delivery ledger's rules, written once: `ChannelActivities.send_once` sends a message at
most once per idempotency key, whatever the channel.

A send claims its idempotency key in the ledger before it calls the provider and records the
outcome after. Whatever an earlier attempt left under the key decides what a retry does:
'sent' -> duplicate, 'failed' -> the same failure, 'sending' -> an attempt died after handing the
message over, so it may have gone out: never send again (at most once beats twice).

A channel supplies the contact's address and an attempt, which says what became of the message:
`Sent`, `Refused` for good, `NotTaken` (surely not sent: the claim is released for a retry) or
`Unknown` (it may have gone out: the claim stays). An error the attempt raises is read by the
channel's `Classify`, which knows its provider's errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from temporalio.exceptions import ApplicationError

from journeys.channels import CHANNELS
from journeys.contacts import Contact
from journeys.logging import mask
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.store import ContactStore
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
    """It may have gone out (the connection went after the hand-over): the claim stays, so the
    retry reports a duplicate instead of sending a second copy; `error` is raised."""

    error: BaseException


Outcome = Sent | Refused | NotTaken | Unknown


class HandOver:
    """Given to an attempt, which awaits it just before the message leaves for the provider (the
    request, SMTP DATA): an error before that moment means nothing went out."""

    def __init__(self) -> None:
        self.done = False

    async def __call__(self) -> None:
        self.done = True


# Sends the message for `req` to the contact at `address`, awaiting the hand-over on the way.
Attempt = Callable[[SendRequest, Contact, str, HandOver], Awaitable[Outcome]]
# What an error an attempt raised says about the message; the bool: the hand-over had come.
Classify = Callable[[BaseException, bool], Outcome]

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


async def claim(store: ContactStore, req: SendRequest) -> SendResult | None:
    """Claim `req.key`; None means the claim is new and the caller sends, otherwise the result
    the activity returns without sending."""
    earlier = await store.claim_delivery(req)
    if earlier is None:
        return None
    if earlier == "sending":
        log.warning(
            "earlier attempt's outcome unknown, not sending again",
            key=req.key,
            channel=req.channel,
            contact_id=req.contact_id,
        )
        return SendResult(
            status="duplicate",
            reason="an earlier attempt handed the message to the provider and its outcome is "
            "unknown; not sent again",
        )
    row = await store.delivery(req.key) or {}
    if earlier == "failed":
        return SendResult(status="failed", reason=row.get("error"))
    return SendResult(status="duplicate", provider_id=row.get("provider_id"))


def reason_not_to_send(
    req: SendRequest, contact: Contact | None, suppressed: set[str], address: str | None
) -> str | None:
    """Compliance at send time, whatever the journey says: why this message may not leave (no
    contact, no address on this channel, no consent, unsubscribed or STOP), or None.
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
    return None


async def refuse(store: ContactStore, req: SendRequest, reason: str) -> SendResult:
    """Refuse a send before any provider call (no contact, no address, no consent), recorded in
    the ledger as failed so it shows up next to the sends."""
    earlier = await claim(store, req)
    if earlier is not None:
        return earlier
    log.info("send refused", key=req.key, channel=req.channel, reason=reason)
    return await fail(store, req, reason)


async def fail(
    store: ContactStore, req: SendRequest, reason: str, dead_address: bool = False
) -> SendResult:
    """Record a claimed send as failed for good; a retry returns the same failure.

    `dead_address`: the provider says the address itself is gone (a mailbox that does not exist,
    an invalid or opted-out number): the channel is suppressed, so no journey tries it again.
    """
    await store.finish_delivery(req.key, "failed", error=reason)
    if dead_address:
        await store.suppress(req.contact_id, req.channel, "hard_bounce")
    log.info("send failed for good", key=req.key, channel=req.channel, reason=reason)
    return SendResult(status="failed", reason=reason)


def render(
    settings: Settings, req: SendRequest, contact: Contact, links: dict[str, str]
) -> dict[str, str]:
    """The parts of `req.template` for `req.channel`, rendered for this contact."""
    context: dict[str, Any] = {
        "contact": {
            "id": contact.id,
            "email": contact.email,
            "phone": contact.phone,
            "locale": contact.locale,
            "time_zone": contact.time_zone,
            "attributes": contact.attributes,
        },
        "links": links,
        "journey": req.journey_id,
        "step": req.step_id,
    }
    return load_template(settings.library_dir, req.channel, req.template).render(context)


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

    async def send_once(
        self,
        req: SendRequest,
        contact: Contact | None,
        suppressed: set[str],
        address: str | None,
        attempt: Attempt,
        classify: Classify = unclassified,
    ) -> SendResult:
        """Send `req` at most once: compliance before any provider call, the claim, the attempt,
        and the ledger as its outcome says. `contact` and `suppressed` as
        `ContactStore.recipient` reads them; `address` is the contact's on this channel."""
        if reason := reason_not_to_send(req, contact, suppressed, address):
            return await refuse(self.store, req, reason)
        if (earlier := await claim(self.store, req)) is not None:
            return earlier
        assert contact is not None and address is not None  # reason_not_to_send refused both
        hand_over = HandOver()
        try:
            outcome = await attempt(req, contact, address, hand_over)
        except BaseException as e:
            outcome = classify(e, hand_over.done)
        match outcome:
            case Sent(provider_id, details):
                return await self._record_sent(req, provider_id, **details)
            case Refused(reason, dead_address):
                return await fail(self.store, req, mask(reason), dead_address=dead_address)
            case NotTaken(error):
                await self.store.release_delivery(req.key)
                log.warning(
                    f"{req.channel} not sent, will retry", key=req.key, error=_described(error)
                )
                raise error
            case Unknown(error):
                log.warning(
                    f"{req.channel} outcome unknown, not retrying the send",
                    key=req.key,
                    error=_described(error),
                )
                raise error

    async def _record_sent(
        self, req: SendRequest, provider_id: str | None, **details: Any
    ) -> SendResult:
        """The provider took the message: the ledger says so, and so does the log."""
        await self.store.finish_delivery(req.key, "sent", provider_id=provider_id)
        log.info(
            f"{req.channel} sent",
            key=req.key,
            journey_id=req.journey_id,
            step_id=req.step_id,
            contact_id=req.contact_id,
            provider_id=provider_id,
            **details,
        )
        return SendResult(status="sent", provider_id=provider_id)
