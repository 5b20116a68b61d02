"""The codec endpoint: the Temporal UI (its codec endpoint setting) and CLI (`--codec-endpoint`)
read encrypted payloads through it, per Temporal's remote codec protocol: POST /codec/decode and
/codec/encode with `{"payloads": [{"metadata": {key: base64}, "data": base64}]}`.

Whoever may call it reads every payload in clear: the bearer of JOURNEYS_CODEC_KEY, nobody when
it is unset, except in a dev environment, whose UI sends no credentials and whose data is made up.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from gateway.deps import Gateway, GatewayDep
from journeys.codec import PayloadKeyError

_bearer = HTTPBearer(auto_error=False, description="The value of JOURNEYS_CODEC_KEY")
Operation = Literal["encode", "decode"]
Origin = Annotated[str | None, Header()]


async def require_codec_key(
    gw: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    key = gw.settings.codec_key.get_secret_value() if gw.settings.codec_key else ""
    if not key:
        if gw.settings.env == "dev":
            return
        raise HTTPException(
            503, "the codec endpoint is switched off: set JOURNEYS_CODEC_KEY on the gateway"
        )
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise HTTPException(
            401,
            "missing or wrong codec key: send 'Authorization: Bearer <JOURNEYS_CODEC_KEY>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/codec", include_in_schema=False)


def _cors(gw: Gateway, origin: str | None) -> dict[str, str]:
    """The UI calls from the browser, from its own origin: that origin only may read answers."""
    ui = (gw.settings.temporal_ui_url or "").rstrip("/")
    if not origin or origin != ui:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


@router.options("/{operation}")
async def preflight(operation: Operation, gw: GatewayDep, origin: Origin = None) -> Response:
    return Response(
        status_code=204,
        headers={
            **_cors(gw, origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Namespace",
            "Access-Control-Max-Age": "600",
        },
    )


@router.post("/{operation}", dependencies=[Depends(require_codec_key)])
async def code(
    operation: Operation, request: Request, gw: GatewayDep, origin: Origin = None
) -> Response:
    try:
        payloads = json_format.Parse(await request.body(), Payloads(), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise HTTPException(400, f"not a JSON object of payloads: {e}") from None
    # The gateway's Temporal client encrypts and decrypts with the deployment's payload keys.
    codec = gw.client.data_converter.payload_codec
    if codec is not None:
        try:
            if operation == "encode":
                coded = await codec.encode(payloads.payloads)
            else:
                coded = await codec.decode(payloads.payloads)
        except PayloadKeyError as e:
            raise HTTPException(422, str(e)) from None
        payloads = Payloads(payloads=coded)
    return Response(
        json_format.MessageToJson(payloads),
        media_type="application/json",
        headers=_cors(gw, origin),
    )
