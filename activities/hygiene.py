"""The hygiene run's activities: one batch of contacts cleaned, one batch of duplicate groups
merged, and the run's changes counted from the audit.

A batch heartbeats after every contact or group with how far it got, and a retried batch (its
worker killed) goes on from the last heartbeat instead of starting over. What was done after
that heartbeat is not done twice either: the audit's key (run, contact, kind) makes
`apply_hygiene` skip a change it holds, a cleaned row no longer needs the change, and a merged
contact is gone. Only ids and counts go back to the workflow. A duplicate group's key is an
email or a phone, so the dedup cursor travels sealed (encrypted with the secret key)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from temporalio import activity

from activities.mail_domains import MailDomains
from journeys.hygiene.changes import ChangeKind
from journeys.hygiene.rules import Candidate, decide, email_domain, email_problem, survivor
from journeys.hygiene.runs import BatchDone, HygieneBatch
from journeys.settings import Settings
from journeys.store import ContactStore

# The ways two contacts are one, by the prefix of their group's key (journeys.hygiene.rules).
BECAUSE = {"email": "same email", "phone": "same phone"}


def _resumed(batch_after: str | None) -> BatchDone:
    """Where this attempt starts: the last heartbeat of the attempt before, or the batch's
    start."""
    details: Sequence[Any] = activity.info().heartbeat_details
    return BatchDone.model_validate(details[0]) if details else BatchDone(last=batch_after)


class HygieneActivities:
    def __init__(self, store: ContactStore, settings: Settings) -> None:
        self.store = store
        self.domains = MailDomains(settings.dns_server, settings.dns_timeout)
        key = hashlib.sha256(b"hygiene-cursor:" + settings.secret_key.get_secret_value().encode())
        self._cursors = Fernet(base64.urlsafe_b64encode(key.digest()))

    @activity.defn
    async def clean_contacts(self, batch: HygieneBatch) -> BatchDone:
        """Clean up to `batch_size` contacts after `batch.after` (ids in order): phones to
        E.164, bad emails cleared, sunset and back. A dry run only counts what it would do."""
        done = _resumed(batch.after)
        policy = batch.policy
        found = await self.store.hygiene_candidates(done.last, policy.batch_size - done.read)
        undeliverable = (
            await self.domains.undeliverable(_domains(found), lambda: activity.heartbeat(done))
            if policy.check_deliverability
            else frozenset()
        )
        for candidate in found:
            changes = decide(batch.run_id, candidate, policy, batch.now, undeliverable)
            if changes and not policy.dry_run:
                await self.store.apply_hygiene(changes)
            # What the rules decided: a change already made by an attempt before is not
            # decided again (the row no longer needs it); the report counts the audit.
            done.add(c.kind for c in changes)
            done.last, done.read = candidate.id, done.read + 1
            activity.heartbeat(done)
        return done

    @activity.defn
    async def merge_duplicates(self, batch: HygieneBatch) -> BatchDone:
        """Merge each of up to `batch_size` groups of duplicates after the (sealed) key
        `batch.after` into its survivor, the oldest contact. A dry run only counts them."""
        done = _resumed(batch.after)
        after = self._unseal(done.last)
        groups = await self.store.duplicate_groups(after, batch.policy.batch_size - done.read)
        for group in groups:
            members = await self.store.hygiene_members(group.contact_ids)
            if len(members) > 1:
                keep = survivor(members)
                because = BECAUSE[group.key.partition(":")[0]]
                merged: list[ChangeKind] = []
                for contact_id, _ in members:
                    if contact_id != keep and (
                        batch.policy.dry_run
                        or await self.store.merge_contacts(
                            batch.run_id, keep, contact_id, because, batch.now
                        )
                    ):
                        merged.append("merged")
                done.add(merged)
            done.last, done.read = self._seal(group.key), done.read + 1
            activity.heartbeat(done)
        return done

    @activity.defn
    async def count_hygiene_changes(self, run_id: str) -> dict[ChangeKind, int]:
        """The run's changes per kind, as the audit holds them (also those of an attempt that
        was cut off before it could say what it did)."""
        return await self.store.hygiene_counts(run_id)

    def _seal(self, key: str) -> str:
        return self._cursors.encrypt(key.encode()).decode()

    def _unseal(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        try:
            return self._cursors.decrypt(cursor.encode()).decode()
        except InvalidToken:
            # Sealed with a secret key since rotated: start the groups over; a merge done
            # already is not done again (the contact is gone).
            activity.logger.warning("hygiene cursor unreadable, dedup starts over")
            return None


def _domains(candidates: Sequence[Candidate]) -> set[str]:
    """The domains of the candidates' well-formed addresses."""
    return {email_domain(c.email) for c in candidates if c.email and email_problem(c.email) is None}
