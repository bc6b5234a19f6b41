//! [`EndpointPolicy`]: the circuit breaker's thresholds, when an endpoint is paused and probed,
//! and the per-endpoint limits.

use std::collections::HashMap;
use std::time::Duration;

use super::endpoint::Endpoint;

/// The circuit breaker's thresholds: when the failures among an endpoint's recent attempts open
/// its circuit, and for how long.
///
/// The circuit opens when, among the attempts that ended within the last `window`, there are
/// at least `min_attempts` and at least `failure_percent` % of them failed (a transport error
/// worth retrying, or 408, 429, 5xx). While it is open the endpoint is
/// [`Degraded`](super::EndpointState::Degraded): nothing is sent to it for the cool-down, then
/// one probe is. A probe that succeeds closes the circuit; one that fails opens it again for
/// twice the cool-down, up to `max_cool_down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// The failures, in percent of the attempts in the window, that open the circuit (1 to
    /// 100; default 50).
    pub failure_percent: u8,
    /// The window the ratio is taken over (default 60 s).
    pub window: Duration,
    /// The fewest attempts in the window for the ratio to count (default 10).
    pub min_attempts: u32,
    /// How long the circuit stays open before the first probe (default 30 s).
    pub cool_down: Duration,
    /// The longest cool-down after failed probes (default 10 min).
    pub max_cool_down: Duration,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            failure_percent: 50,
            window: Duration::from_secs(60),
            min_attempts: 10,
            cool_down: Duration::from_secs(30),
            max_cool_down: Duration::from_secs(600),
        }
    }
}

/// The limits on the requests sent to one endpoint, by every worker that shares the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most requests in flight to the endpoint at once (`None`: no limit, the default).
    pub max_in_flight: Option<u32>,
    /// The most requests started per second (`None`: no limit, the default). Up to one
    /// second's worth may start at once after a quiet time (a token bucket of that size).
    pub per_second: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::NONE
    }
}

impl Limits {
    /// No limit at all.
    pub const NONE: Self = Self {
        max_in_flight: None,
        per_second: None,
    };
}

/// How a store keeps endpoint health: the circuit breaker, when an endpoint is paused, how a
/// paused one is probed, and the per-endpoint limits. Every store holds one (set on its
/// builder, or [`VolatileStore::with_endpoint_policy`](crate::VolatileStore::with_endpoint_policy));
/// a store opened without one holds [`EndpointPolicy::off`] (health is opt-in).
/// `EndpointPolicy::default()` is on, with the defaults below. [`EndpointPolicy::off`]: every
/// due delivery is claimed as before, and an endpoint's outage dead-letters its deliveries as
/// the retry policy says.
///
/// | setting | default |
/// | --- | --- |
/// | circuit opens at | 50 % failed of at least 10 attempts within 60 s |
/// | cool-down, then one probe | 30 s, doubling after each failed probe up to 10 min |
/// | paused when failing for | 24 h without a success |
/// | paused on | 410 Gone |
/// | a paused (failing) endpoint is probed | every 10 min; a success resumes it |
/// | requests in flight per endpoint | no limit (the worker's own `max_in_flight` bounds it) |
/// | requests per second per endpoint | no limit |
///
/// While an endpoint is degraded or paused, a delivery the retry policy would dead-letter
/// (attempts exhausted, too old, or 410 Gone) is **held** instead: it stays pending until the
/// endpoint recovers. It is also held, and the endpoint paused, when it ran out of attempts
/// without the endpoint answering any delivery successfully since the delivery's retries
/// began: that is an endpoint down, not a request the receiver refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPolicy {
    pub(crate) enabled: bool,
    pub(crate) breaker: Option<Breaker>,
    pub(crate) pause_after: Option<Duration>,
    pub(crate) probe_paused: Option<Duration>,
    pub(crate) limits: Limits,
    pub(crate) overrides: HashMap<Endpoint, Limits>,
}

impl Default for EndpointPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            breaker: Some(Breaker::default()),
            pause_after: Some(Duration::from_secs(24 * 3600)),
            probe_paused: Some(Duration::from_secs(600)),
            limits: Limits::default(),
            overrides: HashMap::new(),
        }
    }
}

impl EndpointPolicy {
    /// Endpoint health off: no breaker, no pause, no hold, no limits (the behaviour before
    /// endpoint health existed).
    pub fn off() -> Self {
        Self {
            enabled: false,
            breaker: None,
            pause_after: None,
            probe_paused: None,
            limits: Limits::NONE,
            overrides: HashMap::new(),
        }
    }

    /// Whether endpoint health is on (the breaker, pauses and held deliveries).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether claims go through each endpoint's gate: health is on, or some limit is set.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn gates(&self) -> bool {
        self.enabled || self.limits != Limits::NONE || !self.overrides.is_empty()
    }

    /// The circuit breaker (`None`: the circuit never opens).
    #[must_use]
    pub fn breaker(mut self, breaker: Option<Breaker>) -> Self {
        self.breaker = breaker.map(|mut b| {
            b.failure_percent = b.failure_percent.clamp(1, 100);
            b.min_attempts = b.min_attempts.max(1);
            b.window = b.window.max(Duration::from_millis(1));
            b.cool_down = b.cool_down.max(Duration::from_millis(1));
            b.max_cool_down = b.max_cool_down.max(b.cool_down);
            b
        });
        self
    }

    /// Pauses an endpoint that has failed for this long without one success (`None`: never
    /// for that reason).
    #[must_use]
    pub fn pause_after(mut self, failing: Option<Duration>) -> Self {
        self.pause_after = failing;
        self
    }

    /// Probes an endpoint paused for failing at this interval, and resumes it when a probe
    /// succeeds (`None`: only an operator resumes it). Endpoints paused for 410 Gone or by an
    /// operator are never probed.
    #[must_use]
    pub fn probe_paused(mut self, every: Option<Duration>) -> Self {
        self.probe_paused = every.map(|d| d.max(Duration::from_millis(1)));
        self
    }

    /// The limits of every endpoint without limits of its own.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Limits of one endpoint's own.
    #[must_use]
    pub fn endpoint_limits(mut self, endpoint: Endpoint, limits: Limits) -> Self {
        self.overrides.insert(endpoint, limits);
        self
    }

    /// The limits `endpoint` is held to.
    pub fn limits_of(&self, endpoint: &Endpoint) -> Limits {
        self.overrides.get(endpoint).copied().unwrap_or(self.limits)
    }

    /// The circuit breaker's thresholds, if it is on.
    pub fn breaker_thresholds(&self) -> Option<&Breaker> {
        self.breaker.as_ref()
    }
}
