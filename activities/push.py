"""Web push (VAPID, through pywebpush) and mobile push (FCM HTTP v1), once per idempotency key
(see activities.deliveries).

A contact may have several subscriptions of a kind (browsers, devices), and the ledger key covers
the send, not each device. The devices are sent to one after another; the first that takes the
message makes the send 'sent' and it is never retried, even if another device was unreachable:
a retry would show the message again on the devices that already have it (at most once beats
twice). Only when no device took it is the claim released for a retry, or kept when one of them
may have (connection lost mid-answer). A subscription the provider says is gone is deleted.
What the devices answered is summed up in one outcome for `ChannelActivities.send_once`.

Every push carries a collapse key derived from the idempotency key (`collapse_key`): the web push
`Topic` (RFC 8030: a message still pending with the same topic is replaced), FCM's
`android.collapse_key` and notification `tag` (a shown notification with the same tag is
replaced), `apns-collapse-id` and the `webpush` Topic. So the retry of a send whose outcome is
unknown sends again, and a second copy replaces the first rather than showing twice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import requests
import structlog
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account
from py_vapid import Vapid, VapidException
from pywebpush import WebPushException, webpush_async
from sqlalchemy import String
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deliveries import (
    NEVER_CONNECTED,
    ChannelActivities,
    HandOver,
    NotTaken,
    Outcome,
    Refused,
    Sent,
    Unknown,
    no_address,
    provider_error,
    render,
)
from journeys.channels import CHANNELS
from journeys.contacts import Contact
from journeys.logging import mask
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.store.schema import deliveries
from journeys.tokens import message_links, tracked_url

log = structlog.get_logger(__name__)

# Seconds per request to a push service or FCM.
PUSH_TIMEOUT = 30.0
# How long a push service keeps a message for a device that is offline (RFC 8030 TTL); push
# services cap it at four weeks, and a survey or nudge older than that is no longer worth showing.
WEB_PUSH_TTL = 28 * 24 * 3600
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

# PostgreSQL enforces the ledger column's length; the log line keeps every id whole.
_PROVIDER_ID_LENGTH = cast(String, deliveries.c.provider_id.type).length or 128


# Sends the prepared message to one subscription row: Sent, Refused (dead_address: the
# subscription is gone) or NotTaken; raises when the outcome is unknown.
Deliver = Callable[[dict[str, Any]], Awaitable[Outcome]]
Prepare = Callable[[SendRequest, dict[str, str]], Awaitable[Deliver]]


def collapse_key(key: str) -> str:
    """The collapse key of every push sent for idempotency key `key`: 32 base64url characters,
    the most a web push Topic may have (RFC 8030 section 5.4), within apns-collapse-id's 64
    bytes."""
    digest = hashlib.sha256(key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def _not_taken(detail: str) -> NotTaken:
    return NotTaken(provider_error(detail, "PushNotDelivered"))


def _detail(outcome: NotTaken | Refused) -> str:
    if isinstance(outcome, Refused):
        return outcome.reason
    error = outcome.error
    return error.message if isinstance(error, ApplicationError) else str(error)


def _provider_id(ids: list[str]) -> str | None:
    """The first device's message id and how many more devices took it, within the column."""
    if not ids:
        return None
    more = f" (+{len(ids) - 1} more)" if len(ids) > 1 else ""
    room = _PROVIDER_ID_LENGTH - len(more)
    return (ids[0] if len(ids[0]) <= room else ids[0][: room - 1] + "…") + more


def _web_push_outcome(status: int, detail: str) -> Outcome:
    if status in (404, 410):
        return Refused(detail, dead_address=True)
    # 401: the push service rejected our VAPID token (key or subject): a misconfiguration that
    # must stay visible as a failing activity. 403 means the subscription was made for another
    # application server key (RFC 8292 section 4.2): about that subscription, so refused.
    if status in (401, 429) or status >= 500:
        return _not_taken(detail)
    return Refused(detail)


def _fcm_outcome(status: int, answer: dict[str, Any]) -> Outcome:
    error = answer.get("error")
    if not isinstance(error, dict):
        error = {}
    details = [d for d in error.get("details", []) if isinstance(d, dict)]
    codes = [str(d["errorCode"]) for d in details if "errorCode" in d]
    detail = f"fcm {status} {codes[0] if codes else error.get('status')}: {error.get('message')}"
    # Only FCM's own verdict on the token deletes it: a plain 404 (a wrong project or endpoint)
    # would otherwise wipe every token in the store.
    bad_token = any(
        v.get("field") == "message.token"
        for d in details
        for v in d.get("fieldViolations", [])
        if isinstance(v, dict)
    )
    if (status == 404 and "UNREGISTERED" in codes) or (status == 400 and bad_token):
        return Refused(detail, dead_address=True)
    # 401/403 are our credentials or project; a 404 without UNREGISTERED is the endpoint.
    if status in (401, 403, 404, 429) or status >= 500:
        return _not_taken(detail)
    return Refused(detail)


def _json_object(text: str) -> dict[str, Any]:
    # A proxy in front of the provider may answer a 502 with HTML: that is still a 502.
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse_vapid_key(key: str) -> Vapid:
    if "-----BEGIN" in key:
        return Vapid.from_pem(key.strip().encode())
    return Vapid.from_string(key)


def _load_credentials(path: Path) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_file(str(path), scopes=[FCM_SCOPE])


def _refresh(credentials: service_account.Credentials) -> None:
    with requests.Session() as session:
        credentials.refresh(GoogleRequest(session))


def _summed_up(channel: str, outcomes: list[Outcome]) -> Outcome:
    """The send's outcome from its devices': sent when any took it, unknown when any may have,
    retried when one surely did not, else refused (a gone subscription is not a reason: it was
    deleted, and the next subscription of the contact gets the messages)."""
    delivered = [o for o in outcomes if isinstance(o, Sent)]
    not_taken = [_detail(o) for o in outcomes if isinstance(o, NotTaken)]
    refused = [_detail(o) for o in outcomes if isinstance(o, Refused) and not o.dead_address]
    if delivered:
        ids = [o.provider_id for o in delivered if o.provider_id]
        details = {
            "devices": len(delivered),
            "provider_ids": ids,
            "not_sent_to": not_taken + refused,
        }
        return Sent(_provider_id(ids), mask(details))
    if unknown := next((o for o in outcomes if isinstance(o, Unknown)), None):
        return unknown  # a device may have it: the claim stays
    if not_taken:
        return _not_taken("; ".join(not_taken))
    return Refused("; ".join(refused) or f"{no_address(channel)} left: every one was gone")


class PushActivities(ChannelActivities):
    def __init__(self, store: ContactStore, settings: Settings) -> None:
        super().__init__(store, settings)
        self._http: aiohttp.ClientSession | None = None
        self._vapid: Vapid | None = None
        self._fcm_credentials: service_account.Credentials | None = None
        self._fcm_refresh = asyncio.Lock()

    def _session(self) -> aiohttp.ClientSession:
        # Created on first use: it belongs to the loop the worker runs in.
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self) -> None:
        """Close the HTTP session; call on worker shutdown."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    @activity.defn(name=CHANNELS["web_push"].activity)
    async def send_web_push(self, req: SendRequest) -> SendResult:
        """Send one templated web push notification to every browser the contact subscribed,
        exactly once per `req.key`.

        Returns failed (without sending) for no contact, no subscription, no consent, or when
        every push service refused it or said the subscription is gone; raises for anything
        worth retrying (unreachable, 429, 5xx, VAPID key missing or rejected).
        """
        return await self._send(req, "web", self._prepare_web_push)

    @activity.defn(name=CHANNELS["mobile_push"].activity)
    async def send_mobile_push(self, req: SendRequest) -> SendResult:
        """Send one templated notification through FCM to every app token of the contact,
        exactly once per `req.key`.

        Returns failed (without sending) for no contact, no token, no consent, or when FCM
        refused it for every token or said they are unregistered; raises for anything worth
        retrying (unreachable, 429, 5xx, credentials missing or rejected).
        """
        return await self._send(req, "mobile", self._prepare_fcm)

    async def _send(self, req: SendRequest, kind: str, prepare: Prepare) -> SendResult:
        contact, suppressed, subscriptions = await self.store.push_recipient(req.contact_id, kind)
        address = subscriptions[0]["endpoint"] if subscriptions else None

        async def attempt(
            req: SendRequest, contact: Contact, _address: str, hand_over: HandOver
        ) -> Outcome:
            deliver = await prepare(req, self._notification(req, contact))
            await hand_over()
            return _summed_up(
                req.channel, [await self._deliver(req, deliver, s) for s in subscriptions]
            )

        return await self.send_once(req, contact, suppressed, address, attempt)

    async def _deliver(
        self, req: SendRequest, deliver: Deliver, subscription: dict[str, Any]
    ) -> Outcome:
        """One device's outcome; a subscription the provider says is gone is deleted."""
        try:
            outcome = await deliver(subscription)
        except Exception as e:
            log.warning(
                "push outcome unknown for one device",
                key=req.key,
                subscription=subscription["id"],
                error=repr(e),
            )
            return Unknown(e)
        if isinstance(outcome, Refused) and outcome.dead_address:
            await self.store.remove_push_subscription(subscription["id"])
            log.info(
                "push subscription gone, removed",
                key=req.key,
                subscription=subscription["id"],
                detail=outcome.reason,
            )
        return outcome

    def _notification(self, req: SendRequest, contact: Contact) -> dict[str, str]:
        parts = render(self.settings, req, contact, message_links(self.settings, req))
        notification = {"title": parts["title"], "body": parts["body"]}
        # The page a tap opens, when the template names one (the survey: `{{ links.nps }}`);
        # other pages go through the click redirect, so a tap is reported as `clicked`.
        if url := parts.get("url", "").strip():
            notification["url"] = tracked_url(self.settings, req, url)
        return notification

    # web push -------------------------------------------------------------------------------

    def _vapid_key(self) -> Vapid:
        if self._vapid is None:
            if self.settings.vapid_private_key is None:
                raise ApplicationError(
                    "web push is not configured: set VAPID_PRIVATE_KEY", type="PushNotConfigured"
                )
            self._vapid = _parse_vapid_key(self.settings.vapid_private_key.get_secret_value())
        return self._vapid

    async def _prepare_web_push(self, req: SendRequest, notification: dict[str, str]) -> Deliver:
        vapid = self._vapid_key()
        http = self._session()
        data = json.dumps(notification, ensure_ascii=False)

        async def deliver(subscription: dict[str, Any]) -> Outcome:
            try:
                response = await webpush_async(
                    {"endpoint": subscription["endpoint"], "keys": subscription["keys"]},
                    data,
                    vapid_private_key=vapid,
                    # A fresh dict each time: pywebpush writes this endpoint's aud into it.
                    vapid_claims={"sub": self.settings.vapid_subject},
                    ttl=WEB_PUSH_TTL,
                    headers={"Urgency": "normal", "Topic": collapse_key(req.key)},
                    timeout=PUSH_TIMEOUT,
                    aiohttp_session=http,
                )
            except WebPushException as e:
                if e.response is None:
                    return Refused(f"unusable web push subscription: {e.message}")
                status = int(e.response.status)
                return _web_push_outcome(status, f"push service {status} {e.response.reason}")
            except VapidException as e:
                return _not_taken(f"VAPID: {e}")
            except NEVER_CONNECTED as e:
                return _not_taken(f"push service unreachable: {e}")
            except ValueError as e:
                # Keys that are not a P-256 point, or an endpoint that is not a URL: raised
                # before anything was sent.
                return Refused(f"unusable web push subscription: {e}")
            return Sent(response.headers.get("Location"))

        return deliver

    # mobile push (FCM) ----------------------------------------------------------------------

    async def _fcm_token(self) -> str:
        s = self.settings
        if s.fcm_access_token is not None:
            return s.fcm_access_token.get_secret_value()
        if s.fcm_credentials_file is None:
            raise ApplicationError(
                "mobile push is not configured: set FCM_CREDENTIALS_FILE or FCM_ACCESS_TOKEN",
                type="PushNotConfigured",
            )
        # One refresh at a time; google-auth's file reading and token call block, so threads.
        async with self._fcm_refresh:
            credentials = self._fcm_credentials
            if credentials is None:
                credentials = await asyncio.to_thread(_load_credentials, s.fcm_credentials_file)
                self._fcm_credentials = credentials
            if not credentials.valid:
                await asyncio.to_thread(_refresh, credentials)
            return str(credentials.token)

    async def _prepare_fcm(self, req: SendRequest, notification: dict[str, str]) -> Deliver:
        token = await self._fcm_token()
        http = self._session()
        s = self.settings
        url = f"{s.fcm_endpoint.rstrip('/')}/v1/projects/{s.fcm_project_id}/messages:send"
        data = {"journey_id": req.journey_id, "step_id": req.step_id}
        if "url" in notification:
            data["url"] = notification["url"]
        collapse = collapse_key(req.key)

        async def deliver(subscription: dict[str, Any]) -> Outcome:
            message = {
                "token": subscription["endpoint"],
                "notification": {"title": notification["title"], "body": notification["body"]},
                "data": data,
                "android": {"collapse_key": collapse, "notification": {"tag": collapse}},
                "apns": {"headers": {"apns-collapse-id": collapse}},
                "webpush": {"headers": {"Topic": collapse}},
            }
            try:
                async with http.post(
                    url,
                    json={"message": message},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=aiohttp.ClientTimeout(total=PUSH_TIMEOUT),
                ) as response:
                    status, answer = response.status, _json_object(await response.text())
            except NEVER_CONNECTED as e:
                return _not_taken(f"fcm unreachable: {e}")
            if status == 200:
                return Sent(answer.get("name"))
            if status == 401:
                # Re-read the service-account file next time: the key may have been rotated.
                self._fcm_credentials = None
            return _fcm_outcome(status, answer)

        return deliver
