"""Twilio's webhooks over real HTTP, signed the way Twilio signs them (the twilio library's own
RequestValidator), against the dev server, a running worker and the Twilio stand-in."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import ActivityEnvironment
from twilio.request_validator import RequestValidator

from activities.sms import SmsActivities
from gateway.twilio_hooks import STARTED_REPLY, STOPPED_REPLY
from journeys.identity import workflow_id
from journeys.models import JourneyResult, SendRequest, SendResult
from tests.api_fixtures import GatewayStack, new_contact_id
from tests.channel_fixtures import TWILIO_SID, TWILIO_TOKEN, make_request
from workflows.journey import JourneyWorkflow

PHONE = "+48601234567"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


async def twilio_post(
    stack: GatewayStack, path_and_query: str, params: dict[str, str], forged: bool = False
) -> httpx.Response:
    """POST a form to the gateway as Twilio does: signed over the public URL and the form."""
    url = stack.settings.gateway_url + path_and_query
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    if forged:
        signature = RequestValidator("someone-else's-token").compute_signature(url, params)
    return await stack.http.post(
        path_and_query, data=params, headers={"X-Twilio-Signature": signature}
    )


def inbound_sms(body: str, sender: str = PHONE, sid: str | None = None) -> dict[str, str]:
    return {
        "MessageSid": sid or f"SM{new_contact_id()[2:]:0>32}",
        "AccountSid": TWILIO_SID,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }


async def start_lead_nurturing(
    stack: GatewayStack,
) -> tuple[str, WorkflowHandle[JourneyWorkflow, JourneyResult]]:
    """A contact with a phone, in lead_nurturing, waiting for the intro email to be opened."""
    contact_id = new_contact_id()
    r = await stack.http.put(
        f"/v1/contacts/{contact_id}",
        json={
            "email": "ann@example.com",
            "phone": PHONE,
            "consent": {"email": True, "sms": True},
            "attributes": {"first_name": "Ann"},
        },
    )
    assert r.status_code == 201, r.text
    r = await stack.http.post(f"/v1/contacts/{contact_id}/journeys/lead_nurturing")
    assert r.status_code == 201, r.text
    await stack.mail.wait_for(1, timeout=20)
    handle = stack.env.client.get_workflow_handle_for(
        JourneyWorkflow.run, workflow_id("lead_nurturing", contact_id)
    )
    return contact_id, handle


def sms_request(contact_id: str, step: str, attempt: int = 1) -> SendRequest:
    """A send of lead_nurturing's SMS step, as its run would ask for it."""
    return make_request("sms", contact_id, step, "lead_nurturing", "lead_inbox_nudge", attempt)


async def send_sms(stack: GatewayStack, req: SendRequest) -> SendResult:
    acts = SmsActivities(stack.store, stack.settings)
    try:
        result: SendResult = await ActivityEnvironment().run(acts.send_sms, req)
    finally:
        await acts.close()
    return result


async def test_stop_suppresses_sms_ends_the_journey_and_start_lifts_it(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    contact_id, handle = await start_lead_nurturing(stack)

    forged = await twilio_post(stack, "/twilio/inbound", inbound_sms("STOP"), forged=True)
    assert forged.status_code == 403
    unsigned = await stack.http.post("/twilio/inbound", data=inbound_sms("STOP"))
    assert unsigned.status_code == 403
    assert await stack.store.suppressed_channels(contact_id) == set()
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    stop = await twilio_post(stack, "/twilio/inbound", inbound_sms("  opt   out \n"))
    assert stop.status_code == 200
    assert stop.headers["content-type"].startswith("application/xml")
    assert f"<Message>{STOPPED_REPLY}</Message>" in stop.text
    assert await stack.store.suppressed_channels(contact_id) == {"sms"}
    result = await asyncio.wait_for(handle.result(), 20)
    assert result.reason == "exit_event"
    status = await handle.query(JourneyWorkflow.status)
    assert [(e.kind, e.data) for e in status.events] == [("unsubscribed", {"channel": "sms"})]

    refused = await send_sms(stack, sms_request(contact_id, "inbox_nudge_sms"))
    assert (
        refused.status == "failed"
        and refused.reason == "contact is suppressed on sms (unsubscribed, STOP or bounced)"
    )
    assert stack.sms.requests == 0 and stack.sms.messages == []

    start = await twilio_post(stack, "/twilio/inbound", inbound_sms("start"))
    assert start.status_code == 200
    assert f"<Message>{STARTED_REPLY}</Message>" in start.text
    assert await stack.store.suppressed_channels(contact_id) == set()
    sent = await send_sms(stack, sms_request(contact_id, "sms_followup"))
    assert sent.status == "sent"
    assert [m["to"] for m in stack.sms.messages] == [PHONE]


async def test_replies_reach_the_runs_and_unknown_numbers_are_ignored(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    contact_id, handle = await start_lead_nurturing(stack)
    reply = inbound_sms("Stop by tomorrow?", sid="SM" + "1" * 32)
    for _ in range(2):  # Twilio retrying the webhook: the run hears the reply once
        r = await twilio_post(stack, "/twilio/inbound", reply)
        assert (r.status_code, r.text) == (200, EMPTY_TWIML)
    status = await handle.query(JourneyWorkflow.status)
    assert [(e.kind, e.data) for e in status.events] == [
        ("sms_reply", {"chars": len("Stop by tomorrow?")})  # the words stay out of the history
    ]
    assert await stack.store.suppressed_channels(contact_id) == set()

    stranger = await twilio_post(stack, "/twilio/inbound", inbound_sms("STOP", "+48601000000"))
    assert (stranger.status_code, stranger.text) == (200, EMPTY_TWIML)
    assert await stack.store.suppressed_channels(contact_id) == set()

    as_json = await stack.http.post("/twilio/inbound", json=inbound_sms("hi"))
    assert as_json.status_code == 415
    no_sid = {k: v for k, v in inbound_sms("hi").items() if k != "MessageSid"}
    assert (await twilio_post(stack, "/twilio/inbound", no_sid)).status_code == 400


async def test_a_status_callback_reaches_the_run_the_sms_came_from(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    contact_id, handle = await start_lead_nurturing(stack)
    # The run's own SMS comes after a 3-day wait; the activity is called as that step would.
    sent = await send_sms(stack, sms_request(contact_id, "inbox_nudge_sms"))
    assert sent.status == "sent"
    (message,) = stack.sms.messages
    callback = message["status_callback"]
    assert callback.startswith(f"{stack.settings.gateway_url}/twilio/status?token=")
    path = callback.removeprefix(stack.settings.gateway_url)

    def report(status: str, **extra: str) -> dict[str, str]:
        return {
            "MessageSid": message["sid"],
            "MessageStatus": status,
            "AccountSid": TWILIO_SID,
            "From": message["from"],
            "To": message["to"],
            **extra,
        }

    async def events() -> list[tuple[str, str | None, dict[str, Any]]]:
        status = await handle.query(JourneyWorkflow.status)
        return [(e.kind, e.step, e.data) for e in status.events]

    assert (await twilio_post(stack, path, report("sent"))).status_code == 204
    undelivered = report("undelivered", ErrorCode="30003")
    forged = await twilio_post(stack, path, undelivered, forged=True)
    assert forged.status_code == 403
    tampered = await twilio_post(stack, path[:-3] + "abc", undelivered)
    assert tampered.status_code == 400
    assert await events() == []

    for _ in range(2):  # reported twice, heard once
        assert (await twilio_post(stack, path, undelivered)).status_code == 204
    expected = {"status": "undelivered", "error_code": "30003", "message_sid": message["sid"]}
    assert await events() == [("undelivered", "inbox_nudge_sms", expected)]
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_a_captured_start_or_stop_replayed_later_changes_nothing(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    contact_id, handle = await start_lead_nurturing(stack)
    start = inbound_sms("START")
    stop = inbound_sms("STOP")
    assert (await twilio_post(stack, "/twilio/inbound", start)).status_code == 200
    assert (await twilio_post(stack, "/twilio/inbound", stop)).status_code == 200
    assert await stack.store.suppressed_channels(contact_id) == {"sms"}
    # Someone who captured the signed START posts it again: it was handled, so it is ignored.
    assert (await twilio_post(stack, "/twilio/inbound", start)).status_code == 200
    assert await stack.store.suppressed_channels(contact_id) == {"sms"}

    again = inbound_sms("start")
    assert (await twilio_post(stack, "/twilio/inbound", again)).status_code == 200
    assert await stack.store.suppressed_channels(contact_id) == set()
    assert (await twilio_post(stack, "/twilio/inbound", stop)).status_code == 200
    assert await stack.store.suppressed_channels(contact_id) == set()
    await asyncio.wait_for(handle.result(), 20)
    status = await handle.query(JourneyWorkflow.status)
    assert [e.kind for e in status.events] == ["unsubscribed"]
