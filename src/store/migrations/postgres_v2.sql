-- optout-relay delivery store, PostgreSQL, schema version 2: endpoint health.
-- Run after version 1; every statement is idempotent, so the whole file may run again.

-- Each delivery's endpoint (scheme://host[:port]/path; '' for rows written by version 1 until
-- the store fills it in), whether its flow sends a Profile's deliveries in order, and the
-- admission order (`seq`) that order follows.
ALTER TABLE optout_relay_deliveries ADD COLUMN IF NOT EXISTS endpoint TEXT NOT NULL DEFAULT '';
ALTER TABLE optout_relay_deliveries ADD COLUMN IF NOT EXISTS ordered BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE optout_relay_deliveries ADD COLUMN IF NOT EXISTS seq BIGSERIAL;

-- Each endpoint's health (the JSON of `EndpointHealth` in `health`), and until when its state
-- keeps every request from starting (`blocked_until`, milliseconds; 0 when nothing blocks).
CREATE TABLE IF NOT EXISTS optout_relay_endpoints (
    endpoint      TEXT PRIMARY KEY,
    state         TEXT NOT NULL CHECK (state IN ('healthy', 'degraded', 'paused')),
    health        TEXT NOT NULL,
    blocked_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS optout_relay_deliveries_endpoint_due
    ON optout_relay_deliveries (endpoint, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS optout_relay_deliveries_profile_order
    ON optout_relay_deliveries (flow, profile, seq)
    WHERE state = 'pending' AND ordered;
