"""Headless Chromium for tests: Debian's `chromium` package, driven over the DevTools protocol (a
WebSocket, through aiohttp). Only 127.0.0.1 resolves: a page that needs the internet shows what a
person offline would see, and `Page.requested` lists every URL the page asked for."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

# Bounds, so that a browser that hangs fails the test instead of holding it.
START_TIMEOUT = 30.0
CALL_TIMEOUT = 10.0

_FLAGS = [
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--mute-audio",
    # Every host but the test's server fails to resolve: nothing leaves the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks one and writes it to DevToolsActivePort
]


def chromium_path() -> str:
    """The browser, or the test fails saying what to install (a skipped test checks nothing)."""
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "this test needs a headless browser: install Debian's 'chromium' package "
            "(apt-get install chromium; `make test` installs it when missing)"
        )
    return found


def outside(url: str) -> bool:
    """Whether fetching `url` would leave the machine (data:, blob: and about: URLs do not)."""
    parts = urlsplit(url)
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname != "127.0.0.1"


class Page:
    """One tab of the browser: every request it made since `open`, and JavaScript run in it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.requested: list[str] = []
        self._ids_to_urls: dict[str, str] = {}
        # Requests the browser refused to send (a Content-Security-Policy, say): url, reason.
        self.blocked: list[tuple[str, str]] = []
        self.errors: list[str] = []  # uncaught script exceptions
        self.log: list[str] = []  # what the browser logged (refused loads among them)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                future = self._pending.pop(data.get("id", 0), None)
                if future is not None and not future.done():
                    future.set_result(data)
                else:
                    self._event(data.get("method", ""), data.get("params", {}))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the browser closed the connection"))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requested.append(params["request"]["url"])
            self._ids_to_urls[params["requestId"]] = params["request"]["url"]
        elif method == "Network.loadingFailed" and params.get("blockedReason"):
            url = self._ids_to_urls.get(params["requestId"], "?")
            self.blocked.append((url, params["blockedReason"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description", str(details)))
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.log.append(f"{entry['level']}: {entry['text']}")

    def sent(self) -> list[str]:
        """The URLs requested and not blocked by the browser."""
        refused = {url for url, _ in self.blocked}
        return [url for url in self.requested if url not in refused]

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A DevTools protocol command; its result."""
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        async with asyncio.timeout(CALL_TIMEOUT):
            answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def open(self, url: str) -> None:
        """Load `url`; `requested` starts anew."""
        for seen in (self.requested, self._ids_to_urls, self.blocked, self.errors, self.log):
            seen.clear()
        navigated = await self.call("Page.navigate", url=url)
        if navigated.get("errorText"):
            raise RuntimeError(f"{url}: {navigated['errorText']}")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-like values only)."""
        done = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in done:
            raise RuntimeError(f"{expression}: {done['exceptionDetails']}")
        return done["result"].get("value")

    async def wait_for(self, expression: str, seconds: float) -> Any:
        """The value of `expression` once it is truthy; fails after `seconds` with what the page
        shows and the requests it made."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    value = await self.evaluate(expression)
                    if value:
                        return value
                    await asyncio.sleep(0.1)
        shown = await self.evaluate("document.body ? document.body.innerText : ''")
        pytest.fail(
            f"after {seconds}s, still no {expression!r}\n"
            f"page text: {str(shown)[:500]!r}\nrequested: {self.requested}\n"
            f"blocked: {self.blocked}\nscript errors: {self.errors}\nlog: {self.log}"
        )

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def headless_chromium() -> AsyncIterator[Page]:
    """A headless Chromium of its own (a fresh profile), and its one tab."""
    browser = chromium_path()
    profile = Path(tempfile.mkdtemp(prefix="journeys-chromium-"))
    flags = [*_FLAGS, f"--user-data-dir={profile}"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    log = profile / "chromium.log"
    with log.open("wb") as stderr:
        # A session of its own: stopping its process group stops the renderers with it.
        process = await asyncio.create_subprocess_exec(
            browser,
            *flags,
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT)) as http:
            page_ws = await _page_socket(process, profile, http)
            ws = await http.ws_connect(page_ws, max_msg_size=0)
            page = Page(ws)
            try:
                await page.call("Network.enable")
                await page.call("Runtime.enable")
                await page.call("Log.enable")
                yield page
            finally:
                await page.close()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        async with asyncio.timeout(CALL_TIMEOUT):
            await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _page_socket(
    process: asyncio.subprocess.Process, profile: Path, http: aiohttp.ClientSession
) -> str:
    """The DevTools WebSocket of the browser's first tab, once the browser listens."""
    port_file = profile / "DevToolsActivePort"
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"chromium exited with {process.returncode}")
                if port_file.exists() and (lines := port_file.read_text().split()):
                    async with http.get(f"http://127.0.0.1:{lines[0]}/json/list") as answer:
                        targets = await answer.json()
                    pages = [t for t in targets if t.get("type") == "page"]
                    if pages:
                        url: str = pages[0]["webSocketDebuggerUrl"]
                        return url
                await asyncio.sleep(0.05)
    except (RuntimeError, TimeoutError) as e:
        log = (profile / "chromium.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"headless Chromium did not start ({e or 'timed out'}):\n{log}")
