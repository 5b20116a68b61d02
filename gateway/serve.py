"""Running the gateway: uvicorn in the caller's event loop, beside the worker in `journeys dev`
or on its own in `journeys gateway`."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import signal
import socket
from collections.abc import Iterator

import uvicorn
from temporalio.client import Client

from gateway.app import create_app
from gateway.deps import Gateway
from gateway.outbox import finish_handovers, keep_handing_over, keep_reporting_outbox
from journeys import eventloop
from journeys.connection import connect
from journeys.heap import settle_after_startup
from journeys.leads.library import grading_of
from journeys.library import load_library
from journeys.logging import configure_logging
from journeys.metrics import nth_address, process_runtime
from journeys.plans.library import load_plans
from journeys.settings import Settings
from journeys.store import ContactStore, open_store

# On stop: how long requests in flight, then events still on their way to Temporal, may take.
SHUTDOWN_GRACE = 10.0


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the process that runs it decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def build_gateway(
    settings: Settings,
    *,
    client: Client | None = None,
    store: ContactStore | None = None,
    speed: float = 1.0,
) -> Gateway:
    """Everything the gateway needs: the library, plan templates and grading from
    `settings.library_dir`, and a Temporal client and store, connected and opened here unless
    given (the dev stack shares its worker's; a client connected here serves /metrics on
    `settings.metrics_address`). The caller closes the store when done."""
    # A broken library fails here, before any connection is made.
    library = load_library(settings.library_dir)
    grading = grading_of(settings.library_dir)
    plans = load_plans(settings.library_dir)
    return Gateway(
        settings=settings,
        store=store or await open_store(settings.database_url),
        client=client or await connect(settings, process_runtime(settings.metrics_address)),
        library=library,
        plans=plans,
        grading=grading,
        speed=speed,
    )


async def serve_gateway(
    gw: Gateway, host: str, port: int, stop: asyncio.Event, reuse_port: bool = False
) -> None:
    """Serve the gateway on host:port until `stop` is set, then finish what is in flight.
    `reuse_port`: other gateway processes listen on the same port (see serve_in_processes)."""
    # Bound here, so a port in use is an OSError for the caller (uvicorn would exit the process).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, reuse_port=reuse_port)
    config = uvicorn.Config(
        create_app(gw),
        lifespan="off",
        http="httptools",  # a C parser: several times cheaper per request than h11
        # structlog is configured by the process; access logs would carry the tokens in URLs.
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    handing_over = asyncio.create_task(keep_handing_over(gw))
    reporting = asyncio.create_task(keep_reporting_outbox(gw))
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        handing_over.cancel()
        reporting.cancel()
        try:
            await serving
        finally:
            await finish_handovers(SHUTDOWN_GRACE)
            for task in (handing_over, reporting):
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def run_gateway(settings: Settings, host: str, port: int, reuse_port: bool = False) -> None:
    """One gateway process, until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    gw = await build_gateway(settings)
    settle_after_startup()
    try:
        await serve_gateway(gw, host, port, stop, reuse_port)
    finally:
        await gw.store.close()


def _one_of_several(host: str, port: int, index: int) -> None:
    """Process `index` started by serve_in_processes (spawned: nothing inherited but the
    environment); its /metrics is on the port `index` past JOURNEYS_METRICS_ADDRESS's."""
    configure_logging()
    settings = Settings()
    if settings.metrics_address:
        address = nth_address(settings.metrics_address, index)
        settings = settings.model_copy(update={"metrics_address": address})
    eventloop.run(run_gateway(settings, host, port, reuse_port=True))


def serve_in_processes(host: str, port: int, processes: int) -> int:
    """`processes` gateway processes listening on one port (SO_REUSEPORT: the kernel spreads the
    connections), until SIGTERM or SIGINT, which each of them receives in turn. One process is a
    single event loop, and at about 200 requests/s it is out of CPU; the outbox already leases
    each kept event to one process. Returns the exit code: 0 when all stopped cleanly; when one
    dies, the others are stopped too, so whatever supervises the gateway restarts it whole."""
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(target=_one_of_several, args=(host, port, n), name=f"gateway-{n}")
        for n in range(processes)
    ]

    stopping = False

    def stop_all(_signum: int = 0, _frame: object = None) -> None:
        # Once: a process already stopping gracefully has let go of its signal handlers, and a
        # second SIGTERM would kill it where it stands.
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: a graceful stop

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for child in children:
        child.start()
    multiprocessing.connection.wait([c.sentinel for c in children])
    stop_all()
    for child in children:
        child.join()
    # A process still starting when the stop came has no handler yet: SIGTERM ends it at once,
    # which is the stop that was asked for.
    clean = {0, -signal.SIGTERM} if stopping else {0}
    return max((abs(c.exitcode or 0) for c in children if c.exitcode not in clean), default=0)
