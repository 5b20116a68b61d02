"""What the gateway refuses at its boundary (issue 10 §2): text that is not Unicode, numbers JSON
does not have, sizes a run cannot carry, lax types; each a clear 4xx, never a 500, nothing kept."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_fixtures import GatewayStack, new_contact_id
from tests.gateway_fixtures import stored_events
from tests.test_gateway_api import add_contact, fields_named

LONE_SURROGATE = '"\\ud800"'


def raw_json(template: str, *args: str, **headers: str) -> dict[str, Any]:
    """A request whose body is `template` as written: json= cannot send a lone surrogate."""
    return {
        "content": template.format(*args).encode(),
        "headers": {"Content-Type": "application/json", **headers},
    }


@pytest.mark.parametrize("bad", [LONE_SURROGATE, '"a\\u0000b"'])
async def test_text_that_is_not_unicode_is_a_422_everywhere_and_nothing_is_kept(
    gateway_stack: GatewayStack, bad: str
) -> None:
    http, store = gateway_stack.http, gateway_stack.store
    contact_id = await add_contact(gateway_stack)
    events = f"/v1/contacts/{contact_id}/events"

    data = '{{"event_id": "e1", "kind": "purchase", "data": {{"x": {}}}}}'
    r = await http.post(events, **raw_json(data, bad))
    assert fields_named(r) == [["body", "data", "x"]]
    r = await http.post(events, **raw_json('{{"event_id": {}, "kind": "purchase"}}', bad))
    assert fields_named(r) == [["body", "event_id"]]
    assert await stored_events(store, contact_id) == []

    other = new_contact_id()
    r = await http.put(f"/v1/contacts/{other}", **raw_json('{{"attributes": {{{}: 1}}}}', bad))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "attributes"]
    r = await http.put(f"/v1/contacts/{other}", **raw_json('{{"locale": {}}}', bad))
    assert fields_named(r) == [["body", "locale"]]
    assert await store.get_contact(other) is None

    # Without the API key as well: the site's endpoints take JSON from anyone.
    anonymous = {"Authorization": ""}
    r = await http.post("/site/visits", **raw_json('{{"token": {}}}', bad, **anonymous))
    assert fields_named(r) == [["body", "token"]]
    r = await http.post(events, **raw_json('{{"event_id": {}}}', bad, **anonymous))
    assert fields_named(r) == [["body", "event_id"]]


async def test_a_body_that_is_not_utf_8_is_a_422(gateway_stack: GatewayStack) -> None:
    r = await gateway_stack.http.put(
        f"/v1/contacts/{new_contact_id()}",
        content=b'{"locale": "\xff"}',
        headers={"Content-Type": "application/json"},
    )
    assert fields_named(r) == [["body"]]
    assert "UTF-8" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
async def test_numbers_json_does_not_have_are_refused(
    gateway_stack: GatewayStack, number: str
) -> None:
    contact_id = await add_contact(gateway_stack)
    start = f"/v1/contacts/{contact_id}/journeys/lead_nurturing"
    r = await gateway_stack.http.post(start, **raw_json('{{"speed": {}}}', number))
    assert r.status_code == 422, r.text
    assert number in r.json()["detail"][0]["msg"]


async def test_speed_is_bounded_and_strict(gateway_stack: GatewayStack) -> None:
    contact_id = await add_contact(gateway_stack)
    start = f"/v1/contacts/{contact_id}/journeys/lead_nurturing"
    for speed in (1e-9, 0.0009, 1_000_001, 1e308, True, "2"):
        r = await gateway_stack.http.post(start, json={"speed": speed})
        assert fields_named(r) == [["body", "speed"]], speed
    r = await gateway_stack.http.post(start, json={"speed": 1_000_000})
    assert r.status_code == 201, r.text


async def test_lax_types_are_refused(gateway_stack: GatewayStack) -> None:
    http = gateway_stack.http
    contact_id = await add_contact(gateway_stack)
    r = await http.post(
        f"/v1/contacts/{contact_id}/events",
        json={"event_id": "e1", "kind": "purchase", "occurred_at": 0},
    )
    assert fields_named(r) == [["body", "occurred_at"]]
    for field in ("web_push", "in_mobile_app"):
        r = await http.put(f"/v1/contacts/{new_contact_id()}", json={field: 0})
        assert fields_named(r) == [["body", field]]
    r = await http.put(f"/v1/contacts/{new_contact_id()}", json={"consent": {"email": 1}})
    assert fields_named(r) == [["body", "consent", "email"]]


async def test_sizes_a_run_cannot_carry_are_refused(gateway_stack: GatewayStack) -> None:
    http, store = gateway_stack.http, gateway_stack.store
    contact_id = new_contact_id()
    big = {"attributes": {"notes": "x" * 2_500_000}}
    r = await http.put(f"/v1/contacts/{contact_id}", json=big)
    assert r.status_code == 413
    r = await http.put(f"/v1/contacts/{contact_id}", json={"attributes": {"notes": "x" * 20_000}})
    assert fields_named(r) == [["body", "attributes"]]
    many = {f"a{i}": 1 for i in range(101)}
    r = await http.put(f"/v1/contacts/{contact_id}", json={"attributes": many})
    assert fields_named(r) == [["body", "attributes"]]
    assert await store.get_contact(contact_id) is None
    # Multi-byte text counts in bytes.
    events = f"/v1/contacts/{await add_contact(gateway_stack)}/events"
    r = await http.post(events, json={"event_id": "e1", "kind": "k", "data": {"x": "ż" * 9000}})
    assert fields_named(r) == [["body", "data"]]

    # Refused by its announced length before it is read, before the key is looked at.
    r = await http.put(f"/v1/contacts/{contact_id}", headers={"Authorization": ""}, json=big)
    assert r.status_code == 413 and "bytes" in r.json()["detail"]

    async def chunks() -> Any:
        for _ in range(40):
            yield b" " * 100_000

    streamed = await http.put(
        f"/v1/contacts/{contact_id}",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


async def test_contact_ids_that_are_addresses_and_long_local_parts_are_refused(
    gateway_stack: GatewayStack,
) -> None:
    http = gateway_stack.http
    for contact_id in ("48601234567", "+48601234567", "0048601234567", "ann@example.com"):
        r = await http.put(f"/v1/contacts/{contact_id}", json={})
        assert fields_named(r) == [["path", "contact_id"]], contact_id
        assert "opaque" in r.json()["detail"][0]["msg"]
    r = await http.post("/v1/contacts:batch", json={"contacts": [{"id": "48601234567"}]})
    assert fields_named(r) == [["body", "contacts", 0, "id"]]
    assert (await http.put("/v1/contacts/12345", json={})).status_code == 201
    long_local = {"email": "a" * 65 + "@example.com"}
    r = await http.put(f"/v1/contacts/{new_contact_id()}", json=long_local)
    assert fields_named(r) == [["body", "email"]]
    longest_local = {"email": "a" * 64 + "@example.com"}
    r = await http.put(f"/v1/contacts/{new_contact_id()}", json=longest_local)
    assert r.status_code == 201


async def test_an_event_id_is_the_callers_per_contact(gateway_stack: GatewayStack) -> None:
    http = gateway_stack.http
    a, b = await add_contact(gateway_stack), await add_contact(gateway_stack)
    body = {"event_id": "order-1", "kind": "purchase"}
    first = await http.post(f"/v1/contacts/{a}/events", json=body)
    other = await http.post(f"/v1/contacts/{b}/events", json=body)
    again = await http.post(f"/v1/contacts/{a}/events", json=body)
    assert [r.json()["duplicate"] for r in (first, other, again)] == [False, False, True]
    assert len(await stored_events(gateway_stack.store, b)) == 1


async def test_the_openapi_description_names_every_answer_a_route_gives(
    gateway_stack: GatewayStack,
) -> None:
    paths = (await gateway_stack.http.get("/openapi.json")).json()["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert codes("/t/c/{token}", "get") == {"302", "400", "422"}
    assert {"200", "400"} <= codes("/t/o/{token}", "get")
    for path, method in [
        ("/v1/contacts/{contact_id}", "put"),
        ("/v1/contacts:batch", "post"),
        ("/v1/contacts/{contact_id}/events", "post"),
        ("/v1/contacts/{contact_id}/journeys/{journey_id}", "post"),
        ("/v1/contacts/{contact_id}/push-subscriptions", "post"),
    ]:
        assert {"401", "413", "422", "503"} <= codes(path, method), path
    for path, method in [
        ("/v1/contacts/{contact_id}/events", "post"),
        ("/v1/contacts/{contact_id}/journeys/{journey_id}", "post"),
        ("/v1/contacts/{contact_id}/runs", "get"),
        ("/v1/contacts/{contact_id}/push-subscriptions", "post"),
        ("/v1/contacts/{contact_id}/web-token", "get"),
        ("/v1/journeys/{journey_id}/nps", "get"),
    ]:
        assert "404" in codes(path, method), path
    assert {"400", "403", "413", "415", "503"} <= codes("/twilio/inbound", "post")
    assert {"400", "403", "413", "415", "503"} <= codes("/twilio/status", "post")
    assert {"400", "413", "503"} <= codes("/w/visits", "post")
    assert {"400", "404", "413"} <= codes("/w/messages/{key}/shown", "post")
    assert {"400", "413"} <= codes("/u/{token}", "post")
    assert {"400", "404", "413"} <= codes("/nps/{token}", "post")
