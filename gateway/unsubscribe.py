"""Unsubscribe: a confirmation page, and the POST that mail providers send for RFC 8058 one-click
unsubscribe (`List-Unsubscribe=One-Click`) and the page's own form.

The suppression in the store is what stops mail: every send activity checks it, whatever journey
the send comes from. The `unsubscribed` event lets runs that exit on it end now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from gateway.deps import Gateway, gateway
from gateway.outbox import hand_over
from gateway.pages import TokenRoute, page
from gateway.responses import documented
from journeys import events
from journeys.channels import CHANNELS
from journeys.models import JourneyEvent
from journeys.tokens import UNSUBSCRIBE, MessageClaims, verify

router = APIRouter(route_class=TokenRoute, responses=documented(400))


def _what(claims: MessageClaims) -> str:
    return f"{CHANNELS[claims.channel].display} messages"


@router.get("/u/{token}", summary="Unsubscribe confirmation page", response_class=HTMLResponse)
async def confirm(token: str, gw: Gateway = Depends(gateway)) -> HTMLResponse:
    # Only shows a form: link scanners follow every GET, and must not unsubscribe anyone.
    claims = verify(gw.settings, UNSUBSCRIBE, token, MessageClaims)
    return page(
        "Unsubscribe",
        f"<p>Stop receiving our {escape(_what(claims))}?</p>"
        '<form method="post">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<button type=submit>Unsubscribe</button></form>",
    )


@router.post(
    "/u/{token}",
    summary="Unsubscribe (RFC 8058 one-click)",
    response_class=HTMLResponse,
    responses=documented(413),
)
async def unsubscribe(token: str, gw: Gateway = Depends(gateway)) -> HTMLResponse:
    """Suppress the contact on the message's channel; the token is the only credential, so the
    body (`List-Unsubscribe=One-Click` from a mail provider, or the page's form) is not read."""
    claims = await gw.contact_claims(UNSUBSCRIBE, token, MessageClaims)
    contact_id, channel = claims.contact_id, claims.channel
    # Idempotent: unsubscribing again changes nothing and tells the runs nothing new.
    if channel not in await gw.store.suppressed_channels(contact_id):
        await gw.store.suppress(contact_id, channel, "unsubscribed")
        event = JourneyEvent(
            kind=events.UNSUBSCRIBED,
            step=claims.step_id,
            occurred_at=datetime.now(UTC),
            # Which message it came from, for unsubscribe rates per message.
            data={"channel": channel, "journey_id": claims.journey_id},
        )
        await hand_over(gw, contact_id, event)
    return page("You are unsubscribed", f"<p>You will receive no more {escape(_what(claims))}.</p>")
