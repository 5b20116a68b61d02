"""Net Promoter Score from survey answers: promoters (9-10) minus detractors (0-6), in percent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel

from journeys.conditions import nps_class


class NpsSummary(BaseModel):
    answers: int
    promoters: int
    passives: int
    detractors: int
    # From -100 (all detractors) to 100 (all promoters); None until someone answers.
    score: float | None


def nps_summary(scores: Iterable[int]) -> NpsSummary:
    """Summarise answers on the 0-10 scale; a score outside it is a ValueError, not a guess."""
    classes: Counter[str] = Counter()
    for score in scores:
        if not 0 <= score <= 10:
            raise ValueError(f"an NPS answer is 0-10, not {score}")
        classes[nps_class(score)] += 1
    answers = classes.total()
    return NpsSummary(
        answers=answers,
        promoters=classes["promoter"],
        passives=classes["passive"],
        detractors=classes["detractor"],
        score=round(100 * (classes["promoter"] - classes["detractor"]) / answers, 1)
        if answers
        else None,
    )
