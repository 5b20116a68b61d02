"""What the worker logs while a journey sends email and SMS: JSON lines, every one, with no
address or phone number in clear (Twilio's refusal of a number quotes it), and each send's line
naming the run it was for."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
import structlog

from devstack.sinks.sms import INVALID_NUMBER
from journeys.channels import CHANNELS
from journeys.logging import configure_logging
from tests.scenarios import ADA, SCENARIOS, play
from tests.temporal_fixtures import Stack

# Ada has a phone and never opens: lead_nurturing sends her three emails and an SMS.
NEVER_OPENED = SCENARIOS[2]
# Her copy with a number Twilio refuses, saying which.
DEAD_NUMBER = ADA.model_copy(update={"id": "c-dead-number", "phone": INVALID_NUMBER})


@pytest.fixture
def worker_log() -> Iterator[io.StringIO]:
    """The process's logging, as `journeys worker` configures it, written here for the test."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging(stream=out)
    yield out
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_a_journeys_sends_log_json_lines_naming_the_run_and_no_address(
    own_stack: Stack, worker_log: io.StringIO
) -> None:
    # A server of its own: the last test of the session on the shared one once found it unable
    # to skip time (see own_stack), and waited for ever.
    stack = own_stack
    assert NEVER_OPENED.contact == ADA and ADA.email and ADA.phone
    handle, _ = await play(stack, NEVER_OPENED)
    assert stack.mail.messages and stack.sms.messages  # both channels sent
    await play(stack, replace(NEVER_OPENED, contact=DEAD_NUMBER))

    lines = [json.loads(line) for line in worker_log.getvalue().splitlines()]
    sent = [line for line in lines if line["event"] in ("email sent", "sms sent")]
    assert {line["event"] for line in sent} == {"email sent", "sms sent"}
    refused = [line for line in lines if line["event"] == "send failed for good"]
    assert any("is not a valid phone number" in line["reason"] for line in refused)
    run_id = (await handle.describe()).run_id
    for line in sent:
        if line["workflow_id"] == handle.id:
            assert line["run_id"] == run_id, line
        assert line["activity"] == CHANNELS[line["event"].split()[0]].checked_activity
    logged = worker_log.getvalue()
    for address in (ADA.email, ADA.phone, ADA.phone[1:], INVALID_NUMBER, INVALID_NUMBER[1:]):
        assert address not in logged
