"""What a hygiene run carries through Temporal: its input and progress across continue-as-new,
the batches its activities work on and what they answer, and the report. Ids, cursors and
counts only: a contact's email or phone never reaches a run's history."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from journeys.hygiene.changes import ChangeKind, HygienePolicy

# The phases of a run, in order. Another phase (lead grades' `regrade`) is added here, with its
# method in workflows.hygiene.
Phase = Literal["clean", "dedup", "report"]
PHASES: tuple[Phase, ...] = ("clean", "dedup", "report")

# The schedule's id, and the workflow id a run started by hand begins with.
HYGIENE = "hygiene"


class HygieneProgress(BaseModel):
    """Where a run stands: the phase, the last contact id (clean) or sealed group key (dedup)
    done, how many contacts or groups each phase read, and the changes decided so far."""

    phase: Phase = "clean"
    cursor: str | None = None
    read: dict[Phase, int] = {}
    counts: dict[ChangeKind, int] = {}

    def add(self, counts: dict[ChangeKind, int]) -> None:
        self.counts = dict(Counter(self.counts) + Counter(counts))

    def describe(self) -> str:
        """One line for the Temporal UI (the run's current details)."""
        done = ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts.items())) or "none yet"
        return (
            f"phase {self.phase}: {self.read.get('clean', 0)} contacts read, "
            f"{self.read.get('dedup', 0)} duplicate groups; changes: {done}"
        )


class HygieneInput(BaseModel):
    """A hygiene run's input. `run_id` names the run in the audit (its workflow id and start,
    set by the first run); they and `progress` carry the run across continue-as-new."""

    policy: HygienePolicy
    run_id: str | None = None
    started_at: datetime | None = None
    progress: HygieneProgress = HygieneProgress()
    # Batches before the run continues as new (sooner when Temporal suggests it).
    batches_per_run: int = Field(100, ge=1)


class HygieneBatch(BaseModel):
    """One activity's work: up to `policy.batch_size` contacts after `after` (clean), or
    duplicate groups after `after` (dedup)."""

    run_id: str
    policy: HygienePolicy
    after: str | None
    now: datetime


class BatchDone(BaseModel):
    """What a batch did: the last id or key it finished (None: there was nothing after `after`),
    how many contacts or groups it read, and the changes per kind."""

    last: str | None
    read: int = 0
    counts: dict[ChangeKind, int] = {}

    def add(self, kinds: Iterable[ChangeKind]) -> None:
        self.counts = dict(Counter(self.counts) + Counter(kinds))


class HygieneReport(BaseModel):
    """What a run changed (would change, in a dry run), per kind."""

    run_id: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    contacts: int
    groups: int
    counts: dict[ChangeKind, int]
