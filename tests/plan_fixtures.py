"""Plan runs in tests: the team, a worker on the time-skipping server with the real store and
SMTP sink, and how a test reads what arrived (`Plans`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.embedded import test_server_path
from devstack.sinks.mail import MailSink
from journeys.identity import register_search_attributes
from journeys.plans.library import load_plans
from journeys.plans.people import Person
from journeys.plans.spec import PlanSpec
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from tests.temporal_fixtures import CONVERTER
from workers.worker import journey_worker
from workflows.plan_runs import start_plan

BLOG = load_plans(LIBRARY_DIR)["blog_post"]
WARSAW, NEW_YORK = "Europe/Warsaw", "America/New_York"
TEAM = [
    Person(id="cleo", name="Cleo Strat", email="cleo@example.com", time_zone=WARSAW),
    Person(id="sam", name="Sam Seo", email="sam@example.com", time_zone=WARSAW),
    Person(id="ana", name="Ana Writer", email="ana@example.com", time_zone=NEW_YORK),
    Person(id="max", name="Max Stake", email="max@example.com", time_zone=WARSAW),
    Person(id="gia", name="Gia Design", email="gia@example.com", time_zone=WARSAW),
    Person(id="sol", name="Sol Social", email="sol@example.com", time_zone=WARSAW),
    Person(id="mia", name="Mia Manager", email="mia@example.com", time_zone=WARSAW),
    Person(id="ola", name="Ola Other", email="ola@example.com", time_zone=WARSAW),
]
ROLES = {
    "content_strategist": "cleo",
    "seo_strategist": "sam",
    "blog_writer": "ana",
    "marketing_stakeholder": "max",
    "graphic_designer": "gia",
    "social_media_manager": "sol",
}


@dataclass(frozen=True)
class Mail:
    to: str
    kind: str
    task: str
    at: datetime
    subject: str
    body: str


@dataclass
class Plans:
    env: WorkflowEnvironment
    store: ContactStore
    settings: Settings
    mail: MailSink

    async def start(
        self, spec: PlanSpec, target: date, roles: dict[str, str], speed: float = 1.0
    ) -> str:
        handle = await start_plan(
            self.env.client,
            spec,
            f"p{uuid.uuid4().hex[:8]}",
            target,
            roles,
            "mia",
            speed,
            self.settings.task_queue,
            store=self.store,
        )
        return handle.id

    def mails(self) -> list[Mail]:
        found = []
        for m in self.mail.messages:
            body = m.get_body(("plain",))
            found.append(
                Mail(
                    to=str(m["To"]).split("@")[0],
                    kind=str(m["X-Plan-Notice"]),
                    task=str(m["X-Plan-Task"]),
                    at=datetime.fromisoformat(str(m["X-Plan-At"])),
                    subject=str(m["Subject"]),
                    body=body.get_content() if body else "",
                )
            )
        return found

    async def now(self) -> datetime:
        return (await self.env.get_current_time()).astimezone(UTC)

    async def until(self, moment: datetime) -> None:
        """Let plan time pass up to `moment`, and the worker send what falls due by then."""
        now = await self.now()
        if moment > now:
            await self.env.sleep(moment - now)
        await self.settle()

    async def settle(self) -> None:
        """Wait (wall-clock) until the mail that is due has left: the sink stops growing."""
        seen = -1
        while seen != len(self.mail.messages):
            seen = len(self.mail.messages)
            try:
                await self.mail.wait_for(seen + 1, timeout=1.0)
            except TimeoutError:
                pass


@asynccontextmanager
async def plan_stack(
    env: WorkflowEnvironment, store: ContactStore, settings: Settings, mail: MailSink
) -> AsyncIterator[Plans]:
    """The team in the store and a worker on its own task queue, running the project's library."""
    await store.upsert_people(TEAM)
    settings = settings.model_copy(
        update={"library_dir": LIBRARY_DIR, "task_queue": f"test-{uuid.uuid4().hex[:8]}"}
    )
    async with journey_worker(env.client, store, settings):
        yield Plans(env, store, settings, mail)


@pytest.fixture
async def plans(
    store: ContactStore, settings: Settings, mail_sink: MailSink
) -> AsyncIterator[Plans]:
    # A time-skipping server of its own: a plan's dates are days and weeks from now, and the
    # session's server has skipped however far the tests before it took it.
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=CONVERTER
    )
    try:
        await register_search_attributes(env.client, "default")
        async with plan_stack(env, store, settings, mail_sink) as plans:
            yield plans
    finally:
        await env.shutdown()


def local(day: date, hour: int, zone: str) -> datetime:
    return datetime.combine(day, time(hour), ZoneInfo(zone)).astimezone(UTC)


def next_weekday(after: date, weekday: int) -> date:
    """The first `weekday` (Monday 0) at least a week after `after`."""
    day = after + timedelta(days=7)
    return day + timedelta(days=(weekday - day.weekday()) % 7)
