//! Endpoint health: an endpoint that is down has its deliveries **held** instead of
//! dead-lettered; a circuit breaker stops sending to a failing endpoint and probes it; limits cap
//! the requests in flight and per second to each endpoint, across every worker that shares the
//! store.
//!
//! - An [`Endpoint`] is a delivery's destination: scheme, host, port and path, never the query
//!   string (where profile data goes).
//! - Its [`EndpointState`] is healthy, degraded (the circuit is open: a cool-down, then one
//!   probe) or paused (410 Gone, failing for longer than [`EndpointPolicy::pause_after`], or an
//!   operator's [`DeliveryStore::pause`](crate::DeliveryStore::pause)).
//! - The store keeps each endpoint's [`EndpointHealth`]; every decision on it is a pure function
//!   of it, the [`EndpointPolicy`] and `now` ([`EndpointHealth::grant`],
//!   [`EndpointHealth::observe`], [`settle`]), and the stores apply them inside their
//!   transactions: a claim takes from an endpoint only what its state and limits grant, and the
//!   record of an attempt updates its endpoint and may hold the delivery.
//! - Each change is an [`EndpointChange`], reported by the worker as
//!   [`Outcome::EndpointChanged`](crate::Outcome::EndpointChanged) and, with the `metrics`
//!   feature, counted.

mod endpoint;
mod policy;
mod settle;
mod state;

pub use endpoint::{Endpoint, EndpointError, MAX_ENDPOINT_LEN};
pub use policy::{Breaker, EndpointPolicy, Limits};
pub use settle::{EndpointChange, EndpointStatus, Settlement, classify, pause, resume, settle};
pub use state::{AttemptClass, EndpointHealth, EndpointState, MAX_WINDOW_ATTEMPTS, PauseReason};
