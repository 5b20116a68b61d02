"""The contact store: contacts, tags, audiences, the delivery ledger and received events."""

from journeys.store.db import ContactStore, open_store
from journeys.store.schema import metadata

__all__ = ["ContactStore", "metadata", "open_store"]
