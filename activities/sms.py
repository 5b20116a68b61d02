"""SMS through Twilio's own client, exactly once per idempotency key (see activities.deliveries).

An SMS whose outcome is unknown is looked for in Twilio's message log before it is sent again:
the ledger keeps the SHA-256 of the body handed over, and a message to the contact's number with
that body, created since the claim, is the one sent.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, timedelta
from typing import Any

from temporalio import activity
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from activities.deliveries import (
    ChannelActivities,
    HandOver,
    NotTaken,
    Outcome,
    Refused,
    Sent,
    provider_error,
    render,
    unclassified,
)
from journeys.channels import CHANNELS
from journeys.contacts import Contact
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.tokens import message_links, status_callback_url

TWILIO_API = "https://api.twilio.com"
# Seconds per request. aiohttp reports it as ConnectionTimeoutError while still connecting (the
# request never reached Twilio: retry sends) and as a plain TimeoutError later (outcome unknown).
TWILIO_TIMEOUT = 30.0

# 4xx answers that are not about the message: throttling (429) and our own credentials (401,
# which would otherwise fail every SMS for good until someone noticed). Retried instead.
_RETRYABLE_STATUS = {401, 429}
# The newest messages to the number read when looking for one whose outcome is unknown.
LOG_LOOKBACK = 50
# Twilio's clock against ours, when comparing its date_created with the ledger's claim.
CLOCK_SKEW = timedelta(minutes=1)

# Twilio's codes for a number that cannot take SMS: invalid, not a mobile, opted out at the carrier.
_DEAD_NUMBER_CODES = {21211, 21614, 21610}


def _outcome(e: BaseException, handed_over: bool) -> Outcome:
    """What a failed Twilio call says about the message."""
    if not isinstance(e, TwilioRestException):
        return unclassified(e, handed_over)
    if 400 <= e.status < 500 and e.status not in _RETRYABLE_STATUS:
        return Refused(f"twilio {e.code}: {e.msg}", dead_address=e.code in _DEAD_NUMBER_CODES)
    return NotTaken(provider_error(f"twilio {e.status} {e.code}: {e.msg}", "TwilioRestException"))


def fingerprint(body: str) -> str:
    """What the ledger keeps of an SMS to find it in Twilio's log: its body's SHA-256. The body
    differs between attempts when it carries links (their tokens are signed when rendered)."""
    return hashlib.sha256(body.encode()).hexdigest()


class RebasedTwilioHttpClient(AsyncTwilioHttpClient):
    """Twilio's async HTTP client, sending to `base_url` instead of api.twilio.com when set.

    A custom HTTP client is Twilio's documented way to reroute its SDK; the dev stack and tests
    point it at devstack.sinks.sms, so the real client code is exercised end to end.
    """

    def __init__(self, base_url: str | None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/") if base_url else None

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: Any = None,  # noqa: ASYNC109 - the signature twilio calls
        allow_redirects: bool = False,
    ) -> Response:
        if self.base_url and url.startswith(TWILIO_API):
            url = self.base_url + url.removeprefix(TWILIO_API)
        if auth is not None:
            # aiohttp deprecates its auth= argument (gone in 4.0); the header is the same thing.
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers = {**(headers or {}), "Authorization": f"Basic {credentials}"}
        return await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout or TWILIO_TIMEOUT,
            allow_redirects=allow_redirects,
        )


class SmsActivities(ChannelActivities):
    def __init__(self, store: ContactStore, settings: Settings) -> None:
        super().__init__(store, settings)
        self._client: Client | None = None

    def _twilio(self) -> Client:
        # Created on first use: its aiohttp session belongs to the loop the worker runs in.
        if self._client is None:
            self._client = Client(
                self.settings.twilio_account_sid,
                self.settings.twilio_auth_token.get_secret_value(),
                http_client=RebasedTwilioHttpClient(self.settings.twilio_base_url),
            )
        return self._client

    async def close(self) -> None:
        """Close the HTTP session; call on worker shutdown."""
        if self._client is not None:
            await self._client.http_client.close()
            self._client = None

    @activity.defn(name=CHANNELS["sms"].activity)
    async def send_sms(self, req: SendRequest) -> SendResult:
        """Send one templated SMS to a contact who consented, exactly once per `req.key`
        (an earlier attempt's unknown outcome looked up in Twilio's message log).

        Returns failed (without sending) for no contact, no phone, no consent, or a Twilio 4xx
        about the message (invalid or unsubscribed number); raises for anything worth retrying
        (429, 5xx, could not connect).
        """
        contact, suppressed = await self.store.recipient(req.contact_id)
        address = contact.phone if contact else None
        return await self.send_once(
            req, contact, suppressed, address, self._attempt, _outcome, self._in_twilio_log
        )

    async def _in_twilio_log(
        self, req: SendRequest, address: str, row: dict[str, Any]
    ) -> Sent | None:
        """The message an earlier attempt handed over, if Twilio has it (sent: not again)."""
        claimed_at = row["created_at"]
        if claimed_at.tzinfo is None:  # SQLite keeps no zone; the store writes UTC
            claimed_at = claimed_at.replace(tzinfo=UTC)
        # Not filtered by DateSent: a message Twilio still queues has no date_sent yet.
        messages = await self._twilio().messages.list_async(
            to=address, from_=self.settings.twilio_from_number, limit=LOG_LOOKBACK
        )
        for message in messages:
            if (
                message.body is not None
                and fingerprint(message.body) == row.get("fingerprint")
                and (
                    message.date_created is None or message.date_created >= claimed_at - CLOCK_SKEW
                )
            ):
                return Sent(message.sid)
        return None

    async def _attempt(
        self, req: SendRequest, contact: Contact, address: str, hand_over: HandOver
    ) -> Outcome:
        body = render(self.settings, req, contact, message_links(self.settings, req))["body"]
        callback = status_callback_url(self.settings, req)
        await hand_over(fingerprint(body))
        message = await self._twilio().messages.create_async(
            to=address,
            from_=self.settings.twilio_from_number,
            body=body,
            status_callback=callback,
        )
        return Sent(message.sid)
