"""The /v1 API for backend services: contacts, events, journeys, runs and push subscriptions.

Every call carries `Authorization: Bearer <JOURNEYS_API_KEY>`. Bodies are pydantic models, so a
malformed one is answered 422 with the field named, and FastAPI serves the OpenAPI description
at /openapi.json (and /docs).

Events are idempotent by the caller's `event_id`. An event for a contact the store does not know
is refused with 404 and nothing is kept: the caller still holds it, upserts the contact and
retries with the same id, which then goes through. An event whose handover fails (Temporal
unreachable: 503) is forgotten as well, so the retry is not mistaken for a duplicate.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, HTTPException, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from gateway.deps import Gateway, GatewayDep
from journeys.contacts import Contact
from journeys.identity import workflow_id
from journeys.models import JourneyEvent, JourneyStatus
from journeys.nps import NpsSummary, nps_summary
from journeys.spec import JourneySpec, StepId
from journeys.store import ContactStore
from journeys.tokens import web_token
from workflows.runs import journey_statuses, start_journey

# A run keeps every event it receives in its state (and its Temporal history): keep them small.
MAX_EVENT_DATA_BYTES = 16 * 1024
# One transaction; well below SQLite's limit on bound parameters.
MAX_BATCH = 1000

_bearer = HTTPBearer(auto_error=False, description="The value of JOURNEYS_API_KEY")


async def require_api_key(
    gw: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    key = gw.settings.api_key.get_secret_value() if gw.settings.api_key else ""
    if not key:
        # An empty key would match an empty bearer: no key means no API at all.
        raise HTTPException(503, "the API is switched off: set JOURNEYS_API_KEY on the gateway")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise HTTPException(
            401,
            "missing or wrong API key: send 'Authorization: Bearer <JOURNEYS_API_KEY>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/v1", tags=["api"], dependencies=[Depends(require_api_key)])


def invalid(*problems: tuple[tuple[str | int, ...], str]) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, for checks that run after the body was parsed."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": msg} for loc, msg in problems]
    )


async def known_contact(contact_id: str, gw: GatewayDep) -> str:
    if await gw.store.get_contact(contact_id) is None:
        raise HTTPException(
            404, f"no contact '{contact_id}': create it first (PUT /v1/contacts/{contact_id})"
        )
    return contact_id


KnownContact = Annotated[str, Depends(known_contact)]


@asynccontextmanager
async def first_time(store: ContactStore, event_id: str, contact_id: str) -> AsyncIterator[bool]:
    """Whether `event_id` is new; if the block handling it fails, the id is forgotten again so a
    retry is handled rather than taken for a duplicate."""
    fresh = await store.first_time_event(event_id, contact_id)
    try:
        yield fresh
    except BaseException:
        if fresh:
            await store.forget_event(event_id)
        raise


# --- contacts ----------------------------------------------------------------------------------


class ContactIn(Contact):
    """A contact as the API takes it: validated like the CSV import, and a misspelt field is
    refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ContactFields(ContactIn):
    """The body of PUT /v1/contacts/{contact_id}: the path names the contact."""

    id: SkipJsonSchema[str] = ""


class ContactBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResult(BaseModel):
    upserted: int


@router.put(
    "/contacts/{contact_id}",
    response_model=Contact,
    responses={201: {"model": Contact, "description": "Created"}},
)
async def upsert_contact(
    contact_id: str, body: ContactFields, gw: GatewayDep, response: Response
) -> Contact:
    """Create or replace one contact (200 replaced, 201 created)."""
    if body.id and body.id != contact_id:
        raise invalid((("body", "id"), f"differs from the path's contact id '{contact_id}'"))
    try:
        contact = Contact.model_validate({**body.model_dump(), "id": contact_id})
    except ValidationError as e:
        # The body passed the same validators already: what is left is the id in the path.
        raise invalid(
            *(
                (("path", "contact_id"), err["msg"].removeprefix("Value error, "))
                for err in e.errors()
            )
        ) from None
    created = await gw.store.get_contact(contact_id) is None
    await gw.store.upsert_contacts([contact])
    response.status_code = 201 if created else 200
    return contact


@router.post("/contacts:batch", response_model=BatchResult)
async def upsert_contacts(body: ContactBatch, gw: GatewayDep) -> BatchResult:
    """Create or replace many contacts in one transaction: all of them, or none if any is invalid
    (each problem names its index in `contacts`)."""
    seen: dict[str, int] = {}
    repeats = []
    for index, contact in enumerate(body.contacts):
        if contact.id in seen:
            repeats.append(
                (("body", "contacts", index, "id"), f"repeats contacts[{seen[contact.id]}]")
            )
        seen.setdefault(contact.id, index)
    if repeats:
        raise invalid(*repeats)
    await gw.store.upsert_contacts(body.contacts)
    return BatchResult(upserted=len(body.contacts))


# --- events ------------------------------------------------------------------------------------


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
    occurred_at: AwareDatetime | None = Field(None, description="Defaults to now")
    data: dict[str, Any] = {}

    @field_validator("data")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(v, default=str)) > MAX_EVENT_DATA_BYTES:
            raise ValueError(f"data is larger than {MAX_EVENT_DATA_BYTES} bytes as JSON")
        return v


class EventAccepted(BaseModel):
    event_id: str
    # True: this event id was handled before; nothing was done this time.
    duplicate: bool
    # Per journey: "started or signalled" (the event is its trigger) or "signalled" (a run of
    # the contact received it). Empty when no journey took it; it is recorded all the same.
    journeys: dict[str, str] = {}


@router.post("/contacts/{contact_id}/events", response_model=EventAccepted)
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
    async with first_time(gw.store, body.event_id, contact_id) as fresh:
        if not fresh:
            return EventAccepted(event_id=body.event_id, duplicate=True)
        await gw.store.record_event(contact_id, event)
        outcome = await gw.hand(contact_id, event)
    return EventAccepted(event_id=body.event_id, duplicate=False, journeys=outcome)


# --- journeys and runs -------------------------------------------------------------------------


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

    speed: float = Field(
        1.0, gt=0, description="Divides every wait of the run (demos, previews); 1 is real time"
    )


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


def known_journey(gw: Gateway, journey_id: str) -> JourneySpec:
    spec = gw.library.get(journey_id)
    if spec is None:
        raise HTTPException(
            404, f"no journey '{journey_id}' (known: {', '.join(sorted(gw.library))})"
        )
    return spec


@router.get("/journeys/{journey_id}/nps", response_model=NpsSummary)
async def journey_nps(journey_id: str, gw: GatewayDep) -> NpsSummary:
    """Net Promoter Score of the journey's survey answers (one per send, the latest kept)."""
    known_journey(gw, journey_id)
    return nps_summary(a["score"] for a in await gw.store.nps_answers_of(journey_id))


@router.post(
    "/contacts/{contact_id}/journeys/{journey_id}",
    response_model=Started,
    status_code=201,
    responses={200: {"model": Started, "description": "Already in the journey (or through it)"}},
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


@router.get("/contacts/{contact_id}/runs", response_model=list[Run])
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


# --- push subscriptions and the website --------------------------------------------------------


_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def _base64url_bytes(value: str, size: int, what: str) -> str:
    if _BASE64URL.match(value):
        try:
            if len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) == size:
                return value
        except binascii.Error:
            pass
    raise ValueError(f"must be {what}, base64url-encoded ({size} bytes)")


class WebPushKeys(BaseModel):
    p256dh: str
    auth: str

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, v: str) -> str:
        return _base64url_bytes(v, 65, "the browser's P-256 public key")

    @field_validator("auth")
    @classmethod
    def _auth(cls, v: str) -> str:
        return _base64url_bytes(v, 16, "the browser's auth secret")


class WebPushSubscription(BaseModel):
    """The browser's `PushSubscription.toJSON()` plus `"kind": "web"`; its other members
    (expirationTime) are ignored."""

    kind: Literal["web"]
    endpoint: str = Field(max_length=2048)
    keys: WebPushKeys

    @field_validator("endpoint")
    @classmethod
    def _url(cls, v: str) -> str:
        # Kept exactly as given (no URL normalization): it is the push service's address.
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("must be the push service's URL (https://...)")
        return v


class MobileToken(BaseModel):
    """A device's registration token for the mobile app (FCM)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mobile"]
    token: str = Field(min_length=1, max_length=4096)


class WebToken(BaseModel):
    # Embedded by the website for /sdk.js, which identifies the contact with it.
    token: str


@router.post("/contacts/{contact_id}/push-subscriptions", status_code=204)
async def add_push_subscription(
    contact_id: KnownContact,
    body: Annotated[WebPushSubscription | MobileToken, Body(discriminator="kind")],
    gw: GatewayDep,
) -> None:
    """Register a web push subscription (kind web) or a mobile app token (kind mobile);
    registering the same one again changes nothing."""
    if isinstance(body, WebPushSubscription):
        await gw.store.add_push_subscription(
            contact_id, "web", body.endpoint, body.keys.model_dump()
        )
    else:
        await gw.store.add_push_subscription(contact_id, "mobile", body.token, {})


@router.get("/contacts/{contact_id}/web-token", response_model=WebToken)
async def get_web_token(contact_id: KnownContact, gw: GatewayDep) -> WebToken:
    """A signed token naming the contact, for the website to hand to /sdk.js."""
    return WebToken(token=web_token(gw.settings, contact_id))
