"""What people do while Temporal is unreachable is held and reaches their runs once it is back:
over real HTTP (uvicorn), with runs waiting on the Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RetryConfig

from gateway import outbox
from gateway.deps import Gateway
from gateway.outbox import HANDOVER_WAIT, finish_handovers, hand_over_held, keep_handing_over
from gateway.tracking import PIXEL
from journeys.models import JourneyEvent
from journeys.store import ContactStore, open_store
from journeys.store.rows import in_utc
from journeys.store.schema import held_events
from journeys.tokens import CLICK, OPEN, web_token
from tests.api_fixtures import serving
from tests.channel_fixtures import free_port
from tests.gateway_fixtures import HUMAN, PROBE, SiteStack, run_events, stored_events, tracked
from tests.postgres_fixtures import ON_EACH_STORE
from tests.temporal_fixtures import CONVERTER
from workflows.journey import JourneyWorkflow


@pytest.fixture(autouse=True)
def handover_retries_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The served gateways retry handovers only when a test says so (autouse: before they start)."""
    monkeypatch.setattr(outbox, "RETRY_INTERVAL", 3600.0)


async def gateway_to(site: SiteStack, address: str) -> Gateway:
    """The site's gateway, but with Temporal at `address`."""
    client = await Client.connect(
        address,
        lazy=True,
        data_converter=CONVERTER,
        # Gives up at once rather than after the default ~10 s of reconnecting.
        retry_config=RetryConfig(max_elapsed_time_millis=500, max_retries=1),
    )
    return Gateway(site.settings, site.store, client, site.gw.library, site.gw.plans)


async def unreachable_gateway(site: SiteStack) -> Gateway:
    """The site's gateway, with nothing listening where Temporal should be."""
    return await gateway_to(site, f"127.0.0.1:{free_port()}")


@asynccontextmanager
async def hung_temporal() -> AsyncIterator[str]:
    """An address that accepts connections and never answers, as a hung server does."""
    held_open: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held_open.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held_open:
            writer.close()
        server.close()


async def released(store: ContactStore) -> list[dict[str, Any]]:
    """The outbox once it is empty, or as it stands after 10 s."""
    for _ in range(200):
        if not (kept := await held(store)):
            break
        await asyncio.sleep(0.05)
    return kept


async def held(store: ContactStore) -> list[dict[str, Any]]:
    query = select(held_events).order_by(held_events.c.id)

    def read() -> list[dict[str, Any]]:
        with store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    return await asyncio.to_thread(read)


@ON_EACH_STORE
async def test_opens_and_clicks_while_temporal_is_down_reach_the_run_in_order_once_it_is_back(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    run = await site.start(PROBE, contact)
    down = await unreachable_gateway(site)
    headers = {"User-Agent": HUMAN}

    async with serving(down) as http:
        opened = await http.get(f"/t/o/{tracked(site, OPEN, contact)}", headers=headers)
        assert (opened.status_code, opened.content) == (200, PIXEL)
        url = "https://example.com/docs"
        clicked = await http.get(f"/t/c/{tracked(site, CLICK, contact, url=url)}", headers=headers)
        assert (clicked.status_code, clicked.headers["location"]) == (302, url)
        await finish_handovers(timeout=10)

    assert [
        (h["contact_id"], h["journey_id"], h["event"]["kind"]) for h in await held(site.store)
    ] == [
        (contact, PROBE.id, "opened"),
        (contact, PROBE.id, "clicked"),
    ]
    assert "Failed client connect" in (await held(site.store))[0]["last_error"]

    # What an operator sees meanwhile: the gateway takes events, Temporal is away, two wait.
    async with serving(down) as http:
        health = await http.get("/health")
    assert health.status_code == 200
    report = health.json()
    assert (report["store"], report["temporal"], report["held_events"]) == (True, False, 2)
    assert report["oldest_held_at"] is not None

    # Still down: nothing is lost, nothing goes out of order.
    assert await hand_over_held(down) is False
    assert [h["event"]["kind"] for h in await held(site.store)] == ["opened", "clicked"]

    # Back: both reach the run, in the order they happened, once each.
    assert await hand_over_held(site.gw) is True
    assert await held(site.store) == []
    await run_events(run, "clicked")
    status = await run.query(JourneyWorkflow.status)
    assert [(e.kind, e.data.get("url")) for e in status.events] == [
        ("opened", None),
        ("clicked", url),
    ]
    # Recorded once, when they happened; handing over again records nothing again.
    assert await stored_events(site.store, contact) == ["opened", "clicked"]
    health = (await site.http.get("/health")).json()
    assert (health["temporal"], health["held_events"], health["oldest_held_at"]) == (True, 0, None)


@ON_EACH_STORE
async def test_an_event_handed_over_again_reaches_the_run_once(site: SiteStack) -> None:
    contact = await site.add_contact()
    run = await site.start(PROBE, contact)
    event = JourneyEvent(kind="opened", step="mail", occurred_at=datetime.now(UTC), id="e-1")
    kept = await site.store.keep_event(contact, PROBE.id, event, lease=timedelta(0))
    assert kept is not None
    # Temporal takes it, but the gateway dies before it can release it ...
    await site.gw.hand(contact, kept.event, PROBE.id)
    # ... so the next gateway hands it over again.
    assert await hand_over_held(site.gw) is True
    assert await held(site.store) == []

    await run.signal(
        JourneyWorkflow.event, event.model_copy(update={"kind": "clicked", "id": "e-2"})
    )
    await run_events(run, "clicked")
    status = await run.query(JourneyWorkflow.status)
    assert [(e.kind, e.id) for e in status.events] == [("opened", "e-1"), ("clicked", "e-2")]


@ON_EACH_STORE
async def test_a_visit_while_temporal_is_down_reaches_the_contacts_runs_once_it_is_back(
    site: SiteStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact = await site.add_contact()
    run = await site.start(PROBE, contact)
    down = await unreachable_gateway(site)
    async with serving(down) as http:
        visit = {"token": web_token(site.settings, contact), "url": "https://shop/nps?x=1"}
        r = await http.post("/w/visits", json=visit)
        assert r.status_code == 204
        await finish_handovers(timeout=10)
    assert [(h["journey_id"], h["event"]["kind"]) for h in await held(site.store)] == [
        (None, "visited_url")
    ]

    # The gateway looks for held events on its own, every REDELIVERY_INTERVAL.
    monkeypatch.setattr(outbox, "RETRY_INTERVAL", 0.05)
    handing_over = asyncio.create_task(keep_handing_over(site.gw))
    try:
        visits = await run_events(run, "visited_url")
        # Released just after the run has it: cancelled before, the release would be rolled back.
        assert await released(site.store) == []
    finally:
        handing_over.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handing_over
    assert [v.data["url"] for v in visits] == ["https://shop/nps"]


@ON_EACH_STORE
async def test_a_handover_cut_off_when_the_gateway_stops_is_retried_after_its_lease(
    site: SiteStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lease a gateway takes on what it hands over, over at once.
    monkeypatch.setattr(outbox, "LEASE", timedelta(0))
    contact = await site.add_contact()
    run = await site.start(PROBE, contact)
    async with hung_temporal() as address, serving(await gateway_to(site, address)) as http:
        started = time.perf_counter()
        r = await http.get(f"/t/o/{tracked(site, OPEN, contact)}", headers={"User-Agent": HUMAN})
        # The person is answered while the handover still waits for Temporal ...
        assert (r.status_code, r.content) == (200, PIXEL)
        assert time.perf_counter() - started < HANDOVER_WAIT + 5
        # ... which the gateway stops waiting for when it shuts down: the open stays kept.
        await finish_handovers(timeout=0.1)
    [kept] = await held(site.store)
    assert (kept["event"]["kind"], kept["last_error"]) == ("opened", None)

    assert await hand_over_held(site.gw) is True
    assert len(await run_events(run, "opened")) == 1
    assert await held(site.store) == []


async def test_health_is_503_when_events_cannot_be_recorded(
    site: SiteStack, tmp_path: Path
) -> None:
    gone = await open_store(f"sqlite:///{tmp_path / 'gone.db'}")
    await gone.close()
    async with serving(dataclasses.replace(site.gw, store=gone)) as http:
        health = await http.get("/health")
    assert health.status_code == 503
    assert (health.json()["store"], health.json()["temporal"]) == (False, True)


@ON_EACH_STORE
async def test_an_event_temporal_refuses_is_put_off_without_holding_up_the_next(
    site: SiteStack,
) -> None:
    contact = await site.add_contact()
    run = await site.start(PROBE, contact)
    now = datetime.now(UTC)
    # Over Temporal's limit for one signal's payload: it answers, and refuses this one.
    oversized = JourneyEvent(kind="visited_url", occurred_at=now, data={"url": "x" * 3_000_000})
    opened = JourneyEvent(kind="opened", step="mail", occurred_at=now, id="e-2")
    for event in (oversized, opened):
        await site.store.keep_event(contact, PROBE.id, event, lease=timedelta(0))

    assert await hand_over_held(site.gw) is True

    assert [e.kind for e in await run_events(run, "opened")] == ["opened"]
    [refused] = await held(site.store)
    assert refused["event"]["kind"] == "visited_url"
    # SQLite reads the time back without its zone (UTC), PostgreSQL with it.
    assert in_utc(refused["retry_at"]) > datetime.now(UTC) + timedelta(minutes=9)
    assert "RPCError" in refused["last_error"]
