//! What comes next to a delivery ([`Step`]), where it stands ([`DeliveryState`]), and why it
//! was given up ([`DeadLetterReason`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::transport::TransportErrorKind;

/// Why a delivery was given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The receiver answered with a status that retrying would not change (3xx, 4xx other than
    /// 408, 410 and 429, or 1xx).
    Rejected {
        /// The status.
        status: u16,
    },
    /// The receiver answered 410 Gone: the endpoint should be disabled.
    Gone,
    /// The transport failed in a way retrying would not change (such as a blocked destination).
    NotRetryable {
        /// What failed.
        kind: TransportErrorKind,
    },
    /// Every attempt the policy allows failed.
    AttemptsExhausted {
        /// How many attempts were made.
        attempts: u32,
    },
    /// The next attempt would be later than the policy's maximum age.
    Expired {
        /// When the next attempt would have been.
        next_attempt_at: Timestamp,
    },
    /// Workers claimed it this many times and none recorded an attempt before its lease
    /// expired (a worker that crashes on it): given up so that it does not take worker after
    /// worker down. Replay it once the cause is fixed.
    Abandoned {
        /// How many claims expired without an attempt.
        claims: u32,
    },
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rejected { status } => write!(f, "rejected with status {status}"),
            Self::Gone => f.write_str("410 Gone: the endpoint should be disabled"),
            Self::NotRetryable { kind } => write!(f, "{kind} error, not retryable"),
            Self::AttemptsExhausted { attempts } => write!(f, "all {attempts} attempts failed"),
            Self::Expired { next_attempt_at } => {
                write!(
                    f,
                    "the next attempt ({next_attempt_at}) would exceed the maximum age"
                )
            }
            Self::Abandoned { claims } => {
                write!(f, "{claims} claims expired without an attempt recorded")
            }
        }
    }
}

impl DeadLetterReason {
    /// The reason's name, as serialized: `rejected`, `gone`, `not_retryable`,
    /// `attempts_exhausted`, `expired` or `abandoned`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "rejected",
            Self::Gone => "gone",
            Self::NotRetryable { .. } => "not_retryable",
            Self::AttemptsExhausted { .. } => "attempts_exhausted",
            Self::Expired { .. } => "expired",
            Self::Abandoned { .. } => "abandoned",
        }
    }

    /// Whether the endpoint should be disabled (the receiver answered 410 Gone).
    pub fn disable_endpoint(&self) -> bool {
        matches!(self, Self::Gone)
    }
}

/// What happens next to a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
#[must_use]
pub enum Step {
    /// The receiver accepted it (2xx).
    Delivered,
    /// Try again at this time.
    RetryAt {
        /// When.
        at: Timestamp,
    },
    /// Given up.
    DeadLetter {
        /// Why.
        reason: DeadLetterReason,
    },
}

impl Step {
    /// Whether this step ends the delivery.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::RetryAt { .. })
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending {
        /// When the next attempt is due.
        next_attempt_at: Timestamp,
    },
    /// Accepted by the receiver.
    Delivered {
        /// When the accepting attempt ended.
        at: Timestamp,
    },
    /// Given up.
    DeadLettered {
        /// When it was given up.
        at: Timestamp,
        /// Why.
        reason: DeadLetterReason,
    },
}
