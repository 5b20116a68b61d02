"""Garbage collection for the long-running processes (worker, gateway, the dev stack) and for the
benchmark that measures them."""

from __future__ import annotations

import gc

# Young collections after 5,000 new container objects instead of Python's 700, and older
# generations twice as rarely: a journey event allocates thousands (protobufs, pydantic models,
# SQLAlchemy rows), so the defaults collect several times per event.
THRESHOLDS = (5_000, 20, 20)


def settle_after_startup() -> None:
    """Call once the process has started serving (modules imported, worker and app built).

    Everything built at start-up lives as long as the process. Freezing it keeps full
    collections from walking it again: with Python's defaults, at 20 events/s on the embedded
    stack (bench/event_latency.py), the worker and gateway process paused for up to 250 ms in
    full collections, which is what the slowest events waited for.
    """
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
