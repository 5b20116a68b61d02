"""The team plans are run with: imported from CSV like contacts (every problem by line), kept in
the store on SQLite and PostgreSQL, listed by the command line."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys.plans.people import Person, parse_people_csv
from journeys.plans.schedule import WorkingTime
from journeys.store import ContactStore
from starters.cli import app
from tests.api_fixtures import GatewayStack

CSV = """\
id,name,email,roles,time_zone,working_days,hours
ana,Ana Nowak,ana@example.com,blog_writer,Europe/Warsaw,mon-fri,08:30-16:30
bo,Bo Lee,bo@example.com,seo_strategist;marketing_stakeholder,America/New_York,tue;wed;thu;fri;sat,
ana@example.com,Ana again,ana@example.com,,,,
cy,,cy@example.com,,Mars/Olympus,sun-mon,25:00-17:00
dee,Dee,,,,,
eve,Eve,eve@example.com,,,,17:00-09:00
"""


def test_team_members_are_read_from_csv_and_every_problem_named_by_line() -> None:
    people, problems = parse_people_csv(CSV)
    assert [(p.id, p.roles, sorted(p.working_days), p.starts) for p in people] == [
        ("ana", ["blog_writer"], [0, 1, 2, 3, 4], time(8, 30)),
        ("bo", ["seo_strategist", "marketing_stakeholder"], [1, 2, 3, 4, 5], time(9, 0)),
    ]
    assert [str(p) for p in problems] == [
        "line 4: id: looks like an email address: ids end up in workflow ids and "
        "search attributes: use an opaque id",
        "line 5: name: String should have at least 1 character",
        "line 5: time_zone: time_zone 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Warsaw)",
        "line 5: working_days: 'sun-mon' is not working days: a range such as mon-fri, or days "
        "separated by ';'",
        "line 5: starts: Input should be in a valid time format, hour value is outside expected "
        "range of 0-23",
        "line 6: email: a team member needs an email address: their tasks come by email",
        "line 7: ends: working hours must end after they start, on the same day",
    ]
    assert people[0].working_time() == WorkingTime(
        time_zone="Europe/Warsaw", starts=time(8, 30), ends=time(16, 30)
    )


async def test_the_store_keeps_the_team_as_imported(store_on_each_database: ContactStore) -> None:
    store = store_on_each_database
    people, _ = parse_people_csv(CSV)
    await store.upsert_people(people)
    assert await store.team_members() == people
    moved = people[0].model_copy(update={"time_zone": "Europe/Lisbon", "roles": ["editor"]})
    await store.upsert_people([moved])
    assert await store.person("ana") == moved
    assert await store.person("nobody") is None


def test_journeys_team_import_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", f"sqlite:///{tmp_path}/journeys.db")
    monkeypatch.setenv("COLUMNS", "200")
    file = tmp_path / "people.csv"
    file.write_text(CSV)
    runner = CliRunner()
    result = runner.invoke(app, ["team", "import", str(file)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "imported 2 team members, rejected 7 problem(s)"
    assert f"{file}:line 6: email: a team member needs an email address" in result.output
    listed = runner.invoke(app, ["team", "list"])
    assert listed.exit_code == 0
    rows = [line for line in listed.output.splitlines() if "ana" in line or "bo" in line]
    assert "Europe/Warsaw" in rows[0] and "mon,tue,wed,thu,fri 08:30-16:30" in rows[0]
    assert "seo_strategist, marketing_stakeholder" in rows[1]
    assert "tue,wed,thu,fri,sat 09:00-17:00" in rows[1]


def test_a_person_from_the_api_takes_weekday_numbers_or_names() -> None:
    assert Person(
        id="fay", name="Fay", email="fay@example.com", working_days="mon;wed"
    ).working_days == frozenset({0, 2})


async def test_the_team_over_the_api(gateway_stack: GatewayStack) -> None:
    http = gateway_stack.http
    body = {"name": "Gia", "email": "gia@example.com", "roles": ["graphic_designer"]}
    created = await http.put("/v1/team/gia", json=body)
    assert created.status_code == 201
    assert created.json()["working_days"] == [0, 1, 2, 3, 4]
    moved = await http.put("/v1/team/gia", json={**body, "time_zone": "Europe/Lisbon"})
    assert (moved.status_code, moved.json()["time_zone"]) == (200, "Europe/Lisbon")
    assert (await http.get("/v1/team/gia")).json()["email"] == "gia@example.com"
    assert "gia" in [p["id"] for p in (await http.get("/v1/team")).json()]
    missing = await http.get("/v1/team/nobody")
    assert (missing.status_code, missing.json()["detail"]) == (404, "no team member 'nobody'")
    refused = await http.put("/v1/team/gia@example.com", json=body)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["path", "person_id"]
    no_email = await http.put("/v1/team/hal", json={"name": "Hal"})
    assert no_email.status_code == 422
    assert no_email.json()["detail"][0]["loc"] == ["body", "email"]
