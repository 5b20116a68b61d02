"""The demo behind `make run`: sample contacts walk every path of the lead-nurturing journey, and
two C/D leads reach sales as phone-call tasks (the team's side is devstack.plan_demo).

At demo speed a 3-day wait lasts seconds, so within a minute the Temporal UI, the Maildir and the
SMS log show every path. Starting is idempotent: a second `make run` resumes, it does not repeat.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio.client import Client

from devstack.sinks.push import WebPushSink
from journeys.contacts import Contact
from journeys.library import load_library
from journeys.models import JourneyEvent
from journeys.settings import Settings
from journeys.store import ContactStore
from workflows.runs import hand_new_event

log = structlog.get_logger()

_BOTH = {"email": True, "sms": True}
DEMO_CONTACTS = [
    # (contact, the send step whose email this contact opens, if any) -> the path it takes
    (
        Contact(
            id="demo-ada",
            email="ada@example.com",
            phone="+48601234567",
            consent=_BOTH,
            attributes={"first_name": "Ada"},
        ),
        "intro",
    ),  # opens: installments 2 and 3
    (
        Contact(id="demo-ben", email="ben@example.com", phone="+48601234568", consent=_BOTH),
        "followup_email",
    ),  # SMS nudge, opens the follow-up: installments 2 and 3
    (
        Contact(id="demo-cy", email="cy@example.com", phone="+48601234569", consent=_BOTH),
        None,
    ),  # SMS nudge, follow-up email, second SMS
    (
        Contact(id="demo-dee", email="dee@example.com", consent={"email": True}),
        "resend_intro",
    ),  # no phone: resend, opened
    (
        Contact(id="demo-eve", email="eve@example.com", consent={"email": True}),
        None,
    ),  # no phone, never opens: ad audience
    (
        Contact(
            id="demo-fay",
            email="fay@example.com",
            in_mobile_app=True,
            consent={"email": True, "mobile_push": True},
        ),
        "intro",
    ),  # also installs the app
    (
        Contact(id="demo-gus", email="gus@example.com", consent={"email": True, "web_push": True}),
        None,
    ),  # buys something; his browser takes web push: the omnichannel NPS survey comes that way
]
# A device token the FCM stand-in accepts; fixed, so a second `make run` registers nothing new.
FAY_PHONE = "demo-fay-phone:APA91b" + "0" * 100


async def run_demo(
    client: Client, store: ContactStore, settings: Settings, speed: float, web_push: WebPushSink
) -> None:
    library = load_library(settings.library_dir)

    async def event(
        contact_id: str,
        kind: str,
        step: str | None = None,
        journey: str | None = None,
        **data: Any,
    ) -> None:
        # The same id on every `make run`: a purchase handled once does not start the NPS survey
        # (whose re-entry is allowed after exit) a second time.
        once_id = f"demo:{contact_id}:{kind}:{step or ''}"
        ev = JourneyEvent(
            kind=kind,
            step=step,
            occurred_at=datetime.now(UTC),
            data={"demo": True, **data},
            id=once_id,
        )
        outcome = await hand_new_event(
            client,
            store,
            library.values(),
            contact_id,
            ev,
            settings.task_queue,
            once_id,
            speed,
            journey_id=journey,
        )
        if outcome is None:
            log.info("demo event handled before", contact=contact_id, kind=kind, step=step)
        else:
            log.info("demo event", contact=contact_id, kind=kind, step=step, journeys=outcome)

    await store.upsert_contacts([c for c, _ in DEMO_CONTACTS])
    # Devices: demo-fay's phone has the app, demo-gus's browser subscribed to web push.
    await store.add_push_subscription("demo-fay", "mobile", FAY_PHONE, {})
    browser = web_push.new_subscription()
    await store.add_push_subscription("demo-gus", "web", browser["endpoint"], browser["keys"])
    # Every contact is added (lead_nurturing's trigger); a second `make run` starts nobody twice.
    for contact, _ in DEMO_CONTACTS:
        await event(contact.id, "contact_added")
    await event("demo-fay", "app_installed")  # mobile_app_nurturing runs beside lead_nurturing
    for buyer in ("demo-ada", "demo-gus"):
        await event(buyer, "purchase")  # nps_omnichannel: by SMS for Ada, web push for Gus
    # The CRM grades two leads C/D (cd_lead_followup): neither opens the newsletter, both have a
    # phone, so sales gets a call task for each; Cy is reached, Ben's call is never made.
    for lead in ("demo-cy", "demo-ben"):
        await event(lead, "lead_graded_cd")
    # A few seconds later the mail clients open what these contacts open. An open may arrive
    # before its wait starts (the follow-up is not even sent yet): it still counts.
    await asyncio.sleep(3)
    # Their mail clients report which journey's message it was, as the gateway's pixel would:
    # the dashboard counts them for lead_nurturing. Eve's mail goes through Apple's privacy
    # proxy, which fetches every image on arrival: a machine's open, which no wait takes for hers.
    for contact, opens in DEMO_CONTACTS:
        if opens:
            await event(contact.id, "opened", opens, journey="lead_nurturing")
    await event("demo-eve", "opened", "intro", journey="lead_nurturing", machine=True)
    await event("demo-ada", "clicked", "part_2", journey="lead_nurturing", url=settings.site_url)
    log.info("demo events delivered: watch the Temporal UI, the maildir and the push logs")
