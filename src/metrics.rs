//! Metrics through the [`metrics`](https://docs.rs/metrics) crate facade (feature `metrics`):
//! the [`Worker`](crate::Worker) reports what it admits, attempts, delivers, retries, holds and
//! dead-letters, how long each attempt takes, every endpoint state change, and (every
//! [`WorkerBuilder::metrics_every`](crate::delivery::WorkerBuilder::metrics_every)) each
//! endpoint's pending, in-flight and paused deliveries. The host installs any recorder
//! (Prometheus, StatsD, OpenTelemetry, ...); without one, every call is a no-op.
//!
//! Labels never carry personal data or a secret: `endpoint` is the destination's
//! [`Endpoint`] key (`scheme://host[:port]/path`, never the query string, the user
//! information or the fragment, where profile-data parameters and tokens go); `reason`, `from`
//! and `to` are fixed words.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | [`ADMITTED`] | counter | `endpoint` |
//! | [`ATTEMPTS`] | counter | `endpoint` |
//! | [`ATTEMPT_SECONDS`] | histogram (seconds) | `endpoint` |
//! | [`DELIVERED`] | counter | `endpoint` |
//! | [`RETRIED`] | counter | `endpoint` |
//! | [`HELD`] | counter | `endpoint` |
//! | [`DEAD_LETTERED`] | counter | `endpoint`, `reason` |
//! | [`STATE_CHANGES`] | counter | `endpoint`, `from`, `to` |
//! | [`PENDING`] | gauge | `endpoint` |
//! | [`IN_FLIGHT`] | gauge | `endpoint` |
//! | [`PAUSED`] | gauge | `endpoint` |
//! | [`STATE`] | gauge (0 healthy, 1 degraded, 2 paused) | `endpoint` |

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};

use crate::delivery::Step;
use crate::health::{Endpoint, EndpointChange, EndpointState, EndpointStatus};
use crate::store::{DeliveryStore, StoreError};

/// Deliveries the store admitted (one per flow an event entered).
pub const ADMITTED: &str = "optout_relay_deliveries_admitted_total";
/// Attempts the worker recorded in the store (each request sent, or refused before sending),
/// whatever their result; an attempt whose claim was lost, or that a shutdown aborted, is not
/// counted.
pub const ATTEMPTS: &str = "optout_relay_attempts_total";
/// How long each attempt took, from its start to its result, in seconds.
pub const ATTEMPT_SECONDS: &str = "optout_relay_attempt_duration_seconds";
/// Deliveries the receiver accepted.
pub const DELIVERED: &str = "optout_relay_deliveries_delivered_total";
/// Attempts that failed and left the delivery to retry later.
pub const RETRIED: &str = "optout_relay_attempts_retried_total";
/// Deliveries the retry policy gave up while their endpoint was down: held, pending, until it
/// recovers.
pub const HELD: &str = "optout_relay_deliveries_held_total";
/// Deliveries the worker gave up after an attempt (`reason`:
/// [`DeadLetterReason::as_str`](crate::delivery::DeadLetterReason::as_str); one a store gives up
/// for its abandoned claims is counted by the store's [`counts`](DeliveryStore::counts) only).
pub const DEAD_LETTERED: &str = "optout_relay_deliveries_dead_lettered_total";
/// Endpoint state changes that recorded attempts made (`from`, `to`: `healthy`, `degraded` or
/// `paused`); an operator's [`DeliveryStore::pause`] or `resume` returns its change to its
/// caller instead.
pub const STATE_CHANGES: &str = "optout_relay_endpoint_state_changes_total";
/// Pending deliveries of an endpoint, in flight or not.
pub const PENDING: &str = "optout_relay_endpoint_pending";
/// Deliveries of an endpoint in flight.
pub const IN_FLIGHT: &str = "optout_relay_endpoint_in_flight";
/// Pending deliveries of a paused endpoint (held until it resumes); 0 when it is not paused.
pub const PAUSED: &str = "optout_relay_endpoint_paused";
/// An endpoint's state: 0 healthy, 1 degraded (circuit open), 2 paused.
pub const STATE: &str = "optout_relay_endpoint_state";

/// Registers a description and unit for every metric with the installed recorder (call it once,
/// after installing one; optional).
pub fn describe() {
    describe_counter!(ADMITTED, Unit::Count, "Deliveries the store admitted.");
    describe_counter!(
        ATTEMPTS,
        Unit::Count,
        "Attempts made, whatever their result."
    );
    describe_histogram!(
        ATTEMPT_SECONDS,
        Unit::Seconds,
        "How long each attempt took."
    );
    describe_counter!(DELIVERED, Unit::Count, "Deliveries the receiver accepted.");
    describe_counter!(
        RETRIED,
        Unit::Count,
        "Attempts that failed, to retry later."
    );
    describe_counter!(
        HELD,
        Unit::Count,
        "Deliveries held while their endpoint is down."
    );
    describe_counter!(DEAD_LETTERED, Unit::Count, "Deliveries given up.");
    describe_counter!(STATE_CHANGES, Unit::Count, "Endpoint state changes.");
    describe_gauge!(PENDING, Unit::Count, "Pending deliveries of an endpoint.");
    describe_gauge!(
        IN_FLIGHT,
        Unit::Count,
        "Deliveries of an endpoint in flight."
    );
    describe_gauge!(
        PAUSED,
        Unit::Count,
        "Pending deliveries held by a paused endpoint."
    );
    describe_gauge!(
        STATE,
        "An endpoint's state: 0 healthy, 1 degraded, 2 paused."
    );
}

/// Sets the per-endpoint gauges from the store's [`DeliveryStore::endpoints`], and returns what
/// it read. The worker calls it on its own; a host without a worker may call it on a timer.
///
/// # Errors
/// The store's error, when it cannot be read (the gauges keep their values).
pub async fn report_endpoints(
    store: &dyn DeliveryStore,
) -> Result<Vec<EndpointStatus>, StoreError> {
    let statuses = store.endpoints().await?;
    for status in &statuses {
        let endpoint = status.endpoint.as_str().to_owned();
        gauge!(PENDING, "endpoint" => endpoint.clone()).set(status.pending as f64);
        gauge!(IN_FLIGHT, "endpoint" => endpoint.clone()).set(status.in_flight as f64);
        let paused = match status.state {
            EndpointState::Paused { .. } => status.pending,
            _ => 0,
        };
        gauge!(PAUSED, "endpoint" => endpoint.clone()).set(paused as f64);
        gauge!(STATE, "endpoint" => endpoint).set(state_number(&status.state));
    }
    Ok(statuses)
}

fn state_number(state: &EndpointState) -> f64 {
    match state {
        EndpointState::Healthy => 0.0,
        EndpointState::Degraded { .. } => 1.0,
        EndpointState::Paused { .. } => 2.0,
    }
}

/// A delivery admitted for `endpoint`.
pub(crate) fn admitted(endpoint: &Endpoint) {
    counter!(ADMITTED, "endpoint" => endpoint.as_str().to_owned()).increment(1);
}

/// An attempt to `endpoint` that took `seconds`, and what followed (`held`: the store holds the
/// delivery the retry policy gave up).
pub(crate) fn attempted(endpoint: &Endpoint, seconds: f64, step: &Step, held: bool) {
    let label = endpoint.as_str().to_owned();
    counter!(ATTEMPTS, "endpoint" => label.clone()).increment(1);
    metrics::histogram!(ATTEMPT_SECONDS, "endpoint" => label.clone()).record(seconds);
    match step {
        Step::Delivered => counter!(DELIVERED, "endpoint" => label).increment(1),
        Step::RetryAt { .. } => counter!(RETRIED, "endpoint" => label).increment(1),
        Step::DeadLetter { .. } if held => counter!(HELD, "endpoint" => label).increment(1),
        Step::DeadLetter { reason } => {
            counter!(DEAD_LETTERED, "endpoint" => label, "reason" => reason.as_str()).increment(1);
        }
    }
}

/// An endpoint's state changed.
pub(crate) fn changed(change: &EndpointChange) {
    counter!(
        STATE_CHANGES,
        "endpoint" => change.endpoint.as_str().to_owned(),
        "from" => change.from.as_str(),
        "to" => change.to.as_str(),
    )
    .increment(1);
}
