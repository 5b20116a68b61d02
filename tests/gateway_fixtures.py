"""The gateway's tracking and website side for tests: the app served by `serve_gateway` on a free
port, a worker on a task queue of its own, on the session's Temporal dev server (`dev_temporal`
from tests.api_fixtures), with a template library that has links and on-site messages."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from unittest.mock import patch
from urllib.parse import urlsplit

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devstack.sinks.mail import MailSink
from gateway.deps import Gateway
from journeys.contacts import Contact
from journeys.identity import workflow_id
from journeys.library import load_library
from journeys.models import JourneyEvent, JourneyResult
from journeys.plans.library import load_plans
from journeys.settings import LIBRARY_DIR, Settings
from journeys.spec import JourneySpec
from journeys.store import ContactStore
from journeys.store.schema import events
from journeys.tokens import MAX_AGE, make_token, read_token
from tests.api_fixtures import ServedGateway, new_contact_id, serving
from workers.worker import journey_worker
from workflows.journey import JourneyWorkflow
from workflows.runs import start_journey

SITE_TEMPLATES = {
    "email/tracked_links.yaml": """\
subject: "Links"
text: |
  Read the docs at https://example.com/docs?a=1&b=2.
  Survey: {{ links.nps }}
html: |
  <p><a href="https://example.com/docs?a=1&amp;b=2">Docs</a>
  <a class="x" HREF='http://example.com/pricing'>Pricing</a>
  <a href="mailto:hi@example.com">Mail</a></p>
  <p><a href="{{ links.nps }}">Survey</a></p>
""",
    "onsite/test_chat.yaml": """\
body: "Hi {{ contact.attributes.first_name }}, how is it going?"
""",
    "onsite/test_popup.yaml": """\
kind: nps_popup
body: "0 to 10: would you recommend us?"
""",
}

# A journey that only listens: whatever the gateway hands over shows in its run's events.
PROBE = JourneySpec.model_validate(
    {
        "id": "gateway_probe",
        "version": 1,
        "description": "Waits a month for an event nobody sends.",
        "trigger": "manual",
        "steps": [
            {
                "id": "listen",
                "kind": "wait_for",
                "event": "never_sent",
                "timeout": "30d",
                "on_event": "done",
                "on_timeout": "done",
            },
            {"id": "done", "kind": "end"},
        ],
    }
)

HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
APPLE_PROXY = "Mozilla/5.0"


class SiteStack(ServedGateway):
    """The served gateway and the parts behind it, with the project's library and a probe."""

    async def add_contact(self, **fields: Any) -> str:
        contact_id = new_contact_id()
        contact = {
            "id": contact_id,
            "email": f"{contact_id}@example.com",
            "consent": {"email": True},
            "attributes": {"first_name": "Ann"},
        }
        await self.store.upsert_contacts([Contact.model_validate(contact | fields)])
        return contact_id

    async def start(
        self, spec: JourneySpec, contact_id: str
    ) -> WorkflowHandle[JourneyWorkflow, JourneyResult]:
        outcome = await start_journey(self.client, spec, contact_id, self.settings.task_queue)
        assert outcome == "started"
        return self.client.get_workflow_handle_for(
            JourneyWorkflow.run, workflow_id(spec.id, contact_id)
        )


@pytest.fixture
async def site(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings, mail_sink: MailSink
) -> AsyncIterator[SiteStack]:
    async with site_stack(dev_temporal.client, store, settings, mail_sink) as stack:
        yield stack


@asynccontextmanager
async def site_stack(
    client: Client, store: ContactStore, settings: Settings, mail_sink: MailSink
) -> AsyncIterator[SiteStack]:
    """The `site` fixture's stack on `client` (tests/test_metrics.py: one that serves /metrics)."""
    # The project's library (lead_nurturing) beside the channel fixtures' and these templates.
    shutil.copytree(LIBRARY_DIR, settings.library_dir, dirs_exist_ok=True)
    for name, text in SITE_TEMPLATES.items():
        path = settings.library_dir / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    settings = settings.model_copy(update={"task_queue": f"site-{uuid.uuid4().hex[:8]}"})
    library = {**load_library(LIBRARY_DIR), PROBE.id: PROBE}
    plans = load_plans(LIBRARY_DIR)
    gw = Gateway(settings, store, client, library, plans)
    async with journey_worker(gw.client, store, settings), serving(gw) as http:
        yield SiteStack(http, gw, mail_sink)


def path_of(url: str) -> str:
    """The gateway path of a link in a message (messages name the public gateway URL)."""
    return urlsplit(url).path


async def run_events(
    handle: WorkflowHandle[Any, Any], kind: str, count: int = 1
) -> list[JourneyEvent]:
    """The run's events of `kind`, once it has at least `count` of them."""
    async with asyncio.timeout(10):
        while True:
            status = await handle.query(JourneyWorkflow.status)
            found = [e for e in status.events if e.kind == kind]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


async def wait_at(handle: WorkflowHandle[Any, Any], step: str) -> None:
    async with asyncio.timeout(10):
        while True:
            if (await handle.query(JourneyWorkflow.status)).current_step == step:
                return
            await asyncio.sleep(0.05)


async def stored_events(store: ContactStore, contact_id: str) -> list[str]:
    """The kinds of the events the store recorded for a contact, oldest first."""
    query = select(events.c.kind).where(events.c.contact_id == contact_id).order_by(events.c.id)

    def read() -> list[str]:
        with store.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    return await asyncio.to_thread(read)


def signed_ago(secret: str, purpose: str, payload: dict[str, Any], seconds: int) -> str:
    """A token this deployment signed `seconds` ago."""
    then = int(time.time()) - seconds
    with patch.object(TimestampSigner, "get_timestamp", lambda _self: then):
        return make_token(secret, purpose, payload)


def sent_ago(settings: Settings, url: str, purpose: str, seconds: int) -> str:
    """The path of tracked link `url` as if its message was sent `seconds` ago: a person opens
    mail a while after it arrived, a privacy proxy fetches it on arrival."""
    secret = settings.secret_key.get_secret_value()
    base, _, token = url.rpartition("/")
    payload = read_token(secret, purpose, token, MAX_AGE[purpose])
    return path_of(f"{base}/{signed_ago(secret, purpose, payload, seconds)}")


def altered(token: str) -> str:
    """The token with one character of its payload changed."""
    return ("A" if token[0] != "A" else "B") + token[1:]


def tracked(site: SiteStack, purpose: str, contact_id: str, **extra: Any) -> str:
    """A signed link (`purpose`: OPEN, CLICK, UNSUBSCRIBE ...) of the email the probe journey
    sent to `contact_id`; `extra` claims, such as a click's `url`."""
    claims = {
        "contact_id": contact_id,
        "channel": "email",
        "key": f"{PROBE.id}:{contact_id}:mail",
        "journey_id": PROBE.id,
        "step_id": "mail",
        **extra,
    }
    return make_token(site.settings.secret_key.get_secret_value(), purpose, claims)
