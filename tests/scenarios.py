"""Every path of the seed journeys, as data: who enters, what they do, and what must reach them.

Shared by the path tests and by `tests/record_histories.py`, which records a replay history for
each scenario.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowHandle

from journeys import events
from journeys.contacts import Contact
from journeys.identity import workflow_id
from journeys.leads.library import grading_of
from journeys.library import load_journey
from journeys.models import EndReason, JourneyEvent, JourneyInput, JourneyResult
from journeys.plans.changes import Complete
from journeys.plans.people import Person
from journeys.plans.records import PlanRecord, plan_workflow_id
from journeys.settings import LIBRARY_DIR
from journeys.spec import JourneySpec, TaskStep
from journeys.tasks import task_instance, task_plan
from tests.temporal_fixtures import Stack, wait_for_step
from workflows.journey import JourneyWorkflow
from workflows.plan_runs import change_plan
from workflows.runs import run_search_attributes

ADA = Contact(
    id="c-ada",
    email="ada@example.com",
    phone="+48601234567",
    attributes={"first_name": "Ada"},
    consent={"email": True, "sms": True},
)
BOB = Contact(id="c-bob", email="bob@example.com", consent={"email": True})
CAL = Contact(
    id="c-cal",
    email="cal@example.com",
    in_mobile_app=True,
    consent={"email": True, "mobile_push": True},
)

INTRO = "Welcome, Ada: part 1 of 3"
INTRO_BOB = "Welcome: part 1 of 3"
PART_2 = "Part 2 of 3: the feature most people miss"
PART_3 = "Part 3 of 3: what our best customers do"
FOLLOWUP = "In case you missed it: part 1 of 3"
NUDGE = "Something interesting is waiting in your email inbox"
SMS_FOLLOWUP = "Still there?"


@dataclass(frozen=True)
class Scenario:
    name: str
    journey: str
    contact: Contact
    # (step the run must stand at, event it then receives, the send step the event is about)
    actions: tuple[tuple[str, str, str | None], ...] = ()
    # Email subjects in order; a tuple where an A/B test may send either.
    subjects: tuple[str | tuple[str, ...], ...] = ()
    sms: tuple[str, ...] = ()  # the start of each SMS body, in order
    tags: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    ledger: tuple[tuple[str, str], ...] = field(default=())  # (step, channel) of every delivery
    tags_before: tuple[str, ...] = ()  # set by hand before the run (a consultant's REVIEW_LEFT)
    devices: tuple[str, ...] = ()  # push subscriptions registered first: "web", "mobile"
    pushes: tuple[str, ...] = ()  # titles of the push notifications received (web and mobile)
    ends_at: str | None = None
    team: tuple[Person, ...] = ()  # the team in the store, for task steps
    team_mail: tuple[str, ...] = ()  # the start of each subject of the team's mail, in order
    # (task step, outcome): its owner completes the task with it once the run stands there.
    completes: tuple[str, str] | None = None
    # The data of each event the actions send (a merge names the survivor: {"into": ...}).
    event_data: dict[str, Any] = field(default_factory=dict)
    reason: EndReason = "end"  # why the run ends
    # The lead is graded (the library's grading.yaml) before the run starts.
    graded: bool = False
    # (step the run must stand at, event kind): recorded in the store at the run's clock, as the
    # gateway records a click, for count conditions.
    recorded: tuple[tuple[str, str], ...] = ()
    # (step the run must stand at, attributes): the lead's attributes change, the lead is
    # regraded and the grade_changed event handed to the run.
    regrade: tuple[str, dict[str, Any]] | None = None


DAN = Contact(id="c-dan", email="dan@example.com", consent={"email": True})
EVA = Contact(id="c-eva", email="eva@example.com", phone="+48601234570", consent={"sms": True})
FOX = Contact(id="c-fox", consent={"web_push": True})
GIL = Contact(id="c-gil")
NEWS = Contact(id="c-news", email="news@example.com", consent={"email": True, "newsletter": True})
PUSHY = Contact(id="c-pushy", consent={"web_push": True})
APPY = Contact(id="c-appy", consent={"mobile_push": True})

CD_NEWSLETTER = "This month: three things customers like you set up first"
CD_CALL = "New task: Call a C/D lead who did not open the newsletter"
CD_CALL_REMINDER = "Reminder: Call a C/D lead who did not open the newsletter is due"
SALES = (
    Person(id="s-ola", name="Ola Sales", email="ola@team.example", roles=["sales"]),
    Person(id="s-jan", name="Jan Sales", email="jan@team.example", roles=["sales"]),
)
# A C lead (an influencer at a small company, by the library's grading) in Los Angeles (a year of
# mornings crosses both DST changes) whose sales owner is s-ola, not the salesperson the role's
# turns would give the lead (s-jan).
LEA = Contact(
    id="c-lea",
    email="lea@example.com",
    time_zone="America/Los_Angeles",
    attributes={"first_name": "Lea", "role": "influencer", "sales_owner": "s-ola"},
    consent={"email": True},
)
# What makes her a B: the same role at a company of 200 people or more.
LARGER_COMPANY = {"company_size": 250}
GRADING = grading_of(LIBRARY_DIR)
CD_NURTURE_NEWSLETTER = "This month: one idea that saves teams like yours an hour a week"
CD_INVITATION = "You are invited: a live session with customers like you"
CD_NURTURE_CALL = "New task: Call a C/D lead who clicked twice in 30 days"
CD_HANDOFF = "New task: Contact live by phone or in person - a C/D lead is now graded A or B"

NPS_ASK = "How likely are you to recommend us?"
NPS_SHORT = "One question, ten seconds"
NPS_FOLLOWUP = "Still ten seconds: how did we do?"
NPS_SMS = "Thanks for your purchase! 0-10"
NPS_SMS_FOLLOWUP = "A reminder: tell us in ten seconds"

SCENARIOS = [
    Scenario(
        "opened",
        "lead_nurturing",
        ADA,
        actions=(("intro_opened", "opened", "intro"),),
        subjects=(INTRO, PART_2, PART_3),
        tags=("NURTURE_COMPLETED",),
    ),
    Scenario(
        "phone_then_followup_opened",
        "lead_nurturing",
        ADA,
        actions=(("followup_opened", "opened", "followup_email"),),
        subjects=(INTRO, FOLLOWUP, PART_2, PART_3),
        sms=(NUDGE,),
        tags=("NURTURE_COMPLETED",),
    ),
    Scenario(
        "phone_never_opened",
        "lead_nurturing",
        ADA,
        subjects=(INTRO, FOLLOWUP),
        sms=(NUDGE, SMS_FOLLOWUP),
        tags=("NURTURE_SMS_FOLLOWUP",),
    ),
    # Data hygiene merged the lead into another contact while the run waited: it ends there.
    Scenario(
        "merged_while_waiting",
        "lead_nurturing",
        ADA,
        actions=(("intro_opened", events.CONTACT_MERGED, None),),
        event_data={"into": "c-ada-kept"},
        subjects=(INTRO,),
        reason="contact_merged",
        ends_at="intro_opened",
    ),
    Scenario(
        "no_phone_resend_opened",
        "lead_nurturing",
        BOB,
        actions=(("resend_opened", "opened", "resend_intro"),),
        subjects=(INTRO_BOB, INTRO_BOB),
        tags=("NURTURE_REENGAGED",),
    ),
    Scenario(
        "no_phone_never_opened",
        "lead_nurturing",
        BOB,
        subjects=(INTRO_BOB, INTRO_BOB),
        tags=("NURTURE_AUDIENCE",),
        audiences=("gads_brand_presence",),
    ),
    Scenario(
        "mobile_app",
        "mobile_app_nurturing",
        CAL,
        devices=("mobile",),
        pushes=tuple(f"Getting started, part {i} of 3" for i in (1, 2, 3)),
        tags=("MOBILE_NURTURE_COMPLETED",),
        ledger=(("push_1", "mobile_push"), ("push_2", "mobile_push"), ("push_3", "mobile_push")),
    ),
    # --- nps_email ---------------------------------------------------------------------------
    Scenario("not_opted_in", "nps_email", GIL, ends_at="not_opted_in"),
    Scenario(
        "clicked",
        "nps_email",
        DAN,
        actions=(("survey_clicked", "survey_viewed", "survey_email"),),
        subjects=(NPS_ASK,),
        tags=("NPS_EMAIL_DONE",),
    ),
    Scenario("not_clicked", "nps_email", DAN, subjects=(NPS_ASK,), ends_at="no_click"),
    # --- nps_sms -------------------------------------------------------------------------------
    Scenario(
        "answered",
        "nps_sms",
        EVA,
        actions=(("answered", "nps_answered", "survey_sms"),),
        sms=(NPS_SMS,),
        tags=("NPS_SMS_PATH_END",),
    ),
    Scenario(
        "not_answered", "nps_sms", EVA, sms=(NPS_SMS, NPS_SMS_FOLLOWUP), tags=("NPS_SMS_PATH_END",)
    ),
    # --- nps_web_push --------------------------------------------------------------------------
    Scenario("no_subscription", "nps_web_push", GIL, ends_at="no_subscription"),
    Scenario(
        "answered",
        "nps_web_push",
        FOX,
        devices=("web",),
        pushes=("How did we do?",),
        actions=(("answered", "nps_answered", "survey_push"),),
        tags=("NPS_WEB_PUSH_PATH_END",),
        ledger=(("survey_push", "web_push"),),
    ),
    Scenario(
        "not_answered",
        "nps_web_push",
        FOX,
        devices=("web",),
        pushes=("How did we do?", "Ten seconds for us?"),
        tags=("NPS_WEB_PUSH_PATH_END",),
        ledger=(("survey_push", "web_push"), ("followup_push", "web_push")),
    ),
    # --- nps_website ---------------------------------------------------------------------------
    Scenario(
        "seen_review_left",
        "nps_website",
        GIL,
        actions=(("visited", "onsite_shown", "feedback_chat"),),
        tags_before=("REVIEW_LEFT",),
        tags=("REVIEW_LEFT",),
        ledger=(("feedback_chat", "onsite"),),
        ends_at="finished",
    ),
    Scenario(
        "seen_no_review",
        "nps_website",
        GIL,
        actions=(("visited", "onsite_shown", "feedback_chat"),),
        ledger=(("feedback_chat", "onsite"), ("nps_popup", "onsite")),
        ends_at="popup_queued",
    ),
    Scenario(
        "not_seen",
        "nps_website",
        GIL,
        tags=("NO_CAMPAIGN",),
        ledger=(("feedback_chat", "onsite"),),
    ),
    # --- nps_omnichannel: each path, by the channel of its survey and whether it was visited --
    Scenario(
        "newsletter_ab_email_visited",
        "nps_omnichannel",
        NEWS,
        actions=(("ab_email_visited", "survey_viewed", None),),
        subjects=((NPS_ASK, NPS_SHORT),),
        tags=("NPS_OMNI_AB_EMAIL_VISITED",),
    ),
    Scenario(
        "newsletter_ab_email_not_visited_followup_email",
        "nps_omnichannel",
        NEWS,
        subjects=((NPS_ASK, NPS_SHORT), NPS_FOLLOWUP),
        tags=("NPS_OMNI_AB_EMAIL_NOT_VISITED",),
    ),
    Scenario(
        "web_push_visited_thanked",
        "nps_omnichannel",
        PUSHY,
        devices=("web",),
        pushes=("How did we do?", "Thank you!"),
        actions=(("web_push_visited", "survey_viewed", None),),
        tags=("NPS_OMNI_WEB_PUSH_VISITED",),
        ledger=(("survey_web_push", "web_push"), ("thanks_push", "web_push")),
    ),
    Scenario(
        "web_push_not_visited",
        "nps_omnichannel",
        PUSHY,
        devices=("web",),
        pushes=("How did we do?",),
        tags=("NPS_OMNI_WEB_PUSH_NOT_VISITED",),
        ledger=(("survey_web_push", "web_push"),),
    ),
    Scenario(
        "sms_visited",
        "nps_omnichannel",
        ADA,
        actions=(("sms_visited", "survey_viewed", None),),
        sms=(NPS_SMS,),
        tags=("NPS_OMNI_SMS_VISITED",),
    ),
    Scenario(
        "sms_not_visited_followup_email",
        "nps_omnichannel",
        ADA,
        sms=(NPS_SMS,),
        subjects=(NPS_FOLLOWUP,),
        tags=("NPS_OMNI_SMS_NOT_VISITED",),
    ),
    Scenario(
        "mobile_push_visited",
        "nps_omnichannel",
        APPY,
        devices=("mobile",),
        pushes=("How did we do?",),
        actions=(("mobile_push_visited", "survey_viewed", None),),
        tags=("NPS_OMNI_MOBILE_PUSH_VISITED",),
        ledger=(("survey_mobile_push", "mobile_push"),),
    ),
    Scenario(
        "mobile_push_not_visited",
        "nps_omnichannel",
        APPY,
        devices=("mobile",),
        pushes=("How did we do?",),
        tags=("NPS_OMNI_MOBILE_PUSH_NOT_VISITED",),
        ledger=(("survey_mobile_push", "mobile_push"),),
    ),
    Scenario(
        "email_visited",
        "nps_omnichannel",
        DAN,
        actions=(("email_visited", "survey_viewed", None),),
        subjects=(NPS_ASK,),
        tags=("NPS_OMNI_EMAIL_VISITED",),
    ),
    Scenario(
        "email_not_visited",
        "nps_omnichannel",
        DAN,
        subjects=(NPS_ASK, NPS_FOLLOWUP),
        tags=("NPS_OMNI_EMAIL_NOT_VISITED",),
    ),
    Scenario(
        "review_chat_visited",
        "nps_omnichannel",
        GIL,
        actions=(("review_chat_visited", "survey_viewed", None),),
        tags=("NPS_OMNI_REVIEW_CHAT_VISITED",),
        ledger=(("review_chat", "onsite"),),
    ),
    Scenario(
        "review_chat_not_visited",
        "nps_omnichannel",
        GIL,
        tags=("NPS_OMNI_REVIEW_CHAT_NOT_VISITED",),
        ledger=(("review_chat", "onsite"),),
    ),
    # --- cd_lead_followup ------------------------------------------------------------------------
    Scenario(
        "call_reached",
        "cd_lead_followup",
        ADA,
        team=SALES,
        completes=("sales_call", "reached"),
        subjects=(CD_NEWSLETTER,),
        team_mail=(CD_CALL,),
        tags=("CD_CALL_REACHED",),
        ends_at="reached",
    ),
    Scenario(
        "call_no_answer",
        "cd_lead_followup",
        ADA,
        team=SALES,
        completes=("sales_call", "no_answer"),
        subjects=(CD_NEWSLETTER, "Sorry we missed you"),
        team_mail=(CD_CALL,),
        tags=("CD_CALL_NO_ANSWER",),
        ends_at="no_answer",
    ),
    Scenario(
        "call_overdue",
        "cd_lead_followup",
        ADA,
        team=SALES,
        subjects=(CD_NEWSLETTER,),
        team_mail=(CD_CALL, CD_CALL_REMINDER),
        tags=("CD_CALL_NOT_MADE",),
        ends_at="call_overdue",
    ),
    # Merged while sales had the call to make: the task is withdrawn, the run ends there.
    Scenario(
        "merged_during_call",
        "cd_lead_followup",
        ADA,
        team=SALES,
        actions=(("sales_call", events.CONTACT_MERGED, None),),
        event_data={"into": "c-ada-kept"},
        subjects=(CD_NEWSLETTER,),
        team_mail=(CD_CALL,),
        reason="contact_merged",
        ends_at="sales_call",
    ),
    Scenario(
        "no_one_in_sales",
        "cd_lead_followup",
        ADA,
        subjects=(CD_NEWSLETTER,),
        tags=("CD_CALL_NOT_MADE",),
        ends_at="call_overdue",
    ),
    # --- cd_lead_nurturing ------------------------------------------------------------------------
    Scenario(
        "not_cd",
        "cd_lead_nurturing",
        LEA.model_copy(update={"attributes": {**LEA.attributes, **LARGER_COMPANY}}),
        graded=True,
        ends_at="not_cd",
    ),
    Scenario(
        "clicked_call_not_interested",
        "cd_lead_nurturing",
        LEA,
        team=SALES,
        graded=True,
        recorded=(("m1", "clicked"), ("m1", "clicked")),
        completes=("call", "not_interested"),
        subjects=(CD_NURTURE_NEWSLETTER, CD_INVITATION),
        team_mail=(CD_NURTURE_CALL,),
        tags=("CD_NOT_INTERESTED",),
        ends_at="not_interested",
    ),
    Scenario(
        "graded_b_handed_off",
        "cd_lead_nurturing",
        LEA,
        team=SALES,
        graded=True,
        regrade=("m1", LARGER_COMPANY),
        completes=("handoff", "met"),
        subjects=(CD_NURTURE_NEWSLETTER, CD_INVITATION),
        team_mail=(CD_HANDOFF,),
        tags=("CD_HANDED_TO_SALES",),
        ends_at="handed_off",
    ),
]


def scenario(journey: str, name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.journey == journey and s.name == name)


def event(kind: str, step: str | None = None, **data: object) -> JourneyEvent:
    return JourneyEvent(kind=kind, step=step, occurred_at=datetime.now(UTC), data=data)


async def start(stack: Stack, journey: str, contact_id: str, speed: float = 1.0) -> WorkflowHandle:
    """Start a run indexed as workflows.runs starts it (its handle lets the time-skipping
    server skip time while a test awaits its result)."""
    spec = load_journey(LIBRARY_DIR / f"{journey}.yaml", LIBRARY_DIR)
    return await stack.env.client.start_workflow(
        JourneyWorkflow.run,
        JourneyInput(spec=spec, contact_id=contact_id, speed=speed),
        id=workflow_id(journey, contact_id),
        task_queue=stack.settings.task_queue,
        search_attributes=run_search_attributes(spec, contact_id),
    )


async def register_device(stack: Stack, contact_id: str, kind: str) -> None:
    """A browser subscribed at the web push stand-in, or an app token known to the FCM one."""
    if kind == "web":
        sub = stack.web_push.new_subscription()
        await stack.store.add_push_subscription(contact_id, "web", sub["endpoint"], sub["keys"])
    else:
        await stack.store.add_push_subscription(contact_id, "mobile", stack.fcm.new_token(), {})


async def play(stack: Stack, scenario: Scenario) -> tuple[WorkflowHandle, JourneyResult]:
    """Run one scenario to its end, delivering its events when the run reaches each step."""
    await stack.store.upsert_contacts([scenario.contact])
    if scenario.team:
        await stack.store.upsert_people(scenario.team)
    await stack.store.change_tags(scenario.contact.id, scenario.tags_before, [])
    for kind in scenario.devices:
        await register_device(stack, scenario.contact.id, kind)
    if scenario.graded:
        await regraded(stack, scenario.contact.id)
    handle = await start(stack, scenario.journey, scenario.contact.id)
    for at_step, kind in scenario.recorded:
        await wait_for_step(stack.env, handle, at_step)
        now = await stack.env.get_current_time()
        await stack.store.record_event(
            scenario.contact.id, JourneyEvent(kind=kind, occurred_at=now)
        )
    for at_step, kind, about in scenario.actions:
        await wait_for_step(stack.env, handle, at_step)
        await handle.signal(JourneyWorkflow.event, event(kind, about, **scenario.event_data))
    if scenario.regrade:
        at_step, attributes = scenario.regrade
        await wait_for_step(stack.env, handle, at_step)
        contact = scenario.contact
        changed = {**contact.attributes, **attributes}
        await stack.store.upsert_contacts([contact.model_copy(update={"attributes": changed})])
        grade_changed = await regraded(stack, contact.id)
        assert grade_changed is not None
        await handle.signal(JourneyWorkflow.event, grade_changed)
    if scenario.completes:
        task, outcome = scenario.completes
        plan = await task_plan_of(stack, handle, task)
        owner = plan.tasks[0].people[0]
        await change_plan(
            stack.env.client, plan.plan_id, Complete(task=task, by=owner, outcome=outcome)
        )
    result = await handle.result()
    return handle, result


async def regraded(stack: Stack, contact_id: str) -> JourneyEvent | None:
    """Grade the lead as the gateway does after each event (the library's grading.yaml), at the
    run's clock: the grade_changed event recorded (and kept in the outbox), None if unchanged."""
    assert GRADING is not None
    now = await stack.env.get_current_time()
    change = await stack.store.regrade(contact_id, GRADING, now)
    return change.held.event if change else None


async def task_plan_of(
    stack: Stack, handle: WorkflowHandle, step_id: str, journey: JourneySpec | None = None
) -> PlanRecord:
    """The plan of the run's first visit to the task step `step_id` of `journey` (by default the
    library's), once its task is someone's (the plan has recorded itself)."""
    await wait_for_step(stack.env, handle, step_id)
    status = await handle.query(JourneyWorkflow.status)
    journey = journey or load_journey(LIBRARY_DIR / f"{status.journey_id}.yaml", LIBRARY_DIR)
    step = journey.step(step_id)
    assert isinstance(step, TaskStep) and handle.first_execution_run_id is not None
    instance = task_instance(status.contact_id, handle.first_execution_run_id, 1)
    plan_id = plan_workflow_id(task_plan(journey, step).id, instance)
    async with asyncio.timeout(20):
        while (plan := await stack.store.plan(plan_id)) is None:  # noqa: ASYNC110 - the store
            await asyncio.sleep(0.05)
    return plan


def push_title(message: dict[str, Any]) -> str:
    """The title a person saw: web push carries it in the payload, FCM in the notification."""
    return str((message.get("payload") or message.get("notification") or {})["title"])


async def assert_outcome(stack: Stack, scenario: Scenario, result: JourneyResult) -> None:
    """What reached the contact, in order, and what the store holds, is what the seed says."""
    contact = scenario.contact
    theirs = [m for m in stack.mail.messages if m["To"] == contact.email]
    team = [m["Subject"] for m in stack.mail.messages if m["To"] != contact.email]
    assert len(team) == len(scenario.team_mail), team
    assert all(sent.startswith(start) for sent, start in zip(team, scenario.team_mail, strict=True))
    subjects = [m["Subject"] for m in theirs]
    assert len(subjects) == len(scenario.subjects), subjects
    for subject, expected in zip(subjects, scenario.subjects, strict=True):
        assert subject in expected if isinstance(expected, tuple) else subject == expected
    assert len(stack.sms.messages) == len(scenario.sms)
    for sent, expected in zip(stack.sms.messages, scenario.sms, strict=True):
        assert sent["to"] == contact.phone
        assert sent["body"].startswith(expected)
    received = sorted([*stack.web_push.messages, *stack.fcm.messages], key=lambda m: m["at"])
    assert [push_title(m) for m in received] == list(scenario.pushes)
    assert await stack.store.tags_of(contact.id) == sorted(scenario.tags)
    assert await stack.store.audiences_of(contact.id) == sorted(scenario.audiences)
    if scenario.ledger:
        rows = await stack.store.deliveries_of(contact.id)
        assert [(r["step_id"], r["channel"]) for r in rows] == list(scenario.ledger)
        assert {r["status"] for r in rows} == {"sent"}
    assert result.reason == scenario.reason
    if scenario.ends_at:
        assert result.ended_at_step == scenario.ends_at
