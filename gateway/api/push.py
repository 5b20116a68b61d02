"""/v1 push subscriptions and the website: register a browser's or a device's subscription,
and get the token a site hands to /sdk.js."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.api.common import KnownContact
from gateway.deps import GatewayDep
from gateway.responses import documented
from journeys.tokens import web_token

router = APIRouter()

_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def _base64url_bytes(value: str, size: int, what: str) -> str:
    if _BASE64URL.match(value):
        try:
            if len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) == size:
                return value
        except binascii.Error:
            pass
    raise ValueError(f"must be {what}, base64url-encoded ({size} bytes)")


class WebPushKeys(BaseModel):
    p256dh: str
    auth: str

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, v: str) -> str:
        return _base64url_bytes(v, 65, "the browser's P-256 public key")

    @field_validator("auth")
    @classmethod
    def _auth(cls, v: str) -> str:
        return _base64url_bytes(v, 16, "the browser's auth secret")


class WebPushSubscription(BaseModel):
    """The browser's `PushSubscription.toJSON()` plus `"kind": "web"`; its other members
    (expirationTime) are ignored."""

    kind: Literal["web"]
    endpoint: str = Field(max_length=2048)
    keys: WebPushKeys

    @field_validator("endpoint")
    @classmethod
    def _url(cls, v: str) -> str:
        # Kept exactly as given (no URL normalization): it is the push service's address.
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("must be the push service's URL (https://...)")
        return v


class MobileToken(BaseModel):
    """A device's registration token for the mobile app (FCM)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mobile"]
    token: str = Field(min_length=1, max_length=4096)


class WebToken(BaseModel):
    # Embedded by the website for /sdk.js, which identifies the contact with it.
    token: str


@router.post(
    "/contacts/{contact_id}/push-subscriptions", status_code=204, responses=documented(404)
)
async def add_push_subscription(
    contact_id: KnownContact,
    body: Annotated[WebPushSubscription | MobileToken, Body(discriminator="kind")],
    gw: GatewayDep,
) -> None:
    """Register a web push subscription (kind web) or a mobile app token (kind mobile);
    registering the same one again changes nothing."""
    if isinstance(body, WebPushSubscription):
        await gw.store.add_push_subscription(
            contact_id, "web", body.endpoint, body.keys.model_dump()
        )
    else:
        await gw.store.add_push_subscription(contact_id, "mobile", body.token, {})


@router.get("/contacts/{contact_id}/web-token", response_model=WebToken, responses=documented(404))
async def get_web_token(contact_id: KnownContact, gw: GatewayDep) -> WebToken:
    """A signed token naming the contact, for the website to hand to /sdk.js."""
    return WebToken(token=web_token(gw.settings, contact_id))
