"""A real PostgreSQL server for the store's tests, started from the machine's own binaries
(Debian's postgresql package, present on the machines this project runs on)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from journeys.store import ContactStore, open_store

# PostgreSQL refuses to run as root; as root, the server runs as this user.
SERVER_USER = "postgres"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    return Path(found[-1]).parent if found[-1] else None


def _run_as_server_user(args: list[str]) -> None:
    command = ["runuser", "-u", SERVER_USER, "--", *args] if os.geteuid() == 0 else args
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr or done.stdout}")


@pytest.fixture(scope="session")
def postgres_socket_dir() -> Iterator[Path]:
    """A throwaway server listening only on a Unix socket in the directory returned."""
    # Not skipped when missing: a skipped test checks nothing, and the store must work on both.
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.fail(
            "the store's tests need PostgreSQL's server binaries (initdb, pg_ctl): "
            "install Debian's 'postgresql' package (or put initdb on PATH)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            pytest.fail(
                f"PostgreSQL refuses to run as root and there is no '{SERVER_USER}' "
                "user to run it as (Debian's 'postgresql' package creates it)"
            )
    # Not under pytest's tmp_path: the server user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="journeys-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, SERVER_USER)
    data = root / "data"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "journeys"]
    _run_as_server_user([*initdb, "--no-sync"])
    # No TCP, no fsync: a test server, gone when the session ends.
    options = f"-k {root} -h '' -F"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options]
    _run_as_server_user([*pg_ctl, "-w", "start"])
    try:
        yield root
    finally:
        _run_as_server_user([*pg_ctl, "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_socket_dir: Path) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    server = f"host={postgres_socket_dir} user=journeys dbname=postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg://journeys@/{name}?host={postgres_socket_dir}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journeys.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store_on_each_database(database_url: str) -> AsyncIterator[ContactStore]:
    store = await open_store(database_url)
    yield store
    await store.close()
