//! What went wrong in a store, and whether retrying makes sense.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of store failure, and whether retrying makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached or is busy (connection refused or lost, the database locked
    /// for too long, an I/O error). Retrying later makes sense; nothing was committed.
    Unavailable,
    /// The claim's lease was taken over by another worker (or the delivery has ended): the
    /// attempt's result was not recorded, and the worker that holds the delivery now decides.
    /// Retrying makes no sense.
    LeaseLost,
    /// Stored data could not be read back (a row that is not a delivery this crate wrote).
    Corrupt,
    /// The database's schema is newer than this crate knows, or could not be created.
    Schema,
    /// The store has been closed.
    Closed,
    /// Anything else the database reported (a constraint, a type mismatch).
    Other,
}

impl StoreErrorKind {
    /// Whether an operation that failed this way may succeed if tried again.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable)
    }

    /// The name, such as `unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::LeaseLost => "lease_lost",
            Self::Corrupt => "corrupt",
            Self::Schema => "schema",
            Self::Closed => "closed",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store operation failed: what kind of failure, and a message for people. Nothing the
/// operation would have written was committed.
///
/// The message names tables, ids and the database's own words; never an email, a number or a
/// request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery store {kind}: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    /// A store error of `kind`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What failed.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    pub(crate) fn lease_lost(webhook_id: &str) -> Self {
        Self::new(
            StoreErrorKind::LeaseLost,
            format!(
                "the claim on {webhook_id} is no longer held (its lease expired and another worker took it, or it ended)"
            ),
        )
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn corrupt(webhook_id: &str, error: impl fmt::Display) -> Self {
        Self::new(
            StoreErrorKind::Corrupt,
            format!("delivery {webhook_id} cannot be read back: {error}"),
        )
    }
}
