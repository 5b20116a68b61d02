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
]


def migrate(conn: Connection) -> list[int]:
    """Apply every migration not yet applied; return the versions applied now."""
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT)"
        )
    )
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
