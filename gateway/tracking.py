"""Open pixel and click redirect: a mail client's request becomes an event for the run that sent
the message."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import RedirectResponse

from gateway.deps import Gateway, gateway
from gateway.outbox import hand_over
from gateway.pages import TokenRoute
from gateway.responses import documented
from journeys import events
from journeys.models import JourneyEvent
from journeys.tokens import CLICK, OPEN, ClickClaims, MessageClaims

log = structlog.get_logger(__name__)

router = APIRouter(route_class=TokenRoute, responses=documented(400))

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

# User agents of fetches no person asked for: link scanners and previewers, and fetchers that
# load what a message links to on their own. Lower-case parts of the User-Agent header.
MACHINE_USER_AGENT_PARTS = (
    "yahoomailproxy",  # Yahoo's fetcher of the URLs embedded in mail
    "bingpreview",  # Outlook.com and Bing link previews
    "skypeuripreview",  # Teams and Skype link previews
    "microsoft office existence discovery",  # Office probes a link before opening it
    "barracuda",  # mail security gateways that follow every link ...
    "mimecast",
    "proofpoint",
    "bot",  # ... and anything that says it is a robot
    "crawler",
    "spider",
)
# Apple Mail Privacy Protection loads every image when the message arrives, through proxies that
# send this bare user agent (Apple Mail itself names the device). Gmail's GoogleImageProxy is
# deliberately not a machine: it fetches when the recipient opens the message, hiding who, not
# whether; counting it as a machine would lose every Gmail open.
APPLE_PRIVACY_PROXY = "mozilla/5.0"
# A fetch this soon after the server accepted the message was made on arrival, not by a reader.
MACHINE_WINDOW = timedelta(seconds=10)


def is_machine(user_agent: str, signed_at: datetime | None, now: datetime) -> bool:
    """Whether a request for a tracked message came from automation rather than a person:
    by its user agent, or by coming within MACHINE_WINDOW of the link being signed (the
    message was composed and handed over in the same moment)."""
    agent = user_agent.strip().lower()
    if agent in ("", APPLE_PRIVACY_PROXY) or any(p in agent for p in MACHINE_USER_AGENT_PARTS):
        return True
    return signed_at is not None and now - signed_at < MACHINE_WINDOW


async def report_message_event(
    gw: Gateway, claims: MessageClaims, kind: str, data: dict[str, Any]
) -> None:
    """Hand `kind` about the send in `claims` to the run that sent it."""
    event = JourneyEvent(kind=kind, step=claims.step_id, occurred_at=datetime.now(UTC), data=data)
    await hand_over(gw, claims.contact_id, event, claims.journey_id)


async def report_fetch(
    gw: Gateway, claims: MessageClaims, kind: str, user_agent: str, **data: Any
) -> None:
    """A tracked link or pixel was fetched: report `kind`, marked `machine` when automation
    (a privacy proxy, a link scanner) fetched it rather than a person."""
    machine = is_machine(user_agent, claims.signed_at, datetime.now(UTC))
    await report_message_event(gw, claims, kind, {**data, "machine": machine})


@router.get("/t/o/{token}", summary="Open pixel", response_class=Response)
async def open_pixel(
    token: str,
    user_agent: Annotated[str, Header()] = "",
    gw: Gateway = Depends(gateway),
) -> Response:
    claims = await gw.contact_claims(OPEN, token, MessageClaims)
    await report_fetch(gw, claims, events.OPENED, user_agent)
    return Response(
        PIXEL,
        media_type="image/gif",
        # Every open must reach us: no browser or proxy may answer from a cache.
        headers={"Cache-Control": "no-store, max-age=0", "Pragma": "no-cache"},
    )


@router.get(
    "/t/c/{token}", summary="Click redirect", response_class=RedirectResponse, status_code=302
)
async def click(
    token: str,
    user_agent: Annotated[str, Header()] = "",
    gw: Gateway = Depends(gateway),
) -> RedirectResponse:
    # The destination comes from the signed token only: nobody can make us redirect elsewhere.
    claims = await gw.contact_claims(CLICK, token, ClickClaims)
    await report_fetch(gw, claims, events.CLICKED, user_agent, url=claims.url)
    return RedirectResponse(
        claims.url,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
