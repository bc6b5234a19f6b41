//! A delivery: one request to one endpoint, its attempts and what comes next, as plain serde
//! data that a host can persist and resume.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::delivery::attempt::{
    Attempt, AttemptOutcome, KEPT_FIRST_ATTEMPTS, KEPT_LATEST_ATTEMPTS,
};
use crate::delivery::error::DeliveryError;
use crate::delivery::policy::{RetryPolicy, StatusClass};
use crate::delivery::retry_after::parse_retry_after;
use crate::delivery::step::{DeadLetterReason, DeliveryState, Step};
use crate::delivery::stored_request::{StoredRequest, restore, store};
use crate::model::{EventId, FlowId};
use crate::transport::TransportError;
use crate::webhook::WebhookId;

/// One webhook request on its way to one endpoint: the exact request, every attempt so far, and
/// what comes next.
///
/// A delivery is plain serde data (see the JSON shape in the README): a host can persist it in
/// its own store or queue after every step and resume it after a crash. Feeding it the result of
/// an attempt and the time ([`record`](Self::record)) returns the next step; nothing inside reads
/// a clock or picks a random number.
///
/// ```
/// use optout_relay::*;
/// use optout_relay::delivery::Step;
/// use optout_relay::webhook::WebhookId;
///
/// let request = http::Request::post("https://crm.example.com/optout").body(b"{}".to_vec())?;
/// let created: Timestamp = "2026-11-26T09:00:00Z".parse()?;
/// let (flow, event) = (FlowId::new("f")?, EventId::new("e")?);
/// let id = WebhookId::derive(&flow, &event);
/// let mut delivery = Delivery::new(id, flow, event, request, created);
/// let policy = RetryPolicy::default();
///
/// let answer = http::Response::builder().status(503).body(Vec::new())?;
/// let done: Timestamp = "2026-11-26T09:00:01Z".parse()?;
/// let step = delivery.record(Ok(&answer), created, done, &policy, 20);
/// assert_eq!(step, Step::RetryAt { at: "2026-11-26T09:00:06Z".parse()? });
///
/// let saved = serde_json::to_string(&delivery)?;
/// let mut resumed: Delivery = serde_json::from_str(&saved)?;
/// let ok = http::Response::builder().status(204).body(Vec::new())?;
/// let later: Timestamp = "2026-11-26T09:00:06Z".parse()?;
/// assert_eq!(resumed.record(Ok(&ok), later, later, &policy, 0), Step::Delivered);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A delivery keeps its first [`KEPT_FIRST_ATTEMPTS`] and latest [`KEPT_LATEST_ATTEMPTS`]
/// attempts, and counts them all ([`attempt_count`](Self::attempt_count)).
///
/// `Debug` shows the method, webhook id, flow, event, creation time, the number of attempts and
/// the state, never the request's URI, headers or body (they hold personal data and
/// credentials) nor the receiver's response bodies kept in the attempts: use
/// [`Delivery::request`] and [`Delivery::attempts`] for those.
#[derive(Clone)]
pub struct Delivery {
    data: DeliveryData,
    /// Never changes once made: shared, so that a clone (a store handing a delivery to a
    /// worker) does not copy the request.
    request: std::sync::Arc<http::Request<Vec<u8>>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("method", self.request.method())
            .field("webhook_id", &self.data.webhook_id.as_str())
            .field("flow", &self.data.flow)
            .field("event", &self.data.event)
            .field("created_at", &self.data.created_at)
            .field("attempts", &self.data.attempt_count)
            .field("state", &self.data.state)
            .finish_non_exhaustive()
    }
}

/// Everything but the request, which is kept as an `http::Request` and turned into plain data
/// only when the delivery is serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeliveryData {
    webhook_id: WebhookId,
    flow: FlowId,
    event: EventId,
    created_at: Timestamp,
    /// The first `KEPT_FIRST_ATTEMPTS` and the latest `KEPT_LATEST_ATTEMPTS` attempts.
    attempts: Vec<Attempt>,
    /// Every attempt ever recorded, kept or not.
    attempt_count: u32,
    state: DeliveryState,
    replayed: Option<Replayed>,
}

/// When a delivery was last replayed, and how many attempts it had then: the retry policy's
/// attempt count and maximum age start again from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct Replayed {
    at: Timestamp,
    after_attempts: u32,
}

/// The serialized form of a [`Delivery`].
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
struct WireOut<'a> {
    webhook_id: &'a str,
    flow: &'a FlowId,
    event: &'a EventId,
    created_at: Timestamp,
    request: StoredRequest,
    attempts: &'a [Attempt],
    /// Written only once attempts were dropped, so that a record with its whole history keeps
    /// the form earlier versions read.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_count: Option<u32>,
    state: &'a DeliveryState,
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed: Option<Replayed>,
}

/// The serialized form of a [`Delivery`], read back.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct WireIn {
    webhook_id: String,
    flow: FlowId,
    event: EventId,
    created_at: Timestamp,
    request: StoredRequest,
    attempts: Vec<Attempt>,
    /// Missing in records with their whole history (and in those of earlier versions): the
    /// number of `attempts`.
    #[serde(default)]
    attempt_count: Option<u32>,
    state: DeliveryState,
    #[serde(default)]
    replayed: Option<Replayed>,
}

impl Serialize for Delivery {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            webhook_id: self.data.webhook_id.as_str(),
            flow: &self.data.flow,
            event: &self.data.event,
            created_at: self.data.created_at,
            request: store(&self.request),
            attempts: &self.data.attempts,
            attempt_count: (self.data.attempts.len() != self.data.attempt_count as usize)
                .then_some(self.data.attempt_count),
            state: &self.data.state,
            replayed: self.data.replayed,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Delivery {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(deserializer)?;
        let request =
            std::sync::Arc::new(restore(&wire.request).map_err(serde::de::Error::custom)?);
        let stored = u32::try_from(wire.attempts.len()).unwrap_or(u32::MAX);
        let attempt_count = wire.attempt_count.unwrap_or(stored);
        if attempt_count < stored {
            return Err(serde::de::Error::custom(DeliveryError::AttemptCount {
                count: attempt_count,
                stored: wire.attempts.len(),
            }));
        }
        if let Some(replayed) = wire.replayed {
            if replayed.after_attempts > attempt_count || replayed.at < wire.created_at {
                return Err(serde::de::Error::custom(DeliveryError::Replayed {
                    after: replayed.after_attempts,
                    count: attempt_count,
                }));
            }
        }
        // A record written before the history was bounded may hold any number of attempts.
        let mut attempts = wire.attempts;
        drop_middle_attempts(&mut attempts);
        Ok(Self {
            data: DeliveryData {
                webhook_id: WebhookId::from_stored(wire.webhook_id),
                flow: wire.flow,
                event: wire.event,
                created_at: wire.created_at,
                attempts,
                attempt_count,
                state: wire.state,
                replayed: wire.replayed,
            },
            request,
        })
    }
}

/// Drops the attempts between the first `KEPT_FIRST_ATTEMPTS` and the latest
/// `KEPT_LATEST_ATTEMPTS`.
fn drop_middle_attempts(attempts: &mut Vec<Attempt>) {
    let excess = attempts
        .len()
        .saturating_sub(KEPT_FIRST_ATTEMPTS + KEPT_LATEST_ATTEMPTS);
    if excess > 0 {
        attempts.drain(KEPT_FIRST_ATTEMPTS..KEPT_FIRST_ATTEMPTS + excess);
        attempts.shrink_to(KEPT_FIRST_ATTEMPTS + KEPT_LATEST_ATTEMPTS + 1);
    }
}

/// `http::Request` has no `PartialEq`; deliveries compare requests by their stored form.
impl PartialEq for Delivery {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
            && (std::sync::Arc::ptr_eq(&self.request, &other.request)
                || store(&self.request) == store(&other.request))
    }
}

impl Eq for Delivery {}

impl Delivery {
    /// A delivery of `request`, due at once (at `created_at`).
    ///
    /// `webhook_id` is the request's stable id (the `webhook-id` header the builder sets); it is
    /// the same on every attempt and every re-delivery of the same event.
    pub fn new(
        webhook_id: WebhookId,
        flow: FlowId,
        event: EventId,
        request: http::Request<Vec<u8>>,
        created_at: Timestamp,
    ) -> Self {
        Self {
            data: DeliveryData {
                webhook_id,
                flow,
                event,
                created_at,
                attempts: Vec::new(),
                attempt_count: 0,
                state: DeliveryState::Pending {
                    next_attempt_at: created_at,
                },
                replayed: None,
            },
            request: std::sync::Arc::new(request),
        }
    }

    /// Makes a delivery that was dead-lettered (or delivered) pending again, due at `now`, with
    /// the retry policy's full allowance of attempts and age counted from `now`. Its earlier
    /// attempts stay in [`attempts`](Self::attempts) (as many as are kept) and in
    /// [`attempt_count`](Self::attempt_count). Returns whether it changed (a pending delivery
    /// stays as it is).
    pub fn replay(&mut self, now: Timestamp) -> bool {
        if self.is_pending() {
            return false;
        }
        self.data.replayed = Some(Replayed {
            at: now,
            after_attempts: self.data.attempt_count,
        });
        self.data.state = DeliveryState::Pending {
            next_attempt_at: now,
        };
        true
    }

    /// Keeps the delivery pending (or makes a dead-lettered one pending again), due at `now`,
    /// with the retry policy's whole allowance of attempts and age counted from `now`; its
    /// earlier attempts stay counted. Endpoint health does this to the deliveries of an
    /// endpoint that is down (held instead of dead-lettered) and to every pending delivery of an
    /// endpoint that recovers (released). Returns whether it changed (a delivered delivery
    /// stays as it is).
    pub fn hold(&mut self, now: Timestamp) -> bool {
        if matches!(self.data.state, DeliveryState::Delivered { .. }) {
            return false;
        }
        self.data.replayed = Some(Replayed {
            at: now.max(self.data.created_at),
            after_attempts: self.data.attempt_count,
        });
        self.data.state = DeliveryState::Pending {
            next_attempt_at: now,
        };
        true
    }

    /// When its current retry allowance began: its creation, or its latest replay or hold.
    pub fn allowance_start(&self) -> Timestamp {
        self.data
            .replayed
            .map_or(self.data.created_at, |replayed| replayed.at)
    }

    /// The endpoint it goes to (its request's scheme, host, port and path).
    pub fn endpoint(&self) -> crate::health::Endpoint {
        crate::health::Endpoint::of(self.request.uri())
    }

    /// Gives up a pending delivery at `now` for `reason` without an attempt (a store does this
    /// to work that workers keep abandoning). Changes nothing once it has ended.
    pub fn dead_letter(&mut self, reason: DeadLetterReason, now: Timestamp) {
        if self.is_pending() {
            self.data.state = DeliveryState::DeadLettered { at: now, reason };
        }
    }

    /// The request's stable id.
    pub fn webhook_id(&self) -> &WebhookId {
        &self.data.webhook_id
    }

    /// The flow that sent it.
    pub fn flow(&self) -> &FlowId {
        &self.data.flow
    }

    /// The event it carries.
    pub fn event(&self) -> &EventId {
        &self.data.event
    }

    /// When it was created.
    pub fn created_at(&self) -> Timestamp {
        self.data.created_at
    }

    /// The exact request sent on every attempt.
    pub fn request(&self) -> &http::Request<Vec<u8>> {
        &self.request
    }

    /// The attempts kept, in order: the first [`KEPT_FIRST_ATTEMPTS`] and the latest
    /// [`KEPT_LATEST_ATTEMPTS`] ones; every attempt while there are no more than that.
    ///
    /// When attempts were dropped ([`attempt_count`](Self::attempt_count) is larger than this
    /// list), the first `KEPT_FIRST_ATTEMPTS` are attempts 1, 2, ... and the rest are the last
    /// ones, up to attempt number `attempt_count`.
    pub fn attempts(&self) -> &[Attempt] {
        &self.data.attempts
    }

    /// How many attempts were made, including those no longer kept in
    /// [`attempts`](Self::attempts) and those before a replay.
    pub fn attempt_count(&self) -> u32 {
        self.data.attempt_count
    }

    /// Where it stands.
    pub fn state(&self) -> &DeliveryState {
        &self.data.state
    }

    /// When the next attempt is due; `None` once delivered or dead-lettered.
    pub fn next_attempt_at(&self) -> Option<Timestamp> {
        match self.data.state {
            DeliveryState::Pending { next_attempt_at } => Some(next_attempt_at),
            _ => None,
        }
    }

    /// Whether it is still pending.
    pub fn is_pending(&self) -> bool {
        self.next_attempt_at().is_some()
    }

    /// Records one attempt that started at `started_at` and ended at `now` with `result`, and
    /// returns the next step (which is also kept in [`state`](Self::state)).
    ///
    /// `random` picks the jitter of a retry delay (see [`RetryPolicy::delay`]): pass a random
    /// number, or a fixed one for exact times in tests.
    ///
    /// Recording an attempt on a delivery that is no longer pending changes nothing and returns
    /// its terminal step again.
    pub fn record(
        &mut self,
        result: Result<&http::Response<Vec<u8>>, &TransportError>,
        started_at: Timestamp,
        now: Timestamp,
        policy: &RetryPolicy,
        random: u64,
    ) -> Step {
        match &self.data.state {
            DeliveryState::Delivered { .. } => return Step::Delivered,
            DeliveryState::DeadLettered { reason, .. } => {
                return Step::DeadLetter {
                    reason: reason.clone(),
                };
            }
            DeliveryState::Pending { .. } => {}
        }
        let outcome = match result {
            Ok(response) => AttemptOutcome::from_response(response, policy.response_body_limit()),
            Err(error) => AttemptOutcome::from_error(error),
        };
        if self.data.attempts.len() >= KEPT_FIRST_ATTEMPTS + KEPT_LATEST_ATTEMPTS {
            self.data.attempts.remove(KEPT_FIRST_ATTEMPTS);
        }
        self.data.attempts.push(Attempt {
            started_at,
            duration: now.duration_since(started_at),
            outcome,
        });
        self.data.attempt_count = self.data.attempt_count.saturating_add(1);
        let step = self.next_step(result, now, policy, random);
        self.data.state = match &step {
            Step::Delivered => DeliveryState::Delivered { at: now },
            Step::RetryAt { at } => DeliveryState::Pending {
                next_attempt_at: *at,
            },
            Step::DeadLetter { reason } => DeliveryState::DeadLettered {
                at: now,
                reason: reason.clone(),
            },
        };
        step
    }

    fn next_step(
        &self,
        result: Result<&http::Response<Vec<u8>>, &TransportError>,
        now: Timestamp,
        policy: &RetryPolicy,
        random: u64,
    ) -> Step {
        let dead = |reason| Step::DeadLetter { reason };
        let retry_after = match result {
            Ok(response) => match StatusClass::of(response.status()) {
                StatusClass::Success => return Step::Delivered,
                StatusClass::Gone => return dead(DeadLetterReason::Gone),
                StatusClass::Permanent => {
                    return dead(DeadLetterReason::Rejected {
                        status: response.status().as_u16(),
                    });
                }
                StatusClass::Retryable => response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now).ok()),
            },
            Err(error) if !error.is_retryable() => {
                return dead(DeadLetterReason::NotRetryable { kind: error.kind() });
            }
            Err(_) => None,
        };
        let (since, before) = match self.data.replayed {
            Some(replayed) => (replayed.at, replayed.after_attempts),
            None => (self.data.created_at, 0),
        };
        let attempts = self.data.attempt_count.saturating_sub(before);
        if attempts >= policy.max_attempts() {
            return dead(DeadLetterReason::AttemptsExhausted { attempts });
        }
        let scheduled = now
            .saturating_add(policy.delay(attempts, random))
            .unwrap_or(Timestamp::MAX);
        let at = match retry_after {
            Some(asked) => {
                let cap = now
                    .saturating_add(policy.retry_after_max())
                    .unwrap_or(Timestamp::MAX);
                scheduled.max(asked.min(cap))
            }
            None => scheduled,
        };
        let deadline = since
            .saturating_add(policy.max_age())
            .unwrap_or(Timestamp::MAX);
        if at > deadline {
            return dead(DeadLetterReason::Expired {
                next_attempt_at: at,
            });
        }
        Step::RetryAt { at }
    }
}
