"""Grading a lead, purely: fit rules over attributes, the decaying engagement score, the grade
the score raises; and the library's grading file, checked by line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from journeys.leads.grading import GradingSpec, LeadGrade, engagement, grade
from journeys.leads.library import grading_of, load_grading
from journeys.library import load_library
from journeys.settings import LIBRARY_DIR
from journeys.yamlfile import SpecError

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
SPEC = GradingSpec.model_validate(
    {
        "fit": [
            {"grade": "A", "when": ["attribute:role == 'buyer'", "attribute:company_size >= 200"]},
            {"grade": "B", "when": ["attribute:role == 'buyer'"]},
            {
                "grade": "C",
                "when": ["not attribute:role == 'spoiler'", "attribute:company_size > 0"],
            },
        ],
        "weights": {"opened": 1, "clicked": 5, "purchase": 25},
        "half_life_days": 10,
        "raise_at": [20, 60],
    }
)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.mark.parametrize(
    ("attributes", "fit"),
    [
        ({"role": "buyer", "company_size": 500}, "A"),
        ({"role": "buyer", "company_size": 50}, "B"),  # the first rule fails on its second
        ({"role": "buyer"}, "B"),
        ({"role": "adviser", "company_size": 50}, "C"),
        ({"role": "spoiler", "company_size": 50}, "D"),
        ({}, "D"),  # no rule describes them
    ],
)
def test_the_first_fit_rule_that_holds_wins_and_none_is_a_d(
    attributes: dict[str, object], fit: str
) -> None:
    assert grade(attributes, [], SPEC, NOW) == LeadGrade(grade=fit, fit=fit, score=0)


def test_an_events_points_halve_every_half_life() -> None:
    assert engagement([("clicked", NOW)], SPEC, NOW) == 5
    assert engagement([("clicked", ago(10))], SPEC, NOW) == 2.5
    assert engagement([("clicked", ago(20))], SPEC, NOW) == 1.25
    assert engagement([("purchase", ago(5))], SPEC, NOW) == pytest.approx(25 / 2**0.5)
    # Kinds without a weight count nothing; a clock ahead of ours counts as now.
    assert engagement([("visited_url", NOW), ("opened", NOW + timedelta(days=3))], SPEC, NOW) == 1
    # Past the horizon (20 half-lives) an event is left out: it weighed under a millionth.
    assert engagement([("purchase", ago(200))], SPEC, NOW) == 25 * 0.5**20
    assert engagement([("purchase", ago(200.01))], SPEC, NOW) == 0


def test_each_threshold_the_score_reaches_raises_the_fit_one_letter_never_above_a() -> None:
    c_lead = {"role": "adviser", "company_size": 50}
    four_clicks = [("clicked", NOW)] * 4
    assert grade(c_lead, four_clicks[:3], SPEC, NOW) == LeadGrade(grade="C", fit="C", score=15)
    assert grade(c_lead, four_clicks, SPEC, NOW) == LeadGrade(grade="B", fit="C", score=20)
    # Ten days on, the same four clicks are worth half: back to C.
    assert grade(c_lead, four_clicks, SPEC, NOW + timedelta(days=10)).grade == "C"
    bought = [("purchase", NOW)] * 3
    assert grade(c_lead, bought, SPEC, NOW) == LeadGrade(grade="A", fit="C", score=75)
    assert grade({}, bought, SPEC, NOW) == LeadGrade(grade="B", fit="D", score=75)
    assert grade({"role": "buyer"}, bought, SPEC, NOW).grade == "A"  # B raised twice: A


def test_the_librarys_grading_file_is_valid_and_no_journey() -> None:
    spec = grading_of(LIBRARY_DIR)
    assert spec is not None and spec.weights.keys() >= {
        "opened",
        "clicked",
        "visited_url",
        "form_submitted",
        "purchase",
    }
    assert "grading" not in load_library(LIBRARY_DIR)
    # A library without one grades nobody.
    assert grading_of(LIBRARY_DIR / "plans") is None


def test_a_broken_grading_file_names_each_problem_by_line(tmp_path: Path) -> None:
    path = tmp_path / "grading.yaml"
    path.write_text(
        """\
fit:
  - grade: A
    when: ["attribute:size >= 200"]
  - grade: E
    when:
      - "has_email"
      - "grade:B"
weights:
  clicked: 5
  grade_changed: 10
half_life_days: 0
raise_at: [60, 20]
colour: red
"""
    )
    with pytest.raises(SpecError) as err:
        load_grading(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:4: fit[2].grade: Input should be 'A', 'B', 'C' or 'D'",
        f"{path}:6: fit[2].when[1]: 'has_email': a fit rule reads the contact's attributes only: "
        "attribute:<name> <op> <value>",
        f"{path}:7: fit[2].when[2]: 'grade:B': a fit rule reads the contact's "
        "attributes only: attribute:<name> <op> <value>",
        f"{path}:9: weights: grade_changed cannot be weighted: grading itself records it",
        f"{path}:11: half_life_days: Input should be greater than 0",
        f"{path}:12: raise_at: thresholds must go up, each above the one before",
        f"{path}:13: colour: Extra inputs are not permitted",
    ]
