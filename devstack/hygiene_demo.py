"""The demo's data hygiene and lead grades: the CRM's copy of Ada (her address in capitals, a
second id) is merged into her, and an adviser, Hal, is graded a C lead, so `cd_lead_nurturing`
takes him on. One hygiene run at start shows its report in the log and in `journeys hygiene
report`; after that the schedule runs it every night, as in production.

A second `make run` adds nothing: the copy, merged, is not imported again (an import of a
merged-away id would update the survivor), and a contact already graded C is not regraded to a
change.
"""

from __future__ import annotations

import structlog
from temporalio.client import Client

from journeys.contacts import Contact
from journeys.settings import Settings
from journeys.store import ContactStore
from workflows.hygiene_runs import policy_from, run_hygiene

log = structlog.get_logger()

# Ada as the CRM has her too: the same address, typed in capitals, under another id, with the
# same consent (a merge keeps, per channel, the stricter of the two).
ADA_FROM_THE_CRM = Contact(
    id="demo-ada-crm",
    email="ADA@example.com",
    consent={"email": True, "sms": True},
    attributes={"first_name": "Ada", "source": "crm"},
)
# An adviser (grading.yaml: a C), whom sales (demo-rex) owns.
C_LEAD = Contact(
    id="demo-hal",
    email="hal@example.com",
    phone="+48601234570",
    consent={"email": True, "sms": True},
    attributes={"first_name": "Hal", "role": "adviser", "sales_owner": "demo-rex"},
)


async def run_hygiene_demo(client: Client, store: ContactStore, settings: Settings) -> None:
    """Add the two contacts (the copy only while it was never merged), run hygiene once and log
    its report. The run's regrade grades Hal C; the gateway hands the `grade_changed` to
    Temporal, and `cd_lead_nurturing` starts for him."""
    new = [c for c in (ADA_FROM_THE_CRM, C_LEAD) if await store.resolve(c.id) == c.id]
    await store.upsert_contacts(new)
    run = await run_hygiene(client, settings, policy_from(settings), wait=True)
    assert run.report is not None  # waited for
    log.info(
        "demo hygiene run done: see `journeys hygiene report`",
        workflow_id=run.workflow_id,
        contacts=run.report.contacts,
        changes=run.report.counts,
        grades_changed=run.report.grades_changed,
    )
