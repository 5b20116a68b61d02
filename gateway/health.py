"""What an operator or a load balancer asks the gateway: can it take events, does Temporal
answer, and how many events wait in the outbox for Temporal (and since when)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gateway.deps import Gateway, gateway

log = structlog.get_logger(__name__)

router = APIRouter()

# A health check answers quickly or not at all.
CHECK_LIMIT = 2.0


class Health(BaseModel):
    # Whether events can be recorded: without the store the gateway can keep nothing.
    store: bool
    # Whether Temporal answers. Without it the gateway still takes events: they wait in the
    # outbox (held_events) and are handed over when it is back.
    temporal: bool
    # Events recorded but not yet taken by Temporal, and when the oldest was recorded.
    held_events: int | None
    oldest_held_at: datetime | None


@router.get(
    "/health",
    summary="Health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The store is unavailable"}},
)
async def health(gw: Gateway = Depends(gateway)) -> JSONResponse:
    """200 while events can be recorded (Temporal may be away: see `temporal` and the held
    events), 503 when they cannot."""
    held: tuple[int, datetime | None] | None = None
    try:
        async with asyncio.timeout(CHECK_LIMIT):
            held = await gw.store.held_summary()
    except Exception:
        log.warning("health: the store does not answer", exc_info=True)
    try:
        temporal = await gw.client.service_client.check_health(
            timeout=timedelta(seconds=CHECK_LIMIT)
        )
    except Exception:
        temporal = False
    report = Health(
        store=held is not None,
        temporal=temporal,
        held_events=held[0] if held else None,
        oldest_held_at=held[1] if held else None,
    )
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if held else 503)
