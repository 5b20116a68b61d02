"""SMTP sessions kept open between sends.

Opening a session (TCP, greeting, EHLO, STARTTLS, AUTH) costs more than the message: locally
3.5 ms of CPU per message with a session each against 1.5 ms over an open one, before the TLS
handshake and the round trips to a remote relay. A session serves one send at a time; the email
activity takes one, sends, and gives it back, or closes it on any error.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiosmtplib

from journeys.settings import Settings

# Per SMTP command; keep the activity's start-to-close timeout above a few of these.
SMTP_TIMEOUT = 30.0
# Relays drop idle sessions (Postfix after 5 minutes, some providers within a minute); one idle
# this long is closed rather than checked.
IDLE_LIMIT = 30.0
# Some relays cap the messages per session; a fresh session now and then stays under any cap.
MESSAGES_PER_SESSION = 100
# Sessions kept for the next sends; a burst opens more and closes them when it has passed.
KEPT_IDLE = 10


class Session(aiosmtplib.SMTP):
    """One open SMTP session. DATA is where the message is handed over (a connection lost after
    it began may have delivered the message), so the send's `handing_over` is awaited first."""

    handing_over: Callable[[], Awaitable[None]] | None = None
    messages = 0
    idle_since = 0.0

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        if self.handing_over is not None:
            await self.handing_over()
        return await super().data(*args, **kwargs)


class SmtpSessions:
    """The open sessions to the configured relay, most recently used first."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[Session] = []
        # aiosmtplib looks the name up (a DNS query, in a thread) for every new session unless
        # it is given; the machine's name does not change while the worker runs.
        self._local_hostname = socket.getfqdn()

    @asynccontextmanager
    async def session(self, handing_over: Callable[[], Awaitable[None]]) -> AsyncIterator[Session]:
        """A session ready for one message, awaiting `handing_over` as DATA begins; closed if the
        body raises, else kept for reuse."""
        smtp = await self._take()
        smtp.handing_over = handing_over
        try:
            yield smtp
        except BaseException:
            smtp.close()
            raise
        smtp.messages += 1
        if smtp.messages >= MESSAGES_PER_SESSION or len(self._idle) >= KEPT_IDLE:
            await self._quit(smtp)
        else:
            smtp.idle_since = time.monotonic()
            self._idle.append(smtp)

    async def close(self) -> None:
        """Say goodbye on every idle session (worker shutdown)."""
        while self._idle:
            await self._quit(self._idle.pop())

    async def _take(self) -> Session:
        while self._idle:
            smtp = self._idle.pop()
            if time.monotonic() - smtp.idle_since > IDLE_LIMIT:
                await self._quit(smtp)
                continue
            try:
                # The relay may have closed it meanwhile: find out now, before the message.
                await smtp.noop()
            except aiosmtplib.SMTPException:
                smtp.close()
                continue
            return smtp
        return await self._open()

    async def _open(self) -> Session:
        s = self.settings
        smtp = Session(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=SMTP_TIMEOUT,
            local_hostname=self._local_hostname,
        )
        await smtp.connect()
        return smtp

    @staticmethod
    async def _quit(smtp: Session) -> None:
        try:
            await smtp.quit(timeout=5)
        except (aiosmtplib.SMTPException, OSError):
            pass  # it is going away either way
        finally:
            smtp.close()
