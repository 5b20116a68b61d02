"""The arithmetic of a report, in one place: rates, the A/B significance test and NPS sums."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from journeys.nps import nps_summary
from journeys.reports.models import Comparison, NpsFigures, NpsWeek

# A winner needs p below 1 - CONFIDENCE.
CONFIDENCE = 0.95


def rate(part: int, whole: int) -> float | None:
    """`part` over `whole`; None when there is nothing to divide by."""
    return part / whole if whole else None


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float


def two_proportion_z_test(
    successes_a: int, total_a: int, successes_b: int, total_b: int
) -> ZTest | None:
    """Pooled two-proportion z-test of b against a: z = (p_b - p_a) / sqrt(p (1 - p) (1/n_a +
    1/n_b)) with p the pooled rate, and the two-sided p-value 2 (1 - Phi(|z|)) = erfc(|z| / sqrt
    2). None when it cannot be computed: an arm without entries, or no variance (both rates 0 or
    both 1)."""
    if not total_a or not total_b:
        return None
    pooled = (successes_a + successes_b) / (total_a + total_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if se == 0:
        return None
    z = (successes_b / total_b - successes_a / total_a) / se
    return ZTest(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


def compare(
    arms: Sequence[tuple[str, int, int]], confidence: float = CONFIDENCE
) -> tuple[list[Comparison], str | None]:
    """Each arm `(name, successes, entered)` after the first against the first (the control),
    and the winner: the arm with the highest rate, when that is significantly different from
    the control (or, for the control itself, from every other arm); None otherwise."""
    if len(arms) < 2:
        return [], None
    control, hits, total = arms[0]
    comparisons = []
    for name, successes, entered in arms[1:]:
        test = two_proportion_z_test(hits, total, successes, entered)
        comparisons.append(
            Comparison(
                variant=name,
                against=control,
                difference=(rate(successes, entered) or 0.0) - (rate(hits, total) or 0.0),
                z=test.z if test else None,
                p_value=test.p_value if test else None,
                significant=test is not None and test.p_value < 1 - confidence,
            )
        )
    best = max(arms, key=lambda arm: rate(arm[1], arm[2]) or 0.0)[0]
    if best == control:
        won = all(c.significant for c in comparisons)
    else:
        won = next(c for c in comparisons if c.variant == best).significant
    return comparisons, best if won else None


def week_of(at: datetime) -> date:
    """The Monday of `at`'s week (UTC)."""
    day = at.date()
    return day - timedelta(days=day.weekday())


def nps_figures(answers: Iterable[tuple[datetime, int]]) -> NpsFigures:
    """Answers `(answered_at in UTC, score)`: the score (% promoters - % detractors, rounded to
    one decimal), the classes, the distribution over 0..10 and the score week by week."""
    answered = list(answers)
    summary = nps_summary(score for _, score in answered)
    distribution = [0] * 11
    weeks: dict[date, list[int]] = {}
    for at, score in answered:
        distribution[score] += 1
        weeks.setdefault(week_of(at), []).append(score)
    trend = []
    for monday, scores in sorted(weeks.items()):
        week = nps_summary(scores)
        assert week.score is not None
        trend.append(NpsWeek(week_of=monday, answers=week.answers, score=week.score))
    return NpsFigures(
        answers=summary.answers,
        promoters=summary.promoters,
        passives=summary.passives,
        detractors=summary.detractors,
        score=summary.score,
        distribution=distribution,
        trend=trend,
    )
