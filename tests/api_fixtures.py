"""The gateway for tests: a session-wide Temporal dev server, a worker on a task queue of its own
and the app served by uvicorn on a free port, reached over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from devstack.embedded import dev_server_path
from devstack.sinks.mail import MailSink
from devstack.sinks.push import FcmSink
from devstack.sinks.sms import SmsSink
from gateway.deps import Gateway
from gateway.serve import serve_gateway
from journeys.identity import SEARCH_ATTRIBUTES
from journeys.library import load_library
from journeys.plans.library import load_plans
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore
from tests.channel_fixtures import free_port
from tests.temporal_fixtures import CONVERTER
from workers.worker import journey_worker

API_KEY = "test-api-key"


@pytest.fixture(scope="session")
async def dev_temporal() -> AsyncIterator[WorkflowEnvironment]:
    """One dev server for every gateway test: tests keep apart by task queue and contact ids."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(),
        search_attributes=list(SEARCH_ATTRIBUTES),
        data_converter=CONVERTER,
    )
    yield env
    await env.shutdown()


@asynccontextmanager
async def serving(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """`serve_gateway` on a free port of 127.0.0.1 in this event loop, and a client for it."""
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_gateway(gw, "127.0.0.1", port, stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            async with asyncio.timeout(10):
                while True:
                    if task.done():
                        task.result()  # it failed to start: say why
                    try:
                        await http.get("/")  # any answer, 404 included: it is up
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.01)
            yield http
    finally:
        stop.set()
        await task


@dataclass
class ServedGateway:
    """The gateway served in the test's loop, and a client for it."""

    http: httpx.AsyncClient
    gw: Gateway
    mail: MailSink

    @property
    def settings(self) -> Settings:
        return self.gw.settings

    @property
    def store(self) -> ContactStore:
        return self.gw.store

    @property
    def client(self) -> Client:
        return self.gw.client


@dataclass
class GatewayStack(ServedGateway):
    """... with the API key on `http`, the Temporal it talks to and the other sinks its worker
    sends to."""

    env: WorkflowEnvironment
    sms: SmsSink
    fcm: FcmSink


@pytest.fixture
async def gateway_stack(
    dev_temporal: WorkflowEnvironment,
    store: ContactStore,
    push_settings: Settings,
    mail_sink: MailSink,
    sms_sink: SmsSink,
    fcm_sink: FcmSink,
) -> AsyncIterator[GatewayStack]:
    settings = push_settings.model_copy(
        update={
            "library_dir": LIBRARY_DIR,
            "task_queue": f"gateway-{uuid.uuid4().hex[:8]}",
            "api_key": SecretStr(API_KEY),
        }
    )
    gw = Gateway(
        settings, store, dev_temporal.client, load_library(LIBRARY_DIR), load_plans(LIBRARY_DIR)
    )
    async with journey_worker(dev_temporal.client, store, settings), serving(gw) as http:
        http.headers["Authorization"] = f"Bearer {API_KEY}"
        yield GatewayStack(http, gw, mail_sink, dev_temporal, sms_sink, fcm_sink)


def new_contact_id() -> str:
    """Runs outlive a test on the shared dev server: every test's contacts are its own."""
    return f"c-{uuid.uuid4().hex[:12]}"
