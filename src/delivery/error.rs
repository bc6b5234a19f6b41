//! The delivery module's errors: a retry policy out of range ([`PolicyError`]), a `Retry-After`
//! value that cannot be read ([`RetryAfterError`]), a stored delivery that cannot be restored
//! ([`DeliveryError`]), and the reasons they carry.

use std::fmt;

use crate::delivery::limits::{
    MAX_AGE, MAX_ATTEMPTS, MAX_DELAY, MAX_JITTER_PERCENT, MAX_RESPONSE_BODY_LIMIT, MIN_DELAY,
};

/// A retry policy setting is out of range (the bounds are on [`crate::RetryPolicy`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The schedule has no delay.
    #[error("the retry schedule needs at least one delay")]
    EmptySchedule,
    /// The schedule has more delays than could ever be waited (one before each attempt after
    /// the first, up to [`MAX_ATTEMPTS`]).
    #[error(
        "the retry schedule has {len} delays, more than the {max} that can be used",
        max = MAX_ATTEMPTS - 1
    )]
    ScheduleTooLong {
        /// How many delays it has.
        len: usize,
    },
    /// A delay of the schedule is shorter than [`MIN_DELAY`] (this includes zero and negative
    /// delays) or longer than [`MAX_DELAY`].
    #[error(
        "retry delay {position} of the schedule ({delay:#}) is out of range {min:#}..={max:#}",
        min = MIN_DELAY,
        max = MAX_DELAY
    )]
    DelayOutOfRange {
        /// Its 0-based position in the schedule.
        position: usize,
        /// The delay given.
        delay: jiff::SignedDuration,
    },
    /// Jitter above [`MAX_JITTER_PERCENT`].
    #[error("jitter of {percent}% is out of range 0..={max}", max = MAX_JITTER_PERCENT)]
    JitterOutOfRange {
        /// The jitter given.
        percent: u8,
    },
    /// `max_attempts` is zero or above [`MAX_ATTEMPTS`].
    #[error("max_attempts of {attempts} is out of range 1..={max}", max = MAX_ATTEMPTS)]
    AttemptsOutOfRange {
        /// The number given.
        attempts: u32,
    },
    /// `max_age` is outside [`MIN_DELAY`]..=[`MAX_AGE`], or `retry_after_max` outside
    /// 0..=[`MAX_DELAY`] ([`DurationSetting::range`]).
    #[error("`{field}` of {value:#} is out of range {range}", range = field.range())]
    DurationOutOfRange {
        /// The setting.
        field: DurationSetting,
        /// The duration given.
        value: jiff::SignedDuration,
    },
    /// `response_body_limit` above [`MAX_RESPONSE_BODY_LIMIT`].
    #[error(
        "response_body_limit of {bytes} bytes is out of range 0..={max}",
        max = MAX_RESPONSE_BODY_LIMIT
    )]
    BodyLimitOutOfRange {
        /// The limit given.
        bytes: usize,
    },
}

/// A retry policy's duration setting ([`PolicyError::DurationOutOfRange`]). `Display` is the
/// setting's name in the policy's JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DurationSetting {
    /// `max_age`: how long after its creation (or replay) a delivery is retried.
    MaxAge,
    /// `retry_after_max`: the furthest a `Retry-After` answer moves the next attempt.
    RetryAfterMax,
}

impl DurationSetting {
    /// The range the setting accepts, as `Display` shows it: `10ms..=720h` for `max_age`,
    /// `0s..=24h` for `retry_after_max`.
    pub fn range(self) -> String {
        match self {
            Self::MaxAge => format!("{MIN_DELAY:#}..={MAX_AGE:#}"),
            Self::RetryAfterMax => format!("0s..={MAX_DELAY:#}"),
        }
    }
}

impl fmt::Display for DurationSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MaxAge => "max_age",
            Self::RetryAfterMax => "retry_after_max",
        })
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
    #[error("the stored request is invalid: {problem}")]
    InvalidRequest {
        /// What is wrong with it.
        problem: StoredRequestProblem,
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

/// What the `http` crate rejected in a stored request ([`DeliveryError::InvalidRequest`]).
/// `Display` is the `http` crate's own wording; no variant repeats a part of the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoredRequestProblem {
    /// The method is not a valid HTTP method.
    Method,
    /// The URI is not valid; the `http` crate's reason (such as `invalid uri character`), which
    /// repeats no part of the URI.
    Uri(String),
    /// A header name is not a valid HTTP header name.
    HeaderName,
    /// A header value holds bytes a header value may not hold.
    HeaderValue,
    /// The request has more headers than the `http` crate holds.
    TooManyHeaders,
    /// A reason this crate does not know, in the `http` crate's words.
    Other(String),
}

impl StoredRequestProblem {
    /// What `error` (from assembling a stored request) says is wrong.
    pub(crate) fn of(error: &http::Error) -> Self {
        if error.is::<http::method::InvalidMethod>() {
            Self::Method
        } else if error.is::<http::uri::InvalidUri>() || error.is::<http::uri::InvalidUriParts>() {
            Self::Uri(error.to_string())
        } else if error.is::<http::header::InvalidHeaderName>() {
            Self::HeaderName
        } else if error.is::<http::header::InvalidHeaderValue>() {
            Self::HeaderValue
        } else if error.is::<http::header::MaxSizeReached>() {
            Self::TooManyHeaders
        } else {
            Self::Other(error.to_string())
        }
    }
}

impl fmt::Display for StoredRequestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Method => f.write_str("invalid HTTP method"),
            Self::Uri(reason) | Self::Other(reason) => f.write_str(reason),
            Self::HeaderName => f.write_str("invalid HTTP header name"),
            Self::HeaderValue => f.write_str("failed to parse header value"),
            Self::TooManyHeaders => f.write_str("max size reached"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_request_problems_read_as_the_http_crate_words_them() {
        let cases: [(http::Error, StoredRequestProblem); 4] = [
            (
                http::Request::builder()
                    .method("GE T")
                    .body(())
                    .unwrap_err(),
                StoredRequestProblem::Method,
            ),
            (
                http::Request::builder().uri("a b").body(()).unwrap_err(),
                StoredRequestProblem::Uri("invalid uri character".into()),
            ),
            (
                http::Request::builder()
                    .header("a b", "x")
                    .body(())
                    .unwrap_err(),
                StoredRequestProblem::HeaderName,
            ),
            (
                http::Request::builder()
                    .header("a", "x\ny")
                    .body(())
                    .unwrap_err(),
                StoredRequestProblem::HeaderValue,
            ),
        ];
        for (error, problem) in cases {
            assert_eq!(StoredRequestProblem::of(&error), problem);
            assert_eq!(problem.to_string(), error.to_string());
        }
    }
}
