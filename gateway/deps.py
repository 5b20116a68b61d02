"""What every route of the gateway depends on: the `Gateway` built once at start-up, and the
FastAPI dependency that hands it to a route. Routers import this module, never `gateway.app`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, TypeVar

import structlog
from fastapi import Depends, Request
from temporalio.client import Client

from journeys.events import BUILT_IN_EVENTS
from journeys.leads.grading import GradingSpec
from journeys.library import known_events
from journeys.metrics import GatewayMetrics, client_meter
from journeys.models import JourneyEvent
from journeys.plans.spec import PlanSpec
from journeys.settings import Settings
from journeys.spec import JourneySpec
from journeys.store import ContactStore
from journeys.tokens import ContactClaims, verify
from workflows.runs import hand_event

log = structlog.get_logger(__name__)

# /v1 calls one gateway process works on at once. Past it a call is answered 503 with
# Retry-After at once: at saturation (about 140 events/s for one process) calls otherwise queued
# without bound, to a p99 of 23 s and client timeouts.
MAX_API_CALLS = 64

Claims = TypeVar("Claims", bound=ContactClaims)


@dataclass
class Gateway:
    """What every endpoint needs; built once at start-up."""

    settings: Settings
    store: ContactStore
    client: Client
    library: dict[str, JourneySpec]
    # The plan templates, by id: what `/v1/plans` starts and the task pages read a task from.
    plans: dict[str, PlanSpec]
    # The library's lead grading (journeys.leads): a contact is regraded after each event it
    # does; None (a library without grading.yaml) grades nobody.
    grading: GradingSpec | None = None
    # Divides every duration of the runs the gateway starts: 1 (real time) but in `make run`'s
    # demo, whose journeys run a day in seconds whoever starts them.
    speed: float = 1.0
    api_calls: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_API_CALLS))

    @cached_property
    def metrics(self) -> GatewayMetrics:
        """On the /metrics of the client's runtime; an event kind is its own label when the
        library or the system names it."""
        kinds = BUILT_IN_EVENTS.union(*(known_events(spec) for spec in self.library.values()))
        return GatewayMetrics(client_meter(self.client), kinds)

    async def contact_claims(self, purpose: str, token: str, claims: type[Claims]) -> Claims:
        """The claims of a signed token that names a contact (a link in a message, the site's
        visitor token), that contact resolved to the id it goes by now: links in old emails name
        contacts data hygiene has since merged into another, and what they do there (an open, an
        unsubscribe) is the survivor's. BadToken as `verify` raises it."""
        found = verify(self.settings, purpose, token, claims)
        try:
            contact_id = await self.store.resolve(found.contact_id)
        except Exception:
            # The store is down: the person still gets their page (a click still leads on), and
            # what they did is kept as well as it can be, as before aliases existed.
            log.warning("merged ids not looked up", exc_info=True)
            return found
        return found.model_copy(update={"contact_id": contact_id})

    async def hand(
        self, contact_id: str, event: JourneyEvent, journey_id: str | None = None
    ) -> dict[str, str]:
        """Hand an event already recorded to runs (see `workflows.runs.hand_event`)."""
        return await hand_event(
            self.client,
            self.library.values(),
            contact_id,
            event,
            self.settings.task_queue,
            journey_id,
            self.speed,
        )


def gateway(request: Request) -> Gateway:
    """FastAPI dependency: the Gateway the app was created with."""
    gw: Gateway = request.app.state.gateway
    return gw


GatewayDep = Annotated[Gateway, Depends(gateway)]
