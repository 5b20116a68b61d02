"""Activities over the contact store: facts for branches, tags, audiences, local time, and who
on the team a task step about a contact goes to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_core import PydanticSerializationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from journeys.decisions import task_owner
from journeys.models import (
    CONTACT_UNREADABLE,
    AudienceChange,
    ContactFacts,
    FactsRequest,
    LocalTimeRequest,
    TagChange,
)
from journeys.plans.calendar import Offset
from journeys.store import ContactStore
from journeys.tasks import TaskAssignment, TaskRequest, assigned


def seconds_until(now: datetime, time_zone: str, at: str) -> float:
    """Seconds from `now` to the next `at` (HH:MM) on the wall clock of `time_zone`."""
    local_now = now.astimezone(ZoneInfo(time_zone))
    hour, minute = (int(x) for x in at.split(":"))
    target = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local_now:
        target = (target + timedelta(days=1)).replace(hour=hour, minute=minute)
    # In UTC: a difference of two times in one zone ignores a DST change between them.
    return (target.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def _unreadable(contact_id: str, why: object) -> ApplicationError:
    """The contact's stored data cannot be used: retrying cannot help, the run ends."""
    return ApplicationError(
        f"contact '{contact_id}' cannot be read: {why}", type=CONTACT_UNREADABLE, non_retryable=True
    )


class ContactActivities:
    def __init__(self, store: ContactStore) -> None:
        self.store = store

    @activity.defn
    async def load_contact_facts(self, request: FactsRequest | str) -> ContactFacts:
        # A bare contact id comes from runs scheduled before facts-for-conditions: every fact.
        if isinstance(request, str):
            contact_id, facts = request, await self.store.facts(request)
        else:
            contact_id = request.contact_id
            facts = await self.store.facts(contact_id, request.counts, request.at)
            facts = request.keep(facts)
        # Serialized here, not after returning: there a failure is retried for ever.
        try:
            facts.model_dump_json()
        except PydanticSerializationError as e:
            raise _unreadable(contact_id, e) from None
        return facts

    @activity.defn
    async def change_tags(self, change: TagChange) -> None:
        await self.store.change_tags(change.contact_id, change.add, change.remove)

    @activity.defn
    async def change_audience(self, change: AudienceChange) -> None:
        await self.store.change_audience(change.contact_id, change.audience, change.action == "add")

    @activity.defn
    async def seconds_until_local_time(self, req: LocalTimeRequest) -> float:
        facts = await self.store.facts(req.contact_id)
        try:
            return seconds_until(req.now, facts.time_zone, req.at)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise _unreadable(req.contact_id, f"time zone '{facts.time_zone}': {e}") from None

    @activity.defn
    async def assign_task(self, req: TaskRequest) -> TaskAssignment:
        """The team member a task step goes to, and when it is due on their clock; no owner,
        with the reason, when nobody can be given it (returned, not raised: retrying would not
        make one, the step goes on `unassigned`). Ids and dates only: the reason never repeats
        what the contact's attribute holds."""
        if req.role is not None:
            members = [p.id for p in await self.store.team_members() if req.role in p.roles]
            owner = task_owner(members, req.contact_id)
            if owner is None:
                return TaskAssignment(reason=f"nobody on the team has the role '{req.role}'")
        else:
            contact = await self.store.get_contact(req.contact_id)
            value = contact.attributes.get(req.owner_attribute or "") if contact else None
            if not isinstance(value, str) or not value:
                return TaskAssignment(
                    reason=f"the contact has no team member id in '{req.owner_attribute}'"
                )
            owner = value
        person = await self.store.person(owner)
        if person is None:  # an attribute's id, or a member gone since the role was read
            return TaskAssignment(reason="the task's owner is nobody on the team")
        return assigned(person.id, person.working_time(), Offset.parse(req.due), req.now)
