"""End-to-end throughput and scaling: journeys a second through a 4-step journey (an email, a
3-day wait, a branch on the phone, an SMS or an email) at a speed that makes the wait a second,
with one and with two worker processes, beside bare Temporal workflows with the same activities
and timer (bench.bare.BareJourney) on bare workers in the same run. A third round runs the bare
workflows with the journey's own sends in their activities (`bench.bare worker --sends`): bare
Temporal doing the same sending work, so the journey's figures beside it are the engine's own
cost (beside the first bare round, they are the engine's and the sends' together).

    .venv/bin/python -m bench.throughput [--runs 1000] [--workers 1 2] [--speed 259200]

Each round starts its workers (`journeys worker`, or `python -m bench.bare worker`, each a
process of its own) on a task queue of its own and waits until they poll; then this process
starts `runs` runs, 50 in flight, and waits until every one has completed (counted by Temporal's
visibility). Throughput is runs over the time from the first start to the last completion. Every
other contact has a phone (the branch sends it an SMS), all consent to email; this process is
their SMTP server and the Twilio stand-in. CPU per run, from /proc over the same span: the
Temporal dev server's and the workers' (all of them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bench.bare import BareJourney
from bench.embedded import (
    BARE_SENDING_WORKER,
    BARE_WORKER,
    FOUR_STEPS,
    JOURNEYS,
    THREE_DAYS,
    Embedded,
    bounded,
    embedded_stack,
    total_cpu,
)
from bench.figures import Figure, Target, table
from devstack.processes import cpu_seconds
from devstack.tally import half_with_phones
from journeys import eventloop
from journeys.contacts import Contact
from journeys.logging import configure_logging
from journeys.store import open_store
from workflows.runs import start_journey

CONCURRENCY = 50
RATE_TARGET = Target("at_least", 0.9)


@dataclass(frozen=True)
class Round:
    runs_per_second: float
    server_ms_per_run: float
    worker_ms_per_run: float

    def __str__(self) -> str:
        return (
            f"{self.runs_per_second:.1f} runs/s, CPU per run: Temporal "
            f"{self.server_ms_per_run:.1f} ms, workers {self.worker_ms_per_run:.1f} ms"
        )


async def with_contacts(stack: Embedded, task_queue: str, runs: int) -> list[Contact]:
    """The round's contacts, `{task_queue}-{i}`, in the store."""
    contacts = half_with_phones(task_queue, runs)
    store = await open_store(stack.settings.database_url)
    try:
        await store.upsert_contacts(contacts)
    finally:
        await store.close()
    return contacts


async def journeys_round(stack: Embedded, workers: int, runs: int, speed: float) -> Round:
    task_queue = f"four-steps-{workers}w"
    contacts = await with_contacts(stack, task_queue, runs)
    spec = stack.spec(FOUR_STEPS)

    async def start(i: int) -> None:
        await start_journey(stack.client, spec, contacts[i].id, task_queue, speed)

    async with (
        stack.workers([JOURNEYS, "worker"], workers, task_queue) as pids,
        all_sent(stack, runs, task_queue),
    ):
        return await timed(stack, pids, task_queue, runs, start)


async def bare_round(
    stack: Embedded, workers: int, runs: int, speed: float, sends: bool = False
) -> Round:
    """Bare Temporal's round; with `sends`, on workers whose sends are the journey's."""
    task_queue = f"bare-{'sending-' if sends else ''}four-steps-{workers}w"
    if sends:
        await with_contacts(stack, task_queue, runs)

    async def start(i: int) -> None:
        await stack.bare_client.start_workflow(
            BareJourney.run,
            args=[i, THREE_DAYS / speed],
            id=f"{task_queue}-{i}",
            task_queue=task_queue,
        )

    command = BARE_SENDING_WORKER if sends else BARE_WORKER
    async with (
        stack.workers(command, workers, task_queue) as pids,
        all_sent(stack, runs, task_queue) if sends else contextlib.nullcontext(),
    ):
        return await timed(stack, pids, task_queue, runs, start)


@asynccontextmanager
async def all_sent(stack: Embedded, runs: int, task_queue: str) -> AsyncIterator[None]:
    """Raises unless the round's runs sent what the four-step journey sends to the round's
    contacts: an email each, then an SMS to each with a phone (every other one, from the
    first) and an email to the rest."""
    before = len(stack.mail.messages), len(stack.sms.messages)
    yield
    got = len(stack.mail.messages) - before[0], len(stack.sms.messages) - before[1]
    expected = runs + runs // 2, (runs + 1) // 2
    if got != expected:
        raise RuntimeError(
            f"{task_queue}: {got[0]} emails and {got[1]} SMS reached the sinks, "
            f"{expected[0]} and {expected[1]} expected"
        )


async def timed(
    stack: Embedded,
    pids: list[int],
    task_queue: str,
    runs: int,
    start: Callable[[int], Awaitable[None]],
) -> Round:
    """Start `runs` runs with `start(i)`, CONCURRENCY in flight; time and CPU until all have
    completed."""
    server_before, workers_before = cpu_seconds(stack.server.pid), total_cpu(pids)
    began = time.perf_counter()
    await bounded(range(runs), CONCURRENCY, start)
    async with asyncio.timeout(max(120.0, runs)):
        await stack.until_completed(task_queue, runs)
    seconds = time.perf_counter() - began
    return Round(
        runs_per_second=runs / seconds,
        server_ms_per_run=(cpu_seconds(stack.server.pid) - server_before) / runs * 1000,
        worker_ms_per_run=(total_cpu(pids) - workers_before) / runs * 1000,
    )


def beside(
    journeys: Round, bare: Round, of: str, runs: int, rate_target: Target | None = None
) -> list[Figure]:
    """The journeys round's throughput and CPU per run beside a bare round's, named `of`."""
    return [
        Figure(
            f"end-to-end throughput, {runs:,} runs, {of}",
            "runs/s",
            journeys.runs_per_second,
            bare.runs_per_second,
            rate_target,
        ),
        Figure(
            f"Temporal server CPU per run, {of}",
            "ms",
            journeys.server_ms_per_run,
            bare.server_ms_per_run,
        ),
        Figure(
            f"worker CPU per run, {of}", "ms", journeys.worker_ms_per_run, bare.worker_ms_per_run
        ),
    ]


async def measure(runs: int, workers: list[int], speed: float) -> list[Figure]:
    """Each worker count in turn, journeys then bare, on one embedded stack."""
    rounds: dict[int, tuple[Round, Round, Round]] = {}
    async with embedded_stack() as stack:
        for count in workers:
            journeys = await journeys_round(stack, count, runs, speed)
            bare = await bare_round(stack, count, runs, speed)
            sending = await bare_round(stack, count, runs, speed, sends=True)
            print(
                f"  {count} worker(s): journeys {journeys}; bare {bare}; "
                f"bare with the journey's sends {sending}",
                flush=True,
            )
            rounds[count] = (journeys, bare, sending)
    figures: list[Figure] = []
    for count, (journeys, bare, sending) in rounds.items():
        figures += beside(journeys, bare, f"{count} worker(s)", runs, RATE_TARGET)
        figures += beside(
            journeys, sending, f"{count} worker(s), bare with the journey's sends", runs
        )
    if len(rounds) > 1:
        fewest, most = min(rounds), max(rounds)
        figures.append(
            Figure(
                f"scaling: throughput with {most} workers / with {fewest}",
                "x",
                rounds[most][0].runs_per_second / rounds[fewest][0].runs_per_second,
                rounds[most][1].runs_per_second / rounds[fewest][1].runs_per_second,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--speed", type=float, default=THREE_DAYS, help="the journey clock's speed (wait: 1 s)"
    )
    args = parser.parse_args()
    configure_logging("WARNING")
    print(table(eventloop.run(measure(args.runs, args.workers, args.speed))))


if __name__ == "__main__":
    main()
