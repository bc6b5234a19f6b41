//! [`EndpointState`] and [`EndpointHealth`]: what a store keeps per endpoint, and the pure
//! decisions on it (may a request start now, what an attempt's result changes).

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::policy::{EndpointPolicy, Limits};

/// The most recent attempts an endpoint's health keeps for the circuit breaker's ratio: the
/// ratio is taken over the latest attempts within the window, at most this many.
pub const MAX_WINDOW_ATTEMPTS: usize = 128;

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndpointState {
    /// Requests flow, within the endpoint's limits.
    Healthy,
    /// The circuit is open: nothing is sent until `until`, then one probe at a time.
    Degraded {
        /// When the cool-down ends and a probe may be sent.
        until: Timestamp,
    },
    /// Nothing is sent (except the probes of an endpoint paused for failing, when the policy
    /// probes); its deliveries are held, neither retried nor dead-lettered.
    Paused {
        /// Why.
        reason: PauseReason,
        /// Since when.
        since: Timestamp,
    },
}

impl EndpointState {
    /// `healthy`, `degraded` or `paused`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded { .. } => "degraded",
            Self::Paused { .. } => "paused",
        }
    }

    /// Whether requests flow.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy)
    }
}

impl fmt::Display for EndpointState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Healthy => f.write_str("healthy"),
            Self::Degraded { until } => write!(f, "degraded (circuit open until {until})"),
            Self::Paused { reason, since } => write!(f, "paused since {since}: {reason}"),
        }
    }
}

/// Why an endpoint is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PauseReason {
    /// The receiver answered 410 Gone. Only an operator resumes it.
    Gone,
    /// It failed for longer than the policy allows, or a delivery ran out of attempts without
    /// the endpoint answering once. Probed, if the policy says so.
    Failing,
    /// An operator paused it. Only an operator resumes it.
    Operator,
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gone => "the receiver answered 410 Gone",
            Self::Failing => "failing without a success",
            Self::Operator => "paused by an operator",
        })
    }
}

/// What an attempt's result says about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptClass {
    /// 2xx.
    Succeeded,
    /// A failure worth retrying: a transport error other than a refused destination or an
    /// invalid request, 408, 429 or 5xx.
    Failed,
    /// 410 Gone.
    Gone,
    /// An answer that says nothing about the endpoint's health (another 4xx, a 3xx, a refused
    /// destination): it ends the delivery as the retry policy says.
    Neutral,
}

/// One attempt the breaker counts: when it ended, and whether it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    at: Timestamp,
    failed: bool,
}

/// What a store keeps per endpoint: its state, its recent attempts, and its token bucket.
/// Plain serde data; every decision on it is a pure function of it, the policy and `now`.
///
/// ```
/// use std::time::Duration;
/// use optout_relay::Timestamp;
/// use optout_relay::health::{AttemptClass, EndpointHealth, EndpointPolicy, EndpointState, Limits};
///
/// let policy = EndpointPolicy::default();
/// let mut health = EndpointHealth::default();
/// let t0: Timestamp = "2026-11-26T10:00:00Z".parse()?;
/// // Ten failures in ten seconds: the circuit opens at the tenth, for 30 s.
/// for s in 0..10 {
///     let at = t0 + jiff::SignedDuration::from_secs(s);
///     health.observe(AttemptClass::Failed, at, &policy);
/// }
/// let opened = t0 + jiff::SignedDuration::from_secs(9);
/// let until = opened + jiff::SignedDuration::from_secs(30);
/// assert_eq!(health.state(), EndpointState::Degraded { until });
/// let lease = Duration::from_secs(60);
/// let one_ms_early = until - jiff::SignedDuration::from_millis(1);
/// assert_eq!(health.grant(5, 0, Limits::NONE, one_ms_early, lease), 0);
/// assert_eq!(health.grant(5, 0, Limits::NONE, until, lease), 1); // the probe
/// assert_eq!(health.grant(5, 0, Limits::NONE, until, lease), 0); // one at a time
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct EndpointHealth {
    state: EndpointState,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    recent: VecDeque<Mark>,
    /// The first failure since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failing_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_success: Option<Timestamp>,
    /// The cool-down of the circuit's current opening, in milliseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    cool_down_ms: u64,
    /// A probe is out until then (its lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probe_until: Option<Timestamp>,
    /// When a paused (failing) endpoint's next probe may start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_probe: Option<Timestamp>,
    /// The token bucket: tokens in thousandths, as of `refilled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refilled: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_zero")]
    tokens_milli: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for EndpointHealth {
    fn default() -> Self {
        Self {
            state: EndpointState::Healthy,
            recent: VecDeque::new(),
            failing_since: None,
            last_success: None,
            cool_down_ms: 0,
            probe_until: None,
            next_probe: None,
            refilled: None,
            tokens_milli: 0,
        }
    }
}

fn plus(at: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    at.saturating_add(d).unwrap_or(Timestamp::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl EndpointHealth {
    /// Where the endpoint stands.
    pub fn state(&self) -> EndpointState {
        self.state
    }

    /// The first failure since the endpoint's last success, while it is failing.
    pub fn failing_since(&self) -> Option<Timestamp> {
        self.failing_since
    }

    /// When the endpoint last answered with a success.
    pub fn last_success(&self) -> Option<Timestamp> {
        self.last_success
    }

    /// The attempts within the breaker's window at `now`, and how many of them failed.
    pub fn window(&self, now: Timestamp, policy: &EndpointPolicy) -> (usize, usize) {
        let Some(breaker) = &policy.breaker else {
            return (0, 0);
        };
        let counted = self
            .recent
            .iter()
            .filter(|m| plus(m.at, breaker.window) > now);
        counted.fold((0, 0), |(n, f), m| (n + 1, f + usize::from(m.failed)))
    }

    /// How many of `wanted` requests to this endpoint may start at `now`, with `in_flight`
    /// already in flight (by any worker), under `limits`; each one granted is counted (a probe
    /// is out until `now + lease`; a token is taken from the bucket).
    ///
    /// Healthy: as many as the in-flight limit and the rate leave. Degraded: none during the
    /// cool-down, then one probe at a time. Paused: none, except one probe at a time at the
    /// policy's interval for an endpoint paused for failing.
    pub fn grant(
        &mut self,
        wanted: usize,
        in_flight: usize,
        limits: Limits,
        now: Timestamp,
        lease: Duration,
    ) -> usize {
        if wanted == 0 {
            return 0;
        }
        let room = limits
            .max_in_flight
            .map_or(usize::MAX, |max| (max as usize).saturating_sub(in_flight));
        let probe_out = self.probe_until.is_some_and(|until| until > now);
        let wanted = match self.state {
            EndpointState::Healthy => wanted.min(room),
            EndpointState::Degraded { until } => {
                usize::from(now >= until && !probe_out && room > 0)
            }
            EndpointState::Paused {
                reason: PauseReason::Failing,
                ..
            } => usize::from(self.next_probe.is_some_and(|at| now >= at) && !probe_out && room > 0),
            EndpointState::Paused { .. } => 0,
        };
        let granted = self.take_tokens(wanted, limits, now);
        if granted > 0 && !self.state.is_healthy() {
            self.probe_until = Some(plus(now, lease));
        }
        granted
    }

    /// Refills the bucket to `now` and takes up to `wanted` tokens.
    fn take_tokens(&mut self, wanted: usize, limits: Limits, now: Timestamp) -> usize {
        let Some(rate) = limits.per_second else {
            return wanted;
        };
        let rate = u64::from(rate.max(1));
        let capacity = rate * 1_000;
        let elapsed = self.refilled.map_or(u64::MAX, |at| {
            u64::try_from(now.duration_since(at).as_millis()).unwrap_or(0)
        });
        // `rate` per second is `rate` thousandths of a token per millisecond.
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed.saturating_mul(rate))
            .min(capacity);
        self.refilled = Some(now);
        let granted = wanted.min(usize::try_from(self.tokens_milli / 1_000).unwrap_or(usize::MAX));
        self.tokens_milli -= granted as u64 * 1_000;
        granted
    }

    /// When a request to this endpoint due at `due` may start, with `in_flight` in flight:
    /// `None` when it waits for something other than time (a pause without probes, the
    /// in-flight limit, a probe out).
    pub fn ready_at(
        &self,
        due: Timestamp,
        in_flight: usize,
        limits: Limits,
        now: Timestamp,
    ) -> Option<Timestamp> {
        if limits
            .max_in_flight
            .is_some_and(|max| in_flight >= max as usize)
        {
            return None;
        }
        if let Some(until) = self.probe_until.filter(|until| *until > now) {
            if !self.state.is_healthy() {
                // The probe's lease: its result ends the wait sooner.
                return Some(until.max(due));
            }
        }
        let gate = match self.state {
            EndpointState::Healthy => due,
            EndpointState::Degraded { until } => until.max(due),
            EndpointState::Paused {
                reason: PauseReason::Failing,
                ..
            } => self.next_probe?.max(due),
            EndpointState::Paused { .. } => return None,
        };
        let Some(rate) = limits.per_second else {
            return Some(gate);
        };
        if self.tokens_milli >= 1_000 || self.refilled.is_none() {
            return Some(gate);
        }
        let missing = 1_000 - self.tokens_milli;
        let wait = missing.div_ceil(u64::from(rate.max(1)));
        let refilled = self.refilled.unwrap_or(now);
        Some(gate.max(plus(refilled, Duration::from_millis(wait))))
    }

    /// Counts an attempt that ended at `at` with `class`, and moves the state as the policy
    /// says. Returns the change, if any.
    pub fn observe(
        &mut self,
        class: AttemptClass,
        at: Timestamp,
        policy: &EndpointPolicy,
    ) -> Option<(EndpointState, EndpointState)> {
        let before = self.state;
        match class {
            AttemptClass::Neutral => {}
            AttemptClass::Succeeded => {
                self.mark(at, false, policy);
                self.failing_since = None;
                self.last_success = Some(at);
                self.probe_until = None;
                // A success closes an open circuit; it resumes an endpoint paused for failing
                // only when the policy probes (the operator decides otherwise).
                let resume = match self.state {
                    EndpointState::Healthy => false,
                    EndpointState::Degraded { .. } => true,
                    EndpointState::Paused { reason, .. } => {
                        reason == PauseReason::Failing && policy.probe_paused.is_some()
                    }
                };
                if resume {
                    self.reset();
                }
            }
            AttemptClass::Failed => {
                self.mark(at, true, policy);
                self.failing_since.get_or_insert(at);
                self.probe_until = None;
                self.failed(at, policy);
            }
            AttemptClass::Gone => {
                self.probe_until = None;
                if policy.enabled
                    && !matches!(
                        self.state,
                        EndpointState::Paused {
                            reason: PauseReason::Operator | PauseReason::Gone,
                            ..
                        }
                    )
                {
                    self.pause(PauseReason::Gone, at);
                }
            }
        }
        (before != self.state).then_some((before, self.state))
    }

    /// Counts a success observed late, at `now`, after attempts made later were observed (a
    /// store that writes a healthy endpoint's successes in batches): in the window in its place
    /// (not at all if it has left the window by `now`), as the last success unless a later one
    /// is known, and ending the failing run only if it came after the run began. It changes no
    /// state: it counts only while the endpoint is healthy, and is dropped otherwise (a probe's
    /// success decides a recovery).
    pub fn absorb_success(&mut self, at: Timestamp, now: Timestamp, policy: &EndpointPolicy) {
        if !self.state.is_healthy() {
            return;
        }
        if let Some(breaker) = &policy.breaker {
            if plus(at, breaker.window) > now {
                let place = self
                    .recent
                    .iter()
                    .rposition(|m| m.at <= at)
                    .map_or(0, |i| i + 1);
                self.recent.insert(place, Mark { at, failed: false });
                while self.recent.len() > MAX_WINDOW_ATTEMPTS {
                    self.recent.pop_front();
                }
            }
        }
        self.last_success = Some(self.last_success.map_or(at, |last| last.max(at)));
        if self.failing_since.is_some_and(|since| since <= at) {
            // The run it broke; the failures after it (those the window still holds) begin
            // the next.
            self.failing_since = self
                .recent
                .iter()
                .find(|m| m.failed && m.at > at)
                .map(|m| m.at);
        }
    }

    fn mark(&mut self, at: Timestamp, failed: bool, policy: &EndpointPolicy) {
        let Some(breaker) = &policy.breaker else {
            return;
        };
        self.recent.push_back(Mark { at, failed });
        while self.recent.len() > MAX_WINDOW_ATTEMPTS
            || self
                .recent
                .front()
                .is_some_and(|m| plus(m.at, breaker.window) <= at)
        {
            self.recent.pop_front();
        }
    }

    fn failed(&mut self, at: Timestamp, policy: &EndpointPolicy) {
        match self.state {
            EndpointState::Paused {
                reason: PauseReason::Failing,
                ..
            } => {
                // A failed probe: the next one after the interval.
                self.next_probe = policy.probe_paused.map(|every| plus(at, every));
                return;
            }
            EndpointState::Paused { .. } => return,
            EndpointState::Healthy | EndpointState::Degraded { .. } => {}
        }
        if let (Some(after), Some(since)) = (policy.pause_after, self.failing_since) {
            if plus(since, after) <= at {
                self.pause(PauseReason::Failing, at);
                self.schedule_probe(at, policy);
                return;
            }
        }
        let Some(breaker) = &policy.breaker else {
            return;
        };
        match self.state {
            EndpointState::Degraded { .. } => {
                // A failed probe (or an attempt that was in flight when the circuit opened):
                // open again, for twice as long.
                let doubled = self.cool_down_ms.saturating_mul(2);
                self.cool_down_ms =
                    doubled.clamp(millis(breaker.cool_down), millis(breaker.max_cool_down));
                self.state = EndpointState::Degraded {
                    until: plus(at, Duration::from_millis(self.cool_down_ms)),
                };
            }
            _ => {
                let (attempts, failures) = self.window(at, policy);
                let tripped = attempts >= breaker.min_attempts as usize
                    && failures * 100 >= attempts * usize::from(breaker.failure_percent);
                if tripped {
                    self.cool_down_ms = millis(breaker.cool_down);
                    self.state = EndpointState::Degraded {
                        until: plus(at, breaker.cool_down),
                    };
                }
            }
        }
    }

    /// Pauses the endpoint at `now` for `reason` (an operator's pause overrides any other).
    /// Returns the change, if any.
    pub fn pause(
        &mut self,
        reason: PauseReason,
        now: Timestamp,
    ) -> Option<(EndpointState, EndpointState)> {
        let before = self.state;
        if let EndpointState::Paused {
            reason: current, ..
        } = self.state
        {
            if current == reason || current == PauseReason::Operator {
                return None;
            }
        }
        self.state = EndpointState::Paused { reason, since: now };
        self.probe_until = None;
        self.next_probe = None;
        Some((before, self.state))
    }

    /// Sets the next probe of an endpoint paused for failing, `every` from `now`.
    pub(crate) fn schedule_probe(&mut self, now: Timestamp, policy: &EndpointPolicy) {
        if let EndpointState::Paused {
            reason: PauseReason::Failing,
            ..
        } = self.state
        {
            self.next_probe = policy.probe_paused.map(|every| plus(now, every));
        }
    }

    /// Makes the endpoint healthy again (an operator's resume). Returns the change, if any.
    pub fn resume(&mut self) -> Option<(EndpointState, EndpointState)> {
        let before = self.state;
        self.reset();
        (before != self.state).then_some((before, self.state))
    }

    fn reset(&mut self) {
        self.state = EndpointState::Healthy;
        self.recent.clear();
        self.failing_since = None;
        self.cool_down_ms = 0;
        self.probe_until = None;
        self.next_probe = None;
    }
}
