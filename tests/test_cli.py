"""The command line's offline commands: validate, schema, list."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys.settings import LIBRARY_DIR
from journeys.spec import STEP_KINDS
from starters.cli import app

runner = CliRunner()


def test_validate_prints_a_summary_for_valid_files() -> None:
    result = runner.invoke(app, ["validate", str(LIBRARY_DIR / "lead_nurturing.yaml")])
    assert result.exit_code == 0
    assert result.output.strip().endswith("ok: lead_nurturing v2, 17 steps, trigger contact_added")


def test_validate_prints_every_problem_and_exits_non_zero(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "id: broken\nversion: 1\ndescription: x\ntrigger: manual\nsteps:\n"
        "  - id: hello\n    kind: send\n    channel: email\n    template: lead_intro\n"
        "    next: nowhere\n"
        "  - id: check\n    kind: branch\n    conditions: [{when: has_fax, next: hello}]\n"
        "    otherwise: hello\n"
    )
    result = runner.invoke(app, ["validate", str(broken), str(LIBRARY_DIR / "lead_nurturing.yaml")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert f"{broken}:6: step 'hello': unknown next step 'nowhere'" in lines
    assert any(
        line.startswith(f"{broken}:11: step 'check': unknown condition 'has_fax'") for line in lines
    )
    assert any(
        line.endswith("ok: lead_nurturing v2, 17 steps, trigger contact_added") for line in lines
    )


def test_validate_reports_yaml_syntax_errors_with_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nsteps:\n  - id: [unclosed\n")
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{broken}:4: not valid YAML")


def test_schema_is_the_json_schema_of_a_journey() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "JourneySpec"
    kinds = {
        d["properties"]["kind"]["const"]
        for d in schema["$defs"].values()
        if "kind" in d.get("properties", {})
    }
    assert kinds == set(STEP_KINDS)


def test_list_shows_the_library() -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "lead_nurturing" in result.output and "contact_added" in result.output
    assert "mobile_app_nurturing" in result.output and "app_installed" in result.output


def test_an_event_for_an_unknown_contact_fails_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No Temporal is running here: the contact is checked before anything is handed over.
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", f"sqlite:///{tmp_path}/journeys.db")
    result = runner.invoke(app, ["event", "nobody", "purchase"])
    assert result.exit_code == 1
    assert "error: no such contact 'nobody'" in result.output
    rows = sqlite3.connect(tmp_path / "journeys.db").execute("SELECT count(*) FROM events")
    assert rows.fetchone() == (0,)


@pytest.mark.parametrize("speed", ["nan", "inf", "1e-9", "0", "2000000"])
def test_a_speed_outside_its_range_is_refused_before_anything_is_done(speed: str) -> None:
    for command in (["start", "lead_nurturing", "--contact", "c1"], ["event", "c1", "purchase"]):
        result = runner.invoke(app, [*command, "--speed", speed])
        assert result.exit_code == 1, result.output
        assert "--speed must be from 0.001 to 1e+06" in result.output


@pytest.mark.parametrize("data", ['{"x": NaN}', '{"x": "\\ud800"}', '{"x": "a\\u0000"}'])
def test_event_data_no_store_can_keep_is_refused(data: str) -> None:
    result = runner.invoke(app, ["event", "c1", "purchase", "--data", data])
    assert result.exit_code == 1 and "--data" in result.output, result.output


def test_start_names_the_nearest_journey_to_an_unknown_one() -> None:
    # Refused before anything connects to Temporal.
    result = runner.invoke(app, ["start", "nps_emial", "--contact", "c1"])
    assert result.exit_code == 1
    assert "error: no journey 'nps_emial'" in result.output
    assert "(did you mean 'nps_email'?)" in result.output
