"""`journeys plan report`: what a template's recorded runs say about its estimates, per task and
per person, and the due offsets learned from them as a diff of the template file. Figures here
are computed by hand from the simulated history below."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys import eventloop
from journeys.plans.calendar import Offset
from journeys.plans.library import load_plan
from journeys.plans.records import PlanRecord, PlanRunState, TaskRecord, plan_workflow_id
from journeys.plans.report import (
    p80,
    plan_report,
    suggested_template,
    suggestions,
    template_diff,
)
from journeys.plans.spec import PlanSpec
from journeys.settings import LIBRARY_DIR
from journeys.store import ContactStore, open_store
from starters.cli import app

BLOG_POST = LIBRARY_DIR / "plans" / "blog_post.yaml"
# Who does what in every simulated run; an approval is settled by its last approver.
PEOPLE = {
    "generate_idea": "cy",
    "keyword_research": "bo",
    "outline": "ana",
    "final_draft": "ana",
    "images": "dan",
    "social_promotions": "eve",
    "publish_and_review": "ana",
}
# Hours late (negative: early) of the chronic tasks in the five finished runs; every other task
# is done 2 hours before it is due, and social promotions 4 hours after the images.
IMAGES_LATE = [24, 48, 52, 72, 96]
KEYWORDS_LATE = [-72, -96, -48, -72, -120]
TARGETS = [date(2027, 3, 1) + timedelta(weeks=2 * n) for n in range(7)]


def _due_at(target: date, due: str) -> datetime:
    return datetime.combine(target + timedelta(days=Offset.parse(due).days), time(17), UTC)


def _hours_late(task_id: str, n: int) -> int:
    if task_id == "images":
        return IMAGES_LATE[n]
    if task_id == "keyword_research":
        return KEYWORDS_LATE[n]
    if task_id == "social_promotions":  # due a day after the images
        return IMAGES_LATE[n] - 24 + 4
    return -2


def _blog_post_run(
    plan: PlanSpec,
    n: int,
    done: int,
    state: PlanRunState = "finished",
) -> PlanRecord:
    """Run `n` of the simulated history, with its first `done` tasks done (the next one active).
    Run 1's outline was rejected once and redone; the approvals alternate who settles them."""
    target = TARGETS[n]
    tasks: list[TaskRecord] = []
    for index, spec in enumerate(plan.tasks):
        due_at = _due_at(target, spec.due)
        redone = n == 1 and spec.id in ("outline", "approve_outline")
        is_done = index < done
        tasks.append(
            TaskRecord(
                task_id=spec.id,
                title=spec.title,
                kind=spec.kind,
                people=[PEOPLE.get(spec.id, "bo")],
                status="done" if is_done else "active" if index == done else "waiting",
                due_at=due_at,
                activated_at=due_at - timedelta(days=3) if index <= done else None,
                rounds=(2 if redone else 1) if index <= done else 0,
                done_at=due_at + timedelta(hours=_hours_late(spec.id, n)) if is_done else None,
                done_by=(PEOPLE.get(spec.id) or ("bo", "mia")[n % 2]) if is_done else None,
            )
        )
    return PlanRecord(
        plan_id=plan_workflow_id(plan.id, f"post{n}"),
        template=plan.id,
        version=plan.version,
        instance=f"post{n}",
        target=target,
        manager="mia",
        state=state,
        started_at=datetime.combine(target - timedelta(days=35), time(9), UTC),
        tasks=tasks,
    )


def simulated_history(plan: PlanSpec) -> list[PlanRecord]:
    """Five finished blog posts with late images and early keyword research, one cancelled after
    its idea, and one running with its keyword research open."""
    finished = [_blog_post_run(plan, n, len(plan.tasks)) for n in range(5)]
    return [
        *finished,
        _blog_post_run(plan, 5, 1, "cancelled"),
        _blog_post_run(plan, 6, 1, "running"),
    ]


def test_p80_is_the_nearest_rank() -> None:
    # rank ceil(0.8 * 5) = 4 of 1..5; ceil(0.8 * 4) = 4 of 4; ceil(0.8 * 6) = 5 of 6
    assert p80([5, 1, 4, 2, 3]) == 4
    assert p80([10, 20, 30, 40]) == 40
    assert p80([1, 2, 3, 4, 5, 6]) == 5
    assert p80([7]) == 7


def test_the_report_of_the_simulated_history_per_task_and_per_person() -> None:
    plan = load_plan(BLOG_POST)
    report = plan_report(plan, simulated_history(plan))
    assert (report.runs, report.finished, report.running, report.cancelled) == (7, 5, 1, 1)
    tasks = {t.task_id: t for t in report.tasks}
    images = tasks["images"]
    # Late 24, 48, 52, 72, 96 hours: none on time, median 52, p80 the 4th: 72; each activated
    # three days before it was due: 72 + 52 hours to complete.
    assert (images.runs, images.on_time, images.on_time_rate) == (5, 0, 0.0)
    assert (images.median_late_hours, images.p80_late_hours) == (52, 72)
    assert images.median_hours_to_complete == 124
    keywords = tasks["keyword_research"]
    # Early -120, -96, -72, -72, -48: the open one of the running run is not counted.
    assert (keywords.runs, keywords.on_time_rate, keywords.open) == (5, 1.0, 1)
    assert (keywords.median_late_hours, keywords.p80_late_hours) == (-72, -72)
    # The idea was done in the cancelled and the running run too; the cancelled run's keyword
    # research, never done, is in no figure.
    assert (tasks["generate_idea"].runs, tasks["generate_idea"].open) == (7, 0)
    assert (tasks["outline"].redone, tasks["approve_outline"].redone) == (1, 1)
    people = {p.person: p for p in report.people}
    assert people["ana"].tasks == ["outline", "final_draft", "publish_and_review"]
    assert (people["ana"].runs, people["ana"].on_time_rate) == (15, 1.0)
    # bo: five keyword research runs and the approvals of runs 0, 2 and 4, all on time.
    assert people["bo"].tasks == ["keyword_research", "approve_outline"]
    assert (people["bo"].runs, people["bo"].median_late_hours) == (8, -60)
    assert people["mia"].tasks == ["approve_outline"] and people["mia"].runs == 2
    # eve: social promotions, 4, 28, 32, 52, 76 hours late.
    assert (people["eve"].on_time, people["eve"].p80_late_hours) == (0, 52)


def test_suggested_offsets_schedule_backwards_from_the_target() -> None:
    plan = load_plan(BLOG_POST)
    found = {s.task_id: s for s in suggestions(plan, simulated_history(plan))}
    # Publishing comes after nothing: it stays on the target.
    assert found["publish_and_review"].suggested == "0d"
    # Every task is activated 3 days before its due date; done 2 hours early it took 70 hours:
    # 3 days (ceil). Social promotions: due 3 days before publishing.
    assert found["social_promotions"].suggested == "-3d"
    assert found["social_promotions"].reason == (
        "publish_and_review (due 0d) less p80 3d to complete of 5 runs"
    )
    # Social promotions took 72 + 4, 28, 32, 52, 76 hours: p80 124 hours, 6 days (ceil): images
    # -3 - 6 = -9d; images took 72 + 24, 48, 52, 72, 96 hours: p80 144, 6 days: final draft -15d.
    assert found["images"].suggested == "-9d"
    assert found["final_draft"].suggested == "-15d"
    # Then 3 days each: -18d, -21d, -24d.
    assert [found[t].suggested for t in ("approve_outline", "outline", "keyword_research")] == [
        "-18d",
        "-21d",
        "-24d",
    ]
    # Keyword research done before it was activated (72 - 120 ... hours): never less than 0d.
    assert found["generate_idea"].suggested == "-24d"


def test_a_chronically_slow_images_pulls_every_earlier_task_earlier() -> None:
    plan = load_plan(BLOG_POST)
    history = simulated_history(plan)
    base = {s.task_id: s.suggested for s in suggestions(plan, history)}
    slow = [
        r.model_copy(
            update={
                "tasks": [
                    t.model_copy(update={"done_at": t.done_at + timedelta(days=4)})
                    if t.task_id == "images" and t.done_at is not None
                    else t
                    for t in r.tasks
                ]
            }
        )
        for r in history
    ]
    found = {s.task_id: s.suggested for s in suggestions(plan, slow)}
    assert found["publish_and_review"] == "0d"
    assert found["social_promotions"] == base["social_promotions"] == "-3d"
    assert found["images"] == base["images"] == "-9d"
    # Images taking 4 more days: everything before them is due 4 days earlier.
    earlier = [t.id for t in plan.tasks[: plan.positions["images"]]]
    assert [found[t] for t in earlier] == ["-28d", "-28d", "-25d", "-22d", "-19d"]
    assert all(Offset.parse(found[t]).days < Offset.parse(base[t]).days for t in earlier)


def test_few_runs_keep_the_offset_and_no_task_is_due_after_one_that_waits_for_it() -> None:
    plan = load_plan(BLOG_POST)
    history = simulated_history(plan)
    found = {s.task_id: s for s in suggestions(plan, history[:2])}
    assert found["images"].suggested == "-5d"
    assert found["images"].reason == "too few runs of social_promotions (2 of 3)"
    assert found["publish_and_review"].suggested == "0d"
    # Social promotions recorded in no run: images keep -5d, and the tasks before them follow
    # images' 6 days from -5d: final draft -11d, then 3 days each.
    fewer_social = [
        r.model_copy(update={"tasks": [t for t in r.tasks if t.task_id != "social_promotions"]})
        for r in history[:5]
    ]
    kept = {s.task_id: s for s in suggestions(plan, fewer_social)}
    assert kept["images"].suggested == "-5d"
    assert kept["images"].reason == "too few runs of social_promotions (0 of 3)"
    assert kept["final_draft"].suggested == "-11d"
    # A task is never due after one that comes after it: publishing due 6 days before its
    # target in this template, social promotions (-3d by the rule) is capped there.
    early = plan.model_copy(
        update={
            "tasks": [
                t.model_copy(update={"due": "-6d"}) if t.id == "publish_and_review" else t
                for t in plan.tasks
            ]
        }
    )
    capped = {s.task_id: s for s in suggestions(early, history)}
    assert capped["publish_and_review"].suggested == "-6d"
    assert capped["social_promotions"].suggested == "-9d"
    # Runs of another version were due on other offsets: they teach nothing.
    older = [r.model_copy(update={"version": 0}) for r in history]
    assert all(s.suggested == s.current for s in suggestions(plan, older))


def test_the_diff_changes_only_the_due_lines_and_the_version(tmp_path: Path) -> None:
    plan = load_plan(BLOG_POST)
    report = plan_report(plan, simulated_history(plan))
    # The suggested template is a valid one: every due date still after those it waits for.
    revised = tmp_path / "blog_post.yaml"
    revised.write_text(suggested_template(BLOG_POST.read_text(), "blog_post.yaml", plan, report))
    assert [t.due for t in load_plan(revised).tasks] == [s.suggested for s in report.suggestions]
    assert load_plan(revised).version == 2
    diff = template_diff(BLOG_POST.read_text(), "blog_post.yaml", plan, report)
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == [
        "-version: 1",
        "+version: 2",
        "-    due: -30d",
        "+    due: -24d",
        "-    due: -25d",
        "+    due: -24d",
        "-    due: -20d",
        "+    due: -21d",
        "-    due: -15d",
        "+    due: -18d",
        "-    due: -10d",
        "+    due: -15d",
        "-    due: -5d",
        "+    due: -9d",
        "-    due: -4d",
        "+    due: -3d",
    ]
    assert diff.startswith("--- blog_post.yaml\n+++ blog_post.yaml (suggested)\n")
    # No change: no diff.
    assert template_diff(BLOG_POST.read_text(), "blog_post.yaml", plan, plan_report(plan, [])) == ""


async def test_the_report_reads_the_runs_the_store_recorded(
    store_on_each_database: ContactStore,
) -> None:
    store = store_on_each_database
    plan = load_plan(BLOG_POST)
    history = simulated_history(plan)
    for run in history:
        await store.record_plan(run)
    report = plan_report(plan, await store.plans_of("blog_post"))
    assert report == plan_report(plan, history)
    since = plan_report(plan, await store.plans_of("blog_post"), since=TARGETS[3] - timedelta(35))
    assert (since.runs, since.tasks[5].runs) == (4, 2)


def test_journeys_plan_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/journeys.db"
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(BLOG_POST.parents[3])  # the diff names the file from here
    plan = load_plan(BLOG_POST)

    async def record() -> None:
        store = await open_store(url)
        try:
            for r in simulated_history(plan):
                await store.record_plan(r)
        finally:
            await store.close()

    runner = CliRunner()
    empty = runner.invoke(app, ["plan", "report", "blog_post"])
    assert (empty.exit_code, empty.output) == (0, "blog_post has no recorded runs\n")
    eventloop.run(record())
    result = runner.invoke(app, ["plan", "report", "blog_post"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0]
        == "blog_post v1: 7 runs (5 finished, 1 running, 1 cancelled); lateness is done minus due"
    )
    row = next(line for line in lines if "│ images " in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "images",
        "5",
        "0 (0%)",
        "+2d 4h",
        "+3d",
        "5d 4h",
        "1",
        "0",
    ]
    assert "+++ journeys/library/plans/blog_post.yaml (suggested)" in lines
    assert "+    due: -9d" in lines and "-    due: -5d" in lines
    assert "-    due: 0d" not in lines
    as_json = runner.invoke(app, ["plan", "report", "blog_post", "--json"])
    data = json.loads(as_json.output)
    assert data["tasks"][5]["p80_late_hours"] == 72
    assert {s["task_id"]: s["suggested"] for s in data["suggestions"]}["images"] == "-9d"
    unknown = runner.invoke(app, ["plan", "report", "blog_pots"])
    assert unknown.exit_code == 1
    assert "no plan template 'blog_pots'" in unknown.output


LAUNCH = """\
id: launch
version: 3
description: A small launch.
roles: {writer: Writer}
holidays: PL
tasks:
  - id: draft
    title: Draft
    owner: writer
    due: "-3bd"  # three working days before
  - id: ship
    title: Ship
    owner: writer
    due: 0d
    after: [draft]
"""


def test_business_days_done_on_the_dot_and_the_diff_keeps_what_the_author_wrote(
    tmp_path: Path,
) -> None:
    file = tmp_path / "launch.yaml"
    file.write_text(LAUNCH)
    plan = load_plan(file)
    runs = []
    for n, target in enumerate([date(2027, 3, 15), date(2027, 3, 22), date(2027, 4, 5)]):
        # Draft due Wednesday, done Thursday. Ship takes 20 hours, done at its due time.
        draft_due = datetime.combine(target - timedelta(days=5), time(17), UTC)
        ship_due = datetime.combine(target, time(17), UTC)
        runs.append(
            PlanRecord(
                plan_id=plan_workflow_id("launch", str(n)),
                template="launch",
                version=3,
                instance=str(n),
                target=target,
                state="finished",
                started_at=draft_due - timedelta(days=7),
                tasks=[
                    TaskRecord(
                        task_id=task_id,
                        title=task_id,
                        kind="task",
                        people=["ana"],
                        status="done",
                        due_at=due_at,
                        activated_at=activated_at,
                        rounds=1,
                        done_at=done_at,
                        done_by="ana",
                    )
                    for task_id, due_at, activated_at, done_at in [
                        ("draft", draft_due, None, draft_due + timedelta(days=1)),
                        ("ship", ship_due, ship_due - timedelta(hours=20), ship_due),
                    ]
                ],
            )
        )
    report = plan_report(plan, runs)
    assert [(t.on_time, t.median_late_hours) for t in report.tasks] == [(0, 24), (3, 0)]
    # Ship's 20 hours are a day (ceil): draft due by the working day before the target, -1bd.
    assert [s.suggested for s in report.suggestions] == ["-1bd", "0d"]
    assert report.tasks[0].median_hours_to_complete is None  # never activated in these records
    diff = template_diff(LAUNCH, "launch.yaml", plan, report).splitlines()
    assert [line for line in diff if line[:1] in "+-"][2:] == [
        "-version: 3",
        "+version: 4",
        '-    due: "-3bd"  # three working days before',
        "+    due: -1bd  # three working days before",
    ]
