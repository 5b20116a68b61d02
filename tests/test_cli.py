"""The command line's offline commands: validate, schema, list."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from journeys.settings import LIBRARY_DIR
from journeys.spec import STEP_KINDS
from starters.cli import app

runner = CliRunner()


def test_validate_prints_a_summary_for_valid_files() -> None:
    result = runner.invoke(app, ["validate", str(LIBRARY_DIR / "lead_nurturing.yaml")])
    assert result.exit_code == 0
    assert result.output.strip().endswith("ok: lead_nurturing v1, 17 steps, trigger contact_added")


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
        line.endswith("ok: lead_nurturing v1, 17 steps, trigger contact_added") for line in lines
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
