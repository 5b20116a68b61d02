"""Schema migrations the project owns: numbered, applied in order, each exactly once.

Plain DDL that SQLite and PostgreSQL both accept ({serial} is the one spelling that differs);
never edit a released migration, add one.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "contacts, tags, audiences, deliveries, events",
        [
            """CREATE TABLE contacts (
                id VARCHAR(64) PRIMARY KEY,
                email VARCHAR(320),
                phone VARCHAR(20),
                time_zone VARCHAR(64) NOT NULL,
                locale VARCHAR(16) NOT NULL,
                attributes JSON NOT NULL,
                consent JSON NOT NULL,
                in_mobile_app BOOLEAN NOT NULL,
                web_push BOOLEAN NOT NULL,
                created_at TIMESTAMP WITH TIME ZONE NOT NULL,
                updated_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
            """CREATE TABLE tags (
                contact_id VARCHAR(64) NOT NULL,
                tag VARCHAR(128) NOT NULL,
                added_at TIMESTAMP WITH TIME ZONE NOT NULL,
                PRIMARY KEY (contact_id, tag))""",
            """CREATE TABLE audience_memberships (
                contact_id VARCHAR(64) NOT NULL,
                audience VARCHAR(128) NOT NULL,
                added_at TIMESTAMP WITH TIME ZONE NOT NULL,
                PRIMARY KEY (contact_id, audience))""",
            """CREATE TABLE deliveries (
                key VARCHAR(255) PRIMARY KEY,
                workflow_id VARCHAR(255) NOT NULL,
                journey_id VARCHAR(64) NOT NULL,
                step_id VARCHAR(64) NOT NULL,
                contact_id VARCHAR(64) NOT NULL,
                channel VARCHAR(16) NOT NULL,
                template VARCHAR(128) NOT NULL,
                variant VARCHAR(64),
                status VARCHAR(16) NOT NULL,
                provider_id VARCHAR(128),
                error TEXT,
                created_at TIMESTAMP WITH TIME ZONE NOT NULL,
                updated_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
            "CREATE INDEX deliveries_contact ON deliveries (contact_id, created_at)",
            """CREATE TABLE events (
                id {serial},
                contact_id VARCHAR(64) NOT NULL,
                kind VARCHAR(64) NOT NULL,
                step_id VARCHAR(64),
                occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
                data JSON NOT NULL)""",
            "CREATE INDEX events_contact ON events (contact_id, occurred_at)",
        ],
    ),
    (
        2,
        "suppressions, push subscriptions, NPS answers, on-site messages, event ids",
        [
            """CREATE TABLE suppressions (
                contact_id VARCHAR(64) NOT NULL,
                channel VARCHAR(16) NOT NULL,
                reason VARCHAR(64) NOT NULL,
                created_at TIMESTAMP WITH TIME ZONE NOT NULL,
                PRIMARY KEY (contact_id, channel))""",
            """CREATE TABLE push_subscriptions (
                id {serial},
                contact_id VARCHAR(64) NOT NULL,
                kind VARCHAR(16) NOT NULL,
                endpoint TEXT NOT NULL,
                keys JSON NOT NULL,
                created_at TIMESTAMP WITH TIME ZONE NOT NULL,
                UNIQUE (contact_id, kind, endpoint))""",
            """CREATE TABLE nps_answers (
                delivery_key VARCHAR(255) PRIMARY KEY,
                contact_id VARCHAR(64) NOT NULL,
                journey_id VARCHAR(64) NOT NULL,
                step_id VARCHAR(64) NOT NULL,
                score INTEGER NOT NULL,
                comment TEXT,
                answered_at TIMESTAMP WITH TIME ZONE NOT NULL,
                updated_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
            "CREATE INDEX nps_answers_journey ON nps_answers (journey_id)",
            """CREATE TABLE onsite_messages (
                delivery_key VARCHAR(255) PRIMARY KEY,
                contact_id VARCHAR(64) NOT NULL,
                journey_id VARCHAR(64) NOT NULL,
                step_id VARCHAR(64) NOT NULL,
                content JSON NOT NULL,
                created_at TIMESTAMP WITH TIME ZONE NOT NULL,
                shown_at TIMESTAMP WITH TIME ZONE)""",
            "CREATE INDEX onsite_messages_contact ON onsite_messages (contact_id, shown_at)",
            """CREATE TABLE processed_events (
                event_id VARCHAR(128) PRIMARY KEY,
                contact_id VARCHAR(64) NOT NULL,
                created_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
        ],
    ),
    (
        3,
        "events held for redelivery",
        [
            """CREATE TABLE held_events (
                id {serial},
                contact_id VARCHAR(64) NOT NULL,
                journey_id VARCHAR(64),
                event JSON NOT NULL,
                held_at TIMESTAMP WITH TIME ZONE NOT NULL,
                retry_at TIMESTAMP WITH TIME ZONE NOT NULL,
                attempts INTEGER NOT NULL,
                last_error TEXT)""",
            "CREATE INDEX held_events_due ON held_events (retry_at, id)",
        ],
    ),
    (
        4,
        "deliveries: the attempt holding the claim, what left, how an unknown outcome was settled",
        [
            "ALTER TABLE deliveries ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE deliveries ADD COLUMN fingerprint VARCHAR(64)",
            "ALTER TABLE deliveries ADD COLUMN reconciled VARCHAR(16)",
        ],
    ),
    (
        5,
        "send checks: quiet hours and the frequency cap",
        [
            """CREATE TABLE send_checks (
                key VARCHAR(255) PRIMARY KEY,
                contact_id VARCHAR(64) NOT NULL,
                channel VARCHAR(16) NOT NULL,
                journey_id VARCHAR(64) NOT NULL,
                step_id VARCHAR(64) NOT NULL,
                status VARCHAR(16) NOT NULL,
                reason TEXT,
                held_until TIMESTAMP WITH TIME ZONE,
                decided_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
            "CREATE INDEX send_checks_contact ON send_checks (contact_id, channel, decided_at)",
        ],
    ),
    (
        6,
        "event ids are the caller's per contact",
        # Neither SQLite nor PostgreSQL can change a primary key in one portable statement: a new
        # table takes the rows and the name.
        [
            """CREATE TABLE processed_events_by_contact (
                contact_id VARCHAR(64) NOT NULL,
                event_id VARCHAR(128) NOT NULL,
                created_at TIMESTAMP WITH TIME ZONE NOT NULL,
                PRIMARY KEY (contact_id, event_id))""",
            """INSERT INTO processed_events_by_contact (contact_id, event_id, created_at)
                SELECT contact_id, event_id, created_at FROM processed_events""",
            "DROP TABLE processed_events",
            "ALTER TABLE processed_events_by_contact RENAME TO processed_events",
        ],
    ),
    (
        7,
        "the last opt-out or opt-in per contact and channel",
        [
            """CREATE TABLE opt_changes (
                contact_id VARCHAR(64) NOT NULL,
                channel VARCHAR(16) NOT NULL,
                opted_out BOOLEAN NOT NULL,
                changed_at TIMESTAMP WITH TIME ZONE NOT NULL,
                PRIMARY KEY (contact_id, channel))""",
        ],
    ),
    (
        8,
        "people: the team plans are run with",
        [
            """CREATE TABLE people (
                id VARCHAR(64) PRIMARY KEY,
                name VARCHAR(200) NOT NULL,
                email VARCHAR(320) NOT NULL,
                roles JSON NOT NULL,
                time_zone VARCHAR(64) NOT NULL,
                working_days JSON NOT NULL,
                starts VARCHAR(8) NOT NULL,
                ends VARCHAR(8) NOT NULL,
                created_at TIMESTAMP WITH TIME ZONE NOT NULL,
                updated_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
        ],
    ),
    (
        9,
        "plan runs and their tasks, as the plan workflow records them",
        [
            """CREATE TABLE plan_runs (
                plan_id VARCHAR(255) PRIMARY KEY,
                template VARCHAR(64) NOT NULL,
                version INTEGER NOT NULL,
                instance VARCHAR(128) NOT NULL,
                target DATE NOT NULL,
                manager VARCHAR(64),
                contact_id VARCHAR(64),
                state VARCHAR(16) NOT NULL,
                started_at TIMESTAMP WITH TIME ZONE NOT NULL,
                finished_at TIMESTAMP WITH TIME ZONE,
                updated_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
            "CREATE INDEX plan_runs_template ON plan_runs (template, started_at)",
            """CREATE TABLE plan_tasks (
                plan_id VARCHAR(255) NOT NULL,
                task_id VARCHAR(64) NOT NULL,
                template VARCHAR(64) NOT NULL,
                position INTEGER NOT NULL,
                title VARCHAR(200) NOT NULL,
                kind VARCHAR(16) NOT NULL,
                people JSON NOT NULL,
                status VARCHAR(16) NOT NULL,
                due_at TIMESTAMP WITH TIME ZONE NOT NULL,
                activated_at TIMESTAMP WITH TIME ZONE,
                rounds INTEGER NOT NULL,
                done_at TIMESTAMP WITH TIME ZONE,
                done_by VARCHAR(64),
                outcomes JSON NOT NULL,
                outcome VARCHAR(64),
                approved_by JSON NOT NULL,
                sent_back_by VARCHAR(64),
                sent_back_comment TEXT,
                PRIMARY KEY (plan_id, task_id))""",
            "CREATE INDEX plan_tasks_status ON plan_tasks (status)",
            "CREATE INDEX plan_tasks_template ON plan_tasks (template, task_id)",
        ],
    ),
    (
        10,
        "data hygiene's audit and merged ids; lead grades",
        [
            """CREATE TABLE hygiene_changes (
                id {serial},
                run_id VARCHAR(255) NOT NULL,
                contact_id VARCHAR(64) NOT NULL,
                kind VARCHAR(32) NOT NULL,
                detail JSON NOT NULL,
                changed_at TIMESTAMP WITH TIME ZONE NOT NULL,
                UNIQUE (run_id, contact_id, kind))""",
            "CREATE INDEX hygiene_changes_at ON hygiene_changes (changed_at)",
            """CREATE TABLE contact_aliases (
                merged_id VARCHAR(64) PRIMARY KEY,
                survivor_id VARCHAR(64) NOT NULL,
                run_id VARCHAR(255) NOT NULL,
                merged_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
            "CREATE INDEX contact_aliases_survivor ON contact_aliases (survivor_id)",
            # Hygiene's duplicate phones, and an inbound SMS's sender, are found by it.
            "CREATE INDEX contacts_phone ON contacts (phone)",
            """CREATE TABLE lead_grades (
                contact_id VARCHAR(64) PRIMARY KEY,
                grade VARCHAR(1) NOT NULL,
                fit VARCHAR(1) NOT NULL,
                score DOUBLE PRECISION NOT NULL,
                computed_at TIMESTAMP WITH TIME ZONE NOT NULL,
                changed_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
        ],
    ),
    (
        11,
        "journey reports: each entry and step visit as runs record them; the journey of an event",
        [
            """CREATE TABLE journey_entries (
                entry_id VARCHAR(255) PRIMARY KEY,
                workflow_id VARCHAR(255) NOT NULL,
                journey_id VARCHAR(64) NOT NULL,
                version INTEGER NOT NULL,
                contact_id VARCHAR(64) NOT NULL,
                entered_at TIMESTAMP WITH TIME ZONE NOT NULL,
                goal_until TIMESTAMP WITH TIME ZONE,
                ended_at TIMESTAMP WITH TIME ZONE,
                end_reason VARCHAR(32))""",
            "CREATE INDEX journey_entries_journey ON journey_entries (journey_id, entered_at)",
            "CREATE INDEX journey_entries_contact ON journey_entries (contact_id, entered_at)",
            """CREATE TABLE journey_visits (
                entry_id VARCHAR(255) NOT NULL,
                n INTEGER NOT NULL,
                journey_id VARCHAR(64) NOT NULL,
                step_id VARCHAR(64) NOT NULL,
                entered_at TIMESTAMP WITH TIME ZONE NOT NULL,
                left_at TIMESTAMP WITH TIME ZONE,
                outcome VARCHAR(200),
                next_step VARCHAR(64),
                variant VARCHAR(64),
                PRIMARY KEY (entry_id, n))""",
            "CREATE INDEX journey_visits_step ON journey_visits (journey_id, step_id)",
            "ALTER TABLE events ADD COLUMN journey_id VARCHAR(64)",
            "CREATE INDEX events_journey ON events (journey_id, kind, occurred_at)",
            # A goal's conversions: a contact's events of one kind after they entered.
            "CREATE INDEX events_kind ON events (kind, contact_id, occurred_at)",
        ],
    ),
    (
        12,
        "journey reports: covering indexes for a period's entries, visits and sends",
        [
            """CREATE INDEX journey_entries_report ON journey_entries
                (journey_id, entered_at, ended_at, end_reason, contact_id, goal_until)""",
            # Its first two columns: the report index does its work.
            "DROP INDEX journey_entries_journey",
            """CREATE INDEX journey_visits_period ON journey_visits
                (journey_id, entered_at, step_id, next_step, entry_id)""",
            """CREATE INDEX deliveries_journey ON deliveries
                (journey_id, created_at, step_id, channel, status, variant)""",
        ],
    ),
]


# Held while migrating a PostgreSQL database (any number, the same in every process).
MIGRATION_LOCK = 0x6A6F75726E657973  # "journeys"


def migrate(conn: Connection) -> list[int]:
    """Apply every migration not yet applied; return the versions applied now."""
    # Workers and gateways start at once and each migrates: one at a time, or two would create
    # the same tables (the second failing: "table contacts already exists"). The lock is held
    # until the transaction ends; the next one then reads the versions this one applied.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT)"
        )
    )
    if conn.dialect.name == "sqlite":
        # The file's write lock: Python's sqlite3 opens the transaction at the first write, so
        # a write that changes nothing takes it (busy_timeout waits for another process's).
        conn.execute(text("DELETE FROM schema_migrations WHERE 0"))
    done = {row[0] for row in conn.execute(text("SELECT version FROM schema_migrations"))}
    serial = "SERIAL PRIMARY KEY" if conn.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
    applied = []
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        for statement in statements:
            conn.execute(text(statement.replace("{serial}", serial)))
        conn.execute(
            text("INSERT INTO schema_migrations (version, name) VALUES (:v, :n)"),
            {"v": version, "n": name},
        )
        applied.append(version)
    return applied
