"""Recorded histories of every seed-journey path, plan path and the hygiene run replay against
today's workflow code.

A failure here means a change to the interpreter would break runs already in flight: guard the
change with `workflow.patched()` (see docs/architecture.md), then `make histories`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from tests.plan_scenarios import PLAN_SCENARIOS
from tests.record_histories import HISTORIES, HYGIENE_HISTORY, history_path, plan_history_path
from tests.scenarios import SCENARIOS
from tests.temporal_fixtures import CONVERTER
from workflows.hygiene import HygieneWorkflow
from workflows.journey import JourneyWorkflow
from workflows.plan import PlanWorkflow


def test_every_scenario_has_a_recorded_history() -> None:
    missing = [s.name for s in SCENARIOS if not history_path(s).is_file()]
    missing += [s.name for s in PLAN_SCENARIOS if not plan_history_path(s).is_file()]
    missing += [] if HYGIENE_HISTORY.is_file() else [HYGIENE_HISTORY.stem]
    assert missing == [], "run `make histories` to record them"


@pytest.mark.parametrize(
    "path",
    sorted(HISTORIES.rglob("*.json")),
    ids=lambda p: str(p.relative_to(HISTORIES).with_suffix("")),
)
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[JourneyWorkflow, PlanWorkflow, HygieneWorkflow],
        data_converter=CONVERTER,
        # The journey runs outside the sandbox in workers (workflows.journey says why); here,
        # on every recorded path, the sandbox still refuses a clock, a file or the network.
        unsandboxed_workflow_runner=SandboxedWorkflowRunner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
