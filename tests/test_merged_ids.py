"""A contact id that data hygiene merged away still resolves where it comes in from outside: the
links of messages sent before the merge and the /v1 API reach the survivor, over real HTTP
against runs on the Temporal dev server. The contact_merged event the merge keeps for the merged
id is handed to the merged id's own runs, which end."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from gateway.outbox import hand_over_held
from gateway.tracking import PIXEL
from journeys.contacts import Contact
from journeys.store import ContactStore, open_store
from journeys.tokens import CLICK, OPEN, UNSUBSCRIBE, web_token
from tests.api_fixtures import GatewayStack, new_contact_id
from tests.gateway_fixtures import HUMAN, PROBE, SiteStack, run_events, stored_events, tracked
from tests.temporal_fixtures import PAYLOAD_KEYS
from workflows.journey import JourneyWorkflow

ONE_CLICK = {
    "content": b"List-Unsubscribe=One-Click",
    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
}


async def merge(store: ContactStore, merged_id: str, survivor_id: str) -> None:
    """A hygiene merge of `merged_id` into `survivor_id`."""
    now = datetime.now(UTC)
    assert await store.merge_contacts("hygiene-test", survivor_id, merged_id, "same email", now)


async def test_an_old_emails_unsubscribe_link_suppresses_the_survivor(site: SiteStack) -> None:
    survivor = await site.add_contact()
    merged = await site.add_contact()
    link = f"/u/{tracked(site, UNSUBSCRIBE, merged)}"
    await merge(site.store, merged, survivor)
    r = await site.http.post(link, **ONE_CLICK)
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert await site.store.suppressed_channels(survivor) == {"email"}
    assert await site.store.suppressed_channels(merged) == set()
    assert await stored_events(site.store, survivor) == ["unsubscribed"]
    assert await stored_events(site.store, merged) == []


async def test_an_old_emails_open_pixel_is_the_survivors_open(site: SiteStack) -> None:
    survivor = await site.add_contact()
    merged = await site.add_contact()
    pixel = f"/t/o/{tracked(site, OPEN, merged)}"
    await merge(site.store, merged, survivor)
    handle = await site.start(PROBE, survivor)
    r = await site.http.get(pixel, headers={"User-Agent": HUMAN})
    assert r.status_code == 200 and r.content == PIXEL
    assert await stored_events(site.store, survivor) == ["opened"]
    assert await stored_events(site.store, merged) == []
    [opened] = await run_events(handle, "opened")
    assert opened.step == "mail"


async def test_a_click_still_leads_on_when_the_store_cannot_say_who_a_merged_id_is(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    click = tracked(site, CLICK, contact, url="https://example.com/pricing")

    async def store_down(contact_id: str) -> str:
        raise ConnectionError("the store is away")

    site.store.resolve = store_down  # type: ignore[method-assign]
    r = await site.http.get(f"/t/c/{click}", headers={"User-Agent": HUMAN})
    assert (r.status_code, r.headers["location"]) == (302, "https://example.com/pricing")


async def test_the_site_scripts_token_of_a_merged_visitor_is_the_survivors(
    site: SiteStack,
) -> None:
    survivor = await site.add_contact()
    merged = await site.add_contact()
    token = web_token(site.settings, merged)
    await merge(site.store, merged, survivor)
    r = await site.http.post("/w/visits", json={"token": token, "url": "https://shop.example/a"})
    assert r.status_code == 204
    assert await stored_events(site.store, survivor) == ["visited_url"]


async def test_the_merge_event_ends_the_merged_ids_runs_and_not_the_survivors(
    site: SiteStack,
) -> None:
    survivor = await site.add_contact()
    merged = await site.add_contact()
    theirs, kept = await site.start(PROBE, merged), await site.start(PROBE, survivor)
    # The merge keeps the contact_merged event in the outbox, for the merged id.
    await merge(site.store, merged, survivor)
    assert await hand_over_held(site.gw)
    async with asyncio.timeout(10):
        result = await theirs.result()
    assert (result.reason, result.contact_id) == ("contact_merged", merged)
    status = await kept.query(JourneyWorkflow.status)
    assert not status.finished and status.events == []


async def test_the_api_answers_for_a_merged_id_with_the_survivor(
    gateway_stack: GatewayStack,
) -> None:
    http = gateway_stack.http
    survivor, merged = new_contact_id(), new_contact_id()
    ann = {"email": "ann@example.com", "consent": {"email": True}}
    assert (await http.put(f"/v1/contacts/{survivor}", json=ann)).status_code == 201
    assert (await http.put(f"/v1/contacts/{merged}", json=ann)).status_code == 201
    await merge(gateway_stack.store, merged, survivor)

    r = await http.get(f"/v1/contacts/{merged}")
    assert r.status_code == 200
    assert r.json()["id"] == survivor
    assert r.headers["Content-Location"] == f"/v1/contacts/{survivor}"
    own = await http.get(f"/v1/contacts/{survivor}")
    assert own.json()["id"] == survivor and "Content-Location" not in own.headers
    assert (await http.get(f"/v1/contacts/{new_contact_id()}")).status_code == 404

    event = {"event_id": f"{merged}-bought", "kind": "purchase"}
    assert (await http.post(f"/v1/contacts/{merged}/events", json=event)).status_code == 200
    assert await stored_events(gateway_stack.store, survivor) == ["purchase"]
    assert await stored_events(gateway_stack.store, merged) == []

    # Replacing the merged id replaces the survivor, as an import does: no duplicate is back.
    replaced = await http.put(f"/v1/contacts/{merged}", json=ann | {"locale": "pl"})
    assert replaced.status_code == 200 and replaced.json()["id"] == survivor
    assert replaced.headers["Content-Location"] == f"/v1/contacts/{survivor}"
    assert await gateway_stack.store.get_contact(merged) is None
    kept = await gateway_stack.store.get_contact(survivor)
    assert kept is not None and kept.locale == "pl"


async def test_the_command_lines_event_for_a_merged_id_is_the_survivors(
    dev_temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path}/journeys.db"
    store = await open_store(database_url)
    try:
        survivor, merged = new_contact_id(), new_contact_id()
        await store.upsert_contacts([Contact(id=survivor), Contact(id=merged)])
        await merge(store, merged, survivor)
        env = {
            **os.environ,
            "JOURNEYS_ENV": "dev",
            "JOURNEYS_PAYLOAD_KEYS": PAYLOAD_KEYS,
            "TEMPORAL_ADDRESS": dev_temporal.client.service_client.config.target_host,
            "JOURNEYS_DATABASE_URL": database_url,
        }
        journeys = str(Path(sys.executable).parent / "journeys")
        proc = await asyncio.create_subprocess_exec(
            journeys, "event", merged, "form_submitted", env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out
        assert await stored_events(store, survivor) == ["form_submitted"]
        assert await stored_events(store, merged) == []
    finally:
        await store.close()
