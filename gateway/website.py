"""The website SDK (`/sdk.js`) and the calls it makes from the site's pages (`/w/...`).

The site is another origin, so every `/w` answer allows any origin to read it; no cookies are
involved: the signed contact token in the script tag is the only credential.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from gateway.deps import Gateway, gateway
from gateway.outbox import hand_over
from gateway.responses import documented
from journeys import events
from journeys.models import JourneyEvent
from journeys.tokens import WEB, BadToken, WebClaims

SDK = (Path(__file__).parent / "static" / "sdk.js").read_text(encoding="utf-8")

_ANY_ORIGIN = {"Access-Control-Allow-Origin": "*"}


class _CrossOriginRoute(APIRoute):
    """Every answer, errors included, readable from the site's origin."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def cross_origin(request: Request) -> Response:
            try:
                response = await handler(request)
            except BadToken as err:
                response = JSONResponse({"detail": str(err)}, status_code=400)
            except HTTPException as err:
                response = await http_exception_handler(request, err)
            except RequestValidationError as err:
                response = await request_validation_exception_handler(request, err)
            response.headers.update(_ANY_ORIGIN)
            return response

        return cross_origin


router = APIRouter()
# Where the SDK's calls go: every answer there is readable from the site's origin.
SITE_PREFIX = "/w"
_site = APIRouter(prefix=SITE_PREFIX, route_class=_CrossOriginRoute, responses=documented(400))


class PageVisit(BaseModel):
    token: str = Field(max_length=4096)
    url: str = Field(max_length=2048, pattern=r"^https?://")


class ContactToken(BaseModel):
    token: str = Field(max_length=4096)


class OnsiteMessage(BaseModel):
    key: str
    kind: str
    body: str
    nps_url: str | None = None


class WaitingMessages(BaseModel):
    messages: list[OnsiteMessage]


async def _contact(gw: Gateway, token: str) -> str:
    return (await gw.contact_claims(WEB, token, WebClaims)).contact_id


@router.get("/sdk.js", summary="The website SDK", response_class=Response)
async def sdk() -> Response:
    return Response(
        SDK,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


@_site.options("/{path:path}", include_in_schema=False)
async def preflight(path: str) -> Response:
    # The SDK posts JSON, which browsers announce with a preflight request.
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
        },
    )


@_site.post(
    "/visits", status_code=204, summary="Report a page visit", responses=documented(413, 503)
)
async def visit(body: PageVisit, gw: Gateway = Depends(gateway)) -> Response:
    """Hand `visited_url` to the contact's runs and start the journeys it triggers."""
    contact_id = await _contact(gw, body.token)
    # Query strings and fragments often carry an email or a token: the run gets the page only.
    page = urlsplit(body.url)._replace(query="", fragment="").geturl()
    event = JourneyEvent(kind=events.VISITED_URL, occurred_at=datetime.now(UTC), data={"url": page})
    if not await hand_over(gw, contact_id, event):
        raise HTTPException(503, "the visit could not be recorded; retry later")
    return Response(status_code=204)


@_site.get("/messages", summary="On-site messages waiting for the contact")
async def waiting(token: str, gw: Gateway = Depends(gateway)) -> WaitingMessages:
    contact_id = await _contact(gw, token)
    rows = await gw.store.pending_onsite(contact_id)
    return WaitingMessages(
        messages=[OnsiteMessage(key=row["delivery_key"], **row["content"]) for row in rows]
    )


@_site.post(
    "/messages/{key:path}/shown",
    status_code=204,
    summary="Mark a message shown",
    responses=documented(404, 413),
)
async def shown(key: str, body: ContactToken, gw: Gateway = Depends(gateway)) -> Response:
    """Mark the message shown and hand `onsite_shown` (about its send step) to its run."""
    contact_id = await _contact(gw, body.token)
    row = next(
        (r for r in await gw.store.pending_onsite(contact_id) if r["delivery_key"] == key), None
    )
    if row is None or not await gw.store.mark_onsite_shown(key, contact_id):
        raise HTTPException(404, "no such message waiting for this contact")
    event = JourneyEvent(
        kind=events.ONSITE_SHOWN,
        step=row["step_id"],
        occurred_at=datetime.now(UTC),
        data={"kind": row["content"].get("kind")},
    )
    await hand_over(gw, contact_id, event, row["journey_id"])
    return Response(status_code=204)


router.include_router(_site)
