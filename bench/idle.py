"""Idle cost: what runs waiting on a 3-day wait cost a worker that holds them, beside a bare
worker holding as many bare workflows waiting on a 3-day timer (bench.bare.BareWaiter).

    .venv/bin/python -m bench.idle [--waiting 1000 10000 [30000]] [--seconds 60]

For each side a worker process of its own (`journeys worker`, `python -m bench.bare worker`)
polls a task queue of its own; this process starts runs (50 in flight) until `waiting` of them
wait, for each count in turn, and once the worker has gone quiet (its first tasks done) reads its
resident memory (/proc); at the last count it reads the CPU the worker uses over `seconds` while
they all wait. Both workers keep the runs they have seen in their cache (the SDK's default,
1,000 runs; those past it are evicted, and replayed when their timer fires).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from bench.bare import BareWaiter
from bench.embedded import (
    BARE_WORKER,
    JOURNEYS,
    THREE_DAYS,
    WAITING,
    Embedded,
    bounded,
    embedded_stack,
    quiet,
    rss_mb,
)
from bench.figures import Figure, Target, table
from devstack.processes import cpu_seconds, workflow_queue
from journeys import eventloop
from journeys.logging import configure_logging
from workflows.runs import start_journey

CONCURRENCY = 50


@dataclass
class Holding:
    rss_mb: dict[int, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    def __str__(self) -> str:
        rss = ", ".join(f"{count:,} waiting {mb:.0f} MB" for count, mb in self.rss_mb.items())
        return f"RSS: {rss}; CPU while waiting {self.cpu_seconds:.2f} s"


async def hold(
    stack: Embedded, command: list[str], task_queue: str, waiting: list[int], seconds: float
) -> Holding:
    held = Holding()
    journey = stack.spec(WAITING)

    async def start(i: int) -> None:
        if command == BARE_WORKER:
            await stack.bare_client.start_workflow(
                BareWaiter.run, THREE_DAYS, id=f"{task_queue}-{i}", task_queue=task_queue
            )
        else:
            await start_journey(stack.client, journey, f"{task_queue}-{i}", task_queue)

    async with stack.workers(command, 1, task_queue) as (pid,):
        started = 0
        for count in waiting:
            await bounded(range(started, count), CONCURRENCY, start)
            started = count
            # The starts outrun the worker: a worker that pauses is not yet one that is done.
            await drained(stack, task_queue, limit=max(600.0, count / 10))
            await quiet([pid])
            held.rss_mb[count] = rss_mb(pid)
        before = cpu_seconds(pid)
        await asyncio.sleep(seconds)
        held.cpu_seconds = cpu_seconds(pid) - before
    return held


async def drained(stack: Embedded, task_queue: str, limit: float) -> None:
    """Return once no workflow task waits on `task_queue` (Temporal's backlog count, approximate
    but never 0 while thousands wait); TimeoutError past `limit` seconds."""
    request = workflow_queue(stack.settings.temporal_namespace, task_queue, stats=True)
    async with asyncio.timeout(limit):
        stats = (await stack.client.workflow_service.describe_task_queue(request)).stats
        while stats.approximate_backlog_count:
            await asyncio.sleep(2)
            stats = (await stack.client.workflow_service.describe_task_queue(request)).stats


async def measure(waiting: list[int], seconds: float) -> list[Figure]:
    async with embedded_stack() as stack:
        journeys = await hold(stack, [JOURNEYS, "worker"], "idle", waiting, seconds)
        bare = await hold(stack, BARE_WORKER, "bare-idle", waiting, seconds)
    print(f"  journeys {journeys}\n  bare     {bare}", flush=True)
    most, fewest = max(waiting), min(waiting)
    figures = [
        Figure(
            f"worker RSS, {count:,} runs waiting",
            "MB",
            journeys.rss_mb[count],
            bare.rss_mb[count],
            Target("at_most", 1.5) if count == most else None,
        )
        for count in waiting
    ]
    if most != fewest:
        # Per 1,000 runs, so that counts past the cache (1,000 runs) read as what each run that
        # waits elsewhere costs the worker: nothing, once its memory is bounded by its cache.
        per_thousand = 1000 / (most - fewest)
        figures.append(
            Figure(
                f"worker RSS growth per 1,000 runs waiting, {fewest:,} -> {most:,}",
                "MB",
                (journeys.rss_mb[most] - journeys.rss_mb[fewest]) * per_thousand,
                (bare.rss_mb[most] - bare.rss_mb[fewest]) * per_thousand,
            )
        )
    figures.append(
        Figure(
            f"worker CPU while {most:,} wait, over {seconds:g} s",
            "ms/s",
            journeys.cpu_seconds / seconds * 1000,
            bare.cpu_seconds / seconds * 1000,
        )
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waiting", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    configure_logging("WARNING")
    print(table(eventloop.run(measure(sorted(args.waiting), args.seconds))))


if __name__ == "__main__":
    main()
