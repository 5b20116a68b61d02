"""An HTTP server answering like Twilio's Messages API, so the real `twilio` client can talk to it.

Only message creation is served: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form
encoded To, From, Body (and optional StatusCallback), HTTP basic auth with the account sid and
auth token. Errors use Twilio's JSON shape, so the client raises its usual TwilioRestException.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import BasicAuth, web

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Twilio's test credentials answer 21211 for this number; the sink does the same, so a test can
# provoke a permanent failure without an invalid number in the contact store.
INVALID_NUMBER = "+15005550001"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


def _segments(body: str) -> int:
    # GSM-7 fits 160 characters in one SMS (153 per part when split); UCS-2 fits 70 (67).
    single, part = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // part)


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


class SmsSink:
    """Keeps every accepted message in `messages` (to, from, body, sid, at, status_callback) and,
    if `jsonl` is given, appends each one to that file as a JSON line."""

    def __init__(
        self, account_sid: str = "ACdev", auth_token: str = "dev-token", jsonl: Path | None = None
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.jsonl = jsonl
        self.messages: list[dict[str, Any]] = []
        # Every request received, answered with success or not.
        self.requests = 0
        self._failures: list[int] = []
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with `status` (500, 503, 429, ...) and Twilio's error
        JSON, before looking at them."""
        self._failures.extend([status] * times)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen and return the port actually bound."""
        app = web.Application(middlewares=[self._count_and_fail])
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._host = host
        self._port = int(self._runner.addresses[0][1])
        return self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _count_and_fail(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        self.requests += 1
        if self._failures:
            status = self._failures.pop(0)
            return _error(status, 20000 + status, HTTPStatus(status).phrase)
        return await handler(request)

    def _authorized(self, request: web.Request) -> bool:
        try:
            auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            return False
        return auth.login == self.account_sid and auth.password == self.auth_token

    async def _create_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        sid = request.match_info["sid"]
        if sid != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        form = await request.post()
        to, from_, body = (str(form.get(k, "")) for k in ("To", "From", "Body"))
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if not E164.match(to) or to == INVALID_NUMBER:
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")

        message_sid = "SM" + secrets.token_hex(16)
        now = datetime.now(UTC)
        callback = form.get("StatusCallback")
        record = {
            "to": to,
            "from": from_,
            "body": body,
            "sid": message_sid,
            "at": now.isoformat(),
            "status_callback": str(callback) if callback else None,
        }
        self.messages.append(record)
        if self.jsonl is not None:
            _append_jsonl(self.jsonl, record)
        uri = f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json"
        return web.json_response(
            {
                "account_sid": sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": format_datetime(now),
                "date_sent": None,
                "date_updated": format_datetime(now),
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": from_,
                "messaging_service_sid": None,
                "num_media": "0",
                "num_segments": str(_segments(body)),
                "price": None,
                "price_unit": "USD",
                "sid": message_sid,
                "status": "queued",
                "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
                "to": to,
                "uri": uri,
            },
            status=201,
        )
