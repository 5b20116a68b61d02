"""The journey reports count what contacts did: a scripted set of contacts run through a small
journey with a branch, an A/B send and a goal, and every figure of the overview and of the
journey's report checked against the script; the A/B significance against values worked out
by hand; `journeys report` printing the same figures. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from sqlalchemy import insert, select
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from devstack.sinks.mail import MailSink
from devstack.sinks.push import FcmSink, WebPushSink
from devstack.sinks.sms import SmsSink
from journeys.contacts import Contact
from journeys.identity import workflow_id
from journeys.models import JourneyEvent, PathRecord, VisitRecord
from journeys.reports.models import JourneyReport, Overview, Period
from journeys.settings import LIBRARY_DIR, Settings
from journeys.spec import JourneySpec
from journeys.store import ContactStore, open_store
from journeys.store.schema import (
    deliveries,
    events,
    journey_entries,
    journey_visits,
    nps_answers,
)
from starters.cli import app
from tests.gateway_fixtures import wait_at
from tests.temporal_fixtures import Stack, running_stack, wait_for_step
from tests.test_interpreter import run, spec
from workflows.runs import start_journey, with_waiting


@pytest.fixture
def store(store_on_each_database: ContactStore) -> ContactStore:
    """The runs' records and the report's statements on SQLite and on PostgreSQL."""
    return store_on_each_database


# offer (A/B) -> wait for its open -> thanks | (no open) has a phone? -> nudge | bye
SCRIPTED = [
    {
        "id": "offer",
        "kind": "send",
        "channel": "email",
        "variants": [
            {"name": "a", "template": "lead_part_2"},
            {"name": "b", "template": "lead_part_3"},
        ],
    },
    {
        "id": "opened",
        "kind": "wait_for",
        "event": "opened",
        "step": "offer",
        "timeout": "3d",
        "on_event": "thanks",
        "on_timeout": "phone",
    },
    {
        "id": "phone",
        "kind": "branch",
        "conditions": [{"when": "has_phone", "next": "nudge"}],
        "otherwise": "bye",
    },
    {"id": "nudge", "kind": "send", "channel": "email", "template": "lead_part_2", "next": "bye"},
    {"id": "thanks", "kind": "send", "channel": "email", "template": "lead_part_3"},
    {"id": "bye", "kind": "end"},
]
GOAL = {"event": "purchase", "within": "14d"}
EVERYTHING = Period(until=datetime(2100, 1, 1, tzinfo=UTC))


@dataclass
class Script:
    """What one contact does while (and after) it runs through SCRIPTED."""

    phone: bool = False
    opens: list[bool] = field(default_factory=list)  # each open: by a machine?
    clicks: list[bool] = field(default_factory=list)  # each click: by a machine?
    unsubscribes: bool = False
    purchase_after: timedelta | None = None  # after entering


SCRIPTS = {
    "s-open-click-buy": Script(opens=[False], clicks=[False], purchase_after=timedelta(days=2)),
    "s-proxy-late-buy": Script(
        phone=True, opens=[True], purchase_after=timedelta(days=20)
    ),  # a proxy's open does not end the wait; bought after the window
    "s-open-twice": Script(opens=[True, False]),
    "s-silent": Script(),
    "s-unsubscribes": Script(unsubscribes=True, purchase_after=timedelta(days=1)),
    "s-open-clicks-buy": Script(
        opens=[False], clicks=[False, True], purchase_after=timedelta(hours=30)
    ),
    "s-silent-phone": Script(phone=True),
}


async def keep(stack: Stack, contact_id: str, ev: JourneyEvent, signal: bool = True) -> None:
    """What the gateway does with an event about a tracked send: recorded with the send's
    journey (and kept in the outbox), then handed to the run."""
    held = await stack.store.keep_event(contact_id, "test", ev, timedelta(minutes=1))
    assert held is not None
    await stack.store.release_held(held.id)
    if signal:
        handle = stack.env.client.get_workflow_handle(f"journey:test:{contact_id}")
        await handle.signal("event", ev)


async def test_the_report_counts_what_a_scripted_set_of_contacts_did(stack: Stack) -> None:
    journey = spec(SCRIPTED, goal=GOAL, exit_events=["unsubscribed"])
    handles = {}
    for contact_id, script in SCRIPTS.items():
        contact = Contact(
            id=contact_id,
            email=f"{contact_id}@example.com",
            phone="+48601234567" if script.phone else None,
            consent={"email": True},
        )
        handles[contact_id] = await run(stack, journey, contact)
    for handle in handles.values():
        await wait_for_step(stack.env, handle, "opened")
    now = await stack.env.get_current_time()
    for contact_id, script in SCRIPTS.items():
        for machine in script.opens:
            await keep(stack, contact_id, opened(now, machine))
        if script.unsubscribes:
            await keep(stack, contact_id, JourneyEvent(kind="unsubscribed", occurred_at=now))
    for handle in handles.values():
        await handle.result()
    entered = {e.contact_id: e.entered_at for e in await entries(stack.store)}
    for contact_id, script in SCRIPTS.items():
        for machine in script.clicks:
            click = JourneyEvent(
                kind="clicked", step="offer", occurred_at=now, data={"machine": machine}
            )
            await keep(stack, contact_id, click, signal=False)
        if script.purchase_after is not None:
            at = entered[contact_id] + script.purchase_after
            await stack.store.record_event(
                contact_id, JourneyEvent(kind="purchase", occurred_at=at)
            )
    # The draw is by run id: one time in 64 all seven draw the same variant, and the other's
    # figures are then all zero (the z-test's own test has fixed counts).
    variant = await drawn(stack.store)
    assert set(variant) == set(SCRIPTS) and set(variant.values()) <= {"a", "b"}

    # The session's time-skipping server may be years ahead of the wall clock (tests before let
    # years pass): everything is whatever happened until its now.
    everything = Period(until=await stack.env.get_current_time() + timedelta(days=1))
    found = await stack.store.journey_report(journey, everything)

    # Each entry once, within 14 days of entering, also after leaving early (s-unsubscribes);
    # s-proxy-late-buy bought after its window.
    converted = {"s-open-click-buy", "s-open-clicks-buy", "s-unsubscribes"}
    assert found.figures.model_dump() == {
        "journey_id": "test",
        "entered": 7,
        "active": 0,
        "finished": 6,
        "exited_early": 1,
        "conversions": 3,
        "sends": {"email": {"sent": 7 + 3 + 2, "failed": 0}},  # offer, thanks, nudge
        "delivered": 0,
        "human_opens": 3,
        "machine_opens": 2,
        "clicks": 2,
        "unsubscribes": 1,
        "failures": 0,
    }
    steps = {
        s.step_id: (s.entered, s.visits, s.next, s.sent, s.opens, s.clicks) for s in found.steps
    }
    assert steps == {
        "offer": (7, 7, {"opened": 7}, 7, 3, 2),
        "opened": (7, 7, {"phone": 3, "thanks": 3}, None, None, None),
        "phone": (3, 3, {"bye": 1, "nudge": 2}, None, None, None),
        "nudge": (2, 2, {"bye": 2}, 2, 0, 0),
        "thanks": (3, 3, {"bye": 3}, 3, 0, 0),
        "bye": (6, 6, {}, None, None, None),
    }
    assert [s.waiting for s in found.steps] == [None] * 6 and not found.live

    (test,) = found.ab_tests
    assert (test.step_id, test.metric, test.test) == (
        "offer",
        "conversion",
        "two-proportion z-test",
    )
    by_name = {v.name: v for v in test.variants}
    for name in ("a", "b"):
        members = {c for c, v in variant.items() if v == name}
        human_openers = {c for c in members if False in SCRIPTS[c].opens}
        clickers = {c for c in members if False in SCRIPTS[c].clicks}
        assert by_name[name].model_dump() == {
            "name": name,
            "entered": len(members),
            "sent": len(members),
            "opens": len(human_openers),
            "clicks": len(clickers),
            "conversions": len(members & converted),
            "rate": len(members & converted) / len(members) if members else None,
        }
    x_a, n_a = by_name["a"].conversions, by_name["a"].entered
    x_b, n_b = by_name["b"].conversions, by_name["b"].entered
    assert x_a is not None and x_b is not None
    (comparison,) = test.comparisons
    pooled = (x_a + x_b) / (n_a + n_b)
    if n_a and n_b and 0 < pooled < 1:
        z = (x_b / n_b - x_a / n_a) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
        assert comparison.z == pytest.approx(z)
        assert comparison.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    else:
        assert comparison.z is None and comparison.p_value is None
    assert found.nps is None

    overview = await stack.store.overview([journey], everything)
    assert overview.journeys == [found.figures]


def opened(at: datetime, machine: bool) -> JourneyEvent:
    return JourneyEvent(kind="opened", step="offer", occurred_at=at, data={"machine": machine})


async def entries(store: ContactStore) -> list[Any]:
    def read() -> list[Any]:
        with store.engine.connect() as conn:
            return list(conn.execute(journey_entries.select()))

    return await asyncio.to_thread(read)


async def drawn(store: ContactStore) -> dict[str, str]:
    """The A/B variant each contact's run drew, as the store recorded it."""
    query = (
        select(journey_entries.c.contact_id, journey_visits.c.variant)
        .join_from(
            journey_visits, journey_entries, journey_visits.c.entry_id == journey_entries.c.entry_id
        )
        .where(journey_visits.c.step_id == "offer")
    )

    def read() -> dict[str, str]:
        with store.engine.connect() as conn:
            return {c: v for c, v in conn.execute(query)}

    return await asyncio.to_thread(read)


AB_ONLY = [SCRIPTED[0], {"id": "bye", "kind": "end"}]
ENTERED = datetime(2026, 11, 2, 9, tzinfo=UTC)


async def record_entries(
    store: ContactStore, journey: JourneySpec, arms: dict[str, tuple[int, int]]
) -> None:
    """Per variant `(entries, converted)`: that many entries recorded by their runs' path
    records, drawn into it at 'offer', the first `converted` of them buying within the goal's
    window (a day after entering) and the others after it (20 days)."""
    paths, purchases = [], []
    for name, (count, converted) in arms.items():
        for i in range(count):
            contact_id = f"{name}-{i}"
            at = ENTERED + timedelta(minutes=i)
            paths.append(
                PathRecord(
                    entry_id=f"run-{contact_id}",
                    workflow_id=f"journey:{journey.id}:{contact_id}",
                    journey_id=journey.id,
                    version=1,
                    contact_id=contact_id,
                    entered_at=at,
                    goal_until=at + timedelta(days=14),
                    visits=[
                        VisitRecord(
                            n=0, step="offer", entered_at=at, next_step="bye", variant=name
                        ),
                        VisitRecord(n=1, step="bye", entered_at=at),
                    ],
                    ended_at=at,
                    end_reason="end",
                )
            )
            bought = at + (timedelta(days=1) if i < converted else timedelta(days=20))
            purchases.append(
                {"contact_id": contact_id, "kind": "purchase", "occurred_at": bought, "data": {}}
            )
    for start in range(0, len(paths), 100):
        await asyncio.gather(*(store.record_path(p) for p in paths[start : start + 100]))
    await write(store, insert(events), purchases)


async def write(store: ContactStore, statement: Any, rows: list[dict[str, Any]]) -> None:
    def run_it() -> None:
        with store.engine.begin() as conn:
            conn.execute(statement, rows)

    await asyncio.to_thread(run_it)


@pytest.mark.parametrize(
    ("variant_converted", "z", "p", "winner"),
    [
        # p_a = 100/1000 = 0.1, p_b = 135/1000 = 0.135, pooled p = 235/2000 = 0.1175;
        # se = sqrt(p (1 - p) (1/1000 + 1/1000)) = sqrt(0.1175 * 0.8825 * 0.002) = 0.0144010;
        # z = (0.135 - 0.1) / 0.0144010 = 2.43039; two-sided p = 2 (1 - Phi(2.43039)) = 0.01508
        (135, 2.43039, 0.01508, "b"),
        # 110/1000: pooled 0.105, se = sqrt(0.105 * 0.895 * 0.002) = 0.0137095, z = 0.01 /
        # 0.0137095 = 0.72942, p = 2 (1 - Phi(0.72942)) = 0.46574: not below 0.05, no winner
        (110, 0.72942, 0.46574, None),
    ],
)
async def test_an_ab_test_is_a_pooled_two_proportion_z_test_and_names_a_winner_only_below_0_05(
    store: ContactStore, variant_converted: int, z: float, p: float, winner: str | None
) -> None:
    journey = spec(AB_ONLY, goal=GOAL)
    await record_entries(store, journey, {"a": (1000, 100), "b": (1000, variant_converted)})

    (test,) = (await store.journey_report(journey, EVERYTHING)).ab_tests

    assert (test.metric, test.test, test.confidence) == (
        "conversion",
        "two-proportion z-test",
        0.95,
    )
    assert [(v.name, v.entered, v.conversions) for v in test.variants] == [
        ("a", 1000, 100),
        ("b", 1000, variant_converted),
    ]
    assert [v.rate for v in test.variants] == [0.1, variant_converted / 1000]
    (comparison,) = test.comparisons
    assert (comparison.variant, comparison.against) == ("b", "a")
    assert comparison.difference == pytest.approx(variant_converted / 1000 - 0.1)
    assert comparison.z == pytest.approx(z, abs=1e-5)
    assert comparison.p_value == pytest.approx(p, abs=1e-5)
    assert comparison.significant is (winner is not None)
    assert test.winner == winner


async def test_nps_is_promoters_less_detractors_with_its_distribution_and_weekly_trend(
    store: ContactStore,
) -> None:
    journey = spec(AB_ONLY)
    monday = datetime(2026, 11, 2, 10, tzinfo=UTC)
    # Week 1: 10, 9, 8, 3 -> 2 promoters, 1 detractor of 4: 25.0. Week 2: 6, 0, 10 -> 1 - 2 of
    # 3: -33.3. Overall 3 promoters, 1 passive, 3 detractors of 7: 0.0. One before the period.
    scores = [(monday, 10), (monday, 9), (monday + timedelta(days=6), 8), (monday, 3)]
    scores += [(monday + timedelta(days=7), 6), (monday + timedelta(days=8), 0)]
    scores += [(monday + timedelta(days=13), 10), (monday - timedelta(days=1), 10)]
    sends = [
        {
            "key": f"k{i}", "workflow_id": f"w{i}", "journey_id": "test", "step_id": "offer",
            "contact_id": f"c{i}", "channel": "email", "template": "nps_survey",
            "status": "sent", "created_at": at, "updated_at": at,
        }
        for i, (at, _) in enumerate(scores)
    ]  # fmt: skip
    answers = [
        {
            "delivery_key": f"k{i}", "contact_id": f"c{i}", "journey_id": "test",
            "step_id": "offer", "score": score, "answered_at": at, "updated_at": at,
        }
        for i, (at, score) in enumerate(scores)
    ]  # fmt: skip
    await write(store, insert(deliveries), sends)
    await write(store, insert(nps_answers), answers)

    period = Period(since=monday.replace(hour=0), until=monday + timedelta(days=14))
    nps = (await store.journey_report(journey, period)).nps

    assert nps is not None
    assert (nps.answers, nps.promoters, nps.passives, nps.detractors) == (7, 3, 1, 3)
    assert nps.score == 0.0
    assert nps.distribution == [1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 2]
    assert [(w.week_of.isoformat(), w.answers, w.score) for w in nps.trend] == [
        ("2026-11-02", 4, 25.0),
        ("2026-11-09", 3, -33.3),
    ]


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite store and a library with the A/B journey, for `journeys report`; no Temporal
    listens at its address."""
    library = tmp_path / "library"
    shutil.copytree(LIBRARY_DIR, library)
    journey = {"id": "test", "version": 1, "description": "An A/B offer", "trigger": "manual"}
    (library / "test.yaml").write_text(
        yaml.safe_dump({**journey, "events": ["purchase"], "goal": GOAL, "steps": AB_ONLY}),
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'journeys.db'}"
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", url)
    monkeypatch.setenv("JOURNEYS_LIBRARY", str(library))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")
    monkeypatch.setenv("JOURNEYS_ENV", "dev")
    monkeypatch.setenv("COLUMNS", "250")
    return url


async def test_journeys_report_prints_what_the_store_reports(cli_store: str) -> None:
    store = await open_store(cli_store)
    try:
        journey = spec(AB_ONLY, goal=GOAL, description="An A/B offer", events=["purchase"])
        await record_entries(store, journey, {"a": (20, 2), "b": (20, 8)})

        as_json = await asyncio.to_thread(CliRunner().invoke, app, ["report", "test", "--json"])
        assert as_json.exit_code == 0, as_json.output
        shown = JourneyReport.model_validate_json(as_json.stdout)
        assert shown == await store.journey_report(journey, shown.period)
        assert shown.period.since is None and not shown.live

        overview = await asyncio.to_thread(
            CliRunner().invoke, app, ["report", "--json", "--since", "2026-11-01"]
        )
        assert overview.exit_code == 0, overview.output
        every = Overview.model_validate_json(overview.stdout)
        assert every.period.since == datetime(2026, 11, 1, tzinfo=UTC)
        assert {f.journey_id for f in every.journeys} >= {"test", "lead_nurturing"}
        (figures,) = [f for f in every.journeys if f.journey_id == "test"]
        assert figures == shown.figures
    finally:
        await store.close()

    text = await asyncio.to_thread(CliRunner().invoke, app, ["report", "test", "--since", "30d"])
    assert text.exit_code == 0, text.output
    # a: 2/20 = 10%, b: 8/20 = 40%; pooled 0.25, se = sqrt(0.25 * 0.75 * (2/20)) = 0.136931,
    # z = 0.3 / 0.136931 = 2.191, p = 2 (1 - Phi(2.191)) = 0.0285
    for line in (
        "entered 40: in it now 0, finished 40, exited early 0",
        "goal: purchase within 14d: 10 converted",
        "two-proportion z-test (two-sided), a winner needs p < 0.05",
        "winner: b",
        "no live counts of who waits where",
    ):
        assert line in text.output
    (row_b,) = [line for line in text.output.splitlines() if line.startswith("│ b ")]
    assert [cell.strip() for cell in row_b.split("│")[1:-1]] == [
        "b", "20", "0", "0", "0", "8", "40.0%", "+30.0 pts", "2.191", "0.0285",
    ]  # fmt: skip


async def test_journeys_draw_puts_the_reports_figures_on_the_drawing(
    cli_store: str, tmp_path: Path
) -> None:
    store = await open_store(cli_store)
    try:
        journey = spec(AB_ONLY, goal=GOAL, description="An A/B offer", events=["purchase"])
        await record_entries(store, journey, {"a": (20, 2), "b": (20, 8)})
    finally:
        await store.close()
    target = tmp_path / "test.svg"
    drawn = await asyncio.to_thread(
        CliRunner().invoke, app, ["draw", "test", "--svg", str(target), "--figures"]
    )
    assert drawn.exit_code == 0, drawn.output
    texts = [t.text for t in ElementTree.parse(target).iter("{http://www.w3.org/2000/svg}text")]
    assert "40 entered" in texts  # both steps: every entry went from the offer to the end
    assert "40 · 100%" in texts  # the offer's one way on
    # Without --svg there is nothing to put figures on.
    refused = CliRunner().invoke(app, ["draw", "test", "--figures"])
    assert refused.exit_code == 2 and "give --svg FILE" in refused.stderr


def test_journeys_report_refuses_an_unknown_journey_and_a_bad_since(cli_store: str) -> None:
    unknown = CliRunner().invoke(app, ["report", "lead_nurturin"])
    assert unknown.exit_code == 1
    assert "no journey 'lead_nurturin'" in unknown.stderr
    assert "did you mean 'lead_nurturing'?" in unknown.stderr

    bad = CliRunner().invoke(app, ["report", "--since", "last week"])
    assert bad.exit_code == 2
    assert "neither a day (2026-11-01) nor a time back from now (7d, 12h)" in bad.stderr


async def test_how_many_wait_at_each_step_comes_live_from_temporal(
    dev_temporal: WorkflowEnvironment,
    store: ContactStore,
    push_settings: Settings,
    mail_sink: MailSink,
    sms_sink: SmsSink,
    web_push_sink: WebPushSink,
    fcm_sink: FcmSink,
) -> None:
    """On the dev server, whose visibility answers counts (the time-skipping server's does
    not): three runs wait for the offer's open, one has left the journey."""
    journey = spec(SCRIPTED, id=f"live_{uuid.uuid4().hex[:8]}", exit_events=["unsubscribed"])
    async with running_stack(
        dev_temporal, store, push_settings, mail_sink, sms_sink, web_push_sink, fcm_sink
    ) as stack:
        client = stack.env.client
        contacts = [Contact(id=f"w{i}", email=f"w{i}@example.com") for i in range(4)]
        await store.upsert_contacts(contacts)
        for contact in contacts:
            await start_journey(client, journey, contact.id, stack.settings.task_queue)
        left = client.get_workflow_handle(workflow_id(journey.id, "w3"))
        await wait_at(left, "opened")
        now = datetime.now(UTC)
        await left.signal("event", JourneyEvent(kind="unsubscribed", occurred_at=now))
        await left.result()
        try:
            async with asyncio.timeout(15):
                while True:
                    stored = await store.journey_report(journey, EVERYTHING)
                    found = await with_waiting(client, journey, stored)
                    waiting = {s.step_id: s.waiting for s in found.steps}
                    if waiting["opened"] == 3 and stored.figures.active == 3:
                        break
                    await asyncio.sleep(0.2)
        finally:
            for contact in contacts[:3]:
                await client.get_workflow_handle(workflow_id(journey.id, contact.id)).terminate()
    assert found.live and not stored.live
    # Only waits are indexed by step: a send, a branch or an end is passed through.
    assert waiting == dict.fromkeys(("offer", "phone", "nudge", "thanks", "bye"), None) | {
        "opened": 3
    }
    assert found.model_copy(update={"steps": stored.steps, "live": False}) == stored
