"""The gateway's first check of every request, before routing, parsing and authentication: a body
larger than MAX_BODY_BYTES is a 413 (by its Content-Length, or as soon as more arrives), and a JSON
body whose text no store can keep (a lone surrogate, NUL) or that has NaN or Infinity (Python's
json takes them, JSON has no such numbers) is a 422 naming the place. Such values never reach
pydantic, whose 422 would echo them back, and whose echo could not be encoded: a 500."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from journeys.limits import MAX_BODY_BYTES, find_bad_text

TOO_LARGE = f"the request body is larger than {MAX_BODY_BYTES} bytes"


class _TooLarge(Exception):
    pass


class _NotJsonNumber(ValueError):
    pass


def _refuse_constant(name: str) -> NoReturn:
    raise _NotJsonNumber(name)


async def _answer(send: Send, status: int, content: Any, any_origin: bool) -> None:
    body = json.dumps(content).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if any_origin:
        headers.append((b"access-control-allow-origin", b"*"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _unprocessable(loc: tuple[str | int, ...], msg: str, kind: str) -> dict[str, Any]:
    """Shaped like FastAPI's own 422."""
    return {"detail": [{"type": kind, "loc": ["body", *loc], "msg": msg}]}


def _json_problem(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except _NotJsonNumber as e:
        return _unprocessable((), f"{e} is not a JSON number", "json_invalid")
    except UnicodeDecodeError:
        # FastAPI would answer 400 with no word of why.
        return _unprocessable((), "the body is not UTF-8 text", "json_invalid")
    except ValueError:
        return None  # malformed JSON: FastAPI says where
    found = find_bad_text(value)
    if found is None:
        return None
    loc, problem = found
    return _unprocessable(loc, f"the text {problem}", "string_unicode")


class BodyLimits:
    """ASGI middleware: see the module's docstring."""

    def __init__(self, app: ASGIApp, any_origin_prefix: str) -> None:
        """`any_origin_prefix`: where answers are read by any site's script (the website SDK's
        routes), this middleware's own answers included."""
        self.app = app
        self.any_origin_prefix = any_origin_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        any_origin = str(scope.get("path", "")).startswith(self.any_origin_prefix)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"").strip()
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            await _answer(send, 413, {"detail": TOO_LARGE}, any_origin)
            return
        try:
            body = await _read(receive)
        except _TooLarge:
            await _answer(send, 413, {"detail": TOO_LARGE}, any_origin)
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        # FastAPI reads a body without a content type as JSON too.
        if body and (content_type in (b"", b"application/json") or content_type.endswith(b"+json")):
            problem = _json_problem(body)
            if problem is not None:
                await _answer(send, 422, problem, any_origin)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # a disconnect, for whoever listens for it
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read(receive: Receive) -> bytes:
    """The whole body, refused as soon as it outgrows MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
