"""`journeys` services as subprocesses, supervised as a process manager would (systemd, an
orchestrator): started again whenever one exits, killable on purpose. The chaos bench
(bench/chaos.py) and the production simulation (devstack/prod_sim.py) run their workers, and the
simulation its gateways, this way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

JOURNEYS = str(Path(sys.executable).parent / "journeys")


class ServiceProcess:
    """`journeys COMMAND...` as a subprocess, started again whenever it exits until `stop()`:
    after a kill at once, after an exit of its own (Temporal away as it started) a second later.
    `pids` are those of every process it ran, in order."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command = command
        self.env = env
        self.log = log
        self.kills = 0
        self.own_exits = 0
        self.pids: list[int] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._killed = False
        self._supervisor: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        while True:
            with self.log.open("ab") as out:
                self._proc = await asyncio.create_subprocess_exec(
                    JOURNEYS, *self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT
                )
            self.pids.append(self._proc.pid)
            await self._proc.wait()
            if not self._killed:
                self.own_exits += 1
                await asyncio.sleep(1)
            self._killed = False

    @property
    def pid(self) -> int | None:
        """The running process's pid; None before it started or once it exited."""
        running = self._proc is not None and self._proc.returncode is None
        return self._proc.pid if running and self._proc is not None else None

    def pause(self) -> None:
        """SIGSTOP: frozen as a stalled machine freezes it, until `resume()`."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._killed = True
            self.kills += 1
            self._proc.kill()

    async def stop(self) -> None:
        """Stop supervising, then stop the process gracefully (SIGKILL past 40 s)."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 40)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (until someone binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_run(count: int) -> int:
    """The first of `count` consecutive ports on 127.0.0.1 nothing listens on, for processes
    that each serve on the port `index` past the first (the gateway's /metrics)."""
    while True:
        first = free_port()
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue  # one of the next ports is taken: try another run
        finally:
            for s in sockets:
                s.close()


async def until(condition: Callable[[], bool], deadline: float) -> bool:
    """Whether `condition` came true by `deadline` (a time.monotonic()). Polled: it is about a
    process or a sink count, which no event says has changed."""
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def workflow_queue(
    namespace: str, task_queue: str, stats: bool = False
) -> DescribeTaskQueueRequest:
    """The request describing `task_queue`'s workflow side: its pollers, and with `stats` its
    backlog."""
    return DescribeTaskQueueRequest(
        namespace=namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        report_stats=stats,
    )


async def until_polled(
    client: Client,
    namespace: str,
    task_queue: str,
    count: int,
    gone: Callable[[], bool] = lambda: False,
) -> None:
    """Return once `count` workers (by identity) poll `task_queue` for workflow tasks, within a
    minute; RuntimeError as soon as `gone()` says one of them exited. Work started before
    every worker polls all goes to the first, and sticks to it."""
    request = workflow_queue(namespace, task_queue)
    async with asyncio.timeout(60):
        while True:
            if gone():
                raise RuntimeError(f"a worker of {task_queue} exited; see its log")
            answer = await client.workflow_service.describe_task_queue(request)
            if len({p.identity for p in answer.pollers}) >= count:
                return
            await asyncio.sleep(0.2)


async def stop_server(server: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send `sig` and wait for the exit; SIGKILL when it takes more than 20 s."""
    server.send_signal(sig)
    if not await until(lambda: server.poll() is not None, time.monotonic() + 20):
        server.kill()
        await until(lambda: server.poll() is not None, time.monotonic() + 10)
