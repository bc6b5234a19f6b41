//! The retry policy: what counts as success, what is retried, when, and for how long.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::delivery::error::{DurationSetting, PolicyError};
use crate::delivery::limits::{
    MAX_AGE, MAX_ATTEMPTS, MAX_DELAY, MAX_JITTER_PERCENT, MAX_RESPONSE_BODY_LIMIT, MIN_DELAY,
};

/// How a response status is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StatusClass {
    /// 2xx: delivered.
    Success,
    /// 408, 429 and 5xx: the receiver may succeed later; retried.
    Retryable,
    /// 410 Gone: the receiver says the endpoint is gone; dead-lettered, and the endpoint should
    /// be disabled.
    Gone,
    /// Redirects (3xx; never followed), other 4xx, and 1xx: retrying would give the same answer;
    /// dead-lettered.
    Permanent,
}

impl StatusClass {
    /// Classifies a status code.
    pub fn of(status: http::StatusCode) -> Self {
        match status.as_u16() {
            200..=299 => Self::Success,
            408 | 429 | 500..=599 => Self::Retryable,
            410 => Self::Gone,
            _ => Self::Permanent,
        }
    }
}

/// The default retry delays: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (after an immediate first
/// attempt), as the best webhook senders do (Svix: 5 s to 10 h over about 3 days, 8 attempts).
pub const DEFAULT_SCHEDULE: [SignedDuration; 7] = [
    SignedDuration::from_secs(5),
    SignedDuration::from_secs(5 * 60),
    SignedDuration::from_secs(30 * 60),
    SignedDuration::from_secs(2 * 3600),
    SignedDuration::from_secs(5 * 3600),
    SignedDuration::from_secs(10 * 3600),
    SignedDuration::from_secs(10 * 3600),
];

/// When and how often a failed delivery is retried.
///
/// - **Success** is 2xx only; see [`StatusClass`] for the rest. Transport errors are retried
///   unless their kind says otherwise ([`TransportErrorKind::is_retryable`](crate::transport::TransportErrorKind::is_retryable)).
/// - **Schedule**: the delay before the 2nd, 3rd, ... attempt; the first attempt is immediate.
///   When `max_attempts` exceeds the schedule, the last delay repeats.
/// - **Jitter**: each delay is scaled by a factor in `[1 - j, 1 + j]` (j = `jitter_percent` /
///   100), picked from a random number the caller passes in: no randomness inside. A jittered
///   delay is never shorter than [`MIN_DELAY`].
/// - **Retry-After** (delta-seconds or HTTP-date) on a retryable response moves the next attempt
///   later, never earlier, and never more than `retry_after_max` from the response.
/// - **Dead letter**: after `max_attempts` attempts, or when the next attempt would be more than
///   `max_age` after the delivery was created.
///
/// Defaults: [`DEFAULT_SCHEDULE`], 20 % jitter, 8 attempts, a maximum age of 3 days, Retry-After
/// honoured up to 1 hour, 512 bytes of each response body kept.
///
/// Bounds, checked by [`RetryPolicyBuilder::build`] and when a policy is read from JSON (a
/// [`PolicyError`] names the setting out of range):
///
/// | setting | range |
/// | --- | --- |
/// | `schedule` | 1 to 99 delays (one before each attempt after the first), each [`MIN_DELAY`] (10 ms) to [`MAX_DELAY`] (24 h) |
/// | `jitter_percent` | 0 to [`MAX_JITTER_PERCENT`] (100) |
/// | `max_attempts` | 1 to [`MAX_ATTEMPTS`] (100) |
/// | `max_age` | [`MIN_DELAY`] (10 ms) to [`MAX_AGE`] (30 days) |
/// | `retry_after_max` | 0 (`Retry-After` ignored) to [`MAX_DELAY`] (24 h) |
/// | `response_body_limit` | 0 to [`MAX_RESPONSE_BODY_LIMIT`] (64 KiB) |
///
/// Durations keep their nanoseconds: nothing is rounded, so a delay that passes the bounds is
/// the delay waited (before jitter).
///
/// JSON shape (every field optional, defaults as above; durations in ISO 8601):
///
/// ```json
/// {"schedule": ["PT5S", "PT5M"], "jitter_percent": 20, "max_attempts": 3,
///  "max_age": "PT72H", "retry_after_max": "PT1H", "response_body_limit": 512}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyData", into = "PolicyData")]
pub struct RetryPolicy {
    data: PolicyData,
}

/// The most delays a schedule can have: one before each attempt after the first.
const MAX_SCHEDULE_LEN: usize = MAX_ATTEMPTS as usize - 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields, default)]
struct PolicyData {
    schedule: Vec<SignedDuration>,
    jitter_percent: u8,
    max_attempts: u32,
    max_age: SignedDuration,
    retry_after_max: SignedDuration,
    response_body_limit: usize,
}

impl Default for PolicyData {
    fn default() -> Self {
        Self {
            schedule: DEFAULT_SCHEDULE.to_vec(),
            jitter_percent: 20,
            max_attempts: 8,
            max_age: SignedDuration::from_hours(72),
            retry_after_max: SignedDuration::from_hours(1),
            response_body_limit: 512,
        }
    }
}

impl TryFrom<PolicyData> for RetryPolicy {
    type Error = PolicyError;

    fn try_from(data: PolicyData) -> Result<Self, Self::Error> {
        if data.schedule.is_empty() {
            return Err(PolicyError::EmptySchedule);
        }
        if data.schedule.len() > MAX_SCHEDULE_LEN {
            return Err(PolicyError::ScheduleTooLong {
                len: data.schedule.len(),
            });
        }
        if let Some((position, delay)) = data
            .schedule
            .iter()
            .enumerate()
            .find(|(_, d)| !(MIN_DELAY..=MAX_DELAY).contains(*d))
        {
            return Err(PolicyError::DelayOutOfRange {
                position,
                delay: *delay,
            });
        }
        if data.jitter_percent > MAX_JITTER_PERCENT {
            return Err(PolicyError::JitterOutOfRange {
                percent: data.jitter_percent,
            });
        }
        if !(1..=MAX_ATTEMPTS).contains(&data.max_attempts) {
            return Err(PolicyError::AttemptsOutOfRange {
                attempts: data.max_attempts,
            });
        }
        if !(MIN_DELAY..=MAX_AGE).contains(&data.max_age) {
            return Err(PolicyError::DurationOutOfRange {
                field: DurationSetting::MaxAge,
                value: data.max_age,
            });
        }
        if !(SignedDuration::ZERO..=MAX_DELAY).contains(&data.retry_after_max) {
            return Err(PolicyError::DurationOutOfRange {
                field: DurationSetting::RetryAfterMax,
                value: data.retry_after_max,
            });
        }
        if data.response_body_limit > MAX_RESPONSE_BODY_LIMIT {
            return Err(PolicyError::BodyLimitOutOfRange {
                bytes: data.response_body_limit,
            });
        }
        Ok(Self { data })
    }
}

impl From<RetryPolicy> for PolicyData {
    fn from(policy: RetryPolicy) -> Self {
        policy.data
    }
}

impl RetryPolicy {
    /// A builder starting from the defaults.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            data: PolicyData::default(),
        }
    }

    /// The delays before the 2nd, 3rd, ... attempt.
    pub fn schedule(&self) -> &[SignedDuration] {
        &self.data.schedule
    }

    /// The jitter, in percent of each delay.
    pub fn jitter_percent(&self) -> u8 {
        self.data.jitter_percent
    }

    /// The most attempts a delivery gets.
    pub fn max_attempts(&self) -> u32 {
        self.data.max_attempts
    }

    /// The longest a delivery is retried, from its creation.
    pub fn max_age(&self) -> SignedDuration {
        self.data.max_age
    }

    /// The longest wait a `Retry-After` header can impose.
    pub fn retry_after_max(&self) -> SignedDuration {
        self.data.retry_after_max
    }

    /// How many bytes of each response body an attempt record keeps.
    pub fn response_body_limit(&self) -> usize {
        self.data.response_body_limit
    }

    /// The delay after the `attempts`-th failed attempt (1-based), with jitter picked by
    /// `random`: the base delay times `(100 - j + random % (2j + 1)) / 100` (to the nanosecond),
    /// where `j` is `jitter_percent`, and never shorter than [`MIN_DELAY`].
    ///
    /// ```
    /// use optout_relay::{RetryPolicy, jiff::SignedDuration};
    ///
    /// let policy = RetryPolicy::default();
    /// // random % 41 = 0: the shortest, 80 % of 5 s; 40: the longest, 120 %.
    /// assert_eq!(policy.delay(1, 0), SignedDuration::from_secs(4));
    /// assert_eq!(policy.delay(1, 40), SignedDuration::from_secs(6));
    /// assert_eq!(policy.delay(2, 20), SignedDuration::from_secs(300));
    /// ```
    pub fn delay(&self, attempts: u32, random: u64) -> SignedDuration {
        let schedule = &self.data.schedule;
        let index = usize::try_from(attempts.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(schedule.len().saturating_sub(1));
        let base = schedule.get(index).copied().unwrap_or(MIN_DELAY);
        let jitter = u64::from(self.data.jitter_percent.min(MAX_JITTER_PERCENT));
        let factor = i128::from(100 - jitter + random % (2 * jitter + 1));
        // At most 24 h times 2 in nanoseconds: far inside i128 and SignedDuration.
        SignedDuration::try_from_nanos_i128(base.as_nanos() * factor / 100)
            .unwrap_or(SignedDuration::MAX)
            .max(MIN_DELAY)
    }
}

/// Builds a [`RetryPolicy`]; keeps the first error and reports it at [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct RetryPolicyBuilder {
    data: PolicyData,
}

impl RetryPolicyBuilder {
    /// The delays before the 2nd, 3rd, ... attempt: 1 to 99 of them, each from [`MIN_DELAY`]
    /// (10 ms) to [`MAX_DELAY`] (24 h). Default: [`DEFAULT_SCHEDULE`].
    pub fn schedule(mut self, schedule: impl IntoIterator<Item = SignedDuration>) -> Self {
        self.data.schedule = schedule.into_iter().collect();
        self
    }

    /// The jitter, 0 to [`MAX_JITTER_PERCENT`] (100) percent of each delay; a jittered delay is
    /// never shorter than [`MIN_DELAY`]. Default: 20.
    pub fn jitter_percent(mut self, percent: u8) -> Self {
        self.data.jitter_percent = percent;
        self
    }

    /// The most attempts a delivery gets (and gets again when it is replayed): 1 to
    /// [`MAX_ATTEMPTS`] (100). Default: 8.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.data.max_attempts = attempts;
        self
    }

    /// The longest a delivery is retried, from its creation (or its replay): [`MIN_DELAY`]
    /// (10 ms) to [`MAX_AGE`] (30 days). Default: 72 h.
    pub fn max_age(mut self, age: SignedDuration) -> Self {
        self.data.max_age = age;
        self
    }

    /// The longest wait a `Retry-After` header can impose: 0 (the header is ignored) to
    /// [`MAX_DELAY`] (24 h). Default: 1 h.
    pub fn retry_after_max(mut self, max: SignedDuration) -> Self {
        self.data.retry_after_max = max;
        self
    }

    /// How many bytes of each response body an attempt record keeps: 0 to
    /// [`MAX_RESPONSE_BODY_LIMIT`] (64 KiB). Default: 512.
    pub fn response_body_limit(mut self, bytes: usize) -> Self {
        self.data.response_body_limit = bytes;
        self
    }

    /// Validates and builds the policy.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] naming the setting that is out of range (see the bounds on
    /// [`RetryPolicy`]).
    pub fn build(self) -> Result<RetryPolicy, PolicyError> {
        RetryPolicy::try_from(self.data)
    }
}
