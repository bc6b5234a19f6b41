//! The embedded default: one SQLite file (WAL), written by one task that commits in groups.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use crate::delivery::Delivery;
use crate::health::{Endpoint, EndpointChange, EndpointPolicy, EndpointStatus};
use crate::relay::{Plan, Submitted};
use crate::store::sql::{self, Columns, millis};
use crate::store::sql_health;
use crate::store::{
    Claim, ClaimToken, Counts, DeliveryStore, ListQuery, Recorded, StoreError, StoreErrorKind,
};
use crate::webhook::WebhookId;

mod health;
mod healths;
mod ops;
mod synchronous;
mod writer;

pub use synchronous::Synchronous;
use writer::{Command, write_loop};

/// Opens a [`SqliteStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    synchronous: Synchronous,
    busy_timeout: Duration,
    max_batch: usize,
    policy: EndpointPolicy,
}

impl SqliteStoreBuilder {
    /// What a commit guarantees (default [`Synchronous::Full`]).
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long a write waits for another process's transaction on the same file before it
    /// fails as [`StoreErrorKind::Unavailable`] (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The most operations committed together in one transaction (default 512, at least 1).
    /// Operations that arrive while a commit is under way wait for the next one and share it.
    pub fn max_batch(mut self, max: usize) -> Self {
        self.max_batch = max.max(1);
        self
    }

    /// How endpoint health is kept (default [`EndpointPolicy::off`]: endpoint health is opt-in;
    /// [`EndpointPolicy::default`] turns it on with its defaults).
    pub fn endpoint_policy(mut self, policy: EndpointPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Opens (creating it if needed) the store's file, in WAL mode, and creates its tables.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Unavailable`] when the file cannot be opened;
    /// [`StoreErrorKind::Schema`] when it holds a newer schema than this crate writes.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(sql::error)?
            .filename(&self.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match self.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(self.busy_timeout)
            .foreign_keys(false)
            .disable_statement_logging();
        let mut writer = options.connect().await.map_err(sql::error)?;
        migrate(&mut writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .connect_with(options.read_only(true))
            .await
            .map_err(sql::error)?;
        let (commands, receiver) = mpsc::channel(self.max_batch * 4);
        let policy = Arc::new(self.policy);
        tokio::spawn(write_loop(
            writer,
            receiver,
            self.max_batch,
            self.synchronous,
            Arc::clone(&policy),
        ));
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                commands,
                reader,
                path: self.path,
                policy,
            }),
        })
    }
}

/// A [`DeliveryStore`] in one SQLite file: the embedded default, nothing to set up.
///
/// - **Durable at commit**: [`admit`](DeliveryStore::admit) returns only after its transaction
///   has committed, in WAL mode with `synchronous = FULL` by default (see [`Synchronous`]).
/// - **Group commit**: every write goes through one writer task, which commits everything that
///   arrived while the previous commit was under way in one transaction, so durability does not
///   cost one disk flush per event. The admissions of a batch are decided in order (each sees the
///   entries decided before it) and written with a few statements in all; the attempts'
///   records with one fenced statement. If a batched statement fails, each operation is done
///   alone in a savepoint, so one failing operation does not fail the others. Batches of
///   nothing but claims and releases commit without a flush (a lease lost to a power failure
///   only makes the delivery due again).
/// - Entry decisions run inside the write transaction (`BEGIN IMMEDIATE`): SQLite has one
///   writer at a time, in this process and in any other process using the same file, so
///   concurrent submitters never exceed a limit.
/// - The file can be opened with the `sqlite3` shell: tables `optout_relay_deliveries` (the
///   delivery's JSON in `data`) and `optout_relay_entries`, times in milliseconds since the Unix
///   epoch.
///
/// ```
/// use optout_relay::DeliveryStore;
/// use optout_relay::SqliteStore;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = std::env::temp_dir().join(format!("optout-relay-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let store = SqliteStore::open(dir.join("relay.db")).await?;
/// assert_eq!(store.counts().await?.pending, 0);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?; Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    reader: SqlitePool,
    path: PathBuf,
    policy: Arc<EndpointPolicy>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// A builder for the store in the file at `path`.
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            path: path.as_ref().to_owned(),
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_batch: 512,
            policy: EndpointPolicy::off(),
        }
    }

    /// Opens the store in the file at `path` with the defaults (see [`SqliteStoreBuilder`]).
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder(path).open().await
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(make(reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

fn closed() -> StoreError {
    StoreError::new(
        StoreErrorKind::Closed,
        "the SQLite writer has stopped (its runtime ended)",
    )
}

async fn migrate(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let schema = |e: sqlx::Error| {
        StoreError::new(
            StoreErrorKind::Schema,
            format!("the tables cannot be created: {e}"),
        )
    };
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    let result = async {
        sqlx::raw_sql(include_str!("../migrations/sqlite.sql"))
            .execute(&mut *conn)
            .await
            .map_err(schema)?;
        health::migrate_v2(&mut *conn).await?;
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
            }
            Some(v) if v > sql::SCHEMA_VERSION => {
                return Err(StoreError::new(
                    StoreErrorKind::Schema,
                    format!(
                        "the file holds schema version {v}; this version of the crate writes {}",
                        sql::SCHEMA_VERSION
                    ),
                ));
            }
            Some(v) if v < sql::SCHEMA_VERSION => {
                sqlx::query("UPDATE optout_relay_schema SET version = $1")
                    .bind(sql::SCHEMA_VERSION)
                    .execute(&mut *conn)
                    .await
                    .map_err(schema)?;
            }
            Some(_) => {}
        }
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    sqlx::query(end)
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    result
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn admit(&self, plan: Plan) -> Result<Submitted, StoreError> {
        // JSON is written in the submitter's task, so that the writer only writes.
        let rows = plan
            .candidates
            .iter()
            .map(|c| Columns::of(&c.delivery))
            .collect::<Result<Vec<_>, _>>()?;
        self.write(|reply| Command::Admit { plan, rows, reply })
            .await
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        self.write(|reply| Command::Claim { max, lease, reply })
            .await
    }

    async fn record(
        &self,
        claim: &ClaimToken,
        delivery: &Delivery,
    ) -> Result<Recorded, StoreError> {
        let columns = Columns::of(delivery)?;
        let token = claim.clone();
        let delivery = delivery.clone();
        self.write(|reply| Command::Record {
            token,
            columns,
            delivery,
            reply,
        })
        .await
    }

    async fn release(&self, claim: &ClaimToken) -> Result<(), StoreError> {
        let token = claim.clone();
        self.write(|reply| Command::Release { token, reply }).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        if self.inner.policy.gates() {
            let reader = &self.inner.reader;
            let now = Timestamp::now();
            let due: Vec<(String, Option<i64>)> = sqlx::query_as(health::NEXT_DUE_BY_ENDPOINT)
                .fetch_all(reader)
                .await
                .map_err(sql::error)?;
            let in_flight: Vec<(String, i64)> = sqlx::query_as(sql_health::IN_FLIGHT_BY_ENDPOINT)
                .bind(millis(now))
                .fetch_all(reader)
                .await
                .map_err(sql::error)?;
            let healths: Vec<(String, String)> = sqlx::query_as(sql_health::ALL_HEALTH)
                .fetch_all(reader)
                .await
                .map_err(sql::error)?;
            let lease: Option<i64> = sqlx::query_scalar(sql_health::NEXT_LEASE_END)
                .fetch_one(reader)
                .await
                .map_err(sql::error)?;
            return sql_health::next_due(due, in_flight, healths, lease, &self.inner.policy, now);
        }
        let (due, lease): (Option<i64>, Option<i64>) = sqlx::query_as(sql::NEXT_DUE)
            .fetch_one(&self.inner.reader)
            .await
            .map_err(sql::error)?;
        Ok(match (due, lease) {
            (Some(a), Some(b)) => Some(sql::from_millis(a.min(b))),
            (a, b) => a.or(b).map(sql::from_millis),
        })
    }

    async fn get(&self, webhook_id: &WebhookId) -> Result<Option<Delivery>, StoreError> {
        let webhook_id = webhook_id.as_str();
        let data: Option<String> = sqlx::query_scalar(sql::GET)
            .bind(webhook_id)
            .fetch_optional(&self.inner.reader)
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
            .fetch_all(&self.inner.reader)
            .await
            .map_err(sql::error)?;
        rows.iter()
            .map(|(id, data)| sql::decode(id, data))
            .collect()
    }

    async fn replay(&self, webhook_id: &WebhookId) -> Result<bool, StoreError> {
        let webhook_id = webhook_id.as_str();
        let webhook_id = webhook_id.to_owned();
        self.write(|reply| Command::Replay { webhook_id, reply })
            .await
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(|reply| Command::Purge { before, reply }).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let now = millis(Timestamp::now());
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(sql::COUNTS)
            .bind(now)
            .fetch_all(&self.inner.reader)
            .await
            .map_err(sql::error)?;
        let entries: i64 = sqlx::query_scalar(sql::COUNT_ENTRIES)
            .fetch_one(&self.inner.reader)
            .await
            .map_err(sql::error)?;
        Ok(sql::counts(rows, entries))
    }

    async fn endpoints(&self) -> Result<Vec<EndpointStatus>, StoreError> {
        let counts: Vec<(String, i64, i64)> = sqlx::query_as(sql_health::ENDPOINT_COUNTS)
            .bind(millis(Timestamp::now()))
            .fetch_all(&self.inner.reader)
            .await
            .map_err(sql::error)?;
        let healths: Vec<(String, String)> = sqlx::query_as(sql_health::ALL_HEALTH)
            .fetch_all(&self.inner.reader)
            .await
            .map_err(sql::error)?;
        sql_health::statuses(counts, healths)
    }

    async fn pause(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError> {
        let endpoint = endpoint.clone();
        self.write(|reply| Command::Pause {
            endpoint,
            resume: false,
            reply,
        })
        .await
    }

    async fn resume(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError> {
        let endpoint = endpoint.clone();
        self.write(|reply| Command::Pause {
            endpoint,
            resume: true,
            reply,
        })
        .await
    }
}
