"""What the /v1 resources share: 422s for checks after parsing, and the contact or journey a
path names."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gateway.deps import Gateway, GatewayDep
from journeys.spec import JourneySpec


def invalid(*problems: tuple[tuple[str | int, ...], str]) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, for checks that run after the body was parsed."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": msg} for loc, msg in problems]
    )


async def known_contact(contact_id: str, gw: GatewayDep) -> str:
    """The id the contact in the path goes by now: for one that data hygiene merged into another,
    the survivor's, so events, runs and push subscriptions sent for the old id are the
    survivor's. A 404 when the store has no such contact."""
    current = await gw.store.resolve(contact_id)
    if await gw.store.get_contact(current) is None:
        raise HTTPException(
            404, f"no contact '{contact_id}': create it first (PUT /v1/contacts/{contact_id})"
        )
    return current


KnownContact = Annotated[str, Depends(known_contact)]


def known_journey(gw: Gateway, journey_id: str) -> JourneySpec:
    spec = gw.library.get(journey_id)
    if spec is None:
        raise HTTPException(
            404, f"no journey '{journey_id}' (known: {', '.join(sorted(gw.library))})"
        )
    return spec


Named = TypeVar("Named", bound=BaseModel)


def named_by_path(model: type[Named], body: BaseModel, path_id: str, path_name: str) -> Named:
    """`body` (a record without its id) as `model`, with the id the path names; a 422 naming the
    path when that id is refused, or when the body names another."""
    body_id = getattr(body, "id", "")
    if body_id and body_id != path_id:
        raise invalid((("body", "id"), f"differs from the path's id '{path_id}'"))
    try:
        return model.model_validate({**body.model_dump(), "id": path_id})
    except ValidationError as e:
        # The body passed the same validators already: what is left is the id in the path.
        raise invalid(
            *((("path", path_name), err["msg"].removeprefix("Value error, ")) for err in e.errors())
        ) from None
