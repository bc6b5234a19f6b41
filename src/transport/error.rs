//! What failed when no response arrived.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What failed when no response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made (refused, reset, unreachable). Retried.
    Connect,
    /// No complete response within the time allowed. Retried.
    Timeout,
    /// The host name could not be resolved. Retried (DNS failures are often temporary).
    Dns,
    /// The TLS handshake failed. Retried (the receiver may be renewing its certificate).
    Tls,
    /// The response body could not be read (for example the connection closed mid-response).
    /// Retried.
    Body,
    /// The destination is not allowed by the host's destination policy. Never retried.
    Blocked,
    /// The request itself cannot be sent (for example an invalid URL for this transport). Never
    /// retried.
    InvalidRequest,
    /// Anything else. Retried.
    Other,
}

impl TransportErrorKind {
    /// Whether an attempt that failed this way is worth retrying.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Blocked | Self::InvalidRequest)
    }

    /// The wire name, such as `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Body => "body",
            Self::Blocked => "blocked",
            Self::InvalidRequest => "invalid_request",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// No response arrived: what failed, and a message for people.
///
/// The message must not hold personal data: adapters describe the failure (such as "connection
/// refused"), never the request's URL, which may carry an email address in its query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind} error: {message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

impl TransportError {
    /// A transport error of `kind`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What failed.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the attempt is worth retrying.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}
