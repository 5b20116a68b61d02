"""What a hygiene run may change, and the audit row each change leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

# phone_normalised: a number rewritten to E.164; phone_invalid: a number no region reads, cleared;
# email_invalid: an address whose syntax is wrong, cleared; email_undeliverable: its domain has
# no mail server (only when deliverability checks are on); merged: this contact (a duplicate)
# merged into the survivor named in the detail; sunset: no engagement for the policy's days, no
# more marketing sends; sunset_lifted: engaged again since.
ChangeKind = Literal[
    "phone_normalised",
    "phone_invalid",
    "email_invalid",
    "email_undeliverable",
    "merged",
    "sunset",
    "sunset_lifted",
]


class HygienePolicy(BaseModel):
    """How a hygiene run cleans (from settings, or the command line)."""

    # The region a number without a country code is read in, when the contact has no `country`
    # attribute (ISO 3166 alpha-2).
    default_region: str = Field("US", min_length=2, max_length=2)
    # Contacts with no engagement (opened, clicked, visited, answered, bought) for this many days
    # sunset: tagged SUNSET and sent no more marketing, transactional messages still allowed.
    sunset_after_days: int = Field(180, ge=1)
    # Look up each email domain's mail servers (MX) with a cache and a time limit per look-up.
    check_deliverability: bool = False
    # Contacts per batch (one activity, one transaction per contact).
    batch_size: int = Field(500, ge=1, le=10_000)
    # Say what would change, change nothing.
    dry_run: bool = False


class HygieneChange(BaseModel):
    """One row of the audit (`hygiene_changes`)."""

    run_id: str
    contact_id: str
    kind: ChangeKind
    # What it was and what it became, and why: {"before": ..., "after": ..., "reason": ...}; for
    # a merge {"into": survivor id, "because": "same email" | "same phone"}.
    detail: dict[str, Any] = {}
    changed_at: datetime

    def what_and_why(self) -> tuple[str, str]:
        """What changed and why, as the audit row says it (`journeys hygiene report`, the
        dashboard)."""
        d = self.detail
        if self.kind == "merged":
            return f"into {d.get('into')}", str(d.get("because", ""))
        if self.kind in ("sunset", "sunset_lifted"):
            last = d.get("last_engaged_at") or "never"
            days = f"no engagement for {d['days']} days; " if "days" in d else ""
            return "tag SUNSET " + ("added" if self.kind == "sunset" else "removed"), (
                f"{days}last engaged {last}"
            )
        after = d.get("after") or "(cleared)"
        return f"{d.get('before')} -> {after}", str(d.get("reason", ""))
