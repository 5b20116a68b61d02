"""`journeys gateway --processes 2`: two processes on one port, each answering and serving its
own /metrics, the events they take reaching the runs, and a clean stop of all of them on
SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from devstack.processes import free_port_run
from tests.temporal_fixtures import PAYLOAD_KEYS

JOURNEYS = str(Path(sys.executable).parent / "journeys")


def _children(pid: int) -> list[int]:
    """The gateway processes `pid` started (not multiprocessing's resource tracker)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


async def _outbox_depth(http: httpx.AsyncClient, port: int) -> float:
    """The outbox depth on the /metrics at `port`, once it is served and reported."""
    async with asyncio.timeout(10):
        while True:
            try:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.TransportError:
                text = ""  # that process is still starting
            for family in text_string_to_metric_families(text):
                if family.name == "journeys_outbox_depth":
                    return float(family.samples[0].value)
            await asyncio.sleep(0.2)


async def test_two_gateway_processes_share_a_port_and_stop_together(
    dev_temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    # The HTTP port, then each process's /metrics: the second serves on the port after the first.
    port = free_port_run(3)
    metrics = port + 1
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_temporal.client.service_client.config.target_host,
        "JOURNEYS_DATABASE_URL": f"sqlite:///{tmp_path}/journeys.db",
        "JOURNEYS_SECRET_KEY": "a-test-secret-that-is-not-the-default",
        "TWILIO_AUTH_TOKEN": "a-test-token",
        "JOURNEYS_PAYLOAD_KEYS": PAYLOAD_KEYS,
        "JOURNEYS_METRICS_ADDRESS": f"127.0.0.1:{metrics}",
    }
    # What the processes say, shown if they exit before they are stopped.
    said = tmp_path / "gateway.log"
    with said.open("wb") as log:
        gateway = await asyncio.create_subprocess_exec(
            JOURNEYS,
            "gateway",
            "--port",
            str(port),
            "--processes",
            "2",
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answered = 0
            async with asyncio.timeout(60):
                while answered < 20 or len(_children(gateway.pid)) < 2:
                    try:
                        health = await http.get("/health", headers={"Connection": "close"})
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)  # a process still starting
                        continue
                    assert health.status_code == 200
                    answered += 1
            children = _children(gateway.pid)
            assert len(children) == 2
            for metrics_port in (metrics, metrics + 1):
                assert await _outbox_depth(http, metrics_port) == 0
    finally:
        exited_early = gateway.returncode is not None
        if not exited_early:
            gateway.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(gateway.wait(), 30)
        assert not exited_early and code == 0, said.read_text()[-3000:]
    for child in children:
        assert not Path(f"/proc/{child}").exists()
