"""The store's schema, as a list of forward migrations.

``PRAGMA user_version`` holds the number of migrations applied. Opening a store applies the
missing ones in order, each in its own ``BEGIN IMMEDIATE`` transaction, so two consoles opening
an old file at once migrate it exactly once. Never edit a released migration: append a new one.

    v1  events, audit, incidents, rollout durations, notification queue
    v2  events.incident_id (events tied to an incident), notification dedup keys and claims,
        alert acknowledgements for the console's own rule alerts
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = """
CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ts             REAL    NOT NULL,
    kind           TEXT    NOT NULL,
    summary        TEXT    NOT NULL,
    service        TEXT    NOT NULL DEFAULT '',
    env            TEXT    NOT NULL DEFAULT '',
    severity       TEXT    NOT NULL DEFAULT 'info',
    actor          TEXT    NOT NULL DEFAULT '',
    correlation_id TEXT    NOT NULL DEFAULT '',
    details        TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_ts ON events (ts);

CREATE TABLE audit (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ts             REAL    NOT NULL,
    action         TEXT    NOT NULL,
    target         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    service        TEXT    NOT NULL DEFAULT '',
    version        TEXT    NOT NULL DEFAULT '',
    environment    TEXT    NOT NULL DEFAULT '',
    ports          TEXT    NOT NULL DEFAULT '',
    deployer       TEXT    NOT NULL DEFAULT '',
    duration       REAL    NOT NULL DEFAULT 0,
    correlation_id TEXT    NOT NULL DEFAULT '',
    before         TEXT    NOT NULL DEFAULT '{}',
    after          TEXT    NOT NULL DEFAULT '{}',
    message        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_ts ON audit (ts);

CREATE TABLE incidents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    title        TEXT    NOT NULL DEFAULT '',
    severity     TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'open',
    opened_at    REAL    NOT NULL,
    closed_at    REAL,
    services     TEXT    NOT NULL DEFAULT '[]',
    opened_by    TEXT    NOT NULL DEFAULT '',
    closed_by    TEXT    NOT NULL DEFAULT '',
    close_reason TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX incidents_open ON incidents (status, opened_at);

CREATE TABLE rollout_durations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts         REAL    NOT NULL,
    deployment TEXT    NOT NULL,
    revision   TEXT    NOT NULL DEFAULT '',
    seconds    REAL    NOT NULL
);
CREATE INDEX rollout_durations_dep ON rollout_durations (deployment, ts);

CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at   REAL    NOT NULL,
    event        TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    payload      TEXT    NOT NULL DEFAULT '{}',
    status       TEXT    NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL    NOT NULL,
    last_error   TEXT    NOT NULL DEFAULT '',
    delivered_at REAL
);
CREATE INDEX notifications_due ON notifications (status, next_attempt);
"""

_V2 = """
ALTER TABLE events ADD COLUMN incident_id INTEGER;
CREATE INDEX events_incident ON events (incident_id);

ALTER TABLE notifications ADD COLUMN dedup_key TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN updated_at REAL;

CREATE TABLE alert_acks (
    alert_key  TEXT PRIMARY KEY,
    acked_by   TEXT NOT NULL,
    acked_at   REAL NOT NULL,
    expires_at REAL,
    comment    TEXT NOT NULL DEFAULT ''
);
"""

#: migration i (0-based) takes the file from user_version i to i + 1
MIGRATIONS: tuple[str, ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)
