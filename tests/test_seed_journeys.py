"""Seed 001's journeys, every path, on the time-skipping server with real sinks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from journeys.contacts import Contact
from journeys.identity import CONTACT_ID, JOURNEY_ID, JOURNEY_VERSION, STEP
from tests.scenarios import (
    ADA,
    CAL,
    INTRO,
    NPS_FOLLOWUP,
    NPS_SMS,
    PART_2,
    PART_3,
    SCENARIOS,
    Scenario,
    assert_outcome,
    event,
    play,
    register_device,
    scenario,
    start,
)
from tests.temporal_fixtures import Stack, wait_for_step
from workflows.journey import JourneyWorkflow


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.journey}:{s.name}")
async def test_every_path_delivers_exactly_what_the_seed_describes(
    stack: Stack, scenario: Scenario
) -> None:
    _, result = await play(stack, scenario)
    await assert_outcome(stack, scenario, result)


async def test_installments_are_three_days_apart_and_the_wait_for_open_is_three_days(
    stack: Stack,
) -> None:
    _, result = await play(stack, SCENARIOS[2])  # phone, never opened: every timeout fires
    at = {v.step: v.at for v in result.visits}
    minute = timedelta(minutes=1)
    assert abs(at["has_phone"] - at["intro_opened"] - timedelta(days=3)) < minute
    assert abs(at["sms_followup"] - at["followup_opened"] - timedelta(days=3)) < minute


async def test_omnichannel_waits_again_before_the_phone_check_but_not_for_web_push(
    stack: Stack,
) -> None:
    """'... a tag (web push consent). We wait and then check whether the contact has provided a
    phone number': the SMS leaves after both waits, the web push survey after the first only."""
    day = timedelta(days=1)
    minute = timedelta(minutes=1)
    _, result = await play(stack, scenario("nps_omnichannel", "sms_not_visited_followup_email"))
    at = {v.step: v.at for v in result.visits}
    assert abs(at["survey_sms"] - at["after_purchase"] - 10 * day) < minute
    _, result = await play(stack, scenario("nps_omnichannel", "web_push_not_visited"))
    at = {v.step: v.at for v in result.visits}
    assert abs(at["survey_web_push"] - at["after_purchase"] - 7 * day) < minute


async def test_a_phone_number_given_during_the_second_omnichannel_wait_gets_the_sms(
    stack: Stack,
) -> None:
    late = Contact(id="c-late", email="late@example.com", consent={"email": True, "sms": True})
    await stack.store.upsert_contacts([late])
    handle = await start(stack, "nps_omnichannel", late.id)
    await wait_for_step(stack.env, handle, "before_phone_check")
    await stack.store.upsert_contacts([late.model_copy(update={"phone": "+48601234571"})])
    await handle.result()
    assert [(m["to"], m["body"][: len(NPS_SMS)]) for m in stack.sms.messages] == [
        ("+48601234571", NPS_SMS)
    ]
    assert [m["Subject"] for m in stack.mail.messages] == [NPS_FOLLOWUP]
    assert await stack.store.tags_of(late.id) == ["NPS_OMNI_SMS_NOT_VISITED"]


async def test_an_open_that_arrives_before_the_wait_still_counts(stack: Stack) -> None:
    await stack.store.upsert_contacts([ADA])
    handle = await start(stack, "lead_nurturing", ADA.id)
    # Delivered at once, possibly before the intro email has even left.
    await handle.signal(JourneyWorkflow.event, event("opened", "intro"))
    await handle.result()
    assert [m["Subject"] for m in stack.mail.messages] == [INTRO, PART_2, PART_3]


async def test_an_open_of_another_email_does_not_count(stack: Stack) -> None:
    await stack.store.upsert_contacts([ADA])
    handle = await start(stack, "lead_nurturing", ADA.id)
    await handle.signal(JourneyWorkflow.event, event("opened", "part_3"))
    await handle.signal(JourneyWorkflow.event, event("clicked", "intro"))
    await handle.result()
    assert await stack.store.tags_of(ADA.id) == ["NURTURE_SMS_FOLLOWUP"]


async def test_unsubscribing_ends_the_run_at_once(stack: Stack) -> None:
    await stack.store.upsert_contacts([ADA])
    handle = await start(stack, "lead_nurturing", ADA.id)
    await wait_for_step(stack.env, handle, "intro_opened")
    await handle.signal(JourneyWorkflow.event, event("unsubscribed"))
    result = await handle.result()
    assert result.reason == "exit_event"
    assert result.ended_at_step == "intro_opened"
    assert [m["Subject"] for m in stack.mail.messages] == [INTRO]
    assert stack.sms.messages == []
    assert await stack.store.tags_of(ADA.id) == []


async def test_both_nurturing_journeys_run_at_the_same_time_for_one_contact(stack: Stack) -> None:
    both = CAL.model_copy(update={"phone": "+48601234568", "consent": {**CAL.consent, "sms": True}})
    await stack.store.upsert_contacts([both])
    await register_device(stack, both.id, "mobile")
    lead = await start(stack, "lead_nurturing", both.id)
    mobile = await start(stack, "mobile_app_nurturing", both.id)
    await lead.signal(JourneyWorkflow.event, event("opened", "intro"))
    # One result at a time: the time-skipping server does not track concurrent waiters.
    lead_result = await lead.result()
    mobile_result = await mobile.result()
    # They overlap: each started before the other ended.
    assert lead_result.visits[0].at < mobile_result.visits[-1].at
    assert mobile_result.visits[0].at < lead_result.visits[-1].at
    assert await stack.store.tags_of(both.id) == ["MOBILE_NURTURE_COMPLETED", "NURTURE_COMPLETED"]
    channels = [r["channel"] for r in await stack.store.deliveries_of(both.id)]
    assert channels.count("email") == 3 and channels.count("mobile_push") == 3
    assert len(stack.fcm.messages) == 3


async def test_the_run_answers_where_the_contact_is_and_why(stack: Stack) -> None:
    await stack.store.upsert_contacts([ADA])
    handle = await start(stack, "lead_nurturing", ADA.id)
    await wait_for_step(stack.env, handle, "intro_opened")
    status = await handle.query(JourneyWorkflow.status)
    assert status.details.startswith("waiting up to 3 days for 'intro' to be opened")
    assert [v.step for v in status.visits] == ["intro", "intro_opened"]
    assert status.visits[0].outcome == "sent"
    description = await handle.describe()
    sa = description.typed_search_attributes
    assert sa.get(JOURNEY_ID) == "lead_nurturing"
    assert sa.get(JOURNEY_VERSION) == 2
    assert sa.get(CONTACT_ID) == ADA.id
    assert sa.get(STEP) == "intro_opened"
    await handle.signal(JourneyWorkflow.event, event("unsubscribed"))
    await handle.result()
