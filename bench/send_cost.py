"""The sends' own work: the CPU one checked send costs the worker outside Temporal, the part of a
journey's worker CPU that bare Temporal's no-op activities (bench.bare) do not do.

    .venv/bin/python -m bench.send_cost [--sends 400]

Calls `send_email_checked` and `send_sms_checked` in this process (temporalio's
ActivityEnvironment, no server), each for `sends` contacts of the throughput bench's kind, with
its workers' settings (bench.embedded.bench_settings): the send window's check and the ledger on
SQLite, the email composed, signed and handed to an SMTP server, the SMS to the Twilio stand-in,
the log line (written to nowhere). The SMTP server and the stand-in run in a child process, so
this process's CPU (all its threads, SQLite's too) is the sends' alone. The throughput bench's
four-step journey sends 1.5 emails and 0.5 SMS a run on average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.deliveries import checked
from activities.email import EmailActivities
from activities.sms import SmsActivities
from bench.embedded import bench_settings, started_sinks
from devstack.stack import DevPorts, settings_env
from devstack.tally import half_with_phones
from journeys import eventloop
from journeys.channels import Channel
from journeys.contacts import Contact
from journeys.logging import configure_logging
from journeys.models import SendRequest, SendResult, WindowCheck
from journeys.settings import Settings
from journeys.store import open_store

TEMPLATES: dict[Channel, str] = {"email": "lead_intro", "sms": "lead_inbox_nudge"}


async def serve_sinks(ports: DevPorts) -> None:
    """The child process: the SMTP server and the Twilio stand-in, with the parent's settings
    (from the environment, devstack.stack.settings_env); says `ready` once they listen."""
    await started_sinks(Settings(), ports)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def cpu_per_send(
    send: Callable[[SendRequest], Awaitable[SendResult]], channel: Channel, to: list[Contact]
) -> float:
    """CPU ms per send of `send` to each of `to` (the first a warm-up, not counted)."""
    now = datetime.now(UTC)
    env = ActivityEnvironment()
    began = 0.0
    for n, contact in enumerate(to):
        if n == 1:
            began = time.process_time()
        result = await env.run(
            send,
            SendRequest(
                key=f"bench:{contact.id}/1/{channel}/1",
                workflow_id=f"bench:{contact.id}",
                journey_id="four_steps",
                step_id=channel,
                contact_id=contact.id,
                channel=channel,
                template=TEMPLATES[channel],
                window=WindowCheck(now=now),
            ),
        )
        if result.status != "sent":
            raise RuntimeError(f"{channel} to {contact.id}: {result}")
    return (time.process_time() - began) / (len(to) - 1) * 1000


async def measure(sends: int) -> dict[Channel, float]:
    ports = DevPorts.free()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        settings = bench_settings(Path(tmp), ports)
        sinks = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.send_cost", "--serve-sinks"),
            *(str(ports.smtp), str(ports.sms)),
            env=settings_env(settings),
            stdout=subprocess.PIPE,
        )
        try:
            assert sinks.stdout is not None
            if await sinks.stdout.readline() != b"ready\n":
                raise RuntimeError("the SMTP server and the Twilio stand-in did not start")
            store = await open_store(settings.database_url)
            email, sms = EmailActivities(store, settings), SmsActivities(store, settings)
            try:
                contacts = half_with_phones("send-cost", 2 * sends + 1)
                await store.upsert_contacts(contacts)
                phones = [c for c in contacts if c.phone]
                return {
                    "email": await cpu_per_send(
                        checked("email", email.send_email), "email", contacts[: sends + 1]
                    ),
                    "sms": await cpu_per_send(
                        checked("sms", sms.send_sms), "sms", phones[: sends + 1]
                    ),
                }
            finally:
                await email.close()
                await sms.close()
                await store.close()
        finally:
            sinks.kill()
            await sinks.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=400)
    parser.add_argument("--serve-sinks", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sinks:
        configure_logging("WARNING")
        smtp, sms = args.serve_sinks
        eventloop.run(serve_sinks(DevPorts(smtp=smtp, sms=sms)))
        return
    # Each send's log line as a worker writes it, to nowhere.
    with open(os.devnull, "w") as nowhere:
        configure_logging("INFO", nowhere)
        cost = eventloop.run(measure(args.sends))
    per_run = 1.5 * cost["email"] + 0.5 * cost["sms"]
    print(
        f"CPU per send: email {cost['email']:.2f} ms, SMS {cost['sms']:.2f} ms; "
        f"the four-step journey's sends, 1.5 emails and 0.5 SMS a run: {per_run:.1f} ms a run"
    )


if __name__ == "__main__":
    main()
