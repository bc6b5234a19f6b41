//! The writer's copy of every endpoint's health, so that a claim or a record does not read the
//! endpoint's row each time, and a healthy endpoint's successes are not written one by one.
//!
//! The copy is good while no other connection has committed to the file: the writer reads
//! SQLite's `data_version` as each group commit begins (with endpoint health on), and reads
//! every row again when it moved (another process, or another store on the same file, wrote).
//! A rollback drops the copy, and the next use in the same transaction reads the rows again
//! ([`Healths::ensure`]); so does every group commit of a store without endpoint health that
//! pauses or resumes. What the copy may hold that its row does not: the successes (and neutral
//! answers) of a healthy endpoint without limits, for at most [`DEFER`]; they are kept apart
//! and counted again in the row read back ([`EndpointHealth::absorb_success`]) when another
//! connection wrote it. A change of state, a failure, a hold, a release, a token or a probe
//! taken is written in the same transaction as the attempt or the claim. A crash loses at most a
//! second of successes from the breaker's window (which can only make the breaker quicker to
//! open), never a delivery.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use sqlx::sqlite::SqliteConnection;

use crate::health::{
    AttemptClass, Endpoint, EndpointHealth, EndpointPolicy, Limits, MAX_WINDOW_ATTEMPTS,
};
use crate::store::StoreError;
use crate::store::sql;
use crate::store::sql_health::{self, ALL_HEALTH};

/// How long a healthy endpoint's successes may stay in the writer's copy only.
pub(super) const DEFER: Duration = Duration::from_secs(1);

/// ($1 endpoint, $2 state, $3 health, $4 blocked until): writes an endpoint's row, creating it
/// if it has none.
const UPSERT_ENDPOINT: &str = "INSERT INTO optout_relay_endpoints \
     (endpoint, state, health, blocked_until) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (endpoint) DO UPDATE SET state = excluded.state, health = excluded.health, \
     blocked_until = excluded.blocked_until";

struct Cached {
    /// The health as this writer knows it.
    health: EndpointHealth,
    /// What the row holds (`None`: no row).
    stored: Option<EndpointHealth>,
    /// When this writer last wrote the row (`None`: not since the copy was read).
    written_at: Option<Timestamp>,
}

/// The writer's copy of every endpoint's health.
#[derive(Default)]
pub(super) struct Healths {
    /// The file's `data_version` when the copy was read; `None` when it must be read again.
    version: Option<i64>,
    endpoints: HashMap<String, Cached>,
    /// The endpoints known to have a row (rows are never deleted; a rollback forgets them).
    rows: HashSet<String>,
    /// Each endpoint's successes kept in the copy only (not yet in its row), with their times.
    waiting: HashMap<String, Vec<Timestamp>>,
}

impl Healths {
    /// Drops the copy after a rollback: what it held may not be in the file. The next use reads
    /// the rows again.
    pub(super) fn invalidate(&mut self) {
        self.version = None;
        self.endpoints.clear();
        self.rows.clear();
    }

    /// Drops the health copy (not the rows known): for a store that does not check the file's
    /// version at each group commit.
    pub(super) fn forget(&mut self) {
        self.version = None;
        self.endpoints.clear();
    }

    /// Reads the rows again if the copy was dropped (the file's version read now).
    pub(super) async fn ensure(
        &mut self,
        conn: &mut SqliteConnection,
        policy: &EndpointPolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if self.version.is_some() {
            return Ok(());
        }
        let version: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut *conn)
            .await
            .map_err(sql::error)?;
        self.check(conn, version, policy, now).await
    }

    /// Reads every row again if another connection committed since the copy was read (or the
    /// copy was dropped). Runs inside the group commit's transaction.
    pub(super) async fn check(
        &mut self,
        conn: &mut SqliteConnection,
        version: i64,
        policy: &EndpointPolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if self.version == Some(version) {
            return Ok(());
        }
        self.invalidate();
        let rows: Vec<(String, String)> = sqlx::query_as(ALL_HEALTH)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql::error)?;
        for (endpoint, text) in rows {
            let stored = sql_health::health_of(&endpoint, &text)?;
            // The successes this writer had not written yet count in the row read back.
            let mut health = stored.clone();
            for at in self.waiting.get(&endpoint).into_iter().flatten() {
                health.absorb_success(*at, now, policy);
            }
            self.rows.insert(endpoint.clone());
            self.endpoints.insert(
                endpoint,
                Cached {
                    health,
                    stored: Some(stored),
                    written_at: None,
                },
            );
        }
        self.version = Some(version);
        Ok(())
    }

    /// An endpoint's health (healthy if it has no row).
    pub(super) fn get(&self, endpoint: &Endpoint) -> EndpointHealth {
        self.endpoints
            .get(endpoint.as_str())
            .map(|cached| cached.health.clone())
            .unwrap_or_default()
    }

    /// Whether the endpoint is known to have a row.
    pub(super) fn has_row(&self, endpoint: &str) -> bool {
        self.rows.contains(endpoint)
    }

    /// Whether every endpoint is healthy.
    pub(super) fn all_healthy(&self) -> bool {
        self.endpoints
            .values()
            .all(|cached| cached.health.state().is_healthy())
    }

    /// Notes a row made healthy at admission.
    pub(super) fn made(&mut self, endpoint: &str) {
        self.rows.insert(endpoint.to_owned());
        if self.version.is_some() {
            self.endpoints
                .entry(endpoint.to_owned())
                .or_insert_with(|| Cached {
                    health: EndpointHealth::default(),
                    stored: Some(EndpointHealth::default()),
                    written_at: None,
                });
        }
    }

    /// Whether `health`, the endpoint's health after an attempt of class `class` (or a claim,
    /// `None`), must be written now rather than kept in the copy for up to [`DEFER`].
    pub(super) fn must_write(
        &self,
        endpoint: &Endpoint,
        health: &EndpointHealth,
        class: Option<AttemptClass>,
        limits: Limits,
        now: Timestamp,
    ) -> bool {
        let Some(cached) = self.endpoints.get(endpoint.as_str()) else {
            return true;
        };
        let Some(stored) = &cached.stored else {
            return true;
        };
        if stored == health {
            return false;
        }
        let deferrable = matches!(class, Some(AttemptClass::Succeeded | AttemptClass::Neutral))
            && limits == Limits::NONE
            && health.state().is_healthy()
            && stored.state() == health.state();
        !deferrable || cached.written_at.is_none_or(|at| now >= plus(at, DEFER))
    }

    /// Writes an endpoint's row (inside the caller's transaction or savepoint).
    pub(super) async fn write(
        conn: &mut SqliteConnection,
        endpoint: &Endpoint,
        health: &EndpointHealth,
        policy: &EndpointPolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (state, text, blocked) = sql_health::endpoint_columns(health, endpoint, policy, now);
        sqlx::query(UPSERT_ENDPOINT)
            .bind(endpoint.as_str())
            .bind(state)
            .bind(text)
            .bind(blocked)
            .execute(&mut *conn)
            .await
            .map_err(sql::error)?;
        Ok(())
    }

    /// Keeps `health` as the endpoint's health once the statements that used it succeeded:
    /// `written` when its row was written with it; otherwise `successes` (their times) are the
    /// successes it holds that the row does not.
    pub(super) fn keep(
        &mut self,
        endpoint: &Endpoint,
        health: EndpointHealth,
        written: bool,
        successes: &[Timestamp],
        now: Timestamp,
    ) {
        let key = endpoint.as_str();
        if written {
            self.rows.insert(key.to_owned());
            self.waiting.remove(key);
        } else if !successes.is_empty() {
            let waiting = self.waiting.entry(key.to_owned()).or_default();
            waiting.extend_from_slice(successes);
            let extra = waiting.len().saturating_sub(MAX_WINDOW_ATTEMPTS);
            waiting.drain(..extra);
        }
        let cached = self
            .endpoints
            .entry(key.to_owned())
            .or_insert_with(|| Cached {
                health: EndpointHealth::default(),
                stored: None,
                written_at: None,
            });
        if written {
            cached.stored = Some(health.clone());
            cached.written_at = Some(now);
        }
        cached.health = health;
    }

    /// Writes every health the copy holds newer than its row (as the writer stops), if no other
    /// connection wrote since the copy was read.
    pub(super) async fn flush(
        &mut self,
        conn: &mut SqliteConnection,
        version: i64,
        policy: &EndpointPolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if self.version != Some(version) {
            return Ok(());
        }
        for (endpoint, cached) in &self.endpoints {
            if cached.stored.as_ref() != Some(&cached.health) {
                let key = Endpoint::from_stored(endpoint.clone());
                Self::write(conn, &key, &cached.health, policy, now).await?;
            }
        }
        self.waiting.clear();
        Ok(())
    }
}

fn plus(at: Timestamp, by: Duration) -> Timestamp {
    at.checked_add(jiff::SignedDuration::try_from(by).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}
