"""/v1 contacts: read one, create or replace one, or many in one transaction."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from gateway.api.common import invalid, named_by_path
from gateway.deps import GatewayDep
from gateway.outbox import regrade_in_background
from gateway.responses import documented
from journeys.contacts import Contact

# One transaction; well below SQLite's limit on bound parameters.
MAX_BATCH = 1000

router = APIRouter()


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


@router.get("/contacts/{contact_id}", response_model=Contact, responses=documented(404))
async def get_contact(contact_id: str, gw: GatewayDep, response: Response) -> Contact:
    """The contact as stored.

    A contact that data hygiene merged into another (a duplicate: the same email or phone) is
    answered with the survivor's record: its `id` is the survivor's, not the one asked for, and
    the `Content-Location` header names the survivor's URL. Keep the survivor's id from then on;
    the old one goes on reaching the survivor (events, runs, push subscriptions, PUT, links in
    messages sent before)."""
    current = await gw.store.resolve(contact_id)
    contact = await gw.store.get_contact(current)
    if contact is None:
        raise HTTPException(404, f"no contact '{contact_id}'")
    if current != contact_id:
        response.headers["Content-Location"] = _location(current)
    return contact


def _location(contact_id: str) -> str:
    return f"/v1/contacts/{quote(contact_id, safe='')}"


@router.put(
    "/contacts/{contact_id}",
    response_model=Contact,
    responses={201: {"model": Contact, "description": "Created"}},
)
async def upsert_contact(
    contact_id: str, body: ContactFields, gw: GatewayDep, response: Response
) -> Contact:
    """Create or replace one contact (200 replaced, 201 created). A contact that data hygiene
    merged into another replaces the survivor, as an import does: the answer is the survivor's
    record, with `Content-Location`, as GET answers it."""
    contact = named_by_path(Contact, body, contact_id, "contact_id")
    current = await gw.store.resolve(contact_id)
    created = await gw.store.get_contact(current) is None
    await gw.store.upsert_contacts([contact])  # a merged-away id's row goes to its survivor
    regrade_in_background(gw, current, None)
    response.status_code = 201 if created else 200
    if current != contact_id:
        response.headers["Content-Location"] = _location(current)
    return contact.model_copy(update={"id": current})


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
    # Not regraded here: a thousand regrades queued behind each batch held the store (one
    # connection on SQLite) from every other request for seconds during an import; the hygiene
    # schedule grades them, or `journeys leads regrade --all` at once.
    await gw.store.upsert_contacts(body.contacts)
    return BatchResult(upserted=len(body.contacts))
