"""The hygiene workflow: one run of data hygiene over every contact, in phases (PHASES in
journeys.hygiene.runs): clean (contacts in batches by id), dedup (duplicate groups in batches by
key), then the report. Each batch is one activity that heartbeats and resumes where a killed
worker left it; the run keeps only cursors and counts, and continues as new every
`batches_per_run` batches or when Temporal suggests it (100,000 contacts are 200 batches and
more). The run's id in the audit is its workflow id and start, so a batch retried, or a run
continued, never changes a contact twice. A dry run decides and counts, and writes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from journeys.hygiene.changes import ChangeKind
    from journeys.hygiene.runs import (
        PHASES,
        BatchDone,
        HygieneBatch,
        HygieneInput,
        HygieneProgress,
        HygieneReport,
        Phase,
    )
    from workflows.journey import ACTIVITY_TIMEOUT, STORE_RETRY

# The activity that works one batch of each phase, by name (the names are in histories).
BATCH_ACTIVITIES: dict[Phase, str] = {"clean": "clean_contacts", "dedup": "merge_duplicates"}
# A batch of 500 contacts takes seconds; its domains' look-ups (20 at a time, 2 s at most each)
# up to a minute. The heartbeat after each contact shows a dead worker within 10 s.
BATCH_TIMEOUT = timedelta(minutes=10)
BATCH_HEARTBEAT_TIMEOUT = timedelta(seconds=10)


@workflow.defn(name="Hygiene")
class HygieneWorkflow:
    @workflow.init
    def __init__(self, inp: HygieneInput) -> None:
        self._progress = inp.progress.model_copy(deep=True)

    @workflow.run
    async def run(self, inp: HygieneInput) -> HygieneReport:
        run_id = inp.run_id or f"{workflow.info().workflow_id}@{workflow.now():%Y%m%dT%H%M%SZ}"
        started_at = inp.started_at or workflow.now()
        progress = self._progress
        self._show()
        batches = 0
        while progress.phase in BATCH_ACTIVITIES:
            if batches >= inp.batches_per_run or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    inp.model_copy(
                        update={"run_id": run_id, "started_at": started_at, "progress": progress}
                    )
                )
            done = await self._batch(run_id, inp, progress)
            batches += 1
            progress.read[progress.phase] = progress.read.get(progress.phase, 0) + done.read
            progress.add(done.counts)
            if done.read < inp.policy.batch_size:  # nothing after this batch: the next phase
                progress.phase, progress.cursor = PHASES[PHASES.index(progress.phase) + 1], None
            else:
                progress.cursor = done.last
            self._show()
        counts = progress.counts if inp.policy.dry_run else await self._audited(run_id)
        report = HygieneReport(
            run_id=run_id,
            dry_run=inp.policy.dry_run,
            started_at=started_at,
            finished_at=workflow.now(),
            contacts=progress.read.get("clean", 0),
            groups=progress.read.get("dedup", 0),
            counts=counts,
        )
        workflow.set_current_details(f"done: {progress.describe()}")
        return report

    @workflow.query
    def progress(self) -> HygieneProgress:
        """The phase, the cursor (a contact id; sealed in dedup) and what changed so far."""
        return self._progress

    def _show(self) -> None:
        """What an operator sees in the UI's current details."""
        workflow.set_current_details(self._progress.describe())

    async def _batch(self, run_id: str, inp: HygieneInput, progress: HygieneProgress) -> BatchDone:
        phase = progress.phase
        batch = HygieneBatch(
            run_id=run_id, policy=inp.policy, after=progress.cursor, now=workflow.now()
        )
        return await workflow.execute_activity(
            BATCH_ACTIVITIES[phase],
            batch,
            result_type=BatchDone,
            start_to_close_timeout=BATCH_TIMEOUT,
            heartbeat_timeout=BATCH_HEARTBEAT_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"{phase}: batch {progress.read.get(phase, 0) // inp.policy.batch_size + 1}",
        )

    async def _audited(self, run_id: str) -> dict[ChangeKind, int]:
        return await workflow.execute_activity(
            "count_hygiene_changes",
            run_id,
            result_type=dict[ChangeKind, int],
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary="count the changes in the audit",
        )
