"""The operators' dashboard (/dashboard), read as an operator would: over real HTTP from the
gateway on a real store (written through the store's own write paths: a run's path record, the
delivery ledger's claim and outcome, the gateway's outbox), and in headless Chromium on a phone's
375-px-wide screen and a laptop's 1280: no console errors, the numbers shown, a screenshot that
is not blank, nothing to scroll sideways but a wide table's own box. Without the password the
dashboard refuses; without a password configured it is off."""

from __future__ import annotations

import asyncio
import base64
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from temporalio.testing import WorkflowEnvironment

from devstack.stack import DevPorts, dev_settings, print_banner
from gateway.dashboard.render import journey_page, nav, overview_page
from gateway.deps import Gateway
from journeys.contacts import Contact
from journeys.hygiene.changes import HygieneChange
from journeys.identity import workflow_id
from journeys.models import JourneyEvent, PathRecord, SendRequest, VisitRecord
from journeys.plans.library import load_plans
from journeys.plans.people import Person
from journeys.plans.records import PlanRecord, TaskRecord, plan_workflow_id
from journeys.reports.models import (
    ABTest,
    ChannelFigures,
    Comparison,
    JourneyFigures,
    JourneyReport,
    NpsFigures,
    NpsWeek,
    Overview,
    Period,
    StepFigures,
    VariantFigures,
)
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from tests.api_fixtures import new_contact_id, serving
from tests.browser import Page, headless_chromium
from tests.gateway_fixtures import PROBE
from workers.worker import journey_worker
from workflows.runs import start_journey

PASSWORD = "a-long-operator-password-1234"
NOW = datetime.now(UTC).replace(microsecond=0)
WIDTHS = (375, 1280)


@dataclass
class Dashboard:
    http: httpx.AsyncClient
    gw: Gateway

    @property
    def store(self) -> ContactStore:
        return self.gw.store

    @property
    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth("operator", PASSWORD)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, auth=self.auth)


async def _served(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> AsyncIterator[Dashboard]:
    gw = Gateway(settings, store, dev_temporal.client, library={}, plans=load_plans(LIBRARY_DIR))
    async with serving(gw) as http:
        yield Dashboard(http, gw)


@pytest.fixture
async def dashboard(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> AsyncIterator[Dashboard]:
    on = settings.model_copy(update={"dashboard_password": SecretStr(PASSWORD)})
    async for served in _served(dev_temporal, store, on):
        yield served


# -- who may see it ------------------------------------------------------------------------------


async def test_without_a_password_configured_the_dashboard_is_off_and_says_how_to_turn_it_on(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> None:
    assert settings.dashboard_password is None
    async for off in _served(dev_temporal, store, settings):
        answer = await off.get("/dashboard/contacts/c1")
        assert answer.status_code == 404
        assert "JOURNEYS_DASHBOARD_PASSWORD" in answer.text


async def test_a_missing_or_wrong_password_is_refused(dashboard: Dashboard) -> None:
    for path in ("/dashboard/contacts/c1", "/dashboard/plans", "/dashboard/hygiene"):
        missing = await dashboard.http.get(path)
        assert missing.status_code == 401, path
        assert missing.headers["WWW-Authenticate"].startswith("Basic")
        wrong = await dashboard.http.get(path, auth=("operator", PASSWORD + "x"))
        assert wrong.status_code == 401, path
        assert "c1" not in wrong.text
    assert (await dashboard.get("/dashboard/contacts/c1")).status_code == 200


def test_outside_dev_a_short_password_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_DASHBOARD_PASSWORD", "short-password")  # 14 characters
    monkeypatch.setenv("JOURNEYS_ENV", "production")
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings()
    monkeypatch.setenv("JOURNEYS_ENV", "dev")
    assert Settings().dashboard_password is not None
    monkeypatch.setenv("JOURNEYS_ENV", "production")
    monkeypatch.setenv("JOURNEYS_DASHBOARD_PASSWORD", "x" * 16)
    assert Settings().dashboard_password is not None


async def test_the_dev_stack_prints_a_dashboard_password_that_opens_it(
    dev_temporal: WorkflowEnvironment,
    store: ContactStore,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOURNEYS_DASHBOARD_PASSWORD", raising=False)
    ports = DevPorts()
    made = dev_settings(tmp_path / "data", ports)
    print_banner(tmp_path / "data", ports, made)
    line = next(x for x in capsys.readouterr().out.splitlines() if "/dashboard" in x)
    assert f"http://localhost:{ports.gateway}/dashboard" in line
    printed = line.rsplit("password: ", 1)[1].rstrip(")")
    assert len(printed) >= 16
    # Kept in the data dir: the next `make run` prints (and takes) the same one.
    assert dev_settings(tmp_path / "data", ports).dashboard_password == made.dashboard_password
    on = settings.model_copy(update={"dashboard_password": made.dashboard_password})
    async for served in _served(dev_temporal, store, on):
        answer = await served.http.get("/dashboard/contacts/c1", auth=("me", printed))
        assert answer.status_code == 200


# -- a contact -----------------------------------------------------------------------------------

ADA = Contact(
    id="ada-1",
    email="ada.lovelace@example.com",
    phone="+48601234567",
    consent={"email": True},
    time_zone="Europe/Warsaw",
)
ENTRY = "journey:welcome:ada-1/run-1"
ENTERED = NOW - timedelta(days=3)


async def _scripted_contact(store: ContactStore) -> None:
    """Ada entered `welcome`, was sent the intro (variant b) and waits for its open; she opened
    it twice (a privacy proxy once), clicked once and unsubscribed."""
    await store.upsert_contacts([ADA])
    await store.record_path(
        PathRecord(
            entry_id=ENTRY,
            workflow_id=workflow_id("welcome", ADA.id),
            journey_id="welcome",
            version=2,
            contact_id=ADA.id,
            entered_at=ENTERED,
            visits=[
                VisitRecord(
                    n=0,
                    step="intro",
                    entered_at=ENTERED,
                    left_at=ENTERED + timedelta(seconds=2),
                    outcome="sent",
                    next_step="await_open",
                    variant="b",
                ),
                VisitRecord(n=1, step="await_open", entered_at=ENTERED + timedelta(seconds=2)),
            ],
        )
    )
    send = SendRequest(
        key=f"{ENTRY}/intro/1",
        workflow_id=workflow_id("welcome", ADA.id),
        journey_id="welcome",
        step_id="intro",
        contact_id=ADA.id,
        channel="email",
        template="welcome_intro_b",
        variant="b",
    )
    claim = await store.claim_delivery(send)
    assert await store.hand_over_delivery(send.key, claim.attempt)
    assert await store.finish_delivery(send.key, claim.attempt, "sent", provider_id="<m1@x>")
    for kind, machine, minutes in [
        ("opened", True, 1),
        ("opened", False, 60),
        ("clicked", False, 61),
        ("unsubscribed", False, 62),
    ]:
        ev = JourneyEvent(
            kind=kind,
            step="intro",
            occurred_at=ENTERED + timedelta(minutes=minutes),
            data={"machine": machine} if kind != "unsubscribed" else {},
        )
        assert await store.keep_event(ADA.id, "welcome", ev, timedelta(minutes=1)) is not None


async def test_a_contact_page_shows_their_path_messages_and_what_they_did(
    dashboard: Dashboard,
) -> None:
    await _scripted_contact(dashboard.store)
    answer = await dashboard.get(f"/dashboard/contacts/{ADA.id}")
    assert answer.status_code == 200
    page = answer.text
    assert "welcome</a> v2" in page
    assert f"entered {ENTERED:%Y-%m-%d %H:%M} UTC" in page
    assert "in it now" in page and "here now" in page  # waiting at await_open
    row = page[page.index('<th scope="row" class="text">intro</th>') :]
    assert "sent" in row[:400] and ">b<" in row[:400]
    message = page[page.index("welcome · intro") :]
    cells = [c.split("</td>")[0] for c in message.split("<td>")[1:4]]
    assert cells == ["1", "1", "1"], cells  # human opens, machine opens, clicks
    assert "welcome_intro_b" in message and "yes" in message  # unsubscribed
    # No address in clear: the contact id only, the email and phone masked as the logs mask them.
    assert ADA.email is not None and ADA.phone is not None
    assert ADA.email not in page and ADA.phone not in page
    assert "a***@example.com" in page and "+48***67" in page


async def test_the_header_form_finds_a_contact(dashboard: Dashboard) -> None:
    answer = await dashboard.get("/dashboard/contacts?id=ada-1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/contacts/ada-1"


# -- team plans ----------------------------------------------------------------------------------

TEAM = [
    Person(id="ana", name="Ana Writer", email="ana@example.com"),
    Person(id="sam", name="Sam Seo", email="sam@example.com"),
]


def _task(
    task_id: str, title: str, who: str, status: str, due: datetime, **done: object
) -> TaskRecord:
    return TaskRecord.model_validate(
        {
            "task_id": task_id,
            "title": title,
            "kind": "task",
            "people": [who],
            "status": status,
            "due_at": due,
            "activated_at": due - timedelta(days=2) if status != "waiting" else None,
            "rounds": 0 if status == "waiting" else 1,
            **done,
        }
    )


def _blog_post(instance: str, state: str, tasks: list[TaskRecord]) -> PlanRecord:
    return PlanRecord.model_validate(
        {
            "plan_id": plan_workflow_id("blog_post", instance),
            "template": "blog_post",
            "version": 1,
            "instance": instance,
            "target": (NOW + timedelta(days=20)).date(),
            "state": state,
            "started_at": NOW - timedelta(days=30),
            "tasks": tasks,
        }
    )


async def _plans(store: ContactStore) -> None:
    """A finished run (Ana's outline a day late, Sam's research on time) and a running one with
    an overdue task, an open one and one waiting."""
    await store.upsert_people(TEAM)
    due = NOW - timedelta(days=10)
    await store.record_plan(
        _blog_post(
            "done-one",
            "finished",
            [
                _task(
                    "keyword_research",
                    "Do keyword research",
                    "sam",
                    "done",
                    due,
                    done_at=due - timedelta(hours=2),
                    done_by="sam",
                ),
                _task(
                    "outline",
                    "Create blog post outline",
                    "ana",
                    "done",
                    due,
                    done_at=due + timedelta(days=1),
                    done_by="ana",
                ),
            ],
        )
    )
    await store.record_plan(
        _blog_post(
            "running-one",
            "running",
            [
                _task(
                    "keyword_research",
                    "Do keyword research",
                    "sam",
                    "active",
                    NOW + timedelta(days=2),
                ),
                _task(
                    "outline", "Create blog post outline", "ana", "active", NOW - timedelta(hours=5)
                ),
                _task(
                    "final_draft",
                    "Write the final draft",
                    "ana",
                    "waiting",
                    NOW + timedelta(days=9),
                ),
            ],
        )
    )


async def test_the_plans_board_shows_overdue_tasks_first_and_on_time_rates(
    dashboard: Dashboard,
) -> None:
    assert (await dashboard.get("/dashboard/plans")).status_code == 404  # no plan yet
    assert "/dashboard/plans" not in (await dashboard.get("/dashboard/contacts/x")).text
    await _plans(dashboard.store)
    answer = await dashboard.get("/dashboard/plans")
    assert answer.status_code == 200
    page = answer.text
    overdue, active, waiting = (page.index(h) for h in ("<h2>Overdue", "<h2>Active", "<h2>Waiting"))
    assert overdue < active < waiting
    assert "Create blog post outline" in page[overdue:active]
    assert "Do keyword research" in page[active:waiting]
    assert "Write the final draft" in page[waiting:]
    rates = page[page.index("On time: blog_post") :]
    assert "2 runs: 1 running, 1 finished" in rates
    # Per person: Ana's one outline was late (0%), Sam's research on time (100%).
    ana = rates[rates.index("Ana Writer") :]
    assert "0.0%" in ana[: ana.index("</tr>")]
    sam = rates[rates.index("Sam Seo") :]
    assert "100.0%" in sam[: sam.index("</tr>")]
    assert "/dashboard/plans" in (await dashboard.get("/dashboard/contacts/x")).text


# -- data hygiene --------------------------------------------------------------------------------


async def test_the_hygiene_page_shows_the_latest_run_with_addresses_masked(
    dashboard: Dashboard,
) -> None:
    assert (await dashboard.get("/dashboard/hygiene")).status_code == 404
    await dashboard.store.upsert_contacts([Contact(id="h1", phone="+48601234567")])
    change = HygieneChange(
        run_id="hygiene-1@2026-12-01T03:00:00Z",
        contact_id="h1",
        kind="phone_invalid",
        detail={"before": "+48601234567", "after": None, "reason": "no region reads it"},
        changed_at=NOW,
    )
    assert await dashboard.store.apply_hygiene([change]) == 1
    page = (await dashboard.get("/dashboard/hygiene")).text
    assert "hygiene-1@2026-12-01T03:00:00Z" in page
    assert "phone_invalid</th><td>1</td>" in page
    assert "+48***67 -&gt; (cleared)" in page and "+48601234567" not in page
    assert "no region reads it" in page


async def test_what_the_dashboard_reads_comes_back_from_each_database(
    store_on_each_database: ContactStore,
) -> None:
    """The store's reads behind the contact, plans and hygiene pages, on SQLite and PostgreSQL:
    what was written comes back as it was."""
    store = store_on_each_database
    assert await store.plan_templates() == [] and await store.latest_hygiene_run() is None
    await _scripted_contact(store)
    [entry] = await store.paths_of(ADA.id)
    assert entry.entry_id == ENTRY and entry.entered_at == ENTERED and entry.ended_at is None
    assert [(v.n, v.step, v.next_step, v.variant) for v in entry.visits] == [
        (0, "intro", "await_open", "b"),
        (1, "await_open", None, None),
    ]
    assert [e["kind"] for e in await store.events_of(ADA.id)] == [
        "opened",
        "opened",
        "clicked",
        "unsubscribed",
    ]
    await _plans(store)
    assert await store.plan_templates() == ["blog_post"]
    assert [p.instance for p in await store.running_plans()] == ["running-one"]
    await store.upsert_contacts([Contact(id="h1", phone="+48601234567")])
    for run, at in (("older", NOW - timedelta(days=1)), ("newer", NOW)):
        change = HygieneChange(
            run_id=run,
            contact_id="h1",
            kind="phone_invalid",
            detail={"before": "+48601234567", "after": None, "reason": "test"},
            changed_at=at,
        )
        await store.apply_hygiene([change])
        await store.upsert_contacts([Contact(id="h1", phone="+48601234567")])
    assert await store.latest_hygiene_run() == "newer"
    assert [c.run_id for c in await store.hygiene_changes_of("older")] == ["older"]


# -- in a browser --------------------------------------------------------------------------------


def not_blank(png: bytes) -> bool:
    """Whether a PNG screenshot shows more than a page's background: its pixel rows, unfiltered
    or not, take many byte values only where something is drawn."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data, at = b"", 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind = png[at + 4 : at + 8]
        if kind == b"IDAT":
            data += png[at + 8 : at + 8 + length]
        at += 12 + length
    return len(set(zlib.decompress(data))) > 32


async def _shown(tab: Page, url: str, width: int) -> dict[str, object]:
    await tab.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=900,
        deviceScaleFactor=1,
        mobile=width < 600,
    )
    await tab.open(url)
    await tab.wait_for("document.readyState === 'complete'", 10)
    shown: dict[str, object] = await tab.evaluate(
        "({text: document.body.innerText, width: document.documentElement.scrollWidth})"
    )
    shot = await tab.call("Page.captureScreenshot", format="png")
    shown["png"] = base64.b64decode(shot["data"])
    return shown


def _clean(tab: Page) -> None:
    assert tab.errors == [], tab.errors
    assert [entry for entry in tab.log if entry.startswith("error")] == [], tab.log


def _report() -> JourneyReport:
    """A journey report as the store would build it, with numbers to look for."""
    period = Period(since=NOW - timedelta(days=30), until=NOW)
    figures = JourneyFigures(
        journey_id="welcome",
        entered=1234,
        active=321,
        finished=800,
        exited_early=113,
        conversions=97,
        sends={"email": ChannelFigures(sent=2222, failed=7), "sms": ChannelFigures(sent=444)},
        delivered=440,
        human_opens=1500,
        machine_opens=390,
        clicks=612,
        unsubscribes=19,
        failures=11,
    )
    return JourneyReport(
        journey_id="welcome",
        version=2,
        description="Welcome new sign-ups",
        period=period,
        figures=figures,
        steps=[
            StepFigures(
                step_id="intro",
                kind="send",
                entered=1234,
                visits=1234,
                next={"wait": 1234},
                sent=1230,
                opens=987,
                clicks=456,
            ),
            StepFigures(
                step_id="wait",
                kind="wait_for",
                entered=1234,
                visits=1234,
                waiting=321,
                next={"nudge": 500, "done": 413},
            ),
        ],
        ab_tests=[
            ABTest(
                step_id="intro",
                metric="click",
                variants=[
                    VariantFigures(
                        name="a", entered=600, sent=598, opens=480, clicks=200, rate=0.3333
                    ),
                    VariantFigures(
                        name="b", entered=634, sent=632, opens=507, clicks=256, rate=0.4038
                    ),
                ],
                comparisons=[
                    Comparison(
                        variant="b",
                        against="a",
                        difference=0.0705,
                        z=2.53,
                        p_value=0.0114,
                        significant=True,
                    )
                ],
                winner="b",
            ),
            ABTest(
                step_id="nudge",
                metric="click",
                variants=[
                    VariantFigures(name="short", entered=250, rate=0.2),
                    VariantFigures(name="long", entered=250, rate=0.22),
                ],
                comparisons=[
                    Comparison(
                        variant="long", against="short", difference=0.02, z=0.55, p_value=0.5823
                    )
                ],
            ),
        ],
        nps=NpsFigures(
            answers=50,
            promoters=30,
            passives=12,
            detractors=8,
            score=44.0,
            distribution=[1, 0, 1, 2, 1, 1, 2, 5, 7, 10, 20],
            trend=[NpsWeek(week_of=date(2026, 11, 23), answers=50, score=44.0)],
        ),
        live=True,
    )


GRAPH = (
    '<?xml version="1.0" encoding="UTF-8"?><svg xmlns="http://www.w3.org/2000/svg" '
    'viewBox="0 0 200 60" width="200" height="60"><rect x="5" y="5" width="190" height="50" '
    'fill="#dde" stroke="#333"/><text x="15" y="35">intro: 1234 entered</text></svg>'
)


async def test_the_overview_and_journey_pages_read_well_on_a_phone_and_a_laptop(
    tmp_path: Path,
) -> None:
    report = _report()
    menu = nav("/dashboard", plans=True, hygiene=False)
    pages = {
        "overview": overview_page(
            Overview(period=report.period, journeys=[report.figures]), "30d", menu
        ),
        "journey": journey_page(report, GRAPH, "30d", menu),
    }
    expected = {
        "overview": [
            "1234",
            "321",
            "800",
            "113",
            "97",
            "email 2222",
            "(7 failed)",
            "sms 444",
            "440",
            "1500",
            "390",
            "612",
            "19",
        ],
        "journey": [
            "intro: 1234 entered",
            "nudge: 500 (40.5%)",  # of the 1234 visits of wait
            "two-proportion z-test, 95% confidence",
            "p < 0.05",
            "0.0114",
            "Winner: b",
            "No winner yet",
            "0.5823",
            "+44.0",
            "30",
            "2026-11-23",
        ],
    }
    async with headless_chromium() as tab:
        for name, html in pages.items():
            assert "<?xml" not in html
            file = tmp_path / f"{name}.html"
            file.write_text(html, encoding="utf-8")
            for width in WIDTHS:
                shown = await _shown(tab, file.as_uri(), width)
                _clean(tab)
                text = str(shown["text"])
                for figure in expected[name]:
                    assert figure in text, (name, width, figure)
                assert int(str(shown["width"])) <= width, (name, width, shown["width"])
                assert not_blank(bytes(shown["png"])), (name, width)  # type: ignore[arg-type]
                assert tab.sent() == [file.as_uri()], tab.sent()  # nothing else loaded
                if name == "journey":
                    # The NPS distribution: a row per score, 0 to 10, each with its answers.
                    rows = await tab.evaluate(
                        "Array.from(document.querySelectorAll('table.distribution tbody tr'))"
                        ".map(r => r.innerText.replace(/\\s+/g, ' ').trim())"
                    )
                    assert rows == [
                        f"{score} {n}" for score, n in enumerate(report.nps.distribution)
                    ], rows  # type: ignore[union-attr]


async def test_the_contact_plans_and_hygiene_pages_read_well_on_a_phone_and_a_laptop(
    dashboard: Dashboard,
) -> None:
    await _scripted_contact(dashboard.store)
    await _plans(dashboard.store)
    await dashboard.store.upsert_contacts([Contact(id="h2", phone="+48601234568")])
    await dashboard.store.apply_hygiene(
        [
            HygieneChange(
                run_id="hygiene-2",
                contact_id="h2",
                kind="phone_invalid",
                detail={"before": "+48601234568", "after": None, "reason": "no region reads it"},
                changed_at=NOW,
            )
        ]
    )
    base = str(dashboard.http.base_url)
    expected = {
        f"/dashboard/contacts/{ADA.id}": ["welcome_intro_b", "await_open", "here now"],
        "/dashboard/plans": ["Overdue", "Create blog post outline", "Ana Writer", "100.0%"],
        "/dashboard/hygiene": ["hygiene-2", "phone_invalid", "+48***68 -> (cleared)"],
    }
    credentials = base64.b64encode(f"operator:{PASSWORD}".encode()).decode()
    async with headless_chromium() as tab:
        await tab.call(
            "Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {credentials}"}
        )
        for path, figures in expected.items():
            for width in WIDTHS:
                shown = await _shown(tab, f"{base}{path}", width)
                _clean(tab)
                text = str(shown["text"])
                for figure in figures:
                    assert figure in text, (path, width, figure)
                # The navigation shows the sections whose data exists.
                assert "Team plans" in text and "Data hygiene" in text
                assert int(str(shown["width"])) <= width, (path, width, shown["width"])
                assert not_blank(bytes(shown["png"])), (path, width)  # type: ignore[arg-type]


# -- the overview and a journey, from real runs --------------------------------------------------


@pytest.fixture
async def live(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> AsyncIterator[Dashboard]:
    """The dashboard of a gateway whose library is the probe journey, with a worker running it."""
    on = settings.model_copy(
        update={
            "dashboard_password": SecretStr(PASSWORD),
            "task_queue": f"dashboard-{uuid.uuid4().hex[:8]}",
        }
    )
    gw = Gateway(on, store, dev_temporal.client, library={PROBE.id: PROBE}, plans={})
    async with journey_worker(gw.client, store, on), serving(gw) as http:
        yield Dashboard(http, gw)


async def test_the_overview_and_a_journey_page_count_real_runs_live(live: Dashboard) -> None:
    """Two contacts enter the probe journey and wait at `listen`: the overview counts them in
    it, the journey's page draws the graph with 2 entered and 2 waiting now (from Temporal), and
    the JSON twins are the same report."""
    contacts = [new_contact_id(), new_contact_id()]
    await live.store.upsert_contacts([Contact(id=c) for c in contacts])
    for contact_id in contacts:
        started = await start_journey(
            live.gw.client, PROBE, contact_id, live.gw.settings.task_queue
        )
        assert started == "started"
    async with asyncio.timeout(20):
        while True:
            answer = await live.get(f"/dashboard/journeys/{PROBE.id}.json")
            report = JourneyReport.model_validate_json(answer.text)
            listen = next(s for s in report.steps if s.step_id == "listen")
            if report.live and listen.waiting == 2 and listen.entered == 2:
                break
            await asyncio.sleep(0.2)
    assert answer.headers["content-type"] == "application/json"
    assert report.figures.entered == 2 and report.figures.active == 2
    overview = Overview.model_validate_json(
        (await live.get("/dashboard/overview.json?since=7d")).text
    )
    [probe] = overview.journeys
    assert (probe.journey_id, probe.entered, probe.active) == (PROBE.id, 2, 2)
    assert overview.period.since is not None
    assert overview.period.until - overview.period.since == timedelta(days=7)
    assert (await live.get("/dashboard/journeys/nowhere")).status_code == 404
    assert (await live.http.get("/dashboard/overview.json")).status_code == 401

    base = str(live.http.base_url)
    credentials = base64.b64encode(f"operator:{PASSWORD}".encode()).decode()
    async with headless_chromium() as tab:
        await tab.call(
            "Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {credentials}"}
        )
        for width in WIDTHS:
            shown = await _shown(tab, f"{base}/dashboard?since=7d", width)
            _clean(tab)
            row = str(shown["text"]).split(PROBE.id, 1)[1].split("\n")[0]
            assert row.split("\t")[1:5] == ["2", "2", "0", "0"], row  # entered, in it, ...
            assert not_blank(bytes(shown["png"]))  # type: ignore[arg-type]
            shown = await _shown(tab, f"{base}/dashboard/journeys/{PROBE.id}", width)
            _clean(tab)
            graph = await tab.evaluate(
                "Array.from(document.querySelectorAll('figure.graph svg text'))"
                ".map(t => t.textContent).join('|')"
            )
            assert "2 entered" in graph and "2 waiting now" in graph, graph
            assert "Waiting counts are live from Temporal" in str(shown["text"])
            assert int(str(shown["width"])) <= width, (width, shown["width"])
            assert not_blank(bytes(shown["png"]))  # type: ignore[arg-type]
