"""The journey interpreter: one workflow class runs any validated journey spec for one contact.

It only decides; activities act. The spec travels in the input, so a run keeps the version it
started with. Each step kind's effect is one method below (`_send`, `_wait`, ...). Every activity
and timer carries a summary, the line the Temporal UI shows for it; summaries are user metadata,
not part of the commands, so adding or rewording one leaves running histories replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    is_cancelled_exception,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from journeys import conditions, decisions, events, tasks
    from journeys.channels import CHANNELS
    from journeys.durations import describe_duration
    from journeys.identity import CONTACT_ID, JOURNEY_ID, JOURNEY_VERSION, STEP
    from journeys.models import (
        CONTACT_UNREADABLE,
        AudienceChange,
        ContactFacts,
        EndReason,
        FactsRequest,
        JourneyEvent,
        JourneyInput,
        JourneyResult,
        JourneyStatus,
        LocalTimeRequest,
        PathRecord,
        RunState,
        SendRequest,
        SendResult,
        SendWindow,
        SendWindowRequest,
        TagChange,
        Visit,
        VisitRecord,
        WindowCheck,
    )
    from journeys.plans.records import PlanRecord
    from journeys.plans.run import PlanInput
    from journeys.spec import (
        OVERDUE,
        UNASSIGNED,
        WAITING_KINDS,
        AudienceStep,
        BranchStep,
        EndStep,
        GotoStep,
        SendStep,
        SplitStep,
        Step,
        TagStep,
        TaskStep,
        WaitForStep,
        WaitStep,
    )

# Providers may be down for a while: back off up to 10 minutes, give up after ~3 hours and treat
# the message as failed rather than leave the contact stuck.
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=25,
)
# The contact store must come back; the journey waits for it rather than guess.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
ACTIVITY_TIMEOUT = timedelta(seconds=60)
# A send heartbeats every 2 s (activities.deliveries), so a worker that died mid-send is noticed
# and the send retried within this, not after the start-to-close timeout.
SEND_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# A live send is only cut off after this: a new SMTP session and a message take several commands
# of up to 30 s each (activities.smtp), and a send cut off mid-DATA must be reconciled.
SEND_TIMEOUT = timedelta(minutes=3)
# Event ids a run carries across continue-as-new to recognise a copy (see RunState).
SEEN_EVENT_IDS_KEPT = 500
# Runs from before it send without asking the send window first (a local activity before a send).
SEND_WINDOW_PATCH = "send-window-before-send"
# Runs from before it record no path for the journey reports (a local activity where they wait).
RECORD_PATH_PATCH = "record-path"
# Runs from before it read the contact in activities, upsert the search attributes their start
# already set, and record a marker for each patch above as they first pass it. One marker at the
# start of a run stands for all of those patches; see _patched.
LEAN_RUNS_PATCH = "lean-runs"
# Runs from before it ask the send_window local activity before each send that is not
# transactional; since, the send checks quiet hours and the cap itself (the channel's
# checked_activity), a local activity and an activation fewer per send. Its marker at the start
# of a run stands for lean-runs too.
CHECKED_SENDS_PATCH = "checked-sends"
# A report must not hold a contact up: the store is tried for about 15 s, then the run goes on
# and its next record carries what this one did not.
RECORD_PATH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=8),
    maximum_attempts=5,
)
RECORD_PATH_TIMEOUT = timedelta(seconds=10)


T = TypeVar("T")


class _ContactUnreadable(Exception):
    """The contact's stored data cannot be used: the run ends rather than retry for ever."""


# Outside the sandbox: in it, each run's first task imported this module afresh and checked the
# class again, about a quarter of a worker's CPU per run (bench.throughput under py-spy). The
# rules of workflow code hold all the same (no clock, no I/O, no environment, no state at import):
# tests/test_replay.py runs every recorded path in the sandbox, which refuses them.
@workflow.defn(name="Journey", sandboxed=False)
class JourneyWorkflow:
    @workflow.init
    def __init__(self, inp: JourneyInput) -> None:
        self._inp = inp
        self._spec = inp.spec
        self._state = inp.state or RunState(
            entry_id=workflow.info().run_id, current_step=inp.spec.first_step
        )
        self._exit: JourneyEvent | None = None
        self._details = "starting"
        self._finished = False
        self._lean = False
        self._checked_sends = False

    # --- the outside world ---------------------------------------------------------------

    @workflow.signal
    def event(self, event: JourneyEvent) -> None:
        """An event for this contact: kept for any wait (earlier or later) and checked for exit."""
        if event.id is not None:
            if event.id in self._state.seen_event_ids:
                return  # the same event, handed over again
            self._state.seen_event_ids.append(event.id)
        self._state.events.append(event)
        # A merged-away contact no longer exists: whatever the journey says, nothing more may go
        # to them (their survivor's own runs carry on).
        leaves = event.kind in self._spec.exit_events or event.kind == events.CONTACT_MERGED
        if leaves and self._exit is None:
            self._exit = event

    @workflow.query
    def status(self) -> JourneyStatus:
        return JourneyStatus(
            journey_id=self._spec.id,
            journey_version=self._spec.version,
            contact_id=self._inp.contact_id,
            current_step=self._state.current_step,
            details=self._details,
            finished=self._finished,
            visits=self._state.visits,
            events=self._state.events,
        )

    # --- the interpreter -----------------------------------------------------------------

    @workflow.run
    async def run(self, inp: JourneyInput) -> JourneyResult:
        self._checked_sends = workflow.patched(CHECKED_SENDS_PATCH)
        self._lean = self._checked_sends or workflow.patched(LEAN_RUNS_PATCH)
        self._index(inp.contact_id)
        steps_this_run = 0
        steps_per_run = min(inp.steps_per_run, self._spec.steps_per_run or inp.steps_per_run)
        while self._state.current_step is not None:
            if self._exit is not None:
                return await self._leave(self._exit)
            if self._state.steps_executed >= self._spec.max_steps:
                raise ApplicationError(
                    f"journey '{self._spec.id}' executed {self._spec.max_steps} steps "
                    f"(its max_steps) at step '{self._state.current_step}': stopped",
                    type="StepLimitExceeded",
                    non_retryable=True,
                )
            if steps_this_run >= steps_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(inp.model_copy(update={"state": self._carried_state()}))
            step = self._spec.step(self._state.current_step)
            self._enter(step)
            if step.kind in WAITING_KINDS:
                await self._record_path()
            steps_this_run += 1
            visit = self._state.visits[-1]
            try:
                outcome, chosen = await self._execute(step)
            except _ContactUnreadable as e:
                visit.outcome, visit.left_at = "contact unreadable", workflow.now()
                return await self._finish("contact_unreadable", str(e))
            visit.outcome, visit.left_at = outcome, workflow.now()
            self._state.current_step = (
                None if isinstance(step, EndStep) else self._spec.next_of(step, chosen)
            )
        if self._exit is not None:
            return await self._leave(self._exit)
        return await self._finish("end", "finished")

    def _patched(self, patch: str) -> bool:
        """workflow.patched(patch), without a marker of its own in a lean run: each marker is an
        event, and the first in a workflow task a billed Action."""
        return self._lean or workflow.patched(patch)

    def _index(self, contact_id: str) -> None:
        """The journey, its version and the contact as search attributes: in a lean run only
        those its start did not set (workflows.runs sets them all; continued runs keep them)."""
        wanted: list[SearchAttributeUpdate[Any]] = [
            JOURNEY_ID.value_set(self._spec.id),
            JOURNEY_VERSION.value_set(self._spec.version),
            CONTACT_ID.value_set(contact_id),
        ]
        if self._lean:
            have = workflow.info().typed_search_attributes
            wanted = [u for u in wanted if have.get(u.key) != u.value]
        if wanted:
            workflow.upsert_search_attributes(wanted)

    async def _read_contact(self, activity: str, arg: Any, result_type: type[T], summary: str) -> T:
        """An activity that reads the contact, local in a lean run (a read needs no task of its
        own on the server, nor a workflow task to take its result); _ContactUnreadable if it
        could not read it."""
        execute = workflow.execute_local_activity if self._lean else workflow.execute_activity
        try:
            return await execute(
                activity,
                arg,
                result_type=result_type,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary=summary,
            )
        except (ActivityError, ApplicationError) as err:
            # A local activity's failure comes as its own error, not wrapped.
            cause = err.cause if isinstance(err, ActivityError) else err
            # Before the patch such a failure failed the run: its histories replay that way.
            if (
                isinstance(cause, ApplicationError)
                and cause.type == CONTACT_UNREADABLE
                and self._patched("end-when-the-contact-cannot-be-read")
            ):
                raise _ContactUnreadable(cause.message) from None
            raise

    def _carried_state(self) -> RunState:
        """What the next run needs: events already used by a wait, or of kinds no step reacts
        to, stay behind (the store keeps every event), so a long run's input stays small."""
        used = self._spec.events_used()
        pending = [
            e
            for i, e in enumerate(self._state.events)
            if i not in self._state.consumed and e.kind in used
        ]
        # A copy arrives within minutes of the first (the gateway's lease), long before these
        # many later events.
        seen = self._state.seen_event_ids[-SEEN_EVENT_IDS_KEPT:]
        return self._state.model_copy(
            update={"events": pending, "consumed": [], "seen_event_ids": seen}
        )

    def _enter(self, step: Step) -> None:
        self._state.steps_executed += 1
        self._state.entered[step.id] = self._state.entered.get(step.id, 0) + 1
        self._state.visits.append(Visit(step=step.id, at=workflow.now()))
        # Step says where a contact stays: the waits, and the end. Indexing every passing step
        # (a send, a branch) doubled the visibility writes per event and pushed the p99 of an
        # open-to-next-email from ~0.35 s to ~0.6 s at 20 events/s on the dev server; the
        # current details and pending activities still show a run that is busy elsewhere.
        if step.kind in (*WAITING_KINDS, "end"):
            workflow.upsert_search_attributes([STEP.value_set(step.id)])
        self._set_details(step.describe())

    def _set_details(self, text: str) -> None:
        self._details = text
        workflow.set_current_details(text)

    async def _leave(self, event: JourneyEvent) -> JourneyResult:
        """End the run on `event`: an exit event of the journey, or the contact merged away."""
        if event.kind == events.CONTACT_MERGED:
            return await self._finish("contact_merged", f"merged into {event.data.get('into')}")
        return await self._finish("exit_event", f"left on '{event.kind}'")

    async def _finish(self, reason: EndReason, details: str) -> JourneyResult:
        await self._record_path(reason)
        self._finished = True
        self._set_details(details)
        last = self._state.visits[-1].step if self._state.visits else None
        return JourneyResult(
            journey_id=self._spec.id,
            contact_id=self._inp.contact_id,
            ended_at_step=last,
            reason=reason,
            visits=self._state.visits,
        )

    async def _record_path(self, ended: EndReason | None = None) -> None:
        """Tell the store the visits it does not have in full yet (and the end, when `ended`),
        for the journey reports; ids and clocks only."""
        if not self._patched(RECORD_PATH_PATCH):
            return
        visits, start = self._state.visits, self._state.recorded
        entered_at = visits[0].at if visits else workflow.now()
        goal = self._spec.goal
        path = PathRecord(
            entry_id=self._state.entry_id,
            workflow_id=workflow.info().workflow_id,
            journey_id=self._spec.id,
            version=self._spec.version,
            contact_id=self._inp.contact_id,
            entered_at=entered_at,
            goal_until=entered_at + self._scaled(goal.window()) if goal else None,
            visits=[
                VisitRecord(
                    n=n,
                    step=v.step,
                    entered_at=v.at,
                    left_at=v.left_at,
                    outcome=v.outcome,
                    next_step=visits[n + 1].step if n + 1 < len(visits) else None,
                    variant=self._state.variants.get(v.step),
                )
                for n, v in enumerate(visits[start:], start)
            ],
            ended_at=workflow.now() if ended else None,
            end_reason=ended,
        )
        try:
            await workflow.execute_local_activity(
                "record_path",
                path,
                start_to_close_timeout=RECORD_PATH_TIMEOUT,
                retry_policy=RECORD_PATH_RETRY,
                summary="record the path for the journey reports",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning("path not recorded, the next record carries it: %s", err)
            return
        # The last visit may still change (a wait not over yet): the next record sends it again.
        self._state.recorded = len(visits) if ended else max(start, len(visits) - 1)

    async def _execute(self, step: Step) -> tuple[str, str | None]:
        """Perform one step; return what happened and the next step it chose (None: its `next`)."""
        match step:
            case SendStep():
                return await self._send(step)
            case WaitStep():
                return await self._wait(step)
            case WaitForStep():
                return await self._wait_for(step)
            case BranchStep():
                return await self._branch(step)
            case SplitStep():
                return self._split(step)
            case TaskStep():
                return await self._task(step)
            case TagStep():
                await self._change_tags(step.add, step.remove)
                return "tagged", None
            case AudienceStep():
                await self._audience(step)
                verb = "added to" if step.action == "add" else "removed from"
                return f"{verb} {step.audience}", None
            case GotoStep():
                return "jumped", step.target
            case EndStep():
                if step.tag:
                    await self._change_tags([step.tag], [])
                return "ended", None
        raise AssertionError(f"unhandled step kind {step.kind}")

    # --- one method per kind of step -------------------------------------------------------

    async def _send(self, step: SendStep) -> tuple[str, str | None]:
        template, variant = step.template, None
        if step.variants:
            # Drawn once per run: a contact who comes back to this step (a loop) stays in the arm
            # the A/B report counts them in.
            if step.id not in self._state.variants:
                index = decisions.weighted_choice(
                    [v.weight for v in step.variants], workflow.random().random()
                )
                self._state.variants[step.id] = step.variants[index].name
            variant = self._state.variants[step.id]
            template = next(v.template for v in step.variants if v.name == variant)
        assert template is not None
        info = workflow.info()
        request = SendRequest(
            key=f"{info.workflow_id}/{self._state.entry_id}/{step.id}/{self._state.entered[step.id]}",
            workflow_id=info.workflow_id,
            journey_id=self._spec.id,
            step_id=step.id,
            contact_id=self._inp.contact_id,
            channel=step.channel,
            template=template,
            variant=variant,
            transactional=step.transactional,
            after_event_at=self._state.woken_at,
        )
        self._state.woken_at = None
        suffix = f" (variant {variant})" if variant else ""
        summary = f"{CHANNELS[step.channel].display} '{step.id}' with template {template}{suffix}"
        if step.transactional:
            result = await self._deliver(step, request, summary)
        elif self._checked_sends:
            checked = await self._deliver_checked(step, request, summary)
            if checked is None:
                return "left", None  # the run loop leaves on the exit event
            result = checked
        else:
            if self._patched(SEND_WINDOW_PATCH):
                held = await self._send_window(step, request)
                if held is not None:
                    return held, None
            result = await self._deliver(step, request, summary)
        if result.status == "skipped":
            return self._skipped(step, result.reason), None
        if result.status != "failed":
            return f"{result.status}{suffix}", None
        # A refusal is an event like any other: a later wait_for or branch may react to it.
        self._happened(events.FAILED, step, result.reason)
        return f"failed: {result.reason}{suffix}", step.on_failure

    async def _deliver(self, step: SendStep, request: SendRequest, summary: str) -> SendResult:
        """The channel's send activity (its checked one when `request.window` asks for the
        check); a send that gave up after its retries comes back failed."""
        channel = CHANNELS[step.channel]
        try:
            return await workflow.execute_activity(
                channel.activity if request.window is None else channel.checked_activity,
                request,
                result_type=SendResult,
                start_to_close_timeout=SEND_TIMEOUT,
                heartbeat_timeout=SEND_HEARTBEAT_TIMEOUT,
                retry_policy=SEND_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise  # the run is being cancelled: it stops here, it does not carry on
            return SendResult(status="failed", reason=f"gave up after retries: {err.cause or err}")

    async def _deliver_checked(
        self, step: SendStep, request: SendRequest, summary: str
    ) -> SendResult | None:
        """The send, which checks quiet hours and the cap before it sends; held back, the run
        sleeps until the time it names and sends again under the same key (one message however
        long it waits). None: the run left on an exit event meanwhile."""
        moment = workflow.now()
        while True:
            window = WindowCheck(now=moment, when_capped=step.when_capped)
            result = await self._deliver(
                step, request.model_copy(update={"window": window}), summary
            )
            if result.status != "held":
                return result
            assert result.until is not None
            if await self._hold(step, result.until, result.reason, moment):
                return None
            moment = max(workflow.now(), result.until)

    def _happened(self, kind: str, step: SendStep, reason: str | None) -> None:
        """What became of a send, as an event of the run (failed, skipped) with its reason."""
        self._state.events.append(
            JourneyEvent(
                kind=kind, step=step.id, occurred_at=workflow.now(), data={"reason": reason or ""}
            )
        )

    def _skipped(self, step: SendStep, reason: str | None) -> str:
        """A send over the cap that the step says to skip: an event of the run, and the step's
        outcome."""
        self._happened(events.SKIPPED, step, reason)
        return f"skipped: {reason}"

    async def _hold(
        self, step: SendStep, until: datetime, reason: str | None, moment: datetime
    ) -> bool:
        """Sleep from `moment` until `until` (the run's clock), the send held back by `reason`;
        whether the run is to leave on an exit event that came meanwhile."""
        channel = CHANNELS[step.channel]
        delta = until - moment
        self._set_details(f"{step.describe()}: held back by {reason} (until {self._until(delta)})")
        await self._sleep(delta, f"hold {channel.display} '{step.id}': {reason}")
        return self._exit is not None

    async def _send_window(self, step: SendStep, request: SendRequest) -> str | None:
        """Runs from before checked sends: wait, durably, until the message may leave (quiet
        hours, the frequency cap); None when it may, else the step's outcome: skipped over the
        cap, or left on an exit event."""
        channel = CHANNELS[step.channel]
        # The journey's clock: at a demo's speed a wait passes sooner than the hours it stands
        # for, and the next check must not find it still night.
        moment = workflow.now()
        while True:
            window = await workflow.execute_local_activity(
                "send_window",
                SendWindowRequest(send=request, now=moment, when_capped=step.when_capped),
                result_type=SendWindow,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary=f"may {channel.display} '{step.id}' go now (quiet hours, frequency cap)",
            )
            if window.action == "now":
                return None
            if window.action == "skip":
                return self._skipped(step, window.reason)
            assert window.until is not None
            if await self._hold(step, window.until, window.reason, moment):
                return "left"  # the run loop leaves on the exit event
            moment = max(workflow.now(), window.until)

    def _scaled(self, delta: timedelta) -> timedelta:
        return delta / self._inp.speed

    def _timer_summary(self, what: str, delta: timedelta) -> str:
        """What a timer is for; at a speed other than 1 (a demo), also how long it really lasts."""
        if self._inp.speed == 1:
            return what
        return f"{what} ({self._scaled(delta).total_seconds():g} s at speed {self._inp.speed:g})"

    async def _sleep(self, delta: timedelta, summary: str) -> None:
        """Sleep durably, waking early only to leave on an exit event."""
        try:
            await workflow.wait_condition(
                lambda: self._exit is not None,
                timeout=self._scaled(delta),
                timeout_summary=self._timer_summary(summary, delta),
            )
        except TimeoutError:
            pass

    def _until(self, delta: timedelta) -> str:
        return (workflow.now() + self._scaled(delta)).strftime("%Y-%m-%d %H:%M:%S UTC")

    async def _wait(self, step: WaitStep) -> tuple[str, str | None]:
        if step.until is not None:
            seconds = await self._read_contact(
                "seconds_until_local_time",
                LocalTimeRequest(
                    contact_id=self._inp.contact_id, at=step.until, now=workflow.now()
                ),
                float,
                f"seconds until {step.until} local",
            )
            delta = timedelta(seconds=seconds)
            summary = f"wait until {step.until} local"
        else:
            delta = step.delta()
            summary = f"wait {describe_duration(delta)}"
        self._state.woken_at = None
        self._set_details(f"{step.describe()} (until {self._until(delta)})")
        await self._sleep(delta, summary)
        return (
            f"waited {describe_duration(delta)}" if delta.total_seconds() >= 1 else "waited",
            None,
        )

    async def _wait_for(self, step: WaitForStep) -> tuple[str, str | None]:
        def pending() -> int | None:
            return decisions.find_event(
                self._state.events, self._state.consumed, step.event, step.step, step.machine_opens
            )

        timeout = step.timeout_delta()
        self._set_details(f"{step.describe()} (until {self._until(timeout)})")
        try:
            await workflow.wait_condition(
                lambda: pending() is not None or self._exit is not None,
                timeout=self._scaled(timeout),
                timeout_summary=self._timer_summary(
                    f"wait up to {describe_duration(timeout)} for {step.awaited()}", timeout
                ),
            )
        except TimeoutError:
            pass
        index = pending()
        if index is None:
            # The run loop leaves on the exit event before taking the branch.
            return ("left" if self._exit is not None else "timed out"), step.on_timeout
        self._state.consumed.append(index)
        self._state.woken_at = self._state.events[index].occurred_at
        return step.event, step.on_event

    async def _facts(self, step: BranchStep) -> ContactFacts:
        request: FactsRequest | str = self._inp.contact_id
        if self._patched("facts-for-conditions"):
            # The result stays in the history: only what the conditions read, not every
            # attribute of the contact (a national id number, say), may go there.
            # `at`: behaviour counts end at the run's clock, the same on a retry.
            request = conditions.facts_needed(
                self._inp.contact_id, [c.when for c in step.conditions], at=workflow.now()
            )
        return await self._read_contact(
            "load_contact_facts",
            request,
            ContactFacts,
            f"load contact facts for branch '{step.id}'",
        )

    async def _branch(self, step: BranchStep) -> tuple[str, str | None]:
        events = self._state.events
        if self._patched("branch-on-events-by-when-they-happened"):
            # By when they happened, not by arrival: an event kept while Temporal was down
            # (say, a first NPS answer) can arrive after a later one.
            events = sorted(events, key=lambda e: e.occurred_at)
        target, reason = decisions.branch_target(step, await self._facts(step), events)
        return reason, target

    def _split(self, step: SplitStep) -> tuple[str, str | None]:
        index = decisions.weighted_choice([a.weight for a in step.arms], workflow.random().random())
        return f"arm {index + 1}", step.arms[index].next

    async def _task(self, step: TaskStep) -> tuple[str, str | None]:
        """Give the task to one team member as a plan of one task (the plan workflow mails
        them, with signed links, and takes what came of it), and wait for that outcome until the
        task is due: then it is `overdue`, and the plan withdrawn, not left open."""
        assignment = await workflow.execute_activity(
            "assign_task",
            tasks.TaskRequest(
                contact_id=self._inp.contact_id,
                role=step.role,
                owner_attribute=step.owner_attribute,
                due=step.due,
                now=workflow.now(),
            ),
            result_type=tasks.TaskAssignment,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"who does task '{step.id}' ({step.owner()})",
        )
        if assignment.owner is None:
            return f"{UNASSIGNED}: {assignment.reason}", step.on.get(UNASSIGNED)
        assert assignment.reached_on is not None and assignment.due_at is not None
        plan = PlanInput(
            spec=tasks.task_plan(self._spec, step),
            instance=tasks.task_instance(
                self._inp.contact_id, self._state.entry_id, self._state.entered[step.id]
            ),
            target=assignment.reached_on,
            assignments={tasks.OWNER: assignment.owner},
            contact_id=self._inp.contact_id,
            speed=self._inp.speed,
        )
        # By name: workflows.plan imports this module. The journey withdraws the task itself
        # whenever it stops waiting (_withdraw); a Temporal cancel as it closes would come on
        # top, and could cut the plan's record or mail in half. (A journey an operator
        # terminates leaves the plan to its owner.)
        child = await workflow.start_child_workflow(
            "Plan",
            plan,
            id=plan.plan_id,
            result_type=PlanRecord,
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"task '{step.id}' of {assignment.owner}",
        )
        due = max(assignment.due_at - workflow.now(), timedelta(0))
        self._set_details(
            f"{step.describe()}: {assignment.owner}'s in plan {plan.plan_id} "
            f"(due {self._until(due)})"
        )
        try:
            await workflow.wait_condition(
                lambda: child.done() or self._exit is not None,
                timeout=self._scaled(due),
                timeout_summary=self._timer_summary(f"task '{step.id}' due", due),
            )
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            await self._withdraw(child)  # the journey is cancelled: so is its task
            raise
        if not child.done():
            await self._withdraw(child)
            # The run loop leaves on the exit event before taking the branch.
            return ("left" if self._exit is not None else OVERDUE), step.on.get(OVERDUE)
        try:
            outcome = child.result().tasks[0].outcome
        except ChildWorkflowError as err:
            # The plan could not start (its owner left the team since): nobody has the task.
            return f"{UNASSIGNED}: the plan failed: {err.cause or err}", step.on.get(UNASSIGNED)
        if outcome is None:  # the plan was cancelled by a person, not done
            return "cancelled", None
        return outcome, step.on.get(outcome)

    async def _withdraw(self, plan: workflow.ChildWorkflowHandle[Any, PlanRecord]) -> None:
        """Ask a task's plan to cancel itself (between two sends: a Temporal cancel could cut
        one in half) and wait until it has ended, its record written, so the journey goes on
        with the task closed. (A child that outlives its parent also leaves the time-skipping
        test server unable to skip time.)"""
        await plan.signal("withdraw")
        with contextlib.suppress(ChildWorkflowError):  # it had failed: nothing left open
            await plan

    async def _change_tags(self, add: list[str], remove: list[str]) -> None:
        await workflow.execute_activity(
            "change_tags",
            TagChange(contact_id=self._inp.contact_id, add=add, remove=remove),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=" ".join(["tag", *(f"+{t}" for t in add), *(f"-{t}" for t in remove)]),
        )

    async def _audience(self, step: AudienceStep) -> None:
        await workflow.execute_activity(
            "change_audience",
            AudienceChange(
                contact_id=self._inp.contact_id, audience=step.audience, action=step.action
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"audience {step.action} '{step.audience}'",
        )
