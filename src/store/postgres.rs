//! PostgreSQL: one table shared by any number of worker processes on any number of machines.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;

use crate::delivery::Delivery;
use crate::health::{Endpoint, EndpointChange, EndpointPolicy, EndpointStatus};
use crate::listen::{DeliveryOrder, EntryDecision};
use crate::relay::{EntryHistory, Plan, Submitted, decide_entry, window_start};
use crate::store::sql::{self, Columns, millis};
use crate::store::{
    Claim, ClaimToken, Counts, DeliveryStore, ListQuery, Recorded, StoreError, StoreErrorKind,
};
use crate::webhook::WebhookId;

mod endpoints;

pub use endpoints::NOTIFY_CHANNEL;
use endpoints::{DB_NOW, notify, rewrite};

/// The key of the advisory lock held while the tables are created.
const MIGRATION_LOCK: i64 = 0x6f70_746f_7574_0001;

/// Claims due deliveries in one statement: the time is the database's, rows locked by another
/// claimer are skipped, expired leases are taken over. ($1 lease in milliseconds, $2 how many.)
/// Returns the claimed rows, each with the claim's time.
const CLAIM: &str = "WITH clock AS ( \
       SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now), \
     due AS ( \
       SELECT webhook_id FROM optout_relay_deliveries, clock \
       WHERE state = 'pending' \
         AND ((lease_until IS NULL AND next_attempt_at <= clock.now) \
              OR lease_until <= clock.now) \
       ORDER BY next_attempt_at \
       LIMIT $2 \
       FOR UPDATE OF optout_relay_deliveries SKIP LOCKED) \
     UPDATE optout_relay_deliveries AS d \
     SET claims = d.claims + 1, \
         abandoned = d.abandoned + (CASE WHEN d.lease_until IS NULL THEN 0 ELSE 1 END), \
         lease_until = clock.now + $1 \
     FROM due, clock WHERE d.webhook_id = due.webhook_id \
     RETURNING d.webhook_id, d.claims, d.abandoned, d.data, d.seq, clock.now";

/// Claims up to `max` due deliveries with `statement` (($1 lease in milliseconds, $2 how many)
/// -> (webhook id, claim, abandoned, data, now)): [`CLAIM`], or endpoint health's claim of
/// healthy endpoints' work.
async fn claim_due(
    pool: &PgPool,
    statement: &'static str,
    max: usize,
    lease: Duration,
) -> Result<Vec<Claim>, StoreError> {
    let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let rows: Vec<(String, i64, i64, String, i64, i64)> = sqlx::query_as(statement)
        .bind(lease)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
        .map_err(sql::error)?;
    let Some(now) = rows.first().map(|row| sql::from_millis(row.5)) else {
        return Ok(Vec::new());
    };
    let rows = rows
        .into_iter()
        .map(|(id, claim, abandoned, data, seq, _)| (id, claim, abandoned, data, seq))
        .collect();
    let (claims, abandoned) = sql::sort_claims(rows, now)?;
    // Abandoned too often: dead-lettered while still leased to this claim, so no other worker
    // takes them in between.
    for delivery in abandoned {
        rewrite(pool, &delivery).await?;
    }
    Ok(claims)
}

/// ($1 flow, $2 event, $3 profile, $4 window start, exclusive) -> (already, total, counted).
/// Entries later than the plan's time count too: they were admitted concurrently.
const ENTRY_HISTORY: &str = "SELECT \
     (SELECT count(*) FROM optout_relay_entries WHERE flow = $1 AND event = $2), \
     (SELECT count(*) FROM optout_relay_entries WHERE flow = $1 AND profile = $3), \
     (SELECT count(*) FROM optout_relay_entries WHERE flow = $1 AND profile = $3 \
        AND entered_at > $4)";

/// ($1 flow, $2 event, $3 profile, $4 entered at, $5 webhook id).
const INSERT_ENTRY: &str = "INSERT INTO optout_relay_entries \
     (flow, event, profile, entered_at, webhook_id) VALUES ($1, $2, $3, $4, $5)";

/// ($1 webhook id, $2 flow, $3 event, $4 profile, $5 state, $6 next attempt, $7 attempts,
/// $8 created at, $9 finished at, $10 data, $11 endpoint, $12 ordered). The webhook id is the
/// key: admitting the same delivery twice stores it once.
const INSERT_DELIVERY: &str = "INSERT INTO optout_relay_deliveries \
     (webhook_id, flow, event, profile, state, next_attempt_at, attempts, created_at, \
      finished_at, data, endpoint, ordered) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (webhook_id) DO NOTHING";

/// Opens a [`PostgresStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresStoreBuilder {
    url: String,
    max_connections: u32,
    listen: bool,
    policy: EndpointPolicy,
}

impl PostgresStoreBuilder {
    /// The most connections the store's pool opens (default 16, at least 2).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(2);
        self
    }

    /// Whether to hold a `LISTEN` connection that wakes workers when another process admits or
    /// replays work (default on). Off, workers find such work at their poll interval.
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// How the store keeps endpoint health: the circuit breaker, pauses, and the per-endpoint
    /// limits every process sharing the database is held to (default
    /// [`EndpointPolicy::default`]). Give every process that shares the database the same
    /// policy. [`EndpointPolicy::off`] claims and records exactly as before endpoint health
    /// existed.
    pub fn endpoint_policy(mut self, policy: EndpointPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Connects, and creates the tables if they are missing (under an advisory lock, so that
    /// many processes starting at once do not race).
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Unavailable`] when the server cannot be reached;
    /// [`StoreErrorKind::Schema`] when the database holds a newer schema than this crate
    /// writes; [`StoreErrorKind::Other`] for a URL that cannot be read.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub async fn open(self) -> Result<PostgresStore, StoreError> {
        let options: PgConnectOptions = self.url.parse().map_err(|_| {
            StoreError::new(
                StoreErrorKind::Other,
                "the PostgreSQL URL cannot be read (expected postgres://user@host/db or \
                 postgres:///db?host=/socket/dir&user=name)",
            )
        })?;
        let options = options.disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(sql::error)?;
        {
            let mut conn = pool.acquire().await.map_err(sql::error)?;
            migrate(&mut conn).await?;
        }
        let wake = Arc::new(Notify::new());
        let listener = if self.listen {
            Some(tokio::spawn(listen(pool.clone(), Arc::clone(&wake))))
        } else {
            None
        };
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                wake,
                listener,
                policy: self.policy,
                deferred: endpoints::Deferred::default(),
            }),
        })
    }
}

/// A [`DeliveryStore`] on PostgreSQL, for hosts that outgrow one machine: any number of worker
/// processes on any number of machines share its tables.
///
/// - **Admit** runs in one transaction: an advisory transaction lock per (flow, Profile)
///   serializes the entry decisions of concurrent submitters (in any process), the entries and
///   deliveries are inserted, and a `NOTIFY optout_relay` wakes the workers at commit.
/// - **Claims** use `FOR UPDATE SKIP LOCKED`, with lease expiry inside the claim query and every
///   time (due, lease) from the database's clock; every later write is fenced by the claim's
///   number.
/// - **Endpoint health** ([`endpoint_policy`](PostgresStoreBuilder::endpoint_policy)) is kept in
///   `optout_relay_endpoints`, one row per endpoint, locked by every claim, record, pause and
///   resume of that endpoint, so its limits hold across every process.
/// - The tables (`optout_relay_deliveries`, `optout_relay_entries`, `optout_relay_endpoints`,
///   `optout_relay_schema`) are
///   created by [`open`](PostgresStoreBuilder::open) from [`MIGRATION`]. A host can enqueue
///   inside its own transaction (a true outbox) with [`admit_in`](Self::admit_in).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    wake: Arc<Notify>,
    listener: Option<tokio::task::JoinHandle<()>>,
    policy: EndpointPolicy,
    /// Healthy endpoints' successes not yet counted in their health.
    deferred: endpoints::Deferred,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.inner.pool.size())
            .finish_non_exhaustive()
    }
}

/// The SQL that creates the store's tables (schema version 2), as shipped with the crate: every
/// statement is idempotent, and it brings a database at version 1 to version 2 (the store then
/// fills in the endpoint of the deliveries version 1 wrote, on
/// [`open`](PostgresStoreBuilder::open)).
pub const MIGRATION: &str = concat!(
    include_str!("migrations/postgres.sql"),
    include_str!("migrations/postgres_v2.sql")
);

impl PostgresStore {
    /// A builder for the store at `url` (`postgres://user:password@host/db`, or
    /// `postgres:///db?host=/run/postgresql&user=name` for a Unix socket). Keep the URL out of logs: it
    /// may hold a password.
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.into(),
            max_connections: 16,
            listen: true,
            policy: EndpointPolicy::off(),
        }
    }

    /// Connects to `url` with the defaults (see [`PostgresStoreBuilder`]).
    ///
    /// # Errors
    ///
    /// As [`PostgresStoreBuilder::open`].
    pub async fn open(url: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(url).open().await
    }

    /// The connection pool, for hosts that run their own queries on the same database.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Admits `plan` inside the caller's transaction (or on the caller's connection): the host
    /// commits its own writes and the opt-out's deliveries together, a true outbox. The entries
    /// and deliveries are durable when the caller's transaction commits, not before; the
    /// workers are notified then.
    ///
    /// ```no_run
    /// # async fn example(store: &optout_relay::PostgresStore, plan: optout_relay::relay::Plan) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// // ... the host's own writes on &mut *tx ...
    /// let submitted = optout_relay::PostgresStore::admit_in(&mut tx, &plan).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; roll the caller's transaction back.
    pub async fn admit_in(conn: &mut PgConnection, plan: &Plan) -> Result<Submitted, StoreError> {
        let rows = plan
            .candidates
            .iter()
            .map(|c| Columns::of(&c.delivery))
            .collect::<Result<Vec<_>, _>>()?;
        admit(conn, plan, &rows).await
    }

    async fn now(conn: &mut PgConnection) -> Result<Timestamp, StoreError> {
        endpoints::db_now(conn).await
    }
}

async fn migrate(conn: &mut PgConnection) -> Result<(), StoreError> {
    let schema = |e: sqlx::Error| {
        StoreError::new(
            StoreErrorKind::Schema,
            format!("the tables cannot be created: {e}"),
        )
    };
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    let result = async {
        // A database at this version already is left alone: its DDL (even `IF NOT EXISTS`)
        // takes table locks that could deadlock with the claims of processes already running.
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('optout_relay_schema') IS NOT NULL")
                .fetch_one(&mut *conn)
                .await
                .map_err(schema)?;
        let current: Option<i64> = if exists {
            sqlx::query_scalar("SELECT max(version) FROM optout_relay_schema")
                .fetch_one(&mut *conn)
                .await
                .map_err(schema)?
        } else {
            None
        };
        if current != Some(sql::SCHEMA_VERSION) {
            sqlx::raw_sql(MIGRATION)
                .execute(&mut *conn)
                .await
                .map_err(schema)?;
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM optout_relay_schema")
                .fetch_one(&mut *conn)
                .await
                .map_err(schema)?;
        match version {
            None => {
                sqlx::query("INSERT INTO optout_relay_schema (version) VALUES ($1)")
                    .bind(sql::SCHEMA_VERSION)
                    .execute(&mut *conn)
                    .await
                    .map_err(schema)?;
                Ok(())
            }
            Some(v) if v > sql::SCHEMA_VERSION => Err(StoreError::new(
                StoreErrorKind::Schema,
                format!(
                    "the database holds schema version {v}; this version of the crate writes {}",
                    sql::SCHEMA_VERSION
                ),
            )),
            Some(v) if v < sql::SCHEMA_VERSION => {
                // Version 1: the columns of version 2 were added above; fill in the endpoints.
                endpoints::fill_endpoints(conn).await?;
                sqlx::query("UPDATE optout_relay_schema SET version = $1")
                    .bind(sql::SCHEMA_VERSION)
                    .execute(&mut *conn)
                    .await
                    .map_err(schema)?;
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    result
}

/// Holds a `LISTEN` connection and wakes the workers on each notification; reconnects after a
/// pause when the connection is lost.
async fn listen(pool: PgPool, wake: Arc<Notify>) {
    loop {
        if let Ok(mut listener) = PgListener::connect_with(&pool).await {
            if listener.listen(NOTIFY_CHANNEL).await.is_ok() {
                // After (re)connecting, work may have been admitted unnoticed.
                wake.notify_one();
                while listener.recv().await.is_ok() {
                    wake.notify_one();
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The advisory lock key of one (flow, Profile): FNV-1a 64 over both ids.
fn lock_key(flow: &str, profile: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in flow.bytes().chain([0]).chain(profile.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

async fn admit(
    conn: &mut PgConnection,
    plan: &Plan,
    rows: &[Columns],
) -> Result<Submitted, StoreError> {
    // Locks in one order, so that two transactions never wait for each other in a cycle.
    let mut keys: Vec<i64> = plan
        .candidates
        .iter()
        .map(|c| lock_key(c.flow.as_str(), plan.profile.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(sql::error)?;
    }
    let mut decisions = Vec::with_capacity(plan.candidates.len());
    let mut entered = false;
    for (candidate, columns) in plan.candidates.iter().zip(rows) {
        let start = window_start(candidate.limit, plan.at).map_or(i64::MIN, millis);
        // No upper bound on the entries that count: an entry later than this plan's `at` is a
        // concurrent submitter's (another process, or a plan made earlier but admitted later)
        // that committed before this transaction took the (flow, Profile) lock. Counting only
        // entries up to `plan.at` let both of two concurrent events in past a limit of 1.
        let (already, total, counted): (i64, i64, i64) = sqlx::query_as(ENTRY_HISTORY)
            .bind(candidate.flow.as_str())
            .bind(plan.event.as_str())
            .bind(plan.profile.as_str())
            .bind(start)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql::error)?;
        let history = EntryHistory {
            already_entered: already > 0,
            counted: u32::try_from(counted).unwrap_or(u32::MAX),
            total: u32::try_from(total).unwrap_or(u32::MAX),
        };
        let decision = decide_entry(candidate.limit, &history);
        if let EntryDecision::Entered { .. } = decision {
            entered = true;
            let delivery = &candidate.delivery;
            sqlx::query(INSERT_ENTRY)
                .bind(candidate.flow.as_str())
                .bind(plan.event.as_str())
                .bind(plan.profile.as_str())
                .bind(millis(plan.at))
                .bind(delivery.webhook_id().as_str())
                .execute(&mut *conn)
                .await
                .map_err(sql::error)?;
            sqlx::query(INSERT_DELIVERY)
                .bind(delivery.webhook_id().as_str())
                .bind(candidate.flow.as_str())
                .bind(plan.event.as_str())
                .bind(plan.profile.as_str())
                .bind(columns.state)
                .bind(columns.next_attempt_at)
                .bind(columns.attempts)
                .bind(millis(delivery.created_at()))
                .bind(columns.finished_at)
                .bind(&columns.data)
                .bind(&columns.endpoint)
                .bind(candidate.order == DeliveryOrder::PerProfile)
                .execute(&mut *conn)
                .await
                .map_err(sql::error)?;
        }
        decisions.push(decision);
    }
    if entered {
        notify(conn).await?;
    }
    Ok(plan.submitted(&decisions))
}

fn fenced(rows: u64, token: &ClaimToken) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::lease_lost(&token.webhook_id))
    }
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn admit(&self, plan: Plan) -> Result<Submitted, StoreError> {
        let rows = plan
            .candidates
            .iter()
            .map(|c| Columns::of(&c.delivery))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.inner.pool.begin().await.map_err(sql::error)?;
        let submitted = admit(&mut tx, &plan, &rows).await?;
        tx.commit().await.map_err(sql::error)?;
        Ok(submitted)
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        if self.inner.policy.gates() {
            return endpoints::claim(
                &self.inner.pool,
                &self.inner.policy,
                &self.inner.deferred,
                max,
                lease,
            )
            .await;
        }
        claim_due(&self.inner.pool, CLAIM, max, lease).await
    }

    async fn record(
        &self,
        claim: &ClaimToken,
        delivery: &Delivery,
    ) -> Result<Recorded, StoreError> {
        if self.inner.policy.gates() {
            return endpoints::record(
                &self.inner.pool,
                &self.inner.policy,
                &self.inner.deferred,
                claim,
                delivery,
            )
            .await;
        }
        let columns = Columns::of(delivery)?;
        let done = sql::record_query!(columns, claim)
            .execute(&self.inner.pool)
            .await
            .map_err(sql::error)?;
        fenced(done.rows_affected(), claim).map(|()| Recorded::default())
    }

    async fn release(&self, claim: &ClaimToken) -> Result<(), StoreError> {
        let done = sqlx::query(sql::RELEASE)
            .bind(&claim.webhook_id)
            .bind(i64::try_from(claim.claim).unwrap_or(i64::MAX))
            .execute(&self.inner.pool)
            .await
            .map_err(sql::error)?;
        fenced(done.rows_affected(), claim)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let (earliest, now) = if self.inner.policy.gates() {
            let (earliest, now) = endpoints::next_due(&self.inner.pool, &self.inner.policy).await?;
            (earliest.map(millis), millis(now))
        } else {
            let (due, lease, now): (Option<i64>, Option<i64>, i64) =
                sqlx::query_as(&format!("{}, ({})", sql::NEXT_DUE, &DB_NOW[7..]))
                    .fetch_one(&self.inner.pool)
                    .await
                    .map_err(sql::error)?;
            let earliest = match (due, lease) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (earliest, now)
        };
        // Due times are the database's: give them on this process's clock.
        let skew = millis(Timestamp::now()) - now;
        Ok(earliest.map(|at| sql::from_millis(at.saturating_add(skew))))
    }

    async fn wait_for_work(&self) {
        self.inner.wake.notified().await;
    }

    async fn get(&self, webhook_id: &WebhookId) -> Result<Option<Delivery>, StoreError> {
        let webhook_id = webhook_id.as_str();
        let data: Option<String> = sqlx::query_scalar(sql::GET)
            .bind(webhook_id)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql::error)?;
        data.map(|data| sql::decode(webhook_id, &data)).transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Delivery>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(sql::LIST)
            .bind(query.state.as_str())
            .bind(query.flow.as_ref().map(|f| f.as_str()))
            .bind(query.after.as_deref().unwrap_or(""))
            .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql::error)?;
        rows.iter()
            .map(|(id, data)| sql::decode(id, data))
            .collect()
    }

    async fn replay(&self, webhook_id: &WebhookId) -> Result<bool, StoreError> {
        let webhook_id = webhook_id.as_str();
        let mut tx = self.inner.pool.begin().await.map_err(sql::error)?;
        let now = Self::now(&mut tx).await?;
        let data: Option<String> =
            sqlx::query_scalar(&format!("{} FOR UPDATE", sql::DEAD_LETTER_DATA))
                .bind(webhook_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql::error)?;
        let Some(data) = data else {
            return Ok(false);
        };
        let mut delivery = sql::decode(webhook_id, &data)?;
        delivery.replay(now);
        rewrite(&mut *tx, &delivery).await?;
        notify(&mut tx).await?;
        tx.commit().await.map_err(sql::error)?;
        Ok(true)
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::PURGE)
            .bind(millis(before))
            .execute(&self.inner.pool)
            .await
            .map_err(sql::error)?;
        Ok(done.rows_affected())
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(sql::error)?;
        let now = Self::now(&mut conn).await?;
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(sql::COUNTS)
            .bind(millis(now))
            .fetch_all(&mut *conn)
            .await
            .map_err(sql::error)?;
        let entries: i64 = sqlx::query_scalar(sql::COUNT_ENTRIES)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql::error)?;
        Ok(sql::counts(rows, entries))
    }

    async fn endpoints(&self) -> Result<Vec<EndpointStatus>, StoreError> {
        endpoints::endpoints(&self.inner.pool).await
    }

    async fn pause(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError> {
        endpoints::pause_or_resume(
            &self.inner.pool,
            &self.inner.policy,
            &self.inner.deferred,
            endpoint,
            false,
        )
        .await
    }

    async fn resume(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError> {
        endpoints::pause_or_resume(
            &self.inner.pool,
            &self.inner.policy,
            &self.inner.deferred,
            endpoint,
            true,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_keys_differ_by_flow_and_profile() {
        let a = super::lock_key("f", "p1");
        assert_ne!(a, super::lock_key("f", "p2"));
        assert_ne!(a, super::lock_key("f2", "p1"));
        assert_ne!(super::lock_key("ab", "c"), super::lock_key("a", "bc"));
        assert_eq!(a, super::lock_key("f", "p1"));
    }
}
