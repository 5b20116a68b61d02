"""The notifications of a plan run: what the plan workflow decides to tell whom, and when, and
what it hands the activity that mails it (ids only: names and addresses stay in the store)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

# assigned: a task is yours now; reminder: it is due soon; follow_up: it is late; escalation:
# (to the manager) it is late `escalate_after` working days; handoff: the work before yours is
# done, yours starts; sent_back: an approver sent your work back, with their comment.
NoticeKind = Literal["assigned", "reminder", "follow_up", "escalation", "handoff", "sent_back"]


class About(BaseModel):
    """What a notification tells of another task: the one finished before (handoff), the
    approval that sent the work back (sent_back) or the late owner (escalation)."""

    after_task: str | None = None
    by: str | None = None
    when: datetime | None = None
    comment: str | None = None


class Notice(BaseModel):
    kind: NoticeKind
    task: str
    # How many times the task has become someone's: a task done again is reminded again.
    round: int
    # Which of the task's reminders, the day of a follow-up (20270111), 0 for the rest.
    index: int = 0
    person: str
    # The moment (plan time) it is for.
    at: datetime
    about: About | None = None

    def key(self, plan_id: str) -> str:
        """The delivery ledger's key: the same notification is the same key, whatever moved."""
        return f"{plan_id}/{self.task}/{self.round}/{self.kind}/{self.index}/{self.person}"


class TeamMessage(BaseModel):
    """One notification as the mail activity takes it."""

    plan_id: str
    template: str
    task_title: str
    due_at: datetime
    # The title of `notice.about.after_task`, if it names one.
    about_title: str | None = None
    notice: Notice

    @property
    def key(self) -> str:
        return self.notice.key(self.plan_id)
