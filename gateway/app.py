"""The gateway: HTTP in, signals out. Tracking pixels and links, unsubscribe, NPS pages, the
website SDK, Twilio webhooks and the /v1 API for backend services, in one ASGI app."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from temporalio.client import Client

from journeys.settings import Settings
from journeys.spec import JourneySpec
from journeys.store import ContactStore


@dataclass
class Gateway:
    """What every endpoint needs; built once at start-up."""

    settings: Settings
    store: ContactStore
    client: Client
    library: dict[str, JourneySpec]


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
    return app
