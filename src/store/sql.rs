//! What the SQL stores share: a delivery's columns, and errors from sqlx.

use jiff::Timestamp;

use crate::delivery::{Delivery, DeliveryState};
use crate::store::{StoreError, StoreErrorKind};

/// The schema version this crate writes (the `version` row of `optout_relay_schema`).
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// Milliseconds since the Unix epoch: how the SQL stores keep times.
pub(crate) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

pub(crate) fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// The columns a delivery is stored under, besides its ids.
pub(crate) struct Columns {
    pub(crate) state: &'static str,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) attempts: i64,
    pub(crate) finished_at: Option<i64>,
    pub(crate) data: String,
    /// The delivery's endpoint key ([`Endpoint`](crate::health::Endpoint)).
    pub(crate) endpoint: String,
}

impl Columns {
    pub(crate) fn of(delivery: &Delivery) -> Result<Self, StoreError> {
        let (state, next_attempt_at, finished_at) = match delivery.state() {
            DeliveryState::Pending { next_attempt_at } => {
                ("pending", Some(millis(*next_attempt_at)), None)
            }
            DeliveryState::Delivered { at } => ("delivered", None, Some(millis(*at))),
            DeliveryState::DeadLettered { at, .. } => ("dead_lettered", None, Some(millis(*at))),
        };
        let data = serde_json::to_string(delivery).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "delivery {} cannot be written as JSON: {e}",
                    delivery.webhook_id()
                ),
            )
        })?;
        Ok(Self {
            state,
            next_attempt_at,
            attempts: i64::from(delivery.attempt_count()),
            finished_at,
            data,
            endpoint: delivery.endpoint().as_str().to_owned(),
        })
    }
}

/// Reads a delivery back from its `data` column.
pub(crate) fn decode(webhook_id: &str, data: &str) -> Result<Delivery, StoreError> {
    serde_json::from_str(data).map_err(|e| StoreError::corrupt(webhook_id, e))
}

/// A store error from a sqlx error: connection and I/O trouble, pool time-outs and a locked
/// database are worth retrying.
pub(crate) fn error(error: sqlx::Error) -> StoreError {
    let kind = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreErrorKind::Unavailable,
        sqlx::Error::PoolClosed => StoreErrorKind::Closed,
        sqlx::Error::Database(db) => {
            let code = db.code();
            match code.as_deref() {
                // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes; I/O
                // (10), full (13), cannot open (14).
                Some(c) if is_sqlite_transient(c) => StoreErrorKind::Unavailable,
                // PostgreSQL: connection exceptions (08), insufficient resources (53),
                // operator intervention (57: shutdown), serialization and deadlock (40).
                Some(c) if c.starts_with("08") || c.starts_with("53") || c.starts_with("57") => {
                    StoreErrorKind::Unavailable
                }
                Some(c) if c.starts_with("40") => StoreErrorKind::Unavailable,
                _ => StoreErrorKind::Other,
            }
        }
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, error.to_string())
}

fn is_sqlite_transient(code: &str) -> bool {
    code.parse::<u32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14))
}

// The statements both SQL stores run; `$n` placeholders (SQLite reads `$1` as parameter 1).

/// [`RECORD`]'s text, for statements built on it.
macro_rules! record_sql {
    () => {
        "UPDATE optout_relay_deliveries SET state = $1, \
         next_attempt_at = $2, attempts = $3, finished_at = $4, data = $5, lease_until = NULL, \
         abandoned = 0 \
         WHERE webhook_id = $6 AND claims = $7 AND state = 'pending' AND lease_until IS NOT NULL"
    };
}
#[cfg(feature = "postgres")]
pub(crate) use record_sql;

/// ($1 state, $2 next attempt, $3 attempts, $4 finished at, $5 data, $6 webhook id, $7 claim):
/// fenced by the claim number.
pub(crate) const RECORD: &str = record_sql!();

/// [`RECORD`] with its binds: a delivery's `columns`, fenced by the claim `token`.
macro_rules! record_query {
    ($columns:expr, $token:expr) => {
        $crate::store::sql::record_query!(sqlx::query($crate::store::sql::RECORD); $columns, $token)
    };
    ($query:expr; $columns:expr, $token:expr) => {
        $query
            .bind($columns.state)
            .bind($columns.next_attempt_at)
            .bind($columns.attempts)
            .bind($columns.finished_at)
            .bind(&$columns.data)
            .bind(&$token.webhook_id)
            .bind(i64::try_from($token.claim).unwrap_or(i64::MAX))
    };
}

/// [`REWRITE`] with its binds: a delivery's `columns` and its webhook id.
macro_rules! rewrite_query {
    ($columns:expr, $webhook_id:expr) => {
        sqlx::query($crate::store::sql::REWRITE)
            .bind($columns.state)
            .bind($columns.next_attempt_at)
            .bind($columns.attempts)
            .bind($columns.finished_at)
            .bind(&$columns.data)
            .bind($webhook_id)
    };
}

pub(crate) use {record_query, rewrite_query};

/// ($1 webhook id, $2 claim).
pub(crate) const RELEASE: &str = "UPDATE optout_relay_deliveries SET lease_until = NULL \
     WHERE webhook_id = $1 AND claims = $2 AND state = 'pending' AND lease_until IS NOT NULL";

/// ($1 state, $2 next attempt, $3 attempts, $4 finished at, $5 data, $6 webhook id): a store's
/// own change to a delivery (replay, abandoned).
pub(crate) const REWRITE: &str = "UPDATE optout_relay_deliveries SET state = $1, \
     next_attempt_at = $2, attempts = $3, finished_at = $4, data = $5, lease_until = NULL, \
     abandoned = 0 WHERE webhook_id = $6";

/// ($1 webhook id) -> data.
pub(crate) const DEAD_LETTER_DATA: &str = "SELECT data FROM optout_relay_deliveries \
     WHERE webhook_id = $1 AND state = 'dead_lettered'";

/// ($1 before).
pub(crate) const PURGE: &str = "DELETE FROM optout_relay_deliveries \
     WHERE state <> 'pending' AND finished_at < $1";

/// ($1 now) -> (state, count, leased).
pub(crate) const COUNTS: &str = "SELECT state, count(*), \
     count(CASE WHEN lease_until > $1 THEN 1 END) \
     FROM optout_relay_deliveries GROUP BY state";

/// -> count.
pub(crate) const COUNT_ENTRIES: &str = "SELECT count(*) FROM optout_relay_entries";

/// -> (earliest due not leased, earliest lease end).
pub(crate) const NEXT_DUE: &str = "SELECT \
     (SELECT min(next_attempt_at) FROM optout_relay_deliveries \
        WHERE state = 'pending' AND lease_until IS NULL), \
     (SELECT min(lease_until) FROM optout_relay_deliveries \
        WHERE state = 'pending' AND lease_until IS NOT NULL)";

/// ($1 webhook id) -> data.
pub(crate) const GET: &str = "SELECT data FROM optout_relay_deliveries WHERE webhook_id = $1";

/// ($1 state, $2 flow or NULL, $3 after or '', $4 limit) -> (webhook id, data).
pub(crate) const LIST: &str = "SELECT webhook_id, data FROM optout_relay_deliveries \
     WHERE state = $1 AND ($2 IS NULL OR flow = $2) AND webhook_id > $3 \
     ORDER BY webhook_id LIMIT $4";

/// A claimed row as returned: (webhook id, claim number, abandoned claims, data, admission
/// order: SQLite's `rowid`, PostgreSQL's `seq`).
pub(crate) type ClaimedRow = (String, i64, i64, String, i64);

/// Turns claimed rows into claims; rows abandoned too often become dead letters at `now`,
/// returned apart to be rewritten.
pub(crate) fn sort_claims(
    rows: Vec<ClaimedRow>,
    now: Timestamp,
) -> Result<(Vec<crate::store::Claim>, Vec<Delivery>), StoreError> {
    let mut claims = Vec::with_capacity(rows.len());
    let mut abandoned = Vec::new();
    let mut order = Vec::with_capacity(rows.len());
    for (webhook_id, claim, strikes, data, seq) in rows {
        let mut delivery = decode(&webhook_id, &data)?;
        let strikes = u32::try_from(strikes).unwrap_or(u32::MAX);
        if strikes >= crate::store::MAX_ABANDONED_CLAIMS {
            delivery.dead_letter(
                crate::delivery::DeadLetterReason::Abandoned { claims: strikes },
                now,
            );
            abandoned.push(delivery);
            continue;
        }
        order.push((delivery.next_attempt_at(), seq));
        claims.push(crate::store::Claim {
            delivery,
            token: crate::store::ClaimToken {
                webhook_id,
                claim: u64::try_from(claim).unwrap_or(0),
            },
        });
    }
    // Earliest due first, then in admission order.
    let mut sorted: Vec<_> = order.into_iter().zip(claims).collect();
    sorted.sort_by_key(|(key, _)| *key);
    Ok((
        sorted.into_iter().map(|(_, claim)| claim).collect(),
        abandoned,
    ))
}

/// Counts from rows of [`COUNTS`] and the number of entries.
pub(crate) fn counts(rows: Vec<(String, i64, Option<i64>)>, entries: i64) -> crate::store::Counts {
    let mut counts = crate::store::Counts {
        entries: u64::try_from(entries).unwrap_or(0),
        ..Default::default()
    };
    for (state, count, leased) in rows {
        let count = u64::try_from(count).unwrap_or(0);
        match state.as_str() {
            "pending" => {
                counts.pending = count;
                counts.leased = leased.and_then(|l| u64::try_from(l).ok()).unwrap_or(0);
            }
            "delivered" => counts.delivered = count,
            _ => counts.dead_lettered = count,
        }
    }
    counts
}
