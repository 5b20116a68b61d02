"""Where a plan run stands and the changes people make to it: tasks becoming someone's as their
dependencies finish, completing (only an active task, only by its owner or the manager),
approving (all or any), and a rejection sending the work back with its comment."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from journeys.plans.library import load_plans
from journeys.plans.spec import PlanSpec
from journeys.plans.state import (
    PlanState,
    Refused,
    activate_ready,
    approve,
    cancel,
    complete,
    finished,
    move,
    reassign,
    reject,
)
from journeys.settings import LIBRARY_DIR

BLOG = load_plans(LIBRARY_DIR)["blog_post"]
PEOPLE = {
    "content_strategist": "cleo",
    "seo_strategist": "sam",
    "blog_writer": "ana",
    "marketing_stakeholder": "max",
    "graphic_designer": "gia",
    "social_media_manager": "sol",
}
NOW = datetime(2027, 1, 4, 9, tzinfo=UTC)


def started() -> PlanState:
    state = PlanState.new(BLOG, date(2027, 2, 1), PEOPLE, manager="mia")
    assert activate_ready(BLOG, state, NOW) == ["generate_idea"]
    return state


def test_tasks_become_someones_as_the_ones_before_finish() -> None:
    state = started()
    complete(BLOG, state, "generate_idea", "cleo", NOW)
    assert activate_ready(BLOG, state, NOW) == ["keyword_research"]
    # The manager may finish a task for its owner.
    complete(BLOG, state, "keyword_research", "mia", NOW)
    assert state.tasks["keyword_research"].done_by == "mia"
    assert activate_ready(BLOG, state, NOW) == ["outline"]
    assert state.open_tasks() == ["outline"]


def test_completing_what_is_not_active_or_not_yours_is_refused_with_the_reason() -> None:
    state = started()
    with pytest.raises(Refused, match="'outline' is not active yet: it waits for keyword_research"):
        complete(BLOG, state, "outline", "ana", NOW)
    with pytest.raises(Refused, match="'generate_idea' is cleo's task: only they or the plan's"):
        complete(BLOG, state, "generate_idea", "ana", NOW)
    with pytest.raises(Refused, match="the plan has no task 'generate_ideas'"):
        complete(BLOG, state, "generate_ideas", "cleo", NOW)
    complete(BLOG, state, "generate_idea", "cleo", NOW)
    with pytest.raises(Refused, match="'generate_idea' is done already"):
        complete(BLOG, state, "generate_idea", "cleo", NOW)
    assert state.tasks["generate_idea"].done_by == "cleo"


def test_every_role_a_plan_needs_is_assigned() -> None:
    partial = {k: v for k, v in PEOPLE.items() if k != "graphic_designer"}
    with pytest.raises(Refused, match="missing: graphic_designer"):
        PlanState.new(BLOG, date(2027, 2, 1), partial, None)
    with pytest.raises(Refused, match="the plan has no roles editor"):
        PlanState.new(BLOG, date(2027, 2, 1), {**PEOPLE, "editor": "ed"}, None)


def _to_approval() -> PlanState:
    state = started()
    done_by = [("generate_idea", "cleo"), ("keyword_research", "sam"), ("outline", "ana")]
    for task, person in done_by:
        complete(BLOG, state, task, person, NOW)
        activate_ready(BLOG, state, NOW)
    assert state.open_tasks() == ["approve_outline"]
    return state


def test_an_approval_of_all_needs_every_approver() -> None:
    state = _to_approval()
    with pytest.raises(Refused, match="'approve_outline' is an approval: approve or reject it"):
        complete(BLOG, state, "approve_outline", "sam", NOW)
    with pytest.raises(Refused, match="ana is not an approver of 'approve_outline'"):
        approve(BLOG, state, "approve_outline", "ana", NOW)
    assert approve(BLOG, state, "approve_outline", "sam", NOW) is False
    with pytest.raises(Refused, match="sam has approved 'approve_outline' already"):
        approve(BLOG, state, "approve_outline", "sam", NOW)
    assert approve(BLOG, state, "approve_outline", "max", NOW) is True
    assert activate_ready(BLOG, state, NOW) == ["final_draft"]


def test_a_rejection_sends_the_work_back_with_its_comment_and_forward_again() -> None:
    state = _to_approval()
    approve(BLOG, state, "approve_outline", "sam", NOW)
    with pytest.raises(Refused, match="a rejection needs a comment"):
        reject(BLOG, state, "approve_outline", "max", "  ", NOW)
    later = datetime(2027, 1, 5, 10, tzinfo=UTC)
    assert reject(BLOG, state, "approve_outline", "max", "Needs a section on pricing", later) == (
        "outline"
    )
    assert state.open_tasks() == ["outline"]
    assert state.tasks["approve_outline"].status == "waiting"
    assert state.tasks["approve_outline"].approvals == {}  # sam approves the new outline again
    assert [r.comment for r in state.tasks["approve_outline"].rejections] == [
        "Needs a section on pricing"
    ]
    assert state.tasks["outline"].activated_at == [NOW, later]
    complete(BLOG, state, "outline", "ana", later)
    assert activate_ready(BLOG, state, later) == ["approve_outline"]
    approve(BLOG, state, "approve_outline", "sam", later)
    approve(BLOG, state, "approve_outline", "max", later)
    for task, person in [
        ("final_draft", "ana"),
        ("images", "gia"),
        ("social_promotions", "sol"),
        ("publish_and_review", "ana"),
    ]:
        activate_ready(BLOG, state, later)
        complete(BLOG, state, task, person, later)
    assert finished(state)


def test_only_the_manager_reassigns_a_task_or_a_role() -> None:
    state = started()
    with pytest.raises(Refused, match=r"only the plan's manager \(mia\) may reassign work"):
        reassign(BLOG, state, "cleo", "ola", task_id="generate_idea")
    # One task: the active one is announced to its new owner, who may now finish it.
    assert reassign(BLOG, state, "mia", "ola", task_id="generate_idea") == ["generate_idea"]
    with pytest.raises(Refused, match="'generate_idea' is ola's task"):
        complete(BLOG, state, "generate_idea", "cleo", NOW)
    complete(BLOG, state, "generate_idea", "ola", NOW)
    # A role: every task of it not given to someone by name, from now on.
    assert reassign(BLOG, state, "mia", "bob", role="blog_writer") == []
    assert state.people(BLOG.task("publish_and_review")) == ["bob"]
    with pytest.raises(Refused, match="several approvers: reassign one of their roles"):
        reassign(BLOG, state, "mia", "bob", task_id="approve_outline")
    with pytest.raises(Refused, match="the plan has no role 'editor'"):
        reassign(BLOG, state, "mia", "bob", role="editor")


def test_the_manager_moves_the_target_but_not_into_the_past_and_cancels() -> None:
    state = started()
    with pytest.raises(Refused, match="only the plan's manager"):
        move(state, "cleo", date(2027, 3, 1), today=date(2027, 1, 4))
    with pytest.raises(Refused, match="2027-01-03 is in the past \\(today is 2027-01-04\\)"):
        move(state, "mia", date(2027, 1, 3), today=date(2027, 1, 4))
    move(state, "mia", date(2027, 3, 1), today=date(2027, 1, 4))
    assert state.target == date(2027, 3, 1)
    cancel(state, "mia")
    with pytest.raises(Refused, match="the plan was cancelled"):
        complete(BLOG, state, "generate_idea", "cleo", NOW)
    with pytest.raises(Refused, match="the plan was cancelled"):
        cancel(state, "mia")


def test_a_task_that_names_its_outcomes_is_completed_with_one() -> None:
    plan = PlanSpec.model_validate(
        {
            "id": "calls",
            "version": 1,
            "description": "A sales call.",
            "roles": {"seller": "Seller"},
            "tasks": [
                {
                    "id": "call",
                    "title": "Call",
                    "owner": "seller",
                    "due": "0d",
                    "outcomes": ["reached", "no_answer"],
                }
            ],
        }
    )
    state = PlanState.new(plan, date(2027, 2, 1), {"seller": "sam"}, manager=None)
    activate_ready(plan, state, NOW)
    with pytest.raises(Refused, match="one of reached, no_answer \\(it is required\\)"):
        complete(plan, state, "call", "sam", NOW)
    with pytest.raises(Refused, match="one of reached, no_answer \\(not 'busy'\\)"):
        complete(plan, state, "call", "sam", NOW, outcome="busy")
    complete(plan, state, "call", "sam", NOW, outcome="no_answer")
    assert state.tasks["call"].outcome == "no_answer"
    with pytest.raises(Refused, match="names no outcomes"):
        complete(BLOG, started(), "generate_idea", "cleo", NOW, outcome="reached")
