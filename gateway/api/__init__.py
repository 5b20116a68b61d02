"""The /v1 API for backend services: contacts, events, journeys, runs, push subscriptions, the
team and its plans.

Every call carries `Authorization: Bearer <JOURNEYS_API_KEY>`. Bodies are pydantic models, so a
malformed one is answered 422 with the field named, and FastAPI serves the OpenAPI description
at /openapi.json (and /docs).

Events are idempotent by the caller's `event_id`. An event for a contact the store does not know
is refused with 404 and nothing is kept: the caller still holds it, upserts the contact and
retries with the same id, which then goes through. An event whose handover fails (Temporal
unreachable: 503) is forgotten as well, so the retry is not mistaken for a duplicate.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gateway.api import contacts, events, plans, push, runs, team
from gateway.api.admission import admitted
from gateway.api.auth import require_api_key
from gateway.responses import documented

router = APIRouter(
    prefix="/v1",
    tags=["api"],
    dependencies=[Depends(admitted), Depends(require_api_key)],
    responses=documented(401, 413, 503),
)
for resource in (contacts, events, runs, push, team, plans):
    router.include_router(resource.router)
