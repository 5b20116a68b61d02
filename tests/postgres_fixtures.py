"""A real PostgreSQL server for the store's tests, started from the machine's own binaries
(devstack.postgres: Debian's postgresql package, present on the machines this project runs on)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devstack.postgres import PostgresMissing, PostgresServer, running_postgres
from journeys.store import ContactStore, open_store

# A test of the worker or the gateway marked so runs on SQLite and on PostgreSQL: its `store`
# fixture (tests.channel_fixtures) is each kind in turn.
ON_EACH_STORE = pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway server for the session, listening only on a Unix socket."""
    try:
        with running_postgres() as server:
            yield server
    except PostgresMissing as e:
        # Not skipped: a skipped test checks nothing, and the store must work on both.
        pytest.fail(f"the store's tests need a PostgreSQL server: {e}")


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


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
