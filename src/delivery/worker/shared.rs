//! What the worker's tasks share: the handle, the scheduler and every attempt.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;

use super::jitter::Jitter;
use super::outcome::Sink;
use super::stop::{StopMode, StopSignal};
use crate::delivery::RetryPolicy;
use crate::listen::Router;
use crate::store::DeliveryStore;
use crate::transport::HttpClient;

/// The worker's clock.
pub(super) type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// What the worker's tasks share.
pub(super) struct Shared {
    pub(super) router: Arc<Router>,
    pub(super) client: Arc<dyn HttpClient>,
    pub(super) store: Arc<dyn DeliveryStore>,
    pub(super) policy: RetryPolicy,
    pub(super) jitter: Jitter,
    pub(super) max_in_flight: usize,
    pub(super) lease: Duration,
    pub(super) poll: Duration,
    pub(super) clock: Clock,
    /// Wakes the scheduler: a submit stored work, or an attempt ended.
    pub(super) work: Notify,
    pub(super) outcomes: Arc<Sink>,
    pub(super) stop: StopSignal,
}

impl Shared {
    /// How the worker is stopping, if it is.
    pub(super) fn stopping(&self) -> Option<StopMode> {
        *self.stop.borrow()
    }
}
