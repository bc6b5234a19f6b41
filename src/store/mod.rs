//! Delivery stores: where every entry and every delivery is kept from the moment a store admits
//! it until it is delivered, dead-lettered and finally purged.
//!
//! | store | for | durable | processes |
//! | --- | --- | --- | --- |
//! | `SqliteStore` (feature `sqlite`, default) | one machine, no setup: one file | yes, at commit | one or a few on one machine |
//! | `PostgresStore` (feature `postgres`) | many worker processes on many machines | yes, at commit | any number |
//! | [`VolatileStore`] | tests and throwaway runs | **no**: everything is lost with the process | one |
//!
//! Every store implements [`DeliveryStore`]:
//!
//! - [`admit`](DeliveryStore::admit) records a [`Plan`]'s entries and enqueues their deliveries
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

mod volatile;
pub use volatile::VolatileStore;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, SqliteStoreBuilder, Synchronous};
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
pub use postgres::{
    MIGRATION as POSTGRES_MIGRATION, NOTIFY_CHANNEL, PostgresStore, PostgresStoreBuilder,
};

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::delivery::Delivery;
use crate::model::FlowId;
use crate::relay::{Plan, Submitted};

/// How many claims of one delivery may expire without an attempt recorded before a store
/// dead-letters it ([`DeadLetterReason::Abandoned`](crate::DeadLetterReason::Abandoned)): work
/// that crashes every worker that takes it must not take them all down in turn.
pub const MAX_ABANDONED_CLAIMS: u32 = 3;

/// What kind of store failure, and whether retrying makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached or is busy (connection refused or lost, the database locked
    /// for too long, an I/O error). Retrying later makes sense; nothing was committed.
    Unavailable,
    /// The claim's lease was taken over by another worker (or the delivery has ended): the
    /// attempt's result was not recorded, and the worker that holds the delivery now decides.
    /// Retrying makes no sense.
    LeaseLost,
    /// Stored data could not be read back (a row that is not a delivery this crate wrote).
    Corrupt,
    /// The database's schema is newer than this crate knows, or could not be created.
    Schema,
    /// The store has been closed.
    Closed,
    /// Anything else the database reported (a constraint, a type mismatch).
    Other,
}

impl StoreErrorKind {
    /// Whether an operation that failed this way may succeed if tried again.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable)
    }

    /// The name, such as `unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::LeaseLost => "lease_lost",
            Self::Corrupt => "corrupt",
            Self::Schema => "schema",
            Self::Closed => "closed",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store operation failed: what kind of failure, and a message for people. Nothing the
/// operation would have written was committed.
///
/// The message names tables, ids and the database's own words; never an email, a number or a
/// request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery store {kind}: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    /// A store error of `kind`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What failed.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    pub(crate) fn lease_lost(webhook_id: &str) -> Self {
        Self::new(
            StoreErrorKind::LeaseLost,
            format!(
                "the claim on {webhook_id} is no longer held (its lease expired and another worker took it, or it ended)"
            ),
        )
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn corrupt(webhook_id: &str, error: impl fmt::Display) -> Self {
        Self::new(
            StoreErrorKind::Corrupt,
            format!("delivery {webhook_id} cannot be read back: {error}"),
        )
    }
}

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

/// Where entries and deliveries are kept: see the [module docs](self).
///
/// `&self`, `Send + Sync`: one store serves every submitter and sender task; share it as
/// `Arc<dyn DeliveryStore>`. Times a store decides by (a claim's due time and lease) come from
/// the store's own clock: the database's for PostgreSQL.
///
/// ```
/// use optout_relay::*;
/// use optout_relay::store::{DeliveryStore, VolatileStore};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let flow = Flow::new(
///     FlowId::new("crm")?, SectionId::new("sec-1")?,
///     ListenNode::new([EventKind::EmailUnsubscribe])?,
///     WebhookNode::builder("https://crm.example.com/optout").param("email", ParamSource::Email).build()?,
/// );
/// let router = Router::new([flow], &Catalog::default())?;
/// let event = OptOutEvent::email_unsubscribe(
///     EventId::new("evt-1")?, ProfileId::new("p-1")?, SectionId::new("sec-1")?,
///     SubscriptionId::new("123456")?, "2026-11-26T09:30:00Z".parse()?,
/// );
/// let profile = Profile::new(ProfileId::new("p-1")?).with_email(Email::new("a@example.com")?);
/// let now: Timestamp = "2026-11-26T09:30:01Z".parse()?;
///
/// let store = VolatileStore::with_clock(move || now);
/// let submitted = store.admit(relay::plan(&router, &event, &profile, now)).await?;
/// assert_eq!(submitted.entered().count(), 1);
/// // Admitting the same event again is a no-op that says so.
/// let again = store.admit(relay::plan(&router, &event, &profile, now)).await?;
/// assert_eq!(again.flows[0].result, relay::FlowResult::Refused(EntryDecision::AlreadyEntered));
///
/// let claims = store.claim(10, Duration::from_secs(60)).await?;
/// assert_eq!(claims.len(), 1);
/// let mut delivery = claims[0].delivery.clone();
/// let ok = http::Response::builder().status(204).body(Vec::new())?;
/// let _ = delivery.record(Ok(&ok), now, now, &RetryPolicy::default(), 0);
/// store.record(&claims[0].token, &delivery).await?;
/// assert_eq!(store.counts().await?.delivered, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?; Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Records the entries `plan`'s candidates earn and enqueues their deliveries, in one
    /// transaction; durable when this returns `Ok` (as durable as the store is). Each entry is
    /// decided by [`relay::decide_entry`](crate::relay::decide_entry) on what the store holds,
    /// inside the transaction. A delivery whose webhook id is already stored is not stored again.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]: nothing of the plan was recorded; the event can be submitted again.
    async fn admit(&self, plan: Plan) -> Result<Submitted, StoreError>;

    /// Claims up to `max` pending deliveries that are due and not under an unexpired lease,
    /// oldest due first, leasing each for `lease`. A delivery whose earlier claims expired
    /// [`MAX_ABANDONED_CLAIMS`] times without an attempt is dead-lettered instead.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; nothing was claimed.
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claim>, StoreError>;

    /// Records the attempt just made on a claimed delivery: `delivery` as
    /// [`Delivery::record`] left it (pending with its next attempt time, delivered, or
    /// dead-lettered). Ends the claim.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::LeaseLost`] when the claim is no longer held (nothing is written);
    /// another [`StoreError`] when the store failed (try again while the lease lasts).
    async fn record(&self, claim: &ClaimToken, delivery: &Delivery) -> Result<(), StoreError>;

    /// Gives a claimed delivery back without an attempt (a worker stopping): it is due again as
    /// it was, and the claim does not count as abandoned.
    ///
    /// # Errors
    ///
    /// As [`record`](Self::record).
    async fn release(&self, claim: &ClaimToken) -> Result<(), StoreError>;

    /// When the earliest pending delivery not under lease is due (or its lease ends); `None`
    /// when nothing is pending.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Completes when another process may have made work available (for PostgreSQL, a
    /// `NOTIFY`). The default never completes: a worker wakes itself for its own submits and at
    /// the due times [`next_due`](Self::next_due) gives.
    async fn wait_for_work(&self) {
        std::future::pending::<()>().await;
    }

    /// One delivery by webhook id.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn get(&self, webhook_id: &str) -> Result<Option<Delivery>, StoreError>;

    /// A page of deliveries.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn list(&self, query: &ListQuery) -> Result<Vec<Delivery>, StoreError>;

    /// Makes a dead-lettered delivery pending again, due now, with the retry policy's whole
    /// allowance (see [`Delivery::replay`]). Returns whether a dead letter with that webhook id
    /// was found and replayed.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn replay(&self, webhook_id: &str) -> Result<bool, StoreError>;

    /// Deletes the deliveries that ended (delivered or dead-lettered) before `before`; they hold
    /// personal data. Returns how many were deleted. Entries (ids only) are kept: they are what
    /// recognises a re-delivered event and counts entry limits.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// How many deliveries are in each state.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn counts(&self) -> Result<Counts, StoreError>;
}

/// The lease deadline of a claim made at `now`.
pub(crate) fn lease_deadline(now: Timestamp, lease: Duration) -> Timestamp {
    let lease = jiff::SignedDuration::try_from(lease).unwrap_or(jiff::SignedDuration::MAX);
    now.saturating_add(lease).unwrap_or(Timestamp::MAX)
}
