"""The few HTML pages the gateway shows people, and the answer to a link that does not verify."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from html import escape
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from journeys.tokens import BadToken

log = structlog.get_logger(__name__)

PAGE_HEADERS = {
    # The URL carries a token: keep it out of other sites' logs, shared caches and search engines.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    # Our inline styles and forms posting back here; nothing else runs or loads.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}

_STYLE = """
body { font: 1.05rem/1.5 system-ui, sans-serif; max-width: 36rem; margin: 3rem auto;
       padding: 0 1rem; color: #1d1d1f; }
fieldset { border: 0; padding: 0; margin: 1rem 0; }
legend { font-weight: 600; margin-bottom: .5rem; }
.scale { display: flex; flex-wrap: wrap; gap: .3rem; }
.scale label { display: inline-flex; flex-direction: column; align-items: center;
               min-width: 2.4rem; padding: .3rem; border: 1px solid #888; border-radius: .3rem; }
.ends { display: flex; justify-content: space-between; font-size: .9rem; color: #555; }
textarea { width: 100%; min-height: 5rem; font: inherit; }
button { font: inherit; padding: .5rem 1.2rem; margin-top: 1rem; }
.error { color: #b00020; font-weight: 600; }
.muted { color: #555; }
select { font: inherit; display: block; margin-top: .3rem; }
.actions form { display: inline-block; margin-right: 1rem; vertical-align: top; }
ol.tasks { padding-left: 1.2rem; }
ol.tasks li { margin-bottom: 1rem; }
li.overdue { border-left: 4px solid #b00020; padding-left: .5rem; }
"""


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    """A complete page around `body`, which is HTML the caller has already escaped."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def bad_link_page() -> HTMLResponse:
    return page(
        "This link does not work",
        "<p>The link is incomplete, was changed, or has expired. Nothing was changed.</p>",
        status_code=400,
    )


class TokenRoute(APIRoute):
    """A route whose token does not verify answers the bad-link page (400) and does nothing."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        route = self.path

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except BadToken as err:
                log.info("bad token", route=route, reason=str(err))
                return bad_link_page()

        return guarded
