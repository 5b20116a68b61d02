"""Garbage collection for the long-running processes (worker, gateway, the dev stack) and for the
benchmark that measures them."""

from __future__ import annotations

import gc

# Young collections after 5,000 new container objects instead of Python's 700: a journey event
# allocates thousands (protobufs, pydantic models, SQLAlchemy rows), so the default collects
# several times per event. The older generations follow in objects kept: a middle collection
# every 6 young ones (30,000 objects kept), a full one considered every 2 middle ones (60,000),
# and run only once the objects kept since the last one are a quarter of those it kept.
#
# Full collections are what frees the runs a worker evicts from its cache: a run's sandbox (its
# copy of the workflow module, its coroutines, the eviction's traceback) is reference cycles old
# enough to be in the last generation. At (5,000, 20, 20) one was considered every 2.2 million
# objects kept, some 8,000 runs past the cache: a worker holding runs that wait grew about 57 KB
# a run (838 MB at 10,000 waiting), nearly all of it garbage (in-process, 3,000 waiting: 506,000
# unreachable objects, 2.4 s to collect on a loaded machine). Now the garbage is a few hundred
# runs' at most (45,000 objects at 3,000 waiting) and the worker stays near what its cache holds.
# The price: a worker whose runs outnumber its cache, evicting and replaying, runs a full
# collection every few hundred runs it loads, each walking what the cache holds (1,000 runs:
# 240,000 objects, 0.2 s on a loaded 2-core machine) where it used to run one, seconds long,
# every few thousand.
THRESHOLDS = (5_000, 5, 1)


def settle_after_startup() -> None:
    """Call once the process has started serving (modules imported, worker and app built).

    Everything built at start-up lives as long as the process. Freezing it keeps full
    collections from walking it again: with Python's defaults, at 20 events/s on the embedded
    stack (bench/event_latency.py), the worker and gateway process paused for up to 250 ms in
    full collections, which is what the slowest events waited for.
    """
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
