"""An HTTP server answering like Twilio's Messages API, so the real `twilio` client can talk to it.

Served: message creation, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form encoded
To, From, Body and optional StatusCallback), and the Messages list, `GET` on the same path
(filters To, From, DateSent, DateSent<, DateSent>; newest first, one page), with HTTP basic auth
with the account sid and auth token. The stand-in sends at once, so a listed message is `sent`.
Errors use Twilio's JSON shape, so the client raises its usual TwilioRestException.
"""

from __future__ import annotations

import operator
import re
import secrets
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

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


def _resource(account_sid: str, record: dict[str, Any], status: str) -> dict[str, Any]:
    """A kept message as Twilio's Message resource shows it."""
    at = datetime.fromisoformat(record["at"])
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{record['sid']}.json"
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": record["body"],
        "date_created": format_datetime(at),
        "date_sent": format_datetime(at) if status == "sent" else None,
        "date_updated": format_datetime(at),
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": record["from"],
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": str(_segments(record["body"])),
        "price": None,
        "price_unit": "USD",
        "sid": record["sid"],
        "status": status,
        "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
        "to": record["to"],
        "uri": uri,
    }


def _sent_within(at: datetime, query: Any) -> bool:
    """Whether a message sent `at` passes the query's DateSent filters: on the day of, on or
    before, on or after, each a date (YYYY-MM-DD) or a datetime (as twilio's client sends)."""

    def bound(value: str) -> datetime:
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def day_or_moment(value: str) -> tuple[Any, Any]:
        if len(value) == len("YYYY-MM-DD"):
            return at.date(), date.fromisoformat(value)
        return at, bound(value)

    on, before, after = (query.get(k) for k in ("DateSent", "DateSent<", "DateSent>"))
    return (
        (on is None or at.date() == bound(on).date())
        and (before is None or operator.le(*day_or_moment(before)))
        and (after is None or operator.ge(*day_or_moment(after)))
    )


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
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._list_messages)

    def _error(self, status: int, message: str) -> web.Response:
        return _error(status, 20000 + status, message)

    def _authorized(self, request: web.Request) -> bool:
        try:
            auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            return False
        return auth.login == self.account_sid and auth.password == self.auth_token

    def _refused(self, request: web.Request) -> web.Response | None:
        """Twilio's answer to a request with wrong credentials or for another account."""
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        if request.match_info["sid"] != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        return None

    async def _create_message(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        sid = self.account_sid
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
        return web.json_response(_resource(sid, record, "queued"), status=201)

    async def _list_messages(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        sid = self.account_sid
        query = request.query
        try:
            listed = [
                _resource(sid, m, "sent")
                for m in reversed(self.messages)
                if query.get("To", m["to"]) == m["to"]
                and query.get("From", m["from"]) == m["from"]
                and _sent_within(datetime.fromisoformat(m["at"]), query)
            ]
        except ValueError as e:
            return _error(400, 20001, f"Invalid DateSent filter: {e}")
        page_size = int(query.get("PageSize", "50"))
        return web.json_response(
            {
                "messages": listed[:page_size],
                "end": min(len(listed), page_size) - 1,
                "first_page_uri": request.path_qs,
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "previous_page_uri": None,
                "start": 0,
                "uri": request.path_qs,
            }
        )
