-- optout-relay delivery store, PostgreSQL, schema version 1 (version 2 follows in
-- postgres_v2.sql).
-- Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE IF NOT EXISTS optout_relay_schema (
    version BIGINT NOT NULL
);

-- Every delivery from the moment it is admitted: the request (without credentials or
-- signature) and its attempts are in `data`, the Delivery's JSON form.
CREATE TABLE IF NOT EXISTS optout_relay_deliveries (
    webhook_id      TEXT PRIMARY KEY,
    flow            TEXT NOT NULL,
    event           TEXT NOT NULL,
    profile         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead_lettered')),
    next_attempt_at BIGINT,
    lease_until     BIGINT,
    claims          BIGINT NOT NULL DEFAULT 0,
    abandoned       BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    data            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS optout_relay_deliveries_due
    ON optout_relay_deliveries (next_attempt_at)
    WHERE state = 'pending' AND lease_until IS NULL;
CREATE INDEX IF NOT EXISTS optout_relay_deliveries_leased
    ON optout_relay_deliveries (lease_until)
    WHERE state = 'pending' AND lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS optout_relay_deliveries_finished
    ON optout_relay_deliveries (finished_at)
    WHERE state <> 'pending';

-- Who entered which flow, when, with which event: ids only, never personal data.
CREATE TABLE IF NOT EXISTS optout_relay_entries (
    flow       TEXT NOT NULL,
    event      TEXT NOT NULL,
    profile    TEXT NOT NULL,
    entered_at BIGINT NOT NULL,
    webhook_id TEXT NOT NULL,
    PRIMARY KEY (flow, event)
);
CREATE INDEX IF NOT EXISTS optout_relay_entries_profile
    ON optout_relay_entries (flow, profile, entered_at);
