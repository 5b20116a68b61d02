"""The team-plan demo behind `make run`, at a speed where its five weeks pass in seconds on the
real dev server: the Maildir gets every kind of plan message, each once, and a second `make run`
sends nothing again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from devstack.demo import DEMO_CONTACTS
from devstack.plan_demo import DEMO_PLAN, SALES, SENT_BACK_WITH, answer_calls, run_plan_demo
from journeys.identity import workflow_id
from tests.api_fixtures import GatewayStack
from workflows.runs import start_journey

# A plan day in half a second.
SPEED = 172_800.0
# A plan day in a second, and the call made two plan hours after it came: at the demo's day and
# a half, the call and its due time (two business days) were a quarter of a second apart, and
# a loaded machine made the call overdue.
CALLS_SPEED = 86_400.0
CALLED_AFTER = timedelta(hours=2)


async def _settled(stack: GatewayStack) -> None:
    """Until a second passes with no new message."""
    seen = -1
    while seen != len(stack.mail.messages):
        seen = len(stack.mail.messages)
        await asyncio.sleep(1.0)


def _mails(stack: GatewayStack) -> list[tuple[str, str, str]]:
    return [
        (str(m["To"]).split("@")[0], str(m["X-Plan-Notice"]), str(m["X-Plan-Task"]))
        for m in stack.mail.messages
    ]


async def test_the_demo_team_works_through_a_blog_post(gateway_stack: GatewayStack) -> None:
    stack = gateway_stack
    async with asyncio.timeout(90):
        await run_plan_demo(stack.client, stack.store, stack.settings, SPEED)
    # A follow-up the run was already sending as the last task was done may still arrive: at a
    # plan day per half second, the moment it was due and the completion are one.
    await _settled(stack)
    record = await stack.store.plan(f"plan:blog_post:{DEMO_PLAN}")
    assert record is not None and record.state == "finished"
    assert record.tasks[3].rounds == 2  # the outline approval: sent back once, then approved
    mails = _mails(stack)
    # Each message once: its Message-ID is made from its ledger key.
    ids = [str(m["Message-ID"]) for m in stack.mail.messages]
    assert len(ids) == len(set(ids))
    assert mails[0] == ("cora", "assigned", "generate_idea")
    kinds = {(who, kind, task) for who, kind, task in mails}
    assert ("cora", "reminder", "generate_idea") in kinds
    assert ("sam", "handoff", "keyword_research") in kinds
    assert ("sam", "handoff", "approve_outline") in kinds
    assert ("kit", "handoff", "approve_outline") in kinds
    assert ("wen", "sent_back", "outline") in kinds
    assert ("gia", "follow_up", "images") in kinds
    assert ("mia", "escalation", "images") in kinds
    assert ("wen", "handoff", "publish_and_review") in kinds
    sent_back = next(m for m in stack.mail.messages if str(m["X-Plan-Notice"]) == "sent_back")
    text = sent_back.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert SENT_BACK_WITH in " ".join(text.split())  # as read, whatever the lines' wrapping
    # Every message is in the ledger as sent, under its person.
    for person in {who for who, _, _ in mails}:
        rows = await stack.store.deliveries_of(f"demo-{person}")
        assert [r["status"] for r in rows] == ["sent"] * sum(w == person for w, _, _ in mails)

    sent = len(stack.mail.messages)
    async with asyncio.timeout(10):
        await run_plan_demo(stack.client, stack.store, stack.settings, SPEED)
    await asyncio.sleep(1)
    assert len(stack.mail.messages) == sent


async def test_sales_calls_the_lead_it_reaches_and_the_other_goes_overdue(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    leads = [c for c, _ in DEMO_CONTACTS if c.id in ("demo-cy", "demo-ben")]
    await stack.store.upsert_contacts(leads)
    await stack.store.upsert_people([SALES])
    spec = stack.gw.library["cd_lead_followup"]
    for lead in leads:
        await start_journey(stack.client, spec, lead.id, stack.settings.task_queue, CALLS_SPEED)
    calls = asyncio.create_task(
        answer_calls(stack.client, stack.store, CALLS_SPEED, after=CALLED_AFTER)
    )
    try:
        async with asyncio.timeout(60):
            for lead in leads:
                handle = stack.client.get_workflow_handle(workflow_id(spec.id, lead.id))
                await handle.result()
    finally:
        calls.cancel()
    assert await stack.store.tags_of("demo-cy") == ["CD_CALL_REACHED"]
    assert await stack.store.tags_of("demo-ben") == ["CD_CALL_NOT_MADE"]
    to_rex = [str(m["X-Plan-Notice"]) for m in stack.mail.messages if m["To"] == SALES.email]
    assert to_rex.count("assigned") == 2
