//! Stopping the worker: the signal its tasks watch, the [`Stopper`] handle and what a stopped
//! worker reports.

use std::sync::Arc;

use tokio::sync::watch;

/// How the worker stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopMode {
    /// Let in-flight attempts finish, then stop.
    Drain,
    /// Stop now; in-flight attempts are abandoned and their claims released.
    Abort,
}

/// What the worker's tasks watch: `None` while it runs.
pub(super) type StopSignal = watch::Receiver<Option<StopMode>>;

/// What sets the [`StopSignal`].
pub(super) type StopSender = Arc<watch::Sender<Option<StopMode>>>;

/// A new signal, not set.
pub(super) fn stop_signal() -> (StopSender, StopSignal) {
    let (sender, signal) = watch::channel(None);
    (Arc::new(sender), signal)
}

/// Completes once the worker is stopping (shut down, stopped or aborted).
pub(super) async fn stopped(signal: &StopSignal) {
    let mut signal = signal.clone();
    let _ = signal.wait_for(Option::is_some).await;
}

/// Completes once the worker is aborted.
pub(super) async fn aborted(signal: &StopSignal) {
    let mut signal = signal.clone();
    let _ = signal.wait_for(|mode| *mode == Some(StopMode::Abort)).await;
}

/// Sets the signal to `mode`: Abort overrides an earlier Drain; Drain does not override Abort.
pub(super) fn request_stop(sender: &StopSender, mode: StopMode) {
    sender.send_if_modified(|current| {
        let changed = *current != Some(StopMode::Abort) && *current != Some(mode);
        if changed {
            *current = Some(mode);
        }
        changed
    });
}

/// What a stopped worker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct Stopped {
    /// Attempts that were under way and were abandoned (on [`Worker::abort`]); their
    /// deliveries stay pending in the store.
    ///
    /// [`Worker::abort`]: super::Worker::abort
    pub abandoned: usize,
}

/// Stops a [`Worker`] from anywhere (a signal handler, another task) while other tasks may still
/// be submitting: from then on [`Worker::submit`] fails with [`SubmitError::Stopped`], attempts
/// in flight finish, and nothing new is claimed.
///
/// [`Worker`]: super::Worker
/// [`Worker::submit`]: super::Worker::submit
/// [`SubmitError::Stopped`]: super::SubmitError::Stopped
#[derive(Debug, Clone)]
pub struct Stopper {
    pub(super) stop: StopSender,
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
