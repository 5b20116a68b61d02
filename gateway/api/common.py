"""What the /v1 resources share: 422s for checks after parsing, and the contact or journey a
path names."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.exceptions import RequestValidationError

from gateway.deps import Gateway, GatewayDep
from journeys.spec import JourneySpec


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


def known_journey(gw: Gateway, journey_id: str) -> JourneySpec:
    spec = gw.library.get(journey_id)
    if spec is None:
        raise HTTPException(
            404, f"no journey '{journey_id}' (known: {', '.join(sorted(gw.library))})"
        )
    return spec
