"""Work mail to a team member against a real SMTP server: one message per key through the
delivery ledger, without the marketing email's consent check, unsubscribe header or tracking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from temporalio.testing import ActivityEnvironment

from activities.email import Mailer, message_id
from activities.team_mail import TeamMailActivities
from devstack.sinks.mail import MailSink
from journeys.models import SendResult
from journeys.plans.notices import About, Notice, TeamMessage
from journeys.plans.people import Person
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from tests.channel_fixtures import CrashesOnceAfterSending

ANA = Person(id="ana", name="Ana Writer", email="ana@example.com", time_zone="America/New_York")
MAX = Person(id="max", name="Max Stake", email="max@example.com", time_zone="Europe/Warsaw")
PLAN = "plan:blog_post:p1"


def sent_back() -> TeamMessage:
    return TeamMessage(
        plan_id=PLAN,
        template="blog_post",
        task_title="Create blog post outline",
        due_at=datetime(2027, 1, 13, 22, tzinfo=UTC),
        about_title="Approve outline",
        notice=Notice(
            kind="sent_back",
            task="outline",
            round=2,
            person="ana",
            at=datetime(2027, 1, 11, 14, tzinfo=UTC),
            about=About(
                after_task="approve_outline",
                by="max",
                when=datetime(2027, 1, 11, 14, tzinfo=UTC),
                comment="Needs a case study.",
            ),
        ),
    )


class CrashesAfterSend(CrashesOnceAfterSending, TeamMailActivities):
    """The worker dies after the SMTP server accepted the message, before the ledger says so."""


@pytest.fixture
async def mailer(store: ContactStore, settings: Settings) -> AsyncIterator[Mailer]:
    await store.upsert_people([ANA, MAX])
    mailer = Mailer(settings.model_copy(update={"library_dir": LIBRARY_DIR}))
    yield mailer
    await mailer.close()


async def send(acts: TeamMailActivities, msg: TeamMessage) -> SendResult:
    result: SendResult = await ActivityEnvironment().run(acts.send_team_mail, msg)
    return result


async def test_work_mail_is_composed_for_its_person_and_recorded_in_the_ledger(
    store: ContactStore, mail_sink: MailSink, mailer: Mailer
) -> None:
    acts = TeamMailActivities(store, mailer.settings, mailer)
    msg = sent_back()
    assert (await send(acts, msg)).status == "sent"
    [message] = await mail_sink.wait_for(1)
    assert message["To"] == "ana@example.com"
    assert message["Message-ID"] == message_id(msg.key, mailer.settings.mail_from)
    assert message["Subject"] == "Sent back: Create blog post outline"
    text = message.get_body(("plain",))
    assert text is not None
    # Read as a person reads it, whatever the lines were wrapped at.
    body = " ".join(text.get_content().split())
    # On Ana's clock, in New York; the approver by name; the comment; her signed links.
    assert "Hello Ana Writer," in body and "Needs a case study." in body
    assert (
        'Max Stake sent "Create blog post outline" back on Monday 11 January 2027, 09:00 EST'
        in body
    )
    assert "due Wednesday 13 January 2027, 17:00 EST" in body
    assert "https://gateway.test/tasks/" in body and "/my-tasks/" in body
    # Work, not marketing: the footer's postal address, but no unsubscribe, no pixel, no tracked
    # links.
    assert mailer.settings.postal_address in body and "Unsubscribe" not in message.as_string()
    assert message["List-Unsubscribe"] is None
    assert "/t/o/" not in message.as_string() and "/t/c/" not in message.as_string()
    assert (message["X-Plan-Notice"], message["X-Plan-At"]) == (
        "sent_back",
        "2027-01-11T14:00:00+00:00",
    )
    [row] = await store.deliveries_of("ana")
    assert (row["key"], row["status"]) == (msg.key, "sent")
    assert (row["journey_id"], row["workflow_id"], row["step_id"]) == ("blog_post", PLAN, "outline")
    assert (await send(acts, msg)).status == "duplicate"
    assert len(mail_sink.messages) == 1


async def test_a_crash_after_the_server_took_it_resends_the_same_message(
    store: ContactStore, mail_sink: MailSink, mailer: Mailer
) -> None:
    acts = CrashesAfterSend(store, mailer.settings, mailer)
    msg = sent_back()
    with pytest.raises(ConnectionError):
        await send(acts, msg)
    assert (await send(acts, msg)).status == "sent"
    first, second = await mail_sink.wait_for(2)
    assert first["Message-ID"] == second["Message-ID"]
    [row] = await store.deliveries_of("ana")
    assert (row["status"], row["reconciled"]) == ("sent", "resent")


async def test_no_such_team_member_is_a_failed_send_without_a_message(
    store: ContactStore, mail_sink: MailSink, mailer: Mailer
) -> None:
    msg = sent_back()
    msg = msg.model_copy(update={"notice": msg.notice.model_copy(update={"person": "nobody"})})
    result = await send(TeamMailActivities(store, mailer.settings, mailer), msg)
    assert (result.status, result.reason) == ("failed", "no such team member")
    assert mail_sink.messages == []
