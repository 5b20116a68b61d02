"""A throwaway PostgreSQL server from the machine's own binaries (Debian's postgresql package),
for the store's tests and the production simulation (`devstack.prod_sim`): initdb in a temporary
directory, the server listening only on a Unix socket there, no fsync; gone when stopped.

PostgreSQL refuses to run as root: as root, initdb and the server run as SERVER_USER."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"
# The superuser initdb makes; connections over the socket are trusted.
USER = "journeys"


class PostgresMissing(RuntimeError):
    """The machine cannot run a PostgreSQL server (no binaries, or nobody to run them as)."""


@dataclass(frozen=True)
class PostgresServer:
    """A running server; its socket is in `socket_dir`."""

    socket_dir: Path
    bin_dir: Path

    def url(self, database: str) -> str:
        """The store's URL (SQLAlchemy, psycopg) of `database` on this server."""
        return f"postgresql+psycopg://{USER}@/{database}?host={self.socket_dir}"

    def create_database(self, name: str) -> str:
        """Create an empty database `name` (a plain identifier); its store URL."""
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE {name} WITH (FORCE)")

    def _admin(self, statement: str) -> None:
        import psycopg  # the postgres extra: only who starts a server needs it

        server = f"host={self.socket_dir} user={USER} dbname=postgres"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(statement.encode())  # our own identifiers, never input


def _bin_dir() -> Path:
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = debian[-1] if debian else shutil.which("initdb")
    if initdb is None:
        raise PostgresMissing(
            "PostgreSQL's server binaries (initdb, pg_ctl) are missing: install Debian's "
            "'postgresql' package (or put initdb on PATH)"
        )
    return Path(initdb).parent


def _as_server_user(args: list[str]) -> None:
    command = ["runuser", "-u", SERVER_USER, "--", *args] if os.geteuid() == 0 else args
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr or done.stdout}")


def _pg_ctl(server: PostgresServer) -> list[str]:
    data, root = server.socket_dir / "data", server.socket_dir
    # No TCP, no fsync: a server for one session.
    options = f"-k {root} -h '' -F"
    return [str(server.bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options]


def start_postgres() -> PostgresServer:
    """initdb and start a server; raises PostgresMissing when the machine cannot."""
    bin_dir = _bin_dir()
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresMissing(
                f"PostgreSQL refuses to run as root and there is no '{SERVER_USER}' user to run "
                "it as (Debian's 'postgresql' package creates it)"
            ) from None
    # Not under a test's tmp_path: the server user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="journeys-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, SERVER_USER)
    server = PostgresServer(root, bin_dir)
    initdb = [str(bin_dir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", USER]
    try:
        _as_server_user([*initdb, "--no-sync"])
        _as_server_user([*_pg_ctl(server), "-w", "start"])
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


def stop_postgres(server: PostgresServer) -> None:
    """Stop at once (nothing of it is kept) and remove its directory."""
    try:
        _as_server_user([*_pg_ctl(server), "-m", "immediate", "stop"])
    finally:
        shutil.rmtree(server.socket_dir, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)
