"""The SMS activity through the real twilio client against the Twilio stand-in."""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from twilio.base.exceptions import TwilioRestException

from activities.sms import SmsActivities, fingerprint
from devstack.sinks.sms import INVALID_NUMBER, SmsSink
from journeys.contacts import Contact
from journeys.models import SendRequest
from journeys.settings import Settings
from journeys.store import ContactStore
from tests.channel_fixtures import (
    TWILIO_SID,
    TWILIO_TOKEN,
    CrashesOnceAfterSending,
    free_port,
    make_request,
)

PHONE = "+48601234567"


def sms_request(contact_id: str = "c1", step: str = "nudge", channel: Any = "sms") -> SendRequest:
    return make_request(channel, contact_id, step)


async def add_contact(store: ContactStore, **fields: Any) -> None:
    contact: dict[str, Any] = {
        "id": "c1",
        "phone": PHONE,
        "consent": {"sms": True},
        "attributes": {"first_name": "Alice"},
    }
    await store.upsert_contacts([Contact(**(contact | fields))])


async def send(acts: SmsActivities, req: SendRequest) -> Any:
    return await ActivityEnvironment().run(acts.send_sms, req)


class CrashesAfterSend(CrashesOnceAfterSending, SmsActivities):
    """The worker dies after Twilio accepted the message, before the ledger says so."""


@pytest.fixture
async def acts(store: ContactStore, settings: Settings) -> AsyncIterator[SmsActivities]:
    acts = SmsActivities(store, settings)
    yield acts
    await acts.close()


async def test_sends_one_message_through_the_twilio_client(
    store: ContactStore, settings: Settings, sms_sink: SmsSink, acts: SmsActivities
) -> None:
    await add_contact(store)

    result = await send(acts, sms_request())

    assert result.status == "sent"
    assert result.provider_id and result.provider_id.startswith("SM")
    assert sms_sink.requests == 1
    [message] = sms_sink.messages
    assert message["to"] == PHONE
    assert message["from"] == settings.twilio_from_number
    assert message["body"] == "Hi Alice, welcome aboard. Reply STOP to opt out."
    assert message["sid"] == result.provider_id
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["provider_id"]) == ("sent", result.provider_id)
    assert sms_sink.jsonl is not None
    [line] = sms_sink.jsonl.read_text(encoding="utf-8").splitlines()
    assert json.loads(line) == message


async def test_repeated_send_is_a_duplicate_and_sends_nothing(
    store: ContactStore, sms_sink: SmsSink, acts: SmsActivities
) -> None:
    await add_contact(store)
    first = await send(acts, sms_request())

    again = await send(acts, sms_request())

    assert (again.status, again.provider_id) == ("duplicate", first.provider_id)
    assert sms_sink.requests == 1


async def test_crash_after_twilio_accepted_is_found_in_its_log_and_not_sent_again(
    store: ContactStore, settings: Settings, sms_sink: SmsSink
) -> None:
    await add_contact(store)
    acts = CrashesAfterSend(store, settings)
    try:
        with pytest.raises(ConnectionError):
            await send(acts, sms_request())
        retry = await send(acts, sms_request())
    finally:
        await acts.close()

    [message] = sms_sink.messages
    assert (retry.status, retry.provider_id) == ("sent", message["sid"])
    assert sms_sink.requests == 2  # the message, then the look into the log
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["reconciled"]) == ("sent", "found")


async def test_a_claim_left_before_the_hand_over_is_sent_without_asking_twilio(
    store: ContactStore, sms_sink: SmsSink, acts: SmsActivities
) -> None:
    await add_contact(store)
    await store.claim_delivery(sms_request())  # and the worker died while rendering

    retry = await send(acts, sms_request())

    [message] = sms_sink.messages
    assert (retry.status, retry.provider_id) == ("sent", message["sid"])
    assert sms_sink.requests == 1
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["reconciled"]) == ("sent", None)


async def test_a_message_handed_over_that_twilio_never_got_is_sent_by_the_retry(
    store: ContactStore, sms_sink: SmsSink, acts: SmsActivities
) -> None:
    await add_contact(store)
    req = sms_request()
    # Another contact's message with the same body is not the one.
    await add_contact(store, id="c2", phone="+48601234568")
    await send(acts, sms_request("c2"))
    # The worker died right after the hand-over, before its request left.
    claim = await store.claim_delivery(req)
    body = "Hi Alice, welcome aboard. Reply STOP to opt out."
    assert await store.hand_over_delivery(req.key, claim.attempt, fingerprint(body))

    retry = await send(acts, req)

    assert [m["to"] for m in sms_sink.messages] == ["+48601234568", PHONE]
    assert (retry.status, retry.provider_id) == ("sent", sms_sink.messages[1]["sid"])
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["reconciled"]) == ("sent", "resent")


async def test_the_stand_in_lists_messages_as_twilio_does(
    sms_sink: SmsSink, acts: SmsActivities
) -> None:
    client = acts._twilio()
    for to, body in [(PHONE, "first"), ("+48601234568", "other"), (PHONE, "second")]:
        await client.messages.create_async(to=to, from_="+15005550006", body=body)
    now = datetime.now(UTC)

    listed = await client.messages.list_async(to=PHONE, date_sent_after=now - timedelta(hours=1))
    later = await client.messages.list_async(to=PHONE, date_sent_after=now + timedelta(hours=1))
    today = await client.messages.list_async(from_="+15005550006", date_sent=now.date())

    assert [(m.body, m.to, m.status) for m in listed] == [
        ("second", PHONE, "sent"),
        ("first", PHONE, "sent"),
    ]
    assert [m.sid for m in listed] == [m["sid"] for m in reversed(sms_sink.messages[::2])]
    assert listed[0].date_created is not None and listed[0].date_created <= now
    assert later == []
    assert len(today) == 3


@pytest.mark.parametrize(
    ("contact", "reason"),
    [
        ({"phone": None}, "no phone number"),
        ({"consent": {"email": True}}, "not consented to sms"),
        ({"id": "someone-else"}, "no such contact"),
    ],
)
async def test_refused_without_sending(
    store: ContactStore,
    sms_sink: SmsSink,
    acts: SmsActivities,
    contact: dict[str, Any],
    reason: str,
) -> None:
    await add_contact(store, **contact)

    result = await send(acts, sms_request())

    assert result.status == "failed"
    assert result.reason and reason in result.reason
    [row] = await store.deliveries_of("c1")
    assert row["status"] == "failed"
    assert sms_sink.requests == 0


async def test_invalid_number_is_a_failed_send_not_an_error(
    store: ContactStore, sms_sink: SmsSink, acts: SmsActivities
) -> None:
    await add_contact(store, phone=INVALID_NUMBER)

    result = await send(acts, sms_request())
    again = await send(acts, sms_request())

    assert result.status == "failed"
    assert result.reason and result.reason.startswith("twilio 21211:")
    assert INVALID_NUMBER not in result.reason
    assert (again.status, again.reason) == ("failed", result.reason)
    [row] = await store.deliveries_of("c1")
    assert (row["status"], row["error"]) == ("failed", result.reason)
    assert sms_sink.requests == 1
    assert sms_sink.messages == []
    # A dead number is suppressed: no journey tries it again.
    assert await store.suppressed_channels("c1") == {"sms"}


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_twilio_trouble_is_retried_and_the_retry_sends_once(
    store: ContactStore, sms_sink: SmsSink, acts: SmsActivities, status: int
) -> None:
    await add_contact(store)
    sms_sink.fail_next(status)

    with pytest.raises(ApplicationError) as raised:
        await send(acts, sms_request())

    assert not raised.value.non_retryable
    assert f"twilio {status} 20{status}" in str(raised.value)
    assert await store.deliveries_of("c1") == []
    assert (await send(acts, sms_request())).status == "sent"
    assert sms_sink.requests == 2
    assert len(sms_sink.messages) == 1


async def test_twilio_unreachable_is_retried(
    store: ContactStore, settings: Settings, sms_sink: SmsSink
) -> None:
    await add_contact(store)
    down = SmsActivities(
        store, settings.model_copy(update={"twilio_base_url": f"http://127.0.0.1:{free_port()}"})
    )
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await send(down, sms_request())
    finally:
        await down.close()

    assert await store.deliveries_of("c1") == []
    assert sms_sink.requests == 0


async def test_wrong_credentials_are_retried_not_failed(
    store: ContactStore, settings: Settings, sms_sink: SmsSink
) -> None:
    await add_contact(store)
    wrong = SmsActivities(
        store, settings.model_copy(update={"twilio_auth_token": SecretStr("not-the-token")})
    )
    try:
        with pytest.raises(ApplicationError) as raised:
            await send(wrong, sms_request())
    finally:
        await wrong.close()

    assert not raised.value.non_retryable
    assert "twilio 401 20003" in str(raised.value)
    assert await store.deliveries_of("c1") == []
    assert sms_sink.messages == []


async def test_stand_in_speaks_twilios_shape(sms_sink: SmsSink) -> None:
    url = f"{sms_sink.base_url}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    auth = {"Authorization": "Basic " + b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()}
    form = {"To": PHONE, "From": "+15005550006", "Body": "x" * 161}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=form, headers=auth) as created:
            assert created.status == 201
            message = await created.json()
        async with http.post(url, data={**form, "To": "0601234567"}, headers=auth) as invalid:
            assert invalid.status == 400
            error = await invalid.json()
        async with http.post(url, data=form) as anonymous:
            assert anonymous.status == 401

    assert message["sid"].startswith("SM") and len(message["sid"]) == 34
    assert (message["status"], message["direction"], message["num_segments"]) == (
        "queued",
        "outbound-api",
        "2",
    )
    assert message["uri"] == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{message['sid']}.json"
    assert error["code"] == 21211 and error["status"] == 400
    assert sms_sink.requests == 3
    assert [m["sid"] for m in sms_sink.messages] == [message["sid"]]


async def test_twilio_client_raises_its_own_error_for_the_stand_in(
    store: ContactStore, acts: SmsActivities
) -> None:
    client = acts._twilio()
    with pytest.raises(TwilioRestException) as raised:
        await client.messages.create_async(to=INVALID_NUMBER, from_="+15005550006", body="hi")
    assert (raised.value.status, raised.value.code) == (400, 21211)
