//! The delivery store's trait.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::delivery::Delivery;
use crate::health::{Endpoint, EndpointChange, EndpointStatus};
use crate::relay::{Plan, Submitted};
use crate::store::{Claim, ClaimToken, Counts, ListQuery, Recorded, StoreError};
use crate::webhook::WebhookId;

/// Where entries and deliveries are kept: see the [module docs](crate::store).
///
/// `&self`, `Send + Sync`: one store serves every submitter and sender task; share it as
/// `Arc<dyn DeliveryStore>`. Times a store decides by (a claim's due time and lease) come from
/// the store's own clock: the database's for PostgreSQL.
///
/// ```
/// use optout_relay::*;
/// use optout_relay::DeliveryStore;
/// use optout_relay::VolatileStore;
/// use optout_relay::listen::EntryDecision;
/// use optout_relay::webhook::ParamSource;
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
    /// [`MAX_ABANDONED_CLAIMS`](crate::store::MAX_ABANDONED_CLAIMS) times without an attempt is dead-lettered instead.
    ///
    /// Endpoint health decides what may go ([`EndpointHealth::grant`]): nothing of a paused
    /// endpoint, one probe at a time of a degraded one, and no more than an endpoint's limits
    /// (in flight, per second) across every worker that shares the store. A delivery of a flow
    /// with [`DeliveryOrder::PerProfile`](crate::listen::DeliveryOrder::PerProfile) waits while
    /// an earlier one of the same (flow, Profile) is pending. What one endpoint may not send
    /// never keeps another's due work from being claimed.
    ///
    /// [`EndpointHealth::grant`]: crate::health::EndpointHealth::grant
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; nothing was claimed.
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claim>, StoreError>;

    /// Records the attempt just made on a claimed delivery: `delivery` as
    /// [`Delivery::record`] left it (pending with its next attempt time, delivered, or
    /// dead-lettered). Ends the claim.
    ///
    /// With endpoint health on, the attempt also counts for its endpoint
    /// ([`health::settle`](crate::health::settle)), in the same transaction: the endpoint's
    /// state may change, and a delivery the retry policy dead-lettered may be **held** instead
    /// (still pending) because its endpoint is down. When the endpoint recovers, its pending
    /// deliveries are made due at once with a fresh allowance, in their original order.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::LeaseLost`](crate::store::StoreErrorKind::LeaseLost) when the claim is no longer held (nothing is written);
    /// another [`StoreError`] when the store failed (try again while the lease lasts).
    async fn record(&self, claim: &ClaimToken, delivery: &Delivery)
    -> Result<Recorded, StoreError>;

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
    async fn get(&self, webhook_id: &WebhookId) -> Result<Option<Delivery>, StoreError>;

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
    async fn replay(&self, webhook_id: &WebhookId) -> Result<bool, StoreError>;

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

    /// Every endpoint the store holds deliveries or health for: its state, its pending
    /// deliveries and those in flight, ordered by endpoint.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn endpoints(&self) -> Result<Vec<EndpointStatus>, StoreError>;

    /// An operator's pause: nothing more is sent to `endpoint` (attempts in flight finish) and
    /// its deliveries are held, neither retried nor dead-lettered, until
    /// [`resume`](Self::resume). Returns the change, `None` when it was paused by an operator
    /// already.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn pause(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError>;

    /// Makes `endpoint` healthy again, whatever paused or degraded it, and releases its held
    /// deliveries: each is due at once with the retry policy's whole allowance, in the order
    /// they were admitted. Returns the change, `None` when it was healthy already.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    async fn resume(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError>;
}

/// A shared store is a store: a host keeps an `Arc` of its store to inspect it while a
/// [`Worker`](crate::Worker) uses another.
#[async_trait]
impl<S: DeliveryStore + ?Sized> DeliveryStore for Arc<S> {
    async fn admit(&self, plan: Plan) -> Result<Submitted, StoreError> {
        (**self).admit(plan).await
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        (**self).claim(max, lease).await
    }

    async fn record(
        &self,
        claim: &ClaimToken,
        delivery: &Delivery,
    ) -> Result<Recorded, StoreError> {
        (**self).record(claim, delivery).await
    }

    async fn release(&self, claim: &ClaimToken) -> Result<(), StoreError> {
        (**self).release(claim).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        (**self).next_due().await
    }

    async fn wait_for_work(&self) {
        (**self).wait_for_work().await;
    }

    async fn get(&self, webhook_id: &WebhookId) -> Result<Option<Delivery>, StoreError> {
        (**self).get(webhook_id).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Delivery>, StoreError> {
        (**self).list(query).await
    }

    async fn replay(&self, webhook_id: &WebhookId) -> Result<bool, StoreError> {
        (**self).replay(webhook_id).await
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        (**self).purge(before).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        (**self).counts().await
    }

    async fn endpoints(&self) -> Result<Vec<EndpointStatus>, StoreError> {
        (**self).endpoints().await
    }

    async fn pause(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError> {
        (**self).pause(endpoint).await
    }

    async fn resume(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError> {
        (**self).resume(endpoint).await
    }
}
