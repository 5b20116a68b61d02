"""The plan workflow: one run of a plan template (`plan:<template>:<instance>`), from the first
tasks to the last, with every notification it owes.

It keeps a `PlanRun` and asks the pure decisions in journeys.plans (state: who may do what;
run: what a change does and whom it tells, when reminders and follow-ups are due) with the plan
clock (`workflow.now()`, sped up by `speed`). People change the run through updates, each
validated on a copy of the run before it is accepted (a refusal is `Refused` with the reason);
the workflow's loop sends what is owed and sleeps until the next reminder or follow-up. Every
notification has a ledger key and is sent once: the keys sent are kept in the run, so a moved
target recomputes what is pending and never sends again what went out. Payloads carry ids and
clocks only; names and addresses stay in the store (the mail activity reads them).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from journeys.identity import PLAN_OWNERS, PLAN_STATE
    from journeys.models import SendResult
    from journeys.plans import run as plans
    from journeys.plans.changes import (
        Approve,
        Cancel,
        Complete,
        Move,
        PlanChange,
        Reassign,
        Reject,
    )
    from journeys.plans.notices import Notice, TeamMessage
    from journeys.plans.records import PlanRecord
    from journeys.plans.run import Clocks, Holidays, HolidaysRequest, PlanInput, PlanRun
    from journeys.plans.state import PlanState, Refused, activate_ready
    from workflows.journey import (
        ACTIVITY_TIMEOUT,
        SEND_HEARTBEAT_TIMEOUT,
        SEND_RETRY,
        SEND_TIMEOUT,
        STORE_RETRY,
    )

# The ApplicationError type of a change that does not apply (workflows.plan_runs reads it).
REFUSED = "Refused"
# Loading clocks fails for good on an unknown person; only the store's outages are retried.
CLOCKS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[plans.UNKNOWN_PEOPLE],
)


def _refused(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=REFUSED, non_retryable=True)


@workflow.defn(name="Plan")
class PlanWorkflow:
    @workflow.init
    def __init__(self, inp: PlanInput) -> None:
        self._inp = inp
        self._spec = inp.spec
        self._id = inp.plan_id
        # None until the run has loaded its people's clocks and started its first tasks.
        self._run: PlanRun | None = inp.state
        # A change arrived: the loop recomputes what is pending.
        self._changed = False
        # The journey whose task step started this plan no longer waits for the task.
        self._withdrawn = False
        # Records go to the store one at a time, each with the run as it stands then, so the
        # last write is the latest state.
        self._recording = asyncio.Lock()

    @workflow.run
    async def run(self, inp: PlanInput) -> PlanRecord:
        if self._run is None:
            self._run = await self._start()
        run = self._run
        while run.finished_at is None or run.outbox:
            if self._withdrawn and run.finished_at is None:
                run.plan.cancelled, run.finished_at = True, self._now(run)
                await self._record(run)
            await self._send_outbox(run)
            if run.finished_at is not None:
                break
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(inp.model_copy(update={"state": run}))
            now = self._now(run)
            pending = plans.timed(self._spec, run, self._id, now)
            if pending and pending[0].at <= now:
                run.outbox += [n for n in pending if n.at <= now]
                continue
            self._changed = False
            try:
                await workflow.wait_condition(
                    lambda: self._changed or bool(run.outbox) or self._withdrawn,
                    timeout=self._until(run, pending[0].at) if pending else None,
                    timeout_summary=f"next: {pending[0].kind} of {pending[0].task}"
                    if pending
                    else None,
                )
            except TimeoutError:
                pass  # the next reminder or follow-up is due
        await workflow.wait_condition(workflow.all_handlers_finished)
        return plans.record(self._spec, self._inp, run)

    async def _start(self) -> PlanRun:
        now = workflow.now()
        clocks = await self._clocks(self._inp.people())
        try:
            state = PlanState.new(
                self._spec, self._inp.target, dict(self._inp.assignments), self._inp.manager
            )
        except Refused as e:
            raise _refused(str(e)) from None
        run = PlanRun(plan=state, started_at=now, clocks=clocks.clocks)
        await self._holidays(run, self._inp.target.year + 1)
        started = activate_ready(self._spec, state, now)
        run.outbox += plans.announce(self._spec, run, started, "assigned", now)
        await self._record(run)
        return run

    # -- the plan clock ---------------------------------------------------------------------

    def _now(self, run: PlanRun) -> datetime:
        """Plan time: real time since the start, `speed` times faster."""
        return run.started_at + (workflow.now() - run.started_at) * self._inp.speed

    def _until(self, run: PlanRun, moment: datetime) -> timedelta:
        """How long to sleep, in real time, until `moment` on the plan clock."""
        return max(moment - self._now(run), timedelta(0)) / self._inp.speed

    # -- changes ----------------------------------------------------------------------------

    @workflow.signal
    def withdraw(self) -> None:
        """The journey that started this plan for one of its task steps no longer waits for the
        task (it took `overdue`, left on an exit event, or was cancelled): the plan is cancelled
        between two sends, not in the middle of one, and its record says so, so the task leaves
        its owner's page and calendar."""
        self._withdrawn = True

    @workflow.query
    def record(self) -> PlanRecord | None:
        """The run as it stands; None while it is starting."""
        return plans.record(self._spec, self._inp, self._run) if self._run else None

    @workflow.update(name="complete")
    async def complete(self, change: Complete) -> PlanRecord:
        return await self._change(change)

    @complete.validator
    def _complete_allowed(self, change: Complete) -> None:
        self._try(change)

    @workflow.update(name="approve")
    async def approve(self, change: Approve) -> PlanRecord:
        return await self._change(change)

    @approve.validator
    def _approve_allowed(self, change: Approve) -> None:
        self._try(change)

    @workflow.update(name="reject")
    async def reject(self, change: Reject) -> PlanRecord:
        return await self._change(change)

    @reject.validator
    def _reject_allowed(self, change: Reject) -> None:
        self._try(change)

    @workflow.update(name="reassign")
    async def reassign(self, change: Reassign) -> PlanRecord:
        # Whether the new person is on the team, and their clock, only the store knows.
        run = await self._started()
        if change.to not in run.clocks:
            try:
                run.clocks.update((await self._clocks([change.to])).clocks)
            except ActivityError as err:
                if (
                    isinstance(err.cause, ApplicationError)
                    and err.cause.type == plans.UNKNOWN_PEOPLE
                ):
                    raise _refused(f"{change.to} is not a member of the team") from None
                raise
        return await self._change(change)

    @reassign.validator
    def _reassign_allowed(self, change: Reassign) -> None:
        self._try(change)

    @workflow.update(name="move")
    async def move(self, change: Move) -> PlanRecord:
        # Business days near the new target skip its year's holidays (and the next one's).
        await self._holidays(await self._started(), change.target.year + 1)
        return await self._change(change)

    @move.validator
    def _move_allowed(self, change: Move) -> None:
        self._try(change)

    @workflow.update(name="cancel")
    async def cancel(self, change: Cancel) -> PlanRecord:
        return await self._change(change)

    @cancel.validator
    def _cancel_allowed(self, change: Cancel) -> None:
        self._try(change)

    def _try(self, change: PlanChange) -> None:
        """Refuse, before it is accepted, a change that does not apply: the rules run on a copy
        of the run. (While the run is starting every change waits for it, and is checked then.)"""
        if self._run is None:
            return
        try:
            copy = self._run.model_copy(deep=True)
            plans.apply_change(self._spec, copy, change, self._now(copy))
        except Refused as e:
            raise _refused(str(e)) from None

    async def _change(self, change: PlanChange) -> PlanRecord:
        run = await self._started()
        try:
            run.outbox += plans.apply_change(self._spec, run, change, self._now(run))
        except Refused as e:  # something changed since it was validated
            raise _refused(str(e)) from None
        self._changed = True
        await self._record(run)
        return plans.record(self._spec, self._inp, run)

    async def _started(self) -> PlanRun:
        await workflow.wait_condition(lambda: self._run is not None)
        assert self._run is not None
        return self._run

    # -- activities -------------------------------------------------------------------------

    async def _clocks(self, people: list[str]) -> Clocks:
        return await workflow.execute_activity(
            "load_clocks",
            people,
            result_type=Clocks,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=CLOCKS_RETRY,
            summary=f"clocks of {len(people)} people",
        )

    async def _holidays(self, run: PlanRun, through: int) -> None:
        """Load the template's public holidays up to the end of the year `through` (from the
        year before the run and its target, the first time)."""
        if self._spec.holidays is None or through <= run.holidays_through:
            return
        first = run.holidays_through + 1 or min(run.started_at.year, run.plan.target.year) - 1
        loaded = await workflow.execute_activity(
            "load_holidays",
            HolidaysRequest(calendar=self._spec.holidays, first_year=first, last_year=through),
            result_type=Holidays,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"{self._spec.holidays} holidays {first}-{through}",
        )
        run.holidays |= set(loaded.days)
        run.holidays_through = through

    async def _record(self, run: PlanRun) -> None:
        """The store's record of the run as it stands, and the search attributes with it."""
        async with self._recording:
            plan = plans.record(self._spec, self._inp, run)
            workflow.upsert_search_attributes(
                [
                    PLAN_STATE.value_set(plan.state),
                    PLAN_OWNERS.value_set(plans.owners(self._spec, run)),
                ]
            )
            await workflow.execute_activity(
                "record_plan",
                plan,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary=f"record: {plan.state}",
            )

    async def _send_outbox(self, run: PlanRun) -> None:
        """Send each notification decided, once (its key is then kept as sent)."""
        while run.outbox:
            notice = run.outbox[0]
            key = notice.key(self._id)
            if key not in run.sent:
                await self._mail(run, notice)
                run.sent.add(key)
            run.outbox.pop(0)

    async def _mail(self, run: PlanRun, notice: Notice) -> None:
        task = self._spec.task(notice.task)
        after = notice.about.after_task if notice.about else None
        message = TeamMessage(
            plan_id=self._id,
            template=self._spec.id,
            task_title=task.title,
            due_at=plans.due_of(self._spec, run, task),
            about_title=self._spec.task(after).title if after else None,
            notice=notice,
        )
        try:
            await workflow.execute_activity(
                "send_team_mail",
                message,
                result_type=SendResult,
                start_to_close_timeout=SEND_TIMEOUT,
                heartbeat_timeout=SEND_HEARTBEAT_TIMEOUT,
                retry_policy=SEND_RETRY,
                summary=f"{notice.kind} of {notice.task} to {notice.person}",
            )
        except ActivityError as err:
            # Given up after the retries (hours): the plan goes on; the ledger keeps the failure.
            workflow.logger.warning("plan mail not sent", extra={"key": message.key, "err": err})
