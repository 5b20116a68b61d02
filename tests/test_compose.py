"""docker-compose.yml and the Dockerfile, checked without Docker (no daemon runs here): every
command and setting they give the project is one it knows, every file they name exists, and the
namespace gets the search attributes the workflows set."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from typer.testing import CliRunner

from journeys.identity import SEARCH_ATTRIBUTES
from journeys.settings import Settings
from starters.cli import app

ROOT = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# What the gateway's and the worker's settings are read from (pydantic-settings aliases).
SETTINGS = {field.alias for field in Settings.model_fields.values() if field.alias}


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"{'.'.join(map(str, e.absolute_path)) or 'top level'}: {e.message}"
        for e in validator.iter_errors(COMPOSE)
    ]
    assert not problems, "\n".join(problems)


def test_the_production_shape_has_every_part() -> None:
    assert set(SERVICES) >= {
        "postgresql",
        "temporal-setup",
        "temporal",
        "temporal-namespace",
        "temporal-ui",
        "worker",
        "gateway",
        "mail",
    }
    assert SERVICES["postgresql"]["image"] == "postgres:16"
    # Temporal's own images, not the deprecated auto-setup one.
    assert not any("auto-setup" in s.get("image", "") for s in SERVICES.values())
    # Start order: the store and Temporal before the journeys processes.
    for name in ("worker", "gateway"):
        assert SERVICES[name]["depends_on"] == {
            "temporal-namespace": {"condition": "service_completed_successfully"}
        }
    # `--scale worker=N`: nothing pins the worker to one container.
    assert "container_name" not in SERVICES["worker"] and "ports" not in SERVICES["worker"]
    assert {s for s, v in SERVICES.items() if v.get("profiles") == ["metrics"]} == {
        "prometheus",
        "grafana",
    }


@pytest.mark.parametrize("service", ["worker", "gateway"])
def test_the_journeys_services_run_commands_and_settings_the_project_knows(service: str) -> None:
    config = SERVICES[service]
    unknown = set(config["environment"]) - SETTINGS
    assert not unknown, f"{service} sets {unknown}, which no setting reads"
    command = config["command"]
    shown = CliRunner().invoke(app, [*command[:1], "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for option in (word for word in command[1:] if word.startswith("--")):
        assert option in shown.output, f"journeys {command[0]} has no {option}"


def test_secrets_come_from_the_environment_and_stop_up_when_missing() -> None:
    environment = SERVICES["worker"]["environment"]
    # What the processes refuse to start without outside dev, and the keys the API and the
    # dashboard are locked with.
    production = Settings.model_validate({"JOURNEYS_ENV": "production"})
    required = [*production.missing_secrets(), *production.missing_sender_details()]
    assert "JOURNEYS_PAYLOAD_KEYS" in required
    for secret in [*required, "JOURNEYS_API_KEY", "JOURNEYS_DASHBOARD_PASSWORD"]:
        assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", environment[secret]), secret
    assert "${POSTGRES_PASSWORD:?" in environment["JOURNEYS_DATABASE_URL"]


def test_every_file_the_compose_file_mounts_exists() -> None:
    for name, config in SERVICES.items():
        for volume in config.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not there"
        command = config.get("command")
        if isinstance(command, str) and command.startswith("/scripts/"):
            assert (ROOT / "deploy/compose" / command.removeprefix("/scripts/")).is_file()


def test_the_namespace_gets_the_search_attributes_the_workflows_set() -> None:
    script = (ROOT / "deploy/compose/create-namespace.sh").read_text()
    created = dict(re.findall(r"(\w+):(Keyword|Int|KeywordList)\b", script))
    kinds = {"KEYWORD": "Keyword", "INT": "Int", "KEYWORD_LIST": "KeywordList"}
    assert created == {key.name: kinds[key.indexed_value_type.name] for key in SEARCH_ATTRIBUTES}


def test_the_image_installs_the_project_without_dev_tools_and_runs_as_a_user() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert 'ENTRYPOINT ["journeys"]' in DOCKERFILE and "journeys" in project["scripts"]
    installs = re.findall(r"pip install --no-cache-dir '\.\[(\w+)\]'", DOCKERFILE)
    assert installs == ["postgres"] and "postgres" in project["optional-dependencies"]
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which is not there"
    # Every package the project ships is copied into the build.
    for package in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert f"COPY {package.rstrip('*')} ./" in DOCKERFILE, package
    assert re.search(r"^USER journeys$", DOCKERFILE, re.MULTILINE)
