"""Team plans as a person runs them: `journeys plan` and `journeys task` from a shell, and the
same under /v1/plans, against the real dev server, worker, store and SMTP sink."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys.plans.records import PlanRecord, TaskRecord
from journeys.store import open_store
from starters.cli import app
from tests.api_fixtures import GatewayStack
from tests.temporal_fixtures import PAYLOAD_KEYS
from tests.test_end_to_end import cli

PEOPLE = """\
id,name,email,roles,time_zone
cleo,Cleo Strat,cleo@example.com,content_strategist,Europe/Warsaw
sam,Sam Seo,sam@example.com,seo_strategist,Europe/Warsaw
ana,Ana Writer,ana@example.com,blog_writer,America/New_York
max,Max Stake,max@example.com,marketing_stakeholder,Europe/Warsaw
gia,Gia Design,gia@example.com,graphic_designer,Europe/Warsaw
sol,Sol Social,sol@example.com,social_media_manager,Europe/Warsaw
mia,Mia Manager,mia@example.com,,Europe/Warsaw
"""
ASSIGN = [
    "--assign", "content_strategist=cleo", "--assign", "seo_strategist=sam",
    "--assign", "blog_writer=ana", "--assign", "marketing_stakeholder=max",
    "--assign", "graphic_designer=gia", "--assign", "social_media_manager=sol",
]  # fmt: skip
ROLES = {a.split("=")[0]: a.split("=")[1] for a in ASSIGN if "=" in a}


def _env(stack: GatewayStack, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "JOURNEYS_ENV": "dev",
        "JOURNEYS_PAYLOAD_KEYS": PAYLOAD_KEYS,
        "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
        "JOURNEYS_TASK_QUEUE": stack.settings.task_queue,
        "JOURNEYS_DATABASE_URL": f"sqlite:///{tmp_path}/journeys.db",
        "COLUMNS": "200",
    }


async def _recorded(stack: GatewayStack, plan_id: str, check: object = None) -> PlanRecord:
    """The store's record of the plan once the workflow has written it."""
    for _ in range(200):
        record = await stack.store.plan(plan_id)
        if record is not None and (check is None or check(record)):  # type: ignore[operator]
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"{plan_id} was not recorded as expected")


async def test_a_plan_from_the_command_line(gateway_stack: GatewayStack, tmp_path: Path) -> None:
    stack = gateway_stack
    env = _env(stack, tmp_path)
    (tmp_path / "people.csv").write_text(PEOPLE)
    code, out = await cli(env, "team", "import", str(tmp_path / "people.csv"))
    assert code == 0, out
    target = date.today() + timedelta(days=40)
    start = ["plan", "start", "blog_post", "--target", f"{target}", *ASSIGN, "--manager", "mia"]

    code, out = await cli(env, *start[:5], "--instance", "cli-1")
    assert code == 1
    assert "assign every role the plan's tasks need; missing: blog_writer" in out

    code, out = await cli(env, *start, "--instance", "cli-1")
    assert (code, out.strip()) == (0, "plan:blog_post:cli-1: started"), out
    plan_id = "plan:blog_post:cli-1"
    await _recorded(stack, plan_id)
    await stack.mail.wait_for(1)
    assert [str(m["To"]) for m in stack.mail.messages] == ["cleo@example.com"]

    code, out = await cli(env, *start, "--instance", "cli-1")
    assert code == 1 and "plan:blog_post:cli-1 was started already" in out

    code, out = await cli(env, "task", "done", plan_id, "keyword_research", "--by", "sam")
    assert code == 1
    assert "refused: 'keyword_research' is not active yet: it waits for generate_idea" in out
    code, out = await cli(env, "task", "done", plan_id, "generate_idea", "--by", "sam")
    assert code == 1 and "refused: 'generate_idea' is cleo's task" in out

    code, out = await cli(env, "task", "done", plan_id, "generate_idea", "--by", "cleo")
    assert code == 0, out
    row = next(line for line in out.splitlines() if "generate_idea" in line)
    assert "done" in row and "cleo" in row
    await stack.mail.wait_for(2)
    handoff = stack.mail.messages[1]
    assert str(handoff["To"]) == "sam@example.com"
    assert str(handoff["X-Plan-Notice"]) == "handoff"

    code, out = await cli(
        env, "plan", "move", plan_id, "--target", f"{target + timedelta(days=7)}", "--by", "sam"
    )
    assert code == 1 and "refused:" in out and "manager" in out
    code, out = await cli(
        env, "plan", "move", plan_id, "--target", f"{target + timedelta(days=7)}", "--by", "mia"
    )
    assert code == 0, out
    moved = await _recorded(stack, plan_id, lambda r: r.target != target)
    assert moved.target == target + timedelta(days=7)

    code, out = await cli(env, "plan", "status", plan_id)
    assert code == 0
    assert f"target {target + timedelta(days=7)}" in out
    assert "keyword_research" in out and "sam" in out

    code, out = await cli(env, "plan", "cancel", plan_id, "--by", "mia", "--reason", "post dropped")
    assert code == 0, out
    assert (await _recorded(stack, plan_id, lambda r: r.state == "cancelled")).state == "cancelled"
    code, out = await cli(env, "task", "done", plan_id, "keyword_research", "--by", "sam")
    assert code == 1 and "refused: the plan is over: cancelled" in out

    code, out = await cli(env, "plan", "list", "blog_post")
    assert code == 0 and "plan:blog_post:cli-1" in out and "cancelled" in out
    code, out = await cli(env, "task", "done", "plan:blog_post:nope", "idea", "--by", "mia")
    assert code == 1 and "no plan 'plan:blog_post:nope'" in out


async def test_a_plan_over_the_api(gateway_stack: GatewayStack, tmp_path: Path) -> None:
    stack = gateway_stack
    http = stack.http
    for line in PEOPLE.splitlines()[1:]:
        pid, name, email, roles, zone = line.split(",")
        answer = await http.put(
            f"/v1/team/{pid}",
            json={
                "name": name,
                "email": email,
                "roles": [r for r in [roles] if r],
                "time_zone": zone,
            },
        )
        assert answer.status_code in (200, 201), answer.text
    target = (date.today() + timedelta(days=40)).isoformat()
    body = {
        "template": "blog_post",
        "instance": "api-1",
        "target": target,
        "assignments": ROLES,
        "manager": "mia",
    }

    answer = await http.post("/v1/plans", json={**body, "template": "vlog"})
    assert answer.status_code == 404 and "no plan template 'vlog'" in answer.json()["detail"]
    answer = await http.post(
        "/v1/plans", json={**body, "assignments": {**ROLES, "blog_writer": "zed"}}
    )
    assert answer.status_code == 422
    assert "not members of the team: zed" in answer.text

    answer = await http.post("/v1/plans", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"plan_id": "plan:blog_post:api-1"}
    plan_id = answer.json()["plan_id"]
    again = await http.post("/v1/plans", json=body)
    assert again.status_code == 409
    assert again.json()["detail"] == "plan:blog_post:api-1 was started already"
    await _recorded(stack, plan_id)

    answer = await http.post(
        f"/v1/plans/{plan_id}/changes", json={"kind": "complete", "task": "outline", "by": "ana"}
    )
    assert answer.status_code == 409
    assert "'outline' is not active yet" in answer.json()["detail"]
    answer = await http.post(
        f"/v1/plans/{plan_id}/changes",
        json={"kind": "complete", "task": "generate_idea", "by": "cleo"},
    )
    assert answer.status_code == 200, answer.text
    record = PlanRecord.model_validate(answer.json())
    assert [t.status for t in record.tasks[:3]] == ["done", "active", "waiting"]
    answer = await http.post(
        f"/v1/plans/{plan_id}/changes",
        json={"kind": "reassign", "task": "keyword_research", "to": "ana", "by": "mia"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["tasks"][1]["people"] == ["ana"]

    fetched = await http.get(f"/v1/plans/{plan_id}")
    assert fetched.status_code == 200 and fetched.json()["plan_id"] == plan_id
    listed = await http.get("/v1/plans", params={"template": "blog_post"})
    assert plan_id in [p["plan_id"] for p in listed.json()]
    for missing in ("plan:blog_post:nope", "journey:lead_nurturing:c1"):
        answer = await http.post(
            f"/v1/plans/{missing}/changes", json={"kind": "cancel", "by": "mia"}
        )
        assert answer.status_code == 404, answer.text
    answer = await http.post(
        f"/v1/plans/{plan_id}/changes", json={"kind": "reassign", "to": "ana", "by": "mia"}
    )
    assert answer.status_code == 422
    answer = await http.post(f"/v1/plans/{plan_id}/changes", json={"kind": "cancel", "by": "mia"})
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"


def test_plan_status_says_what_came_of_a_task_and_what_an_approver_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/journeys.db"
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "250")
    due = datetime(2027, 1, 8, 16, tzinfo=UTC)
    call = TaskRecord(
        task_id="call",
        title="Call",
        kind="task",
        people=["ana"],
        status="active",
        due_at=due,
        rounds=2,
        sent_back_by="mia",
        sent_back_comment="Ask about pricing",
    )
    check = call.model_copy(
        update={
            "task_id": "check",
            "kind": "approval",
            "people": ["mia", "ola"],
            "approved_by": ["mia"],
            "sent_back_by": None,
            "sent_back_comment": None,
        }
    )
    done = call.model_copy(
        update={"task_id": "prepare", "status": "done", "done_by": "ana", "outcome": "reached"}
    )
    record = PlanRecord(
        plan_id="plan:sales:w1",
        template="sales",
        version=1,
        instance="w1",
        target=due.date(),
        started_at=due,
        tasks=[done, call, check],
    )

    async def write() -> None:
        store = await open_store(url)
        await store.record_plan(record)
        await store.close()

    asyncio.run(write())
    result = CliRunner().invoke(app, ["plan", "status", "plan:sales:w1"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if "│" in line}
    assert "outcome reached" in rows["prepare"]
    assert "sent back by mia: Ask about pricing" in rows["call"]
    assert "approved by mia" in rows["check"]
