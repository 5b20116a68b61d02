import os
from collections.abc import Callable
from typing import Any

from journeys.eventloop import new_event_loop

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 set. The command line's rich consoles,
# made when their module is imported, would keep that width whatever width a test asks for.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

pytest_plugins = [
    "tests.channel_fixtures",
    "tests.temporal_fixtures",
    "tests.push_fixtures",
    "tests.api_fixtures",
    "tests.gateway_fixtures",
    "tests.postgres_fixtures",
    "tests.plan_fixtures",
]


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Callable[[], Any]]:
    """Tests run on the event loop the journeys processes run on (journeys.eventloop)."""
    return {"eventloop": new_event_loop}
