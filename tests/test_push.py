"""Web push through pywebpush and mobile push through FCM's HTTP v1 API, against stand-ins that
check VAPID, decrypt what arrives and answer like the real services."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from py_vapid import Vapid
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.push import PushActivities, collapse_key
from devstack.sinks.push import FcmSink, WebPushSink, dev_vapid_key, new_vapid_key
from journeys.contacts import Contact
from journeys.models import SendRequest, SendResult
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from tests.channel_fixtures import CrashesOnceAfterSending, free_port, make_request
from tests.push_fixtures import FCM_PROJECT, FCM_TOKEN


def push_request(channel: Any = "web_push", step: str = "nudge") -> SendRequest:
    return make_request(channel, "c1", step)


async def add_contact(store: ContactStore, **fields: Any) -> None:
    contact: dict[str, Any] = {
        "id": "c1",
        "consent": {"web_push": True, "mobile_push": True},
        "attributes": {"first_name": "Alice"},
    }
    await store.upsert_contacts([Contact(**(contact | fields))])


async def subscribe(store: ContactStore, subscription: dict[str, Any]) -> None:
    await store.add_push_subscription("c1", "web", subscription["endpoint"], subscription["keys"])


async def add_token(store: ContactStore, token: str) -> None:
    await store.add_push_subscription("c1", "mobile", token, {})


async def web_push(acts: PushActivities, req: SendRequest | None = None) -> SendResult:
    return await ActivityEnvironment().run(acts.send_web_push, req or push_request())


async def mobile_push(acts: PushActivities, req: SendRequest | None = None) -> SendResult:
    return await ActivityEnvironment().run(
        acts.send_mobile_push, req or push_request("mobile_push")
    )


class CrashesAfterSend(CrashesOnceAfterSending, PushActivities):
    """The worker dies after the push service took the message, before the ledger says so."""


@pytest.fixture
async def acts(store: ContactStore, push_settings: Settings) -> AsyncIterator[PushActivities]:
    acts = PushActivities(store, push_settings)
    yield acts
    await acts.close()


# web push -----------------------------------------------------------------------------------


async def test_web_push_arrives_encrypted_and_signed_once_per_browser(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities
) -> None:
    await add_contact(store)
    laptop, phone = web_push_sink.new_subscription(), web_push_sink.new_subscription()
    await subscribe(store, laptop)
    await subscribe(store, phone)

    result = await web_push(acts)

    assert result.status == "sent"
    assert sorted(m["endpoint"] for m in web_push_sink.messages) == sorted(
        [laptop["endpoint"], phone["endpoint"]]
    )
    for message in web_push_sink.messages:
        assert message["payload"] == {
            "title": "Welcome, Alice",
            "body": "Your journey welcome starts at nudge.",
        }
        assert (message["ttl"], message["urgency"]) == (28 * 24 * 3600, "normal")
    first = web_push_sink.messages[0]
    assert result.provider_id == f"{web_push_sink.base_url}/message/{first['id']} (+1 more)"
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["provider_id"]) == ("sent", result.provider_id)
    assert web_push_sink.jsonl is not None
    assert len(web_push_sink.jsonl.read_text(encoding="utf-8").splitlines()) == 2


async def test_repeated_web_push_is_a_duplicate(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities
) -> None:
    await add_contact(store)
    await subscribe(store, web_push_sink.new_subscription())
    first = await web_push(acts)

    again = await web_push(acts)

    assert (again.status, again.provider_id) == ("duplicate", first.provider_id)
    assert web_push_sink.requests == 1


async def test_crash_after_the_push_service_took_it_is_resent_under_the_same_topic(
    store: ContactStore, push_settings: Settings, web_push_sink: WebPushSink
) -> None:
    await add_contact(store)
    await subscribe(store, web_push_sink.new_subscription())
    acts = CrashesAfterSend(store, push_settings)
    try:
        with pytest.raises(ConnectionError):
            await web_push(acts)
        retry = await web_push(acts)
        again = await web_push(acts)
    finally:
        await acts.close()

    # The push service replaces a pending message with the one of the same topic.
    first, second = web_push_sink.messages
    assert first["topic"] == second["topic"] == collapse_key(push_request().key)
    assert first["payload"] == second["payload"]
    assert (retry.status, again.status) == ("sent", "duplicate")
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["reconciled"]) == ("sent", "resent")


async def test_a_mobile_push_resent_carries_the_same_collapse_keys(
    store: ContactStore, push_settings: Settings, fcm_sink: FcmSink
) -> None:
    await add_contact(store)
    await add_token(store, FcmSink.new_token())
    acts = CrashesAfterSend(store, push_settings)
    try:
        with pytest.raises(ConnectionError):
            await mobile_push(acts)
        retry = await mobile_push(acts)
    finally:
        await acts.close()

    first, second = fcm_sink.messages
    key = collapse_key(push_request("mobile_push").key)
    assert first["collapse"] == second["collapse"]
    assert first["collapse"] == {"android": key, "android_tag": key, "apns": key, "webpush": key}
    assert retry.status == "sent"


@pytest.mark.parametrize(
    ("contact", "subscribed", "reason"),
    [
        ({}, False, "contact has no web push subscription"),
        ({"consent": {"email": True}}, True, "not consented to web_push"),
        ({"id": "someone-else"}, True, "no such contact"),
    ],
)
async def test_web_push_refused_without_sending(
    store: ContactStore,
    web_push_sink: WebPushSink,
    acts: PushActivities,
    contact: dict[str, Any],
    subscribed: bool,
    reason: str,
) -> None:
    await add_contact(store, **contact)
    if subscribed:
        await subscribe(store, web_push_sink.new_subscription())

    result = await web_push(acts)

    assert result.status == "failed"
    assert result.reason and reason in result.reason
    [row] = await store.deliveries_of("c1")
    assert row["status"] == "failed"
    assert web_push_sink.requests == 0


async def test_a_gone_subscription_is_removed_and_the_others_still_get_it(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities
) -> None:
    await add_contact(store)
    stale, fresh = web_push_sink.new_subscription(), web_push_sink.new_subscription()
    await subscribe(store, stale)
    await subscribe(store, fresh)
    web_push_sink.gone(stale["endpoint"])

    result = await web_push(acts)

    assert result.status == "sent"
    assert [m["endpoint"] for m in web_push_sink.messages] == [fresh["endpoint"]]
    remaining = await store.push_subscriptions_of("c1", "web")
    assert [s["endpoint"] for s in remaining] == [fresh["endpoint"]]


async def test_when_every_subscription_is_gone_the_send_fails_and_facts_follow(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities
) -> None:
    await add_contact(store)
    subscription = web_push_sink.new_subscription()
    await subscribe(store, subscription)
    web_push_sink.gone(subscription["endpoint"])
    assert (await store.facts("c1")).web_push

    result = await web_push(acts)
    later = await web_push(acts, push_request(step="reminder"))

    assert result.status == "failed"
    assert result.reason and "contact has no web push subscription left" in result.reason
    assert await store.push_subscriptions_of("c1", "web") == []
    assert not (await store.facts("c1")).web_push
    assert (later.status, later.reason) == ("failed", "contact has no web push subscription")
    assert web_push_sink.requests == 1


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_push_service_trouble_is_retried_and_the_retry_delivers_once(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities, status: int
) -> None:
    await add_contact(store)
    await subscribe(store, web_push_sink.new_subscription())
    web_push_sink.fail_next(status)

    with pytest.raises(ApplicationError) as raised:
        await web_push(acts)

    assert not raised.value.non_retryable
    assert f"push service {status}" in str(raised.value)
    assert await store.deliveries_of("c1") == []
    assert (await web_push(acts)).status == "sent"
    assert web_push_sink.requests == 2
    assert len(web_push_sink.messages) == 1


async def test_an_unreachable_browser_does_not_hold_back_the_others_nor_get_a_second_try(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities
) -> None:
    await add_contact(store)
    reachable = web_push_sink.new_subscription()
    unreachable = web_push_sink.new_subscription()
    unreachable["endpoint"] = f"http://127.0.0.1:{free_port()}/push/x"
    await subscribe(store, unreachable)
    await subscribe(store, reachable)

    result = await web_push(acts)
    again = await web_push(acts)

    assert (result.status, again.status) == ("sent", "duplicate")
    assert [m["endpoint"] for m in web_push_sink.messages] == [reachable["endpoint"]]
    assert len(await store.push_subscriptions_of("c1", "web")) == 2


async def test_an_unreachable_push_service_is_retried(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities
) -> None:
    await add_contact(store)
    subscription = web_push_sink.new_subscription()
    subscription["endpoint"] = f"http://127.0.0.1:{free_port()}/push/x"
    await subscribe(store, subscription)

    with pytest.raises(ApplicationError) as raised:
        await web_push(acts)

    assert not raised.value.non_retryable
    assert "push service unreachable" in str(raised.value)
    assert await store.deliveries_of("c1") == []


async def test_a_connection_lost_mid_answer_is_sent_again_under_the_same_topic(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities
) -> None:
    topics = []

    async def hang_up_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        topics.extend(
            h.split(":", 1)[1].strip()
            for h in head.split("\r\n")
            if ":" in h and h.lower().startswith("topic:")
        )
        if len(topics) > 1:
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(hang_up_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await add_contact(store)
    subscription = web_push_sink.new_subscription()
    subscription["endpoint"] = f"http://127.0.0.1:{port}/push/x"
    await subscribe(store, subscription)
    try:
        with pytest.raises(aiohttp.ClientError):
            await web_push(acts)
        [row] = await store.deliveries_of("c1")
        again = await web_push(acts)
    finally:
        server.close()
        await server.wait_closed()

    # The push service may have taken it before the connection went: the claim stays, and the
    # retry sends again under the same topic, which replaces a copy still pending.
    assert row["status"] == "sending"
    assert again.status == "sent"
    assert topics == [collapse_key(push_request().key)] * 2


async def test_without_a_vapid_key_web_push_fails_visibly_and_is_retried(
    store: ContactStore, push_settings: Settings, web_push_sink: WebPushSink
) -> None:
    await add_contact(store)
    await subscribe(store, web_push_sink.new_subscription())
    acts = PushActivities(store, push_settings.model_copy(update={"vapid_private_key": None}))

    with pytest.raises(ApplicationError) as raised:
        await web_push(acts)

    assert (raised.value.type, raised.value.non_retryable) == ("PushNotConfigured", False)
    assert await store.deliveries_of("c1") == []
    assert web_push_sink.requests == 0


async def test_a_subscription_made_for_another_vapid_key_is_refused(
    store: ContactStore, web_push_sink: WebPushSink, acts: PushActivities
) -> None:
    await add_contact(store)
    await subscribe(store, web_push_sink.new_subscription(new_vapid_key()[1]))

    result = await web_push(acts)

    assert result.status == "failed"
    assert result.reason and "push service 403" in result.reason
    assert web_push_sink.messages == []
    assert len(await store.push_subscriptions_of("c1", "web")) == 1


async def test_a_pem_vapid_key_and_the_public_key_browsers_subscribe_with(
    store: ContactStore,
    push_settings: Settings,
    web_push_sink: WebPushSink,
    vapid_key: tuple[str, str],
) -> None:
    await add_contact(store)
    await subscribe(store, web_push_sink.new_subscription(vapid_key[1]))
    pem = Vapid.from_string(vapid_key[0]).private_pem().decode()
    acts = PushActivities(
        store, push_settings.model_copy(update={"vapid_private_key": SecretStr(pem)})
    )
    try:
        result = await web_push(acts)
    finally:
        await acts.close()

    assert result.status == "sent"
    assert len(web_push_sink.messages) == 1


async def test_the_page_a_tap_opens_comes_from_the_template(
    store: ContactStore,
    push_settings: Settings,
    web_push_sink: WebPushSink,
    fcm_sink: FcmSink,
    acts: PushActivities,
) -> None:
    templates = push_settings.library_dir / "templates"
    (templates / "web_push" / "survey.yaml").write_text(
        'title: "How did we do?"\nbody: "Tap to rate us."\nurl: "{{ links.nps }}"\n',
        encoding="utf-8",
    )
    (templates / "mobile_push" / "promo.yaml").write_text(
        'title: "New in the shop"\nbody: "Have a look."\nurl: "https://shop.example/new"\n',
        encoding="utf-8",
    )
    await add_contact(store)
    await subscribe(store, web_push_sink.new_subscription())
    await add_token(store, fcm_sink.new_token())

    survey = await web_push(acts, push_request().model_copy(update={"template": "survey"}))
    promo = await mobile_push(
        acts, push_request("mobile_push", step="promo").model_copy(update={"template": "promo"})
    )

    assert (survey.status, promo.status) == ("sent", "sent")
    # The survey reports its own answer; any other page goes through the click redirect.
    [notification] = web_push_sink.messages
    assert notification["payload"]["url"].startswith(f"{push_settings.gateway_url}/nps/")
    [message] = fcm_sink.messages
    assert message["data"]["url"].startswith(f"{push_settings.gateway_url}/t/c/")


async def test_the_push_service_checks_vapid(
    web_push_sink: WebPushSink, vapid_key: tuple[str, str]
) -> None:
    async with aiohttp.ClientSession() as http:
        # As a browser's PushManager.subscribe() would, for the dev stack.
        async with http.post(f"{web_push_sink.base_url}/subscriptions", json={}) as created:
            assert created.status == 201
            endpoint = (await created.json())["endpoint"]
    vapid = Vapid.from_string(vapid_key[0])
    origin = web_push_sink.base_url
    now = int(time.time())

    def signed(**claims: Any) -> str:
        return str(vapid.sign({"sub": "mailto:ops@example.test", **claims})["Authorization"])

    good = signed(aud=origin, exp=now + 600)
    token = good.removeprefix("vapid t=").split(",k=")[0]
    cases = {
        "": 401,
        "Bearer something": 401,
        signed(aud="https://elsewhere.test", exp=now + 600): 401,
        signed(aud=origin, exp=now - 10): 401,
        signed(aud=origin, exp=now + 2 * 24 * 3600): 401,
        f"vapid t={token},k={new_vapid_key()[1]}": 401,  # signed with another key
        good: 400,  # past the checks: the body below is not aes128gcm
    }
    headers = {"TTL": "60", "Content-Encoding": "aes128gcm"}
    async with aiohttp.ClientSession() as http:
        for authorization, expected in cases.items():
            async with http.post(
                endpoint, data=b"not encrypted", headers={**headers, "Authorization": authorization}
            ) as response:
                assert response.status == expected, (authorization, await response.text())
        async with http.post(endpoint, data=b"x", headers={"Authorization": good}) as no_ttl:
            assert no_ttl.status == 400
    assert web_push_sink.messages == []


# mobile push (FCM) --------------------------------------------------------------------------


async def test_mobile_push_reaches_every_app_token_through_fcm(
    store: ContactStore, fcm_sink: FcmSink, acts: PushActivities
) -> None:
    await add_contact(store)
    tokens = [fcm_sink.new_token(), fcm_sink.new_token()]
    for token in tokens:
        await add_token(store, token)

    result = await mobile_push(acts)

    assert result.status == "sent"
    assert [m["token"] for m in fcm_sink.messages] == tokens
    for message in fcm_sink.messages:
        assert message["notification"] == {
            "title": "Hi Alice",
            "body": "Open the app to pick up where you left off.",
        }
        assert message["data"] == {"journey_id": "welcome", "step_id": "nudge"}
        assert message["name"].startswith(f"projects/{FCM_PROJECT}/messages/")
    assert result.provider_id == f"{fcm_sink.messages[0]['name']} (+1 more)"
    assert (await mobile_push(acts)).status == "duplicate"
    assert fcm_sink.requests == 2


async def test_no_app_token_is_a_failed_send_not_an_error(
    store: ContactStore, fcm_sink: FcmSink, acts: PushActivities
) -> None:
    await add_contact(store)

    result = await mobile_push(acts)

    assert (result.status, result.reason) == ("failed", "contact has no mobile app token")
    assert fcm_sink.requests == 0


async def test_tokens_fcm_calls_invalid_are_removed(
    store: ContactStore, fcm_sink: FcmSink, acts: PushActivities
) -> None:
    await add_contact(store)
    uninstalled, malformed, good = fcm_sink.new_token(), "not a token!", fcm_sink.new_token()
    fcm_sink.unregister(uninstalled)
    for token in (uninstalled, malformed, good):
        await add_token(store, token)

    result = await mobile_push(acts)
    left = [s["endpoint"] for s in await store.push_subscriptions_of("c1", "mobile")]
    fcm_sink.unregister(good)
    last = await mobile_push(acts, push_request("mobile_push", step="reminder"))

    assert result.status == "sent"
    assert [m["token"] for m in fcm_sink.messages] == [good]
    assert left == [good]
    assert last.status == "failed"
    assert last.reason and "contact has no mobile app token left" in last.reason
    assert await store.push_subscriptions_of("c1", "mobile") == []


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_fcm_trouble_is_retried_and_the_retry_delivers_once(
    store: ContactStore, fcm_sink: FcmSink, acts: PushActivities, status: int
) -> None:
    await add_contact(store)
    await add_token(store, fcm_sink.new_token())
    fcm_sink.fail_next(status)

    with pytest.raises(ApplicationError) as raised:
        await mobile_push(acts)

    assert not raised.value.non_retryable
    assert f"fcm {status}" in str(raised.value)
    assert await store.deliveries_of("c1") == []
    assert (await mobile_push(acts)).status == "sent"
    assert len(fcm_sink.messages) == 1


@pytest.mark.parametrize(
    "update",
    [{"fcm_access_token": SecretStr("not-the-token")}, {"fcm_project_id": "someone-elses"}],
)
async def test_fcm_rejecting_our_credentials_is_retried_not_failed(
    store: ContactStore,
    push_settings: Settings,
    fcm_sink: FcmSink,
    update: dict[str, Any],
) -> None:
    await add_contact(store)
    await add_token(store, fcm_sink.new_token())
    acts = PushActivities(store, push_settings.model_copy(update=update))
    try:
        with pytest.raises(ApplicationError) as raised:
            await mobile_push(acts)
    finally:
        await acts.close()

    assert not raised.value.non_retryable
    assert "fcm 401" in str(raised.value) or "fcm 403" in str(raised.value)
    assert await store.deliveries_of("c1") == []
    assert len(await store.push_subscriptions_of("c1", "mobile")) == 1
    assert fcm_sink.messages == []


async def test_a_service_account_file_gets_its_token_through_google_auth(
    store: ContactStore,
    push_settings: Settings,
    fcm_sink: FcmSink,
    tmp_path: Path,
) -> None:
    await add_contact(store)
    await add_token(store, fcm_sink.new_token())
    account = fcm_sink.write_service_account(tmp_path / "service-account.json")
    acts = PushActivities(
        store,
        push_settings.model_copy(
            update={"fcm_access_token": None, "fcm_credentials_file": account}
        ),
    )
    try:
        first = await mobile_push(acts, push_request("mobile_push", step="one"))
        second = await mobile_push(acts, push_request("mobile_push", step="two"))
        # Token exchange, then two sends on the same access token.
        assert fcm_sink.requests == 3
        fcm_sink.revoke_access_tokens()
        with pytest.raises(ApplicationError) as raised:
            await mobile_push(acts, push_request("mobile_push", step="three"))
        third = await mobile_push(acts, push_request("mobile_push", step="three"))
    finally:
        await acts.close()

    assert (first.status, second.status, third.status) == ("sent", "sent", "sent")
    assert "fcm 401" in str(raised.value)
    # The refused send, a fresh token exchange, the retried send.
    assert fcm_sink.requests == 6
    assert len(fcm_sink.messages) == 3


async def test_without_fcm_credentials_mobile_push_fails_visibly(
    store: ContactStore, push_settings: Settings, fcm_sink: FcmSink
) -> None:
    await add_contact(store)
    await add_token(store, fcm_sink.new_token())
    acts = PushActivities(store, push_settings.model_copy(update={"fcm_access_token": None}))

    with pytest.raises(ApplicationError) as raised:
        await mobile_push(acts)

    assert raised.value.type == "PushNotConfigured"
    assert await store.deliveries_of("c1") == []


async def test_fcm_stand_in_speaks_fcms_shape(fcm_sink: FcmSink) -> None:
    url = f"{fcm_sink.base_url}/v1/projects/{FCM_PROJECT}/messages:send"
    auth = {"Authorization": f"Bearer {FCM_TOKEN}"}
    token = fcm_sink.new_token()
    fcm_sink.unregister(gone := fcm_sink.new_token())
    message = {"token": token, "notification": {"title": "t", "body": "b"}}
    async with aiohttp.ClientSession() as http:

        async def send(body: Any, headers: dict[str, str] = auth) -> tuple[int, Any]:
            async with http.post(url, data=json.dumps(body), headers=headers) as response:
                return response.status, await response.json()

        ok = await send({"message": message})
        unregistered = await send({"message": {**message, "token": gone}})
        numbers = await send({"message": {**message, "data": {"n": 1}}})
        anonymous = await send({"message": message}, {})

    assert ok[0] == 200 and ok[1]["name"].startswith(f"projects/{FCM_PROJECT}/messages/")
    assert unregistered[0] == 404
    assert unregistered[1]["error"]["status"] == "NOT_FOUND"
    assert unregistered[1]["error"]["details"][0]["errorCode"] == "UNREGISTERED"
    assert (numbers[0], numbers[1]["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert (anonymous[0], anonymous[1]["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert [m["token"] for m in fcm_sink.messages] == [token]


def test_the_dev_stack_keeps_its_vapid_key(tmp_path: Path) -> None:
    path = tmp_path / "dev" / "vapid.key"

    key = dev_vapid_key(path)

    assert dev_vapid_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert Vapid.from_string(key).public_key is not None


@pytest.mark.parametrize(
    ("channel", "template"),
    [
        (path.parent.name, path.stem)
        for kind in ("web_push", "mobile_push")
        for path in sorted((LIBRARY_DIR / "templates" / kind).glob("*.yaml"))
    ],
)
async def test_every_push_template_of_the_library_sends(
    store: ContactStore,
    push_settings: Settings,
    web_push_sink: WebPushSink,
    fcm_sink: FcmSink,
    channel: str,
    template: str,
) -> None:
    await add_contact(store)
    await subscribe(store, web_push_sink.new_subscription())
    await add_token(store, fcm_sink.new_token())
    acts = PushActivities(store, push_settings.model_copy(update={"library_dir": LIBRARY_DIR}))
    req = push_request(channel).model_copy(update={"template": template})
    try:
        send = acts.send_web_push if channel == "web_push" else acts.send_mobile_push
        result = await ActivityEnvironment().run(send, req)
    finally:
        await acts.close()

    assert result.status == "sent"
    [message] = web_push_sink.messages + fcm_sink.messages
    shown = message.get("payload") or message["notification"]
    assert shown["title"] and shown["body"]
