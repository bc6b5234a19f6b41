//! An attempt task: prepares the claimed delivery's request, sends it, records the result in
//! the delivery and the store (fenced by the claim), and reports the delivery's end.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::outcome::Outcome;
use super::shared::Shared;
use super::stop::aborted;
use crate::delivery::Step;
use crate::relay;
use crate::store::Claim;
use crate::transport::{TransportError, TransportErrorKind};

/// Whether an attempt task ended its claim or abandoned it.
pub(super) enum Ended {
    Recorded,
    Abandoned,
}

impl Shared {
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
    pub(super) async fn attempt(self: Arc<Self>, claim: Claim) -> Ended {
        let Claim {
            mut delivery,
            token,
        } = claim;
        let started = (self.clock)();
        #[cfg(feature = "metrics")]
        let timer = std::time::Instant::now();
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
                webhook_id = delivery.webhook_id().as_str(),
                attempt = delivery.attempt_count().saturating_add(1),
            ),
        );
        let result = tokio::select! {
            result = send => result,
            () = aborted(&self.stop) => {
                let _ = self.store.release(&token).await;
                return Ended::Abandoned;
            }
        };
        #[cfg(feature = "metrics")]
        let seconds = timer.elapsed().as_secs_f64();
        let step = delivery.record(
            result.as_ref(),
            started,
            (self.clock)(),
            &self.policy,
            self.jitter.next(),
        );
        #[cfg(feature = "tracing")]
        tracing::info!(
            flow = %delivery.flow(),
            webhook_id = delivery.webhook_id().as_str(),
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
        let recorded = loop {
            match self.store.record(&token, &delivery).await {
                Ok(recorded) => break recorded,
                Err(error) if error.is_retryable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(_error) => {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(webhook_id = delivery.webhook_id().as_str(), error = %_error, "attempt not recorded");
                    return Ended::Recorded;
                }
            }
        };
        #[cfg(feature = "metrics")]
        crate::metrics::attempted(&delivery.endpoint(), seconds, &step, recorded.held);
        if let Some(change) = recorded.change {
            #[cfg(feature = "metrics")]
            crate::metrics::changed(&change);
            #[cfg(feature = "tracing")]
            tracing::warn!(endpoint = %change.endpoint, from = change.from.as_str(), to = %change.to, "endpoint state changed");
            self.outcomes
                .report(Outcome::EndpointChanged(change), &self.stop)
                .await;
        }
        let outcome = match step {
            Step::Delivered => Outcome::Delivered(delivery),
            // Held: still pending in the store, until its endpoint recovers.
            Step::DeadLetter { .. } if recorded.held => return Ended::Recorded,
            Step::DeadLetter { .. } => Outcome::DeadLettered(delivery),
            Step::RetryAt { .. } => return Ended::Recorded,
        };
        self.outcomes.report(outcome, &self.stop).await;
        Ended::Recorded
    }
}
