"""/v1 plans: start a team plan from its template, read where plans stand, and make the changes
people make to them. A change is validated by the plan workflow: a refusal is answered 409 with
its reason, and changes nothing."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.common import invalid
from gateway.deps import GatewayDep
from gateway.responses import documented
from journeys.fields import OpaqueId
from journeys.limits import Speed
from journeys.plans.changes import PlanChange
from journeys.plans.records import Instance, PlanRecord, plan_workflow_id
from journeys.plans.state import Refused
from workflows.plan_runs import AlreadyStarted, PlanNotFound, change_plan, start_plan

router = APIRouter()


class StartPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str
    instance: Instance = Field(description="Names this piece of work (no personal data)")
    target: date = Field(description="The date the template's due offsets count from")
    # Role -> team member id.
    assignments: dict[str, OpaqueId]
    manager: OpaqueId | None = None
    speed: Speed = 1.0


class PlanStarted(BaseModel):
    plan_id: str


@router.post(
    "/plans",
    response_model=PlanStarted,
    status_code=201,
    responses=documented(404, 409),
)
async def start(body: StartPlan, gw: GatewayDep) -> PlanStarted:
    """Start a plan from a template of the library for a target date, its roles assigned."""
    spec = gw.plans.get(body.template)
    if spec is None:
        known = ", ".join(sorted(gw.plans)) or "none"
        raise HTTPException(404, f"no plan template '{body.template}' (known: {known})")
    try:
        await start_plan(
            gw.client,
            spec,
            body.instance,
            body.target,
            body.assignments,
            body.manager,
            body.speed,
            gw.settings.task_queue,
            store=gw.store,
        )
    except AlreadyStarted as e:
        raise HTTPException(409, str(e)) from None
    except Refused as e:
        raise invalid((("body",), str(e))) from None
    return PlanStarted(plan_id=plan_workflow_id(spec.id, body.instance))


@router.get("/plans", response_model=list[PlanRecord], responses=documented(404))
async def list_plans(template: str, gw: GatewayDep) -> list[PlanRecord]:
    """Every recorded run of a template, oldest first."""
    if template not in gw.plans:
        raise HTTPException(404, f"no plan template '{template}'")
    return await gw.store.plans_of(template)


@router.get("/plans/{plan_id}", response_model=PlanRecord, responses=documented(404))
async def get_plan(plan_id: str, gw: GatewayDep) -> PlanRecord:
    """A plan as it stands: each task, who has it, when it is due and when it was done."""
    record = await gw.store.plan(plan_id)
    if record is None:
        raise HTTPException(404, f"no plan '{plan_id}'")
    return record


@router.post(
    "/plans/{plan_id}/changes",
    response_model=PlanRecord,
    responses=documented(404, 409),
)
async def change(
    plan_id: str, change: Annotated[PlanChange, Body(discriminator="kind")], gw: GatewayDep
) -> PlanRecord:
    """Complete, approve, reject or reassign a task, move the target date, or cancel the plan,
    as the person named in `by`; the plan as it stands after the change."""
    try:
        return await change_plan(gw.client, plan_id, change)
    except Refused as e:
        raise HTTPException(409, str(e)) from None
    except PlanNotFound:
        raise HTTPException(404, f"no plan '{plan_id}'") from None
