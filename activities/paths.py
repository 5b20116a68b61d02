"""The activity a journey run records its path with, for the journey reports."""

from __future__ import annotations

from temporalio import activity

from journeys.models import PathRecord
from journeys.store import ContactStore


class PathActivities:
    def __init__(self, store: ContactStore) -> None:
        self.store = store

    @activity.defn
    async def record_path(self, path: PathRecord) -> None:
        await self.store.record_path(path)
