//! One attempt of a delivery and what it got back, and how many attempts a delivery keeps.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::transport::{TransportError, TransportErrorKind};

/// What one attempt got back.
///
/// `Debug` shows the response body's length, not its text: a receiver may echo the personal data
/// it was sent. The text is in the field (and in the serialized record).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// A response arrived.
    Response {
        /// Its status code.
        status: u16,
        /// Its `Retry-After` header, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
        /// The start of its body (lossy UTF-8), at most the policy's `response_body_limit`
        /// bytes.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        body: String,
        /// Whether `body` was cut short.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        body_truncated: bool,
    },
    /// No response arrived.
    Error {
        /// What failed.
        kind: TransportErrorKind,
        /// The transport's message.
        message: String,
    },
}

impl std::fmt::Debug for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Response {
                status,
                retry_after,
                body,
                body_truncated,
            } => f
                .debug_struct("Response")
                .field("status", status)
                .field("retry_after", retry_after)
                .field("body_bytes", &body.len())
                .field("body_truncated", body_truncated)
                .finish(),
            Self::Error { kind, message } => f
                .debug_struct("Error")
                .field("kind", kind)
                .field("message", message)
                .finish(),
        }
    }
}

impl AttemptOutcome {
    /// Records a response, keeping at most `body_limit` bytes of its body.
    pub fn from_response(response: &http::Response<Vec<u8>>, body_limit: usize) -> Self {
        let body = response.body();
        let kept = &body[..body.len().min(body_limit)];
        let mut text = String::from_utf8_lossy(kept).into_owned();
        // Each byte that is not UTF-8 became a 3-byte U+FFFD: cut again, at a character
        // boundary, so that the record holds at most `body_limit` bytes whatever was received.
        let mut end = text.len().min(body_limit);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let recut = end < text.len();
        text.truncate(end);
        Self::Response {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(64).collect()),
            body: text,
            body_truncated: kept.len() < body.len() || recut,
        }
    }

    /// Records a transport error.
    pub fn from_error(error: &TransportError) -> Self {
        Self::Error {
            kind: error.kind(),
            message: error.message().chars().take(512).collect(),
        }
    }
}

/// How many of a delivery's first attempts it keeps: 1 (the first answer often says what is
/// wrong: a bad URL, a refused credential).
pub const KEPT_FIRST_ATTEMPTS: usize = 1;

/// How many of a delivery's latest attempts it keeps besides the first ones: 16 (twice the
/// default policy's 8 attempts, so that a delivery replayed once keeps its whole history).
///
/// The attempts in between are dropped as new ones are recorded, so a delivery's record stays
/// bounded however often it is retried and replayed; [`Delivery::attempt_count`] still counts
/// them all, and the retry policy counts with it.
///
/// [`Delivery::attempt_count`]: crate::delivery::Delivery::attempt_count
pub const KEPT_LATEST_ATTEMPTS: usize = 16;

/// One attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Attempt {
    /// When it started.
    pub started_at: Timestamp,
    /// How long it took.
    pub duration: SignedDuration,
    /// What it got back.
    pub outcome: AttemptOutcome,
}
