"""The gateway: HTTP in, signals out. Tracking pixels and links, unsubscribe, NPS pages, the
website SDK, Twilio webhooks and the /v1 API for backend services, in one ASGI app."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.service import RPCError

from journeys.connection import temporal_unavailable
from journeys.models import JourneyEvent
from journeys.settings import Settings
from journeys.spec import JourneySpec
from journeys.store import ContactStore
from starters.launch import deliver_event, reach_contact, reach_run

log = structlog.get_logger(__name__)


@dataclass
class Gateway:
    """What every endpoint needs; built once at start-up."""

    settings: Settings
    store: ContactStore
    client: Client
    library: dict[str, JourneySpec]

    async def to_contact(self, contact_id: str, event: JourneyEvent) -> dict[str, str]:
        """Record the event, start the journeys it triggers and signal the contact's runs."""
        return await deliver_event(
            self.client,
            self.store,
            self.library.values(),
            contact_id,
            event,
            self.settings.task_queue,
        )

    async def reach(self, contact_id: str, event: JourneyEvent, journey_id: str | None) -> None:
        """Hand an event already recorded to Temporal: to the run of `journey_id` (the one a
        tracked message came from), or without one as `to_contact` does."""
        if journey_id is None:
            await reach_contact(
                self.client, self.library.values(), contact_id, event, self.settings.task_queue
            )
        else:
            await reach_run(self.client, journey_id, contact_id, event)


def gateway(request: Request) -> Gateway:
    """FastAPI dependency: the Gateway the app was created with."""
    gw: Gateway = request.app.state.gateway
    return gw


def create_app(gw: Gateway) -> FastAPI:
    app = FastAPI(
        title="journeys gateway",
        description="Tracking, webhooks and the API through which backend services start "
        "journeys and report events.",
        version="1",
    )
    app.state.gateway = gw

    # Imported here: the routers import Gateway and gateway() from this module.
    from gateway import api, twilio_hooks

    app.include_router(api.router)
    app.include_router(twilio_hooks.router)

    from gateway import health, nps, tracking, unsubscribe, website

    app.include_router(health.router)
    app.include_router(tracking.router)
    app.include_router(unsubscribe.router)
    app.include_router(nps.router)
    app.include_router(website.router)

    @app.exception_handler(RPCError)
    async def temporal_down(request: Request, exc: RPCError) -> Response:
        # Temporal down, overloaded or too slow: the caller should retry, not report a bug.
        if not temporal_unavailable(exc):
            return await unexpected_error(request, exc)
        log.warning("temporal unavailable", path=request.url.path, status=exc.status.name)
        return JSONResponse(
            {"detail": f"Temporal is unavailable ({exc.message}): retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        # A bug: malformed input is answered 4xx before it gets this far.
        log.error("unexpected error", path=request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error (logged)"}, status_code=500)

    return app
