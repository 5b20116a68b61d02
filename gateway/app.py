"""The gateway: HTTP in, signals out. Tracking pixels and links, unsubscribe, NPS pages, team
members' task pages and calendar feeds, the website SDK, Twilio webhooks, the /v1 API for
backend services and the operators' dashboard, in one ASGI app."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from gateway import (
    api,
    codec,
    health,
    nps,
    task_calendar,
    task_pages,
    tracking,
    twilio_hooks,
    unsubscribe,
    website,
)
from gateway.dashboard import routes as dashboard
from gateway.deps import Gateway
from gateway.docs import serve_docs
from gateway.limits import BodyLimits
from journeys.connection import temporal_unavailable

log = structlog.get_logger(__name__)


def create_app(gw: Gateway) -> FastAPI:
    app = FastAPI(
        title="journeys gateway",
        description="Tracking, webhooks and the API through which backend services start "
        "journeys and report events.",
        version="1",
        # FastAPI's own pages load their assets from a CDN: gateway.docs serves them offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gw
    app.add_middleware(BodyLimits, any_origin_prefix=f"{website.SITE_PREFIX}/")
    serve_docs(app)

    app.include_router(api.router)
    app.include_router(twilio_hooks.router)
    app.include_router(health.router)
    app.include_router(tracking.router)
    app.include_router(unsubscribe.router)
    app.include_router(nps.router)
    app.include_router(task_pages.router)
    app.include_router(task_calendar.router)
    app.include_router(website.router)
    app.include_router(codec.router)
    app.include_router(dashboard.router)

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
