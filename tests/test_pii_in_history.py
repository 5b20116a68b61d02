"""No PII in Temporal: a branch loads only the facts its conditions read; a plan run carries
person ids and clocks, never names or addresses; a journey's task step and its plan carry
nothing of the contact but its id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from activities.contacts import ContactActivities
from journeys.conditions import facts_needed
from journeys.contacts import Contact
from journeys.models import ContactFacts, FactsRequest
from journeys.plans.changes import Complete
from journeys.store import ContactStore
from tests.plan_fixtures import TEAM, Plans
from tests.plan_scenarios import rejected_then_approved
from tests.scenarios import ADA
from tests.temporal_fixtures import CONVERTER, Stack
from tests.test_interpreter import run, spec
from tests.test_task_runs import run_to_call
from workflows.plan_runs import change_plan

NATIONAL_ID = "ID-55-0071-9913"
ZOE = Contact(
    id="c-zoe",
    email="zoe@example.com",
    phone="+48601234567",
    time_zone="Europe/Warsaw",
    consent={"email": True, "sms": True},
    attributes={"plan": "pro", "national_id": NATIONAL_ID, "first_name": "Zoe"},
)


def test_facts_needed_names_what_the_conditions_read_and_nothing_else() -> None:
    whens = [
        "attribute:plan == 'pro'",
        "not has_tag:vip",
        "opted_in:sms",
        "subscribed_newsletter",
        "has_web_push",
        "in_audience:beta",
        "nps:promoter",
        "attribute:plan != 'free'",
    ]
    assert facts_needed("c1", whens) == FactsRequest(
        contact_id="c1",
        flags=["web_push"],
        consent=["sms", "newsletter"],
        tags=["vip"],
        audiences=["beta"],
        attributes=["plan"],
    )


def test_grade_and_count_conditions_ask_for_the_grade_and_their_counts_up_to_the_runs_clock() -> (
    None
):
    at = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
    whens = [
        "grade_in:[C,D]",
        "not score>=40",
        "count:purchase within 180d == 1",
        "count:clicked within 30d >= 2",
        "not count:purchase within 180d >= 2",
    ]
    assert facts_needed("c1", whens, at=at) == FactsRequest(
        contact_id="c1", grade=True, counts=["purchase/180", "clicked/30"], at=at
    )
    # Conditions reading neither ask for neither.
    assert facts_needed("c1", ["has_email"], at=at) == FactsRequest(
        contact_id="c1", flags=["has_email"], at=at
    )


def test_a_request_keeps_the_grade_and_the_counts_only_when_asked() -> None:
    facts = ContactFacts(
        contact_id="c1", grade="C", score=12.5, counts={"purchase/180": 1, "clicked/30": 4}
    )
    assert FactsRequest(contact_id="c1").keep(facts) == ContactFacts(contact_id="c1")
    assert FactsRequest(contact_id="c1", grade=True, counts=["clicked/30"]).keep(
        facts
    ) == ContactFacts(contact_id="c1", grade="C", score=12.5, counts={"clicked/30": 4})


def test_a_request_keeps_only_the_facts_asked_for() -> None:
    facts = ContactFacts(
        contact_id="c1",
        has_email=True,
        has_phone=True,
        consent={"email": True, "sms": True},
        tags=["vip", "churn-risk"],
        audiences=["beta", "debtors"],
        attributes={"plan": "pro", "national_id": NATIONAL_ID},
    )
    request = FactsRequest(
        contact_id="c1", flags=["has_phone"], consent=["sms"], tags=["vip"], attributes=["plan"]
    )
    assert request.keep(facts) == ContactFacts(
        contact_id="c1",
        has_phone=True,
        consent={"sms": True},
        tags=["vip"],
        attributes={"plan": "pro"},
    )


async def test_a_branch_keeps_other_attributes_out_of_the_history(stack: Stack) -> None:
    journey = spec(
        [
            {
                "id": "check",
                "kind": "branch",
                "conditions": [{"when": "attribute:plan == 'pro'", "next": "pro"}],
                "otherwise": "free",
            },
            {"id": "pro", "kind": "end", "tag": "PRO"},
            {"id": "free", "kind": "end", "tag": "FREE"},
        ]
    )
    handle = await run(stack, journey, ZOE)
    await handle.result()
    assert await stack.store.tags_of(ZOE.id) == ["PRO"]
    # What the history keeps of the branch's facts, as whoever holds the payload keys reads it.
    # The facts are read in a local activity: its marker keeps its result.
    markers = [
        e.marker_recorded_event_attributes.details
        for e in (await handle.fetch_history()).events
        if e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    [loaded] = [
        details["result"].payloads
        for details in markers
        if json.loads(details["data"].payloads[0].data)["activity_type"] == "load_contact_facts"
    ]
    [facts] = await CONVERTER.decode(loaded, [ContactFacts])
    assert facts == ContactFacts(contact_id=ZOE.id, attributes={"plan": "pro"})


async def test_a_branch_scheduled_before_the_change_still_gets_every_fact(
    store: ContactStore,
) -> None:
    # Its activity task carries a bare contact id: the facts it was promised, all of them.
    await store.upsert_contacts([ZOE])
    facts = await ContactActivities(store).load_contact_facts(ZOE.id)
    assert facts.attributes == ZOE.attributes
    assert facts.time_zone == "Europe/Warsaw"


async def test_a_plan_run_keeps_names_and_addresses_out_of_the_history(plans: Plans) -> None:
    # The busiest path: every kind of change, hand-offs naming who finished, a comment.
    plan_id = await rejected_then_approved(plans)
    text = await decoded_history(plans.env.client, plan_id)
    assert '"cleo"' in text and "Needs a case study." in text  # decoded: ids and the comment
    for person in TEAM:
        assert person.name not in text and str(person.email) not in text


async def test_a_task_step_keeps_the_contact_out_of_its_journey_and_its_plan(
    own_stack: Stack,
) -> None:
    stack = own_stack
    handle, plan = await run_to_call(stack)
    await change_plan(
        stack.env.client,
        plan.plan_id,
        Complete(task="sales_call", by=plan.tasks[0].people[0], outcome="reached"),
    )
    await handle.result()
    for run_id in (handle.id, plan.plan_id):
        text = await decoded_history(stack.env.client, run_id)
        assert "Call a C/D lead" in text  # decoded
        for pii in (str(ADA.email), str(ADA.phone), "Ada"):
            assert pii not in text, (run_id, pii)


async def decoded_history(client: Client, workflow_id: str) -> str:
    """Every payload of a run's history, decrypted, as text: what whoever holds the payload
    keys reads there."""
    history = json.loads((await client.get_workflow_handle(workflow_id).fetch_history()).to_json())
    payloads: list[Payload] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict) and {"metadata", "data"} <= set(node):
            payloads.append(json_format.ParseDict(node, Payload(), ignore_unknown_fields=True))
        elif isinstance(node, dict | list):
            for child in node.values() if isinstance(node, dict) else node:
                collect(child)

    collect(history)
    assert CONVERTER.payload_codec is not None
    return "\n".join(
        p.data.decode("utf-8", "replace") for p in await CONVERTER.payload_codec.decode(payloads)
    )
