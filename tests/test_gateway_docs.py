"""The API's documentation pages as a person sees them: /docs (Swagger UI) and /redoc (ReDoc)
loaded in headless Chromium from the served gateway, with no internet (only 127.0.0.1 resolves).
They show the API's operations only if their JavaScript, served by the gateway, ran."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from gateway.deps import Gateway
from journeys.library import load_library
from journeys.plans.library import load_plans
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from tests.api_fixtures import serving
from tests.browser import Page, headless_chromium, outside

# Seconds a page may take to render (a few on a busy machine: the bundles are 1-1.5 MB of JS).
RENDER_TIMEOUT = 15.0

SWAGGER_OPERATIONS = """[...document.querySelectorAll('.opblock-summary')].map(e => [
    e.querySelector('.opblock-summary-method')?.textContent,
    e.querySelector('.opblock-summary-path')?.dataset.path,
    e.querySelector('.opblock-summary-description')?.textContent ?? '',
])"""

# ReDoc: an h2 per tag and per operation, its summary.
REDOC_HEADINGS = "[...document.querySelectorAll('h2')].map(e => e.textContent.trim())"


@pytest.fixture
async def served(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway as `journeys gateway` serves it (the docs pages use none of its parts)."""
    gw = Gateway(
        settings, store, dev_temporal.client, load_library(LIBRARY_DIR), load_plans(LIBRARY_DIR)
    )
    async with serving(gw) as http:
        yield http


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with headless_chromium() as tab:
        yield tab


async def operations(http: httpx.AsyncClient) -> set[tuple[str, str, str]]:
    """(method, path, summary) of every operation in the gateway's OpenAPI schema."""
    schema: dict[str, Any] = (await http.get("/openapi.json")).json()
    return {
        (method.upper(), path, op.get("summary", ""))
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }


def assert_stayed_home(page: Page, base: str) -> None:
    """Nothing the page asked for left the machine: every request it sent went to the gateway,
    and whatever else it tried the gateway's Content-Security-Policy refused."""
    assert page.requested, "the browser saw no request: is the Network domain on?"
    assert [url for url in page.sent() if outside(url)] == []
    assert all(url.startswith(base) for url in page.sent() if url.startswith("http"))
    assert all(reason == "csp" for _, reason in page.blocked), page.blocked
    assert all("Content Security Policy" in entry for entry in page.log), page.log
    assert page.errors == []


async def test_swagger_ui_renders_every_operation_offline(
    served: httpx.AsyncClient, page: Page
) -> None:
    base = str(served.base_url).rstrip("/")
    await page.open(f"{base}/docs")
    shown = await page.wait_for(
        f"(ops => ops.length ? ops : null)({SWAGGER_OPERATIONS})", RENDER_TIMEOUT
    )

    assert ["PUT", "/v1/contacts/{contact_id}", "Upsert Contact"] in shown
    assert {tuple(op) for op in shown} == await operations(served)
    title = await page.evaluate("document.querySelector('.swagger-ui .info .title').textContent")
    assert title.startswith("journeys gateway")
    # The page, its assets and the schema all came from the gateway.
    assert f"{base}/docs-assets/swagger-ui-bundle.js" in page.requested
    assert f"{base}/docs-assets/swagger-ui.css" in page.requested
    assert f"{base}/openapi.json" in page.requested
    assert_stayed_home(page, base)
    assert page.blocked == page.log == []  # Swagger UI did not even try another host


async def test_redoc_renders_every_operation_offline(served: httpx.AsyncClient, page: Page) -> None:
    base = str(served.base_url).rstrip("/")
    await page.open(f"{base}/redoc")
    shown = await page.wait_for(
        f"(hs => hs.includes('Upsert Contact') ? hs : null)({REDOC_HEADINGS})", RENDER_TIMEOUT
    )

    assert {summary for _, _, summary in await operations(served)} <= set(shown)
    assert f"{base}/docs-assets/redoc.standalone.js" in page.requested
    assert f"{base}/openapi.json" in page.requested
    assert_stayed_home(page, base)


async def test_oauth2_redirect_page_and_assets_are_served(served: httpx.AsyncClient) -> None:
    redirect = await served.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text
    for asset, kind in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "javascript"),
        ("favicon.png", "image/png"),
    ]:
        answer = await served.get(f"/docs-assets/{asset}")
        assert answer.status_code == 200, asset
        assert kind in answer.headers["content-type"], asset
    # The docs pages are not operations of the API.
    assert not {"/docs", "/redoc", "/docs/oauth2-redirect"} & {
        path for _, path, _ in await operations(served)
    }
