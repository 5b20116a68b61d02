"""Plan templates as data: the seed's blog post exactly, business days over weekends and public
holidays, and every class of mistake in a template reported by file, line and task."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys.plans.calendar import WORKWEEK, Offset, due_date, public_holidays
from journeys.plans.library import load_plan, load_plans
from journeys.settings import LIBRARY_DIR
from journeys.yamlfile import SpecError
from starters.cli import app

HEADER = """\
id: broken
version: 1
description: a plan with mistakes
roles:
  writer: Writer
  editor: Editor
tasks:
"""


def problems(tmp_path: Path, tasks: str, header: str = HEADER) -> list[str]:
    path = tmp_path / "broken.yaml"
    path.write_text(header + tasks)
    with pytest.raises(SpecError) as err:
        load_plan(path)
    return [str(p) for p in err.value.problems]


def test_the_seeds_blog_post_exactly() -> None:
    plan = load_plans(LIBRARY_DIR)["blog_post"]
    assert [(t.title, t.roles, t.due) for t in plan.tasks] == [
        ("Generate idea", ["content_strategist"], "-30d"),
        ("Do keyword research", ["seo_strategist"], "-25d"),
        ("Create blog post outline", ["blog_writer"], "-20d"),
        ("Approve outline", ["seo_strategist", "marketing_stakeholder"], "-15d"),
        ("Write final draft", ["blog_writer"], "-10d"),
        ("Create images or infographics", ["graphic_designer"], "-5d"),
        ("Schedule social media promotions", ["social_media_manager"], "-4d"),
        ("Publish post and review live version for bugs", ["blog_writer"], "0d"),
    ]
    approval = plan.task("approve_outline")
    assert (approval.kind, approval.approve) == ("approval", "all")
    assert approval.sent_back_to == "outline"
    assert plan.reminders == ["48h", "24h"]
    assert set(load_plans(LIBRARY_DIR)) == {"blog_post", "client_onboarding"}


def test_business_days_skip_weekends_and_public_holidays() -> None:
    poland = public_holidays("PL")
    # Due five business days before Friday 2027-01-08: Wednesday the 6th (Epiphany) and Friday
    # the 1st (New Year) are holidays, the 2nd and 3rd a weekend.
    assert due_date(date(2027, 1, 8), Offset.parse("-5bd"), WORKWEEK, poland) == date(2026, 12, 30)
    assert due_date(date(2027, 1, 8), Offset.parse("-5bd"), WORKWEEK, ()) == date(2027, 1, 1)
    # Calendar days count every day; 0d is the target date itself.
    assert due_date(date(2027, 1, 15), Offset.parse("-30d"), WORKWEEK, poland) == date(2026, 12, 16)
    assert due_date(date(2027, 1, 15), Offset.parse("0d"), WORKWEEK, poland) == date(2027, 1, 15)
    # Someone working Tuesday to Saturday: the business day before Tuesday is Saturday.
    tuesday_to_saturday = {1, 2, 3, 4, 5}
    assert due_date(date(2027, 1, 12), Offset.parse("-1bd"), tuesday_to_saturday, ()) == date(
        2027, 1, 9
    )


def test_each_class_of_mistake_has_its_message(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: draft
    title: Draft
    owner: writter
    due: -10d
  - id: check
    title: Check
    kind: approval
    approvers: [editor]
    due: -5d
  - id: polish
    title: Polish
    owner: writer
    due: -8d
    after: [draft, chek]
  - id: publish
    title: Publish
    owner: writer
    due: -3d
    after: [polish]
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:8: task 'draft': unknown role 'writter' (did you mean "
        "'writer'?); the plan's roles: writer, editor",
        f"{tmp_path}/broken.yaml:12: task 'check': an approval with nothing to approve: name "
        "the tasks whose work it approves under 'after'",
        f"{tmp_path}/broken.yaml:17: task 'polish': comes after unknown task 'chek' (did you "
        "mean 'check'?)",
    ]


def test_a_dependency_cycle_is_named_with_its_path(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: a
    title: A
    owner: writer
    due: -10d
    after: [c]
  - id: b
    title: B
    owner: writer
    due: -8d
    after: [a]
  - id: c
    title: C
    owner: editor
    due: -5d
    after: [b]
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:8: task 'a': dependency cycle: a -> c -> b -> a (each waits "
        "for the next)"
    ]


def test_a_due_date_before_a_task_it_comes_after(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: draft
    title: Draft
    owner: writer
    due: -10d
  - id: edit
    title: Edit
    owner: editor
    due: -12d
    after: [draft]
  - id: publish
    title: Publish
    owner: writer
    # Five business days back is five to seven calendar days: for a Saturday, after -6d.
    due: -5bd
    after: [edit]
  - id: promote
    title: Promote
    owner: writer
    due: -6d
    after: [publish]
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:12: task 'edit': due -12d comes before 'draft' (due -10d), "
        "which it comes after (for a target date of Monday 2031-03-03, say)",
        f"{tmp_path}/broken.yaml:23: task 'promote': due -6d comes before 'publish' (due -5bd), "
        "which it comes after (for a target date of Saturday 2031-03-08, say)",
    ]


def test_the_schema_and_the_calendar_are_checked_by_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: draft
    title: Draft
    owner: writer
    due: ten days before
  - id: check
    title: Check
    kind: approval
    owner: editor
    due: -5d
    after: [draft]
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:8: task 'draft': due: 'ten days before' is not a due offset: "
        "days before the target date as -30d, or business days as -5bd (0d is the target date "
        "itself)",
        f"{tmp_path}/broken.yaml:12: task 'check': an approval needs 'approvers' roles (and no "
        "'owner')",
    ]
    assert problems(
        tmp_path,
        "  - {id: draft, title: Draft, owner: writer, due: -1d}\n",
        HEADER.replace("roles:", "holidays: XX\nroles:"),
    ) == [f"{tmp_path}/broken.yaml: holidays: unknown calendar 'XX': use a country code (PL, US)"]


def test_journeys_validate_checks_plans_too(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    broken = tmp_path / "plans" / "broken.yaml"
    broken.write_text(HEADER + "  - {id: draft, title: Draft, owner: nobody, due: -1d}\n")
    good = LIBRARY_DIR / "plans" / "blog_post.yaml"
    result = CliRunner().invoke(app, ["validate", str(broken), str(good)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{broken}:8: task 'draft': unknown role 'nobody'; the plan's roles: writer, editor",
        f"{good}: ok: plan blog_post v1, 8 tasks, 6 roles",
    ]


def test_outcomes_and_escalation_are_checked_by_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: call
    title: Call the client
    owner: writer
    due: -3d
    outcomes: [reached, no_answer, reached]
  - id: check
    title: Check
    kind: approval
    approvers: [editor]
    outcomes: [fine]
    due: -1d
    after: [call]
  - id: note
    title: Note
    owner: writer
    due: 0d
    outcomes: [Not An Id]
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:8: task 'call': an outcome is named twice in 'outcomes'",
        f"{tmp_path}/broken.yaml:13: task 'check': an approval's outcome is approved or rejected: "
        "no 'outcomes'",
        f"{tmp_path}/broken.yaml:20: task 'note': outcomes.0: String should match pattern "
        "'^[a-z][a-z0-9_]*$'",
    ]
    assert problems(
        tmp_path,
        "  - {id: draft, title: Draft, owner: writer, due: -1d}\n",
        HEADER.replace("roles:", "escalate_after: 0\nroles:"),
    ) == [f"{tmp_path}/broken.yaml: escalate_after: Input should be greater than or equal to 1"]
