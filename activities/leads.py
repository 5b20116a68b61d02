"""Activities over lead grades: regrading every contact, for the hygiene schedule."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from journeys.leads.grading import RegradeProgress, RegradeRequest
from journeys.leads.library import grading_of
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.yamlfile import SpecError

# The ApplicationError type when the library's grading file is broken: retrying cannot help.
GRADING_BROKEN = "GradingBroken"


class LeadActivities:
    def __init__(self, store: ContactStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    @activity.defn
    async def regrade_contacts(self, request: RegradeRequest) -> RegradeProgress:
        """Regrade every contact, a batch at a time, heartbeating the progress after each: a
        retry (its worker died) goes on after the last batch done. A contact regraded again
        gets the same grade, as of the same moment, so no change is recorded twice. The grading
        file is read now, so an edit of it counts from the next run on; a library without one
        grades nobody."""
        try:
            spec = grading_of(self.settings.library_dir)
        except SpecError as e:
            raise ApplicationError(
                f"the grading file has problems:\n{e}", type=GRADING_BROKEN, non_retryable=True
            ) from None
        details = activity.info().heartbeat_details
        progress = RegradeProgress.model_validate(details[0]) if details else RegradeProgress()
        if spec is None:
            return progress
        while True:
            last_id, changes = await self.store.regrade_batch(
                progress.last_id, request.batch_size, spec, request.at
            )
            if last_id is None:
                return progress
            progress = RegradeProgress(last_id=last_id, changes=progress.changes + changes)
            activity.heartbeat(progress)
