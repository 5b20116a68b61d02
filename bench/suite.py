"""The benchmark suite (`make bench`): every figure of the project beside bare Temporal doing the
same Temporal work in the same run, on the embedded stack (the dev server on SQLite in WAL mode),
printed as one table and appended to bench/RESULTS.md with the date, the machine and the commit.

    .venv/bin/python -m bench.suite [--quick] [--results bench/RESULTS.md]

Each bench starts a stack of its own and measures its baseline in the same run; the targets are
ratios against that baseline. `--quick` runs every bench at tiny sizes, to check the suite
works (tests/test_bench_suite.py): its figures say nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench import bulk_start, event_latency, gateway_capacity, idle, throughput
from bench.figures import Figure, table
from journeys import eventloop
from journeys.logging import configure_logging

RESULTS = Path(__file__).parent / "RESULTS.md"


@dataclass(frozen=True)
class Sizes:
    latency_runs: int
    latency_rate: float
    throughput_runs: int
    bulk_contacts: int
    waiting: tuple[int, ...]
    idle_seconds: float
    gateway_rates: tuple[float, ...]
    gateway_seconds: float
    gateway_contacts: int
    gateway_drain: float

    def benches(self) -> list[tuple[str, Callable[[], Awaitable[list[Figure]]]]]:
        return [
            ("event latency", lambda: event_latency.measure(self.latency_runs, self.latency_rate)),
            ("throughput", lambda: throughput.measure(self.throughput_runs, [1, 2], SPEED)),
            ("bulk start", lambda: bulk_start.measure(self.bulk_contacts)),
            ("idle", lambda: idle.measure(list(self.waiting), self.idle_seconds)),
            (
                "gateway capacity",
                lambda: gateway_capacity.measure(
                    [1, 2],
                    list(self.gateway_rates),
                    self.gateway_seconds,
                    self.gateway_contacts,
                    self.gateway_drain,
                ),
            ),
        ]


# The sizes of issues 14 and 15 (waiting runs at 1,000, 10,000 and 30,000), and tiny ones that
# only show the suite works.
FULL = Sizes(
    200, 20, 1000, 10_000, (1000, 10_000, 30_000), 60, (50, 100, 150, 200, 300), 10, 200, 10
)
QUICK = Sizes(10, 20, 10, 50, (10, 50), 1, (5,), 1, 5, 0.5)
# The four-step journey's 3-day wait lasts a second.
SPEED = throughput.THREE_DAYS


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_kb / 1024 / 1024:.1f} GB, "
        f"Python {platform.python_version()}, temporalio {version('temporalio')}, "
        f"{platform.system()} {platform.release()}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent
        ).stdout.strip()

    dirty = " (with uncommitted changes)" if git("status", "--porcelain") else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


async def run(sizes: Sizes) -> list[Figure]:
    """Each bench in turn; at the quick sizes side by side, since those figures only show that
    every bench works (one after the other they took over 2 minutes, mostly processes
    starting)."""
    benches = sizes.benches()
    if sizes == QUICK:
        results = await asyncio.gather(*(bench() for _, bench in benches))
        return [figure for figures in results for figure in figures]
    figures: list[Figure] = []
    for name, bench in benches:
        began = time.perf_counter()
        print(f"== {name}", flush=True)
        figures.extend(await bench())
        print(f"== {name}: {time.perf_counter() - began:.0f} s", flush=True)
    return figures


def report(figures: list[Figure], sizes: Sizes, measured: str, minutes: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    kind = "quick (tiny sizes: says nothing about speed)" if sizes == QUICK else "full sizes"
    return (
        f"## {when}, {kind}\n\n"
        f"Machine: {machine()}. Commit {measured}. The suite took {minutes:.0f} min.\n\n"
        f"{table(figures)}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the suite works")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the file appended to")
    args = parser.parse_args()
    configure_logging("WARNING")
    sizes = QUICK if args.quick else FULL
    measured = commit()  # before the run: files may change while it runs
    began = time.perf_counter()
    figures = eventloop.run(run(sizes))
    text = report(figures, sizes, measured, (time.perf_counter() - began) / 60)
    print("\n" + text)
    with args.results.open("a") as out:
        out.write("\n" + text)


if __name__ == "__main__":
    main()
