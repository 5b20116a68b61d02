"""Signed, expiring tokens for the links in messages (unsubscribe, open pixel, ...).

A token is signed, not encrypted: anyone can read its payload, so it carries opaque ids only
(contact id, journey and step ids, the delivery key), never an address. The purpose is the salt,
so an open-pixel token cannot be replayed as an unsubscribe token. Expiry is checked when a
token is read (itsdangerous stamps the signing time), which is why the limits below are the
gateway's to pass to `read_token`.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from journeys.models import SendRequest
from journeys.settings import Settings

UNSUBSCRIBE = "unsubscribe"
OPEN = "open"

# An unsubscribe link must keep working for as long as someone may dig an old message out of
# their inbox; a year covers that while still retiring links from leaked or ancient mail.
UNSUBSCRIBE_MAX_AGE = 365 * 24 * 3600
# Opens that arrive later than this no longer say anything useful about a journey step.
OPEN_MAX_AGE = 90 * 24 * 3600


class BadToken(ValueError):
    """The token was forged, altered, issued for another purpose, or has expired."""


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=purpose)


def make_token(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(secret, purpose).dumps(payload)


def read_token(secret: str, purpose: str, token: str, max_age_seconds: int) -> dict[str, Any]:
    """The payload of a token this deployment signed for `purpose` at most `max_age_seconds` ago."""
    try:
        payload = _serializer(secret, purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise BadToken(f"{purpose} token expired (older than {max_age_seconds} s)") from None
    except BadData:
        raise BadToken(f"{purpose} token is forged, altered or not for this purpose") from None
    if not isinstance(payload, dict):
        raise BadToken(f"{purpose} token does not carry a mapping")
    return payload


def message_links(settings: Settings, req: SendRequest) -> dict[str, str]:
    """Signed gateway URLs for one message: `unsubscribe` and `open_pixel`."""
    secret = settings.secret_key.get_secret_value()
    base = settings.gateway_url.rstrip("/")
    payload = {
        "contact_id": req.contact_id,
        "channel": req.channel,
        "key": req.key,
        "journey_id": req.journey_id,
        "step_id": req.step_id,
    }
    return {
        "unsubscribe": f"{base}/u/{make_token(secret, UNSUBSCRIBE, payload)}",
        "open_pixel": f"{base}/t/o/{make_token(secret, OPEN, payload)}",
    }
