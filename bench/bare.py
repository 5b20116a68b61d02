"""The baseline: bare Temporal, no project code. A workflow waits for a signal, then runs one
activity; the activity notes when it started. Same server, same rate as the journey bench.

Beside them the suite's baselines (bench/suite.py), the bench journeys' twins, with a worker and
a starter to run as processes of their own:

    python -m bench.bare worker [--sends] | start --count N [--concurrency 50] [--wait-seconds 1]

`worker --sends` runs BareJourney with the journey's own sends instead of no-op activities
(bench.bare_sends): bare Temporal doing the same sending work, so that what differs from a journey
run is the engine alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from journeys import eventloop

# perf_counter() when each run's activity started, by workflow id (the bench reads it).
STARTED: dict[str, float] = {}


@activity.defn
async def note_start(run: str) -> None:
    STARTED[run] = time.perf_counter()


@workflow.defn
class BareWorkflow:
    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._go)
        await workflow.execute_activity(
            note_start, workflow.info().workflow_id, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class BareListener:
    """Takes signals until told to stop: each signal is one short workflow task, as an open is
    for a journey that only listens (bench/gateway_capacity.py)."""

    def __init__(self) -> None:
        self._heard = 0
        self._stop = False

    @workflow.signal
    def hear(self) -> None:
        self._heard += 1

    @workflow.signal
    def stop(self) -> None:
        self._stop = True

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self._stop)
        return self._heard


# --- the suite's baselines: the same activities and timers as the bench journeys ----------


@activity.defn
async def bare_send(contact: int, step: str) -> str:
    return f"{step} to {contact}"


@activity.defn
async def bare_has_phone(contact: int) -> bool:
    return contact % 2 == 0


@workflow.defn
class BareJourney:
    """The four_steps journey without the project: an activity, a timer, an activity for the
    branch's fact, an activity."""

    @workflow.run
    async def run(self, contact: int, wait_seconds: float) -> str:
        timeout = timedelta(seconds=30)
        await workflow.execute_activity(
            bare_send, args=[contact, "intro"], start_to_close_timeout=timeout
        )
        await workflow.sleep(wait_seconds)
        phone = await workflow.execute_activity(
            bare_has_phone, contact, start_to_close_timeout=timeout
        )
        return await workflow.execute_activity(
            bare_send,
            args=[contact, "nudge_sms" if phone else "followup_email"],
            start_to_close_timeout=timeout,
        )


@workflow.defn
class BareWaiter:
    """The three_day_wait journey without the project: one timer."""

    @workflow.run
    async def run(self, wait_seconds: float) -> None:
        await workflow.sleep(wait_seconds)


async def _connect() -> Client:
    return await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], namespace=os.environ.get("TEMPORAL_NAMESPACE", "default")
    )


async def serve(sends: bool) -> None:
    """A bare worker on JOURNEYS_TASK_QUEUE until SIGTERM, as `journeys worker` runs; with
    `sends`, BareJourney's sends are the journey's (the settings from the environment)."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if not sends:
        async with await _bare_worker(bare_send):
            await stop.wait()
        return
    # Not imported above: the sandbox imports this module again for each workflow run.
    from bench.bare_sends import JourneySends
    from journeys.heap import settle_after_startup
    from journeys.logging import configure_logging
    from journeys.settings import Settings
    from journeys.store import open_store

    # As `journeys worker` runs: each send's log line, the same garbage collection.
    configure_logging()
    settings = Settings()
    store = await open_store(settings.database_url)
    journey_sends = JourneySends(store, settings)
    try:
        async with await _bare_worker(journey_sends.send):
            settle_after_startup()
            await stop.wait()
    finally:
        await journey_sends.close()
        await store.close()


async def _bare_worker(send: Callable[[int, str], Awaitable[str]]) -> Worker:
    return Worker(
        await _connect(),
        task_queue=os.environ["JOURNEYS_TASK_QUEUE"],
        workflows=[BareJourney, BareWaiter],
        activities=[send, bare_has_phone],
    )


async def start_many(count: int, concurrency: int, wait_seconds: float) -> None:
    """`count` BareJourney starts, `concurrency` in flight, as `journeys start --csv` does."""
    client = await _connect()
    task_queue = os.environ["JOURNEYS_TASK_QUEUE"]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await client.start_workflow(
                BareJourney.run,
                args=[i, wait_seconds],
                id=f"{task_queue}-{i}",
                task_queue=task_queue,
            )

    await asyncio.gather(*(one(i) for i in range(count)))
    print(f"started {count}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="A bare worker (`worker`), or bare starts (`start`), on JOURNEYS_TASK_QUEUE "
        "of the Temporal at TEMPORAL_ADDRESS"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker")
    worker.add_argument("--sends", action="store_true", help="the journey's sends (JourneySends)")
    starts = commands.add_parser("start")
    starts.add_argument("--count", type=int, required=True)
    starts.add_argument("--concurrency", type=int, default=50)
    starts.add_argument("--wait-seconds", type=float, default=1.0)
    args = parser.parse_args()
    if args.command == "worker":
        eventloop.run(serve(args.sends))
    else:
        eventloop.run(start_many(args.count, args.concurrency, args.wait_seconds))
