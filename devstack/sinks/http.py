"""The base of the local HTTP stand-ins for providers the project talks to."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpSink:
    """What the HTTP stand-ins (Twilio, web push, FCM) share: an aiohttp app in the caller's
    loop, a request count, a queue of failures to answer with, flakiness (off unless asked
    for), and the messages kept (also as JSON lines in `jsonl`, if given)."""

    def __init__(self, jsonl: Path | None) -> None:
        self.jsonl = jsonl
        self.messages: list[dict[str, Any]] = []
        # Every request received, answered with success or not.
        self.requests = 0
        self._failures: list[int] = []
        # Flakiness (off by default): the share of POSTs answered with one of the statuses.
        self._flaky_share = 0.0
        self._flaky_statuses: Sequence[int] = ()
        self._flaky_draw = random.Random()
        # How many requests flakiness answered with an error.
        self.flaky_failures = 0
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with `status` (500, 503, 429, ...) before looking
        at them."""
        self._failures.extend([status] * times)

    def be_flaky(self, share: float, statuses: Sequence[int] = (500, 429), seed: int = 0) -> None:
        """From now on answer a random `share` of the POST requests (the ones that send) with one
        of `statuses`, before looking at them, as a provider having a bad day does; drawn from
        `seed`, so a run can be repeated. A share of 0 makes it reliable again."""
        self._flaky_share = share
        self._flaky_statuses = statuses
        self._flaky_draw = random.Random(seed)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen and return the port actually bound."""
        app = web.Application(middlewares=[self._count_and_fail])
        self._add_routes(app)
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

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _error(self, status: int, message: str) -> web.Response:
        raise NotImplementedError

    def _keep(self, record: dict[str, Any]) -> None:
        self.messages.append(record)
        if self.jsonl is not None:
            self.jsonl.parent.mkdir(parents=True, exist_ok=True)
            with self.jsonl.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

    @web.middleware
    async def _count_and_fail(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        self.requests += 1
        status = self._failures.pop(0) if self._failures else self._flaky(request)
        if status is not None:
            return self._error(status, HTTPStatus(status).phrase)
        return await handler(request)

    def _flaky(self, request: web.Request) -> int | None:
        """The error flakiness answers `request` with, or None to serve it."""
        if request.method != "POST" or self._flaky_draw.random() >= self._flaky_share:
            return None
        self.flaky_failures += 1
        return self._flaky_draw.choice(self._flaky_statuses)
