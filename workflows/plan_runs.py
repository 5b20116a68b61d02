"""The client side of the plan workflow: the changes people make to a running plan. The command
line, the API and the task pages all call these. Each change is the plan workflow's update of the
same name (`change.kind`), validated by the workflow before it is accepted: a refusal comes back as
`Refused` with the reason a person reads, and changes nothing."""

from __future__ import annotations

from datetime import date

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from journeys.identity import PLAN_STATE, PLAN_TEMPLATE
from journeys.plans.changes import PlanChange
from journeys.plans.records import PlanRecord, is_plan_id
from journeys.plans.run import PlanInput
from journeys.plans.spec import PlanSpec
from journeys.plans.state import PlanState, Refused
from journeys.store import ContactStore
from workflows.plan import REFUSED, PlanWorkflow


class PlanNotFound(LookupError):
    """No plan run under that id (never started, or its history is gone)."""


async def start_plan(
    client: Client,
    spec: PlanSpec,
    instance: str,
    target: date,
    assignments: dict[str, str],
    manager: str | None,
    speed: float,
    task_queue: str,
    *,
    store: ContactStore,
) -> WorkflowHandle[PlanWorkflow, PlanRecord]:
    """Start a run of `spec` for `instance` (`plan:<template>:<instance>`): Refused, before
    anything starts, when a role the tasks need is not assigned, a role is not the plan's, a
    person is not on the team, or the run exists already (one run per instance, ever)."""
    PlanState.new(spec, target, assignments, manager)  # every role assigned, and only the plan's
    inp = PlanInput(
        spec=spec,
        instance=instance,
        target=target,
        assignments=assignments,
        manager=manager,
        speed=speed,
    )
    unknown = [p for p in inp.people() if await store.person(p) is None]
    if unknown:
        raise Refused(f"not members of the team: {', '.join(unknown)}")
    try:
        return await client.start_workflow(
            PlanWorkflow.run,
            inp,
            id=inp.plan_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(PLAN_TEMPLATE, spec.id),
                    SearchAttributePair(PLAN_STATE, "running"),
                ]
            ),
            static_summary=f"plan {spec.id} for {instance}, target {target:%Y-%m-%d}",
        )
    except WorkflowAlreadyStartedError:
        raise Refused(f"{inp.plan_id} was started already") from None


async def change_plan(client: Client, plan_id: str, change: PlanChange) -> PlanRecord:
    """Apply `change` to the running plan `plan_id`; the plan as it stands after it."""
    if not is_plan_id(plan_id):  # another run (a journey's) has no such update
        raise PlanNotFound(plan_id)
    handle = client.get_workflow_handle(plan_id)
    try:
        return await handle.execute_update(change.kind, change, result_type=PlanRecord)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == REFUSED:
            raise Refused(cause.message) from None
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise PlanNotFound(plan_id) from None
        raise
