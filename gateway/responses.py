"""The answers other than success that the gateway's routes give, for their OpenAPI description:
each router or route names those it can give with `responses=documented(...)`. FastAPI adds
422 itself to every route with parameters or a body."""

from __future__ import annotations

from typing import Any

from journeys.limits import MAX_BODY_BYTES

_DESCRIPTIONS = {
    400: "The link's or the request's token is forged, altered or expired, or a field Twilio "
    "always sends is missing; nothing was changed",
    401: "Missing or wrong API key (Authorization: Bearer <JOURNEYS_API_KEY>)",
    403: "X-Twilio-Signature does not match the request",
    404: "No such contact, journey, survey, message, plan or task",
    409: "The plan refused the change (the task is done, not yet active, or not theirs), or a "
    "plan of that instance was started already; the answer says why, and nothing was changed",
    413: f"The request body is larger than {MAX_BODY_BYTES} bytes (checked before anything else)",
    415: "Not the content type this endpoint takes",
    503: "Temporal or the store is unavailable, or the API is switched off: retry later",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": _DESCRIPTIONS[code]} for code in codes}
