"""Fixtures for anything that sends: a fresh store, the SMTP and Twilio stand-ins, settings
pointing at them, and a small template library of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from pydantic import SecretStr

from devstack.processes import free_port as free_port
from devstack.sinks.mail import MailSink
from devstack.sinks.sms import SmsSink
from journeys.channels import CHANNELS
from journeys.identity import workflow_id
from journeys.models import SendRequest, SendResult
from journeys.settings import Settings
from journeys.spec import Channel
from journeys.store import ContactStore, open_store

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "test-auth-token"
SECRET = "test-secret-key"

TEMPLATES = {
    "email/welcome.yaml": """\
subject: "Welcome, {{ contact.attributes.first_name }}"
text: |
  Hello {{ contact.attributes.first_name }},
  your journey {{ journey }} starts at {{ step }}.
html: |
  <p>Hello {{ contact.attributes.first_name }},</p>
""",
    "sms/welcome.yaml": """\
body: "Hi {{ contact.attributes.first_name }}, welcome aboard. Reply STOP to opt out."
""",
}


@asynccontextmanager
async def smtp_server(handler: object) -> AsyncIterator[int]:
    """A one-off SMTP server with a custom aiosmtpd handler; yields its port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="test-smtp", loop=loop), "127.0.0.1", 0
    )
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


# Quiet hours and caps off: a test of a journey's path must not depend on the hour it runs at.
# tests/test_send_window_runs.py turns them on.
NO_SEND_WINDOW = ",".join(f"{channel}=none" for channel in CHANNELS)


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ContactStore]:
    """A fresh store on SQLite; on a new PostgreSQL database where a test asks for each kind
    (tests.postgres_fixtures.ON_EACH_STORE)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'journeys.db'}"
    store = await open_store(url)
    yield store
    await store.close()


@pytest.fixture
async def mail_sink(tmp_path: Path) -> AsyncIterator[MailSink]:
    sink = MailSink(maildir=tmp_path / "maildir")
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
async def sms_sink(tmp_path: Path) -> AsyncIterator[SmsSink]:
    sink = SmsSink(TWILIO_SID, TWILIO_TOKEN, jsonl=tmp_path / "sms.jsonl")
    await sink.start()
    yield sink
    await sink.stop()


def sink_settings(tmp_path: Path, mail_sink: MailSink, sms_sink: SmsSink) -> Settings:
    """Settings that send to the two stand-ins, with a template library of their own."""
    library = tmp_path / "library"
    for name, text in TEMPLATES.items():
        path = library / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'journeys.db'}",
        library_dir=library,
        secret_key=SecretStr(SECRET),
        gateway_url="https://gateway.test",
        smtp_host="127.0.0.1",
        smtp_port=mail_sink.port,
        smtp_username=None,
        smtp_password=None,
        smtp_starttls=False,
        mail_from="Journeys <journeys@example.test>",
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        twilio_from_number="+15005550006",
        twilio_base_url=sms_sink.base_url,
        quiet_hours=NO_SEND_WINDOW,
        frequency_caps=NO_SEND_WINDOW,
    )


@pytest.fixture
def settings(tmp_path: Path, mail_sink: MailSink, sms_sink: SmsSink) -> Settings:
    return sink_settings(tmp_path, mail_sink, sms_sink)


def make_request(
    channel: Channel,
    contact_id: str = "c1",
    step: str = "intro",
    journey: str = "welcome",
    template: str = "welcome",
    visit: int = 1,
) -> SendRequest:
    """A send as a journey run asks for it, keyed the way the workflow keys it."""
    wf = workflow_id(journey, contact_id)
    return SendRequest(
        key=f"{wf}/entry1/{step}/{visit}",
        workflow_id=wf,
        journey_id=journey,
        step_id=step,
        contact_id=contact_id,
        channel=channel,
        template=template,
    )


class CrashesOnceAfterSending:
    """Mixed into a channel's activities: the worker dies once after the provider accepted the
    message and before the ledger says so (the window exactly-once must cover)."""

    crashes = 1

    async def _record_sent(self, *args: Any, **kwargs: Any) -> SendResult:
        if self.crashes:
            self.crashes -= 1
            raise ConnectionError("store unreachable after the provider accepted the message")
        return await super()._record_sent(*args, **kwargs)  # type: ignore[misc]
