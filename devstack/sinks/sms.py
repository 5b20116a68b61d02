"""An HTTP server answering like Twilio's Messages API, so the real `twilio` client can talk to it.

Only message creation is served: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form
encoded To, From, Body (and optional StatusCallback), HTTP basic auth with the account sid and
auth token. Errors use Twilio's JSON shape, so the client raises its usual TwilioRestException.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from aiohttp import BasicAuth, web

from devstack.sinks.http import HttpSink

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Twilio's test credentials answer 21211 for this number; the sink does the same, so a test can
# provoke a permanent failure without an invalid number in the contact store.
INVALID_NUMBER = "+15005550001"


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


class SmsSink(HttpSink):
    """Keeps every accepted message in `messages` (to, from, body, sid, at, status_callback) and,
    if `jsonl` is given, appends each one to that file as a JSON line."""

    def __init__(
        self, account_sid: str = "ACdev", auth_token: str = "dev-token", jsonl: Path | None = None
    ) -> None:
        super().__init__(jsonl)
        self.account_sid = account_sid
        self.auth_token = auth_token

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)

    def _error(self, status: int, message: str) -> web.Response:
        return _error(status, 20000 + status, message)

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
        self._keep(record)
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
