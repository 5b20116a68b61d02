"""No PII in Temporal in clear: payloads are encrypted (journeys.codec), the keys rotate, and the
gateway's codec endpoint decrypts them for the Temporal UI of whoever holds the codec key."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from devstack.stack import DevPorts, dev_settings, start_temporal
from journeys.codec import ENCODING, EncryptionCodec, PayloadKeyError, new_key, parse_keys
from journeys.contacts import Contact
from journeys.models import ContactFacts
from tests.api_fixtures import GatewayStack, serving
from tests.temporal_fixtures import CONVERTER, Stack
from tests.test_interpreter import run, spec
from workflows.journey import JourneyWorkflow

EMAIL = "vera.secret@example.com"
PLAN = "platinum-plan-7731"
VERA = Contact(
    id="c-vera",
    email=EMAIL,
    time_zone="America/Chicago",
    consent={"email": True},
    attributes={"plan": PLAN},
)
UI = "http://localhost:8233"


def codec(keys: str) -> EncryptionCodec:
    return EncryptionCodec(parse_keys(keys))


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_a_payload_is_sealed_and_opens_again() -> None:
    k1 = codec(new_key("k1"))
    [sealed] = await k1.encode([plain(EMAIL)])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert EMAIL.encode() not in sealed.SerializeToString()
    assert await k1.decode([sealed]) == [plain(EMAIL)]


async def test_payloads_written_before_encryption_pass_through() -> None:
    assert await codec(new_key("k1")).decode([plain(EMAIL)]) == [plain(EMAIL)]


async def test_a_new_key_encrypts_and_the_old_one_still_decrypts() -> None:
    old = new_key("k1")
    [before] = await codec(old).encode([plain(EMAIL)])
    rotated = codec(f"{new_key('k2')},{old}")
    [after] = await rotated.encode([plain(EMAIL)])
    assert after.metadata["encryption-key-id"] == b"k2"
    assert await rotated.decode([before, after]) == [plain(EMAIL), plain(EMAIL)]
    # Once the old key is dropped, what it sealed stays sealed.
    with pytest.raises(PayloadKeyError, match="key 'k1', not in the keys given"):
        await codec(new_key("k2")).decode([before])


async def test_a_payload_under_the_wrong_key_does_not_open() -> None:
    [sealed] = await codec(new_key("k1")).encode([plain(EMAIL)])
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await codec(new_key("k1")).decode([sealed])


async def test_error_messages_are_sealed_too() -> None:
    failure = Failure()
    await CONVERTER.encode_failure(ApplicationError(f"{EMAIL} bounced"), failure)
    assert EMAIL.encode() not in failure.SerializeToString()
    assert str(await CONVERTER.decode_failure(failure)) == f"{EMAIL} bounced"


@pytest.mark.parametrize(
    "keys",
    ["", "k1", "k1:not-base64!", "k1:c2hvcnQ=", f"{new_key('k1')},{new_key('k1')}"],
    ids=["empty", "no-key", "not-base64", "short", "id-twice"],
)
def test_malformed_keys_are_refused(keys: str) -> None:
    with pytest.raises(PayloadKeyError, match="JOURNEYS_PAYLOAD_KEYS"):
        parse_keys(keys)


async def test_no_contact_data_in_clear_in_a_run_history(stack: Stack) -> None:
    journey = spec(
        [
            {
                "id": "check",
                "kind": "branch",
                "conditions": [{"when": f"attribute:plan == '{PLAN}'", "next": "hello"}],
                "otherwise": "done",
            },
            {"id": "hello", "kind": "send", "channel": "email", "template": "lead_part_2"},
            {"id": "done", "kind": "end"},
        ]
    )
    handle = await run(stack, journey, VERA)
    result = await handle.result()
    assert [v.step for v in result.visits] == ["check", "hello", "done"]
    assert stack.mail.messages[0]["To"] == EMAIL
    history = await in_clear(handle)
    for value in (EMAIL, PLAN, "America/Chicago", "lead_part_2"):
        assert value.encode() not in history, value
    # The replayer reads it with the same keys (tests/test_replay.py: and old ones in clear).
    replayer = Replayer(workflows=[JourneyWorkflow], data_converter=CONVERTER)
    replayed = await replayer.replay_workflow(await handle.fetch_history())
    assert replayed.replay_failure is None


async def in_clear(handle: WorkflowHandle) -> bytes:
    """Every event of the run's history as stored: payloads' bytes as Temporal keeps them."""
    history = await handle.fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


def codec_gateway(stack: GatewayStack, **settings: Any) -> Any:
    """The stack's gateway with these settings, served."""
    changed = stack.settings.model_copy(update=settings)
    return serving(dataclasses.replace(stack.gw, settings=changed))


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    """Temporal's remote codec protocol: protobuf's JSON of a Payloads message."""
    return json_format.MessageToDict(Payloads(payloads=payloads))


def unencrypted(*values: Any) -> dict[str, Any]:
    """`values` as the payloads a client without the codec would make."""
    return as_json(pydantic_data_converter.payload_converter.to_payloads(list(values)))


async def test_the_codec_endpoint_decodes_for_the_bearer_of_the_codec_key(
    gateway_stack: GatewayStack,
) -> None:
    facts = ContactFacts(contact_id="c-vera", attributes={"plan": PLAN})
    sealed = await CONVERTER.encode([facts])
    assert PLAN.encode() not in sealed[0].data
    async with codec_gateway(gateway_stack, codec_key=SecretStr("ck"), temporal_ui_url=UI) as http:
        r = await http.post(
            "/codec/decode",
            json=as_json(sealed),
            headers={"Authorization": "Bearer ck", "Origin": UI, "X-Namespace": "default"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == UI
        assert r.json() == unencrypted(facts)

        r = await http.post(
            "/codec/encode", json=as_json([plain(EMAIL)]), headers={"Authorization": "Bearer ck"}
        )
        assert r.status_code == 200
        assert EMAIL not in r.text
        r = await http.post("/codec/decode", json=r.json(), headers={"Authorization": "Bearer ck"})
        assert r.json() == as_json([plain(EMAIL)])

        for wrong in ({}, {"Authorization": "Bearer nope"}):
            r = await http.post("/codec/decode", json=as_json(sealed), headers=wrong)
            assert r.status_code == 401
            assert PLAN not in r.text


async def test_the_ui_origin_may_call_the_codec_endpoint_from_the_browser(
    gateway_stack: GatewayStack,
) -> None:
    async with codec_gateway(gateway_stack, codec_key=SecretStr("ck"), temporal_ui_url=UI) as http:
        asked = {
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        }
        r = await http.options("/codec/decode", headers=asked)
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == UI
        assert "X-Namespace" in r.headers["access-control-allow-headers"]
        r = await http.options("/codec/decode", headers={**asked, "Origin": "https://evil.test"})
        assert "access-control-allow-origin" not in r.headers


async def test_without_a_codec_key_the_endpoint_is_off_outside_dev(
    gateway_stack: GatewayStack,
) -> None:
    sealed = as_json(await CONVERTER.encode([EMAIL]))
    async with codec_gateway(gateway_stack, codec_key=None) as http:
        r = await http.post("/codec/decode", json=sealed)
        assert r.status_code == 503
        assert "JOURNEYS_CODEC_KEY" in r.json()["detail"]
    async with codec_gateway(gateway_stack, codec_key=None, env="dev") as http:
        r = await http.post("/codec/decode", json=sealed)
        assert r.json() == unencrypted(EMAIL)


def test_the_dev_stack_encrypts_with_a_key_it_keeps_and_its_ui_uses_the_codec_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNEYS_PAYLOAD_KEYS", raising=False)
    ports = DevPorts(gateway=8100, ui=8300)
    settings = dev_settings(tmp_path, ports)
    assert settings.env == "dev"
    assert settings.payload_keys is not None
    assert parse_keys(settings.payload_keys.get_secret_value())[0][0] == "dev"
    # The same key on the next start: histories of earlier runs stay readable.
    assert dev_settings(tmp_path, ports).payload_keys == settings.payload_keys
    assert settings.temporal_ui_url == "http://localhost:8300"

    started: list[list[str]] = []
    monkeypatch.setattr(subprocess, "Popen", lambda args, **_: started.append(args))
    start_temporal(tmp_path, ports)
    [args] = started
    assert args[args.index("--ui-codec-endpoint") + 1] == "http://localhost:8100/codec"
