"""The SMTP sink the dev stack, the tests and the bench receive mail with."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import aiosmtplib
import pytest

from devstack.sinks import mail
from devstack.sinks.mail import MailSink


def message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "journeys@example.com"
    msg["To"] = "alice@example.com"
    msg["Subject"] = subject
    msg.set_content("hello")
    return msg


async def test_receiving_parses_nothing_until_messages_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bench measures latency through this sink: parsing while it receives (aiosmtpd reads
    # every attribute of its handler at each new session) stalled the SMTP server for seconds.
    parsed: list[bytes] = []

    class CountingParser(BytesParser):
        def parsebytes(self, text: bytes, headersonly: bool = False) -> Any:
            parsed.append(text)
            return super().parsebytes(text, headersonly)

    monkeypatch.setattr(mail, "BytesParser", CountingParser)
    sink = MailSink()
    port = await sink.start()
    try:
        for subject in ("first session", "second session"):
            # Returns once the server accepted the message.
            await aiosmtplib.send(message(subject), hostname="127.0.0.1", port=port)

        assert sink.sessions_opened == 2
        assert parsed == []
        assert [m["Subject"] for m in sink.messages] == ["first session", "second session"]
        assert len(parsed) == 2
    finally:
        await sink.stop()
