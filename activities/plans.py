"""Activities for plan runs: the clocks of the people a run names (which also says they are on
the team), the public holidays it counts with, and the run's record after every change."""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from journeys.plans.calendar import public_holidays
from journeys.plans.records import PlanRecord
from journeys.plans.run import UNKNOWN_PEOPLE, Clocks, Holidays, HolidaysRequest
from journeys.store import ContactStore


class PlanActivities:
    def __init__(self, store: ContactStore) -> None:
        self.store = store

    @activity.defn
    async def load_clocks(self, people: list[str]) -> Clocks:
        """Each person's time zone, working days and hours (nothing that names or reaches
        them: the result stays in the run's history). Fails for good when one is unknown."""
        found, missing = {}, []
        for person_id in people:
            person = await self.store.person(person_id)
            if person is None:
                missing.append(person_id)
            else:
                found[person_id] = person.working_time()
        if missing:
            raise ApplicationError(
                f"not members of the team: {', '.join(missing)}",
                type=UNKNOWN_PEOPLE,
                non_retryable=True,
            )
        return Clocks(clocks=found)

    @activity.defn
    async def load_holidays(self, request: HolidaysRequest) -> Holidays:
        """The public holidays of a calendar in the years asked for."""
        days_off = public_holidays(request.calendar)
        first = date(request.first_year, 1, 1)
        count = (date(request.last_year, 12, 31) - first).days + 1
        days = (first + timedelta(days=n) for n in range(count))
        return Holidays(days=[d for d in days if d in days_off])

    @activity.defn
    async def record_plan(self, plan: PlanRecord) -> None:
        await self.store.record_plan(plan)
