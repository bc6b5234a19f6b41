//! What the worker reports ([`Outcome`]), the channel a host reads them from ([`Outcomes`]),
//! and the hand-over of each outcome to the host.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::stop::{StopSignal, stopped};
use crate::delivery::Delivery;
use crate::health::EndpointChange;
use crate::listen::EntryDecision;
use crate::model::{EventId, FlowId, ProfileId};
use crate::webhook::RequestBuildError;

/// What the worker reports: the end of each delivery its attempts ended, and each flow that an
/// event submitted to it matched but did not enter.
///
/// A host that reads only this stream sees every decision: `Delivered` and `DeadLettered` once
/// the store has recorded the attempt that ended the delivery, `Refused` and `NotBuilt` once
/// [`Worker::submit`] has the store's answer (before `submit` returns, in flow order; the same
/// decisions are in its [`Submitted`]).
///
/// [`Worker::submit`]: super::Worker::submit
/// [`Submitted`]: crate::relay::Submitted
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
    /// An endpoint's state changed (the circuit opened or closed, the endpoint was paused or
    /// resumed) with an attempt this worker recorded: what a host alerts on.
    EndpointChanged(EndpointChange),
}

impl Outcome {
    /// The delivery, in its final state; `None` for an event that did not enter its flow and
    /// for an endpoint's change.
    pub fn delivery(&self) -> Option<&Delivery> {
        match self {
            Self::Delivered(d) | Self::DeadLettered(d) => Some(d),
            Self::Refused { .. } | Self::NotBuilt { .. } | Self::EndpointChanged(_) => None,
        }
    }

    /// The flow the outcome is about; `None` for an endpoint's change.
    pub fn flow(&self) -> Option<&FlowId> {
        match self {
            Self::Delivered(d) | Self::DeadLettered(d) => Some(d.flow()),
            Self::Refused { flow, .. } | Self::NotBuilt { flow, .. } => Some(flow),
            Self::EndpointChanged(_) => None,
        }
    }

    /// The event the outcome is about; `None` for an endpoint's change.
    pub fn event(&self) -> Option<&EventId> {
        match self {
            Self::Delivered(d) | Self::DeadLettered(d) => Some(d.event()),
            Self::Refused { event, .. } | Self::NotBuilt { event, .. } => Some(event),
            Self::EndpointChanged(_) => None,
        }
    }
}

/// The [`Outcome`] of every delivery the worker ends, and of every flow a submitted event did
/// not enter, from [`WorkerBuilder::start`]: unbounded by default, bounded with
/// [`WorkerBuilder::outcome_capacity`].
///
/// [`WorkerBuilder::start`]: super::WorkerBuilder::start
/// [`WorkerBuilder::outcome_capacity`]: super::WorkerBuilder::outcome_capacity
#[derive(Debug)]
pub struct Outcomes {
    receiver: Receiver,
}

/// The receiving end of the outcome channel.
#[derive(Debug)]
enum Receiver {
    /// The default: never makes the worker wait.
    Unbounded(mpsc::UnboundedReceiver<Outcome>),
    /// From `WorkerBuilder::outcome_capacity`.
    Bounded(mpsc::Receiver<Outcome>),
}

impl Outcomes {
    /// A channel of outcomes: bounded to `capacity` waiting outcomes, or unbounded.
    pub(super) fn channel(capacity: Option<usize>) -> (Sink, Self) {
        match capacity {
            Some(capacity) => {
                let (sender, receiver) = mpsc::channel(capacity);
                (
                    Sink::Bounded(sender),
                    Self {
                        receiver: Receiver::Bounded(receiver),
                    },
                )
            }
            None => {
                let (sender, receiver) = mpsc::unbounded_channel();
                (
                    Sink::Unbounded(sender),
                    Self {
                        receiver: Receiver::Unbounded(receiver),
                    },
                )
            }
        }
    }

    /// The next outcome; `None` once the worker has stopped and every outcome was read.
    pub async fn recv(&mut self) -> Option<Outcome> {
        match &mut self.receiver {
            Receiver::Unbounded(receiver) => receiver.recv().await,
            Receiver::Bounded(receiver) => receiver.recv().await,
        }
    }

    /// The next outcome if one is waiting.
    pub fn try_recv(&mut self) -> Option<Outcome> {
        match &mut self.receiver {
            Receiver::Unbounded(receiver) => receiver.try_recv().ok(),
            Receiver::Bounded(receiver) => receiver.try_recv().ok(),
        }
    }
}

/// Where outcomes go: a channel the host reads, or a callback the worker calls.
pub(super) enum Sink {
    Unbounded(mpsc::UnboundedSender<Outcome>),
    Bounded(mpsc::Sender<Outcome>),
    Callback(Box<dyn Fn(Outcome) + Send + Sync>),
}

impl Sink {
    /// Hands an outcome to the host if that needs no wait: a callback is called, a channel
    /// sent to. Gives the outcome back only when a bounded channel is full.
    fn hand_over(&self, outcome: Outcome) -> Option<Outcome> {
        match self {
            Self::Callback(callback) => {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| callback(outcome)));
            }
            // The host may have dropped the receiver: it no longer wants outcomes.
            Self::Unbounded(channel) => drop(channel.send(outcome)),
            Self::Bounded(channel) => match channel.try_send(outcome) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(outcome)) => return Some(outcome),
            },
        }
        None
    }

    /// Hands an outcome to the host without waiting: one that finds a bounded channel full
    /// goes to a task that waits for room (as [`Sink::report`] does).
    pub(super) fn report_at_once(self: &Arc<Self>, outcome: Outcome, stop: &StopSignal) {
        if let Some(outcome) = self.hand_over(outcome) {
            let sink = Arc::clone(self);
            let stop = stop.clone();
            tokio::spawn(async move { sink.report(outcome, &stop).await });
        }
    }

    /// Hands an outcome to the host. The delivery's end is already in the store, so a callback
    /// that panics, or a host that stopped reading, loses nothing.
    pub(super) async fn report(&self, outcome: Outcome, stop: &StopSignal) {
        let Some(outcome) = self.hand_over(outcome) else {
            return;
        };
        // Waits while the channel is full, until the worker is stopped: a host that stopped
        // reading must not hold shutdown() forever.
        if let Self::Bounded(channel) = self {
            tokio::select! {
                biased;
                _ = channel.send(outcome) => {}
                () = stopped(stop) => {}
            }
        }
    }
}
