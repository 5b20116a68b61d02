"""The pages a team member reaches from plan notifications, over real HTTP: a task's page (and
its form, in a headless browser), their open tasks, their calendar feed, and every bad link a
clear 4xx that changes nothing.

The pages read the store's record of plan runs: the GET tests write records by hand where a
record is all they need. Every POST goes to a real plan run (`start_plan` on the dev server, a
worker on a task queue of the test's own, the real store and SMTP sink), and the tests check what
a person would: the page's answer, the store's record after the change and the mail it sent.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from icalendar import Calendar
from temporalio.testing import WorkflowEnvironment

from devstack.sinks.mail import MailSink
from gateway.deps import Gateway
from journeys.contacts import Contact
from journeys.plans.library import load_plans
from journeys.plans.people import Person
from journeys.plans.records import PlanRecord, TaskRecord, plan_workflow_id
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
    verify,
)
from tests.api_fixtures import serving
from tests.browser import Page, headless_chromium, outside
from tests.gateway_fixtures import altered, signed_ago
from workers.worker import journey_worker
from workflows.plan_runs import start_plan

NOW = datetime.now(UTC).replace(microsecond=0)
PLAN_ID = plan_workflow_id("sales_call", "week-48")

# A template with outcomes and an approval that needs two approvers, beside the project's own.
SALES_CALL = """\
id: sales_call
version: 1
description: A call to a lead, and the manager's sign-off
roles:
  caller: Caller
  manager: Manager
  coach: Coach
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
    approvers: [manager, coach]
    due: 0d
    after: [call]
"""

ANA = Person(id="ana", name="Ana Nowak", email="ana@example.com", time_zone="Europe/Warsaw")
MIA = Person(id="mia", name="Mia Manager", email="mia@example.com", time_zone="America/New_York")
OLA = Person(id="ola", name="Ola Coach", email="ola@example.com", time_zone="Europe/Warsaw")


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
        # As the run records them from SALES_CALL.
        outcomes=["reached", "no_answer", "not_interested"] if task_id == "call" else [],
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
class Pages:
    http: httpx.AsyncClient
    settings: Settings
    store: ContactStore
    gw: Gateway

    def links(
        self, task_id: str = "call", person_id: str = "ana", plan_id: str = PLAN_ID
    ) -> dict[str, str]:
        return task_links(self.settings, plan_id, task_id, person_id)

    def path(
        self,
        task_id: str = "call",
        person_id: str = "ana",
        link: str = "task",
        plan_id: str = PLAN_ID,
    ) -> str:
        return urlsplit(self.links(task_id, person_id, plan_id)[link]).path


@pytest.fixture
async def pages(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> AsyncIterator[Pages]:
    plans = settings.library_dir / "plans"
    shutil.copytree(LIBRARY_DIR / "plans", plans, dirs_exist_ok=True)
    (plans / "sales_call.yaml").write_text(SALES_CALL, encoding="utf-8")
    # The team's mail, as the library words it.
    for mail in (LIBRARY_DIR / "templates" / "email").glob("plan_*.yaml"):
        shutil.copy(mail, settings.library_dir / "templates" / "email" / mail.name)
    await store.upsert_people([ANA, MIA, OLA])
    await store.record_plan(SALES_PLAN)
    await store.record_plan(_overdue_plan())
    settings = settings.model_copy(update={"task_queue": f"pages-{uuid.uuid4().hex[:8]}"})
    gw = Gateway(
        settings, store, dev_temporal.client, library={}, plans=load_plans(settings.library_dir)
    )
    async with serving(gw) as http:
        yield Pages(http, settings, store, gw)


@dataclass
class SalesCall:
    """A real run of the sales_call template, and what a person checks of it."""

    pages: Pages
    plan_id: str
    mail: MailSink

    def path(self, task_id: str = "call", person_id: str = "ana") -> str:
        return self.pages.path(task_id, person_id, plan_id=self.plan_id)

    async def post(self, task_id: str, person_id: str, **form: str) -> httpx.Response:
        return await self.pages.http.post(self.path(task_id, person_id), data=form)

    async def record(self, check: Callable[[PlanRecord], bool] = lambda _: True) -> PlanRecord:
        """The store's record of the run once the workflow has written it (and `check` holds)."""
        for _ in range(200):
            found = await self.pages.store.plan(self.plan_id)
            if found is not None and check(found):
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"{self.plan_id} was not recorded as expected: {found}")

    async def task(
        self, task_id: str, check: Callable[[TaskRecord], bool] = lambda _: True
    ) -> TaskRecord:
        plan = await self.record(lambda p: check(next(t for t in p.tasks if t.task_id == task_id)))
        return next(t for t in plan.tasks if t.task_id == task_id)

    async def mails(self, count: int) -> list[tuple[str, str, str, str]]:
        """(to, notice kind, task, plain text) of every mail, once `count` have arrived."""
        await self.mail.wait_for(count)
        found = []
        for m in self.mail.messages:
            body = m.get_body(("plain",))
            found.append(
                (
                    str(m["To"]),
                    str(m["X-Plan-Notice"]),
                    str(m["X-Plan-Task"]),
                    body.get_content() if body else "",
                )
            )
        return found


@pytest.fixture
async def sales_call(
    pages: Pages, dev_temporal: WorkflowEnvironment, mail_sink: MailSink
) -> AsyncIterator[SalesCall]:
    """A sales call for Ana, signed off by Mia and Ola, on the template the gateway shows:
    started with `start_plan` and run by a worker on the dev server. Its target is weeks away,
    so no reminder falls due while a test runs: the only mail is what the changes send."""
    spec = pages.gw.plans["sales_call"]
    async with journey_worker(dev_temporal.client, pages.store, pages.settings):
        handle = await start_plan(
            dev_temporal.client,
            spec,
            f"t{uuid.uuid4().hex[:10]}",
            date.today() + timedelta(days=28),
            {"caller": "ana", "manager": "mia", "coach": "ola"},
            "mia",
            1.0,
            pages.settings.task_queue,
            store=pages.store,
        )
        run = SalesCall(pages, handle.id, mail_sink)
        await run.task("prepare", lambda t: t.status == "active")
        yield run


async def _prepared(run: SalesCall) -> None:
    """Ana finishes preparing, by her link: the call is hers now."""
    assert (await run.post("prepare", "ana", action="done")).status_code == 200
    await run.task("call", lambda t: t.status == "active")


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
    # The outcomes from the record; neighbours in the record's order.
    assert '<option value="no_answer">no_answer</option>' in html
    assert "Prepare the call: done by Ana Nowak" in html
    assert "Sign off the call notes: Mia Manager, due" in html
    assert "sales_call" in html


async def test_a_journeys_task_shows_whom_it_is_about_and_its_outcomes_from_its_record(
    pages: Pages,
) -> None:
    # A task step's plan: its template is made by the journey, not in the library.
    lead = Contact(id="c-lead", phone="+48601234567", attributes={"first_name": "Lena"})
    await pages.store.upsert_contacts([lead])
    call = SALES_PLAN.tasks[1].model_copy(update={"outcomes": ["reached", "no_answer"]})
    plan = SALES_PLAN.model_copy(
        update={"template": "cd_lead_followup__sales_call", "contact_id": lead.id, "tasks": [call]}
    )
    await pages.store.record_plan(plan)
    html = (await pages.http.get(pages.path())).text
    assert '<p class="contact">About: Lena, phone +48601234567</p>' in html
    assert '<option value="no_answer">no_answer</option>' in html
    # A team's own plan is about nobody.
    await pages.store.record_plan(SALES_PLAN)
    assert 'class="contact"' not in (await pages.http.get(pages.path())).text


async def test_done_with_an_outcome_hands_the_work_on_by_the_links_person(
    sales_call: SalesCall,
) -> None:
    run = sales_call
    await _prepared(run)
    answer = await run.post("call", "ana", action="done", outcome="reached")
    assert answer.status_code == 200
    assert "Done by Ana Nowak on" in answer.text and "(reached)" in answer.text
    assert "<button" not in answer.text

    call = await run.task("call", lambda t: t.status == "done")
    assert (call.done_by, call.outcome, call.rounds) == ("ana", "reached", 1)
    sign_off = await run.task("sign_off", lambda t: t.status == "active")
    assert sign_off.people == ["mia", "ola"] and sign_off.rounds == 1
    # Ana got the plan's first task and then the call; Mia and Ola the sign-off, told who
    # called.
    mails = await run.mails(4)
    assert sorted((to, kind, task) for to, kind, task, _ in mails) == [
        ("ana@example.com", "assigned", "prepare"),
        ("ana@example.com", "handoff", "call"),
        ("mia@example.com", "handoff", "sign_off"),
        ("ola@example.com", "handoff", "sign_off"),
    ]
    assert all("Ana Nowak" in text for _, _, task, text in mails if task == "sign_off")


async def test_reject_sends_the_work_back_with_the_comment_and_approvals_finish_the_plan(
    sales_call: SalesCall,
) -> None:
    run = sales_call
    await _prepared(run)
    await run.post("call", "ana", action="done", outcome="no_answer")
    await run.task("sign_off", lambda t: t.status == "active")

    answer = await run.post("sign_off", "mia", action="reject", comment=" Call them again. ")
    assert answer.status_code == 200
    assert "Not active yet" in answer.text and "<button" not in answer.text
    call = await run.task("call", lambda t: t.rounds == 2)
    assert (call.status, call.done_by, call.outcome) == ("active", None, "no_answer")
    assert (call.sent_back_by, call.sent_back_comment) == ("mia", "Call them again.")
    assert (await run.task("sign_off")).status == "waiting"
    sent_back = [m for m in await run.mails(5) if m[1] == "sent_back"]
    assert [(to, task) for to, _, task, _ in sent_back] == [("ana@example.com", "call")]
    assert "Call them again." in sent_back[0][3] and "Mia Manager" in sent_back[0][3]
    # Ana's page of the call says who sent it back and why, above her buttons.
    page = (await run.pages.http.get(run.path())).text
    assert "Sent back by Mia Manager:</p><blockquote>Call them again.</blockquote>" in page
    assert 'value="done">Done</button>' in page

    assert (await run.post("call", "ana", action="done", outcome="reached")).status_code == 200
    await run.task("sign_off", lambda t: t.status == "active" and t.rounds == 2)
    # Mia approves: the sign-off waits for Ola, and Mia has nothing left to do on it.
    answer = await run.post("sign_off", "mia", action="approve")
    assert answer.status_code == 200
    assert "Active: approved by Mia Manager; waiting for Ola Coach." in answer.text
    assert "<button" not in answer.text
    sign_off = await run.task("sign_off", lambda t: t.approved_by == ["mia"])
    assert (sign_off.status, sign_off.people) == ("active", ["mia", "ola"])
    mias = (await run.pages.http.get(run.pages.path(link="my_tasks", person_id="mia"))).text
    assert "Sign off the call notes" not in mias
    olas = (await run.pages.http.get(run.path("sign_off", "ola"))).text
    assert 'value="approve">Approve</button>' in olas
    assert "Sent back by" not in (await run.pages.http.get(run.path())).text  # done now

    answer = await run.post("sign_off", "ola", action="approve")
    assert answer.status_code == 200 and "Done by Ola Coach on" in answer.text
    plan = await run.record(lambda p: p.state == "finished")
    sign_off = plan.tasks[2]
    assert (sign_off.status, sign_off.done_by, sign_off.rounds) == ("done", "ola", 2)
    assert sign_off.approved_by == ["mia", "ola"]
    assert (plan.tasks[1].outcome, plan.tasks[1].rounds) == ("reached", 2)
    # Each approver was handed the sign-off twice; the approval that ends the plan tells nobody.
    mails = await run.mails(7)
    assert sorted((to, kind, task) for to, kind, task, _ in mails) == [
        ("ana@example.com", "assigned", "prepare"),
        ("ana@example.com", "handoff", "call"),
        ("ana@example.com", "sent_back", "call"),
        ("mia@example.com", "handoff", "sign_off"),
        ("mia@example.com", "handoff", "sign_off"),
        ("ola@example.com", "handoff", "sign_off"),
        ("ola@example.com", "handoff", "sign_off"),
    ]
    await asyncio.sleep(0.3)
    assert len(run.mail.messages) == 7


async def test_a_form_the_plan_could_not_take_comes_back_with_what_to_fix(
    sales_call: SalesCall,
) -> None:
    run = sales_call
    await _prepared(run)
    before = await run.record()
    no_outcome = await run.post("call", "ana", action="done")
    assert no_outcome.status_code == 422
    assert "Choose what came of it: reached, no_answer, not_interested." in no_outcome.text
    unknown = await run.post("call", "ana", action="done", outcome="maybe")
    assert unknown.status_code == 422
    # A JSON body is not a form: it names no action.
    as_json = await run.pages.http.post(run.path(), json={"action": "done", "outcome": "reached"})
    assert as_json.status_code == 422 and "Choose Done, Approve or Reject." in as_json.text
    assert (await run.record()).tasks == before.tasks
    assert len(await run.mails(2)) == 2

    await run.post("call", "ana", action="done", outcome="reached")
    await run.task("sign_off", lambda t: t.status == "active")
    no_comment = await run.post("sign_off", "mia", action="reject", comment="  ")
    assert no_comment.status_code == 422 and "Say what should change" in no_comment.text
    assert (await run.task("sign_off")).status == "active"
    assert (await run.task("call")).status == "done"
    assert len(await run.mails(4)) == 4


async def test_a_refusal_shows_its_reason_with_409(sales_call: SalesCall) -> None:
    run = sales_call
    await _prepared(run)
    await run.post("call", "ana", action="done", outcome="reached")
    again = await run.post("call", "ana", action="done", outcome="no_answer")
    assert again.status_code == 409
    assert '<p class="error" role="alert">&#x27;call&#x27; is done already</p>' in again.text
    # Ana is not an approver: the workflow refuses, whatever the page offered.
    not_hers = await run.post("sign_off", "ana", action="approve")
    assert not_hers.status_code == 409 and "ana is not an approver of" in not_hers.text
    plan = await run.record()
    assert plan.tasks[1].outcome == "reached" and plan.tasks[2].status == "active"
    assert len(await run.mails(4)) == 4


async def test_a_plan_nobody_runs_is_404_from_temporal_and_from_the_store(pages: Pages) -> None:
    # No plan workflow under PLAN_ID on this Temporal: change_plan's PlanNotFound.
    answer = await pages.http.post(pages.path(), data={"action": "done", "outcome": "reached"})
    assert answer.status_code == 404 and "This plan is not known" in answer.text
    gone = task_links(pages.settings, plan_workflow_id("sales_call", "gone"), "call", "ana")
    assert (await pages.http.get(urlsplit(gone["task"]).path)).status_code == 404
    assert (await pages.http.get(pages.path("no_such_task"))).status_code == 404


async def test_bad_task_links_are_400_and_change_nothing(sales_call: SalesCall) -> None:
    pages = sales_call.pages
    secret = pages.settings.secret_key.get_secret_value()
    # Each bad link names the running plan's open task, which a good one would finish.
    claims = TaskClaims(plan_id=sales_call.plan_id, task_id="prepare", person_id="ana").model_dump()
    person = PersonClaims(person_id="ana").model_dump()
    token = sales_call.path("prepare").rsplit("/", 1)[1]
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
    prepare = await sales_call.task("prepare")
    assert (prepare.status, prepare.done_by) == ("active", None)
    assert len(await sales_call.mails(1)) == 1


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
    # The task's signed link for its owner (signed as the feed was served: compared by claims,
    # since a second later the same link carries another time).
    base, _, token = str(call["url"]).rpartition("/")
    assert base == task_links(pages.settings, PLAN_ID, "call", "ana")["task"].rpartition("/")[0]
    claims = verify(pages.settings, TASK, token, TaskClaims)
    assert (claims.plan_id, claims.task_id, claims.person_id) == (PLAN_ID, "call", "ana")
    # The text of the feed escapes the summary's commas and semicolons, and times are in UTC.
    unfolded = raw.replace(b"\r\n ", b"")
    assert b"SUMMARY:Call the lead\\, with a very long title\\; commas\\, too" in unfolded
    assert b"DTEND:20300104T160000Z" in unfolded


async def test_the_task_form_works_in_a_browser_offline(sales_call: SalesCall) -> None:
    run = sales_call
    await _prepared(run)
    base = str(run.pages.http.base_url).rstrip("/")
    async with headless_chromium() as page:
        await page.open(f"{base}{run.path()}")
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
    call = await run.task("call", lambda t: t.status == "done")
    assert (call.done_by, call.outcome) == ("ana", "no_answer")


def _stayed_home(page: Page, base: str) -> None:
    assert [url for url in page.sent() if outside(url)] == []
    assert all(url.startswith(base) for url in page.sent() if url.startswith("http"))
    assert page.errors == []
