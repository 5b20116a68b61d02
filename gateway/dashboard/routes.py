"""The dashboard's routes: each reads what its page shows (the store, the library, Temporal's
live counts) and hands it to `gateway.dashboard.render`. Every route needs the operators'
password (`gateway.dashboard.auth`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.dashboard import render
from gateway.dashboard.auth import require_operator
from gateway.dashboard.render import DEFAULT_SINCE, PREFIX, Nav, Since, period_of
from gateway.deps import Gateway, GatewayDep
from gateway.pages import PAGE_HEADERS
from journeys.plans.report import plan_report
from journeys.reports.drawing import draw
from journeys.reports.models import JourneyReport, Overview
from journeys.spec import JourneySpec
from workflows.runs import with_waiting

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(require_operator)])

# Audit rows the hygiene page lists at most (the counts cover all of them).
HYGIENE_ROWS = 500

SinceQuery = Annotated[Since, Query(description="The period: 7d, 30d, 90d or all")]
ContactId = Annotated[str, Path(min_length=1, max_length=64)]


def _html(page: str) -> HTMLResponse:
    return HTMLResponse(page, headers=PAGE_HEADERS)


def _json(model: Overview | JourneyReport) -> Response:
    return Response(model.model_dump_json(), media_type="application/json", headers=PAGE_HEADERS)


async def _nav(
    gw: Gateway, current: str, plans: bool | None = None, hygiene: bool | None = None
) -> Nav:
    """The header's sections: plans and hygiene once the store has something of them (asked
    only when the page has not read it already)."""
    if plans is None:
        plans = bool(await gw.store.plan_templates())
    if hygiene is None:
        hygiene = await gw.store.latest_hygiene_run() is not None
    return render.nav(current, plans, hygiene)


async def _overview(gw: Gateway, since: Since) -> Overview:
    period = period_of(since, datetime.now(UTC))
    return await gw.store.overview(list(gw.library.values()), period)


@router.get("/overview.json")
async def overview_json(gw: GatewayDep, since: SinceQuery = DEFAULT_SINCE) -> Response:
    """What the overview page shows, as `journeys report --json` prints it."""
    return _json(await _overview(gw, since))


@router.get("", response_class=HTMLResponse)
async def overview(gw: GatewayDep, since: SinceQuery = DEFAULT_SINCE) -> HTMLResponse:
    report = await _overview(gw, since)
    return _html(render.overview_page(report, since, await _nav(gw, PREFIX)))


def _journey(gw: Gateway, journey_id: str) -> JourneySpec:
    spec = gw.library.get(journey_id)
    if spec is None:
        raise HTTPException(404, f"no journey '{journey_id}' in the gateway's library")
    return spec


async def _journey_report(gw: Gateway, spec: JourneySpec, since: Since) -> JourneyReport:
    """The journey's report over the period, with who waits where now if Temporal answers."""
    report = await gw.store.journey_report(spec, period_of(since, datetime.now(UTC)))
    return await with_waiting(gw.client, spec, report)


# Before the page's route, which would take "welcome.json" for a journey id.
@router.get("/journeys/{journey_id}.json")
async def journey_json(
    journey_id: str, gw: GatewayDep, since: SinceQuery = DEFAULT_SINCE
) -> Response:
    """What the journey's page shows, as `journeys report JOURNEY --json` prints it."""
    return _json(await _journey_report(gw, _journey(gw, journey_id), since))


@router.get("/journeys/{journey_id}", response_class=HTMLResponse)
async def journey(
    journey_id: str, gw: GatewayDep, since: SinceQuery = DEFAULT_SINCE
) -> HTMLResponse:
    spec = _journey(gw, journey_id)
    report = await _journey_report(gw, spec, since)
    graph = draw(spec, {s.step_id: s for s in report.steps})
    return _html(render.journey_page(report, graph, since, await _nav(gw, PREFIX)))


@router.get("/contacts")
async def find_contact(
    contact_id: Annotated[str, Query(alias="id", min_length=1, max_length=64)],
) -> RedirectResponse:
    """The header's contact form: on to that contact's page."""
    return RedirectResponse(f"{PREFIX}/contacts/{quote(contact_id, safe='')}", status_code=303)


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
async def contact(contact_id: ContactId, gw: GatewayDep) -> HTMLResponse:
    store = gw.store
    messages = render.messages_of(
        await store.deliveries_of(contact_id), await store.events_of(contact_id)
    )
    page = render.contact_page(
        contact_id,
        await store.get_contact(contact_id),
        await store.paths_of(contact_id),
        messages,
        await _nav(gw, f"{PREFIX}/contacts"),
    )
    return _html(page)


@router.get("/plans", response_class=HTMLResponse)
async def plans(gw: GatewayDep) -> HTMLResponse:
    store = gw.store
    templates = await store.plan_templates()
    if not templates:
        raise HTTPException(404, "no plan has run yet")
    names = {p.id: p.name for p in await store.team_members()}
    # On-time figures for the library's templates (a journey's task steps have none).
    reports = [
        plan_report(gw.plans[t], await store.plans_of(t)) for t in templates if t in gw.plans
    ]
    sections = render.board(await store.running_plans(), names, datetime.now(UTC))
    navigation = await _nav(gw, f"{PREFIX}/plans", plans=True)
    return _html(render.plans_page(sections, reports, names, navigation))


@router.get("/hygiene", response_class=HTMLResponse)
async def hygiene(gw: GatewayDep) -> HTMLResponse:
    run_id = await gw.store.latest_hygiene_run()
    if run_id is None:
        raise HTTPException(404, "no hygiene run has changed anything yet")
    page = render.hygiene_page(
        run_id,
        await gw.store.hygiene_counts(run_id),
        await gw.store.hygiene_changes_of(run_id, HYGIENE_ROWS),
        await _nav(gw, f"{PREFIX}/hygiene", hygiene=True),
    )
    return _html(page)
