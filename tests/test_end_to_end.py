"""End to end on the real Temporal dev server, through the command line a person would use:
import contacts, start the journey, hand over an open, and see the next message arrive."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from devstack.embedded import dev_server_path
from devstack.sinks.mail import MailSink
from devstack.sinks.sms import SmsSink
from journeys.identity import SEARCH_ATTRIBUTES
from journeys.store import open_store
from tests.channel_fixtures import free_port, smtp_server
from tests.temporal_fixtures import CONVERTER, PAYLOAD_KEYS

JOURNEYS = str(Path(sys.executable).parent / "journeys")
CSV = """\
id,email,phone,time_zone,consent,first_name
e2e-ann,ann@example.com,+48601234567,Europe/Warsaw,email;sms,Ann
e2e-bad,not-an-email,+48601234567,Europe/Warsaw,email,Bad
"""


@pytest.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(),
        search_attributes=list(SEARCH_ATTRIBUTES),
        data_converter=CONVERTER,
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal"],
    )
    yield env
    await env.shutdown()


async def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        JOURNEYS, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_import_start_open_and_the_next_message_arrives(
    dev_server: WorkflowEnvironment, mail_sink: MailSink, sms_sink: SmsSink, tmp_path: Path
) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "JOURNEYS_ENV": "dev",
        "JOURNEYS_PAYLOAD_KEYS": PAYLOAD_KEYS,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "JOURNEYS_TASK_QUEUE": "e2e",
        "JOURNEYS_DATABASE_URL": f"sqlite:///{tmp_path}/journeys.db",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail_sink.port),
        "TWILIO_ACCOUNT_SID": sms_sink.account_sid,
        "TWILIO_AUTH_TOKEN": sms_sink.auth_token,
        "TWILIO_BASE_URL": sms_sink.base_url,
        "COLUMNS": "200",
        "JOURNEYS_METRICS_ADDRESS": metrics,
    }
    (tmp_path / "contacts.csv").write_text(CSV)
    code, out = await cli(env, "contacts", "import", str(tmp_path / "contacts.csv"))
    assert code == 1
    assert "contacts.csv:line 3: email: email is not valid" in out
    assert "imported 1 contacts, rejected 1 problem(s)" in out

    worker = await asyncio.create_subprocess_exec(JOURNEYS, "worker", env=env)
    try:
        # A day lasts 10 s: the wait for the open lasts 30 s, ample for the CLI calls below.
        code, out = await cli(
            env, "start", "lead_nurturing", "--contact", "e2e-ann", "--speed", "8640"
        )
        assert (code, out.strip()) == (0, "lead_nurturing: started 1, already in or through it 0")
        code, out = await cli(env, "start", "lead_nurturing", "--contact", "e2e-ann")
        assert out.strip() == "lead_nurturing: started 0, already in or through it 1"

        await mail_sink.wait_for(1, timeout=30)
        assert mail_sink.messages[0]["Subject"] == "Welcome, Ann: part 1 of 3"
        opened = ("event", "e2e-ann", "opened", "--step", "intro", "--id", "open-1")
        code, out = await cli(env, *opened)
        assert (code, out.strip()) == (0, "lead_nurturing: signalled")
        code, out = await cli(env, *opened)
        assert (code, out.strip()) == (0, "event 'open-1' was handled before: nothing done")

        await mail_sink.wait_for(2, timeout=30)
        assert mail_sink.messages[1]["Subject"] == "Part 2 of 3: the feature most people miss"
        # The worker's /metrics counted both (the second maybe a moment after it left).
        async with httpx.AsyncClient() as http, asyncio.timeout(5):
            while True:
                if (sent := await emails_sent(http, metrics)) >= 2:
                    break
                await asyncio.sleep(0.1)
        assert sent == 2
        assert sms_sink.messages == []  # opened in time: no SMS nudge

        code, out = await cli(env, "status", "e2e-ann", "--json")
        assert code == 0
        (run,) = json.loads(out)
        assert run["journey"] == "lead_nurturing"
        assert [v["step"] for v in run["visits"]][:3] == ["intro", "intro_opened", "part_2"]
        assert [e["kind"] for e in run["events"]] == ["opened"]
    finally:
        worker.terminate()
        assert await asyncio.wait_for(worker.wait(), 30) == 0


async def emails_sent(http: httpx.AsyncClient, address: str) -> float:
    """journeys_sends_total for email sent, on the /metrics at `address`."""
    text = (await http.get(f"http://{address}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "journeys_sends_total"
        and sample.labels.items() >= {"channel": "email", "outcome": "sent"}.items()
    )


class StallsFirstMessage:
    """An SMTP server that takes every message and holds its answer to the first one until
    `released`: the worker sending it is killed in between."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.first_in = asyncio.Event()
        self.released = asyncio.Event()

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        if len(self.messages) == 1:
            self.first_in.set()
            await self.released.wait()
        return "250 OK"


async def test_a_worker_killed_mid_send_is_followed_by_a_retry_and_no_send_stays_undecided(
    dev_server: WorkflowEnvironment, sms_sink: SmsSink, tmp_path: Path
) -> None:
    server = StallsFirstMessage()
    database_url = f"sqlite:///{tmp_path}/journeys.db"
    async with smtp_server(server) as port:
        env = {
            **os.environ,
            "JOURNEYS_ENV": "dev",
            "JOURNEYS_PAYLOAD_KEYS": PAYLOAD_KEYS,
            "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
            "JOURNEYS_TASK_QUEUE": "e2e-kill",
            "JOURNEYS_DATABASE_URL": database_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "TWILIO_ACCOUNT_SID": sms_sink.account_sid,
            "TWILIO_AUTH_TOKEN": sms_sink.auth_token,
            "TWILIO_BASE_URL": sms_sink.base_url,
        }
        (tmp_path / "contacts.csv").write_text("\n".join(CSV.splitlines()[:2]) + "\n")
        assert (await cli(env, "contacts", "import", str(tmp_path / "contacts.csv")))[0] == 0
        worker = await asyncio.create_subprocess_exec(JOURNEYS, "worker", env=env)
        try:
            code, _ = await cli(env, "start", "lead_nurturing", "--contact", "e2e-ann")
            assert code == 0
            await asyncio.wait_for(server.first_in.wait(), 30)
            worker.kill()  # SIGKILL while the server holds its answer to DATA
            await worker.wait()
            killed_at = time.monotonic()
            worker = await asyncio.create_subprocess_exec(JOURNEYS, "worker", env=env)
            while len(server.messages) < 2:
                assert time.monotonic() - killed_at < 45, "the send was not retried"
                await asyncio.sleep(0.2)
            retried_after = time.monotonic() - killed_at
        finally:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 30)
            server.released.set()

    # Within the heartbeat timeout and a retry, not the start-to-close timeout.
    assert retried_after < 30
    # The outcome was unknown: sent again as the same message.
    first, second = server.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Subject"] == second["Subject"] == "Welcome, Ann: part 1 of 3"
    store = await open_store(database_url)
    try:
        [row] = await store.deliveries_of("e2e-ann")
    finally:
        await store.close()
    assert (row["status"], row["reconciled"], row["attempt"]) == ("sent", "resent", 2)
