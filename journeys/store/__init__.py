"""The contact store: contacts, tags, audiences, the delivery ledger, received events
and the gateway's outbox."""

from journeys.store.db import ContactStore, open_store
from journeys.store.outbox import HeldEvent
from journeys.store.schema import metadata

__all__ = ["ContactStore", "HeldEvent", "metadata", "open_store"]
