"""Who may see the dashboard: whoever gives JOURNEYS_DASHBOARD_PASSWORD by HTTP Basic (any user
name). Basic, not a bearer key or a login form: every browser asks for it by itself and keeps it
for the session, so the pages need no script, no cookie and no CSRF token, and curl sends it
with `-u :password` for the JSON twins. The gateway is served over TLS outside a laptop."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from gateway.deps import GatewayDep

_basic = HTTPBasic(auto_error=False, realm="journeys dashboard")


async def require_operator(
    gw: GatewayDep, credentials: Annotated[HTTPBasicCredentials | None, Security(_basic)]
) -> None:
    password = gw.settings.dashboard_password
    if password is None:
        # Off unless an operator switched it on: say how, rather than look like a typo.
        raise HTTPException(
            404,
            "the dashboard is off: set JOURNEYS_DASHBOARD_PASSWORD on the gateway (at least "
            "16 characters outside dev) and sign in with it",
        )
    given = credentials.password if credentials else ""
    if not hmac.compare_digest(given.encode(), password.get_secret_value().encode()):
        raise HTTPException(
            401,
            "sign in with the dashboard's password (JOURNEYS_DASHBOARD_PASSWORD), any user name",
            headers={"WWW-Authenticate": 'Basic realm="journeys dashboard", charset="UTF-8"'},
        )
