"""The client side of the plan workflow: the changes people make to a running plan. The command
line, the API and the task pages all call these. Each change is the plan workflow's update of the
same name (`change.kind`), validated by the workflow before it is accepted: a refusal comes back as
`Refused` with the reason a person reads, and changes nothing."""

from __future__ import annotations

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from journeys.plans.changes import PlanChange
from journeys.plans.records import PlanRecord, is_plan_id
from journeys.plans.state import Refused

# The ApplicationError type the plan workflow's validators raise for a change that does not apply.
REFUSED = "Refused"


class PlanNotFound(LookupError):
    """No plan run under that id (never started, or its history is gone)."""


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
