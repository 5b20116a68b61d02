"""How much the gateway holds: the request rate each endpoint keeps at a p99 under a second, with
one gateway process and with two, beside bare Temporal signals at the same rates.

    .venv/bin/python -m bench.gateway_capacity [--processes 1 2] [--rates 50 100 150 200 300]

Starts the Temporal dev server (as `journeys dev` does), a worker (`journeys worker`) and the
gateway (`journeys gateway --processes N`) on free ports, with the store in SQLite. `contacts`
contacts each run a journey that only listens: it waits for an open, and waits again. Then, for
each rate, this process plays the outside world for `seconds` seconds:
- open pixel: GET /t/o/{token} for a listening run (the token signed as the emails sign it);
- /v1 events: POST /v1/contacts/{id}/events with a new event id each, kind `opened`, which the
  gateway records once and hands to every run of the contact.
Latency is the client's, from sending the request to the whole answer; a request that fails or
takes over TIMEOUT counts as TIMEOUT. A rate is held when the p99 stays under HELD and nothing
failed. The baseline: bare Temporal signals to waiting workflows at the same rate, from here.
On two cores this process, Temporal, the worker and the gateway share the machine: the figures
say how the parts compare here, not what a server with more cores holds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BareListener
from bench.event_latency import BROWSER, at_steady_rate
from bench.figures import Figure, table
from devstack.processes import free_port
from devstack.stack import DevPorts, dev_settings, settings_env, start_temporal, wait_for_temporal
from journeys import eventloop
from journeys.contacts import Contact
from journeys.identity import register_search_attributes
from journeys.logging import configure_logging
from journeys.settings import Settings
from journeys.spec import JourneySpec
from journeys.store import open_store
from journeys.tokens import OPEN, MessageClaims, make_token
from workflows.runs import start_journey

TIMEOUT = 10.0
HELD = 1.0
# Between two steps, and before an endpoint's first: what the last one queued is worked off.
DRAIN = 10.0
ENDPOINTS = ("open pixel", "/v1 events")
API_KEY = "bench-api-key"
BIN = Path(sys.executable).parent

LISTENER = JourneySpec.model_validate(
    {
        "id": "listener",
        "version": 1,
        "description": "Waits for opens, for ever: every open is one signal and one short task.",
        "trigger": "manual",
        "steps": [
            {
                "id": "listen",
                "kind": "wait_for",
                "event": "opened",
                "timeout": "30d",
                "on_event": "again",
                "on_timeout": "done",
            },
            {"id": "again", "kind": "goto", "target": "listen"},
            {"id": "done", "kind": "end"},
        ],
        "max_steps": 100_000,
    }
)


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


async def at_rate(
    rate: float, seconds: float, send: Callable[[int], Awaitable[None]]
) -> tuple[float, float, int]:
    """(rate achieved, p99 in seconds, failures) of `send(i)` fired at `rate` for `seconds`."""
    latencies: list[float] = []
    failures = 0

    async def timed(item: str) -> None:
        nonlocal failures
        start = time.perf_counter()
        try:
            async with asyncio.timeout(TIMEOUT):
                await send(int(item))
        except Exception:
            failures += 1
            latencies.append(TIMEOUT)
            return
        latencies.append(time.perf_counter() - start)

    achieved = await at_steady_rate([str(i) for i in range(int(rate * seconds))], rate, timed)
    return achieved, p99(latencies), failures


async def ladder(
    name: str,
    rates: list[float],
    seconds: float,
    send: Callable[[int], Awaitable[None]],
    drain: float = DRAIN,
) -> float:
    """Each rate in turn, until one is not held; returns the highest rate held (0: none)."""
    held = 0.0
    await asyncio.sleep(drain)
    for rate in rates:
        achieved, worst, failures = await at_rate(rate, seconds, send)
        print(
            f"    {name:<12} {rate:5.0f}/s offered, {achieved:5.0f}/s sent: "
            f"p99 {worst * 1000:7.0f} ms, {failures} failed"
        )
        if worst >= HELD or failures:
            break
        held = rate
        await asyncio.sleep(drain)  # let the queues drain before the next step
    print(f"  {name}: holds {held:.0f}/s at a p99 under {HELD:g} s")
    return held


async def start(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(str(BIN / "journeys"), *args, env=env)


async def gateway_up(url: str) -> None:
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            try:
                if (await http.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


async def bare_ladder(
    client: Client, rates: list[float], seconds: float, runs: int, drain: float
) -> float:
    async with Worker(client, task_queue="bench-bare", workflows=[BareListener]):
        handles = [
            await client.start_workflow(
                BareListener.run, id=f"bare-{i}-{time.time_ns()}", task_queue="bench-bare"
            )
            for i in range(runs)
        ]

        async def signal(i: int) -> None:
            await handles[i % runs].signal(BareListener.hear)

        held = await ladder("signal", rates, seconds, signal, drain)
        await asyncio.gather(*(h.signal(BareListener.stop) for h in handles))
    return held


async def measure(
    processes: list[int],
    rates: list[float],
    seconds: float,
    contacts: int,
    drain: float = DRAIN,
) -> list[Figure]:
    """Per endpoint and process count, the rate held beside the bare signals' rate held."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        ports = DevPorts.free()
        settings = dev_settings(data_dir, ports).model_copy(update={"task_queue": "capacity"})
        server = start_temporal(data_dir, ports)
        store = await open_store(settings.database_url)
        running: list[asyncio.subprocess.Process] = []
        try:
            client = await wait_for_temporal(settings, server)
            await register_search_attributes(client, settings.temporal_namespace)
            print(f"gateway capacity, {seconds:g} s a rate, dev server (SQLite WAL), SQLite store")
            print("bare Temporal: signals from this process")
            bare = await bare_ladder(client, rates, seconds, contacts, drain)
            held = await run_gateways(
                client, settings, processes, rates, seconds, contacts, drain, running
            )
            return [
                Figure(
                    f"gateway {endpoint} at p99 < {HELD:g} s, {count} process(es)",
                    "req/s",
                    held[count, endpoint],
                    bare,
                )
                for endpoint in ENDPOINTS
                for count in processes
            ]
        finally:
            for process in running:
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
            await store.close()
            server.terminate()
            server.wait(timeout=15)


async def run_gateways(
    client: Client,
    settings: Settings,
    processes: list[int],
    rates: list[float],
    seconds: float,
    contacts: int,
    drain: float,
    running: list[asyncio.subprocess.Process],
) -> dict[tuple[int, str], float]:
    """Rates held, by (gateway processes, endpoint)."""
    # The embedded stack's settings (its payload key: encrypted as in production), with the API on.
    env = settings_env(settings.model_copy(update={"api_key": SecretStr(API_KEY)}))
    running.append(await start(["worker"], env))
    store = await open_store(settings.database_url)
    try:
        ids = [f"cap-{i}" for i in range(contacts)]
        await store.upsert_contacts([Contact(id=i) for i in ids])
    finally:
        await store.close()
    for contact_id in ids:
        await start_journey(client, LISTENER, contact_id, settings.task_queue)
    pixels = [
        make_token(
            settings.secret_key.get_secret_value(),
            OPEN,
            MessageClaims(
                contact_id=c,
                channel="email",
                key=f"bench/{c}",
                journey_id="listener",
                step_id="listen",
            ).model_dump(),
        )
        for c in ids
    ]
    held: dict[tuple[int, str], float] = {}
    for count in processes:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        gateway = await start(["gateway", "--port", str(port), "--processes", str(count)], env)
        running.append(gateway)
        await gateway_up(url)
        print(f"journeys gateway, {count} process(es), {contacts} listening runs")
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
        async with httpx.AsyncClient(
            base_url=url, limits=limits, timeout=TIMEOUT, headers={"User-Agent": BROWSER}
        ) as http:

            async def pixel(i: int) -> None:
                (await http.get(f"/t/o/{pixels[i % contacts]}")).raise_for_status()

            async def event(i: int) -> None:
                response = await http.post(
                    f"/v1/contacts/{ids[i % contacts]}/events",
                    json={"event_id": f"{time.time_ns()}-{i}", "kind": "opened"},
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                response.raise_for_status()

            held[count, "open pixel"] = await ladder("open pixel", rates, seconds, pixel, drain)
            held[count, "/v1 events"] = await ladder("/v1 events", rates, seconds, event, drain)
        gateway.terminate()
        await gateway.wait()
    return held


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 100, 150, 200, 300])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--contacts", type=int, default=200)
    args = parser.parse_args()
    configure_logging("WARNING")
    figures = eventloop.run(measure(args.processes, args.rates, args.seconds, args.contacts))
    print(table(figures))
