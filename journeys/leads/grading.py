"""The grading rules (`GradingSpec`, the library's `grading.yaml`) and the pure function that
grades a lead: a fit grade from the first rule over the contact's attributes that holds (Account
Engagement style, D when none does), an engagement score from their events (points per kind,
halved every half-life since the event), and the grade: the fit raised one letter for each
threshold the score reaches, never above A."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from journeys import conditions
from journeys.conditions import GRADES, Grade
from journeys.events import CONTACT_MERGED, GRADE_CHANGED
from journeys.models import ContactFacts

# The grade of a lead no fit rule describes.
DEFAULT_FIT: Grade = "D"
# Events older than this many half-lives weigh less than a millionth of their points: left out,
# so grading reads a bounded window of a contact's events.
HORIZON_HALF_LIVES = 20
# Events that are the grading's own doing, or the end of the contact: never weighted, and no
# regrade follows them.
UNWEIGHTED = frozenset({GRADE_CHANGED, CONTACT_MERGED})


def _attribute_condition(condition: str) -> str:
    try:
        conditions.parse(condition)
    except conditions.UnknownCondition as e:
        raise ValueError(str(e)) from None
    if not conditions.reads_attribute(condition):
        raise ValueError(
            f"'{condition}': a fit rule reads the contact's attributes only: "
            "attribute:<name> <op> <value>"
        )
    return condition


class FitRule(BaseModel):
    """A fit grade and the attribute conditions that, all holding, give it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grade: Grade
    # Every condition must hold; none: the rule always holds (a default above D).
    when: list[Annotated[str, AfterValidator(_attribute_condition)]] = []


class GradingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # First rule that holds wins; a lead no rule describes is a D.
    fit: list[FitRule] = []
    # Points per event of each kind, before decay (a negative weight takes points away).
    weights: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = Field(min_length=1)
    # An event's points halve every this many days after it happened.
    half_life_days: float = Field(gt=0, allow_inf_nan=False)
    # Each threshold the score reaches raises the fit grade one letter (never above A).
    raise_at: list[Annotated[float, Field(allow_inf_nan=False)]] = []

    @field_validator("weights")
    @classmethod
    def _weighted_kinds(cls, weights: dict[str, float]) -> dict[str, float]:
        if own := sorted(UNWEIGHTED & set(weights)):
            raise ValueError(f"{', '.join(own)} cannot be weighted: grading itself records it")
        return weights

    @field_validator("raise_at")
    @classmethod
    def _ascending(cls, thresholds: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(thresholds)):
            raise ValueError("thresholds must go up, each above the one before")
        return thresholds

    def horizon(self) -> timedelta:
        """How far back events still count (see HORIZON_HALF_LIVES)."""
        return timedelta(days=self.half_life_days * HORIZON_HALF_LIVES)


class LeadGrade(BaseModel):
    model_config = ConfigDict(frozen=True)

    grade: Grade
    # The grade the attributes alone give.
    fit: Grade
    score: float


def fit_grade(attributes: Mapping[str, Any], spec: GradingSpec) -> Grade:
    facts = ContactFacts(contact_id="", attributes=dict(attributes))
    for rule in spec.fit:
        if all(conditions.holds(c, facts, []) for c in rule.when):
            return rule.grade
    return DEFAULT_FIT


def engagement(events: Sequence[tuple[str, datetime]], spec: GradingSpec, now: datetime) -> float:
    """The sum of each weighted event's points, halved per half-life of its age. An event dated
    after `now` (a clock ahead of ours) counts as happening now."""
    score = 0.0
    for kind, occurred_at in events:
        age = max(now - occurred_at, timedelta(0))
        if kind in spec.weights and age <= spec.horizon():
            score += spec.weights[kind] * 0.5 ** (age / timedelta(days=spec.half_life_days))
    return score


def grade(
    attributes: Mapping[str, Any],
    events: Sequence[tuple[str, datetime]],
    spec: GradingSpec,
    now: datetime,
) -> LeadGrade:
    """A lead's grade at `now` from its attributes and its `(kind, occurred_at)` events."""
    fit = fit_grade(attributes, spec)
    score = engagement(events, spec, now)
    raises = sum(1 for threshold in spec.raise_at if score >= threshold)
    lifted = GRADES[max(GRADES.index(fit) - raises, 0)]
    return LeadGrade(grade=lifted, fit=fit, score=score)


def rounded(score: float) -> float:
    """A score as people read it (and the grade_changed event carries it)."""
    return round(score, 1)


class RegradeRequest(BaseModel):
    """What the hygiene schedule's regrade phase asks of `regrade_contacts`."""

    # Every contact is graded as of this moment (the run's clock), so a retry grades the same.
    at: datetime
    batch_size: int = Field(500, ge=1, le=10_000)


class RegradeProgress(BaseModel):
    """How far `regrade_contacts` got: heartbeated after each batch, returned at the end."""

    # The last contact id regraded (contacts go in id order); None before the first.
    last_id: str | None = None
    # Grades that changed (each a grade_changed event).
    changes: int = 0
