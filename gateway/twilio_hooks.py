"""Twilio's webhooks: delivery reports for the SMS we send, and the messages people send back.

Both check X-Twilio-Signature (an HMAC of the public URL and the form, keyed by the account's
auth token) before anything else: a request that does not verify gets 403 and changes nothing.
The URL is the one Twilio was given, so it is built from JOURNEYS_GATEWAY_URL, not from what
reached us through proxies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from gateway.deps import GatewayDep
from gateway.outbox import hand_over
from gateway.responses import documented
from journeys import events
from journeys.models import JourneyEvent
from journeys.tokens import SMS_STATUS, BadToken, MessageClaims

log = structlog.get_logger(__name__)

# The statuses a journey can react to; queued, sent and the like are steps on the way.
REPORTED_STATUSES = frozenset({events.DELIVERED, events.UNDELIVERED, events.FAILED})
# The opt-out and opt-in keywords carriers and Twilio honour, matched on the whole message.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
STOPPED_REPLY = (
    "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
)
STARTED_REPLY = "You are subscribed again. Reply STOP to unsubscribe."
# The event could not even be recorded (nor its id remembered): Twilio is told to retry.
STORE_DOWN = HTTPException(503, "the event could not be recorded; retry later")

router = APIRouter(prefix="/twilio", tags=["twilio"], responses=documented(400, 403, 413, 415, 503))


async def twilio_form(request: Request, gw: GatewayDep) -> dict[str, str]:
    """The form Twilio posted, once its signature checks out."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise HTTPException(415, "Twilio posts application/x-www-form-urlencoded forms")
    form = await request.form()
    query = request.url.query
    url = gw.settings.gateway_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")
    validator = RequestValidator(gw.settings.twilio_auth_token.get_secret_value())
    if not validator.validate(url, form, request.headers.get("X-Twilio-Signature", "")):
        log.warning("twilio webhook signature does not verify", path=request.url.path)
        raise HTTPException(403, "X-Twilio-Signature does not match this request")
    fields = {key: str(value) for key, value in form.items()}
    if not fields.get("MessageSid"):
        raise HTTPException(400, "MessageSid is missing")
    return fields


TwilioForm = Annotated[dict[str, str], Depends(twilio_form)]


def twiml(message: str | None = None) -> Response:
    reply = MessagingResponse()
    if message:
        reply.message(message)
    return Response(str(reply), media_type="application/xml")


@router.post("/status", status_code=204, response_class=Response)
async def status_callback(token: str, form: TwilioForm, gw: GatewayDep) -> Response:
    """A delivery report for one SMS: delivered, undelivered and failed reach its run as events."""
    try:
        claims = await gw.contact_claims(SMS_STATUS, token, MessageClaims)
    except BadToken:
        raise HTTPException(
            400, "the status callback token is forged, altered or expired"
        ) from None
    status = form.get("MessageStatus", "")
    if status in REPORTED_STATUSES:
        event = JourneyEvent(
            kind=status,
            step=claims.step_id,
            occurred_at=datetime.now(UTC),
            data={
                "status": status,
                "error_code": form.get("ErrorCode"),
                "message_sid": form["MessageSid"],
            },
        )
        # Twilio may report the same status twice; the run hears it once.
        once_id = f"twilio:{form['MessageSid']}:{status}"
        if not await hand_over(gw, claims.contact_id, event, claims.journey_id, once_id):
            raise STORE_DOWN
    return Response(status_code=204)


@router.post("/inbound", response_class=Response)
async def inbound(form: TwilioForm, gw: GatewayDep) -> Response:
    """An SMS someone sent us. STOP and its synonyms suppress SMS for the contacts with that
    number and end their journeys that exit on `unsubscribed`; START lifts the suppression;
    anything else reaches their runs as `sms_reply`. Answered with TwiML (a confirmation for
    STOP and START), 200 even for a number we do not know, so Twilio does not retry.

    A STOP or START counts once per MessageSid, so a signed request captured and posted again
    changes nothing. Twilio's inbound webhook says nothing of when the message was sent, so
    they are ordered by arrival: one that arrived before a change already applied (handled late
    by another gateway process) is ignored."""
    contact_ids = await gw.store.contact_ids_by_phone(form.get("From", ""))
    sid = form["MessageSid"]
    if not contact_ids:
        log.info("sms from a number no contact has", message_sid=sid)
        return twiml()
    body = form.get("Body", "")
    command = " ".join(body.split()).upper()
    now = datetime.now(UTC)
    if command in START_WORDS:
        for contact_id in contact_ids:
            outcome = await gw.store.opt_in_out(contact_id, "sms", False, now, f"twilio:{sid}")
            log.info("sms start", contact_id=contact_id, message_sid=sid, outcome=outcome)
        return twiml(STARTED_REPLY)

    stop = command in STOP_WORDS
    for contact_id in contact_ids:
        if stop:
            outcome = await gw.store.opt_in_out(contact_id, "sms", True, now, f"twilio:{sid}")
            log.info("sms stop", contact_id=contact_id, message_sid=sid, outcome=outcome)
            if outcome == "outdated":
                continue
            # Also for a duplicate: Twilio's retry of a STOP whose event was not recorded.
            event = JourneyEvent(kind=events.UNSUBSCRIBED, occurred_at=now, data={"channel": "sms"})
        else:
            # What a person wrote stays out of workflow histories (it may be anything personal);
            # the run learns that they replied.
            event = JourneyEvent(kind=events.SMS_REPLY, occurred_at=now, data={"chars": len(body)})
        once_id = f"twilio:{sid}:{contact_id}"
        if not await hand_over(gw, contact_id, event, once_id=once_id):
            raise STORE_DOWN
    if stop:
        return twiml(STOPPED_REPLY)
    return twiml()
