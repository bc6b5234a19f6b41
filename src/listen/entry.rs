//! The entry rule every store applies inside its admit transaction: pure, so that the volatile,
//! SQLite and PostgreSQL stores decide alike. Exported from [`relay`](crate::relay).

use jiff::Timestamp;

use serde::{Deserialize, Serialize};

use crate::listen::EntryLimit;

/// What a store holds about one (flow, Profile) when it decides an entry (see
/// [`decide_entry`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryHistory {
    /// This very event already entered this flow (a re-delivered copy).
    pub already_entered: bool,
    /// The Profile's entries into the flow that count against the limit: those at times `t`
    /// with `now - within < t` for a windowed limit (see [`window_start`]), every entry
    /// otherwise. Entries later than `now` count too: another submitter admitted them
    /// concurrently, with a plan made a moment later.
    pub counted: u32,
    /// Every entry of the Profile into the flow that the store holds.
    pub total: u32,
}

/// The start of the window a limit counts entries in at `now` (exclusive): entries at `t` with
/// `start < t` count. `None` when every entry counts (no window, or unlimited).
pub fn window_start(limit: EntryLimit, now: Timestamp) -> Option<Timestamp> {
    match limit {
        EntryLimit::AtMost {
            within: Some(window),
            ..
        } => Some(now.checked_sub(window.duration()).unwrap_or(Timestamp::MIN)),
        _ => None,
    }
}

/// The entry rule: a re-delivered copy of an event already entered is
/// [`EntryDecision::AlreadyEntered`] whatever the limit; an entry that the limit refuses is
/// [`EntryDecision::LimitReached`]; otherwise the Profile enters, as its `total + 1`-th entry.
/// Pure; every store calls it inside its admit transaction.
///
/// ```
/// use optout_relay::*;
/// use optout_relay::relay::{EntryHistory, decide_entry};
/// use optout_relay::listen::EntryDecision;
///
/// let once = EntryLimit::at_most(1)?;
/// let fresh = EntryHistory::default();
/// assert_eq!(decide_entry(once, &fresh), EntryDecision::Entered { entry: 1 });
/// let seen = EntryHistory { already_entered: false, counted: 1, total: 1 };
/// assert_eq!(decide_entry(once, &seen), EntryDecision::LimitReached { limit: once, entries: 1 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decide_entry(limit: EntryLimit, history: &EntryHistory) -> EntryDecision {
    if history.already_entered {
        return EntryDecision::AlreadyEntered;
    }
    if let EntryLimit::AtMost { entries: max, .. } = limit {
        if history.counted >= max.get() {
            return EntryDecision::LimitReached {
                limit,
                entries: history.counted,
            };
        }
    }
    EntryDecision::Entered {
        entry: history.total.saturating_add(1),
    }
}

/// What the entry rule decided about one entry (in a store's admit transaction, or in an
/// [`EntryLedger`](crate::listen::EntryLedger)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
#[non_exhaustive]
#[must_use]
pub enum EntryDecision {
    /// The Profile entered; this is its `entry`-th entry into the flow (1-based, counted over
    /// the ledger's whole memory).
    Entered {
        /// The entry's number.
        entry: u32,
    },
    /// This very event already entered this flow (a re-delivered copy): not entered again.
    AlreadyEntered,
    /// The flow's entry limit refused the entry: `entries` earlier entries count against it.
    LimitReached {
        /// The flow's limit.
        limit: EntryLimit,
        /// How many entries counted against the limit.
        entries: u32,
    },
}

impl EntryDecision {
    /// Whether the Profile entered.
    pub fn entered(&self) -> bool {
        matches!(self, Self::Entered { .. })
    }
}
