"""What one worker takes on at once comes from the environment (JOURNEYS_WORKER_*), and a value
the SDK cannot run with is refused at start, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import PollerBehaviorSimpleMaximum

from journeys.settings import Settings
from journeys.store import ContactStore
from tests.test_fail_closed import REAL_SECRETS, SENDER, clean_env, refused
from workers.worker import journey_worker

LIMITS = {
    "JOURNEYS_WORKER_CACHED_RUNS": "250",
    "JOURNEYS_WORKER_WORKFLOW_TASKS": "20",
    "JOURNEYS_WORKER_ACTIVITIES": "40",
    "JOURNEYS_WORKER_LOCAL_ACTIVITIES": "30",
    "JOURNEYS_WORKER_POLLERS": "3",
}


async def test_the_worker_takes_its_limits_from_the_environment(
    time_skipping: WorkflowEnvironment,
    store: ContactStore,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in LIMITS.items():
        monkeypatch.setenv(variable, value)
    limits = Settings().model_dump(include={n for n in Settings.model_fields if "worker_" in n})
    assert len(limits) == len(LIMITS)
    async with journey_worker(time_skipping.client, store, settings.model_copy(update=limits)) as w:
        config = w.config()
    assert config.get("max_cached_workflows") == 250
    assert config.get("max_concurrent_workflow_tasks") == 20
    assert config.get("max_concurrent_activities") == 40
    assert config.get("max_concurrent_local_activities") == 30
    assert config.get("workflow_task_poller_behavior") == PollerBehaviorSimpleMaximum(3)
    assert config.get("activity_task_poller_behavior") == PollerBehaviorSimpleMaximum(3)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("JOURNEYS_WORKER_POLLERS", "1", "greater than or equal to 2"),
        ("JOURNEYS_WORKER_CACHED_RUNS", "lots", "valid integer"),
        ("JOURNEYS_WORKER_ACTIVITIES", "0", "greater than or equal to 1"),
    ],
)
async def test_a_limit_the_worker_cannot_run_with_is_refused_naming_it(
    variable: str, value: str, says: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path, **REAL_SECRETS, **{**SENDER, variable: value})
    said = await refused(["worker"], env)
    assert variable in said and says in said
