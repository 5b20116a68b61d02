"""`journeys hygiene` from a shell against the dev server, a worker and the store: a dry run and a
run print their reports, `report` reads the audit back, and `schedule` keeps the Temporal
Schedule (refusing a cron Temporal cannot read)."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from journeys.hygiene.runs import HYGIENE
from journeys.settings import Settings
from journeys.store import ContactStore
from journeys.store.schema import contacts, hygiene_changes
from tests.temporal_fixtures import PAYLOAD_KEYS
from tests.test_end_to_end import cli
from tests.test_hygiene_workflow import AUDITED, add_people, rows
from workers.worker import journey_worker


def _table(out: str) -> dict[str, int]:
    """The kind and count rows of a printed report."""
    found = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 2 and cells[1].isdigit():
            found[cells[0]] = int(cells[1])
    return found


async def test_hygiene_from_the_command_line(
    dev_temporal: WorkflowEnvironment, store: ContactStore, settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"task_queue": f"hygiene-{uuid.uuid4().hex[:8]}"})
    env = {
        **os.environ,
        "JOURNEYS_ENV": "dev",
        "JOURNEYS_PAYLOAD_KEYS": PAYLOAD_KEYS,
        "TEMPORAL_ADDRESS": dev_temporal.client.service_client.config.target_host,
        "JOURNEYS_TASK_QUEUE": settings.task_queue,
        "JOURNEYS_DATABASE_URL": settings.database_url,
        "COLUMNS": "200",
    }
    await add_people(store, datetime.now(UTC))
    before = await rows(store, contacts, "id", "email", "phone")
    async with journey_worker(dev_temporal.client, store, settings):
        code, out = await cli(env, "hygiene", "run", "--dry-run")
        assert code == 0, out
        assert "9 contacts, 1 duplicate groups (dry run: nothing was changed)" in out
        assert _table(out) == {
            "email_invalid": 1,
            "merged": 1,
            "phone_invalid": 1,
            "phone_normalised": 2,
            "sunset": 1,
        }
        assert await rows(store, contacts, "id", "email", "phone") == before

        code, out = await cli(env, "hygiene", "run")
        assert code == 0, out
        assert "9 contacts, 2 duplicate groups" in out
        audited = await rows(store, hygiene_changes, "contact_id", "kind")
        assert set(audited) == AUDITED
        assert _table(out) == {kind: n for kind, n in _counts(audited).items()}

        code, out = await cli(env, "hygiene", "run", "--no-wait")
        assert code == 0 and out.strip().endswith(": started"), out

    code, out = await cli(env, "hygiene", "report")
    assert code == 0, out
    lines = out.splitlines()
    assert any("c07" in line and "merged" in line and "into c06" in line for line in lines)
    assert any("c01" in line and "650 253 0000 -> +16502530000" in line for line in lines)
    assert any("c08" in line and "tag SUNSET added" in line for line in lines)
    code, out = await cli(env, "hygiene", "report", "--json", "--since", "2000-01-01")
    assert code == 0, out
    assert {(c["contact_id"], c["kind"]) for c in json.loads(out)} == AUDITED
    code, out = await cli(env, "hygiene", "report", "--json", "--since", "2999-01-01")
    assert (code, json.loads(out)) == (0, [])
    code, out = await cli(env, "hygiene", "report", "--since", "yesterday")
    assert code != 0 and "yesterday" in out

    code, out = await cli(env, "hygiene", "schedule", "--cron", "every night")
    assert code == 1 and "error: --cron 'every night' is not a schedule Temporal reads" in out
    handle = dev_temporal.client.get_schedule_handle(HYGIENE)
    try:
        code, out = await cli(env, "hygiene", "schedule")
        assert code == 0 and "schedule hygiene: '0 3 * * *' (UTC)" in out, out
        code, out = await cli(env, "hygiene", "schedule", "--cron", "30 4 * * 1")
        assert code == 0, out
        described = await handle.describe()
        # Temporal keeps a cron as a calendar: the next runs say which.
        assert described.info.next_action_times
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("Hygiene", settings.task_queue)
        assert all(
            (t.weekday(), t.hour, t.minute) == (0, 4, 30) for t in described.info.next_action_times
        )
    finally:
        await handle.delete()


def _counts(audited: list[tuple[str, str]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for _, kind in audited:
        found[kind] = found.get(kind, 0) + 1
    return found
