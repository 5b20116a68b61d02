"""Table definitions used by queries. The DDL that creates them lives in `migrations`."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

contacts = Table(
    "contacts",
    metadata,
    Column("id", String(64), primary_key=True),  # opaque id from the customer's systems
    Column("email", String(320)),
    Column("phone", String(20)),  # E.164
    Column("time_zone", String(64), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("consent", JSON, nullable=False),  # channel -> granted
    Column("in_mobile_app", Boolean, nullable=False),
    Column("web_push", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("contact_id", String(64), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

audience_memberships = Table(
    "audience_memberships",
    metadata,
    Column("contact_id", String(64), primary_key=True),
    Column("audience", String(128), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

# The ledger: one row per intended message, written at the claim, at the hand-over to the provider
# and with the outcome (see activities.deliveries).
deliveries = Table(
    "deliveries",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("workflow_id", String(255), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("contact_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("template", String(128), nullable=False),
    Column("variant", String(64)),
    # claimed: an attempt is preparing it, nothing left yet; sending: handed to the provider,
    # outcome not yet recorded; sent; failed
    Column("status", String(16), nullable=False),
    # The number of the attempt holding the claim: only that attempt may hand over or finish.
    Column("attempt", Integer, nullable=False, server_default="1"),
    # What the channel recognises its message by in the provider's log (an SMS body's SHA-256).
    Column("fingerprint", String(64)),
    # How a retry settled an unknown outcome: 'found' (the provider had it) or 'resent'.
    Column("reconciled", String(16)),
    Column("provider_id", String(128)),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("deliveries_contact", "contact_id", "created_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contact_id", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("step_id", String(64)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", JSON, nullable=False),
    Index("events_contact", "contact_id", "occurred_at"),
)

# A channel the contact may no longer be sent on, whatever the journey: unsubscribed, SMS STOP.
suppressions = Table(
    "suppressions",
    metadata,
    Column("contact_id", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("reason", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Web push subscriptions (endpoint + p256dh/auth keys) and mobile app tokens (endpoint = token).
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contact_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # web | mobile
    Column("endpoint", Text, nullable=False),
    Column("keys", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Registering the same subscription again changes nothing.
    UniqueConstraint("contact_id", "kind", "endpoint"),
)

# One answer per send: answering again updates it.
nps_answers = Table(
    "nps_answers",
    metadata,
    Column("delivery_key", String(255), primary_key=True),
    Column("contact_id", String(64), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text),
    Column("answered_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("nps_answers_journey", "journey_id"),
)

# Messages the website shows the contact (chat prompt, NPS pop-up) until marked shown.
onsite_messages = Table(
    "onsite_messages",
    metadata,
    Column("delivery_key", String(255), primary_key=True),
    Column("contact_id", String(64), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("content", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("shown_at", DateTime(timezone=True)),
    Index("onsite_messages_contact", "contact_id", "shown_at"),
)

# Event ids already handled (from the API, the command line, the demo, provider reports), so a
# retried call changes nothing.
processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("contact_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The gateway's outbox: every event it records is kept here, in the same transaction, until
# Temporal has taken it; what Temporal did not take (down, unreachable) is handed over again, oldest
# first. `journey_id` names the one run an event is for (an open of the email that run sent);
# without it the event goes to the contact's runs and the journeys it triggers.
held_events = Table(
    "held_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contact_id", String(64), nullable=False),
    Column("journey_id", String(64)),
    Column("event", JSON, nullable=False),
    Column("held_at", DateTime(timezone=True), nullable=False),
    # Not handed over again before then: leased to the gateway handing it over, or put off.
    Column("retry_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Index("held_events_due", "retry_at", "id"),
)
