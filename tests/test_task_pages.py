"""The pages a team member reaches from plan notifications, over real HTTP against the store's
record of plan runs: a task's page (and its form, in a headless browser), their open tasks, their
calendar feed, and every bad link a clear 4xx that changes nothing.

The plan workflow is not on this branch: the success and refusal paths of a POST replace
`change_plan` with `PlanWorkflowStandIn`, which answers as the workflow's updates will (the plan
after the change, or `Refused`). Once the workflow lands, start a plan run for `PLAN_ID` instead
and drop the stand-in; the not-found path already goes to Temporal.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from icalendar import Calendar
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from gateway import task_pages
from gateway.deps import Gateway
from journeys.plans.changes import Approve, Complete, PlanChange, Reject
from journeys.plans.library import load_plans
from journeys.plans.people import Person
from journeys.plans.records import PlanRecord, TaskRecord, plan_workflow_id
from journeys.plans.state import Refused
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from journeys.tokens import (
    CALENDAR,
    MY_TASKS,
    TASK,
    PersonClaims,
    TaskClaims,
    make_token,
    person_links,
    task_links,
)
from tests.api_fixtures import serving
from tests.browser import Page, headless_chromium, outside
from tests.gateway_fixtures import altered, signed_ago

NOW = datetime.now(UTC).replace(microsecond=0)
PLAN_ID = plan_workflow_id("sales_call", "week-48")

# A template with outcomes and an approval, beside the project's own plans.
SALES_CALL = """\
id: sales_call
version: 1
description: A call to a lead, and the manager's sign-off
roles:
  caller: Caller
  manager: Manager
tasks:
  - id: prepare
    title: Prepare the call
    owner: caller
    due: -2d
  - id: call
    title: Call the lead
    owner: caller
    due: -1d
    after: [prepare]
    outcomes: [reached, no_answer, not_interested]
  - id: sign_off
    title: Sign off the call notes
    kind: approval
    approvers: [manager]
    due: 0d
    after: [call]
"""

ANA = Person(id="ana", name="Ana Nowak", email="ana@example.com", time_zone="Europe/Warsaw")
MIA = Person(id="mia", name="Mia Manager", email="mia@example.com", time_zone="America/New_York")


def _task(task_id: str, title: str, people: list[str], status: str, due: datetime) -> TaskRecord:
    return TaskRecord(
        task_id=task_id,
        title=title,
        kind="approval" if task_id == "sign_off" else "task",
        people=people,
        status=status,  # type: ignore[arg-type]
        due_at=due,
        activated_at=NOW - timedelta(days=3) if status != "waiting" else None,
        rounds=0 if status == "waiting" else 1,
        done_at=NOW - timedelta(days=2) if status == "done" else None,
        done_by=people[0] if status == "done" else None,
    )


# Prepared by Ana, her call is open (due in a day), Mia signs off after it.
SALES_PLAN = PlanRecord(
    plan_id=PLAN_ID,
    template="sales_call",
    version=1,
    instance="week-48",
    target=(NOW + timedelta(days=2)).date(),
    manager="mia",
    started_at=NOW - timedelta(days=5),
    tasks=[
        _task("prepare", "Prepare the call", ["ana"], "done", NOW - timedelta(days=2)),
        _task(
            "call",
            "Call the lead, with a very long title; commas, too",
            ["ana"],
            "active",
            datetime(2030, 1, 4, 16, 0, tzinfo=UTC),
        ),
        _task("sign_off", "Sign off the call notes", ["mia"], "waiting", NOW + timedelta(days=2)),
    ],
)


def _overdue_plan() -> PlanRecord:
    """A blog post whose outline is Ana's and overdue: due sooner than the call."""
    return PlanRecord(
        plan_id=plan_workflow_id("blog_post", "launch"),
        template="blog_post",
        version=1,
        instance="launch",
        target=(NOW + timedelta(days=20)).date(),
        manager="mia",
        started_at=NOW - timedelta(days=10),
        tasks=[
            _task("keyword_research", "Do keyword research", ["mia"], "done", NOW),
            _task(
                "outline", "Create blog post outline", ["ana"], "active", NOW - timedelta(hours=3)
            ),
            _task(
                "approve_outline", "Approve outline", ["mia"], "waiting", NOW + timedelta(days=5)
            ),
        ],
    )


@dataclass
class PlanWorkflowStandIn:
    """What `change_plan` would answer, and the changes it was asked for."""

    answer: PlanRecord | Refused
    asked: list[tuple[str, PlanChange]] = field(default_factory=list)

    async def __call__(self, _client: Client, plan_id: str, change: PlanChange) -> PlanRecord:
        self.asked.append((plan_id, change))
        if isinstance(self.answer, Refused):
            raise self.answer
        return self.answer


@dataclass
class Pages:
    http: httpx.AsyncClient
    settings: Settings
    store: ContactStore

    def links(self, task_id: str = "call", person_id: str = "ana") -> dict[str, str]:
        return task_links(self.settings, PLAN_ID, task_id, person_id)

    def path(self, task_id: str = "call", person_id: str = "ana", link: str = "task") -> str:
        return urlsplit(self.links(task_id, person_id)[link]).path


@pytest.fixture
async def pages(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> AsyncIterator[Pages]:
    plans = settings.library_dir / "plans"
    shutil.copytree(LIBRARY_DIR / "plans", plans, dirs_exist_ok=True)
    (plans / "sales_call.yaml").write_text(SALES_CALL, encoding="utf-8")
    await store.upsert_people([ANA, MIA])
    await store.record_plan(SALES_PLAN)
    await store.record_plan(_overdue_plan())
    gw = Gateway(
        settings, store, dev_temporal.client, library={}, plans=load_plans(settings.library_dir)
    )
    async with serving(gw) as http:
        yield Pages(http, settings, store)


async def test_the_task_page_shows_the_task_on_the_persons_clock_with_its_buttons(
    pages: Pages,
) -> None:
    answer = await pages.http.get(pages.path())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["referrer-policy"] == "no-referrer"
    html = answer.text
    assert "Call the lead, with a very long title; commas, too" in html
    assert "A call to a lead, and the manager&#x27;s sign-off" in html
    # 16:00 UTC in January is 17:00 in Warsaw.
    assert "Fri 04 Jan 2030, 17:00" in html and "Europe/Warsaw" in html
    assert "Active: waiting for Ana Nowak." in html
    # Before it: prepared by Ana; after it: Mia's sign-off.
    assert "Prepare the call: done by Ana Nowak" in html
    assert "Sign off the call notes: Mia Manager, due" in html
    assert '<select id="outcome" name="outcome" required>' in html
    assert '<option value="no_answer">no_answer</option>' in html
    assert 'value="done">Done</button>' in html
    assert "Approve" not in html


async def test_an_approval_offers_approve_and_reject_with_a_required_comment(
    pages: Pages,
) -> None:
    plan = SALES_PLAN.model_copy(deep=True)
    plan.tasks[1].status, plan.tasks[2].status = "done", "active"
    await pages.store.record_plan(plan)
    html = (await pages.http.get(pages.path("sign_off", "mia"))).text
    assert 'value="approve">Approve</button>' in html
    assert '<textarea id="comment" name="comment" required maxlength="2000">' in html
    assert 'value="reject">Reject</button>' in html
    # Times on Mia's own clock.
    assert "America/New_York" in html


async def test_a_finished_or_waiting_task_shows_its_state_without_buttons(pages: Pages) -> None:
    done = (await pages.http.get(pages.path("prepare"))).text
    assert "Done by Ana Nowak on" in done and "<button" not in done
    waiting = (await pages.http.get(pages.path("sign_off", "mia"))).text
    assert "Not active yet" in waiting and "<button" not in waiting
    # Someone the task is not for (any more) sees it without buttons too.
    theirs = (await pages.http.get(pages.path("call", "mia"))).text
    assert "Active: waiting for Ana Nowak." in theirs and "<button" in theirs  # the manager may
    stranger = (await pages.http.get(pages.path("call", "zoe"))).text
    assert "<button" not in stranger


async def test_a_plan_of_a_template_version_the_library_no_longer_has_goes_by_its_record(
    pages: Pages,
) -> None:
    await pages.store.record_plan(SALES_PLAN.model_copy(update={"version": 2}))
    html = (await pages.http.get(pages.path())).text
    # No outcomes to offer (the workflow still checks them); neighbours in the record's order.
    assert "<select" not in html and 'value="done">Done</button>' in html
    assert "Prepare the call: done by Ana Nowak" in html
    assert "Sign off the call notes: Mia Manager, due" in html
    assert "sales_call" in html


async def test_done_sends_the_change_by_the_links_person_and_shows_the_plan_it_answers(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    after = SALES_PLAN.model_copy(deep=True)
    after.tasks[1] = after.tasks[1].model_copy(
        update={"status": "done", "done_at": NOW, "done_by": "ana", "outcome": "reached"}
    )
    workflow = PlanWorkflowStandIn(after)
    monkeypatch.setattr(task_pages, "change_plan", workflow)

    answer = await pages.http.post(pages.path(), data={"action": "done", "outcome": "reached"})
    assert answer.status_code == 200
    assert workflow.asked == [(PLAN_ID, Complete(task="call", by="ana", outcome="reached"))]
    assert "Done by Ana Nowak on" in answer.text and "(reached)" in answer.text
    assert "<button" not in answer.text


async def test_approve_and_reject_go_to_the_plan_as_the_links_person(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = PlanWorkflowStandIn(SALES_PLAN)
    monkeypatch.setattr(task_pages, "change_plan", workflow)
    path = pages.path("sign_off", "mia")
    assert (await pages.http.post(path, data={"action": "approve"})).status_code == 200
    answer = await pages.http.post(path, data={"action": "reject", "comment": " Too short. "})
    assert answer.status_code == 200
    assert workflow.asked == [
        (PLAN_ID, Approve(task="sign_off", by="mia")),
        (PLAN_ID, Reject(task="sign_off", by="mia", comment="Too short.")),
    ]


async def test_a_form_the_plan_could_not_take_comes_back_with_what_to_fix(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = PlanWorkflowStandIn(SALES_PLAN)
    monkeypatch.setattr(task_pages, "change_plan", workflow)
    no_comment = await pages.http.post(
        pages.path("sign_off", "mia"), data={"action": "reject", "comment": "  "}
    )
    assert no_comment.status_code == 422 and "Say what should change" in no_comment.text
    no_outcome = await pages.http.post(pages.path(), data={"action": "done"})
    assert no_outcome.status_code == 422
    assert "Choose what came of it: reached, no_answer, not_interested." in no_outcome.text
    unknown = await pages.http.post(pages.path(), data={"action": "done", "outcome": "maybe"})
    assert unknown.status_code == 422
    # A JSON body is not a form: it names no action.
    as_json = await pages.http.post(pages.path(), json={"action": "done", "outcome": "reached"})
    assert as_json.status_code == 422 and "Choose Done, Approve or Reject." in as_json.text
    assert workflow.asked == []


async def test_a_refusal_shows_its_reason_with_409(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = "'call' is done already"
    monkeypatch.setattr(task_pages, "change_plan", PlanWorkflowStandIn(Refused(reason)))
    answer = await pages.http.post(pages.path(), data={"action": "done", "outcome": "reached"})
    assert answer.status_code == 409
    assert '<p class="error" role="alert">&#x27;call&#x27; is done already</p>' in answer.text


async def test_a_plan_nobody_runs_is_404_from_temporal_and_from_the_store(pages: Pages) -> None:
    # No plan workflow under PLAN_ID on this Temporal: change_plan's PlanNotFound.
    answer = await pages.http.post(pages.path(), data={"action": "done", "outcome": "reached"})
    assert answer.status_code == 404 and "This plan is not known" in answer.text
    gone = task_links(pages.settings, plan_workflow_id("sales_call", "gone"), "call", "ana")
    assert (await pages.http.get(urlsplit(gone["task"]).path)).status_code == 404
    assert (await pages.http.get(pages.path("no_such_task"))).status_code == 404


async def test_bad_task_links_are_400_and_change_nothing(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = PlanWorkflowStandIn(SALES_PLAN)
    monkeypatch.setattr(task_pages, "change_plan", workflow)
    secret = pages.settings.secret_key.get_secret_value()
    claims = TaskClaims(plan_id=PLAN_ID, task_id="call", person_id="ana").model_dump()
    person = PersonClaims(person_id="ana").model_dump()
    token = pages.path().rsplit("/", 1)[1]
    my_tasks = pages.path(link="my_tasks").rsplit("/", 1)[1]
    calendar = pages.path(link="calendar").rsplit("/", 1)[1].removesuffix(".ics")
    bad = {
        "forged": make_token("not-our-secret", TASK, claims),
        "altered": altered(token),
        "expired": signed_ago(secret, TASK, claims, 181 * 24 * 3600),
        # A my-tasks or calendar token is not a task link, nor the other way round.
        "my_tasks token": my_tasks,
        "calendar token": calendar,
        "person claims as task": make_token(secret, TASK, person),
    }
    for why, bad_token in bad.items():
        for answer in (
            await pages.http.get(f"/tasks/{bad_token}"),
            await pages.http.post(f"/tasks/{bad_token}", data={"action": "done"}),
        ):
            assert answer.status_code == 400, why
            assert "This link does not work" in answer.text
    for path in (f"/my-tasks/{token}", f"/my-tasks/{calendar}", f"/calendar/{my_tasks}.ics"):
        assert (await pages.http.get(path)).status_code == 400, path
    expired = signed_ago(secret, CALENDAR, person, 366 * 24 * 3600)
    assert (await pages.http.get(f"/calendar/{expired}.ics")).status_code == 400
    expired = signed_ago(secret, MY_TASKS, person, 366 * 24 * 3600)
    assert (await pages.http.get(f"/my-tasks/{expired}")).status_code == 400
    assert workflow.asked == []


async def test_my_tasks_lists_open_tasks_soonest_first_with_overdue_marked(pages: Pages) -> None:
    answer = await pages.http.get(pages.path(link="my_tasks"))
    assert answer.status_code == 200
    html = answer.text
    outline, call = html.index("Create blog post outline"), html.index("Call the lead")
    assert outline < call
    assert html.count("Overdue") == 1 and html.index("Overdue") < call
    assert '<li class="overdue">' in html and '<li class="open">' in html
    # Who works before and after her, and a link to each task's page for her.
    assert "before: Mia Manager; after: Mia Manager" in html
    assert "before: Ana Nowak; after: Mia Manager" in html
    for task_id, plan_id in (
        ("call", PLAN_ID),
        ("outline", plan_workflow_id("blog_post", "launch")),
    ):
        link = task_links(pages.settings, plan_id, task_id, "ana")["task"]
        assert f'href="{link}"' in html
    assert "Fri 04 Jan 2030, 17:00" in html
    # The finished and the waiting tasks are not hers to do now.
    assert "Prepare the call" not in html and "Approve outline" not in html
    empty = await pages.http.get(urlsplit(person_links(pages.settings, "zoe")["my_tasks"]).path)
    assert "Nothing is waiting for you." in empty.text


async def test_the_calendar_feed_has_one_event_per_open_task(pages: Pages) -> None:
    answer = await pages.http.get(pages.path(link="calendar"))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    raw = answer.content
    # RFC 5545: CRLF line ends, lines folded at 75 octets.
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and all(b"\n" not in line for line in lines)
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines), "the long URLs are folded"

    feed = Calendar.from_ical(raw)
    assert str(feed["version"]) == "2.0" and str(feed["prodid"])
    events = {str(e["uid"]): e for e in feed.walk("VEVENT")}
    host = urlsplit(pages.settings.gateway_url).hostname
    outline_uid = f"{plan_workflow_id('blog_post', 'launch')}.outline@{host}"
    call_uid = f"{PLAN_ID}.call@{host}"
    assert list(events) == [outline_uid, call_uid]
    call = events[call_uid]
    assert str(call["summary"]) == "Call the lead, with a very long title; commas, too"
    assert call.decoded("dtend") == datetime(2030, 1, 4, 16, 0, tzinfo=UTC)
    assert call.decoded("dtstart") == datetime(2030, 1, 4, 15, 30, tzinfo=UTC)
    assert call.decoded("dtstamp").tzinfo is not None
    assert str(call["url"]) == task_links(pages.settings, PLAN_ID, "call", "ana")["task"]
    # The text of the feed escapes the summary's commas and semicolons, and times are in UTC.
    unfolded = raw.replace(b"\r\n ", b"")
    assert b"SUMMARY:Call the lead\\, with a very long title\\; commas\\, too" in unfolded
    assert b"DTEND:20300104T160000Z" in unfolded


async def test_the_task_form_works_in_a_browser_offline(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    after = SALES_PLAN.model_copy(deep=True)
    after.tasks[1] = after.tasks[1].model_copy(
        update={"status": "done", "done_at": NOW, "done_by": "ana", "outcome": "no_answer"}
    )
    workflow = PlanWorkflowStandIn(after)
    monkeypatch.setattr(task_pages, "change_plan", workflow)
    base = str(pages.http.base_url).rstrip("/")
    async with headless_chromium() as page:
        await page.open(f"{base}{pages.path()}")
        await page.wait_for("document.querySelector('select#outcome')", 10)
        # The select is required: Done without an outcome does not post.
        assert await page.evaluate("document.querySelector('form').checkValidity()") is False
        await page.evaluate(
            "document.querySelector('select#outcome').value = 'no_answer';"
            "document.querySelector('button[value=done]').click()"
        )
        status = await page.wait_for(
            "(s => s && s.textContent.startsWith('Done by') ? s.textContent : null)"
            "(document.querySelector('.status'))",
            10,
        )
        assert "(no_answer)" in status
        _stayed_home(page, base)
    assert workflow.asked == [(PLAN_ID, Complete(task="call", by="ana", outcome="no_answer"))]


def _stayed_home(page: Page, base: str) -> None:
    assert [url for url in page.sent() if outside(url)] == []
    assert all(url.startswith(base) for url in page.sent() if url.startswith("http"))
    assert page.errors == []
