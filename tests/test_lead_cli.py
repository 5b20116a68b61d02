"""`journeys leads show` and `journeys leads regrade`, and the grading file in `journeys
validate` and `journeys schema`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys.contacts import Contact
from journeys.models import JourneyEvent
from journeys.settings import LIBRARY_DIR
from journeys.store import open_store
from starters.cli import app
from tests.gateway_fixtures import stored_events

runner = CliRunner()
GRADING = """\
fit:
  - grade: C
    when: ["attribute:role == 'adviser'"]
weights: {purchase: 25}
half_life_days: 30
raise_at: [20]
"""


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store with an adviser who bought a moment ago and a contact who did nothing, and a
    library with a grading file."""
    url = f"sqlite:///{tmp_path}/journeys.db"
    (tmp_path / "grading.yaml").write_text(GRADING)
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", url)
    monkeypatch.setenv("JOURNEYS_LIBRARY", str(tmp_path))

    async def write() -> None:
        store = await open_store(url)
        await store.upsert_contacts(
            [Contact(id="ann", attributes={"role": "adviser"}), Contact(id="bob")]
        )
        bought = JourneyEvent(kind="purchase", occurred_at=datetime.now(UTC))
        await store.record_event("ann", bought)
        await store.close()

    asyncio.run(write())
    return url


def kinds_of(url: str, contact_id: str) -> list[str]:
    async def read() -> list[str]:
        store = await open_store(url)
        try:
            return await stored_events(store, contact_id)
        finally:
            await store.close()

    return asyncio.run(read())


def test_regrading_contacts_prints_each_change_and_show_prints_the_grade(url: str) -> None:
    result = runner.invoke(app, ["leads", "show", "ann"])
    assert result.exit_code == 0, result.output
    assert result.output == "ann: not graded yet (journeys leads regrade ann)\n"

    result = runner.invoke(app, ["leads", "regrade", "ann", "bob"])
    assert result.exit_code == 0, result.output
    # The purchase (25) reaches 20: the adviser's C is raised to B.
    assert result.output == "ann: none -> B (score 25)\nbob: none -> D (score 0)\n"
    assert kinds_of(url, "ann") == ["purchase", "grade_changed"]

    result = runner.invoke(app, ["leads", "regrade", "--all"])
    assert result.exit_code == 0, result.output
    assert result.output == "every contact regraded: 0 grade(s) changed\n"

    result = runner.invoke(app, ["leads", "show", "ann"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ann: grade B (fit C, score 25) since ")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["leads", "show", "nobody"], "error: no such contact 'nobody'"),
        (["leads", "regrade", "nobody"], "error: no such contact 'nobody'"),
        (["leads", "regrade"], "error: name the contacts to regrade, or say --all"),
        (["leads", "regrade", "--all", "ann"], "error: name the contacts to regrade, or say --all"),
    ],
)
def test_unknown_contacts_and_unclear_requests_are_refused(
    url: str, args: list[str], error: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert error in result.output
    assert kinds_of(url, "ann") == ["purchase"]


def test_a_broken_grading_file_is_named_by_line_and_regrades_nobody(
    url: str, tmp_path: Path
) -> None:
    (tmp_path / "grading.yaml").write_text(GRADING.replace("raise_at: [20]", "raise_at: [20, 5]"))
    result = runner.invoke(app, ["leads", "regrade", "--all"])
    assert result.exit_code == 1
    assert f"{tmp_path}/grading.yaml:6: raise_at: thresholds must go up" in result.output
    assert kinds_of(url, "ann") == ["purchase"]

    result = runner.invoke(app, ["validate", str(tmp_path / "grading.yaml")])
    assert result.exit_code == 1
    assert result.output == (
        f"{tmp_path}/grading.yaml:6: raise_at: thresholds must go up, each above the one before\n"
    )


def test_validate_and_schema_know_the_grading_file() -> None:
    result = runner.invoke(app, ["validate", str(LIBRARY_DIR / "grading.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        "grading.yaml: ok: grading, 5 fit rules, 5 weighted events, half-life 30 days\n"
    )
    result = runner.invoke(app, ["schema", "--grading"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "GradingSpec"
