"""The worker process: the journey, plan and hygiene workflows and every activity, on one task
queue."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from activities.contacts import ContactActivities
from activities.deliveries import Send, checked
from activities.email import EmailActivities
from activities.hygiene import HygieneActivities
from activities.leads import LeadActivities
from activities.onsite import OnsiteActivities
from activities.paths import PathActivities
from activities.plans import PlanActivities
from activities.push import PushActivities
from activities.send_window import SendWindowActivities
from activities.sms import SmsActivities
from activities.team_mail import TeamMailActivities
from journeys.channels import Channel
from journeys.connection import connect
from journeys.heap import settle_after_startup
from journeys.metrics import process_runtime
from journeys.settings import Settings
from journeys.store import ContactStore, open_store
from workers.run_logs import BindRunToLogs
from workflows.hygiene import HygieneWorkflow
from workflows.journey import JourneyWorkflow
from workflows.plan import PlanWorkflow

log = structlog.get_logger()


@asynccontextmanager
async def journey_worker(
    client: Client, store: ContactStore, settings: Settings
) -> AsyncIterator[Worker]:
    """A running worker for the journey and plan workflows; stops (letting activities finish)
    on exit."""
    sms = SmsActivities(store, settings)
    email = EmailActivities(store, settings)
    contacts = ContactActivities(store)
    onsite = OnsiteActivities(store, settings)
    push = PushActivities(store, settings)
    window = SendWindowActivities(store, settings)
    # Work mail shares the marketing email's SMTP sessions.
    team_mail = TeamMailActivities(store, settings, email.mailer)
    plans = PlanActivities(store)
    hygiene = HygieneActivities(store, settings)
    leads = LeadActivities(store, settings)
    paths = PathActivities(store)
    sends: dict[Channel, Send] = {
        "email": email.send_email,
        "sms": sms.send_sms,
        "web_push": push.send_web_push,
        "mobile_push": push.send_mobile_push,
        "onsite": onsite.send_onsite,
    }
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[JourneyWorkflow, PlanWorkflow, HygieneWorkflow],
        activities=[
            *sends.values(),
            *(checked(channel, send) for channel, send in sends.items()),
            contacts.load_contact_facts,
            contacts.change_tags,
            contacts.change_audience,
            contacts.seconds_until_local_time,
            contacts.assign_task,
            window.send_window,
            team_mail.send_team_mail,
            plans.load_clocks,
            plans.load_holidays,
            plans.record_plan,
            hygiene.clean_contacts,
            hygiene.merge_duplicates,
            hygiene.count_hygiene_changes,
            leads.regrade_contacts,
            paths.record_path,
        ],
        interceptors=[BindRunToLogs()],
        max_cached_workflows=settings.worker_cached_runs,
        max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
        max_concurrent_activities=settings.worker_activities,
        max_concurrent_local_activities=settings.worker_local_activities,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.worker_pollers),
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.worker_pollers),
        graceful_shutdown_timeout=timedelta(seconds=30),
    )
    try:
        async with worker:
            yield worker
    finally:
        await email.close()
        await sms.close()
        await push.close()


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect(settings, process_runtime(settings.metrics_address))
    store = await open_store(settings.database_url)
    try:
        async with journey_worker(client, store, settings):
            settle_after_startup()
            log.info(
                "worker started",
                task_queue=settings.task_queue,
                temporal=settings.temporal_address,
                metrics=settings.metrics_address,
            )
            await stop.wait()
            log.info("worker stopping")
    finally:
        await store.close()
