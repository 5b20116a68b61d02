"""Whatever a file holds, the command line answers with problems by line, never a traceback:
property tests over journey files and contact CSVs (hypothesis), beside the hand-made cases in
test_spec_validation.py and test_contacts_csv.py."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeys.contacts import Contact, parse_csv
from journeys.csvfile import decode_csv
from journeys.library import SpecError, load_journey
from journeys.plans.library import load_plan
from journeys.settings import LIBRARY_DIR

FAST = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# A journey that validates, and the fields a mistake can be in.
VALID: dict[str, Any] = yaml.safe_load((LIBRARY_DIR / "lead_nurturing.yaml").read_text())
STEP_FIELDS = ["id", "kind", "next", "duration", "timeout", "event", "step", "channel", "template"]


def _check(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "journey.yaml"
    path.write_bytes(content)
    try:
        load_journey(path, LIBRARY_DIR)
    except SpecError as e:
        assert e.problems and all(str(p).startswith(str(path)) for p in e.problems)


@FAST
@given(content=st.binary(max_size=400))
def test_any_bytes_as_a_journey_file(tmp_path: Path, content: bytes) -> None:
    _check(tmp_path, content)


@FAST
@given(
    field=st.sampled_from(["id", "version", "trigger", "params", "steps", "exit_events", "events"]),
    value=json_values,
)
def test_any_value_in_a_journey_field(tmp_path: Path, field: str, value: Any) -> None:
    _check(tmp_path, yaml.safe_dump({**VALID, field: value}, allow_unicode=True).encode())


@FAST
@given(
    index=st.integers(0, len(VALID["steps"]) - 1),
    field=st.sampled_from(STEP_FIELDS),
    value=json_values,
)
def test_any_value_in_a_step_field(tmp_path: Path, index: int, field: str, value: Any) -> None:
    steps = [dict(s) for s in VALID["steps"]]
    steps[index][field] = value
    _check(tmp_path, yaml.safe_dump({**VALID, "steps": steps}, allow_unicode=True).encode())


@FAST
@given(content=st.binary(max_size=400))
def test_any_bytes_as_a_csv_file(content: bytes) -> None:
    try:
        text = decode_csv(content)
    except ValueError as e:
        assert str(e).startswith("line ")
        return
    contacts, problems = parse_csv(text)
    assert all(isinstance(c, Contact) for c in contacts)
    assert all(1 <= p.line <= text.count("\n") + text.count("\r") + 1 for p in problems)


@FAST
@given(
    header=st.lists(
        st.sampled_from(["id", "email", "phone", "time_zone", "consent", "x", ""]), max_size=6
    ),
    rows=st.lists(st.lists(st.text(max_size=12), max_size=7), max_size=5),
)
def test_any_table_as_a_csv_file(header: list[str], rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    contacts, problems = parse_csv(out.getvalue())
    ids = [c.id for c in contacts]
    assert len(ids) == len(set(ids))  # a repeated id is a problem, never a second contact
    assert not contacts or "id" in header
    assert all(p.line >= 1 for p in problems)


PLAN: dict[str, Any] = yaml.safe_load((LIBRARY_DIR / "plans" / "blog_post.yaml").read_text())
TASK_FIELDS = ["id", "title", "kind", "owner", "approvers", "approve", "on_reject", "due", "after"]


@FAST
@given(
    index=st.integers(0, len(PLAN["tasks"]) - 1),
    field=st.sampled_from(TASK_FIELDS),
    value=json_values,
)
def test_any_value_in_a_plan_task_field(tmp_path: Path, index: int, field: str, value: Any) -> None:
    tasks = [dict(t) for t in PLAN["tasks"]]
    tasks[index][field] = value
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({**PLAN, "tasks": tasks}, allow_unicode=True))
    try:
        load_plan(path)
    except SpecError as e:
        assert e.problems and all(str(p).startswith(str(path)) for p in e.problems)
