"""The NPS survey page, the website SDK and on-site messages over real HTTP (uvicorn), delivering
to a run on the Temporal dev server; and NPS computed from answers."""

from __future__ import annotations

import asyncio
import re
import socket
from urllib.parse import quote

import pytest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.onsite import OnsiteActivities
from gateway.serve import build_gateway, serve_gateway
from journeys.models import SendRequest, SendResult
from journeys.nps import NpsSummary, nps_summary
from journeys.settings import LIBRARY_DIR, Settings
from journeys.spec import Channel
from journeys.tokens import MAX_AGE, NPS, WEB, make_token, message_links, web_token
from tests.api_fixtures import serving
from tests.channel_fixtures import make_request
from tests.gateway_fixtures import (
    HUMAN,
    PROBE,
    SiteStack,
    altered,
    run_events,
    sent_ago,
    signed_ago,
    stored_events,
)

SITE = "https://shop.example"


def send_request(
    contact_id: str, step: str, channel: Channel = "email", template: str = "welcome"
) -> SendRequest:
    return make_request(channel, contact_id, step, PROBE.id, template)


async def sent(stack: SiteStack, req: SendRequest) -> None:
    """Put the send in the ledger as the email activity would."""
    claim = await stack.store.claim_delivery(req)
    assert claim.held
    await stack.store.finish_delivery(req.key, claim.attempt, "sent")


async def send_onsite(stack: SiteStack, req: SendRequest) -> SendResult:
    activities = OnsiteActivities(stack.store, stack.settings)
    result: SendResult = await ActivityEnvironment().run(activities.send_onsite, req)
    return result


# --- NPS -------------------------------------------------------------------------------------


async def test_the_survey_page_reports_the_visit_and_stores_one_answer_per_send(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    handle = await site.start(PROBE, contact)
    req = send_request(contact, "survey")
    await sent(site, req)
    survey = sent_ago(site.settings, message_links(site.settings, req)["nps"], NPS, 60)

    page = await site.http.get(survey, headers={"User-Agent": HUMAN})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    scores = re.findall(r'<input type="radio" name="score" value="(\d+)" required>', page.text)
    assert scores == [str(n) for n in range(11)]
    assert "<legend>How likely are you to recommend us" in page.text
    assert '<textarea id="comment" name="comment"' in page.text
    [viewed] = await run_events(handle, "survey_viewed")
    assert (viewed.step, viewed.data) == ("survey", {"channel": "email", "machine": False})

    r = await site.http.post(survey, data={"score": "9", "comment": " Quick delivery "})
    assert (r.status_code, "Thank you" in r.text) == (200, True)
    [answer] = await site.store.nps_answers_of(PROBE.id)
    assert (answer["delivery_key"], answer["score"], answer["comment"]) == (
        req.key,
        9,
        "Quick delivery",
    )
    [answered] = await run_events(handle, "nps_answered")
    assert (answered.step, answered.data) == ("survey", {"score": 9})

    # Answering again updates the one answer.
    assert (await site.http.post(survey, data={"score": "3"})).status_code == 200
    [answer] = await site.store.nps_answers_of(PROBE.id)
    assert (answer["score"], answer["comment"]) == (3, None)
    assert [e.data["score"] for e in await run_events(handle, "nps_answered", 2)] == [9, 3]

    for form in ({"score": "11"}, {"score": "-1"}, {"score": "nine"}, {"comment": "no score"}):
        r = await site.http.post(survey, data=form)
        assert r.status_code == 422, form
        assert "Choose a score from 0 to 10." in r.text
    long = await site.http.post(survey, data={"score": "5", "comment": "x" * 2001})
    assert long.status_code == 422
    [answer] = await site.store.nps_answers_of(PROBE.id)
    assert answer["score"] == 3
    assert await stored_events(site.store, contact) == [
        "survey_viewed",
        "nps_answered",
        "nps_answered",
    ]


async def test_bad_survey_links_change_nothing(site: SiteStack) -> None:
    contact = await site.add_contact()
    req = send_request(contact, "survey")
    await sent(site, req)
    claims = {
        "contact_id": contact,
        "channel": "email",
        "key": req.key,
        "journey_id": PROBE.id,
        "step_id": "survey",
    }
    secret = site.settings.secret_key.get_secret_value()
    good = make_token(secret, NPS, claims)
    for token in (
        make_token("another-secret", NPS, claims),
        altered(good),
        signed_ago(secret, NPS, claims, MAX_AGE[NPS] + 60),
        make_token(secret, "unsubscribe", claims),
    ):
        assert (await site.http.get(f"/nps/{token}")).status_code == 400
        assert (await site.http.post(f"/nps/{token}", data={"score": "9"})).status_code == 400
    # Signed, but for a send that never went out.
    unsent = make_token(secret, NPS, claims | {"key": "never-sent"})
    assert (await site.http.post(f"/nps/{unsent}", data={"score": "9"})).status_code == 404
    assert await site.store.nps_answers_of(PROBE.id) == []
    assert await stored_events(site.store, contact) == []


def test_nps_is_promoters_minus_detractors_in_percent() -> None:
    assert nps_summary([10, 9, 9, 8, 7, 6, 0, 3, 10, 10]) == NpsSummary(
        answers=10, promoters=5, passives=2, detractors=3, score=20.0
    )
    assert nps_summary([0, 6]).score == -100.0
    assert nps_summary([9]).score == 100.0
    assert nps_summary([7, 8, 9]).score == 33.3
    assert nps_summary([]) == NpsSummary(
        answers=0, promoters=0, passives=0, detractors=0, score=None
    )
    with pytest.raises(ValueError, match="0-10, not 11"):
        nps_summary([5, 11])


# --- the website -----------------------------------------------------------------------------


async def test_the_sdk_is_served_as_javascript(site: SiteStack) -> None:
    r = await site.http.get("/sdk.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "/w/visits" in r.text and "/w/messages" in r.text


async def test_a_visit_reaches_the_contacts_runs_from_another_origin(site: SiteStack) -> None:
    contact = await site.add_contact()
    handle = await site.start(PROBE, contact)
    token = web_token(site.settings, contact)

    preflight = await site.http.options(
        "/w/visits",
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"].lower() == "content-type"

    r = await site.http.post(
        "/w/visits",
        json={"token": token, "url": f"{SITE}/reviews?email=ann@example.com#top"},
        headers={"Origin": SITE},
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    [visit] = await run_events(handle, "visited_url")
    assert visit.data == {"url": f"{SITE}/reviews"}  # no query string: it may carry PII

    for bad in (
        {"token": token, "url": "javascript:alert(1)"},
        {"token": token},
        {"token": altered(token), "url": SITE},
        {"token": make_token(site.settings.secret_key.get_secret_value(), "nps", {}), "url": SITE},
    ):
        r = await site.http.post("/w/visits", json=bad, headers={"Origin": SITE})
        assert r.status_code in (400, 422), bad
        assert r.headers["access-control-allow-origin"] == "*"
    assert await stored_events(site.store, contact) == ["visited_url"]


async def test_an_onsite_message_is_shown_once_and_reported_to_its_run(site: SiteStack) -> None:
    # On-site messages need no consent: this contact consented to nothing.
    contact = await site.add_contact(consent={})
    handle = await site.start(PROBE, contact)
    req = send_request(contact, "popup", "onsite", "test_popup")
    assert (await send_onsite(site, req)).status == "sent"
    assert (await send_onsite(site, req)).status == "duplicate"
    token = web_token(site.settings, contact)
    stranger = web_token(site.settings, await site.add_contact())

    r = await site.http.get("/w/messages", params={"token": token}, headers={"Origin": SITE})
    assert (r.status_code, r.headers["access-control-allow-origin"]) == (200, "*")
    [message] = r.json()["messages"]
    assert message["key"] == req.key
    assert (message["kind"], message["body"]) == ("nps_popup", "0 to 10: would you recommend us?")
    assert message["nps_url"].startswith(f"{site.settings.gateway_url}/nps/")
    assert (await site.http.get("/w/messages", params={"token": stranger})).json() == {
        "messages": []
    }

    shown = f"/w/messages/{quote(req.key, safe='')}/shown"
    assert (await site.http.post(shown, json={"token": stranger})).status_code == 404
    assert (await site.http.post(shown, json={"token": altered(token)})).status_code == 400
    assert (await site.http.post(shown, json={"token": token})).status_code == 204
    [event] = await run_events(handle, "onsite_shown")
    assert (event.step, event.data) == ("popup", {"kind": "nps_popup"})
    assert (await site.http.get("/w/messages", params={"token": token})).json() == {"messages": []}
    assert (await site.http.post(shown, json={"token": token})).status_code == 404
    assert await stored_events(site.store, contact) == ["onsite_shown"]


async def test_an_onsite_message_whose_outcome_is_unknown_is_looked_for_in_the_queue(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    chat, popup = (send_request(contact, s, "onsite", f"test_{s}") for s in ("chat", "popup"))
    for req in (chat, popup):  # each attempt died after the hand-over...
        claim = await site.store.claim_delivery(req)
        assert await site.store.hand_over_delivery(req.key, claim.attempt)
    # ...the chat's after the queue write too.
    await site.store.queue_onsite(chat.key, contact, PROBE.id, "chat", {"body": "queued"})

    assert (await send_onsite(site, chat)).status == "sent"
    assert (await send_onsite(site, popup)).status == "sent"

    queued = {
        m["delivery_key"]: m["content"]["body"] for m in await site.store.pending_onsite(contact)
    }
    assert queued == {chat.key: "queued", popup.key: "0 to 10: would you recommend us?"}
    rows = {r["key"]: r["reconciled"] for r in await site.store.deliveries_of(contact)}
    assert rows == {chat.key: "found", popup.key: "resent"}


async def test_onsite_messages_honour_suppression_and_default_to_a_chat(site: SiteStack) -> None:
    contact = await site.add_contact()
    chat = send_request(contact, "chat", "onsite", "test_chat")
    assert (await send_onsite(site, chat)).status == "sent"
    [queued] = await site.store.pending_onsite(contact)
    assert queued["content"]["kind"] == "chat"
    assert queued["content"]["body"] == "Hi Ann, how is it going?"

    await site.store.suppress(contact, "onsite", "asked to see no more")
    later = send_request(contact, "later", "onsite", "test_chat")
    refused = await send_onsite(site, later)
    assert (refused.status, refused.reason) == (
        "failed",
        "contact is suppressed on onsite (unsubscribed, STOP or bounced)",
    )
    nobody = await send_onsite(site, send_request("nobody", "chat", "onsite", "test_chat"))
    assert (nobody.status, nobody.reason) == ("failed", "no such contact")
    assert len(await site.store.pending_onsite(contact)) == 1


async def test_bad_website_tokens_are_refused(site: SiteStack) -> None:
    contact = await site.add_contact()
    secret = site.settings.secret_key.get_secret_value()
    claims = {"contact_id": contact}
    for token in (
        make_token("another-secret", WEB, claims),
        altered(web_token(site.settings, contact)),
        signed_ago(secret, WEB, claims, MAX_AGE[WEB] + 60),
        make_token(secret, WEB, {"someone": contact}),
    ):
        r = await site.http.get("/w/messages", params={"token": token})
        assert r.status_code == 400, token
        assert r.headers["access-control-allow-origin"] == "*"
    assert (await site.http.get("/w/messages")).status_code == 422


# --- serving ---------------------------------------------------------------------------------


async def test_build_gateway_connects_opens_the_store_and_loads_the_library(
    dev_temporal: WorkflowEnvironment, settings: Settings
) -> None:
    target = dev_temporal.client.service_client.config.target_host
    gw = await build_gateway(
        settings.model_copy(update={"temporal_address": target, "library_dir": LIBRARY_DIR})
    )
    try:
        assert "lead_nurturing" in gw.library
        assert await gw.store.get_contact("nobody") is None
        async with serving(gw) as http:
            assert (await http.get("/sdk.js")).status_code == 200
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            with pytest.raises(OSError):
                await serve_gateway(gw, "127.0.0.1", busy.getsockname()[1], asyncio.Event())
    finally:
        await gw.store.close()
