"""The /v1 API over real HTTP (uvicorn) against the Temporal dev server and a running worker."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RetryConfig
from temporalio.testing import WorkflowEnvironment

from devstack.embedded import dev_server_path
from gateway.deps import MAX_API_CALLS
from journeys.identity import workflow_id
from journeys.tokens import WEB, WebClaims, verify
from tests.api_fixtures import API_KEY, GatewayStack, new_contact_id, serving
from tests.channel_fixtures import make_request
from tests.gateway_fixtures import stored_events
from tests.postgres_fixtures import ON_EACH_STORE
from tests.temporal_fixtures import CONVERTER
from workflows.journey import JourneyWorkflow

ANN = {
    "email": "ann@example.com",
    "phone": "+48 601 234 567",
    "time_zone": "Europe/Warsaw",
    "consent": {"email": True, "sms": True},
    "attributes": {"first_name": "Ann"},
}


async def add_contact(stack: GatewayStack, **fields: Any) -> str:
    contact_id = new_contact_id()
    r = await stack.http.put(f"/v1/contacts/{contact_id}", json=ANN | fields)
    assert r.status_code == 201, r.text
    return contact_id


async def track(
    stack: GatewayStack, contact_id: str, kind: str, event_id: str | None = None, **fields: Any
) -> Any:
    r = await stack.http.post(
        f"/v1/contacts/{contact_id}/events",
        json={"event_id": event_id or os.urandom(8).hex(), "kind": kind, **fields},
    )
    assert r.status_code == 200, r.text
    return r.json()


def fields_named(response: Any) -> list[list[Any]]:
    """The `loc` of every problem in a 422 answer."""
    assert response.status_code == 422, response.text
    return [problem["loc"] for problem in response.json()["detail"]]


async def eventually(check: Any) -> Any:
    """Poll `check` (an async callable) until it returns something truthy."""
    async with asyncio.timeout(20):
        while True:
            if result := await check():
                return result
            await asyncio.sleep(0.1)


# --- auth, discovery --------------------------------------------------------------------------


async def test_the_api_key_is_required_and_compared(gateway_stack: GatewayStack) -> None:
    http = gateway_stack.http
    assert (await http.get("/v1/journeys")).status_code == 200
    missing = await http.get("/v1/journeys", headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "Bearer" in missing.json()["detail"]
    wrong = await http.get("/v1/journeys", headers={"Authorization": f"Bearer {API_KEY}x"})
    assert wrong.status_code == 401
    basic = await http.get("/v1/journeys", headers={"Authorization": f"Basic {API_KEY}"})
    assert basic.status_code == 401

    # Without a key (or with an empty one) the API is off, whatever the caller sends.
    for key in (None, SecretStr("")):
        settings = gateway_stack.settings.model_copy(update={"api_key": key})
        async with serving(dataclasses.replace(gateway_stack.gw, settings=settings)) as off:
            r = await off.get("/v1/journeys", headers={"Authorization": "Bearer"})
            assert r.status_code == 503
            assert "JOURNEYS_API_KEY" in r.json()["detail"]


async def test_a_gateway_at_capacity_says_later_at_once(gateway_stack: GatewayStack) -> None:
    contact_id = new_contact_id()
    http, slots = gateway_stack.http, gateway_stack.gw.api_calls
    busy = []
    # Every slot taken, as by calls still waiting on Temporal or the store.
    while not slots.locked():
        await slots.acquire()
        busy.append(None)
    try:
        event = {"event_id": "e-1", "kind": "purchase"}
        refused = await http.post(f"/v1/contacts/{contact_id}/events", json=event)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "retry later" in refused.json()["detail"]
        # Before authentication: refusing costs nothing.
        anonymous = await http.get("/v1/journeys", headers={"Authorization": ""})
        assert anonymous.status_code == 503
    finally:
        for _ in busy:
            slots.release()
    assert (await http.get("/v1/journeys")).status_code == 200
    assert len(busy) == MAX_API_CALLS


async def test_the_library_and_the_openapi_description_are_served(
    gateway_stack: GatewayStack,
) -> None:
    journeys = {j["id"]: j for j in (await gateway_stack.http.get("/v1/journeys")).json()}
    assert journeys["lead_nurturing"]["trigger"] == "contact_added"
    assert journeys["mobile_app_nurturing"]["version"] == 1
    assert journeys["lead_nurturing"]["description"]

    spec = (await gateway_stack.http.get("/openapi.json")).json()
    assert {
        "/v1/contacts/{contact_id}",
        "/v1/contacts:batch",
        "/v1/contacts/{contact_id}/events",
        "/v1/contacts/{contact_id}/journeys/{journey_id}",
        "/v1/contacts/{contact_id}/runs",
        "/v1/contacts/{contact_id}/push-subscriptions",
        "/v1/contacts/{contact_id}/web-token",
        "/v1/journeys",
    } <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    put_body = spec["components"]["schemas"]["ContactFields"]["properties"]
    assert "email" in put_body and "id" not in put_body  # the path names the contact
    docs = await gateway_stack.http.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]


# --- contacts ---------------------------------------------------------------------------------


@ON_EACH_STORE
async def test_upserting_a_contact_validates_like_the_csv_import(
    gateway_stack: GatewayStack,
) -> None:
    http, store = gateway_stack.http, gateway_stack.store
    bad = await http.put(
        "/v1/contacts/c1",
        json={
            "email": "not-an-email",
            "phone": "12",
            "time_zone": "Mars/Olympus",
            "consent": {"fax": True},
            "emial": "typo@example.com",
        },
    )
    assert sorted(fields_named(bad)) == [
        ["body", "consent"],
        ["body", "email"],
        ["body", "emial"],
        ["body", "phone"],
        ["body", "time_zone"],
    ]
    messages = " ".join(p["msg"] for p in bad.json()["detail"])
    assert "email is not valid" in messages and "IANA time zone" in messages
    assert await store.get_contact("c1") is None

    assert fields_named(await http.put("/v1/contacts/bad%20id!", json={})) == [
        ["path", "contact_id"]
    ]
    assert fields_named(await http.put("/v1/contacts/c1", json={"id": "c2"})) == [["body", "id"]]

    created = await http.put("/v1/contacts/c1", json=ANN)
    assert created.status_code == 201
    assert created.json()["phone"] == "+48601234567"  # normalized to E.164, like the import
    replaced = await http.put("/v1/contacts/c1", json={"id": "c1", "email": "ann@example.org"})
    assert replaced.status_code == 200
    stored = await store.get_contact("c1")
    assert stored is not None and stored.email == "ann@example.org" and stored.phone is None


@ON_EACH_STORE
async def test_a_batch_is_stored_whole_or_not_at_all(gateway_stack: GatewayStack) -> None:
    http, store = gateway_stack.http, gateway_stack.store
    bad = await http.post(
        "/v1/contacts:batch",
        json={
            "contacts": [
                {"id": "b1", "email": "b1@example.com"},
                {"id": "b2", "email": "nope"},
                {"id": "b3"},
                {"id": "b4", "phone": "+1"},
            ]
        },
    )
    assert fields_named(bad) == [["body", "contacts", 1, "email"], ["body", "contacts", 3, "phone"]]
    repeated = await http.post(
        "/v1/contacts:batch", json={"contacts": [{"id": "b1"}, {"id": "b2"}, {"id": "b1"}]}
    )
    assert fields_named(repeated) == [["body", "contacts", 2, "id"]]
    assert "repeats contacts[0]" in repeated.json()["detail"][0]["msg"]
    assert fields_named(await http.post("/v1/contacts:batch", json={"contacts": []}))
    assert await store.get_contact("b1") is None

    ok = await http.post(
        "/v1/contacts:batch", json={"contacts": [{"id": "b1"}, {"id": "b2", "locale": "pl"}]}
    )
    assert ok.status_code == 200 and ok.json() == {"upserted": 2}
    b2 = await store.get_contact("b2")
    assert b2 is not None and b2.locale == "pl"


async def test_malformed_input_is_answered_4xx_naming_the_field(
    gateway_stack: GatewayStack,
) -> None:
    http = gateway_stack.http
    contact_id = await add_contact(gateway_stack)
    events = f"/v1/contacts/{contact_id}/events"

    broken = await http.post(
        events, content=b'{"event_id": "e1", ', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"
    assert fields_named(await http.post(events, json=["e1", "purchase"])) == [["body"]]
    assert sorted(fields_named(await http.post(events, json={}))) == [
        ["body", "event_id"],
        ["body", "kind"],
    ]
    wrong_types = await http.post(
        events,
        json={
            "event_id": "has spaces",
            "kind": "Purchase!",
            "step": 3,
            "occurred_at": "yesterday",
            "data": "big",
        },
    )
    assert sorted(fields_named(wrong_types)) == [
        ["body", "data"],
        ["body", "event_id"],
        ["body", "kind"],
        ["body", "occurred_at"],
        ["body", "step"],
    ]
    naive = await http.post(
        events, json={"event_id": "e1", "kind": "purchase", "occurred_at": "2026-01-01T10:00:00"}
    )
    assert fields_named(naive) == [["body", "occurred_at"]]
    huge = await http.post(
        events, json={"event_id": "e1", "kind": "purchase", "data": {"x": "y" * 20_000}}
    )
    assert fields_named(huge) == [["body", "data"]]
    start = f"/v1/contacts/{contact_id}/journeys/lead_nurturing"
    assert fields_named(await http.post(start, json={"speed": 0})) == [["body", "speed"]]
    assert fields_named(await http.post(start, json={"speed": "fast"})) == [["body", "speed"]]

    unknown_journey = await http.post(f"/v1/contacts/{contact_id}/journeys/no_such")
    assert unknown_journey.status_code == 404
    assert "lead_nurturing" in unknown_journey.json()["detail"]  # says which exist

    for method, path in [
        ("POST", "/v1/contacts/nobody/events"),
        ("POST", "/v1/contacts/nobody/journeys/lead_nurturing"),
        ("GET", "/v1/contacts/nobody/runs"),
        ("POST", "/v1/contacts/nobody/push-subscriptions"),
        ("GET", "/v1/contacts/nobody/web-token"),
    ]:
        body = {"event_id": "e2", "kind": "purchase"} if path.endswith("events") else None
        r = await http.request(method, path, json=body)
        assert r.status_code == 404, (path, r.text)
        assert "PUT /v1/contacts/nobody" in r.json()["detail"]


# --- events -----------------------------------------------------------------------------------


@ON_EACH_STORE
async def test_app_installed_starts_mobile_app_nurturing_once_per_event_id(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    contact_id = await add_contact(stack, consent={"mobile_push": True})
    # The app registers its FCM token with the backend, which passes it on.
    token = stack.fcm.new_token()
    r = await stack.http.post(
        f"/v1/contacts/{contact_id}/push-subscriptions", json={"kind": "mobile", "token": token}
    )
    assert r.status_code == 204, r.text
    first = await track(stack, contact_id, "app_installed", event_id="install-1")
    assert first == {
        "event_id": "install-1",
        "duplicate": False,
        "journeys": {"mobile_app_nurturing": "started or signalled"},
    }
    again = await track(stack, contact_id, "app_installed", event_id="install-1")
    assert again == {"event_id": "install-1", "duplicate": True, "journeys": {}}

    handle = stack.env.client.get_workflow_handle(workflow_id("mobile_app_nurturing", contact_id))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    async def first_push() -> list[dict[str, Any]]:
        rows = await stack.store.deliveries_of(contact_id)
        return [r for r in rows if r["step_id"] == "push_1" and r["status"] == "sent"]

    (push,) = await eventually(first_push)
    assert push["channel"] == "mobile_push" and push["journey_id"] == "mobile_app_nurturing"
    assert [(m["token"], m["notification"]["title"]) for m in stack.fcm.messages] == [
        (token, "Getting started, part 1 of 3")
    ]
    status = await handle.query(JourneyWorkflow.status)
    assert [e.kind for e in status.events] == ["app_installed"]  # delivered once


@ON_EACH_STORE
async def test_contact_added_starts_lead_nurturing_and_the_intro_email_arrives(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    contact_id = await add_contact(stack)
    outcome = await track(stack, contact_id, "contact_added", data={"source": "signup form"})
    assert outcome["journeys"] == {"lead_nurturing": "started or signalled"}
    await stack.mail.wait_for(1, timeout=20)
    assert stack.mail.messages[0]["Subject"] == "Welcome, Ann: part 1 of 3"
    assert stack.mail.messages[0]["To"] == "ann@example.com"


@ON_EACH_STORE
async def test_an_event_for_an_unknown_contact_is_refused_and_can_be_sent_again(
    gateway_stack: GatewayStack,
) -> None:
    http = gateway_stack.http
    contact_id = new_contact_id()
    event = {"event_id": f"{contact_id}-added", "kind": "contact_added"}
    refused = await http.post(f"/v1/contacts/{contact_id}/events", json=event)
    assert refused.status_code == 404
    assert (await http.put(f"/v1/contacts/{contact_id}", json=ANN)).status_code == 201
    accepted = await http.post(f"/v1/contacts/{contact_id}/events", json=event)
    assert accepted.status_code == 200
    assert accepted.json()["duplicate"] is False
    assert accepted.json()["journeys"] == {"lead_nurturing": "started or signalled"}


@ON_EACH_STORE
async def test_temporal_down_is_a_503_and_the_retry_goes_through(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    contact_id = await add_contact(stack)
    gone = await WorkflowEnvironment.start_local(dev_server_existing_path=dev_server_path())
    client = await Client.connect(
        gone.client.service_client.config.target_host,
        data_converter=CONVERTER,
        # Give up at once rather than after the default ~7 s of reconnecting.
        retry_config=RetryConfig(max_elapsed_time_millis=200, max_interval_millis=50),
    )
    await gone.shutdown()
    event = {"event_id": f"{contact_id}-added", "kind": "contact_added"}
    async with serving(dataclasses.replace(stack.gw, client=client)) as down:
        r = await down.post(
            f"/v1/contacts/{contact_id}/events",
            json=event,
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert r.status_code == 503, r.text
        assert "Temporal is unavailable" in r.json()["detail"]
        assert r.headers["Retry-After"]

    retried = await track(stack, contact_id, "contact_added", event_id=event["event_id"])
    assert retried["duplicate"] is False
    assert retried["journeys"] == {"lead_nurturing": "started or signalled"}
    # The failed attempt left nothing behind: the event is recorded once.
    assert await stored_events(stack.store, contact_id) == ["contact_added"]


# --- journeys and runs ------------------------------------------------------------------------


@ON_EACH_STORE
async def test_starting_a_journey_twice_starts_one_run_and_runs_show_it(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    contact_id = await add_contact(stack)
    path = f"/v1/contacts/{contact_id}/journeys/lead_nurturing"
    started = await stack.http.post(path)
    assert started.status_code == 201
    assert started.json() == {
        "journey_id": "lead_nurturing",
        "contact_id": contact_id,
        "workflow_id": f"journey:lead_nurturing:{contact_id}",
        "outcome": "started",
    }
    already = await stack.http.post(path, json={"speed": 2})
    assert already.status_code == 200 and already.json()["outcome"] == "already"

    await stack.mail.wait_for(1, timeout=20)
    await track(stack, contact_id, "opened", step="intro")
    await stack.mail.wait_for(2, timeout=20)

    async def runs() -> list[dict[str, Any]]:
        r = await stack.http.get(f"/v1/contacts/{contact_id}/runs")
        assert r.status_code == 200
        found: list[dict[str, Any]] = r.json()
        return found if found and found[0]["current_step"] == "between_parts" else []

    (run,) = await eventually(runs)
    assert run["journey_id"] == "lead_nurturing"
    assert run["workflow_id"] == f"journey:lead_nurturing:{contact_id}"
    assert run["execution_status"] == "RUNNING" and run["finished"] is False
    assert run["details"].startswith("waiting 3 days")
    assert [v["step"] for v in run["visits"]] == [
        "intro",
        "intro_opened",
        "part_2",
        "between_parts",
    ]
    assert [(e["kind"], e["step"]) for e in run["events"]] == [("opened", "intro")]
    # Each step says when it was entered and left, the event when it happened.
    entered = [datetime.fromisoformat(v["at"]) for v in run["visits"]]
    left = [v["left_at"] and datetime.fromisoformat(v["left_at"]) for v in run["visits"]]
    assert left == [*entered[1:], None]
    assert datetime.fromisoformat(run["events"][0]["occurred_at"]) <= left[1]
    other = await add_contact(stack)
    assert (await stack.http.get(f"/v1/contacts/{other}/runs")).json() == []


# --- push subscriptions and the website -------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_push_subscriptions_are_registered(gateway_stack: GatewayStack) -> None:
    stack = gateway_stack
    contact_id = await add_contact(stack)
    path = f"/v1/contacts/{contact_id}/push-subscriptions"
    keys = {"p256dh": b64url(b"\x04" + os.urandom(64)), "auth": b64url(os.urandom(16))}
    browser = {  # PushSubscription.toJSON(), as the site posts it
        "kind": "web",
        "endpoint": "https://push.example.test/send/abc123",
        "expirationTime": None,
        "keys": keys,
    }
    for _ in range(2):  # registering again changes nothing
        assert (await stack.http.post(path, json=browser)).status_code == 204
    mobile = {"kind": "mobile", "token": "fcm-registration-token"}
    assert (await stack.http.post(path, json=mobile)).status_code == 204

    subscriptions = await stack.store.push_subscriptions_of(contact_id)
    assert [(s["kind"], s["endpoint"], s["keys"]) for s in subscriptions] == [
        ("web", browser["endpoint"], keys),
        ("mobile", "fcm-registration-token", {}),
    ]

    bad_keys = {**browser, "endpoint": "ftp://x", "keys": {"p256dh": "short", "auth": "a+b/"}}
    assert sorted(fields_named(await stack.http.post(path, json=bad_keys))) == [
        ["body", "web", "endpoint"],
        ["body", "web", "keys", "auth"],
        ["body", "web", "keys", "p256dh"],
    ]
    assert fields_named(await stack.http.post(path, json={"kind": "fax", "token": "t"})) == [
        ["body"]
    ]
    assert fields_named(await stack.http.post(path, json={"kind": "mobile", "token": ""})) == [
        ["body", "mobile", "token"]
    ]


async def test_the_web_token_names_the_contact(gateway_stack: GatewayStack) -> None:
    contact_id = await add_contact(gateway_stack)
    r = await gateway_stack.http.get(f"/v1/contacts/{contact_id}/web-token")
    assert r.status_code == 200
    claims = verify(gateway_stack.settings, WEB, r.json()["token"], WebClaims)
    assert claims.contact_id == contact_id


async def test_nps_per_journey_counts_one_answer_per_send(gateway_stack: GatewayStack) -> None:
    stack = gateway_stack
    contact_id = await add_contact(stack)
    # Four survey SMS went out; the recipients answered 10, 9, 7 and 6, then one changed to 3.
    keys = []
    for n in range(4):
        req = make_request("sms", contact_id, "survey_sms", "nps_sms", "nps_survey", n)
        claim = await stack.store.claim_delivery(req)
        await stack.store.finish_delivery(req.key, claim.attempt, "sent")
        keys.append(req.key)
    for key, score in zip(keys, (10, 9, 7, 6), strict=True):
        await stack.store.record_nps_answer(key, score, None)
    await stack.store.record_nps_answer(keys[3], 3, "changed my mind")

    r = await stack.http.get("/v1/journeys/nps_sms/nps")
    assert r.status_code == 200
    assert r.json() == {"answers": 4, "promoters": 2, "passives": 1, "detractors": 1, "score": 25.0}
    assert (await stack.http.get("/v1/journeys/nps_email/nps")).json()["score"] is None
    assert (await stack.http.get("/v1/journeys/nope/nps")).status_code == 404
