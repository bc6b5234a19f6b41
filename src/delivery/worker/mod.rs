//! The async worker (feature `tokio`): a thin shell over the pure [`relay`](crate::relay) core
//! and a [`DeliveryStore`]. It holds no state that is not also in the store.
//!
//! - [`Worker::submit`] plans the event ([`relay::plan`](crate::relay::plan)) in the caller's
//!   task and returns once the store has committed the entries and deliveries.
//! - One scheduler task claims due deliveries from the store (as many as there are free
//!   places among `max_in_flight`), and each claimed delivery gets one attempt task:
//!   [`relay::prepare_attempt`](crate::relay::prepare_attempt), the [`HttpClient`],
//!   [`Delivery::record`], then the store (fenced by the claim). A retry stays in the store
//!   until it is due; memory holds at most `max_in_flight` deliveries, however many are pending.
//! - The scheduler sleeps until the next due time, a local submit, or (PostgreSQL) a
//!   notification from another process, and never longer than the poll interval.
//!
//! With the `tracing` feature the worker emits spans `optout.route` (per event) and
//! `optout.send` (per attempt) and events for each flow's entry and each attempt's next step.
//! Their fields are ids, kinds, statuses and times: never Email, Mobile, attribute values, URLs or
//! bodies.
//!
//! The files: this one holds the [`Worker`] handle (submit, stop); `builder` its settings;
//! `outcome` what it reports and the hand-over to the host; `scheduler` the task that claims
//! due work; `sender` each attempt; `jitter` the random numbers of retry delays; `stop` the
//! stop signal; `shared` what the tasks share.
//!
//! [`DeliveryStore`]: crate::store::DeliveryStore
//! [`HttpClient`]: crate::transport::HttpClient
//! [`Delivery::record`]: crate::delivery::Delivery::record

mod builder;
mod jitter;
mod outcome;
mod scheduler;
mod sender;
mod shared;
mod stop;

use std::sync::Arc;

use tokio::task::JoinHandle;

pub use builder::WorkerBuilder;
pub use outcome::{Outcome, Outcomes};
pub use stop::{Stopped, Stopper};

use crate::model::{OptOutEvent, Profile};
use crate::relay::{self, FlowResult, Submitted};
use crate::store::StoreError;
use shared::Shared;
use stop::{StopMode, StopSender, request_stop};

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

/// The async worker: takes events with their Profiles, has the store admit them (durably), and
/// delivers what the store holds, retrying as the [`RetryPolicy`] says.
///
/// [`RetryPolicy`]: crate::delivery::RetryPolicy
///
/// Each attempt of a signed flow carries a signature made within the second it is sent; the
/// `webhook-id` stays the same on every attempt, in every process.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use optout_relay::*;
/// use optout_relay::webhook::ParamSource;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let flow = Flow::new(
///     FlowId::new("crm")?, SectionId::new("sec-1")?,
///     ListenNode::new([EventKind::EmailUnsubscribe])?,
///     WebhookNode::builder("https://crm.example.com/optout").param("email", ParamSource::Email).build()?,
/// );
/// let router = Router::new([flow], &Catalog::default())?;
/// // The transport: any HttpClient (ReqwestClient, feature `reqwest`, for real); here a
/// // closure that counts the requests and answers 200.
/// let sent = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&sent);
/// let client = client_fn(move |_request| {
///     counter.fetch_add(1, Ordering::SeqCst);
///     async { Ok(http::Response::new(Vec::new())) }
/// });
/// let store = VolatileStore::new(); // SqliteStore or PostgresStore survive a crash
/// let (worker, mut outcomes) = Worker::builder(router, client, store).start();
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
/// assert_eq!(sent.load(Ordering::SeqCst), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?; Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Worker {
    shared: Arc<Shared>,
    stop: StopSender,
    /// The scheduler task; it returns how many attempts were abandoned.
    scheduler: JoinHandle<usize>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

impl Worker {
    /// Plans `event` (of `profile`) at the worker's current time ([`WorkerBuilder::clock`]), has
    /// the store admit it, and wakes the scheduler. Returns once the store has committed: every
    /// delivery of an `Entered` flow is then as durable as the store. Each flow the event
    /// matched but did not enter is also reported as an [`Outcome::Refused`] or
    /// [`Outcome::NotBuilt`], in flow order, before this returns (and before the scheduler is
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
        #[cfg(feature = "metrics")]
        let endpoints: Vec<(crate::model::FlowId, crate::health::Endpoint)> = plan
            .candidates
            .iter()
            .map(|candidate| (candidate.flow.clone(), candidate.delivery.endpoint()))
            .collect();
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
        #[cfg(feature = "metrics")]
        for entry in &submitted.flows {
            if let FlowResult::Entered { .. } = entry.result {
                if let Some((_, endpoint)) = endpoints.iter().find(|(flow, _)| *flow == entry.flow)
                {
                    crate::metrics::admitted(endpoint);
                }
            }
        }
        // Reported before the scheduler is woken, and without waiting: submit never waits on
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
            self.shared
                .outcomes
                .report_at_once(outcome, &self.shared.stop);
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
        request_stop(&self.stop, mode);
        let abandoned = self.scheduler.await.unwrap_or(0);
        Stopped { abandoned }
    }
}
