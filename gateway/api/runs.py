"""/v1 journeys and runs: the library, a journey's NPS, starting a journey for a contact, and
where a contact stands in each journey."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from gateway.api.common import KnownContact, known_journey
from gateway.deps import GatewayDep
from gateway.responses import documented
from journeys.identity import workflow_id
from journeys.limits import Speed
from journeys.models import JourneyStatus
from journeys.nps import NpsSummary, nps_summary
from workflows.runs import journey_statuses, start_journey

router = APIRouter()


class JourneyInfo(BaseModel):
    id: str
    version: int
    trigger: str
    # Whether the trigger starts it; any journey can be started by hand.
    active: bool
    re_entry: str
    exit_events: list[str]
    description: str


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speed: Speed = 1.0


class Started(BaseModel):
    journey_id: str
    contact_id: str
    workflow_id: str
    # already: the contact is in the journey, or went through one that allows no re-entry.
    outcome: Literal["started", "already"]


class Run(JourneyStatus):
    workflow_id: str
    # Temporal's view: RUNNING, COMPLETED, FAILED, TERMINATED, ...
    execution_status: str | None


@router.get("/journeys", response_model=list[JourneyInfo])
async def list_journeys(gw: GatewayDep) -> list[JourneyInfo]:
    return [
        JourneyInfo(
            id=spec.id,
            version=spec.version,
            trigger=spec.trigger,
            active=spec.active,
            re_entry=spec.re_entry,
            exit_events=spec.exit_events,
            description=spec.description,
        )
        for spec in gw.library.values()
    ]


@router.get("/journeys/{journey_id}/nps", response_model=NpsSummary, responses=documented(404))
async def journey_nps(journey_id: str, gw: GatewayDep) -> NpsSummary:
    """Net Promoter Score of the journey's survey answers (one per send, the latest kept)."""
    known_journey(gw, journey_id)
    return nps_summary(a["score"] for a in await gw.store.nps_answers_of(journey_id))


@router.post(
    "/contacts/{contact_id}/journeys/{journey_id}",
    response_model=Started,
    status_code=201,
    responses={
        200: {"model": Started, "description": "Already in the journey (or through it)"},
        **documented(404),
    },
)
async def start(
    contact_id: KnownContact,
    journey_id: str,
    gw: GatewayDep,
    response: Response,
    body: StartRequest | None = None,
) -> Started:
    """Start a journey for a contact (201); never a second run of it (200, outcome already)."""
    spec = known_journey(gw, journey_id)
    speed = body.speed if body else 1.0
    outcome = await start_journey(gw.client, spec, contact_id, gw.settings.task_queue, speed)
    response.status_code = 201 if outcome == "started" else 200
    return Started(
        journey_id=journey_id,
        contact_id=contact_id,
        workflow_id=workflow_id(journey_id, contact_id),
        outcome=outcome,
    )


@router.get("/contacts/{contact_id}/runs", response_model=list[Run], responses=documented(404))
async def runs(contact_id: KnownContact, gw: GatewayDep) -> list[Run]:
    """The contact's latest run of each journey: where it stands, steps visited, events."""
    return [
        Run(
            **status.model_dump(),
            workflow_id=workflow_id(journey_id, contact_id),
            execution_status=execution.name if execution else None,
        )
        for journey_id, execution, status in await journey_statuses(
            gw.client, gw.library.values(), contact_id
        )
    ]
