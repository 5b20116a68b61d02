"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served with no internet.

FastAPI's own pages load their JavaScript and CSS from a CDN: offline, or wherever outside hosts
are blocked, they are blank. Here the assets come from an installed package, `fastapi-offline`
(MIT; it ships swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and a favicon), served by
the gateway itself under ASSETS, the way FastAPI documents for self-hosted docs assets. Only that
package's static files are used, not its `FastAPIOffline` app factory."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
# Where the package's files are served: swagger-ui-bundle.js, swagger-ui.css,
# redoc.standalone.js, favicon.png.
ASSETS = "/docs-assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")

# The pages load nothing from outside the gateway, even where the internet is reachable (ReDoc's
# sidebar would fetch Redocly's logo from their CDN). Inline script and styles: FastAPI's pages
# start the UI inline, and both UIs style elements inline; ReDoc runs a worker from a blob.
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "worker-src 'self' blob:",
    ]
)


def serve_docs(app: FastAPI) -> None:
    """Add /docs, its OAuth2 redirect page, /redoc and their assets to an app created with
    `docs_url=None, redoc_url=None` (FastAPI's CDN-loading pages switched off)."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("create the app with docs_url=None and redoc_url=None")
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the docs pages need the app's OpenAPI schema (openapi_url)")
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url

    app.mount(ASSETS, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    def root(request: Request) -> str:
        # Behind a proxy that serves the gateway under a prefix, as FastAPI's own pages do.
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        at = root(request)
        page = get_swagger_ui_html(
            openapi_url=at + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=at + oauth2_redirect_url if oauth2_redirect_url else None,
            swagger_js_url=f"{at}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{at}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{at}{ASSETS}/favicon.png",
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        at = root(request)
        page = get_redoc_html(
            openapi_url=at + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{at}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{at}{ASSETS}/favicon.png",
            with_google_fonts=False,  # fonts from Google are another outside host
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page
