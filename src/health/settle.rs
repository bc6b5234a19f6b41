//! What an attempt's result does to its endpoint and its delivery ([`settle`]), and what a
//! store reports about its endpoints ([`EndpointChange`], [`EndpointStatus`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;
use super::policy::EndpointPolicy;
use super::state::{AttemptClass, EndpointHealth, EndpointState, PauseReason};
use crate::delivery::{AttemptOutcome, DeadLetterReason, Delivery, DeliveryState, StatusClass};

/// An endpoint's state changed: what a host alerts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub struct EndpointChange {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its state before.
    pub from: EndpointState,
    /// Its state now.
    pub to: EndpointState,
    /// When it changed.
    pub at: Timestamp,
}

impl EndpointChange {
    pub(crate) fn new(
        endpoint: &Endpoint,
        (from, to): (EndpointState, EndpointState),
        at: Timestamp,
    ) -> Self {
        Self {
            endpoint: endpoint.clone(),
            from,
            to,
            at,
        }
    }
}

impl std::fmt::Display for EndpointChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "endpoint {} went from {} to {} at {}",
            self.endpoint,
            self.from.as_str(),
            self.to,
            self.at
        )
    }
}

/// One endpoint as a store holds it: its state and its pending deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub struct EndpointStatus {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Where it stands.
    pub state: EndpointState,
    /// Its pending deliveries (held, while it is paused), including those in flight.
    pub pending: u64,
    /// Those of them in flight (claimed under an unexpired lease).
    pub in_flight: u64,
}

/// What [`settle`] decided for one recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Settlement {
    /// The delivery was held: the retry policy would have dead-lettered it, but its endpoint is
    /// down, so it stays pending (due when the endpoint recovers).
    pub held: bool,
    /// The endpoint's state changed.
    pub change: Option<EndpointChange>,
    /// The endpoint recovered: the store makes every pending delivery of it due now, with the
    /// retry policy's whole allowance ([`Delivery::hold`]), in their original order.
    pub release: bool,
}

/// What the last attempt recorded in `delivery` says about its endpoint.
pub fn classify(delivery: &Delivery) -> AttemptClass {
    match delivery.attempts().last().map(|a| &a.outcome) {
        Some(AttemptOutcome::Response { status, .. }) => {
            match http::StatusCode::from_u16(*status).map(StatusClass::of) {
                Ok(StatusClass::Success) => AttemptClass::Succeeded,
                Ok(StatusClass::Retryable) => AttemptClass::Failed,
                Ok(StatusClass::Gone) => AttemptClass::Gone,
                _ => AttemptClass::Neutral,
            }
        }
        Some(AttemptOutcome::Error { kind, .. }) if kind.is_retryable() => AttemptClass::Failed,
        _ => AttemptClass::Neutral,
    }
}

/// When `delivery`'s current retry allowance began: its creation, or its latest replay or hold.
fn allowance_start(delivery: &Delivery) -> Timestamp {
    delivery.allowance_start()
}

/// Applies an attempt just recorded in `delivery` (by [`Delivery::record`]) to its endpoint's
/// `health`, at `now`, and holds the delivery when its endpoint is down. Pure: the store calls
/// it inside the transaction that records the attempt, with the endpoint's health locked.
///
/// - The attempt counts for the circuit breaker; the state moves as the [`EndpointPolicy`]
///   says (see [`EndpointHealth::observe`]).
/// - A delivery the retry policy dead-lettered for 410 Gone, for running out of attempts or
///   for its age is **held** (pending again, due `now`, [`Delivery::hold`]) while the endpoint
///   is degraded or paused. It is held too, and the endpoint paused for failing, when the
///   endpoint has not answered any delivery successfully since this delivery's retries began.
/// - A change into healthy asks the store to release the endpoint's pending deliveries.
pub fn settle(
    delivery: &mut Delivery,
    endpoint: &Endpoint,
    health: &mut EndpointHealth,
    policy: &EndpointPolicy,
    now: Timestamp,
) -> Settlement {
    let class = classify(delivery);
    let before = health.state();
    health.observe(class, now, policy);
    let ends_for_endpoint = matches!(
        delivery.state(),
        DeliveryState::DeadLettered {
            reason: DeadLetterReason::Gone
                | DeadLetterReason::AttemptsExhausted { .. }
                | DeadLetterReason::Expired { .. },
            ..
        }
    );
    let mut held = false;
    if policy.enabled && ends_for_endpoint {
        if health.state().is_healthy()
            && class == AttemptClass::Failed
            && health
                .last_success()
                .is_none_or(|at| at < allowance_start(delivery))
        {
            health.pause(PauseReason::Failing, now);
            health.schedule_probe(now, policy);
        }
        if !health.state().is_healthy() {
            delivery.hold(now);
            held = true;
        }
    }
    let after = health.state();
    Settlement {
        held,
        change: (before != after).then(|| EndpointChange::new(endpoint, (before, after), now)),
        release: !before.is_healthy() && after.is_healthy(),
    }
}

/// An operator's pause of `endpoint`: its deliveries are held until [`resume`].
pub fn pause(
    endpoint: &Endpoint,
    health: &mut EndpointHealth,
    now: Timestamp,
) -> Option<EndpointChange> {
    health
        .pause(PauseReason::Operator, now)
        .map(|change| EndpointChange::new(endpoint, change, now))
}

/// An operator's resume of `endpoint`: it is healthy again, and its held deliveries are
/// released (the store makes them due now, in their original order).
pub fn resume(
    endpoint: &Endpoint,
    health: &mut EndpointHealth,
    now: Timestamp,
) -> Option<EndpointChange> {
    health
        .resume()
        .map(|change| EndpointChange::new(endpoint, change, now))
}
