"""The event loop every journeys process (and the test suite) runs on.

uvloop (libuv) on Linux and macOS; asyncio's own loop on Windows, where uvloop does not exist.
On the embedded stack at 20 events/s, uvloop with uvicorn parsing HTTP through httptools took
several milliseconds of CPU off each event in the worker-and-gateway process
(bench/event_latency.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    if sys.platform == "win32":
        return asyncio.new_event_loop()
    import uvloop

    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop above."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
