"""Admission to /v1: a call past the process's bound (`Gateway.api_calls`) is answered 503 with
Retry-After at once, before authentication or parsing, rather than waiting in a queue that only
grows: the caller retries with the same event id, which keeps the retry harmless."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import HTTPException

from gateway.deps import GatewayDep

RETRY_AFTER_SECONDS = 1


async def admitted(gw: GatewayDep) -> AsyncIterator[None]:
    if gw.api_calls.locked():
        raise HTTPException(
            503,
            "the gateway is at capacity: retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    async with gw.api_calls:
        yield
