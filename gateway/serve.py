"""Running the gateway: uvicorn in the caller's event loop, beside the worker in `journeys dev`
or on its own in `journeys gateway`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from gateway.app import create_app
from gateway.deps import Gateway
from gateway.outbox import finish_handovers, keep_handing_over
from journeys.connection import connect
from journeys.library import load_library
from journeys.settings import Settings
from journeys.store import open_store

# On stop: how long requests in flight, then events still on their way to Temporal, may take.
SHUTDOWN_GRACE = 10.0


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the process that runs it decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def build_gateway(settings: Settings) -> Gateway:
    """Everything the gateway needs. The caller closes `store` when done."""
    # A broken library fails here, before any connection is made.
    library = load_library(settings.library_dir)
    client = await connect(settings)
    store = await open_store(settings.database_url)
    return Gateway(settings=settings, store=store, client=client, library=library)


async def serve_gateway(gw: Gateway, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the gateway on host:port until `stop` is set, then finish what is in flight."""
    # Bound here, so a port in use is an OSError for the caller (uvicorn would exit the process).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
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
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        handing_over.cancel()
        try:
            await serving
        finally:
            await finish_handovers(SHUTDOWN_GRACE)
            with contextlib.suppress(asyncio.CancelledError):
                await handing_over
