//! What the SQL stores share for endpoint health: the statements (with the column that orders
//! a (flow, Profile)'s deliveries: SQLite's `rowid`, PostgreSQL's `seq`), and the pure steps
//! between them.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;

use crate::health::{Endpoint, EndpointHealth, EndpointPolicy, EndpointState, EndpointStatus};
use crate::store::sql::{from_millis, millis};
use crate::store::{StoreError, StoreErrorKind};

/// The condition that a delivery `d` of a flow in per-Profile order is the earliest pending one
/// of its (flow, Profile).
macro_rules! first_of_profile {
    ($seq:literal) => {
        concat!(
            "(NOT d.ordered OR NOT EXISTS (SELECT 1 FROM optout_relay_deliveries o \
             WHERE o.flow = d.flow AND o.profile = d.profile AND o.state = 'pending' \
             AND o.ordered AND o.",
            $seq,
            " < d.",
            $seq,
            "))"
        )
    };
}

/// One endpoint's claimable deliveries, earliest due first, then in admission order.
/// ($1 endpoint, $2 now, $3 how many) -> webhook id.
///
/// A delivery under lease was due when it was claimed, so its `next_attempt_at` is before its
/// lease's end: bounding `next_attempt_at` by `now` for both kinds lets the endpoint's index
/// stop at the first delivery not yet due. (Were the clock set back by more than a lease, a
/// delivery whose lease ended would wait until its due time passes again: late, never lost.)
macro_rules! candidates {
    ($seq:literal, $lock:literal) => {
        concat!(
            "SELECT d.webhook_id FROM optout_relay_deliveries d \
             WHERE d.endpoint = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2 \
               AND (d.lease_until IS NULL OR d.lease_until <= $2) \
               AND ",
            $crate::store::sql_health::first_of_profile!($seq),
            " ORDER BY d.next_attempt_at, d.",
            $seq,
            " LIMIT $3",
            $lock
        )
    };
}

pub(crate) use {candidates, first_of_profile};

/// ($1 endpoint, $2 its health, [`NEW_HEALTH`]): the endpoint's row, healthy, if it has none.
pub(crate) const ENSURE_ENDPOINT: &str = "INSERT INTO optout_relay_endpoints \
     (endpoint, state, health, blocked_until) VALUES ($1, 'healthy', $2, 0) \
     ON CONFLICT (endpoint) DO NOTHING";

/// The health of an endpoint never attempted (`EndpointHealth::default()` as stored).
pub(crate) const NEW_HEALTH: &str = r#"{"state":{"state":"healthy"}}"#;

/// ($1 endpoint, $2 now) -> in flight.
pub(crate) const IN_FLIGHT: &str = "SELECT count(*) FROM optout_relay_deliveries \
     WHERE endpoint = $1 AND state = 'pending' AND lease_until > $2";

/// ($1 endpoint) -> (webhook id, data): the pending deliveries a recovery releases.
pub(crate) const PENDING_OF: &str = "SELECT webhook_id, data FROM optout_relay_deliveries \
     WHERE endpoint = $1 AND state = 'pending' AND lease_until IS NULL";

/// ($1 now) -> (endpoint, pending, in flight).
pub(crate) const ENDPOINT_COUNTS: &str = "SELECT endpoint, count(*), \
     count(CASE WHEN lease_until > $1 THEN 1 END) FROM optout_relay_deliveries \
     WHERE state = 'pending' GROUP BY endpoint";

/// () -> (endpoint, health).
pub(crate) const ALL_HEALTH: &str = "SELECT endpoint, health FROM optout_relay_endpoints";

/// () -> (endpoint, in flight): endpoints with claims out ($1 now).
pub(crate) const IN_FLIGHT_BY_ENDPOINT: &str = "SELECT endpoint, count(*) \
     FROM optout_relay_deliveries WHERE state = 'pending' AND lease_until > $1 GROUP BY endpoint";

/// () -> the earliest lease end.
pub(crate) const NEXT_LEASE_END: &str = "SELECT min(lease_until) FROM optout_relay_deliveries \
     WHERE state = 'pending' AND lease_until IS NOT NULL";

/// An endpoint's health read back.
pub(crate) fn health_of(endpoint: &str, text: &str) -> Result<EndpointHealth, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!("the health of endpoint {endpoint} cannot be read: {e}"),
        )
    })
}

/// An endpoint's columns: (state, health, blocked until).
pub(crate) fn endpoint_columns(
    health: &EndpointHealth,
    endpoint: &Endpoint,
    policy: &EndpointPolicy,
    now: Timestamp,
) -> (&'static str, String, i64) {
    let text = serde_json::to_string(health)
        .unwrap_or_else(|_| "{\"state\":{\"state\":\"healthy\"}}".into());
    let blocked = health
        .ready_at(Timestamp::MIN, 0, policy.limits_of(endpoint), now)
        .map_or(i64::MAX, millis);
    (health.state().as_str(), text, blocked)
}

/// The stores' view of every endpoint, from the pending counts and the health rows.
pub(crate) fn statuses(
    counts: Vec<(String, i64, i64)>,
    healths: Vec<(String, String)>,
) -> Result<Vec<EndpointStatus>, StoreError> {
    let mut found: BTreeMap<String, EndpointStatus> = BTreeMap::new();
    for (endpoint, text) in healths {
        let state = health_of(&endpoint, &text)?.state();
        found.insert(endpoint.clone(), status(endpoint, state));
    }
    for (endpoint, pending, in_flight) in counts {
        let entry = found
            .entry(endpoint.clone())
            .or_insert_with(|| status(endpoint, EndpointState::Healthy));
        entry.pending = u64::try_from(pending).unwrap_or(0);
        entry.in_flight = u64::try_from(in_flight).unwrap_or(0);
    }
    Ok(found.into_values().collect())
}

fn status(endpoint: String, state: EndpointState) -> EndpointStatus {
    EndpointStatus {
        endpoint: Endpoint::from_stored(endpoint),
        state,
        pending: 0,
        in_flight: 0,
    }
}

/// When the earliest claimable work is due: each endpoint's earliest delivery, as its health
/// and limits let it go, and the earliest lease end.
pub(crate) fn next_due(
    due: Vec<(String, Option<i64>)>,
    in_flight: Vec<(String, i64)>,
    healths: Vec<(String, String)>,
    lease_end: Option<i64>,
    policy: &EndpointPolicy,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let in_flight: HashMap<String, i64> = in_flight.into_iter().collect();
    let healths: HashMap<String, String> = healths.into_iter().collect();
    let mut earliest = lease_end.map(from_millis);
    for (endpoint, at) in due {
        let Some(at) = at.map(from_millis) else {
            continue;
        };
        let ready = match healths.get(&endpoint) {
            Some(text) => {
                let health = health_of(&endpoint, text)?;
                let flying = in_flight.get(&endpoint).copied().unwrap_or(0);
                let key = Endpoint::from_stored(endpoint);
                health.ready_at(
                    at,
                    usize::try_from(flying).unwrap_or(0),
                    policy.limits_of(&key),
                    now,
                )
            }
            None => Some(at),
        };
        if let Some(ready) = ready {
            earliest = Some(earliest.map_or(ready, |e: Timestamp| e.min(ready)));
        }
    }
    Ok(earliest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_endpoint_row_holds_the_default_health() {
        let written = serde_json::to_string(&EndpointHealth::default()).unwrap();
        assert_eq!(written, NEW_HEALTH);
        assert_eq!(health_of("e", &written).unwrap(), EndpointHealth::default());
    }
}
