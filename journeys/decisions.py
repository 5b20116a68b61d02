"""Pure decisions the interpreter takes: which event a wait uses, which arm a draw picks,
which branch holds. No I/O and no clock: the workflow passes everything in."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from journeys import conditions
from journeys.models import ContactFacts, JourneyEvent
from journeys.spec import BranchStep


def find_event(
    events: Sequence[JourneyEvent],
    consumed: Sequence[int],
    kind: str,
    step: str | None,
    machine: bool = False,
) -> int | None:
    """The earliest event a wait_for may use: right kind, about the right send (if it names one),
    not already used by an earlier wait, and made by a person unless `machine` events count.
    Events that came before the wait started count."""
    for index, event in enumerate(events):
        if index in consumed or event.kind != kind:
            continue
        if step is not None and event.step != step:
            continue
        if event.data.get("machine") is True and not machine:
            continue
        return index
    return None


def weighted_choice(weights: Sequence[int], draw: float) -> int:
    """The index `draw` (in [0, 1), from the workflow's seeded RNG) falls on, by weight."""
    total = sum(weights)
    point = draw * total
    for index, weight in enumerate(weights):
        if point < weight:
            return index
        point -= weight
    return len(weights) - 1


def branch_target(
    branch: BranchStep, facts: ContactFacts, events: Sequence[JourneyEvent]
) -> tuple[str, str]:
    """The step a branch leads to and why ("has_phone" or "otherwise")."""
    for condition in branch.conditions:
        if conditions.holds(condition.when, facts, events):
            return condition.next, condition.when
    return branch.otherwise, "otherwise"


def task_owner(members: Sequence[str], contact_id: str) -> str | None:
    """Whose turn a task step about `contact_id` is, among the team members with its role (by
    id): the SHA-256 of the contact id, modulo their number, over their ids sorted. The same
    contact always goes to the same person while the team stays the same, whichever worker asks
    and however often (a retry, a replay); contacts spread evenly. None when nobody has it."""
    if not members:
        return None
    turn = int.from_bytes(hashlib.sha256(contact_id.encode()).digest()[:8], "big")
    return sorted(members)[turn % len(members)]
