"""The demo's hygiene run (`make run`): Ada's copy from the CRM is merged into her, Hal is graded
a C lead and, once the gateway hands his `grade_changed` over, `cd_lead_nurturing` runs for him;
a second `make run` changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Select, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from devstack.demo import DEMO_CONTACTS
from devstack.hygiene_demo import ADA_FROM_THE_CRM, C_LEAD, run_hygiene_demo
from gateway.outbox import hand_over_held
from gateway.serve import build_gateway
from journeys.identity import workflow_id
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from journeys.store.schema import contact_aliases, hygiene_changes
from workers.worker import journey_worker


def _rows(store: ContactStore, query: Select[Any]) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


@pytest.fixture
async def demo_stack(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings
) -> AsyncIterator[tuple[Client, ContactStore, Settings]]:
    """The dev server, as `make run` has it: on the time-skipping server the nurturing runs'
    timers let its clock run years ahead between two hygiene runs, sunsetting every contact."""
    settings = settings.model_copy(
        update={"library_dir": LIBRARY_DIR, "task_queue": f"demo-{uuid.uuid4().hex[:8]}"}
    )
    async with journey_worker(dev_temporal.client, store, settings):
        yield dev_temporal.client, store, settings
        # The runs the demo's grades started, on a server other tests share.
        async for run in dev_temporal.client.list_workflows(
            f"TaskQueue = '{settings.task_queue}' AND ExecutionStatus = 'Running'"
        ):
            await dev_temporal.client.get_workflow_handle(run.id).terminate("test over")


async def test_the_demo_merges_the_copy_and_nurtures_the_c_lead(
    demo_stack: tuple[Client, ContactStore, Settings],
) -> None:
    client, store, settings = demo_stack
    await store.upsert_contacts([c for c, _ in DEMO_CONTACTS])
    await run_hygiene_demo(client, store, settings)

    assert await store.get_contact(ADA_FROM_THE_CRM.id) is None
    assert await store.resolve(ADA_FROM_THE_CRM.id) == "demo-ada"
    assert _rows(store, select(hygiene_changes.c.contact_id, hygiene_changes.c.kind)) == [
        (ADA_FROM_THE_CRM.id, "merged")
    ]
    grade = await store.lead_grade(C_LEAD.id)
    assert grade is not None and grade.grade == "C"

    # A second `make run`: nothing imported again, merged or graded.
    await run_hygiene_demo(client, store, settings)
    assert len(_rows(store, select(hygiene_changes.c.id))) == 1
    assert _rows(store, select(contact_aliases.c.merged_id)) == [(ADA_FROM_THE_CRM.id,)]
    ada = await store.get_contact("demo-ada")
    assert ada is not None and ada.email == "ada@example.com"

    # The gateway's outbox hands the kept grade_changed events to Temporal: Hal's starts
    # cd_lead_nurturing.
    gw = await build_gateway(settings, client=client, store=store)
    assert await hand_over_held(gw)
    run = client.get_workflow_handle(workflow_id("cd_lead_nurturing", C_LEAD.id))
    assert (await run.describe()).status == WorkflowExecutionStatus.RUNNING
