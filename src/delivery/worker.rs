//! The async worker (feature `tokio`): routes events, builds requests, sends them, sleeps and
//! retries with real timers, and hands back every pending delivery when it stops.
//!
//! The rules live in the pure parts ([`Router`], [`WebhookNode`](crate::WebhookNode),
//! [`Delivery::record`]); the worker only drives them with the clock, timers and the
//! [`HttpClient`].
//!
//! With the `tracing` feature the worker emits spans `optout.route` (per event) and
//! `optout.send` (per attempt) and events for each flow's entry and each attempt's next step.
//! Their fields are ids, kinds, statuses and times: never Email, Mobile, attribute values, URLs or
//! bodies.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use jiff::Timestamp;
use std::collections::VecDeque;

use tokio::sync::{Notify, mpsc, watch};

use crate::delivery::{Delivery, DeliveryState, RetryPolicy, Step};
use crate::error::RequestBuildError;
use crate::listen::{EntryDecision, EntryLedger, EntryRequest, InMemoryLedger, Router};
use crate::model::{EventId, FlowId, OptOutEvent, Profile};
use crate::transport::{
    BlockReason, DestinationPolicy, HttpClient, TransportError, TransportErrorKind,
};

/// What became of one event in one flow it matched, as reported by [`Worker::submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowResult {
    /// The event entered the flow; a delivery with this webhook id is under way, and its
    /// [`Outcome`] will follow.
    Entered {
        /// The delivery's webhook id.
        webhook_id: String,
    },
    /// The flow's entry ledger refused the event (entry limit reached, or this event already
    /// entered): no delivery.
    Refused(EntryDecision),
    /// The request could not be built (for example the Profile has no Email and the flow needs
    /// it). The entry was not recorded, so the event can be submitted again once the data is
    /// fixed.
    NotBuilt(RequestBuildError),
}

/// One flow's result for a submitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEntry {
    /// The flow.
    pub flow: FlowId,
    /// What happened.
    pub result: FlowResult,
}

/// What [`Worker::submit`] did with one event: one entry per flow the event matched (none when it
/// matched no flow).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Submitted {
    /// The event.
    pub event: EventId,
    /// Per matching flow, in flow order.
    pub flows: Vec<FlowEntry>,
}

/// The end of one delivery: exactly one per delivery the worker started or resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered(Delivery),
    /// It was given up; [`Delivery::state`] holds the reason.
    DeadLettered(Delivery),
}

impl Outcome {
    /// The delivery, in its final state.
    pub fn delivery(&self) -> &Delivery {
        match self {
            Self::Delivered(d) | Self::DeadLettered(d) => d,
        }
    }
}

/// The worker has stopped: the event or delivery was not taken. Deliveries already made for the
/// event (its entry is recorded in the ledger) are handed back here so that nothing is lost:
/// persist them, or resume them in another worker.
#[derive(Debug, thiserror::Error)]
#[error("the worker has stopped ({} deliveries handed back)", pending.len())]
pub struct WorkerStopped {
    /// Deliveries built for the event but not taken.
    pub pending: Vec<Delivery>,
}

/// What a stopped worker hands back: every delivery not yet delivered or dead-lettered, as
/// serializable state, and its entry ledger.
#[derive(Debug)]
#[must_use]
pub struct Stopped<L> {
    /// The pending deliveries; resume them with [`WorkerBuilder::resume`].
    pub pending: Vec<Delivery>,
    /// The entry ledger.
    pub ledger: L,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMode {
    /// Let in-flight attempts finish, then stop.
    Drain,
    /// Stop now; in-flight attempts are abandoned and their deliveries handed back.
    Abort,
}

/// Builds and starts a [`Worker`].
#[must_use]
pub struct WorkerBuilder<L> {
    router: Arc<Router>,
    client: Arc<dyn HttpClient>,
    ledger: L,
    policy: RetryPolicy,
    max_in_flight: usize,
    seed: u64,
    resume: Vec<Delivery>,
    destinations: DestinationPolicy,
    outcome_capacity: Option<usize>,
}

impl<L> std::fmt::Debug for WorkerBuilder<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("flows", &self.router.flows().len())
            .field("policy", &self.policy)
            .field("max_in_flight", &self.max_in_flight)
            .field("resume", &self.resume.len())
            .finish_non_exhaustive()
    }
}

impl<L: EntryLedger + Send + 'static> WorkerBuilder<L> {
    /// Keeps entries in `ledger` instead of a new [`InMemoryLedger`].
    pub fn ledger<M: EntryLedger + Send + 'static>(self, ledger: M) -> WorkerBuilder<M> {
        WorkerBuilder {
            router: self.router,
            client: self.client,
            ledger,
            policy: self.policy,
            max_in_flight: self.max_in_flight,
            seed: self.seed,
            resume: self.resume,
            destinations: self.destinations,
            outcome_capacity: self.outcome_capacity,
        }
    }

    /// The destination policy checked before every attempt, whatever the transport (default:
    /// the strict [`DestinationPolicy::default`]). A refused destination is dead-lettered at once
    /// ([`DeadLetterReason::NotRetryable`](crate::DeadLetterReason::NotRetryable) with
    /// [`TransportErrorKind::Blocked`]). The worker judges IP literals and `localhost`; a
    /// transport such as [`ReqwestClient`](crate::transport::ReqwestClient) also judges what
    /// host names resolve to.
    pub fn destination_policy(mut self, policy: DestinationPolicy) -> Self {
        self.destinations = policy;
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The most attempts in flight at once (default 64, at least 1). [`Worker::submit`] waits
    /// while there is no room, so memory stays bounded however fast events arrive.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.clamp(1, 1 << 16);
        self
    }

    /// The seed of the jitter source (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Deliveries handed back by an earlier worker ([`Stopped::pending`]), to carry on with.
    pub fn resume(mut self, deliveries: impl IntoIterator<Item = Delivery>) -> Self {
        self.resume.extend(deliveries);
        self
    }

    /// Bounds the [`Outcomes`] channel to `capacity` waiting outcomes (at least 1). By default
    /// it is unbounded: outcomes the host has not read yet take memory, but nothing ever waits
    /// for the host. Bounded, memory stays flat however slowly the host reads, and the sender
    /// tasks (and so [`Worker::submit`]) wait while it is full: the host must then read outcomes
    /// while it submits, or it waits for ever.
    pub fn outcome_capacity(mut self, capacity: usize) -> Self {
        self.outcome_capacity = Some(capacity.max(1));
        self
    }

    /// Starts the worker on the current tokio runtime. Returns the handle and the channel of
    /// [`Outcome`]s, one per delivery (drop it to ignore outcomes).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn start(self) -> (Worker<L>, Outcomes) {
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
    /// [`Outcome`], in the task of the attempt that ended the delivery (keep it short: store the
    /// outcome or hand it on; it must not block).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn start_with_callback(
        self,
        on_outcome: impl Fn(Outcome) + Send + Sync + 'static,
    ) -> Worker<L> {
        self.start_with_sink(Sink::Callback(Box::new(on_outcome)))
    }

    fn start_with_sink(self, outcomes: Sink) -> Worker<L> {
        let (retries, retry_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            router: Arc::clone(&self.router),
            client: self.client,
            policy: self.policy,
            destinations: self.destinations,
            jitter: AtomicU64::new(self.seed),
            ready: Mutex::new(VecDeque::with_capacity(self.max_in_flight)),
            capacity: self.max_in_flight,
            work: Notify::new(),
            space: Notify::new(),
            outcomes,
            retries,
            stop: stop_rx,
            handed_back: Mutex::new(Vec::new()),
        });
        for delivery in self.resume {
            shared.retry(delivery);
        }
        let scheduler = tokio::spawn(Arc::clone(&shared).schedule(retry_rx));
        let lanes = (0..self.max_in_flight)
            .map(|_| tokio::spawn(Arc::clone(&shared).lane()))
            .collect();
        Worker {
            shared,
            ledger: Mutex::new(self.ledger),
            stop: Arc::new(stop),
            scheduler,
            lanes,
        }
    }
}

/// The async worker: takes events with their Profiles, routes them, builds, sends, sleeps and
/// retries; every delivery ends as exactly one [`Outcome`], and [`shutdown`](Self::shutdown)
/// hands back every delivery still pending.
///
/// Routing and building happen in the task that calls [`submit`](Self::submit), so that several
/// tasks can submit in parallel; the deliveries go into a ready queue of `max_in_flight` places
/// (submit waits while it is full), from which `max_in_flight` sender tasks take them, one
/// attempt each at a time; one scheduler task holds the deliveries waiting for a retry and puts
/// them in the ready queue when they are due.
///
/// Each attempt of a signed flow carries a signature made within the second it is sent
/// (receivers accept timestamps within minutes of their clock); the `webhook-id` stays the same.
pub struct Worker<L> {
    shared: Arc<Shared>,
    ledger: Mutex<L>,
    stop: Arc<watch::Sender<Option<StopMode>>>,
    scheduler: tokio::task::JoinHandle<()>,
    lanes: Vec<tokio::task::JoinHandle<()>>,
}

/// Stops a [`Worker`] from anywhere (a signal handler, another task) while other tasks may still
/// be submitting: from then on [`Worker::submit`] and [`Worker::resume`] hand their deliveries
/// back in [`WorkerStopped`], attempts in flight finish, and nothing new starts. Collect what is
/// pending with [`Worker::shutdown`].
#[derive(Debug, Clone)]
pub struct Stopper {
    stop: Arc<watch::Sender<Option<StopMode>>>,
}

impl Stopper {
    /// Stops taking events and starting attempts.
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

impl<L> std::fmt::Debug for Worker<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

impl Worker<InMemoryLedger> {
    /// A builder for a worker over `router`, sending through `client`.
    pub fn builder(
        router: Arc<Router>,
        client: Arc<dyn HttpClient>,
    ) -> WorkerBuilder<InMemoryLedger> {
        WorkerBuilder {
            router,
            client,
            ledger: InMemoryLedger::new(),
            policy: RetryPolicy::default(),
            max_in_flight: 64,
            seed: 0,
            resume: Vec::new(),
            destinations: DestinationPolicy::default(),
            outcome_capacity: None,
        }
    }
}

impl<L: EntryLedger + Send + 'static> Worker<L> {
    /// Routes `event` (of `profile`), builds the request of every flow it matches, records the
    /// entries, and starts the deliveries. Waits while the worker is at its in-flight limit.
    ///
    /// # Errors
    ///
    /// [`WorkerStopped`] when the worker is stopping or stopped; it holds the deliveries already
    /// made for this event (their entries are recorded), so that they are not lost.
    pub async fn submit(
        &self,
        event: &OptOutEvent,
        profile: &Profile,
    ) -> Result<Submitted, WorkerStopped> {
        let (submitted, deliveries) = self.route_and_build(event, profile, Timestamp::now());
        let mut deliveries = deliveries.into_iter();
        while let Some(delivery) = deliveries.next() {
            if let Err(refused) = self.shared.launch(delivery).await {
                let mut pending = vec![refused];
                pending.extend(deliveries);
                return Err(WorkerStopped { pending });
            }
        }
        Ok(submitted)
    }

    /// Carries on with a delivery handed back by an earlier worker, at its next attempt time.
    ///
    /// # Errors
    ///
    /// [`WorkerStopped`] (holding the delivery) when the worker is stopping or stopped.
    pub async fn resume(&self, delivery: Delivery) -> Result<(), WorkerStopped> {
        if self.shared.stopping().is_some() {
            return Err(WorkerStopped {
                pending: vec![delivery],
            });
        }
        self.shared.retry(delivery);
        Ok(())
    }

    fn route_and_build(
        &self,
        event: &OptOutEvent,
        profile: &Profile,
        now: Timestamp,
    ) -> (Submitted, Vec<Delivery>) {
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!(
            "optout.route",
            event = %event.id(),
            kind = event.kind().as_str(),
            section = %event.section(),
            origin = event.origin().as_str(),
        )
        .entered();
        let router = &self.shared.router;
        let section = router.catalog().section(event.section());
        let mut flows = Vec::new();
        let mut deliveries = Vec::new();
        for found in router.matches(event) {
            let flow = found.flow;
            let built = match section {
                Some(section) => flow
                    .webhook
                    .build_request_in(section, &flow.id, profile, event, now),
                None => flow.webhook.build_request(&flow.id, profile, event, now),
            };
            let result = match built {
                Err(error) => FlowResult::NotBuilt(error),
                Ok(built) => {
                    let request = EntryRequest {
                        flow: &flow.id,
                        profile: event.profile(),
                        event: event.id(),
                    };
                    let decision = self
                        .ledger
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .try_enter(request, flow.settings.entry_limit, now);
                    match decision {
                        EntryDecision::Entered { .. } => {
                            let webhook_id = built.webhook_id().as_str().to_owned();
                            deliveries.push(Delivery::new(
                                webhook_id.clone(),
                                flow.id.clone(),
                                event.id().clone(),
                                built.into_request(),
                                now,
                            ));
                            FlowResult::Entered { webhook_id }
                        }
                        refused => FlowResult::Refused(refused),
                    }
                }
            };
            #[cfg(feature = "tracing")]
            match &result {
                FlowResult::Entered { webhook_id } => {
                    tracing::info!(flow = %flow.id, webhook_id = %webhook_id, "entered");
                }
                FlowResult::Refused(decision) => {
                    tracing::info!(flow = %flow.id, decision = ?decision, "not entered");
                }
                FlowResult::NotBuilt(error) => {
                    tracing::warn!(flow = %flow.id, error = %error, "request not built");
                }
            }
            flows.push(FlowEntry {
                flow: flow.id.clone(),
                result,
            });
        }
        (
            Submitted {
                event: event.id().clone(),
                flows,
            },
            deliveries,
        )
    }

    /// A handle that stops the worker while other tasks may still be submitting.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: Arc::clone(&self.stop),
        }
    }

    /// Stops taking events, lets the attempts in flight finish (their outcomes are sent), and
    /// hands back every delivery still waiting, with the ledger.
    pub async fn shutdown(self) -> Stopped<L> {
        self.stop_with(StopMode::Drain).await
    }

    /// Stops at once: attempts in flight are abandoned and handed back as pending with the rest
    /// (an abandoned attempt may have reached the receiver; resuming sends it again with the same
    /// `webhook-id`, which the receiver de-duplicates).
    pub async fn abort(self) -> Stopped<L> {
        self.stop_with(StopMode::Abort).await
    }

    async fn stop_with(self, mode: StopMode) -> Stopped<L> {
        // Abort overrides an earlier Drain; Drain does not override Abort.
        self.stop.send_if_modified(|current| {
            let changed = *current != Some(StopMode::Abort) && *current != Some(mode);
            if changed {
                *current = Some(mode);
            }
            changed
        });
        // The scheduler hands back what waits for a retry and ends.
        if let Err(error) = self.scheduler.await {
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic());
            }
        }
        // The sender tasks end after their attempt in flight (or at once on abort).
        for lane in self.lanes {
            if let Err(error) = lane.await {
                if error.is_panic() {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
        // What still waits in the ready queue is pending too.
        let waiting: Vec<Delivery> = self
            .shared
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for delivery in waiting {
            self.shared.hand_back(delivery);
        }
        let mut pending = std::mem::take(
            &mut *self
                .shared
                .handed_back
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        pending.sort_by(|a, b| {
            (a.next_attempt_at(), a.webhook_id()).cmp(&(b.next_attempt_at(), b.webhook_id()))
        });
        Stopped {
            pending,
            ledger: self
                .ledger
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }
}

/// Where outcomes go: a channel the host reads, or a callback the worker calls.
enum Sink {
    Unbounded(mpsc::UnboundedSender<Outcome>),
    Bounded(mpsc::Sender<Outcome>),
    Callback(Box<dyn Fn(Outcome) + Send + Sync>),
}

/// The [`Outcome`] of every delivery, from [`WorkerBuilder::start`].
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
    policy: RetryPolicy,
    destinations: DestinationPolicy,
    /// SplitMix64 state for jitter.
    jitter: AtomicU64,
    /// Deliveries due now, waiting for a sender task.
    ready: Mutex<VecDeque<Delivery>>,
    /// The places in `ready`, and the number of sender tasks.
    capacity: usize,
    /// Wakes a sender task when a delivery is ready.
    work: Notify,
    /// Wakes the tasks waiting for a place in `ready` when it is half empty.
    space: Notify,
    outcomes: Sink,
    /// Deliveries waiting for a retry, to the scheduler.
    retries: mpsc::UnboundedSender<Delivery>,
    stop: watch::Receiver<Option<StopMode>>,
    /// Deliveries handed back while stopping.
    handed_back: Mutex<Vec<Delivery>>,
}

impl Shared {
    fn stopping(&self) -> Option<StopMode> {
        *self.stop.borrow()
    }

    fn hand_back(&self, delivery: Delivery) {
        self.handed_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(delivery);
    }

    /// Queues `delivery` for its next attempt time (the scheduler starts it then).
    fn retry(&self, delivery: Delivery) {
        if self.stopping().is_some() {
            return self.hand_back(delivery);
        }
        if let Err(refused) = self.retries.send(delivery) {
            self.hand_back(refused.0);
        }
    }

    /// Waits for a place in the ready queue and puts the delivery there. Gives the delivery back
    /// when the worker is stopping.
    async fn launch(&self, delivery: Delivery) -> Result<(), Delivery> {
        let mut stop = self.stop.clone();
        loop {
            if self.stopping().is_some() {
                return Err(delivery);
            }
            let space = self.space.notified();
            tokio::pin!(space);
            // Registered before looking, so that a wake between the look and the wait is kept.
            space.as_mut().enable();
            {
                let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
                if ready.len() < self.capacity {
                    ready.push_back(delivery);
                    drop(ready);
                    self.work.notify_one();
                    return Ok(());
                }
            }
            tokio::select! {
                () = &mut space => {}
                _ = stop.wait_for(Option::is_some) => return Err(delivery),
            }
        }
    }

    /// A sender task: takes ready deliveries one at a time and makes their attempt, until the
    /// worker stops.
    async fn lane(self: Arc<Self>) {
        let mut stop = self.stop.clone();
        let half = self.capacity / 2;
        loop {
            if self.stopping().is_some() {
                return;
            }
            let work = self.work.notified();
            tokio::pin!(work);
            work.as_mut().enable();
            let next = {
                let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
                let next = ready.pop_front();
                (next, ready.len())
            };
            match next {
                (Some(delivery), left) => {
                    if left == half {
                        // Wake the submitters once per half queue, not once per delivery.
                        self.space.notify_waiters();
                    }
                    self.attempt(delivery).await;
                }
                (None, _) => {
                    tokio::select! {
                        () = &mut work => {}
                        _ = stop.wait_for(Option::is_some) => return,
                    }
                }
            }
        }
    }

    fn next_random(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let state = self
            .jitter
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        crate::webhook::sign::mix(state)
    }

    /// One attempt: sign for now, send, record, then the outcome or the retry queue.
    async fn attempt(&self, mut delivery: Delivery) {
        let mut request = delivery.request().clone();
        let blocked = request
            .uri()
            .host()
            .and_then(|host| self.destinations.check_host(host).err());
        let started = Timestamp::now();
        if let Some(flow) = self.router.flow(delivery.flow()) {
            flow.webhook.sign_request(&mut request, started);
        }
        let send = async {
            #[cfg(feature = "tracing")]
            tracing::debug!("attempt started");
            let mut sending = self.client.send(request);
            // A panicking transport is a failed attempt, not a lost delivery.
            std::future::poll_fn(|cx| {
                match std::panic::catch_unwind(AssertUnwindSafe(|| sending.as_mut().poll(cx))) {
                    Ok(poll) => poll,
                    Err(_) => Poll::Ready(Err(TransportError::new(
                        TransportErrorKind::Other,
                        "the transport panicked",
                    ))),
                }
            })
            .await
        };
        #[cfg(feature = "tracing")]
        let send = tracing::Instrument::instrument(
            send,
            tracing::info_span!(
                "optout.send",
                flow = %delivery.flow(),
                webhook_id = delivery.webhook_id(),
                attempt = delivery.attempts().len() + 1,
            ),
        );
        let mut stop = self.stop.clone();
        let result = tokio::select! {
            biased;
            () = std::future::ready(()), if blocked.is_some() => Err(TransportError::new(
                TransportErrorKind::Blocked,
                format!(
                    "refused by the destination policy: the destination is {}",
                    blocked.unwrap_or(BlockReason::NoAllowedAddress)
                ),
            )),
            result = send => result,
            _ = stop.wait_for(|mode| *mode == Some(StopMode::Abort)) => {
                return self.hand_back(delivery);
            }
        };
        let step = delivery.record(
            result.as_ref(),
            started,
            Timestamp::now(),
            &self.policy,
            self.next_random(),
        );
        #[cfg(feature = "tracing")]
        tracing::info!(
            flow = %delivery.flow(),
            webhook_id = delivery.webhook_id(),
            attempts = delivery.attempts().len(),
            outcome = ?delivery.attempts().last().map(|a| match &a.outcome {
                crate::delivery::AttemptOutcome::Response { status, .. } => status.to_string(),
                crate::delivery::AttemptOutcome::Error { kind, .. } => kind.to_string(),
            }),
            step = ?step,
            "attempt recorded"
        );
        match step {
            Step::Delivered => self.report(Outcome::Delivered(delivery)).await,
            Step::DeadLetter { .. } => self.report(Outcome::DeadLettered(delivery)).await,
            Step::RetryAt { .. } => self.retry(delivery),
        }
    }

    /// Hands an outcome to the host, waiting while the channel is full. On abort, a delivery
    /// whose outcome cannot be reported is handed back (its state says how it ended), so that
    /// nothing is lost.
    async fn report(&self, outcome: Outcome) {
        let channel = match &self.outcomes {
            Sink::Callback(callback) => return callback(outcome),
            // The host may have dropped the receiver: it no longer wants outcomes.
            Sink::Unbounded(channel) => return drop(channel.send(outcome)),
            Sink::Bounded(channel) => channel,
        };
        let outcome = match channel.try_send(outcome) {
            Ok(()) => return,
            // The host dropped the receiver: it no longer wants outcomes.
            Err(mpsc::error::TrySendError::Closed(_)) => return,
            Err(mpsc::error::TrySendError::Full(outcome)) => outcome,
        };
        let permit = {
            let mut stop = self.stop.clone();
            tokio::select! {
                permit = channel.reserve() => permit,
                _ = stop.wait_for(|mode| *mode == Some(StopMode::Abort)) => {
                    let (Outcome::Delivered(delivery) | Outcome::DeadLettered(delivery)) = outcome;
                    return self.hand_back(delivery);
                }
            }
        };
        if let Ok(permit) = permit {
            permit.send(outcome);
        }
    }

    /// The scheduler: holds deliveries waiting for a retry and launches each when it is due.
    async fn schedule(self: Arc<Self>, mut retries: mpsc::UnboundedReceiver<Delivery>) {
        let mut queue: BinaryHeap<Reverse<Queued>> = BinaryHeap::new();
        let mut sequence = 0u64;
        let mut stop = self.stop.clone();
        loop {
            let now = Timestamp::now();
            while queue.peek().is_some_and(|Reverse(q)| q.due <= now) {
                let Some(Reverse(queued)) = queue.pop() else {
                    break;
                };
                if let Err(delivery) = self.launch(queued.delivery).await {
                    self.hand_back(delivery);
                }
            }
            let sleep = queue.peek().map(|Reverse(q)| {
                std::time::Duration::try_from(q.due.duration_since(now)).unwrap_or_default()
            });
            let received = tokio::select! {
                biased;
                _ = stop.wait_for(Option::is_some) => break,
                delivery = retries.recv() => match delivery {
                    Some(delivery) => Some(delivery),
                    None => break,
                },
                () = sleep_for(sleep), if sleep.is_some() => None,
            };
            if let Some(delivery) = received {
                match delivery.next_attempt_at() {
                    Some(due) => {
                        sequence += 1;
                        queue.push(Reverse(Queued {
                            due,
                            sequence,
                            delivery,
                        }));
                    }
                    None => self.finished(delivery).await,
                }
            }
        }
        // Stopping: everything waiting is handed back, including what is still in the channel.
        retries.close();
        while let Ok(delivery) = retries.try_recv() {
            self.hand_back(delivery);
        }
        for Reverse(queued) in queue {
            self.hand_back(queued.delivery);
        }
    }

    /// A resumed delivery that had already ended: report its outcome again.
    async fn finished(&self, delivery: Delivery) {
        let outcome = match delivery.state() {
            DeliveryState::Delivered { .. } => Outcome::Delivered(delivery),
            _ => Outcome::DeadLettered(delivery),
        };
        self.report(outcome).await;
    }
}

/// A delivery waiting in the queue, ordered by due time, then by arrival.
struct Queued {
    due: Timestamp,
    sequence: u64,
    delivery: Delivery,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

async fn sleep_for(duration: Option<std::time::Duration>) {
    if let Some(duration) = duration {
        tokio::time::sleep(duration).await;
    }
}
