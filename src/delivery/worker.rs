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
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::delivery::{Delivery, DeliveryState, RetryPolicy, Step};
use crate::error::RequestBuildError;
use crate::listen::{EntryDecision, EntryLedger, EntryRequest, InMemoryLedger, Router};
use crate::model::{EventId, FlowId, OptOutEvent, Profile};
use crate::transport::{HttpClient, TransportError, TransportErrorKind};

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

/// The worker stopped.
#[derive(Debug, thiserror::Error)]
#[error("the worker has stopped")]
pub struct WorkerStopped;

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

enum Command {
    Submit {
        event: OptOutEvent,
        profile: Box<Profile>,
        reply: oneshot::Sender<Submitted>,
    },
    Resume(Box<Delivery>),
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
        }
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The most attempts in flight at once (default 64, at least 1). New events are taken only
    /// while there is room, so memory stays bounded however fast events arrive.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// The seed of the jitter source (default 0): the same seed gives the same jitter sequence.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Deliveries handed back by an earlier worker ([`Stopped::pending`]), to carry on with.
    pub fn resume(mut self, deliveries: impl IntoIterator<Item = Delivery>) -> Self {
        self.resume.extend(deliveries);
        self
    }

    /// Starts the worker on the current tokio runtime. Returns the handle and the stream of
    /// [`Outcome`]s (unbounded, so that no outcome is ever dropped: read it).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn start(self) -> (Worker<L>, mpsc::UnboundedReceiver<Outcome>) {
        let (commands, command_rx) = mpsc::channel(16);
        let (outcomes, outcome_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = oneshot::channel();
        let mut engine = Engine {
            router: self.router,
            client: self.client,
            ledger: self.ledger,
            policy: self.policy,
            max_in_flight: self.max_in_flight,
            jitter: SplitMix64(self.seed),
            queue: BinaryHeap::new(),
            sequence: 0,
            in_flight: HashMap::new(),
            tasks: JoinSet::new(),
            outcomes,
        };
        for delivery in self.resume {
            engine.enqueue(delivery);
        }
        let task = tokio::spawn(engine.run(command_rx, stop_rx));
        (
            Worker {
                commands,
                stop: Some(stop),
                task,
            },
            outcome_rx,
        )
    }
}

/// The async worker: takes events with their Profiles, routes them, builds, sends, sleeps and
/// retries; every delivery ends as exactly one [`Outcome`], and [`shutdown`](Self::shutdown)
/// hands back every delivery still pending.
///
/// Each attempt of a signed flow is signed anew with the time of the attempt (receivers accept
/// timestamps within minutes of their clock); the `webhook-id` stays the same.
pub struct Worker<L> {
    commands: mpsc::Sender<Command>,
    stop: Option<oneshot::Sender<StopMode>>,
    task: tokio::task::JoinHandle<Stopped<L>>,
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
        }
    }
}

impl<L: Send + 'static> Worker<L> {
    /// Routes `event` (of `profile`) and starts a delivery for every flow it enters. Waits while
    /// the worker is at its in-flight limit.
    ///
    /// # Errors
    ///
    /// [`WorkerStopped`] when the worker has stopped (the event was not taken).
    pub async fn submit(
        &self,
        event: OptOutEvent,
        profile: Profile,
    ) -> Result<Submitted, WorkerStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Submit {
                event,
                profile: Box::new(profile),
                reply,
            })
            .await
            .map_err(|_| WorkerStopped)?;
        answer.await.map_err(|_| WorkerStopped)
    }

    /// Carries on with a delivery handed back by an earlier worker.
    ///
    /// # Errors
    ///
    /// [`WorkerStopped`] when the worker has stopped (the delivery was not taken).
    pub async fn resume(&self, delivery: Delivery) -> Result<(), WorkerStopped> {
        self.commands
            .send(Command::Resume(Box::new(delivery)))
            .await
            .map_err(|_| WorkerStopped)
    }

    /// Stops taking events, lets the attempts in flight finish (their outcomes are sent), and
    /// hands back every delivery still waiting for a retry.
    pub async fn shutdown(self) -> Stopped<L> {
        self.stop_with(StopMode::Drain).await
    }

    /// Stops at once: attempts in flight are abandoned and handed back as pending with the rest
    /// (an abandoned attempt may have reached the receiver; resuming sends it again with the same
    /// `webhook-id`, which the receiver de-duplicates).
    pub async fn abort(self) -> Stopped<L> {
        self.stop_with(StopMode::Abort).await
    }

    async fn stop_with(mut self, mode: StopMode) -> Stopped<L> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(mode);
        }
        match (&mut self.task).await {
            Ok(stopped) => stopped,
            // The engine does not panic on input; a panic here is a bug worth surfacing.
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

/// A small, fast, seedable random source for jitter (SplitMix64).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
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

type AttemptResult = (
    Timestamp,
    Timestamp,
    Result<http::Response<Vec<u8>>, TransportError>,
);

struct Engine<L> {
    router: Arc<Router>,
    client: Arc<dyn HttpClient>,
    ledger: L,
    policy: RetryPolicy,
    max_in_flight: usize,
    jitter: SplitMix64,
    queue: BinaryHeap<Reverse<Queued>>,
    sequence: u64,
    in_flight: HashMap<tokio::task::Id, Delivery>,
    tasks: JoinSet<AttemptResult>,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

impl<L: EntryLedger + Send + 'static> Engine<L> {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: oneshot::Receiver<StopMode>,
    ) -> Stopped<L> {
        let mut taking = true;
        loop {
            let now = Timestamp::now();
            self.start_due(now);
            let due_waiting = self.queue.peek().is_some_and(|Reverse(q)| q.due <= now);
            let room = self.in_flight.len() < self.max_in_flight && !due_waiting;
            let sleep = self.queue.peek().map(|Reverse(q)| {
                std::time::Duration::try_from(q.due.duration_since(now)).unwrap_or_default()
            });
            tokio::select! {
                biased;
                mode = &mut stop, if taking => {
                    match mode.unwrap_or(StopMode::Drain) {
                        StopMode::Abort => return self.stopped(),
                        StopMode::Drain => {
                            taking = false;
                            commands.close();
                        }
                    }
                }
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finish(joined);
                }
                command = commands.recv(), if taking && room => {
                    match command {
                        Some(Command::Submit { event, profile, reply }) => {
                            let submitted = self.submit(&event, &profile, now);
                            let _ = reply.send(submitted);
                        }
                        Some(Command::Resume(delivery)) => self.enqueue(*delivery),
                        // Every handle is gone: nobody can stop the worker any more, so drain.
                        None => taking = false,
                    }
                }
                () = sleep_for(sleep), if sleep.is_some() && self.in_flight.len() < self.max_in_flight => {}
            }
            if !taking && self.tasks.is_empty() {
                return self.stopped();
            }
        }
    }

    fn stopped(mut self) -> Stopped<L> {
        self.tasks.abort_all();
        let mut pending: Vec<Delivery> = self.in_flight.drain().map(|(_, d)| d).collect();
        pending.extend(self.queue.drain().map(|Reverse(q)| q.delivery));
        pending.sort_by(|a, b| {
            (a.next_attempt_at(), a.webhook_id()).cmp(&(b.next_attempt_at(), b.webhook_id()))
        });
        Stopped {
            pending,
            ledger: self.ledger,
        }
    }

    fn enqueue(&mut self, delivery: Delivery) {
        match delivery.state() {
            DeliveryState::Pending { next_attempt_at } => {
                self.sequence += 1;
                self.queue.push(Reverse(Queued {
                    due: *next_attempt_at,
                    sequence: self.sequence,
                    delivery,
                }));
            }
            DeliveryState::Delivered { .. } => {
                let _ = self.outcomes.send(Outcome::Delivered(delivery));
            }
            DeliveryState::DeadLettered { .. } => {
                let _ = self.outcomes.send(Outcome::DeadLettered(delivery));
            }
        }
    }

    fn submit(&mut self, event: &OptOutEvent, profile: &Profile, now: Timestamp) -> Submitted {
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!(
            "optout.route",
            event = %event.id(),
            kind = event.kind().as_str(),
            section = %event.section(),
            origin = event.origin().as_str(),
        )
        .entered();
        let router = Arc::clone(&self.router);
        let section = router.catalog().section(event.section());
        let mut flows = Vec::new();
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
                    match self
                        .ledger
                        .try_enter(request, flow.settings.entry_limit, now)
                    {
                        EntryDecision::Entered { .. } => {
                            let webhook_id = built.webhook_id().as_str().to_owned();
                            self.enqueue(Delivery::new(
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
        Submitted {
            event: event.id().clone(),
            flows,
        }
    }

    /// Starts every due delivery there is room for.
    fn start_due(&mut self, now: Timestamp) {
        while self.in_flight.len() < self.max_in_flight {
            match self.queue.peek() {
                Some(Reverse(q)) if q.due <= now => {}
                _ => return,
            }
            let Some(Reverse(queued)) = self.queue.pop() else {
                return;
            };
            let delivery = queued.delivery;
            let mut request = delivery.request().clone();
            if let Some(flow) = self.router.flow(delivery.flow()) {
                flow.webhook.sign_request(&mut request, now);
            }
            let client = Arc::clone(&self.client);
            let attempt = async move {
                let started = Timestamp::now();
                #[cfg(feature = "tracing")]
                tracing::debug!("attempt started");
                let result = client.send(request).await;
                (started, Timestamp::now(), result)
            };
            #[cfg(feature = "tracing")]
            let attempt = tracing::Instrument::instrument(
                attempt,
                tracing::info_span!(
                    "optout.send",
                    flow = %delivery.flow(),
                    webhook_id = delivery.webhook_id(),
                    attempt = delivery.attempts().len() + 1,
                ),
            );
            let handle = self.tasks.spawn(attempt);
            self.in_flight.insert(handle.id(), delivery);
        }
    }

    fn finish(&mut self, joined: Result<(tokio::task::Id, AttemptResult), tokio::task::JoinError>) {
        let (id, (started, ended, result)) = match joined {
            Ok(done) => done,
            Err(error) => {
                let now = Timestamp::now();
                let failure = TransportError::new(
                    TransportErrorKind::Other,
                    "the transport panicked or was cancelled",
                );
                (error.id(), (now, now, Err(failure)))
            }
        };
        let Some(mut delivery) = self.in_flight.remove(&id) else {
            return;
        };
        let step = delivery.record(
            result.as_ref(),
            started,
            ended,
            &self.policy,
            self.jitter.next(),
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
            Step::Delivered => {
                let _ = self.outcomes.send(Outcome::Delivered(delivery));
            }
            Step::DeadLetter { .. } => {
                let _ = self.outcomes.send(Outcome::DeadLettered(delivery));
            }
            Step::RetryAt { .. } => self.enqueue(delivery),
        }
    }
}

async fn sleep_for(duration: Option<std::time::Duration>) {
    if let Some(duration) = duration {
        tokio::time::sleep(duration).await;
    }
}
