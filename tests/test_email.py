"""The email activity against a real SMTP server (aiosmtpd): one message per key (a copy sent after
an unknown outcome carries the same Message-ID)."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from itsdangerous.timed import TimestampSigner
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities, message_id
from devstack.sinks.mail import MailSink
from journeys.contacts import Contact
from journeys.logging import configure_logging, mask
from journeys.models import SendRequest
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.tokens import (
    OPEN,
    OPEN_MAX_AGE,
    UNSUBSCRIBE,
    UNSUBSCRIBE_MAX_AGE,
    BadToken,
    make_token,
    read_token,
)
from tests.channel_fixtures import (
    SECRET,
    CrashesOnceAfterSending,
    free_port,
    make_request,
    smtp_server,
)

ALICE = "alice@example.com"


def email_request(contact_id: str = "c1", step: str = "intro") -> SendRequest:
    return make_request("email", contact_id, step)


async def add_contact(store: ContactStore, **fields: Any) -> None:
    contact: dict[str, Any] = {
        "id": "c1",
        "email": ALICE,
        "consent": {"email": True},
        "attributes": {"first_name": "Alice"},
    }
    await store.upsert_contacts([Contact(**(contact | fields))])


async def send(acts: EmailActivities, req: SendRequest) -> Any:
    return await ActivityEnvironment().run(acts.send_email, req)


async def ledger(store: ContactStore, contact_id: str = "c1") -> list[dict[str, Any]]:
    return await store.deliveries_of(contact_id)


class RefusesRecipient:
    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.delivered = 0

    async def handle_RCPT(
        self, _server: SMTP, _session: Session, _env: Envelope, _address: str, _options: list[str]
    ) -> str:
        return self.reply

    async def handle_DATA(self, _server: SMTP, _session: Session, _env: Envelope) -> str:
        self.delivered += 1
        return "250 OK"


class HangsUpAfterData:
    """Takes the message, then drops the connection before answering: the client cannot know."""

    def __init__(self) -> None:
        self.delivered = 0

    async def handle_DATA(self, server: SMTP, _session: Session, _env: Envelope) -> str:
        self.delivered += 1
        assert server.transport is not None
        server.transport.close()
        return "250 OK"


class CrashesAfterSend(CrashesOnceAfterSending, EmailActivities):
    """The worker dies after the SMTP server accepted the message, before the ledger says so."""


@pytest.fixture
async def acts(store: ContactStore, settings: Settings) -> AsyncIterator[EmailActivities]:
    acts = EmailActivities(store, settings)
    yield acts
    await acts.close()


def body_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None and part.get_content_type() == f"text/{subtype}"
    return str(part.get_content())


async def test_sends_one_complete_message(
    store: ContactStore, settings: Settings, mail_sink: MailSink, acts: EmailActivities
) -> None:
    await add_contact(store)
    req = email_request()

    result = await send(acts, req)

    assert result.status == "sent"
    assert result.provider_id == message_id(req.key, settings.mail_from)
    [message] = await mail_sink.wait_for(1)
    assert message["To"] == ALICE
    assert message["From"] == settings.mail_from
    assert message["Subject"] == "Welcome, Alice"
    assert "Hello Alice," in body_of(message, "plain")
    assert "welcome starts at intro" in body_of(message, "plain")
    html = body_of(message, "html")
    assert re.search(r"<p\b[^>]*>Hello Alice,</p>", html)
    assert message["X-Journey-Id"] == "welcome"
    assert message["X-Journey-Step"] == "intro"

    # Deterministic: the same key always gives the same Message-ID, on this domain.
    assert message["Message-ID"] == message_id(req.key, settings.mail_from)
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.test>", message["Message-ID"])
    assert message_id(req.key + "x", settings.mail_from) != message["Message-ID"]

    # One-click unsubscribe (RFC 8058), with the URL on the wire as a URL, not encoded words.
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw_unsubscribe = dict(message.raw_items())["List-Unsubscribe"]
    match = re.fullmatch(r"<https://gateway\.test/u/([\w.-]+)>", str(raw_unsubscribe).strip())
    assert match, raw_unsubscribe
    payload = read_token(SECRET, UNSUBSCRIBE, match[1], UNSUBSCRIBE_MAX_AGE)
    assert payload == {
        "contact_id": "c1",
        "channel": "email",
        "key": req.key,
        "journey_id": "welcome",
        "step_id": "intro",
    }
    assert f"https://gateway.test/u/{match[1]}" in body_of(message, "plain")

    pixel = re.search(r'<img src="https://gateway\.test/t/o/([\w.-]+)" width="1" height="1"', html)
    assert pixel and html.index(pixel[0]) < html.index("</body>")
    assert read_token(SECRET, OPEN, pixel[1], OPEN_MAX_AGE)["key"] == req.key

    [row] = await ledger(store)
    assert (row["status"], row["provider_id"]) == ("sent", message["Message-ID"])
    assert mail_sink.maildir is not None
    assert len(list((mail_sink.maildir / "new").iterdir())) == 1


async def test_repeated_send_is_a_duplicate_and_sends_nothing(
    store: ContactStore, mail_sink: MailSink, acts: EmailActivities
) -> None:
    await add_contact(store)
    first = await send(acts, email_request())

    again = await send(acts, email_request())

    assert again.status == "duplicate"
    assert again.provider_id == first.provider_id
    await asyncio.sleep(0.1)
    assert len(mail_sink.messages) == 1


async def test_messages_share_one_smtp_session(
    store: ContactStore, mail_sink: MailSink, acts: EmailActivities
) -> None:
    await add_contact(store)

    results = [await send(acts, email_request(step=s)) for s in ("intro", "part_2", "part_3")]

    assert [r.status for r in results] == ["sent", "sent", "sent"]
    messages = await mail_sink.wait_for(3)
    assert [m["Message-ID"] for m in messages] == [r.provider_id for r in results]
    assert mail_sink.sessions_opened == 1


async def test_session_the_relay_dropped_is_replaced_before_the_message(
    store: ContactStore, mail_sink: MailSink, acts: EmailActivities
) -> None:
    await add_contact(store)
    await send(acts, email_request(step="intro"))
    mail_sink.hang_up()  # as a relay does with a session idle too long

    result = await send(acts, email_request(step="part_2"))

    # Sent in the same attempt on a new session: no retry, no error, no copy.
    assert result.status == "sent"
    messages = await mail_sink.wait_for(2)
    assert [m["X-Journey-Step"] for m in messages] == ["intro", "part_2"]
    assert mail_sink.sessions_opened == 2


async def test_crash_after_server_accepted_is_resent_as_the_same_message(
    store: ContactStore, settings: Settings, mail_sink: MailSink
) -> None:
    await add_contact(store)
    acts = CrashesAfterSend(store, settings)
    req = email_request()

    with pytest.raises(ConnectionError):
        await send(acts, req)
    await mail_sink.wait_for(1)
    retry = await send(acts, req)
    again = await send(acts, req)

    # Mail systems take a second copy with the same Message-ID for the same message.
    first, second = await mail_sink.wait_for(2)
    assert first["Message-ID"] == second["Message-ID"] == message_id(req.key, settings.mail_from)
    assert (retry.status, retry.provider_id) == ("sent", first["Message-ID"])
    assert again.status == "duplicate"
    [row] = await ledger(store)
    assert (row["status"], row["reconciled"]) == ("sent", "resent")
    await asyncio.sleep(0.1)
    assert len(mail_sink.messages) == 2


async def test_connection_lost_after_data_is_retried_with_the_same_message_id(
    store: ContactStore, settings: Settings, mail_sink: MailSink, acts: EmailActivities
) -> None:
    await add_contact(store)
    server = HangsUpAfterData()
    async with smtp_server(server) as port:
        hangs_up = EmailActivities(store, settings.model_copy(update={"smtp_port": port}))
        with pytest.raises(ApplicationError) as raised:
            await send(hangs_up, email_request())
        assert not raised.value.non_retryable
        await hangs_up.close()
    [row] = await ledger(store)
    assert row["status"] == "sending"

    retry = await send(acts, email_request())

    assert server.delivered == 1
    [message] = await mail_sink.wait_for(1)
    assert (retry.status, retry.provider_id) == ("sent", message["Message-ID"])
    [row] = await ledger(store)
    assert (row["status"], row["reconciled"]) == ("sent", "resent")


@pytest.mark.parametrize(
    ("contact", "reason"),
    [
        ({"consent": {}}, "not consented to email"),
        ({"consent": {"email": False, "sms": True}}, "not consented to email"),
        ({"email": None}, "no email address"),
        ({"id": "someone-else"}, "no such contact"),
    ],
)
async def test_refused_without_sending(
    store: ContactStore,
    settings: Settings,
    mail_sink: MailSink,
    contact: dict[str, Any],
    reason: str,
) -> None:
    await add_contact(store, **contact)

    result = await send(EmailActivities(store, settings), email_request())

    assert result.status == "failed"
    assert result.reason and reason in result.reason
    [row] = await ledger(store)
    assert (row["status"], row["error"]) == ("failed", result.reason)
    await asyncio.sleep(0.1)
    assert mail_sink.messages == []


async def test_smtp_server_down_raises_for_retry_and_releases_the_claim(
    store: ContactStore, settings: Settings, mail_sink: MailSink
) -> None:
    await add_contact(store)
    down = EmailActivities(store, settings.model_copy(update={"smtp_port": free_port()}))

    with pytest.raises(ApplicationError) as raised:
        await send(down, email_request())

    assert not raised.value.non_retryable
    assert raised.value.type == "SMTPConnectError"
    assert await ledger(store) == []
    # The retry, once the server is back, delivers it exactly once.
    assert (await send(EmailActivities(store, settings), email_request())).status == "sent"
    assert len(await mail_sink.wait_for(1)) == 1


async def test_recipient_refused_for_good_is_a_failed_send(
    store: ContactStore, settings: Settings
) -> None:
    await add_contact(store)
    server = RefusesRecipient(f"550 5.1.1 <{ALICE}>: no such user")
    async with smtp_server(server) as port:
        acts = EmailActivities(store, settings.model_copy(update={"smtp_port": port}))
        result = await send(acts, email_request())
        again = await send(acts, email_request())

    assert result.status == "failed"
    assert result.reason and "smtp 550" in result.reason
    assert ALICE not in result.reason
    assert (again.status, again.reason) == ("failed", result.reason)
    [row] = await ledger(store)
    assert row["status"] == "failed"
    assert server.delivered == 0
    # No such mailbox: a hard bounce suppresses email for the contact, whatever the journey.
    assert await store.suppressed_channels("c1") == {"email"}


async def test_recipient_deferred_is_retried(store: ContactStore, settings: Settings) -> None:
    await add_contact(store)
    async with smtp_server(RefusesRecipient("451 4.7.1 greylisted, try again later")) as port:
        acts = EmailActivities(store, settings.model_copy(update={"smtp_port": port}))
        with pytest.raises(ApplicationError) as raised:
            await send(acts, email_request())

    assert not raised.value.non_retryable
    assert await ledger(store) == []


@pytest.fixture
def restore_logging() -> Iterator[None]:
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    twilio_level = logging.getLogger("twilio").level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("twilio").setLevel(twilio_level)


@pytest.mark.usefixtures("restore_logging")
async def test_logs_never_show_an_address(store: ContactStore, settings: Settings) -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    await add_contact(store)
    async with smtp_server(RefusesRecipient(f"550 5.1.1 <{ALICE}>: no such user")) as port:
        acts = EmailActivities(store, settings.model_copy(update={"smtp_port": port}))
        await send(acts, email_request())
    logging.getLogger("aiosmtplib").warning("talking to %s about +48601234567", ALICE)

    logged = out.getvalue()
    assert f'"key": "{email_request().key}"' in logged
    assert "a***@example.com" in logged
    assert ALICE not in logged
    assert "+48601234567" not in logged


def test_mask_hides_emails_and_phones_but_not_ids() -> None:
    masked = mask({"to": [ALICE, "+48 601 234 567"], "n": "0048601234567", "id": "c-42", "x": 7})
    assert masked == {
        "to": ["a***@example.com", "+48***67"],
        "n": "004***67",
        "id": "c-42",
        "x": 7,
    }
    assert mask("2024-05-01T10:00:00+00:00 run 3f2a9c1e-aaaa") == (
        "2024-05-01T10:00:00+00:00 run 3f2a9c1e-aaaa"
    )


def test_tampered_token_is_refused() -> None:
    token = make_token(SECRET, UNSUBSCRIBE, {"contact_id": "c1"})
    rest = token.split(".", 1)[1]
    forged = make_token(SECRET, UNSUBSCRIBE, {"contact_id": "c2"}).split(".", 1)[0]

    with pytest.raises(BadToken, match="forged, altered"):
        read_token(SECRET, UNSUBSCRIBE, f"{forged}.{rest}", UNSUBSCRIBE_MAX_AGE)
    with pytest.raises(BadToken):
        read_token("another-secret", UNSUBSCRIBE, token, UNSUBSCRIBE_MAX_AGE)
    with pytest.raises(BadToken):
        read_token(SECRET, OPEN, token, UNSUBSCRIBE_MAX_AGE)
    assert read_token(SECRET, UNSUBSCRIBE, token, UNSUBSCRIBE_MAX_AGE) == {"contact_id": "c1"}


def test_expired_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    hour_ago = int(time.time()) - 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: hour_ago)
    token = make_token(SECRET, OPEN, {"contact_id": "c1"})
    monkeypatch.undo()

    with pytest.raises(BadToken, match="expired"):
        read_token(SECRET, OPEN, token, max_age_seconds=60)
    assert read_token(SECRET, OPEN, token, max_age_seconds=7200) == {"contact_id": "c1"}
