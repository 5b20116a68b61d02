"""A contact data hygiene sunset (a `marketing` suppression) gets no more marketing, on any
channel, while transactional messages still reach them: a running journey with the real SMTP
sink on the time-skipping server, and the store's view of such a contact on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.deliveries import reason_not_to_send
from journeys.channels import MARKETING
from journeys.contacts import Contact
from journeys.hygiene.changes import HygieneChange
from journeys.models import JourneyInput
from journeys.spec import JourneySpec
from journeys.store import ContactStore
from tests.channel_fixtures import make_request
from tests.temporal_fixtures import Stack
from workflows.journey import JourneyWorkflow

SUNSET_REASON = "contact is sunset: no engagement for long, marketing stopped"
ADA = Contact(
    id="c-sunset",
    email="ada@example.com",
    phone="+48601234567",
    attributes={"first_name": "Ada"},
    consent={"email": True, "sms": True},
)
# A receipt-like message the step marks transactional, then a marketing installment.
RECEIPT_THEN_NEWS = JourneySpec.model_validate(
    {
        "id": "receipt_then_news",
        "version": 1,
        "description": "A transactional email, then a marketing one.",
        "trigger": "manual",
        "steps": [
            {
                "id": "receipt",
                "kind": "send",
                "channel": "email",
                "template": "lead_followup",
                "transactional": True,
            },
            {"id": "news", "kind": "send", "channel": "email", "template": "lead_intro"},
            {"id": "nudge", "kind": "send", "channel": "sms", "template": "lead_inbox_nudge"},
            {"id": "done", "kind": "end"},
        ],
    }
)


async def sunset(store: ContactStore, contact_id: str) -> None:
    """A hygiene run sunsets the contact (tag SUNSET, suppressed on marketing)."""
    change = HygieneChange(
        run_id="hygiene-test", contact_id=contact_id, kind="sunset", changed_at=datetime.now(UTC)
    )
    assert await store.apply_hygiene([change]) == 1


async def test_a_sunset_contact_gets_the_transactional_email_and_no_marketing(
    stack: Stack,
) -> None:
    await stack.store.upsert_contacts([ADA])
    await sunset(stack.store, ADA.id)
    result = await stack.env.client.execute_workflow(
        JourneyWorkflow.run,
        JourneyInput(spec=RECEIPT_THEN_NEWS, contact_id=ADA.id),
        id=f"journey:{RECEIPT_THEN_NEWS.id}:{ADA.id}",
        task_queue=stack.settings.task_queue,
    )
    assert [m["Subject"] for m in stack.mail.messages] == ["In case you missed it: part 1 of 3"]
    assert stack.sms.messages == []
    outcomes = {v.step: v.outcome for v in result.visits}
    assert outcomes["receipt"] == "sent"
    assert outcomes["news"] == outcomes["nudge"] == f"failed: {SUNSET_REASON}"
    # In the ledger like every refusal: the marketing sends failed with the reason.
    rows = await stack.store.deliveries_of(ADA.id)
    assert [(r["step_id"], r["status"], r["error"]) for r in rows] == [
        ("receipt", "sent", None),
        ("news", "failed", SUNSET_REASON),
        ("nudge", "failed", SUNSET_REASON),
    ]


async def test_a_sunset_contacts_facts_and_recipient_read_marketing_as_no_channel(
    store_on_each_database: ContactStore,
) -> None:
    store = store_on_each_database
    await store.upsert_contacts([ADA])
    await sunset(store, ADA.id)
    facts = await store.facts(ADA.id)
    # Consent per channel stands (a transactional send still needs its address, not consent
    # to marketing); conditions see the sunset by its tag.
    assert facts.consent == {"email": True, "sms": True}
    assert facts.tags == ["SUNSET"]
    contact, suppressed = await store.recipient(ADA.id)
    assert contact is not None and suppressed == {MARKETING}


def test_only_a_transactional_send_goes_to_a_sunset_contact() -> None:
    marketing = make_request("email", ADA.id)
    receipt = marketing.model_copy(update={"transactional": True})
    address = str(ADA.email)
    assert reason_not_to_send(marketing, ADA, {MARKETING}, address) == SUNSET_REASON
    assert reason_not_to_send(receipt, ADA, {MARKETING}, address) is None
    assert reason_not_to_send(marketing, ADA, set(), address) is None
    # An unsubscribe from the channel stops transactional messages on it too, as before.
    assert reason_not_to_send(receipt, ADA, {"email", MARKETING}, address) is not None
