-- optout-relay delivery store, SQLite, schema version 2: endpoint health.
-- Run after version 1 and after `endpoint` and `ordered` were added to optout_relay_deliveries
-- (ALTER TABLE ... ADD COLUMN, which SQLite cannot make conditional).

-- Each endpoint's health (the JSON of `EndpointHealth` in `health`), and until when its state
-- keeps every request from starting (`blocked_until`, milliseconds; 0 when nothing blocks).
CREATE TABLE IF NOT EXISTS optout_relay_endpoints (
    endpoint      TEXT PRIMARY KEY,
    state         TEXT NOT NULL CHECK (state IN ('healthy', 'degraded', 'paused')),
    health        TEXT NOT NULL,
    blocked_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS optout_relay_deliveries_endpoint_due
    ON optout_relay_deliveries (endpoint, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS optout_relay_deliveries_profile_order
    ON optout_relay_deliveries (flow, profile)
    WHERE state = 'pending' AND ordered;
