"""Table definitions used by queries. The DDL that creates them lives in `migrations`."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
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
    # Hygiene's duplicate phones, and an inbound SMS's sender, are found by it.
    Index("contacts_phone", "phone"),
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
    # outcome not yet recorded; sent; failed; capped: skipped at send time over the frequency
    # cap (see send_checks), never handed to the provider
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
    # The journey reports' sends by step, channel, status and variant, read from the index alone.
    Index(
        "deliveries_journey", "journey_id", "created_at", "step_id", "channel", "status", "variant"
    ),
)

# The ledger's companion for compliance at send time (journeys.send_window): one row per send
# that was checked against quiet hours and the frequency cap, keyed like its delivery. `allowed`
# rows are the cap's reservations: they count against it from `decided_at` (unless their delivery
# failed), so two journeys checking at once cannot both take the last place. A send that was
# skipped is in `deliveries` as `capped`.
send_checks = Table(
    "send_checks",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("contact_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("step_id", String(64), nullable=False),
    # allowed: let go; deferred: held back until `held_until`; skipped: over the cap, not sent
    Column("status", String(16), nullable=False),
    # Why it was held back or skipped; kept once a held send is let go, so a dashboard counts it.
    Column("reason", Text),
    Column("held_until", DateTime(timezone=True)),
    # The run's clock when last checked: when an allowed send went.
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Index("send_checks_contact", "contact_id", "channel", "decided_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contact_id", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("step_id", String(64)),
    # The journey whose send the event is about (an open, a click); null for the others.
    Column("journey_id", String(64)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", JSON, nullable=False),
    Index("events_contact", "contact_id", "occurred_at"),
    Index("events_journey", "journey_id", "kind", "occurred_at"),
    Index("events_kind", "kind", "contact_id", "occurred_at"),
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

# The last STOP or START a contact sent on a channel and when it arrived: an older one handled
# later (by another gateway process) must not undo it.
opt_changes = Table(
    "opt_changes",
    metadata,
    Column("contact_id", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("opted_out", Boolean, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
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
# retried call changes nothing. An id is the caller's for one contact: the same id for another
# contact is another event.
processed_events = Table(
    "processed_events",
    metadata,
    Column("contact_id", String(64), primary_key=True),
    Column("event_id", String(128), primary_key=True),
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

# The people plans are run with (journeys.plans.people.Person).
people = Table(
    "people",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("working_days", JSON, nullable=False),
    Column("starts", String(8), nullable=False),
    Column("ends", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Plan runs as the plan workflow last recorded them (journeys.plans.records.PlanRecord).
plan_runs = Table(
    "plan_runs",
    metadata,
    Column("plan_id", String(255), primary_key=True),
    Column("template", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("instance", String(128), nullable=False),
    Column("target", Date, nullable=False),
    Column("manager", String(64)),
    Column("contact_id", String(64)),
    Column("state", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("plan_runs_template", "template", "started_at"),
)

# Each task of each plan run (journeys.plans.records.TaskRecord): the open ones for pages and
# calendars, the done ones for the report's estimates.
plan_tasks = Table(
    "plan_tasks",
    metadata,
    Column("plan_id", String(255), primary_key=True),
    Column("task_id", String(64), primary_key=True),
    Column("template", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("people", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("activated_at", DateTime(timezone=True)),
    Column("rounds", Integer, nullable=False),
    Column("done_at", DateTime(timezone=True)),
    Column("done_by", String(64)),
    Column("outcomes", JSON, nullable=False),
    Column("outcome", String(64)),
    Column("approved_by", JSON, nullable=False),
    Column("sent_back_by", String(64)),
    Column("sent_back_comment", Text),
    Index("plan_tasks_status", "status"),
    Index("plan_tasks_template", "template", "task_id"),
)

# What data hygiene changed, one row per contact, kind and hygiene run (journeys.hygiene): the
# audit `journeys hygiene report` prints. The unique key makes a repeated batch change nothing.
hygiene_changes = Table(
    "hygiene_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(255), nullable=False),
    Column("contact_id", String(64), nullable=False),
    # journeys.hygiene.changes.ChangeKind
    Column("kind", String(32), nullable=False),
    # What it was and what it became, and why (no more than the contact row held).
    Column("detail", JSON, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "contact_id", "kind"),
    Index("hygiene_changes_at", "changed_at"),
)

# A contact merged into another by hygiene: its id still resolves to the survivor (old links,
# API calls, imports).
contact_aliases = Table(
    "contact_aliases",
    metadata,
    Column("merged_id", String(64), primary_key=True),
    Column("survivor_id", String(64), nullable=False),
    Column("run_id", String(255), nullable=False),
    Column("merged_at", DateTime(timezone=True), nullable=False),
    Index("contact_aliases_survivor", "survivor_id"),
)

# Each contact's lead grade as last computed (journeys.leads): `grade` A-D from `fit` and the
# engagement `score`; `changed_at` when the grade last changed.
lead_grades = Table(
    "lead_grades",
    metadata,
    Column("contact_id", String(64), primary_key=True),
    Column("grade", String(1), nullable=False),
    Column("fit", String(1), nullable=False),
    Column("score", Float, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# Each time a contact entered a journey (one run, across its continue-as-new), as the run records
# it at each step where it waits and when it ends (workflows/journey.py `_record_path`): what the
# journey reports count. `goal_until`: the end of the window in which the journey's goal event
# counts as this entry's conversion (null: the journey declares no goal).
journey_entries = Table(
    "journey_entries",
    metadata,
    Column("entry_id", String(255), primary_key=True),
    Column("workflow_id", String(255), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("contact_id", String(64), nullable=False),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Column("goal_until", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    # journeys.models.EndReason; null while the contact is in the journey
    Column("end_reason", String(32)),
    Index("journey_entries_contact", "contact_id", "entered_at"),
    # A journey's entries of a period with what the reports count (how each ended, the goal's
    # window), read from the index alone.
    Index(
        "journey_entries_report",
        "journey_id",
        "entered_at",
        "ended_at",
        "end_reason",
        "contact_id",
        "goal_until",
    ),
)

# Each step an entry visited, in order (`n` from 0): where it went next (a branch's split) and the
# A/B variant drawn at a send step.
journey_visits = Table(
    "journey_visits",
    metadata,
    Column("entry_id", String(255), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("journey_id", String(64), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Column("left_at", DateTime(timezone=True)),
    Column("outcome", String(200)),
    Column("next_step", String(64)),
    Column("variant", String(64)),
    Index("journey_visits_step", "journey_id", "step_id"),
    # The reports' visits of a period by step and next step, read from the index alone.
    Index("journey_visits_period", "journey_id", "entered_at", "step_id", "next_step", "entry_id"),
)
