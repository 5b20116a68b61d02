"""The system under test, in a process of its own: the worker and the gateway sharing one
contact store, as `journeys dev` runs them. Settings from the environment; port as argument.

    python -m bench.stack PORT        (stops on SIGTERM)
"""

from __future__ import annotations

import asyncio
import signal
import sys

from gateway.serve import build_gateway, serve_gateway
from journeys import eventloop
from journeys.heap import settle_after_startup
from journeys.logging import configure_logging
from journeys.settings import Settings
from workers.worker import journey_worker


async def main(port: int) -> None:
    configure_logging("WARNING")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    settings = Settings()
    gw = await build_gateway(settings)
    try:
        async with journey_worker(gw.client, gw.store, settings):
            settle_after_startup()
            await serve_gateway(gw, "127.0.0.1", port, stop)
    finally:
        await gw.store.close()


if __name__ == "__main__":
    eventloop.run(main(int(sys.argv[1])))
