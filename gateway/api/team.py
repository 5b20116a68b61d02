"""/v1 team: the people team plans are run with, as `journeys team import` keeps them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from pydantic.json_schema import SkipJsonSchema

from gateway.api.common import named_by_path
from gateway.deps import GatewayDep
from gateway.responses import documented
from journeys.plans.people import Person

router = APIRouter()


class PersonFields(Person):
    """The body of PUT /v1/team/{person_id}: the path names the person."""

    id: SkipJsonSchema[str] = ""


@router.get("/team", response_model=list[Person])
async def list_team(gw: GatewayDep) -> list[Person]:
    """Every team member, by id."""
    return await gw.store.team_members()


@router.get("/team/{person_id}", response_model=Person, responses=documented(404))
async def get_person(person_id: str, gw: GatewayDep) -> Person:
    person = await gw.store.person(person_id)
    if person is None:
        raise HTTPException(404, f"no team member '{person_id}'")
    return person


@router.put(
    "/team/{person_id}",
    response_model=Person,
    responses={201: {"model": Person, "description": "Created"}},
)
async def upsert_person(
    person_id: str, body: PersonFields, gw: GatewayDep, response: Response
) -> Person:
    """Create or replace one team member (200 replaced, 201 created), validated like the CSV
    import."""
    person = named_by_path(Person, body, person_id, "person_id")
    created = await gw.store.person(person_id) is None
    await gw.store.upsert_people([person])
    response.status_code = 201 if created else 200
    return person
