//! Delivery stores: where every entry and every delivery is kept from the moment a store admits
//! it until it is delivered, dead-lettered and finally purged.
//!
//! | store | for | durable | processes |
//! | --- | --- | --- | --- |
//! | `SqliteStore` (feature `sqlite`, default) | one machine, no setup: one file | yes, at commit | one or a few on one machine |
//! | `PostgresStore` (feature `postgres`) | many worker processes on many machines | yes, at commit | any number |
//! | [`VolatileStore`](crate::VolatileStore) | tests and throwaway runs | **no**: everything is lost with the process | one |
//!
//! Every store implements [`DeliveryStore`]:
//!
//! - [`admit`](DeliveryStore::admit) records a [`Plan`](crate::relay::Plan)'s entries and enqueues their deliveries
//!   in **one transaction**, idempotent by `webhook-id`, deciding each entry with
//!   [`relay::decide_entry`](crate::relay::decide_entry) inside that transaction, so that
//!   concurrent submitters never exceed an entry limit nor enter one event twice;
//! - [`claim`](DeliveryStore::claim) takes due deliveries with a lease and a fencing token
//!   ([`ClaimToken`]): a worker whose lease expired cannot overwrite the result of the worker
//!   that took over ([`StoreErrorKind::LeaseLost`]);
//! - [`record`](DeliveryStore::record) keeps an attempt's result (retry at T, delivered, dead
//!   letter);
//! - [`list`](DeliveryStore::list), [`replay`](DeliveryStore::replay),
//!   [`purge`](DeliveryStore::purge) and [`counts`](DeliveryStore::counts) for operators.
//!
//! Requests are stored without credentials or signatures (see [`relay`](crate::relay)).
//! Finished deliveries still hold personal data (an email in a query string or body): purge them
//! after a retention period.

pub(crate) mod delivery_store;
mod error;
pub(crate) mod volatile;

pub use error::{StoreError, StoreErrorKind};
// Crate-internal paths of the items the crate root exports.
pub(crate) use delivery_store::DeliveryStore;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_health;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStoreBuilder, Synchronous};
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "postgres")]
pub use postgres::{MIGRATION as POSTGRES_MIGRATION, NOTIFY_CHANNEL, PostgresStoreBuilder};

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::delivery::Delivery;
use crate::model::FlowId;

/// How many claims of one delivery may expire without an attempt recorded before a store
/// dead-letters it ([`DeadLetterReason::Abandoned`](crate::delivery::DeadLetterReason::Abandoned)): work
/// that crashes every worker that takes it must not take them all down in turn.
pub const MAX_ABANDONED_CLAIMS: u32 = 3;

/// The fencing token of one claim: the delivery's webhook id and the claim's number. Every write
/// that ends or reschedules the attempt is conditional on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimToken {
    /// The delivery's webhook id.
    pub webhook_id: String,
    /// The claim's number: 1 for the first claim of the delivery, and so on.
    pub claim: u64,
}

/// A delivery claimed by a worker, with its fencing token.
#[derive(Debug, Clone)]
#[must_use = "a claimed delivery is leased: record its attempt or release it"]
pub struct Claim {
    /// The delivery, as stored.
    pub delivery: Delivery,
    /// The claim's fencing token.
    pub token: ClaimToken,
}

/// What [`DeliveryStore::record`] did besides recording the attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recorded {
    /// The retry policy dead-lettered the delivery but its endpoint is down: it was **held**
    /// instead, pending until the endpoint recovers.
    pub held: bool,
    /// The attempt changed its endpoint's state.
    pub change: Option<crate::health::EndpointChange>,
}

/// The states a delivery can be listed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateFilter {
    /// Waiting for an attempt (claimed or not).
    Pending,
    /// Accepted by the receiver.
    Delivered,
    /// Given up.
    DeadLettered,
}

impl StateFilter {
    /// The name, as stored: `pending`, `delivered` or `dead_lettered`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// A page of deliveries to list: those in `state` (of one flow, if given), ordered by webhook
/// id, after the cursor `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// The state.
    pub state: StateFilter,
    /// Only this flow's deliveries.
    pub flow: Option<FlowId>,
    /// Only webhook ids greater than this one (the last id of the previous page).
    pub after: Option<String>,
    /// The most deliveries to return (at least 1, at most 10,000).
    pub limit: usize,
}

impl ListQuery {
    /// The first page (100 deliveries) in `state`.
    pub fn new(state: StateFilter) -> Self {
        Self {
            state,
            flow: None,
            after: None,
            limit: 100,
        }
    }

    /// Only `flow`'s deliveries.
    pub fn flow(mut self, flow: FlowId) -> Self {
        self.flow = Some(flow);
        self
    }

    /// The page after the delivery with this webhook id.
    pub fn after(mut self, webhook_id: impl Into<String>) -> Self {
        self.after = Some(webhook_id.into());
        self
    }

    /// At most `limit` deliveries (clamped to 1..=10,000).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, 10_000);
        self
    }
}

/// How many deliveries a store holds in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub struct Counts {
    /// Pending, including those claimed.
    pub pending: u64,
    /// Pending and claimed under a lease that has not expired.
    pub leased: u64,
    /// Delivered (until purged).
    pub delivered: u64,
    /// Dead-lettered (until replayed or purged).
    pub dead_lettered: u64,
    /// Entries recorded (they hold ids only, never personal data).
    pub entries: u64,
}

/// The lease deadline of a claim made at `now`.
pub(crate) fn lease_deadline(now: Timestamp, lease: Duration) -> Timestamp {
    let lease = jiff::SignedDuration::try_from(lease).unwrap_or(jiff::SignedDuration::MAX);
    now.saturating_add(lease).unwrap_or(Timestamp::MAX)
}
