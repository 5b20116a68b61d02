"""Temporal for tests: the time-skipping server from PyPI, and a worker wired to real sinks."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devstack.embedded import test_server_path
from devstack.sinks.mail import MailSink
from devstack.sinks.push import FcmSink, WebPushSink
from devstack.sinks.sms import SmsSink
from journeys.connection import data_converter
from journeys.identity import register_search_attributes
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from workers.worker import journey_worker
from workflows.journey import JourneyWorkflow

# Every Temporal of the tests sees payloads encrypted, as in production; the key is a test's own.
PAYLOAD_KEYS = "tests:" + base64.b64encode(b"journeys-tests-payload-key-0001!").decode()
CONVERTER = data_converter(Settings(env="dev", payload_keys=SecretStr(PAYLOAD_KEYS)))


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=CONVERTER
    )
    try:
        await register_search_attributes(env.client, "default")
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as env:
        yield env


@dataclass
class Stack:
    """Everything a journey touches in a test: Temporal, the store and the two sinks."""

    env: WorkflowEnvironment
    store: ContactStore
    settings: Settings
    mail: MailSink
    sms: SmsSink
    web_push: WebPushSink
    fcm: FcmSink


@asynccontextmanager
async def running_stack(
    env: WorkflowEnvironment,
    store: ContactStore,
    settings: Settings,
    mail: MailSink,
    sms: SmsSink,
    web_push: WebPushSink,
    fcm: FcmSink,
) -> AsyncIterator[Stack]:
    """A worker on its own task queue, running the project's library against real sinks."""
    settings = settings.model_copy(
        update={"library_dir": LIBRARY_DIR, "task_queue": f"test-{uuid.uuid4().hex[:8]}"}
    )
    async with journey_worker(env.client, store, settings):
        yield Stack(env, store, settings, mail, sms, web_push, fcm)


@pytest.fixture
async def stack(
    time_skipping: WorkflowEnvironment,
    store: ContactStore,
    push_settings: Settings,
    mail_sink: MailSink,
    sms_sink: SmsSink,
    web_push_sink: WebPushSink,
    fcm_sink: FcmSink,
) -> AsyncIterator[Stack]:
    async with running_stack(
        time_skipping, store, push_settings, mail_sink, sms_sink, web_push_sink, fcm_sink
    ) as stack:
        yield stack


@pytest.fixture
async def own_stack(
    store: ContactStore,
    push_settings: Settings,
    mail_sink: MailSink,
    sms_sink: SmsSink,
    web_push_sink: WebPushSink,
    fcm_sink: FcmSink,
) -> AsyncIterator[Stack]:
    """`stack` on a time-skipping server of its own, for a test that lets days pass while runs
    of workflows talk to each other: the session's server may be left unable to skip time by a
    test before (an activity cut off when its worker stopped)."""
    async with (
        time_skipping_server() as env,
        running_stack(
            env, store, push_settings, mail_sink, sms_sink, web_push_sink, fcm_sink
        ) as stack,
    ):
        yield stack


async def wait_for_step(env: WorkflowEnvironment, handle: WorkflowHandle, step: str) -> None:
    """Let journey time pass, an hour at a time, until the run stands at `step`.

    Time skips only when asked to: an hour is short beside the journeys' waits of days, so the
    run is caught at the step before the step's own wait runs out.
    """
    async with asyncio.timeout(20):
        while (await handle.query(JourneyWorkflow.status)).current_step != step:
            await env.sleep(timedelta(hours=1))


SHOWN = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activity",
    EventType.EVENT_TYPE_TIMER_STARTED: "timer",
    EventType.EVENT_TYPE_MARKER_RECORDED: "local activity",
}


async def summaries(client: Client, handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
    """(activity or timer, its summary) of every activity scheduled, local activity run and timer
    started, in order. Markers that say nothing (a `workflow.patched` marker) are left out."""
    found = []
    for event in (await handle.fetch_history()).events:
        if event.event_type in SHOWN:
            summary = event.user_metadata.summary if event.HasField("user_metadata") else None
            if summary is None and event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                continue
            text = (await client.data_converter.decode([summary]))[0] if summary else None
            found.append((SHOWN[event.event_type], text))
    return found
