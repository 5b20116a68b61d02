"""The `task` step kind as authored: what `journeys validate` says of it, and the pure decisions
a run takes about it (whose turn it is)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from journeys.decisions import task_owner
from journeys.library import load_journey
from journeys.settings import LIBRARY_DIR
from journeys.spec import TaskStep
from tests.test_spec_validation import problems, write

CALL = """\
  - id: call
    kind: task
    title: Call the lead
    role: sales
    due: 2bd
{extra}  - id: done
    kind: end
  - id: gone
    kind: end
"""


def call(extra: str = "") -> str:
    return CALL.format(extra="".join(f"    {line}\n" for line in extra.splitlines()))


def test_a_task_step_defaults_to_a_sales_calls_outcomes(tmp_path: Path) -> None:
    spec = load_journey(write(tmp_path, call("on:\n  not_interested: gone")))
    step = spec.step("call")
    assert isinstance(step, TaskStep)
    assert step.outcomes == ["reached", "no_answer", "not_interested"]
    # An outcome `on` does not name goes on with the step listed next.
    assert spec.graph()["call"] == ["done", "gone"]


def test_unknown_outcomes_in_on_are_named_with_the_nearest(tmp_path: Path) -> None:
    assert problems(tmp_path, call("on:\n  reachd: done\n  overdue: nowhere")) == [
        f"{tmp_path}/broken.yaml:6: step 'call': unknown next step 'nowhere'",
        f"{tmp_path}/broken.yaml:6: step 'call': 'on' names 'reachd', which is no outcome of "
        "this task (did you mean 'reached'?): one of reached, no_answer, not_interested, "
        "overdue, unassigned",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("owner_attribute: account_owner", "exactly one of 'role' or 'owner_attribute'"),
        ("outcomes: [done, overdue]", "overdue: the run's own outcomes, not an owner's"),
        ("outcomes: [done, done]", "an outcome is named twice"),
    ],
)
def test_who_does_it_and_what_may_come_of_it_are_checked(
    tmp_path: Path, extra: str, message: str
) -> None:
    found = problems(tmp_path, call(extra))
    assert len(found) == 1 and message in found[0], found


def test_a_title_is_plain_text_and_due_at_least_a_day_later(tmp_path: Path) -> None:
    steps = call().replace("Call the lead", "Call {{ contact.attributes.first_name }}")
    found = problems(tmp_path, steps.replace("2bd", "0d"))
    assert len(found) == 2
    assert "a task's title is plain text: no contact data is templated into it" in found[0]
    assert "'0d' is not a due offset of at least a day after the step" in found[1]


def test_a_task_is_a_wait_but_not_on_the_unassigned_path(tmp_path: Path) -> None:
    looping = """\
  - id: call
    kind: task
    title: Call the lead
    role: sales
    due: 1d
    on:
      no_answer: call
      {unassigned}
  - id: done
    kind: end
"""
    load_journey(write(tmp_path, looping.format(unassigned="")))  # no_answer waited first
    assert problems(
        tmp_path,
        looping.format(unassigned="unassigned: again")
        + "  - id: again\n    kind: goto\n    target: call\n",
    ) == [f"{tmp_path}/broken.yaml:6: step 'call': loop with no wait in it: call -> again -> call"]


def test_the_seed_journey_calls_leads_who_do_not_open() -> None:
    spec = load_journey(LIBRARY_DIR / "cd_lead_followup.yaml", LIBRARY_DIR)
    step = spec.step("sales_call")
    assert isinstance(step, TaskStep) and step.role == "sales" and step.due == "2bd"
    assert set(step.on) == {"reached", "no_answer", "not_interested", "overdue", "unassigned"}


def test_a_role_takes_turns_by_a_stable_hash_of_the_contact_id() -> None:
    team = ["s-3", "s-1", "s-2"]
    owners = Counter(task_owner(team, f"c-{i}") for i in range(3000))
    assert set(owners) == set(team) and min(owners.values()) > 900
    # The same contact goes to the same person, whatever order the team was read in.
    assert task_owner(team, "c-ada") == task_owner(sorted(team), "c-ada")
    assert task_owner([], "c-ada") is None
