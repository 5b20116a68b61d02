"""Signed, expiring tokens for the links in messages (unsubscribe, open pixel, clicks, NPS), for
Twilio's status callback and for the website SDK: every purpose a token has is here.

A token is signed, not encrypted: anyone can read its payload, so it carries opaque ids only
(contact id, journey and step ids, the delivery key) and the link a click leads to, never an
address. The purpose is the salt, so an open-pixel token cannot be replayed as an unsubscribe
token. Expiry is checked when a token is read (itsdangerous stamps the signing time), against
`MAX_AGE` for its purpose.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeVar

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, Field, ValidationError

from journeys.models import SendRequest
from journeys.settings import Settings

UNSUBSCRIBE = "unsubscribe"
OPEN = "open"
CLICK = "click"
NPS = "nps"
WEB = "web"
# The status callback URL of an SMS: Twilio hands it back with each delivery report, and the
# gateway reads from it the send the report is about.
SMS_STATUS = "sms_status"
# A team member's links in plan notifications: one task (complete, approve, reject), their page of
# open tasks, and their calendar feed of due dates.
TASK = "task"
MY_TASKS = "my_tasks"
CALENDAR = "calendar"

_DAY = 24 * 3600
# An unsubscribe link must keep working for as long as someone may dig an old message out of
# their inbox; a year covers that while still retiring links from leaked or ancient mail.
UNSUBSCRIBE_MAX_AGE = 365 * _DAY
# Opens that arrive later than this no longer say anything useful about a journey step.
OPEN_MAX_AGE = 90 * _DAY
# People click links in old mail as long as they unsubscribe from it.
CLICK_MAX_AGE = UNSUBSCRIBE_MAX_AGE
# An answer months after the purchase says little about it.
NPS_MAX_AGE = 90 * _DAY
# The site asks for a fresh token (through the API) at sign-in; a month covers long sessions.
WEB_MAX_AGE = 30 * _DAY
# Carriers report within hours, 'undelivered' sometimes days later; a week covers both.
SMS_STATUS_MAX_AGE = 7 * _DAY
# A task link lives as long as a plan may run late; a person's page and feed as long as an
# unsubscribe link (a calendar keeps polling the same URL for as long as it is subscribed).
TASK_MAX_AGE = 180 * _DAY
MY_TASKS_MAX_AGE = UNSUBSCRIBE_MAX_AGE
CALENDAR_MAX_AGE = UNSUBSCRIBE_MAX_AGE

MAX_AGE = {
    UNSUBSCRIBE: UNSUBSCRIBE_MAX_AGE,
    OPEN: OPEN_MAX_AGE,
    CLICK: CLICK_MAX_AGE,
    NPS: NPS_MAX_AGE,
    WEB: WEB_MAX_AGE,
    SMS_STATUS: SMS_STATUS_MAX_AGE,
    TASK: TASK_MAX_AGE,
    MY_TASKS: MY_TASKS_MAX_AGE,
    CALENDAR: CALENDAR_MAX_AGE,
}


class BadToken(ValueError):
    """The token was forged, altered, issued for another purpose, or has expired."""


class ContactClaims(BaseModel):
    """A token that names a contact (see `Gateway.contact_claims`)."""

    contact_id: str


class MessageClaims(ContactClaims):
    """What a link in a message says: which send, to whom, from which run."""

    channel: str
    key: str
    journey_id: str
    step_id: str
    # When the link was signed: as its message was composed, moments before it was handed over.
    # Taken from the token's own stamp when it is read; never part of what is signed.
    signed_at: datetime | None = Field(None, exclude=True)


class ClickClaims(MessageClaims):
    # The link as it was in the template: the only place a click can lead to.
    url: str


class WebClaims(ContactClaims):
    """The website visitor, identified by the site that embedded the SDK."""


class TaskClaims(BaseModel):
    """A link to one task of one plan run, for the person it was sent to."""

    plan_id: str
    task_id: str
    person_id: str
    signed_at: datetime | None = Field(None, exclude=True)


class PersonClaims(BaseModel):
    """A team member's own page or calendar feed."""

    person_id: str
    signed_at: datetime | None = Field(None, exclude=True)


Claims = TypeVar("Claims", bound=BaseModel)

# What URLSafeTimedSerializer writes: payload (after a '.' when compressed), time and signature,
# each base64url without padding. Its decoder forgives padding and stray characters, so an
# altered token ("...==", a letter from another alphabet) would verify: the shape is checked first.
_TOKEN_SHAPE = re.compile(r"^\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=purpose)


def make_token(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(secret, purpose).dumps(payload)


def read_token(secret: str, purpose: str, token: str, max_age_seconds: int) -> dict[str, Any]:
    """The payload of a token this deployment signed for `purpose` at most `max_age_seconds` ago."""
    return _read_signed(secret, purpose, token, max_age_seconds)[0]


def _read_signed(
    secret: str, purpose: str, token: str, max_age_seconds: int
) -> tuple[dict[str, Any], datetime]:
    """The payload of the token and when it was signed."""
    if not _TOKEN_SHAPE.fullmatch(token):
        raise BadToken(f"{purpose} token is not shaped like a token: altered")
    try:
        payload, signed_at = _serializer(secret, purpose).loads(
            token, max_age=max_age_seconds, return_timestamp=True
        )
    except SignatureExpired:
        raise BadToken(f"{purpose} token expired (older than {max_age_seconds} s)") from None
    except BadData:
        raise BadToken(f"{purpose} token is forged, altered or not for this purpose") from None
    if not isinstance(payload, dict):
        raise BadToken(f"{purpose} token does not carry a mapping")
    return payload, signed_at


def verify(settings: Settings, purpose: str, token: str, claims: type[Claims]) -> Claims:
    """The claims of a token signed for `purpose` within its `MAX_AGE`; BadToken otherwise."""
    payload, signed_at = _read_signed(
        settings.secret_key.get_secret_value(), purpose, token, MAX_AGE[purpose]
    )
    try:
        return claims.model_validate({**payload, "signed_at": signed_at})
    except ValidationError:
        # Signed by us, but not in this shape: made by another version for another use.
        raise BadToken(f"{purpose} token does not carry what a {purpose} link needs") from None


def _sign(settings: Settings, purpose: str, claims: BaseModel) -> str:
    return make_token(settings.secret_key.get_secret_value(), purpose, claims.model_dump())


def _base(settings: Settings) -> str:
    return settings.gateway_url.rstrip("/")


def _message_claims(req: SendRequest) -> MessageClaims:
    return MessageClaims(
        contact_id=req.contact_id,
        channel=req.channel,
        key=req.key,
        journey_id=req.journey_id,
        step_id=req.step_id,
    )


def message_links(settings: Settings, req: SendRequest) -> dict[str, str]:
    """Signed gateway URLs for one message: `unsubscribe`, `open_pixel` and `nps` (the survey)."""
    claims = _message_claims(req)
    base = _base(settings)
    return {
        "unsubscribe": f"{base}/u/{_sign(settings, UNSUBSCRIBE, claims)}",
        "open_pixel": f"{base}/t/o/{_sign(settings, OPEN, claims)}",
        "nps": f"{base}/nps/{_sign(settings, NPS, claims)}",
    }


def tracked_url(settings: Settings, req: SendRequest, url: str) -> str:
    """What a message links to instead of `url`: the gateway's click redirect, which reports the
    click and leads on to `url`. Links to the gateway itself (unsubscribe, survey) stay as they
    are: they report their own events."""
    base = _base(settings)
    if url.startswith(f"{base}/"):
        return url
    claims = ClickClaims(**_message_claims(req).model_dump(), url=url)
    return f"{base}/t/c/{_sign(settings, CLICK, claims)}"


def status_callback_url(settings: Settings, req: SendRequest) -> str:
    """Where Twilio reports what became of an SMS (delivered, undelivered, failed)."""
    token = _sign(settings, SMS_STATUS, _message_claims(req))
    return f"{_base(settings)}/twilio/status?token={token}"


def web_token(settings: Settings, contact_id: str) -> str:
    """The token a site puts in the SDK's script tag to identify the signed-in contact."""
    return _sign(settings, WEB, WebClaims(contact_id=contact_id))


def task_links(settings: Settings, plan_id: str, task_id: str, person_id: str) -> dict[str, str]:
    """Signed gateway URLs a plan notification carries for `person_id`: `task` (the task's page,
    where it is completed, approved or rejected), `my_tasks` and `calendar`."""
    base = _base(settings)
    task = _sign(settings, TASK, TaskClaims(plan_id=plan_id, task_id=task_id, person_id=person_id))
    return {"task": f"{base}/tasks/{task}", **person_links(settings, person_id)}


def person_links(settings: Settings, person_id: str) -> dict[str, str]:
    """A team member's page of open tasks and their iCalendar feed of due dates."""
    base, claims = _base(settings), PersonClaims(person_id=person_id)
    return {
        "my_tasks": f"{base}/my-tasks/{_sign(settings, MY_TASKS, claims)}",
        "calendar": f"{base}/calendar/{_sign(settings, CALENDAR, claims)}.ics",
    }
