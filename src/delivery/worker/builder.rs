//! [`WorkerBuilder`]: the worker's settings, and starting it.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;

use super::Worker;
use super::jitter::{Jitter, entropy_seed};
use super::outcome::{Outcome, Outcomes, Sink};
use super::shared::{Clock, Shared};
use super::stop::stop_signal;
use crate::delivery::RetryPolicy;
use crate::listen::Router;
use crate::store::DeliveryStore;
use crate::transport::HttpClient;

/// Builds and starts a [`Worker`].
#[must_use]
pub struct WorkerBuilder {
    router: Arc<Router>,
    client: Arc<dyn HttpClient>,
    store: Arc<dyn DeliveryStore>,
    policy: RetryPolicy,
    max_in_flight: usize,
    /// `None`: from entropy when the worker starts.
    seed: Option<u64>,
    outcome_capacity: Option<usize>,
    lease: Duration,
    poll: Duration,
    clock: Clock,
    #[cfg(feature = "metrics")]
    metrics_every: Duration,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("flows", &self.router.flows().len())
            .field("policy", &self.policy)
            .field("max_in_flight", &self.max_in_flight)
            .field("lease", &self.lease)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A builder for a worker over `router`, sending through `client`, keeping everything in
    /// `store`.
    ///
    /// The worker vets every request's destination with the client's own
    /// [`HttpClient::destination_policy`] before each attempt (one policy, one owner): a refused
    /// destination is dead-lettered at once
    /// ([`DeadLetterReason::NotRetryable`](crate::delivery::DeadLetterReason::NotRetryable) with
    /// [`TransportErrorKind::Blocked`](crate::transport::TransportErrorKind::Blocked)) and never
    /// reaches the client.
    ///
    /// Each part is taken by value or shared: a `Router` or an `Arc<Router>`; any
    /// [`HttpClient`] (an `Arc` of one is one too); any [`DeliveryStore`] (likewise), so a host
    /// that keeps the store to inspect it passes an `Arc` clone.
    pub fn builder(
        router: impl Into<Arc<Router>>,
        client: impl HttpClient + 'static,
        store: impl DeliveryStore + 'static,
    ) -> WorkerBuilder {
        WorkerBuilder {
            router: router.into(),
            client: Arc::new(client),
            store: Arc::new(store),
            policy: RetryPolicy::default(),
            max_in_flight: 64,
            seed: None,
            outcome_capacity: None,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            clock: Arc::new(Timestamp::now),
            #[cfg(feature = "metrics")]
            metrics_every: Duration::from_secs(10),
        }
    }
}

impl WorkerBuilder {
    /// The retry policy (default [`RetryPolicy::default`]).
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The most attempts in flight at once, and so the most deliveries in memory (default 64,
    /// at least 1).
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.clamp(1, 1 << 16);
        self
    }

    /// Fixes the seed of the jitter source, so that retries follow the same schedule on every
    /// run (for tests). Without it the seed comes from entropy, different for every worker, so
    /// that the retries of workers in different processes do not reach a receiver together.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How long a claim is leased (default 60 s, at least 1 s). An attempt is cut off (as a
    /// [`TransportErrorKind::Timeout`]) at half the lease, so that its result is recorded while
    /// the claim is held; a worker that dies mid-attempt leaves the delivery to another worker
    /// once the lease has expired.
    ///
    /// [`TransportErrorKind::Timeout`]: crate::transport::TransportErrorKind::Timeout
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// The longest the worker waits before looking at the store again when it knows of no due
    /// work (default 1 s, at least 10 ms): what bounds the delay of work that another process
    /// admitted when no notification reaches this one.
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// How often the worker sets the per-endpoint gauges of [`crate::metrics`] from
    /// [`DeliveryStore::endpoints`] (default 10 s, at least 100 ms; first as it starts).
    #[cfg(feature = "metrics")]
    pub fn metrics_every(mut self, every: Duration) -> Self {
        self.metrics_every = every.max(Duration::from_millis(100));
        self
    }

    /// The clock the worker reads its `now` from (default the system clock,
    /// [`Timestamp::now`]): the time of each submit's plan (its entry decisions, so that a
    /// windowed [`EntryLimit`](crate::EntryLimit) counts from it, and its deliveries' creation
    /// time) and of each attempt (its signature, its record, the next retry's due time).
    ///
    /// The store keeps its own clock for due times and leases ([`SqliteStore`]: the system
    /// clock; `PostgresStore`: the database's; [`VolatileStore::with_clock`]: any), so replace
    /// both together: a worker clock behind the store's makes retries due early, and one ahead
    /// of it holds every new delivery until the store's clock reaches its creation time.
    ///
    /// [`SqliteStore`]: crate::SqliteStore
    /// [`VolatileStore::with_clock`]: crate::VolatileStore::with_clock
    pub fn clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Bounds the [`Outcomes`] channel to `capacity` waiting outcomes (at least 1). By default
    /// it is unbounded. Bounded, an attempt task waits while it is full (its delivery is already
    /// recorded in the store), so a host that does not read holds the worker back.
    /// [`Worker::submit`] never waits: a flow an event did not enter that finds the channel
    /// full is handed to a task that waits for room (so it may come after outcomes reported
    /// later). Once the worker is stopping ([`Worker::shutdown`], [`Stopper::stop`], [`Worker::abort`]) it no
    /// longer waits: an outcome that finds the channel full then is not sent, so that a host
    /// that stopped reading cannot hold the shutdown forever. The delivery's end is in the store
    /// either way ([`DeliveryStore::get`]).
    ///
    /// [`Stopper::stop`]: super::Stopper::stop
    pub fn outcome_capacity(mut self, capacity: usize) -> Self {
        self.outcome_capacity = Some(capacity.max(1));
        self
    }

    /// Starts the worker on the current tokio runtime. Returns the handle and the channel of
    /// [`Outcome`]s: one per delivery this worker ends, and one per flow that a submitted event
    /// matched but did not enter (drop it to ignore outcomes).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn start(self) -> (Worker, Outcomes) {
        let (sink, outcomes) = Outcomes::channel(self.outcome_capacity);
        (self.start_with_sink(sink), outcomes)
    }

    /// Starts the worker on the current tokio runtime, calling `on_outcome` with every
    /// [`Outcome`]: in the task of the attempt that ended the delivery, after the store has
    /// recorded it, or in the task that called [`Worker::submit`] for a flow the event did not
    /// enter, after the store has answered (keep it short; it must not block). A callback that
    /// panics loses nothing: the delivery's end is already in the store.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn start_with_callback(
        self,
        on_outcome: impl Fn(Outcome) + Send + Sync + 'static,
    ) -> Worker {
        self.start_with_sink(Sink::Callback(Box::new(on_outcome)))
    }

    /// The seed the worker's jitter starts from: the one given, else one from entropy.
    fn jitter_seed(&self) -> u64 {
        self.seed.unwrap_or_else(entropy_seed)
    }

    fn start_with_sink(self, outcomes: Sink) -> Worker {
        let (stop, stop_rx) = stop_signal();
        let jitter = Jitter::new(self.jitter_seed());
        let shared = Arc::new(Shared {
            router: self.router,
            client: self.client,
            store: self.store,
            policy: self.policy,
            jitter,
            max_in_flight: self.max_in_flight,
            lease: self.lease,
            poll: self.poll,
            clock: self.clock,
            work: Notify::new(),
            outcomes: Arc::new(outcomes),
            stop: stop_rx,
        });
        #[cfg(feature = "metrics")]
        tokio::spawn(report_endpoints(
            Arc::clone(&shared.store),
            shared.stop.clone(),
            self.metrics_every,
        ));
        let scheduler = tokio::spawn(Arc::clone(&shared).schedule());
        Worker {
            shared,
            stop,
            scheduler,
        }
    }
}

/// Sets the per-endpoint gauges every `every` until the worker stops.
#[cfg(feature = "metrics")]
async fn report_endpoints(
    store: Arc<dyn DeliveryStore>,
    stop: super::stop::StopSignal,
    every: Duration,
) {
    loop {
        let _ = crate::metrics::report_endpoints(&*store).await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = super::stop::stopped(&stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Catalog;
    use crate::store::volatile::VolatileStore;
    use crate::transport::client::client_fn;

    fn builder() -> WorkerBuilder {
        let router = Router::new([], &Catalog::default()).unwrap();
        let client = client_fn(|_| async { Ok(http::Response::new(Vec::new())) });
        Worker::builder(router, client, VolatileStore::new())
    }

    #[test]
    fn workers_without_a_seed_get_different_seeds() {
        let (first, second) = (builder(), builder());
        assert_ne!(first.jitter_seed(), second.jitter_seed());
        // And one builder asked twice (as two starts of the same settings would be).
        assert_ne!(first.jitter_seed(), first.jitter_seed());
    }

    #[test]
    fn a_fixed_seed_is_kept() {
        let builder = builder().seed(42);
        assert_eq!(builder.jitter_seed(), 42);
        assert_eq!(builder.jitter_seed(), 42);
    }
}
