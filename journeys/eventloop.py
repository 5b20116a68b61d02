"""The event loop every journeys process runs on.

uvloop (libuv) where it is available, Linux and macOS: on the embedded stack at 20 events/s it
took several milliseconds of CPU off each event in the worker-and-gateway process, against
asyncio's loop, with uvicorn parsing HTTP through httptools (bench/event_latency.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on uvloop's loop where uvloop is installed (not on Windows)."""
    if sys.platform == "win32":
        return asyncio.run(main)
    import uvloop

    return uvloop.run(main)
