//! The async worker (feature `tokio`): a thin shell over the pure [`relay`](crate::relay) core
//! and a [`DeliveryStore`]. It holds no state that is not also in the store.
//!
//! - [`Worker::submit`] plans the event ([`relay::plan`](crate::relay::plan)) in the caller's
//!   task and returns once the store has committed the entries and deliveries.
//! - One dispatcher task claims due deliveries from the store (as many as there are free
//!   places among `max_in_flight`), and each claimed delivery gets one attempt task:
//!   [`relay::prepare_attempt`](crate::relay::prepare_attempt), the [`HttpClient`],
//!   [`Delivery::record`], then the store (fenced by the claim). A retry stays in the store
//!   until it is due; memory holds at most `max_in_flight` deliveries, however many are pending.
//! - The dispatcher sleeps until the next due time, a local submit, or (PostgreSQL) a
//!   notification from another process, and never longer than the poll interval.
//!
//! With the `tracing` feature the worker emits spans `optout.route` (per event) and
//! `optout.send` (per attempt) and events for each flow's entry and each attempt's next step.
//! Their fields are ids, kinds, statuses and times: never Email, Mobile, attribute values, URLs or
//! bodies.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::delivery::{Delivery, RetryPolicy, Step};
use crate::listen::{EntryDecision, Router};
use crate::model::{EventId, FlowId, OptOutEvent, Profile, ProfileId};
use crate::relay::{self, FlowResult, Submitted};
use crate::store::{Claim, DeliveryStore, StoreError};
use crate::transport::{HttpClient, TransportError, TransportErrorKind};
use crate::webhook::RequestBuildError;

/// What the worker reports: the end of each delivery its attempts ended, and each flow that an
/// event submitted to it matched but did not enter.
///
/// A host that reads only this stream sees every decision: `Delivered` and `DeadLettered` once
/// the store has recorded the attempt that ended the delivery, `Refused` and `NotBuilt` once
/// [`Worker::submit`] has the store's answer (before `submit` returns, in flow order; the same
/// decisions are in its [`Submitted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered(Delivery),
    /// It was given up; [`Delivery::state`] holds the reason. It stays in the store, where it
    /// can be replayed.
    DeadLettered(Delivery),
    /// The event matched the flow but did not enter it: the flow's entry limit was reached
    /// ([`EntryDecision::LimitReached`]), or this very event had entered it already (a
    /// re-delivered copy, [`EntryDecision::AlreadyEntered`], whose delivery is already
    /// stored). No delivery was made.
    #[non_exhaustive]
    Refused {
        /// The event.
        event: EventId,
        /// Its Profile.
        profile: ProfileId,
        /// The flow.
        flow: FlowId,
        /// Why it did not enter.
        decision: EntryDecision,
    },
    /// The event matched the flow but its request could not be built (for example the
    /// Profile has no Email and the flow sends it): nothing was recorded for the flow, and the
    /// event can be submitted again once the Profile is fixed.
    #[non_exhaustive]
    NotBuilt {
        /// The event.
        event: EventId,
        /// Its Profile.
        profile: ProfileId,
        /// The flow.
        flow: FlowId,
        /// Why the request could not be built.
        error: RequestBuildError,
    },
}

impl Outcome {
    /// The delivery, in its final state; `None` for an event that did not enter its flow.
    pub fn delivery(&self) -> Option<&Delivery> {
        match self {
            Self::Delivered(d) | Self::DeadLettered(d) => Some(d),
            Self::Refused { .. } | Self::NotBuilt { .. } => None,
        }
    }

    /// The flow the outcome is about.
    pub fn flow(&self) -> &FlowId {
        match self {
            Self::Delivered(d) | Self::DeadLettered(d) => d.flow(),
            Self::Refused { flow, .. } | Self::NotBuilt { flow, .. } => flow,
        }
    }

    /// The event the outcome is about.
    pub fn event(&self) -> &EventId {
        match self {
            Self::Delivered(d) | Self::DeadLettered(d) => d.event(),
            Self::Refused { event, .. } | Self::NotBuilt { event, .. } => event,
        }
    }
}

/// [`Worker::submit`] failed: nothing of the event was recorded, and the host still holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The worker is stopping or stopped.
    #[error("the worker has stopped; nothing was recorded")]
    Stopped,
    /// The store failed; [`StoreError::is_retryable`] says whether trying again makes sense.
    #[error("nothing was recorded: {0}")]
    Store(#[from] StoreError),
}

/// What a stopped worker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct Stopped {
    /// Attempts that were under way and were abandoned (on [`Worker::abort`]); their
    /// deliveries stay pending in the store.
    pub abandoned: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMode {
    /// Let in-flight attempts finish, then stop.
    Drain,
    /// Stop now; in-flight attempts are abandoned and their claims released.
    Abort,
}

/// Builds and starts a [`Worker`].
#[must_use]
pub struct WorkerBuilder {
    router: Arc<Router>,
    client: Arc<dyn HttpClient>,
    store: Arc<dyn DeliveryStore>,
    policy: RetryPolicy,
    max_in_flight: usize,
    seed: u64,
    outcome_capacity: Option<usize>,
    lease: Duration,
    poll: Duration,
    clock: Clock,
}

/// The worker's clock.
type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

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

    /// The seed of the jitter source (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How long a claim is leased (default 60 s, at least 1 s). An attempt is cut off (as a
    /// [`TransportErrorKind::Timeout`]) at half the lease, so that its result is recorded while
    /// the claim is held; a worker that dies mid-attempt leaves the delivery to another worker
    /// once the lease has expired.
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
        match self.outcome_capacity {
            Some(capacity) => {
                let (outcomes, receiver) = mpsc::channel(capacity);
                (
                    self.start_with_sink(Sink::Bounded(outcomes)),
                    Outcomes::Bounded(receiver),
                )
            }
            None => {
                let (outcomes, receiver) = mpsc::unbounded_channel();
                (
                    self.start_with_sink(Sink::Unbounded(outcomes)),
                    Outcomes::Unbounded(receiver),
                )
            }
        }
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

    fn start_with_sink(self, outcomes: Sink) -> Worker {
        let (stop, stop_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            router: self.router,
            client: self.client,
            store: self.store,
            policy: self.policy,
            jitter: AtomicU64::new(self.seed),
            max_in_flight: self.max_in_flight,
            lease: self.lease,
            poll: self.poll,
            clock: self.clock,
            work: Notify::new(),
            outcomes,
            stop: stop_rx,
        });
        let dispatcher = tokio::spawn(Arc::clone(&shared).dispatch());
        Worker {
            shared,
            stop: Arc::new(stop),
            dispatcher,
        }
    }
}

/// The async worker: takes events with their Profiles, has the store admit them (durably), and
/// delivers what the store holds, retrying as the [`RetryPolicy`] says.
///
/// Each attempt of a signed flow carries a signature made within the second it is sent; the
/// `webhook-id` stays the same on every attempt, in every process.
///
/// ```
/// use std::sync::Arc;
/// use optout_relay::*;
/// use optout_relay::testing::RecordingClient;
/// use optout_relay::webhook::ParamSource;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let flow = Flow::new(
///     FlowId::new("crm")?, SectionId::new("sec-1")?,
///     ListenNode::new([EventKind::EmailUnsubscribe])?,
///     WebhookNode::builder("https://crm.example.com/optout").param("email", ParamSource::Email).build()?,
/// );
/// let router = Arc::new(Router::new([flow], &Catalog::default())?);
/// let client = Arc::new(RecordingClient::new()); // answers 200; use ReqwestClient for real
/// let store = Arc::new(VolatileStore::new()); // SqliteStore or PostgresStore for real
/// let (worker, mut outcomes) = Worker::builder(router, client.clone(), store).start();
///
/// let event = OptOutEvent::email_unsubscribe(
///     EventId::new("evt-1")?, ProfileId::new("p-1")?, SectionId::new("sec-1")?,
///     SubscriptionId::new("123456")?, "2026-11-26T09:30:00Z".parse()?,
/// );
/// let profile = Profile::new(ProfileId::new("p-1")?).with_email(Email::new("a@example.com")?);
/// let submitted = worker.submit(&event, &profile).await?; // durable once Ok
/// assert_eq!(submitted.entered().count(), 1);
/// assert!(matches!(outcomes.recv().await, Some(Outcome::Delivered(_))));
/// let _ = worker.shutdown().await;
/// assert_eq!(client.requests().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?; Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Worker {
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<Option<StopMode>>>,
    dispatcher: tokio::task::JoinHandle<usize>,
}

/// Stops a [`Worker`] from anywhere (a signal handler, another task) while other tasks may still
/// be submitting: from then on [`Worker::submit`] fails with [`SubmitError::Stopped`], attempts
/// in flight finish, and nothing new is claimed.
#[derive(Debug, Clone)]
pub struct Stopper {
    stop: Arc<watch::Sender<Option<StopMode>>>,
}

impl Stopper {
    /// Stops taking events and claiming deliveries.
    pub fn stop(&self) {
        self.stop.send_if_modified(|mode| {
            let changed = mode.is_none();
            if changed {
                *mode = Some(StopMode::Drain);
            }
            changed
        });
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
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
    /// [`TransportErrorKind::Blocked`]) and never reaches the client.
    pub fn builder(
        router: Arc<Router>,
        client: Arc<dyn HttpClient>,
        store: Arc<dyn DeliveryStore>,
    ) -> WorkerBuilder {
        WorkerBuilder {
            router,
            client,
            store,
            policy: RetryPolicy::default(),
            max_in_flight: 64,
            seed: 0,
            outcome_capacity: None,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            clock: Arc::new(Timestamp::now),
        }
    }

    /// Plans `event` (of `profile`) at the worker's current time ([`WorkerBuilder::clock`]), has
    /// the store admit it, and wakes the dispatcher. Returns once the store has committed: every
    /// delivery of an `Entered` flow is then as durable as the store. Each flow the event
    /// matched but did not enter is also reported as an [`Outcome::Refused`] or
    /// [`Outcome::NotBuilt`], in flow order, before this returns (and before the dispatcher is
    /// woken for the flows it entered); reporting never waits (see
    /// [`WorkerBuilder::outcome_capacity`]).
    ///
    /// # Errors
    ///
    /// [`SubmitError::Stopped`] when the worker is stopping; [`SubmitError::Store`] when the
    /// store failed. Either way nothing was recorded: submit the event again.
    pub async fn submit(
        &self,
        event: &OptOutEvent,
        profile: &Profile,
    ) -> Result<Submitted, SubmitError> {
        if self.shared.stopping().is_some() {
            return Err(SubmitError::Stopped);
        }
        let plan = relay::plan(&self.shared.router, event, profile, (self.shared.clock)());
        #[cfg(not(feature = "tracing"))]
        let submitted = self.shared.store.admit(plan).await?;
        #[cfg(feature = "tracing")]
        let submitted = {
            let span = tracing::info_span!(
                "optout.route",
                event = %event.id(),
                kind = event.kind().as_str(),
                section = %event.section(),
                origin = event.origin().as_str(),
            );
            let submitted =
                tracing::Instrument::instrument(self.shared.store.admit(plan), span.clone())
                    .await?;
            let _entered = span.enter();
            for entry in &submitted.flows {
                match &entry.result {
                    FlowResult::Entered { webhook_id } => {
                        tracing::info!(flow = %entry.flow, webhook_id = %webhook_id, "entered");
                    }
                    FlowResult::Refused(decision) => {
                        tracing::info!(flow = %entry.flow, decision = ?decision, "not entered");
                    }
                    FlowResult::NotBuilt(error) => {
                        tracing::warn!(flow = %entry.flow, error = %error, "request not built");
                    }
                }
            }
            submitted
        };
        // Reported before the dispatcher is woken, and without waiting: submit never waits on
        // the outcome channel, so it is as safe to cancel as before.
        for entry in &submitted.flows {
            let outcome = match &entry.result {
                FlowResult::Entered { .. } => continue,
                FlowResult::Refused(decision) => Outcome::Refused {
                    event: event.id().clone(),
                    profile: profile.id.clone(),
                    flow: entry.flow.clone(),
                    decision: *decision,
                },
                FlowResult::NotBuilt(error) => Outcome::NotBuilt {
                    event: event.id().clone(),
                    profile: profile.id.clone(),
                    flow: entry.flow.clone(),
                    error: error.clone(),
                },
            };
            Shared::report_at_once(&self.shared, outcome);
        }
        if submitted
            .flows
            .iter()
            .any(|f| matches!(f.result, FlowResult::Entered { .. }))
        {
            self.shared.work.notify_one();
        }
        Ok(submitted)
    }

    /// A handle that stops the worker while other tasks may still be submitting.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: Arc::clone(&self.stop),
        }
    }

    /// Stops claiming, lets the attempts in flight finish and be recorded, and returns.
    /// Everything still pending stays in the store for the next worker.
    pub async fn shutdown(self) -> Stopped {
        self.stop_with(StopMode::Drain).await
    }

    /// Stops at once: attempts in flight are abandoned and their claims released, so that the
    /// next worker takes them at once (an abandoned attempt may have reached the receiver; the
    /// next one carries the same `webhook-id`, on which a receiver de-duplicates verified
    /// requests; applying an opt-out twice changes nothing either way).
    pub async fn abort(self) -> Stopped {
        self.stop_with(StopMode::Abort).await
    }

    async fn stop_with(self, mode: StopMode) -> Stopped {
        // Abort overrides an earlier Drain; Drain does not override Abort.
        self.stop.send_if_modified(|current| {
            let changed = *current != Some(StopMode::Abort) && *current != Some(mode);
            if changed {
                *current = Some(mode);
            }
            changed
        });
        let abandoned = self.dispatcher.await.unwrap_or(0);
        Stopped { abandoned }
    }
}

/// Where outcomes go: a channel the host reads, or a callback the worker calls.
enum Sink {
    Unbounded(mpsc::UnboundedSender<Outcome>),
    Bounded(mpsc::Sender<Outcome>),
    Callback(Box<dyn Fn(Outcome) + Send + Sync>),
}

/// The [`Outcome`] of every delivery the worker ends, from [`WorkerBuilder::start`].
#[derive(Debug)]
pub enum Outcomes {
    /// The default: never makes the worker wait.
    Unbounded(mpsc::UnboundedReceiver<Outcome>),
    /// From [`WorkerBuilder::outcome_capacity`].
    Bounded(mpsc::Receiver<Outcome>),
}

impl Outcomes {
    /// The next outcome; `None` once the worker has stopped and every outcome was read.
    pub async fn recv(&mut self) -> Option<Outcome> {
        match self {
            Self::Unbounded(receiver) => receiver.recv().await,
            Self::Bounded(receiver) => receiver.recv().await,
        }
    }

    /// The next outcome if one is waiting.
    pub fn try_recv(&mut self) -> Option<Outcome> {
        match self {
            Self::Unbounded(receiver) => receiver.try_recv().ok(),
            Self::Bounded(receiver) => receiver.try_recv().ok(),
        }
    }
}

/// What the worker's tasks share.
struct Shared {
    router: Arc<Router>,
    client: Arc<dyn HttpClient>,
    store: Arc<dyn DeliveryStore>,
    policy: RetryPolicy,
    /// SplitMix64 state for jitter.
    jitter: AtomicU64,
    max_in_flight: usize,
    lease: Duration,
    poll: Duration,
    clock: Clock,
    /// Wakes the dispatcher: a submit stored work, or an attempt ended.
    work: Notify,
    outcomes: Sink,
    stop: watch::Receiver<Option<StopMode>>,
}

/// Whether an attempt task ended its claim or abandoned it.
enum Ended {
    Recorded,
    Abandoned,
}

impl Shared {
    fn stopping(&self) -> Option<StopMode> {
        *self.stop.borrow()
    }

    /// The dispatcher: claims due work while there is room, sleeps when there is none. Returns
    /// how many attempts were abandoned when it stopped.
    async fn dispatch(self: Arc<Self>) -> usize {
        let mut stop = self.stop.clone();
        let mut tasks: JoinSet<Ended> = JoinSet::new();
        let mut failures = 0u32;
        let mut abandoned = 0;
        loop {
            if self.stopping().is_some() {
                break;
            }
            while let Some(ended) = tasks.try_join_next() {
                abandoned += usize::from(matches!(ended, Ok(Ended::Abandoned)));
            }
            // Claims in batches: once a quarter of the places are free (or nothing is in flight),
            // not once per attempt that ends.
            let free = self.max_in_flight.saturating_sub(tasks.len());
            if free < (self.max_in_flight / 4).max(1) && !tasks.is_empty() {
                tokio::select! {
                    ended = tasks.join_next() => {
                        abandoned += usize::from(matches!(ended, Some(Ok(Ended::Abandoned))));
                    }
                    _ = stop.wait_for(Option::is_some) => break,
                }
                continue;
            }
            // Registered before claiming, so that a submit during the claim is not missed.
            let work = self.work.notified();
            tokio::pin!(work);
            work.as_mut().enable();
            let wait = match self.store.claim(free, self.lease).await {
                Ok(claims) if !claims.is_empty() => {
                    failures = 0;
                    for claim in claims {
                        tasks.spawn(Arc::clone(&self).attempt(claim));
                    }
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    match self.store.next_due().await {
                        // At least a few milliseconds: work due now that could not be claimed
                        // (locked by another process's claim) must not make this loop spin.
                        Ok(Some(due)) => Duration::try_from(due.duration_since((self.clock)()))
                            .unwrap_or_default()
                            .clamp(Duration::from_millis(5), self.poll),
                        _ => self.poll,
                    }
                }
                Err(_error) => {
                    // The store is unreachable: back off, up to the poll interval.
                    failures = failures.saturating_add(1);
                    #[cfg(feature = "tracing")]
                    tracing::warn!(error = %_error, "claim failed");
                    Duration::from_millis(10u64.saturating_mul(1 << failures.min(10)))
                        .min(self.poll.max(Duration::from_secs(1)))
                }
            };
            tokio::select! {
                () = &mut work => {}
                () = self.store.wait_for_work() => {}
                () = tokio::time::sleep(wait) => {}
                Some(ended) = tasks.join_next(), if !tasks.is_empty() => {
                    abandoned += usize::from(matches!(ended, Ok(Ended::Abandoned)));
                }
                _ = stop.wait_for(Option::is_some) => break,
            }
        }
        // Drain: attempts finish and are recorded. Abort: they release their claims.
        while let Some(ended) = tasks.join_next().await {
            abandoned += usize::from(matches!(ended, Ok(Ended::Abandoned)));
        }
        abandoned
    }

    /// Completes once the worker is stopping (shut down, stopped or aborted).
    async fn stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(Option::is_some).await;
    }

    /// Completes once the worker is aborted.
    async fn aborted(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|mode| *mode == Some(StopMode::Abort)).await;
    }

    fn next_random(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let state = self
            .jitter
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        crate::hash::mix(state)
    }

    /// Sends the request, cut off at half the lease; a panicking transport is a failed attempt.
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let mut sending = self.client.send(request);
        let send = std::future::poll_fn(|cx| {
            match std::panic::catch_unwind(AssertUnwindSafe(|| sending.as_mut().poll(cx))) {
                Ok(poll) => poll,
                Err(_) => Poll::Ready(Err(TransportError::new(
                    TransportErrorKind::Other,
                    "the transport panicked",
                ))),
            }
        });
        match tokio::time::timeout(self.lease / 2, send).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                "no response within half the worker's lease",
            )),
        }
    }

    /// One attempt of a claimed delivery: prepare, send, record in the store, report.
    async fn attempt(self: Arc<Self>, claim: Claim) -> Ended {
        let Claim {
            mut delivery,
            token,
        } = claim;
        let started = (self.clock)();
        let send = async {
            #[cfg(feature = "tracing")]
            tracing::debug!("attempt started");
            match relay::prepare_attempt(
                &self.router,
                &delivery,
                self.client.destination_policy(),
                started,
            ) {
                Ok(request) => self.send(request).await,
                Err(refused) => Err(refused),
            }
        };
        #[cfg(feature = "tracing")]
        let send = tracing::Instrument::instrument(
            send,
            tracing::info_span!(
                "optout.send",
                flow = %delivery.flow(),
                webhook_id = delivery.webhook_id(),
                attempt = delivery.attempt_count().saturating_add(1),
            ),
        );
        let result = tokio::select! {
            result = send => result,
            () = self.aborted() => {
                let _ = self.store.release(&token).await;
                return Ended::Abandoned;
            }
        };
        let step = delivery.record(
            result.as_ref(),
            started,
            (self.clock)(),
            &self.policy,
            self.next_random(),
        );
        #[cfg(feature = "tracing")]
        tracing::info!(
            flow = %delivery.flow(),
            webhook_id = delivery.webhook_id(),
            attempts = delivery.attempt_count(),
            outcome = ?delivery.attempts().last().map(|a| match &a.outcome {
                crate::delivery::AttemptOutcome::Response { status, .. } => status.to_string(),
                crate::delivery::AttemptOutcome::Error { kind, .. } => kind.to_string(),
            }),
            step = ?step,
            "attempt recorded"
        );
        // Keep the result while the lease lasts; if the store stays down, the delivery stays
        // pending there and the next claim makes the attempt again (same webhook-id).
        let deadline = tokio::time::Instant::now() + self.lease / 2;
        let mut pause = Duration::from_millis(10);
        loop {
            match self.store.record(&token, &delivery).await {
                Ok(()) => break,
                Err(error) if error.is_retryable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(_error) => {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(webhook_id = delivery.webhook_id(), error = %_error, "attempt not recorded");
                    return Ended::Recorded;
                }
            }
        }
        match step {
            Step::Delivered => self.report(Outcome::Delivered(delivery)).await,
            Step::DeadLetter { .. } => self.report(Outcome::DeadLettered(delivery)).await,
            Step::RetryAt { .. } => {}
        }
        Ended::Recorded
    }

    /// Hands an outcome to the host if that needs no wait: a callback is called, a channel
    /// sent to. Gives the outcome back only when a bounded channel is full.
    fn hand_over(&self, outcome: Outcome) -> Option<Outcome> {
        match &self.outcomes {
            Sink::Callback(callback) => {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| callback(outcome)));
            }
            // The host may have dropped the receiver: it no longer wants outcomes.
            Sink::Unbounded(channel) => drop(channel.send(outcome)),
            Sink::Bounded(channel) => match channel.try_send(outcome) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(outcome)) => return Some(outcome),
            },
        }
        None
    }

    /// Hands an outcome to the host without waiting: one that finds a bounded channel full
    /// goes to a task that waits for room (as [`Shared::report`] does).
    fn report_at_once(shared: &Arc<Self>, outcome: Outcome) {
        if let Some(outcome) = shared.hand_over(outcome) {
            let shared = Arc::clone(shared);
            tokio::spawn(async move { shared.report(outcome).await });
        }
    }

    /// Hands an outcome to the host. The delivery's end is already in the store, so a callback
    /// that panics, or a host that stopped reading, loses nothing.
    async fn report(&self, outcome: Outcome) {
        let Some(outcome) = self.hand_over(outcome) else {
            return;
        };
        // Waits while the channel is full, until the worker is stopped: a host that stopped
        // reading must not hold shutdown() forever.
        if let Sink::Bounded(channel) = &self.outcomes {
            tokio::select! {
                biased;
                _ = channel.send(outcome) => {}
                () = self.stopped() => {}
            }
        }
    }
}
