"""The production shape on this machine, without Docker: does it hold together?

    python -m devstack.prod_sim [--contacts 24] [--speed 17280]      (make prod-sim)

What runs, each part as production runs it: the Temporal dev server standing in for the cluster;
a PostgreSQL server (devstack.postgres) holding the contact store; the SMTP server and the Twilio
stand-in (devstack.sinks); two `journeys worker` and two `journeys gateway` processes on their own
ports, all on the one store and task queue, started at once on the empty database (the runs
start once both workers poll), outside JOURNEYS_ENV=dev with secrets of their own made here and
given through the environment (the public dev ones are refused there).

What it does: stores the contacts through the gateways' /v1 API and starts lead_nurturing for
each through it at `speed` (a day in 5 s: every path ends within about 40 s); every third contact
opens the intro email (its pixel fetched just after the machine window, see gateway.tracking)
and clicks its call to action, and every contact visits a page (/v1 events); every request goes
to the gateways in turn. Then both gateways are frozen (SIGSTOP) past their outbox loops'
interval while events are kept in the outbox as a gateway that died after recording them leaves
them (their lease over), and thawed together: both loops wake at once and drain the one outbox
side by side (on a busy machine one may get to it first and take it all). The busier worker
is SIGKILLed as the intros go out, and started again.

What it checks, once every run completed (exit 1, each failure on a line of its own):
- every message the runs sent arrived once (devstack.tally: by Message-ID, SMS by ledger key),
  and no ledger row on PostgreSQL is left undecided;
- no run received one event twice (its history's signals, decoded), though both gateways drain
  the one outbox; every event left in the outbox reached its run once, every open and click
  the gateways recorded reached the run, and the outbox is empty at the end;
- nothing was lost after the kill (the above, with the worker killed once and back);
- no process exited on its own.
The summary says which process did what, from the histories' identities (pid@host).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiohttp
from pydantic import SecretStr
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from devstack.postgres import PostgresServer, running_postgres
from devstack.processes import (
    ServiceProcess,
    cpu_seconds,
    free_port,
    stop_server,
    until,
    until_polled,
)
from devstack.sinks.mail import MailSink
from devstack.sinks.sms import SmsSink
from devstack.stack import DevPorts, settings_env, start_temporal, wait_for_temporal
from devstack.tally import (
    Tally,
    count,
    expected_messages,
    half_with_phones,
    outcome,
    received_messages,
    undecided,
)
from gateway.outbox import RETRY_INTERVAL
from gateway.tracking import MACHINE_WINDOW
from journeys import eventloop
from journeys.codec import new_key
from journeys.contacts import Contact
from journeys.identity import register_search_attributes, workflow_id
from journeys.library import load_library
from journeys.logging import configure_logging
from journeys.models import JourneyEvent
from journeys.settings import LIBRARY_DIR, Settings
from journeys.store import ContactStore, open_store
from journeys.store.schema import events

JOURNEY = "lead_nurturing"
# A person's browser: the gateway counts a fetch with no user agent as a machine's.
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
# Opens come this long after the email arrived: the gateway takes a fetch sooner for a privacy
# proxy's, and the wait for it is 3 days (15 s at the default speed).
OPEN_AFTER = MACHINE_WINDOW.total_seconds() + 1
# Events a dead gateway left in the outbox, per contact: enough that draining them takes both
# gateways a while.
BACKLOG_PER_CONTACT = 3


@dataclass(frozen=True)
class SimPlan:
    contacts: int = 24
    # A day lasts 5 s: the longest path (two waits of 3 days) takes about 35 s.
    speed: float = 17280
    # How long the runs get to complete, from the first request.
    drain_limit: float = 150


@dataclass
class Figures:
    """What the simulation came to (see the module's docstring)."""

    runs: int = 0
    unfinished: int = 0
    tally: Tally = field(default_factory=Tally)
    undecided: int = 0
    # Events kept in `held_events` at the end.
    held_left: int = 0
    # (run, event id) pairs signalled more than once.
    handed_twice: int = 0
    # The events left in the outbox, and how many reached their run exactly once.
    backlog: int = 0
    backlog_handed_once: int = 0
    # Opens and clicks the gateways recorded for the runs (store), and of them those a run
    # received (history).
    tracked_recorded: int = 0
    tracked_handed: int = 0
    # Page visits posted to /v1, and of them those a run received.
    api_events: int = 0
    api_handed: int = 0
    worker_kills: int = 0
    killed: str = ""
    # How the runs ended: their last step, and how many.
    ends: Counter[str] = field(default_factory=Counter)
    # Exits no one asked for, by process name.
    own_exits: dict[str, int] = field(default_factory=dict)
    # Per process name: signals and starts it made (gateways), workflow and activity tasks it
    # ran (workers), read from the histories.
    signals_by: Counter[str] = field(default_factory=Counter)
    backlog_by: Counter[str] = field(default_factory=Counter)
    tasks_by: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def failures(self) -> list[str]:
        """What went wrong, a line each; empty when everything held."""
        found = []
        if self.unfinished:
            found.append(f"{self.unfinished} of {self.runs} runs did not complete")
        if self.tally.lost or self.tally.duplicates or self.tally.delivered != self.tally.expected:
            found.append(
                f"messages: {self.tally.expected} expected, {self.tally.delivered} delivered, "
                f"{self.tally.lost} lost, {self.tally.duplicates} duplicates"
            )
        if self.tally.expected == 0:
            found.append("no message was expected: the runs sent nothing")
        if self.undecided:
            found.append(f"{self.undecided} ledger rows left neither sent nor failed")
        if self.held_left:
            found.append(f"{self.held_left} events still kept in the outbox")
        if self.handed_twice:
            found.append(f"{self.handed_twice} events handed to a run more than once")
        if self.backlog_handed_once != self.backlog:
            found.append(
                f"of {self.backlog} events left in the outbox, "
                f"{self.backlog_handed_once} reached their run once"
            )
        if self.tracked_handed != self.tracked_recorded:
            found.append(
                f"of {self.tracked_recorded} opens and clicks recorded, "
                f"{self.tracked_handed} reached their run"
            )
        if self.api_handed != self.api_events:
            found.append(
                f"of {self.api_events} events posted to /v1, {self.api_handed} reached their run"
            )
        if self.worker_kills != 1:
            found.append(f"the workers were killed {self.worker_kills} times, not once")
        for name, exits in self.own_exits.items():
            found.append(f"{name} exited on its own {exits} times (see its log)")
        for name in ("gateway-1", "gateway-2"):
            if not self.signals_by[name]:
                found.append(f"{name} handed nothing to Temporal")
        for name in ("worker-1", "worker-2"):
            if not self.tasks_by[name]:
                found.append(f"{name} ran no task")
        return found

    def summary(self) -> str:
        t = self.tally
        by = ", ".join(f"{name} {n}" for name, n in sorted(self.signals_by.items()))
        drained = ", ".join(f"{name} {n}" for name, n in sorted(self.backlog_by.items()))
        tasks = ", ".join(f"{name} {n}" for name, n in sorted(self.tasks_by.items()))
        ends = ", ".join(f"{step} {n}" for step, n in sorted(self.ends.items()))
        return "\n".join(
            [
                f"runs            {self.runs} {JOURNEY}, {self.unfinished} unfinished, "
                f"in {self.seconds:.0f} s; ended at {ends}",
                f"messages        {t.expected} expected, {t.delivered} delivered, {t.lost} lost, "
                f"{t.duplicates} duplicates, {t.copies} copies; "
                f"ledger on PostgreSQL: {self.undecided} undecided",
                f"events          {self.tracked_recorded} opens and clicks recorded by the "
                f"gateways, {self.tracked_handed} reached their run; {self.api_events} /v1 "
                f"events posted, {self.api_handed} reached their run",
                f"outbox          {self.backlog} events left behind, {self.backlog_handed_once} "
                f"handed over once ({drained or 'by no one'}); {self.held_left} kept at the end; "
                f"{self.handed_twice} handed to a run twice",
                f"to Temporal     signals and starts by {by or 'no one'}",
                f"workers         tasks run by {tasks or 'no one'}; "
                f"{self.killed or 'no worker'} SIGKILLed mid-send and started again",
            ]
        )


@dataclass
class Sim:
    settings: Settings
    client: Client
    store: ContactStore
    mail: MailSink
    sms: SmsSink
    workers: list[ServiceProcess]
    gateways: list[ServiceProcess]
    gateway_urls: list[str]
    http: aiohttp.ClientSession
    # Requests made so far: each goes to the gateways in turn.
    requests: int = 0

    def next_gateway(self) -> str:
        self.requests += 1
        return self.gateway_urls[self.requests % len(self.gateway_urls)]

    def process_names(self) -> dict[int, str]:
        """Each pid any of the services ran under, by name (worker-1, gateway-2, ...)."""
        named = {f"worker-{i + 1}": w for i, w in enumerate(self.workers)}
        named |= {f"gateway-{i + 1}": g for i, g in enumerate(self.gateways)}
        return {pid: name for name, process in named.items() for pid in process.pids}


def production_settings(
    pg: PostgresServer, database: str, ports: DevPorts, gateway_port: int
) -> Settings:
    """Settings as a deployment gives them: JOURNEYS_ENV production, secrets made for this
    run (none of the public dev defaults, which the services refuse), the store on PostgreSQL."""
    return Settings().model_copy(
        update={
            "env": "production",
            "temporal_address": f"127.0.0.1:{ports.temporal}",
            "task_queue": "prod-sim",
            "payload_keys": SecretStr(new_key("sim")),
            "codec_key": None,
            "metrics_address": None,
            "database_url": pg.url(database),
            "library_dir": LIBRARY_DIR,
            "secret_key": SecretStr(secrets.token_urlsafe(32)),
            "api_key": SecretStr(secrets.token_urlsafe(24)),
            "dashboard_password": None,
            # Where messages' links lead: the one public address, behind which a load balancer
            # would spread the requests; the simulation spreads them itself.
            "gateway_url": f"http://127.0.0.1:{gateway_port}",
            "smtp_host": "127.0.0.1",
            "smtp_port": ports.smtp,
            "smtp_username": None,
            "smtp_password": None,
            "smtp_starttls": False,
            "postal_address": "1 Simulation Road, Testville, TS 00001",
            "site_url": "https://shop.example.org",
            "twilio_account_sid": "AC" + secrets.token_hex(16),
            "twilio_auth_token": SecretStr(secrets.token_urlsafe(24)),
            "twilio_base_url": f"http://127.0.0.1:{ports.sms}",
            "vapid_private_key": None,
            "fcm_access_token": None,
            "fcm_credentials_file": None,
        }
    )


@contextlib.asynccontextmanager
async def production_stack(data_dir: Path) -> AsyncIterator[Sim]:
    """Everything up, the four services answering; everything stopped on exit."""
    ports = DevPorts.free()
    gateway_ports = [free_port(), free_port()]
    async with contextlib.AsyncExitStack() as running:
        # The dev server boots while PostgreSQL's initdb runs.
        server = start_temporal(data_dir, ports)
        running.push_async_callback(stop_server, server, signal.SIGTERM)
        pg = running.enter_context(running_postgres())
        database = "journeys"
        pg.create_database(database)
        settings = production_settings(pg, database, ports, gateway_ports[0])
        env = settings_env(settings)
        env.pop("JOURNEYS_GATEWAY_PROCESSES", None)  # one process per gateway
        mail = MailSink()
        sms = SmsSink(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
        for sink, port in ((mail, ports.smtp), (sms, ports.sms)):
            await sink.start(port=port)
            running.push_async_callback(sink.stop)
        workers = [ServiceProcess(["worker"], env, data_dir / f"worker-{i}.log") for i in (1, 2)]
        gateways = [
            ServiceProcess(
                ["gateway", "--host", "127.0.0.1", "--port", str(port)],
                env,
                data_dir / f"gateway-{i}.log",
            )
            for i, port in enumerate(gateway_ports, 1)
        ]
        # Stopped gateways first, then workers (callbacks run last in, first out).
        for process in [*workers, *gateways]:
            running.push_async_callback(process.stop)
        client = await wait_for_temporal(settings, server)
        await register_search_attributes(client, settings.temporal_namespace)
        # All at once on the empty database, as a deployment starts them.
        for process in [*workers, *gateways]:
            process.start()
        urls = [f"http://127.0.0.1:{port}" for port in gateway_ports]
        assert settings.api_key is not None  # made by production_settings
        headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
        # A connection per request: a kept-alive one the gateway closes (idle, or as it thaws
        # after the freeze) just as a request goes out would fail that request.
        connector = aiohttp.TCPConnector(force_close=True)
        http = await running.enter_async_context(
            aiohttp.ClientSession(headers=headers, connector=connector)
        )
        await asyncio.gather(*(_answering(http, url) for url in urls))
        await until_polled(client, settings.temporal_namespace, settings.task_queue, len(workers))
        store = await open_store(settings.database_url)
        running.push_async_callback(store.close)
        yield Sim(settings, client, store, mail, sms, workers, gateways, urls, http)


async def _answering(http: aiohttp.ClientSession, url: str) -> None:
    """Wait (up to a minute) until the gateway at `url` says it can record events."""
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)


async def _call(sim: Sim, method: str, path: str, body: object | None = None) -> int:
    """One request to the next gateway in turn; its status. A 5xx is tried again (with the same
    body: the API is idempotent), as a backend service would."""
    for _ in range(10):
        async with sim.http.request(method, sim.next_gateway() + path, json=body) as response:
            await response.read()
            if response.status < 500:
                return response.status
        await asyncio.sleep(0.5)
    return response.status


async def enter(sim: Sim, person: Contact, speed: float) -> None:
    """Store the contact and start the journey for them, through the gateways' API."""
    fields = person.model_dump(mode="json", exclude={"id"}, exclude_none=True)
    status = await _call(sim, "PUT", f"/v1/contacts/{person.id}", fields)
    if status not in (200, 201):
        raise RuntimeError(f"PUT /v1/contacts/{person.id}: {status}")
    status = await _call(
        sim, "POST", f"/v1/contacts/{person.id}/journeys/{JOURNEY}", {"speed": speed}
    )
    if status != 201:
        raise RuntimeError(f"POST /v1/contacts/{person.id}/journeys/{JOURNEY}: {status}")


async def visit(sim: Sim, person: Contact) -> None:
    """The shop's backend reports a page visit (/v1 events): handed to the contact's run."""
    body = {"event_id": uuid.uuid4().hex, "kind": "visited_url", "data": {"url": "/pricing"}}
    status = await _call(sim, "POST", f"/v1/contacts/{person.id}/events", body)
    if status != 200:
        raise RuntimeError(f"POST /v1/contacts/{person.id}/events: {status}")


def _intro(sim: Sim, person: Contact) -> tuple[EmailMessage, float] | None:
    for message, arrived in zip(sim.mail.messages, sim.mail.arrived_at, strict=False):
        if message["To"] == person.email and message["X-Journey-Step"] == "intro":
            return message, arrived
    return None


def _tracked_path(message: EmailMessage, kind: str) -> str:
    """The gateway path of the message's open pixel ('o') or first tracked link ('c')."""
    body = message.get_body(("html",))
    assert isinstance(body, EmailMessage)
    found = re.search(rf"https?://[^/\"'\s]+(/t/{kind}/[A-Za-z0-9._~-]+)", body.get_content())
    if found is None:
        raise RuntimeError(f"no /t/{kind}/ link in the intro email")
    return found.group(1)


async def open_and_click(sim: Sim, person: Contact, deadline: float) -> None:
    """Read the intro email as a person does, a little after it arrived, and click its call
    to action; each fetch to the next gateway. Nothing when no intro came by `deadline` (a
    time.monotonic(); the run's result then says why)."""
    while (found := _intro(sim, person)) is None:
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)
    message, arrived = found
    await asyncio.sleep(max(0.0, arrived + OPEN_AFTER - time.perf_counter()))
    for kind in ("o", "c"):
        url = sim.next_gateway() + _tracked_path(message, kind)
        async with sim.http.get(
            url, headers={"User-Agent": BROWSER}, allow_redirects=False
        ) as response:
            if response.status not in (200, 302):
                raise RuntimeError(f"GET /t/{kind}/...: {response.status}")


async def leave_behind(sim: Sim, people: list[Contact]) -> list[str]:
    """Keep BACKLOG_PER_CONTACT events per contact in the outbox as a gateway that died after
    recording them leaves them (their lease over: due at once) while both gateways are frozen
    (SIGSTOP) past their outbox loops' interval, then thaw them together: both loops wake at
    once and drain the same outbox side by side. Privacy-proxy opens: each run keeps them and
    does not take them for a read, so the paths stay as they are. Their ids."""
    for gateway in sim.gateways:
        gateway.pause()
    try:
        ids = []
        for person in people:
            for _ in range(BACKLOG_PER_CONTACT):
                event = JourneyEvent(
                    kind="opened",
                    step="intro",
                    occurred_at=datetime.now(UTC),
                    data={"machine": True},
                    id=f"left-behind-{uuid.uuid4().hex}",
                )
                await sim.store.keep_event(person.id, JOURNEY, event, timedelta(0))
                ids.append(str(event.id))
        await asyncio.sleep(RETRY_INTERVAL + 0.5)
    finally:
        for gateway in sim.gateways:
            gateway.resume()
    return ids


async def kill_a_worker(sim: Sim, at_messages: int, deadline: float) -> str:
    """SIGKILL the busier worker (by CPU used since the runs began, not in starting up: the one
    sending, as the runs stick to the worker that ran them last) once the sinks have received
    `at_messages`, sends in flight then; its supervisor starts it again at once. Its name."""
    began = {i: cpu_seconds(w.pid) for i, w in enumerate(sim.workers, 1) if w.pid is not None}
    await until(lambda: len(sim.mail.arrived_at) + len(sim.sms.messages) >= at_messages, deadline)
    busy = {
        i: cpu_seconds(w.pid) - began.get(i, 0.0)
        for i, w in enumerate(sim.workers, 1)
        if w.pid is not None
    }
    busiest = max(busy, key=busy.__getitem__)
    sim.workers[busiest - 1].kill()
    return f"worker-{busiest}"


async def read_histories(
    sim: Sim, people: list[Contact], figures: Figures, backlog: set[str]
) -> None:
    """From each run's history: who handed what to it, who ran its tasks, and whether it
    received an event twice or missed one the gateways recorded or left in the outbox."""
    names = sim.process_names()

    def name(identity: str) -> str:
        pid = identity.partition("@")[0]
        return names.get(int(pid), f"other ({identity})") if pid.isdigit() else identity

    recorded = await _tracked_recorded(sim.store)
    figures.tracked_recorded = sum(recorded.values())
    signalled: Counter[str] = Counter()
    for person in people:
        handle = sim.client.get_workflow_handle(workflow_id(JOURNEY, person.id))
        seen: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                attrs = event.workflow_execution_signaled_event_attributes
                (ev,) = await sim.client.data_converter.decode(attrs.input.payloads, [JourneyEvent])
                assert isinstance(ev, JourneyEvent) and ev.id is not None
                seen[ev.id] += 1
                figures.signals_by[name(attrs.identity)] += 1
                if ev.id in backlog:
                    signalled[ev.id] += 1
                    figures.backlog_by[name(attrs.identity)] += 1
                elif ev.kind in ("opened", "clicked") and seen[ev.id] == 1:
                    kinds[ev.kind] += 1
                elif ev.id.startswith("api:") and seen[ev.id] == 1:
                    figures.api_handed += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                identity = event.workflow_execution_started_event_attributes.identity
                figures.signals_by[name(identity)] += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                identity = event.workflow_task_started_event_attributes.identity
                figures.tasks_by[name(identity)] += 1
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                identity = event.activity_task_started_event_attributes.identity
                figures.tasks_by[name(identity)] += 1
        figures.handed_twice += sum(n > 1 for n in seen.values())
        figures.tracked_handed += sum(
            min(kinds[k], recorded[(person.id, k)]) for k in ("opened", "clicked")
        )
    figures.backlog = len(backlog)
    figures.backlog_handed_once = sum(signalled[i] == 1 for i in backlog)


async def _tracked_recorded(store: ContactStore) -> Counter[tuple[str, str]]:
    """Opens and clicks of the journey's emails the gateways recorded, per contact and kind,
    besides the privacy-proxy opens left behind in the outbox."""
    person = events.c.data["machine"].as_boolean()
    query = (
        select(events.c.contact_id, events.c.kind, func.count())
        .where(events.c.journey_id == JOURNEY, events.c.kind.in_(["opened", "clicked"]))
        .where(person.is_(False))
        .group_by(events.c.contact_id, events.c.kind)
    )

    def read() -> Counter[tuple[str, str]]:
        with store.engine.connect() as conn:
            return Counter({(c, k): n for c, k, n in conn.execute(query)})

    return await asyncio.to_thread(read)


async def simulate(plan: SimPlan, data_dir: Path) -> Figures:
    """`plan.contacts` runs through the production shape (see the module's docstring); the
    processes' logs and the dev server's state in `data_dir`."""
    figures = Figures(runs=plan.contacts)
    began = time.monotonic()
    async with production_stack(data_dir) as sim:
        spec = load_library(sim.settings.library_dir)[JOURNEY]
        # Buyers: the grade their first events give them (B) keeps them out of C/D lead
        # nurturing.
        people = half_with_phones("sim", plan.contacts, role="buyer")
        deadline = time.monotonic() + plan.drain_limit
        killing = asyncio.create_task(kill_a_worker(sim, plan.contacts // 2, deadline))
        for person in people:
            await enter(sim, person, plan.speed)
        readers = [
            asyncio.create_task(open_and_click(sim, p, deadline))
            for i, p in enumerate(people)
            if i % 3 == 0
        ]
        await asyncio.gather(*(visit(sim, p) for p in people))
        backlog = await leave_behind(sim, people)
        await asyncio.gather(*readers)
        figures.api_events = len(people)
        figures.killed = await killing
        outcomes = await asyncio.gather(
            *(outcome(sim.client, workflow_id(JOURNEY, p.id), deadline) for p in people)
        )
        done = [o for o in outcomes if o is not None]
        figures.unfinished = len(people) - len(done)
        figures.tally = count(
            expected_messages(spec, [result for result, _ in done]),
            received_messages(sim.mail, sim.sms, sim.settings, people),
            {result.contact_id for result, _ in done},
        )
        figures.undecided = await undecided(sim.store, people)
        # The outbox loops run every 5 s: one more round for anything still kept.
        await until_empty(sim.store, 15)
        figures.held_left = (await sim.store.held_summary())[0]
        await read_histories(sim, people, figures, set(backlog))
        figures.worker_kills = sum(w.kills for w in sim.workers)
        figures.ends = Counter(str(result.ended_at_step) for result, _ in done)
        figures.own_exits = {
            name: process.own_exits
            for name, process in [
                *((f"worker-{i}", w) for i, w in enumerate(sim.workers, 1)),
                *((f"gateway-{i}", g) for i, g in enumerate(sim.gateways, 1)),
            ]
            if process.own_exits
        }
    figures.seconds = time.monotonic() - began
    return figures


async def until_empty(store: ContactStore, seconds: float) -> None:
    """Wait up to `seconds` for the outbox to be empty."""
    for _ in range(int(seconds / 0.5)):
        if not (await store.held_summary())[0]:
            return
        await asyncio.sleep(0.5)


async def main(plan: SimPlan, data_dir: Path | None) -> int:
    configure_logging("WARNING")
    print(
        f"prod-sim: {plan.contacts} contacts through lead_nurturing at speed {plan.speed:g}: "
        "Temporal dev server, PostgreSQL, two workers, two gateways",
        flush=True,
    )
    if data_dir is None:
        with tempfile.TemporaryDirectory(prefix="journeys-prod-sim-") as tmp:
            figures = await simulate(plan, Path(tmp))
    else:
        figures = await simulate(plan, data_dir)
        print(f"logs: {data_dir}/worker-*.log, gateway-*.log, temporal.log")
    print(figures.summary())
    failures = figures.failures()
    for failure in failures:
        print(f"FAILED: {failure}")
    if not failures:
        print("OK: every message once, the outbox handed over once, nothing lost after the kill")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=SimPlan.contacts)
    parser.add_argument("--speed", type=float, default=SimPlan.speed)
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the processes' logs in DIR (else dropped)"
    )
    args = parser.parse_args()
    plan = SimPlan(contacts=args.contacts, speed=args.speed)
    if args.keep is not None:
        args.keep = args.keep.resolve()
        args.keep.mkdir(parents=True, exist_ok=True)
    sys.exit(eventloop.run(main(plan, args.keep)))
