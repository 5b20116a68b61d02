"""Who may call /v1: the bearer of JOURNEYS_API_KEY."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.deps import GatewayDep

_bearer = HTTPBearer(auto_error=False, description="The value of JOURNEYS_API_KEY")


async def require_api_key(
    gw: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    key = gw.settings.api_key.get_secret_value() if gw.settings.api_key else ""
    if not key:
        # An empty key would match an empty bearer: no key means no API at all.
        raise HTTPException(503, "the API is switched off: set JOURNEYS_API_KEY on the gateway")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise HTTPException(
            401,
            "missing or wrong API key: send 'Authorization: Bearer <JOURNEYS_API_KEY>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
