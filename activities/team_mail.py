"""Work mail to team members: a plan's notifications (a task assigned or handed on, a reminder,
a follow-up, an escalation to the manager, work sent back), by email, exactly once per key.

The delivery ledger and the SMTP side are the marketing email's own (`deliver_once`, `Mailer`),
but this is not marketing: no consent check, no unsubscribe header, no tracking. The ledger row
names the person (contact_id), the plan template (journey_id), the run (workflow_id) and the
task (step_id). Names and addresses are read here from the store and never leave this activity.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from temporalio import activity

from activities.deliveries import ChannelActivities, HandOver, Outcome, refuse
from activities.email import Mailer
from journeys.models import SendRequest, SendResult
from journeys.plans.notices import TeamMessage
from journeys.plans.people import Person
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.templates import load_template
from journeys.tokens import task_links

# The email template of each kind of notification: `plan_<kind>` in the library's email folder.
TEMPLATE_PREFIX = "plan_"


def _local(when: datetime, person: Person) -> str:
    """A moment as `person` reads it: on their own clock, with the zone named."""
    return when.astimezone(ZoneInfo(person.time_zone)).strftime("%A %d %B %Y, %H:%M %Z")


class TeamMailActivities(ChannelActivities):
    def __init__(self, store: ContactStore, settings: Settings, mailer: Mailer) -> None:
        super().__init__(store, settings)
        self.mailer = mailer

    @activity.defn
    async def send_team_mail(self, msg: TeamMessage) -> SendResult:
        """Mail one notification to its person, exactly once per `msg.key`."""
        notice = msg.notice
        req = SendRequest(
            key=msg.key,
            workflow_id=msg.plan_id,
            journey_id=msg.template,
            step_id=notice.task,
            contact_id=notice.person,
            channel="email",
            template=f"{TEMPLATE_PREFIX}{notice.kind}",
        )
        person = await self.store.person(notice.person)
        if person is None or person.email is None:
            return await refuse(self.store, req, "no such team member")

        async def attempt(hand_over: HandOver) -> Outcome:
            assert person is not None and person.email is not None  # checked above
            message = await self._compose(req, msg, person, person.email)
            return await self.mailer.send(message, person.email, hand_over)

        return await self.deliver_once(req, person.email, attempt, self.mailer.outcome)

    async def _compose(
        self, req: SendRequest, msg: TeamMessage, person: Person, to: str
    ) -> EmailMessage:
        notice = msg.notice
        about: dict[str, Any] = {}
        if notice.about is not None:
            by = await self.store.person(notice.about.by) if notice.about.by else None
            about = {
                "title": msg.about_title,
                "by": by.name if by else notice.about.by,
                "when": _local(notice.about.when, person) if notice.about.when else None,
                "comment": notice.about.comment,
            }
        context = {
            "person": {"id": person.id, "name": person.name},
            "plan": {"id": msg.plan_id, "template": msg.template},
            "task": {"id": notice.task, "title": msg.task_title, "due": _local(msg.due_at, person)},
            "about": about,
            "links": task_links(self.settings, msg.plan_id, notice.task, person.id),
        }
        template = load_template(self.settings.library_dir, "email", req.template)
        # The layout's footer without an unsubscribe link: this is work, not marketing.
        parts = template.render_email(context, self.mailer.brand, unsubscribe=None)
        message = self.mailer.message(req.key, to, parts["subject"])
        message["X-Plan-Id"] = msg.plan_id
        message["X-Plan-Task"] = notice.task
        message["X-Plan-Notice"] = notice.kind
        # The moment on the plan's clock the notification is for (a test's skipped time, a
        # demo's sped-up time): the Date header is when it left.
        message["X-Plan-At"] = notice.at.isoformat()
        message.set_content(parts["text"])
        message.add_alternative(parts["html"], subtype="html")
        return message
