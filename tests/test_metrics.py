"""The worker's and the gateway's /metrics as Prometheus reads them: scraped over HTTP from a
client whose runtime serves it (as `journeys worker` and `journeys gateway` connect), parsed with
the Prometheus client's parser, while a journey sends and a person opens, on the Temporal dev
server. And the dashboard in deploy/grafana asks only for what the endpoint exports."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from devstack.sinks.mail import MailSink
from devstack.sinks.sms import SmsSink
from gateway.outbox import LEASE
from journeys.connection import connect
from journeys.library import load_library
from journeys.metrics import process_runtime
from journeys.models import JourneyEvent
from journeys.settings import LIBRARY_DIR, Settings
from journeys.spec import JourneySpec
from journeys.store import ContactStore
from journeys.tokens import OPEN
from tests.api_fixtures import API_KEY
from tests.channel_fixtures import free_port
from tests.gateway_fixtures import HUMAN, SiteStack, sent_ago, site_stack, wait_at
from tests.temporal_fixtures import PAYLOAD_KEYS
from tests.test_gateway_tracking import pixel_of

LEAD_NURTURING = load_library(LIBRARY_DIR)["lead_nurturing"]
DASHBOARD = Path(__file__).parents[1] / "deploy" / "grafana" / "journeys.json"

# One SMS: the test makes the provider refuse its first attempt, so an activity fails once.
ONE_SMS = JourneySpec.model_validate(
    {
        "id": "metrics_sms",
        "version": 1,
        "description": "Sends one SMS.",
        "trigger": "manual",
        "steps": [
            {"id": "hello", "kind": "send", "channel": "sms", "template": "welcome"},
            {"id": "done", "kind": "end"},
        ],
    }
)


@dataclass
class Metered:
    site: SiteStack
    url: str
    sms: SmsSink

    async def scrape(self) -> list[Sample]:
        """Every sample /metrics shows now, as Prometheus's parser reads them."""
        async with httpx.AsyncClient() as http:
            r = await http.get(self.url)
        assert r.status_code == 200
        families = text_string_to_metric_families(r.text)
        return [sample for family in families for sample in family.samples]

    async def value(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples with these labels (0 before the first one)."""
        return total(await self.scrape(), name, **labels)

    async def until(self, name: str, ready: Callable[[float], bool], **labels: str) -> float:
        """`name`'s value once `ready` holds for it (the outbox's is read every 5 s)."""
        async with asyncio.timeout(15):
            while True:
                if ready(value := await self.value(name, **labels)):
                    return value
                await asyncio.sleep(0.1)


def total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


@pytest.fixture
async def metered(
    dev_temporal: WorkflowEnvironment,
    store: ContactStore,
    settings: Settings,
    mail_sink: MailSink,
    sms_sink: SmsSink,
) -> AsyncIterator[Metered]:
    address = f"127.0.0.1:{free_port()}"
    served = settings.model_copy(
        update={
            "temporal_address": dev_temporal.client.service_client.config.target_host,
            "payload_keys": SecretStr(PAYLOAD_KEYS),
            "metrics_address": address,
            "api_key": SecretStr(API_KEY),
        }
    )
    client = await connect(served, process_runtime(served.metrics_address))
    async with site_stack(client, store, served, mail_sink) as site:
        yield Metered(site, f"http://{address}/metrics", sms_sink)


async def open_and_follow_up(metered: Metered) -> str:
    """lead_nurturing's intro to a new contact, opened by a person, and part 2 following it;
    returns the contact id."""
    site = metered.site
    contact = await site.add_contact()
    handle = await site.start(LEAD_NURTURING, contact)
    [intro] = await site.mail.wait_for(1, timeout=10)
    await wait_at(handle, "intro_opened")
    pixel = sent_ago(site.settings, pixel_of(intro), OPEN, 60)
    assert (await site.http.get(pixel, headers={"User-Agent": HUMAN})).status_code == 200
    await site.mail.wait_for(2, timeout=30)
    return contact


async def test_one_email_sent_moves_the_sends_counter_for_email_sent_by_one(
    metered: Metered,
) -> None:
    sent = {"channel": "email", "outcome": "sent", "journey": "lead_nurturing"}
    before = await metered.value("journeys_sends_total", **sent)
    site = metered.site
    contact = await site.add_contact()
    handle = await site.start(LEAD_NURTURING, contact)
    await site.mail.wait_for(1, timeout=10)
    await wait_at(handle, "intro_opened")  # the send activity is over

    assert await metered.value("journeys_sends_total", **sent) == before + 1
    assert await metered.value("journeys_sends_total", outcome="failed") == 0
    # The SDK's own metrics are on the same endpoint.
    assert await metered.value("temporal_sticky_cache_size") >= 0
    assert await metered.value("temporal_activity_execution_latency_count") >= 1
    async with httpx.AsyncClient() as http:
        text = (await http.get(metered.url)).text
    assert contact not in text
    assert "@" not in text


async def test_an_open_moves_the_events_counter_and_the_email_it_wakes_is_timed(
    metered: Metered,
) -> None:
    opened_before = await metered.value("journeys_events_total", kind="opened")
    timed = {"channel": "email", "journey": "lead_nurturing"}

    await open_and_follow_up(metered)

    assert await metered.value("journeys_events_total", kind="opened") == opened_before + 1
    count = await metered.until("journeys_event_to_send_seconds_count", bool, **timed)
    assert count == 1
    waited = await metered.value("journeys_event_to_send_seconds_sum", **timed)
    assert 0 < waited < 30
    # Every bucket from the time waited up holds it, none below.
    buckets = {
        float(s.labels["le"]): s.value
        for s in await metered.scrape()
        if s.name == "journeys_event_to_send_seconds_bucket"
    }
    assert min(buckets) == 0.01
    assert all(n == (1 if le >= waited else 0) for le, n in buckets.items()), (waited, buckets)


async def test_an_event_of_a_kind_nobody_names_is_counted_as_other(metered: Metered) -> None:
    site = metered.site
    contact = await site.add_contact()
    before = await metered.value("journeys_events_total", kind="other")
    invented = f"x_{uuid.uuid4().hex}"

    r = await site.http.post(
        f"/v1/contacts/{contact}/events",
        json={"event_id": uuid.uuid4().hex, "kind": invented},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert r.status_code == 200, r.text

    assert await metered.value("journeys_events_total", kind="other") == before + 1
    assert invented not in {s.labels.get("kind") for s in await metered.scrape()}


async def test_the_outbox_gauges_report_a_kept_event_and_its_age(metered: Metered) -> None:
    site = metered.site
    contact = await site.add_contact()
    event = JourneyEvent(kind="purchase", occurred_at=datetime.now(UTC), id=uuid.uuid4().hex)
    # Kept and leased to this test, as a gateway that has not handed it over yet keeps it.
    held = await site.store.keep_event(contact, None, event, LEASE)
    assert held is not None

    assert await metered.until("journeys_outbox_depth", lambda n: n == 1) == 1
    assert await metered.until("journeys_outbox_oldest_age_seconds", lambda age: age > 0) < 60

    await site.store.release_held(held.id)
    assert await metered.until("journeys_outbox_depth", lambda n: n == 0) == 0
    assert await metered.value("journeys_outbox_oldest_age_seconds") == 0


async def test_the_dashboard_asks_only_for_metrics_the_endpoint_exports(
    metered: Metered,
) -> None:
    # What an hour of production shows: sends, an open answered by a send, a failed attempt.
    await open_and_follow_up(metered)
    site = metered.site
    contact = await site.add_contact(phone="+15005550010", consent={"sms": True})
    metered.sms.be_flaky(1.0)
    await site.start(ONE_SMS, contact)
    await metered.until("temporal_activity_execution_failed_total", bool)
    metered.sms.be_flaky(0)
    await metered.until("journeys_sends_total", bool, channel="sms", outcome="sent")
    exported = {s.name for s in await metered.scrape()}

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    asked = {m for q in queries for m in re.findall(r"\b(?:journeys|temporal)_\w+", q)}
    assert asked, "the dashboard asks for nothing"
    assert asked <= exported, sorted(asked - exported)
    panels = {panel["title"] for panel in dashboard["panels"]}
    assert len(panels) == len(dashboard["panels"]) >= 7
