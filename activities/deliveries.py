"""The delivery ledger as every send activity uses it, and the channels that only record.

A send claims its idempotency key in the ledger before it calls the provider and records the
outcome after. Whatever an earlier attempt left under the key decides what a retry does:
'sent' -> duplicate, 'failed' -> the same failure, 'sending' -> an attempt died after handing the
message over, so it may have gone out: never send again (at most once beats twice).
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio.exceptions import ApplicationError

from journeys.contacts import Contact
from journeys.logging import mask
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.templates import load_template

log = structlog.get_logger(__name__)

_ADDRESS = {
    "email": "email address",
    "sms": "phone number",
    "web_push": "web push subscription",
    "mobile_push": "mobile app token",
    "onsite": "website identity",
}


def no_address(channel: str) -> str:
    """Why a contact cannot be reached on `channel`; journeys branch on this failed send."""
    return f"contact has no {_ADDRESS[channel]}"


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


# Channels that reach a person unasked need their opt-in. A message on the company's own site,
# shown to a visitor the site identified, does not; asking to see no more is a suppression.
OPT_IN_CHANNELS = frozenset({"email", "sms", "web_push", "mobile_push"})


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
    if req.channel in OPT_IN_CHANNELS and contact.consent.get(req.channel) is not True:
        return f"contact has not consented to {req.channel}"
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


async def start_send(
    store: ContactStore,
    req: SendRequest,
    contact: Contact | None,
    suppressed: set[str],
    address: str | None,
) -> SendResult | None:
    """Compliance, then the claim: None means the caller holds a new claim and sends; otherwise
    the result to return without sending (refused, or what an earlier attempt left)."""
    if reason := reason_not_to_send(req, contact, suppressed, address):
        return await refuse(store, req, reason)
    return await claim(store, req)


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


class ChannelActivities:
    """What every channel's activities share: the store, and the record of a send that left."""

    def __init__(self, store: ContactStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

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
