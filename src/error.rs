//! Error types. Every error names what was wrong (which id, which field, which Subscription) so
//! that the input can be fixed, and none of them carries personal data whole.

/// A retry policy setting is out of range (the bounds are on [`crate::RetryPolicy`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The schedule has no delay.
    #[error("the retry schedule needs at least one delay")]
    EmptySchedule,
    /// The schedule has more delays than could ever be waited (one before each attempt after
    /// the first, up to [`crate::delivery::MAX_ATTEMPTS`]).
    #[error(
        "the retry schedule has {len} delays, more than the {max} that can be used",
        max = crate::delivery::MAX_ATTEMPTS - 1
    )]
    ScheduleTooLong {
        /// How many delays it has.
        len: usize,
    },
    /// A delay of the schedule is shorter than [`crate::delivery::MIN_DELAY`] (this includes
    /// zero and negative delays) or longer than [`crate::delivery::MAX_DELAY`].
    #[error(
        "retry delay {position} of the schedule ({delay:#}) is out of range {min:#}..={max:#}",
        min = crate::delivery::MIN_DELAY,
        max = crate::delivery::MAX_DELAY
    )]
    DelayOutOfRange {
        /// Its 0-based position in the schedule.
        position: usize,
        /// The delay given.
        delay: jiff::SignedDuration,
    },
    /// Jitter above [`crate::delivery::MAX_JITTER_PERCENT`].
    #[error(
        "jitter of {percent}% is out of range 0..={max}",
        max = crate::delivery::MAX_JITTER_PERCENT
    )]
    JitterOutOfRange {
        /// The jitter given.
        percent: u8,
    },
    /// `max_attempts` is zero or above [`crate::delivery::MAX_ATTEMPTS`].
    #[error(
        "max_attempts of {attempts} is out of range 1..={max}",
        max = crate::delivery::MAX_ATTEMPTS
    )]
    AttemptsOutOfRange {
        /// The number given.
        attempts: u32,
    },
    /// `max_age` is outside [`crate::delivery::MIN_DELAY`]..=[`crate::delivery::MAX_AGE`], or
    /// `retry_after_max` outside 0..=[`crate::delivery::MAX_DELAY`].
    #[error("`{field}` of {value:#} is out of range {}", duration_range(field))]
    DurationOutOfRange {
        /// The setting: `max_age` or `retry_after_max`.
        field: &'static str,
        /// The duration given.
        value: jiff::SignedDuration,
    },
    /// `response_body_limit` above [`crate::delivery::MAX_RESPONSE_BODY_LIMIT`].
    #[error(
        "response_body_limit of {bytes} bytes is out of range 0..={max}",
        max = crate::delivery::MAX_RESPONSE_BODY_LIMIT
    )]
    BodyLimitOutOfRange {
        /// The limit given.
        bytes: usize,
    },
}

/// The range of a policy's duration setting, as [`PolicyError::DurationOutOfRange`] shows it.
fn duration_range(field: &str) -> String {
    use crate::delivery::{MAX_AGE, MAX_DELAY, MIN_DELAY};
    match field {
        "max_age" => format!("{MIN_DELAY:#}..={MAX_AGE:#}"),
        _ => format!("0s..={MAX_DELAY:#}"),
    }
}

/// A `Retry-After` header value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryAfterError {
    /// The value is empty.
    #[error("Retry-After is empty")]
    Empty,
    /// The value is longer than any valid one.
    #[error("Retry-After is {len} bytes long, longer than any valid value")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The value is neither delta-seconds nor an HTTP-date.
    #[error("Retry-After is neither delta-seconds nor an HTTP-date")]
    Malformed,
}

/// A stored delivery could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The stored request is not a valid HTTP request.
    #[error("the stored request is invalid: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The stored `attempt_count` is smaller than the number of attempts stored with it.
    #[error("the stored attempt_count {count} is less than the {stored} attempts stored")]
    AttemptCount {
        /// The stored count.
        count: u32,
        /// How many attempts are stored.
        stored: usize,
    },
    /// The stored replay mark does not fit the delivery: it counts more attempts before the
    /// replay than the delivery has, or it is dated before the delivery was created (either
    /// would let the delivery escape its retry policy's limits).
    #[error(
        "the stored replay mark does not fit: {after} attempts before it of {count}, or dated \
         before the delivery was created"
    )]
    Replayed {
        /// The attempts the mark says came before the replay.
        after: u32,
        /// The delivery's attempt count.
        count: u32,
    },
}
