//! The scheduler task: claims due deliveries from the store while there are free places among
//! `max_in_flight`, gives each its attempt task, and sleeps until the next due time, a local
//! submit, or (PostgreSQL) a notification from another process, never longer than the poll
//! interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::sender::Ended;
use super::shared::Shared;

impl Shared {
    /// The scheduler: claims due work while there is room, sleeps when there is none. Returns
    /// how many attempts were abandoned when it stopped.
    pub(super) async fn schedule(self: Arc<Self>) -> usize {
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
}
