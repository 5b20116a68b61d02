"""Bulk start: `journeys start four_steps --csv` of `contacts` contacts as the command line runs
it (a process of its own, 50 starts in flight), beside bare starts of bench.bare.BareJourney with
the same concurrency (`python -m bench.bare start`, also a process of its own), in the same run.

    .venv/bin/python -m bench.bulk_start [--contacts 10000]

No worker runs: the figure is how fast runs are started, not run. Starts per second count the
whole command, from its process starting to its exit (reading the CSV, connecting); CPU per start
is the starter's (its rusage) and the Temporal dev server's (/proc) over that span.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.embedded import FOUR_STEPS, JOURNEYS, THREE_DAYS, Embedded, embedded_stack
from bench.figures import Figure, Target, table
from devstack.processes import cpu_seconds
from journeys import eventloop
from journeys.logging import configure_logging

CONCURRENCY = 50


@dataclass(frozen=True)
class Starts:
    per_second: float
    starter_ms: float
    server_ms: float

    def __str__(self) -> str:
        return (
            f"{self.per_second:.1f} starts/s, CPU per start: starter {self.starter_ms:.1f} ms, "
            f"Temporal {self.server_ms:.1f} ms"
        )


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def timed_command(stack: Embedded, command: list[str], task_queue: str, count: int) -> Starts:
    server_before, starter_before = cpu_seconds(stack.server.pid), children_cpu()
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, env=stack.env(task_queue), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await process.communicate()
    seconds = time.perf_counter() - began
    if process.returncode != 0 or f"started {count}" not in output.decode():
        raise RuntimeError(f"{command[:3]} failed: {output.decode()[-2000:]}")
    return Starts(
        per_second=count / seconds,
        starter_ms=(children_cpu() - starter_before) / count * 1000,
        server_ms=(cpu_seconds(stack.server.pid) - server_before) / count * 1000,
    )


async def measure(contacts: int) -> list[Figure]:
    async with embedded_stack() as stack:
        csv = stack.data_dir / "contacts.csv"
        csv.write_text(
            "id,email\n" + "".join(f"bulk-{i},bulk{i}@example.com\n" for i in range(contacts))
        )
        journeys = await timed_command(
            stack,
            [JOURNEYS, "start", FOUR_STEPS, "--csv", str(csv), "--concurrency", str(CONCURRENCY)],
            "bulk-start",
            contacts,
        )
        bare = await timed_command(
            stack,
            [
                sys.executable,
                *("-m", "bench.bare", "start", "--count", str(contacts)),
                *("--concurrency", str(CONCURRENCY), "--wait-seconds", str(THREE_DAYS)),
            ],
            "bare-bulk-start",
            contacts,
        )
    print(f"  journeys {journeys}\n  bare     {bare}", flush=True)
    return [
        Figure(
            f"bulk start, {contacts:,} contacts",
            "starts/s",
            journeys.per_second,
            bare.per_second,
            Target("at_least", 0.9),
        ),
        Figure("starter CPU per start", "ms", journeys.starter_ms, bare.starter_ms),
        Figure("Temporal server CPU per start", "ms", journeys.server_ms, bare.server_ms),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    args = parser.parse_args()
    configure_logging("WARNING")
    print(table(eventloop.run(measure(args.contacts))))


if __name__ == "__main__":
    main()
