"""/v1 contacts: create or replace one, or many in one transaction."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from gateway.api.common import invalid, named_by_path
from gateway.deps import GatewayDep
from gateway.outbox import regrade_in_background
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


@router.put(
    "/contacts/{contact_id}",
    response_model=Contact,
    responses={201: {"model": Contact, "description": "Created"}},
)
async def upsert_contact(
    contact_id: str, body: ContactFields, gw: GatewayDep, response: Response
) -> Contact:
    """Create or replace one contact (200 replaced, 201 created)."""
    contact = named_by_path(Contact, body, contact_id, "contact_id")
    created = await gw.store.get_contact(contact_id) is None
    await gw.store.upsert_contacts([contact])
    regrade_in_background(gw, [contact_id], None)
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
    # Not regraded here: a thousand regrades queued behind each batch held the store (one
    # connection on SQLite) from every other request for seconds during an import; the hygiene
    # schedule grades them, or `journeys leads regrade --all` at once.
    await gw.store.upsert_contacts(body.contacts)
    return BatchResult(upserted=len(body.contacts))
