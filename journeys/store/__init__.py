"""The contact store: contacts, tags, audiences, the delivery ledger, received events
and those held for redelivery."""

from journeys.store.db import ContactStore, HeldEvent, open_store
from journeys.store.schema import metadata

__all__ = ["ContactStore", "HeldEvent", "metadata", "open_store"]
