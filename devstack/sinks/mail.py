"""An SMTP server (aiosmtpd) that accepts every message and keeps it, optionally in a Maildir."""

from __future__ import annotations

import asyncio
import mailbox
import time
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import TYPE_CHECKING, cast

from devstack.embedded import smtp_session

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, Envelope, Session


class MailSink:
    """Accepts mail for any recipient on 127.0.0.1; `messages` holds each one parsed, in order.

    The server runs in the caller's event loop (no thread), so port 0 works and handlers never
    race the test that reads `messages`.
    """

    def __init__(self, maildir: Path | None = None) -> None:
        self.maildir = maildir
        # Raw as received; parsed on first look (parsing costs more than accepting, and a
        # benchmark should not pay for it while it measures).
        self._raw: list[bytes] = []
        self._parsed: list[EmailMessage] = []
        # time.perf_counter() when each message was accepted, for latency measurements.
        self.arrived_at: list[float] = []
        self._mailbox = mailbox.Maildir(maildir, create=True) if maildir else None
        self._server: asyncio.Server | None = None
        # How many SMTP sessions clients opened, and the ones still open.
        self.sessions_opened = 0
        self._open_sessions: list[SMTP] = []
        self._arrived = asyncio.Condition()
        # The port bound by `start` (0 until then).
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen and return the port actually bound."""
        loop = asyncio.get_running_loop()
        serve = smtp_session()

        def new_session() -> SMTP:
            session = serve(
                _Receiver(self), hostname="journeys-mail-sink", enable_SMTPUTF8=True, loop=loop
            )
            self.sessions_opened += 1
            # aiosmtpd drops a session's transport when the connection is lost.
            self._open_sessions = [s for s in self._open_sessions if s.transport is not None]
            self._open_sessions.append(session)
            return session

        self._server = await loop.create_server(new_session, host=host, port=port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message accepted so far, parsed, in order of arrival."""
        for raw in self._raw[len(self._parsed) :]:
            # policy.default makes the parser build EmailMessage objects.
            self._parsed.append(cast(EmailMessage, BytesParser(policy=default).parsebytes(raw)))
        return self._parsed

    def hang_up(self) -> None:
        """Drop every open session, as a relay does with sessions idle too long."""
        for session in self._open_sessions:
            if session.transport is not None:
                session.transport.close()
        self._open_sessions = []

    async def stop(self) -> None:
        self.hang_up()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for(
        self,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is its purpose
    ) -> list[EmailMessage]:
        """Wait until at least `count` messages arrived; TimeoutError says how many did."""
        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: len(self._raw) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"expected {count} messages within {timeout} s, got {len(self._raw)}"
            ) from None
        return self.messages

    async def accept(self, raw: bytes) -> None:
        """Keep one message as received."""
        if self._mailbox is not None:
            self._mailbox.add(raw)
        async with self._arrived:
            self.arrived_at.append(time.perf_counter())
            self._raw.append(raw)
            self._arrived.notify_all()


class _Receiver:
    """The handler aiosmtpd sees. Not the sink itself: every new session reads every attribute
    of its handler (inspect.getmembers, looking for AUTH hooks), and reading `messages` parses
    all that arrived since the last look. In bench/event_latency.py that stalled the SMTP server
    for up to 1.5 s, once per session the worker opened."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook for a complete message."""
        await self._sink.accept(envelope.original_content or b"")
        return "250 Message accepted for delivery"
