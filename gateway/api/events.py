"""/v1 events: record one, start the journeys it triggers and hand it to the contact's runs;
idempotent by the caller's event id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from gateway.api.common import KnownContact
from gateway.deps import GatewayDep
from gateway.outbox import regrade_in_background
from gateway.responses import documented
from journeys.limits import MAX_EVENT_DATA_BYTES, check_json_object
from journeys.models import JourneyEvent
from journeys.spec import StepId
from workflows.runs import hand_new_event

router = APIRouter()


def _written_out(v: object) -> object:
    # pydantic reads a number as seconds since 1970: 0 would be an event of 1970, not a mistake.
    if not isinstance(v, str):
        raise ValueError("must be an ISO 8601 date and time with its offset, as a string")
    return v


TimeWithOffset = Annotated[AwareDatetime, BeforeValidator(_written_out)]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(
        pattern=r"^[!-~]{1,128}$",
        description="Chosen by the caller, unique per event (a UUID, say): a retried call with "
        "the same id changes nothing.",
    )
    kind: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=64,
        description="purchase, app_installed, visited_url, contact_added or a name of your own",
        examples=["purchase"],
    )
    step: StepId | None = Field(None, description="The send step the event is about, if any")
    occurred_at: TimeWithOffset | None = Field(
        None, description="Defaults to now", examples=["2026-01-01T10:00:00+01:00"]
    )
    data: dict[str, Any] = Field({}, description=f"At most {MAX_EVENT_DATA_BYTES} bytes as JSON")

    @field_validator("data")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_json_object(v, MAX_EVENT_DATA_BYTES, "data")


class EventAccepted(BaseModel):
    event_id: str
    # True: this event id was handled before; nothing was done this time.
    duplicate: bool
    # Per journey: "started or signalled" (the event is its trigger) or "signalled" (a run of
    # the contact received it). Empty when no journey took it; it is recorded all the same.
    journeys: dict[str, str] = {}


@router.post(
    "/contacts/{contact_id}/events", response_model=EventAccepted, responses=documented(404)
)
async def track_event(body: EventIn, contact_id: KnownContact, gw: GatewayDep) -> EventAccepted:
    """Record an event, start every active journey it triggers and hand it to the contact's
    running runs; idempotent by `event_id`."""
    event = JourneyEvent(
        kind=body.kind,
        step=body.step,
        occurred_at=body.occurred_at or datetime.now(UTC),
        data=body.data,
        # A retry after a 503 may reach runs the first attempt already reached: they ignore it.
        id=f"api:{body.event_id}",
    )
    outcome = await hand_new_event(
        gw.client,
        gw.store,
        gw.library.values(),
        contact_id,
        event,
        gw.settings.task_queue,
        once_id=body.event_id,
    )
    if outcome is None:
        return EventAccepted(event_id=body.event_id, duplicate=True)
    gw.metrics.count_event(event.kind)
    regrade_in_background(gw, contact_id, event.kind)
    return EventAccepted(event_id=body.event_id, duplicate=False, journeys=outcome)
