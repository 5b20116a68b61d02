"""What every bench returns: figures, each the project's value beside bare Temporal's doing the
same Temporal work in the same run, their ratio and the target the ratio is held to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Target:
    """A bound on journeys / bare: `at_least` for rates, `at_most` for costs."""

    bound: Literal["at_least", "at_most"]
    ratio: float

    def __str__(self) -> str:
        return f"{'>=' if self.bound == 'at_least' else '<='} {self.ratio:g}x"

    def met_by(self, ratio: float) -> bool:
        return ratio >= self.ratio if self.bound == "at_least" else ratio <= self.ratio


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    journeys: float
    bare: float
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        """journeys / bare; None when bare is 0 (an idle bare worker may use no CPU at all)."""
        return self.journeys / self.bare if self.bare else None

    @property
    def met(self) -> bool | None:
        """Whether the target is met; None without a target or a ratio."""
        if self.target is None or self.ratio is None:
            return None
        return self.target.met_by(self.ratio)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def table(figures: list[Figure]) -> str:
    """A Markdown table: figure, journeys, bare, ratio, target, met?"""
    lines = [
        "| figure | journeys | bare | ratio | target | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
        met = {None: "", True: "yes", False: "**no**"}[f.met]
        target = "" if f.target is None else str(f.target)
        lines.append(
            f"| {f.name} ({f.unit}) | {_number(f.journeys)} | {_number(f.bare)} | {ratio} "
            f"| {target} | {met} |"
        )
    return "\n".join(lines)
