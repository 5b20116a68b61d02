"""`journeys worker` and `journeys gateway` outside a dev stack refuse to start on the public dev
secrets: anyone could otherwise mint links that unsubscribe any contact or forge opens."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from asyncio.subprocess import PIPE, STDOUT, Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.channel_fixtures import free_port
from tests.temporal_fixtures import PAYLOAD_KEYS

JOURNEYS = str(Path(sys.executable).parent / "journeys")
# What a real deployment sets; the values only need not to be the public dev defaults.
REAL_SECRETS = {
    "JOURNEYS_SECRET_KEY": "a-long-random-value-of-this-deployment",
    "TWILIO_AUTH_TOKEN": "the-account-auth-token",
    "JOURNEYS_PAYLOAD_KEYS": PAYLOAD_KEYS,
}
COMMANDS = [["worker"], ["gateway", "--port", "0"]]
# What a deployment's worker is told besides: the address in every email's footer (CAN-SPAM) and
# the site its calls to action lead to.
SENDER = {
    "JOURNEYS_POSTAL_ADDRESS": "Example Inc., 5 Harbour Road, Portland, OR 97201",
    "JOURNEYS_SITE_URL": "https://www.example.org",
}


def clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """Only what finds the programs: none of the journeys settings of the caller's environment."""
    return {
        "PATH": os.environ["PATH"],
        "JOURNEYS_DATABASE_URL": f"sqlite:///{tmp_path}/journeys.db",
        **values,
    }


async def refused(command: list[str], env: dict[str, str]) -> str:
    """What the command says as it exits 1, with no traceback."""
    proc = await asyncio.create_subprocess_exec(
        JOURNEYS, *command, env=env, stdout=PIPE, stderr=PIPE
    )
    async with asyncio.timeout(30):
        out, errors = await proc.communicate()
    assert proc.returncode == 1, (out + errors).decode()
    assert b"Traceback" not in errors
    return errors.decode()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
async def test_no_secrets_refuses_to_start_naming_them(command: list[str], tmp_path: Path) -> None:
    said = await refused(command, clean_env(tmp_path))
    assert "JOURNEYS_SECRET_KEY" in said
    assert "TWILIO_AUTH_TOKEN" in said
    assert "JOURNEYS_PAYLOAD_KEYS" in said


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
async def test_the_public_dev_defaults_are_refused_too(command: list[str], tmp_path: Path) -> None:
    env = clean_env(
        tmp_path, JOURNEYS_SECRET_KEY="dev-only-secret-change-me", TWILIO_AUTH_TOKEN="dev-token"
    )
    said = await refused(command, env)
    assert "JOURNEYS_SECRET_KEY" in said
    assert "TWILIO_AUTH_TOKEN" in said


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
async def test_no_payload_keys_is_refused(command: list[str], tmp_path: Path) -> None:
    # Without them, contacts' data would reach Temporal in clear.
    secrets = {k: v for k, v in REAL_SECRETS.items() if k != "JOURNEYS_PAYLOAD_KEYS"}
    env = clean_env(tmp_path, **secrets)
    said = await refused(command, env)
    assert "JOURNEYS_PAYLOAD_KEYS" in said
    assert "JOURNEYS_SECRET_KEY" not in said


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
async def test_malformed_payload_keys_are_refused(command: list[str], tmp_path: Path) -> None:
    env = clean_env(tmp_path, **{**REAL_SECRETS, "JOURNEYS_PAYLOAD_KEYS": "k1:c2hvcnQ="})
    assert "JOURNEYS_PAYLOAD_KEYS: 'k1' is not id:<base64 of 32 random bytes>" in await refused(
        command, env
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
async def test_one_missing_secret_is_named_alone(command: list[str], tmp_path: Path) -> None:
    env = clean_env(tmp_path, **{**REAL_SECRETS, "TWILIO_AUTH_TOKEN": "dev-token"})
    said = await refused(command, env)
    assert "TWILIO_AUTH_TOKEN" in said
    assert "JOURNEYS_SECRET_KEY" not in said


@asynccontextmanager
async def running(command: list[str], env: dict[str, str]) -> AsyncIterator[Process]:
    """The command running, its output on stdout; stopped by SIGTERM after the block."""
    proc = await asyncio.create_subprocess_exec(
        JOURNEYS, *command, env=env, stdout=PIPE, stderr=STDOUT
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await proc.wait()


async def logged(proc: Process, says: str) -> None:
    assert proc.stdout is not None
    seen = b""
    async with asyncio.timeout(30):
        while says.encode() not in seen:
            line = await proc.stdout.readline()
            assert line, f"exited with {await proc.wait()}: {seen.decode()}"
            seen += line


async def test_the_worker_refuses_the_sample_postal_address_and_site(tmp_path: Path) -> None:
    said = await refused(["worker"], clean_env(tmp_path, **REAL_SECRETS))
    assert "JOURNEYS_POSTAL_ADDRESS" in said and "JOURNEYS_SITE_URL" in said
    env = clean_env(tmp_path, **REAL_SECRETS, **{**SENDER, "JOURNEYS_POSTAL_ADDRESS": " "})
    said = await refused(["worker"], env)
    assert "JOURNEYS_POSTAL_ADDRESS" in said and "JOURNEYS_SITE_URL" not in said


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JOURNEYS_BRAND_COLOR", "red"),
        ("JOURNEYS_SITE_URL", "www.example.org"),
        ("JOURNEYS_BRAND_LOGO_URL", "javascript:alert(1)"),
    ],
)
async def test_a_malformed_brand_setting_is_refused_naming_it(
    variable: str, value: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path, **REAL_SECRETS, **{**SENDER, variable: value})
    said = await refused(["worker"], env)
    assert f"{variable} is " in said and repr(value) in said


async def test_the_worker_starts_with_secrets_of_its_own(
    dev_temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    address = dev_temporal.client.service_client.config.target_host
    env = clean_env(tmp_path, TEMPORAL_ADDRESS=address, **REAL_SECRETS, **SENDER)
    async with running(["worker"], env) as worker:
        await logged(worker, "worker started")


async def test_the_gateway_starts_with_secrets_of_its_own(
    dev_temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    address = dev_temporal.client.service_client.config.target_host
    env = clean_env(tmp_path, TEMPORAL_ADDRESS=address, **REAL_SECRETS)
    port = free_port()
    async with running(["gateway", "--port", str(port)], env) as gateway:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(30):
                while True:
                    assert gateway.returncode is None
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)


async def test_a_dev_environment_may_keep_the_dev_defaults(
    dev_temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    address = dev_temporal.client.service_client.config.target_host
    env = clean_env(tmp_path, TEMPORAL_ADDRESS=address, JOURNEYS_ENV="dev")
    async with running(["worker"], env) as worker:
        await logged(worker, "worker started")


async def test_a_starter_without_payload_keys_sends_nothing_in_clear(tmp_path: Path) -> None:
    said = await refused(["status", "c-1"], clean_env(tmp_path))
    assert "JOURNEYS_PAYLOAD_KEYS not set" in said
