//! The embedded default: one SQLite file (WAL), written by one task that commits in groups.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::delivery::Delivery;
use crate::listen::EntryDecision;
use crate::relay::{EntryHistory, Plan, Submitted, decide_entry, window_start};
use crate::store::sql::{self, Columns, millis};
use crate::store::{
    Claim, ClaimToken, Counts, DeliveryStore, ListQuery, StoreError, StoreErrorKind, lease_deadline,
};

/// What a commit guarantees (SQLite's `synchronous` setting, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `FULL` (the default): the WAL is flushed to disk at every commit that admits, records,
    /// replays or purges, so a committed admission survives the process being killed **and** the
    /// machine losing power. Commits of nothing but claims and lease releases are not flushed
    /// (a lease lost to a power failure only makes the delivery due again); the next flushed
    /// commit flushes them too.
    #[default]
    Full,
    /// `NORMAL`: a committed admission survives the process being killed (SIGKILL, OOM), but
    /// the last commits before a power loss or kernel crash may be rolled back.
    Normal,
}

/// Opens a [`SqliteStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    synchronous: Synchronous,
    busy_timeout: Duration,
    max_batch: usize,
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
        tokio::spawn(write_loop(
            writer,
            receiver,
            self.max_batch,
            self.synchronous,
        ));
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                commands,
                reader,
                path: self.path,
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
/// use optout_relay::store::{DeliveryStore, SqliteStore};
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
        sqlx::raw_sql(include_str!("migrations/sqlite.sql"))
            .execute(&mut *conn)
            .await
            .map_err(schema)?;
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

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A boxed `Send` future: the writer's futures are boxed where they borrow the connection, so
/// that the spawned writer task is `Send` for every lifetime (a limit of today's compiler with
/// sqlx's executor bounds).
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn execute<'a>(
    conn: &'a mut SqliteConnection,
    statement: &'static str,
) -> Boxed<'a, Result<(), StoreError>> {
    Box::pin(async move {
        sqlx::Executor::execute(conn, statement)
            .await
            .map(drop)
            .map_err(sql::error)
    })
}

enum Command {
    Admit {
        plan: Plan,
        rows: Vec<Columns>,
        reply: Reply<Submitted>,
    },
    Claim {
        max: usize,
        lease: Duration,
        reply: Reply<Vec<Claim>>,
    },
    Record {
        token: ClaimToken,
        columns: Columns,
        reply: Reply<()>,
    },
    Release {
        token: ClaimToken,
        reply: Reply<()>,
    },
    Replay {
        webhook_id: String,
        reply: Reply<bool>,
    },
    Purge {
        before: Timestamp,
        reply: Reply<u64>,
    },
}

/// Sends a command's answer once its transaction has committed (or fails it with the commit's
/// error).
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

fn finish<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> (bool, Finish) {
    let ok = result.is_ok();
    (
        ok,
        Box::new(move |commit: Result<(), StoreError>| {
            let _ = reply.send(commit.and(result));
        }),
    )
}

impl Command {
    /// Whether the command runs more than one statement, and so needs a savepoint to fail
    /// alone (a single statement that fails changes nothing by itself).
    fn needs_savepoint(&self) -> bool {
        matches!(
            self,
            Self::Admit { .. } | Self::Claim { .. } | Self::Replay { .. }
        )
    }

    /// Whether losing the command's commit to a power failure would lose something: a claim or
    /// a release only moves a lease, and a lease lost makes the delivery due again, with the
    /// same webhook id.
    fn needs_flush(&self) -> bool {
        !matches!(self, Self::Claim { .. } | Self::Release { .. })
    }
}

/// The writer task: takes every command waiting (up to `max_batch`), runs them in one
/// `BEGIN IMMEDIATE` transaction (those of several statements each in a savepoint, so that one
/// failing command does not fail the others), commits once, then answers them all.
///
/// With `synchronous = FULL`, a batch of nothing but claims and releases commits with `NORMAL`
/// (no flush: a power loss may roll the lease back, which only makes the delivery due again);
/// every other batch flushes, and with it every earlier commit.
async fn write_loop(
    mut conn: SqliteConnection,
    mut commands: mpsc::Receiver<Command>,
    max_batch: usize,
    synchronous: Synchronous,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut flushing = true;
    while let Some(first) = commands.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let now = Timestamp::now();
        let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
        let flush = synchronous == Synchronous::Full && batch.iter().any(Command::needs_flush);
        let begin = match (synchronous, flush == flushing) {
            (Synchronous::Full, false) if flush => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
            (Synchronous::Full, false) => "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
            _ => "BEGIN IMMEDIATE",
        };
        let begun = execute(&mut conn, begin).await;
        if let Err(error) = begun {
            for command in batch.drain(..) {
                let (_, done) = fail(command, error.clone());
                done(Ok(()));
            }
            // Where the pragma stands is unknown: set it before the next batch.
            flushing = !flush;
            continue;
        }
        flushing = flush;
        // The admissions first, all together (a savepoint around them: if the batched path
        // fails, they are admitted one by one below, each failing alone).
        let (admits, rest): (Vec<Command>, Vec<Command>) = batch
            .drain(..)
            .partition(|command| matches!(command, Command::Admit { .. }));
        batch.extend(rest);
        if !admits.is_empty() {
            let together = match execute(&mut conn, "SAVEPOINT batch").await {
                Ok(()) => {
                    let plans: Vec<(&Plan, &[Columns])> = admits
                        .iter()
                        .filter_map(|command| match command {
                            Command::Admit { plan, rows, .. } => Some((plan, rows.as_slice())),
                            _ => None,
                        })
                        .collect();
                    let result = admit_batch(&mut conn, &plans).await;
                    let end = if result.is_ok() {
                        "RELEASE batch"
                    } else {
                        "ROLLBACK TO batch; RELEASE batch"
                    };
                    match execute(&mut conn, end).await {
                        Ok(()) => result.ok(),
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            match together {
                Some(results) => {
                    for (command, submitted) in admits.into_iter().zip(results) {
                        if let Command::Admit { reply, .. } = command {
                            finishes.push(finish(reply, Ok(submitted)).1);
                        }
                    }
                }
                // One by one, below.
                None => {
                    let rest = std::mem::take(&mut batch);
                    batch.extend(admits);
                    batch.extend(rest);
                }
            }
        }
        // The attempts' records, all together in one statement when their ids are distinct;
        // one by one below otherwise, or if that fails.
        let mut ids = std::collections::HashSet::new();
        let distinct = batch.iter().all(|command| match command {
            Command::Record { token, .. } => ids.insert(token.webhook_id.as_str()),
            _ => true,
        });
        if distinct && ids.len() > 1 {
            let records: Vec<(&ClaimToken, &Columns)> = batch
                .iter()
                .filter_map(|command| match command {
                    Command::Record { token, columns, .. } => Some((token, columns)),
                    _ => None,
                })
                .collect();
            if let Ok(written) = record_batch(&mut conn, &records).await {
                let (records, rest): (Vec<Command>, Vec<Command>) = batch
                    .drain(..)
                    .partition(|command| matches!(command, Command::Record { .. }));
                batch.extend(rest);
                for command in records {
                    if let Command::Record { token, reply, .. } = command {
                        let result = if written.contains(&token.webhook_id) {
                            Ok(())
                        } else {
                            Err(StoreError::lease_lost(&token.webhook_id))
                        };
                        finishes.push(finish(reply, result).1);
                    }
                }
            }
        }
        // Whether a savepoint `op` is open (the last command's, which succeeded): it is
        // released together with the next statement sent, to save a round trip.
        let mut open = false;
        for command in batch.drain(..) {
            // A single statement runs inside the savepoint still open, if any: it changes
            // nothing when it fails, and the savepoint is released later.
            let savepoint = command.needs_savepoint();
            let opened = match (savepoint, open) {
                (true, true) => execute(&mut conn, "RELEASE op; SAVEPOINT op").await,
                (true, false) => execute(&mut conn, "SAVEPOINT op").await,
                (false, _) => Ok(()),
            };
            if savepoint {
                open = false;
            }
            let (ok, done) = match opened {
                Ok(()) => run(&mut conn, command, now).await,
                Err(e) => fail(command, e),
            };
            if savepoint && ok {
                open = true;
            } else if savepoint {
                let _ = execute(&mut conn, "ROLLBACK TO op; RELEASE op").await;
            }
            finishes.push(done);
        }
        let end = if open { "RELEASE op; COMMIT" } else { "COMMIT" };
        let commit = match execute(&mut conn, end).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = execute(&mut conn, "ROLLBACK").await;
                Err(e)
            }
        };
        for done in finishes {
            done(commit.clone());
        }
    }
    let _ = conn.close().await;
}

fn fail(command: Command, error: StoreError) -> (bool, Finish) {
    match command {
        Command::Admit { reply, .. } => finish(reply, Err(error)),
        Command::Claim { reply, .. } => finish(reply, Err(error)),
        Command::Record { reply, .. } | Command::Release { reply, .. } => finish(reply, Err(error)),
        Command::Replay { reply, .. } => finish(reply, Err(error)),
        Command::Purge { reply, .. } => finish(reply, Err(error)),
    }
}

fn run(conn: &mut SqliteConnection, command: Command, now: Timestamp) -> Boxed<'_, (bool, Finish)> {
    Box::pin(async move {
        match command {
            Command::Admit { plan, rows, reply } => {
                // The batched path with a batch of one: the same statements, the same rule.
                let result = admit_batch(conn, &[(&plan, &rows)])
                    .await
                    .and_then(|submitted| {
                        submitted.into_iter().next().ok_or_else(|| {
                            StoreError::new(StoreErrorKind::Other, "no result for the admission")
                        })
                    });
                finish(reply, result)
            }
            Command::Claim { max, lease, reply } => {
                finish(reply, claim(conn, max, lease, now).await)
            }
            Command::Record {
                token,
                columns,
                reply,
            } => finish(reply, record(conn, &token, &columns).await),
            Command::Release { token, reply } => {
                let result = sqlx::query(sql::RELEASE)
                    .bind(&token.webhook_id)
                    .bind(i64::try_from(token.claim).unwrap_or(i64::MAX))
                    .execute(&mut *conn)
                    .await
                    .map_err(sql::error)
                    .and_then(|done| fenced(done.rows_affected(), &token));
                finish(reply, result)
            }
            Command::Replay { webhook_id, reply } => {
                finish(reply, replay(conn, &webhook_id, now).await)
            }
            Command::Purge { before, reply } => {
                let result = sqlx::query(sql::PURGE)
                    .bind(millis(before))
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(sql::error);
                finish(reply, result)
            }
        }
    })
}

fn fenced(rows: u64, token: &ClaimToken) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::lease_lost(&token.webhook_id))
    }
}

/// The most candidates one statement of the batched admit carries (SQLite allows 32,766
/// parameters; a delivery row takes 10).
const ROWS_PER_STATEMENT: usize = 1_000;

/// Admits every plan of a batch with a few statements in all, instead of a few per plan: one
/// query reads the entry history of every candidate, the entries are decided in order (each
/// seeing the entries decided before it in the batch), then one statement inserts the entries
/// and one the deliveries. The caller holds a savepoint around it and falls back to admitting
/// the plans one by one if it fails.
fn admit_batch<'a>(
    conn: &'a mut SqliteConnection,
    admits: &'a [(&'a Plan, &'a [Columns])],
) -> Boxed<'a, Result<Vec<Submitted>, StoreError>> {
    Box::pin(async move {
        struct Row<'r> {
            plan: &'r Plan,
            candidate: &'r crate::relay::Candidate,
            columns: &'r Columns,
            start: i64,
        }
        let rows: Vec<Row<'_>> = admits
            .iter()
            .flat_map(|(plan, columns)| {
                plan.candidates
                    .iter()
                    .zip(columns.iter())
                    .map(move |(candidate, columns)| Row {
                        plan,
                        candidate,
                        columns,
                        start: window_start(candidate.limit, plan.at).map_or(i64::MIN, millis),
                    })
            })
            .collect();
        // What the file holds for each candidate.
        let mut history: Vec<(i64, i64, i64)> = Vec::with_capacity(rows.len());
        for (chunk, part) in rows.chunks(ROWS_PER_STATEMENT).enumerate() {
            let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "WITH input(i, flow, event, profile, start) AS (",
            );
            query.push_values(part.iter().enumerate(), |mut values, (i, row)| {
                values
                    .push_bind(i64::try_from(chunk * ROWS_PER_STATEMENT + i).unwrap_or(0))
                    .push_bind(row.candidate.flow.as_str())
                    .push_bind(row.plan.event.as_str())
                    .push_bind(row.plan.profile.as_str())
                    .push_bind(row.start);
            });
            query.push(
                ") SELECT \
                 (SELECT count(*) FROM optout_relay_entries e \
                    WHERE e.flow = input.flow AND e.event = input.event), \
                 (SELECT count(*) FROM optout_relay_entries e \
                    WHERE e.flow = input.flow AND e.profile = input.profile), \
                 (SELECT count(*) FROM optout_relay_entries e \
                    WHERE e.flow = input.flow AND e.profile = input.profile \
                      AND e.entered_at > input.start) \
                 FROM input ORDER BY i",
            );
            let found: Vec<(i64, i64, i64)> = query
                .build_query_as()
                .fetch_all(&mut *conn)
                .await
                .map_err(sql::error)?;
            history.extend(found);
        }
        if history.len() != rows.len() {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                "the entry history did not return one row per candidate",
            ));
        }
        // Decide in order; entries decided earlier in the batch count as stored.
        let mut events: std::collections::HashSet<(&str, &str)> = Default::default();
        let mut entered_at: std::collections::HashMap<(&str, &str), Vec<i64>> = Default::default();
        let mut decisions = Vec::with_capacity(rows.len());
        let mut entered = Vec::new();
        for (row, (already, total, counted)) in rows.iter().zip(&history) {
            let flow = row.candidate.flow.as_str();
            let earlier = entered_at
                .get(&(flow, row.plan.profile.as_str()))
                .map_or(&[][..], Vec::as_slice);
            let in_batch = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            let history = EntryHistory {
                already_entered: *already > 0 || events.contains(&(flow, row.plan.event.as_str())),
                counted: u32::try_from(counted.saturating_add(in_batch(
                    earlier.iter().filter(|at| **at > row.start).count(),
                )))
                .unwrap_or(u32::MAX),
                total: u32::try_from(total.saturating_add(in_batch(earlier.len())))
                    .unwrap_or(u32::MAX),
            };
            let decision = decide_entry(row.candidate.limit, &history);
            if decision.entered() {
                events.insert((flow, row.plan.event.as_str()));
                entered_at
                    .entry((flow, row.plan.profile.as_str()))
                    .or_default()
                    .push(millis(row.plan.at));
                entered.push(row);
            }
            decisions.push(decision);
        }
        for part in entered.chunks(ROWS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO optout_relay_entries (flow, event, profile, entered_at, webhook_id) ",
            );
            query.push_values(part, |mut values, row| {
                values
                    .push_bind(row.candidate.flow.as_str())
                    .push_bind(row.plan.event.as_str())
                    .push_bind(row.plan.profile.as_str())
                    .push_bind(millis(row.plan.at))
                    .push_bind(row.candidate.delivery.webhook_id().as_str());
            });
            query
                .build()
                .execute(&mut *conn)
                .await
                .map_err(sql::error)?;
            let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO optout_relay_deliveries (webhook_id, flow, event, profile, state, \
                 next_attempt_at, attempts, created_at, finished_at, data) ",
            );
            query.push_values(part, |mut values, row| {
                let delivery = &row.candidate.delivery;
                values
                    .push_bind(delivery.webhook_id().as_str())
                    .push_bind(row.candidate.flow.as_str())
                    .push_bind(row.plan.event.as_str())
                    .push_bind(row.plan.profile.as_str())
                    .push_bind(row.columns.state)
                    .push_bind(row.columns.next_attempt_at)
                    .push_bind(row.columns.attempts)
                    .push_bind(millis(delivery.created_at()))
                    .push_bind(row.columns.finished_at)
                    .push_bind(row.columns.data.as_str());
            });
            query.push(" ON CONFLICT (webhook_id) DO NOTHING");
            query
                .build()
                .execute(&mut *conn)
                .await
                .map_err(sql::error)?;
        }
        let mut decisions = decisions.into_iter();
        Ok(admits
            .iter()
            .map(|(plan, _)| {
                let mine: Vec<EntryDecision> =
                    decisions.by_ref().take(plan.candidates.len()).collect();
                plan.submitted(&mine)
            })
            .collect())
    })
}

/// Records the attempts of a batch with one statement: each row is written only where its claim
/// is still held. Returns the webhook ids written (the others lost their lease). The ids must
/// be distinct.
fn record_batch<'a>(
    conn: &'a mut SqliteConnection,
    records: &'a [(&'a ClaimToken, &'a Columns)],
) -> Boxed<'a, Result<std::collections::HashSet<String>, StoreError>> {
    Box::pin(async move {
        let mut written = std::collections::HashSet::with_capacity(records.len());
        for part in records.chunks(ROWS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "WITH v(state, next_attempt_at, attempts, finished_at, data, webhook_id, claim) \
                 AS (",
            );
            query.push_values(part, |mut values, (token, columns)| {
                values
                    .push_bind(columns.state)
                    .push_bind(columns.next_attempt_at)
                    .push_bind(columns.attempts)
                    .push_bind(columns.finished_at)
                    .push_bind(columns.data.as_str())
                    .push_bind(token.webhook_id.as_str())
                    .push_bind(i64::try_from(token.claim).unwrap_or(i64::MAX));
            });
            query.push(
                ") UPDATE optout_relay_deliveries SET state = v.state, \
                 next_attempt_at = v.next_attempt_at, attempts = v.attempts, \
                 finished_at = v.finished_at, data = v.data, lease_until = NULL, abandoned = 0 \
                 FROM v WHERE optout_relay_deliveries.webhook_id = v.webhook_id \
                 AND optout_relay_deliveries.claims = v.claim \
                 AND optout_relay_deliveries.state = 'pending' \
                 AND optout_relay_deliveries.lease_until IS NOT NULL \
                 RETURNING optout_relay_deliveries.webhook_id",
            );
            let ids: Vec<String> = query
                .build_query_scalar()
                .fetch_all(&mut *conn)
                .await
                .map_err(sql::error)?;
            written.extend(ids);
        }
        Ok(written)
    })
}

/// Claims due work: expired leases first (the oldest work, left by a worker that died), then
/// the earliest due. ($1 lease deadline, $2 now, $3 how many.)
const CLAIM: &str = "UPDATE optout_relay_deliveries \
     SET claims = claims + 1, \
         abandoned = abandoned + (CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END), \
         lease_until = $1 \
     WHERE webhook_id IN ( \
       SELECT webhook_id FROM ( \
         SELECT webhook_id FROM optout_relay_deliveries \
         WHERE state = 'pending' AND lease_until IS NOT NULL AND lease_until <= $2 \
         ORDER BY lease_until LIMIT $3) \
       UNION ALL \
       SELECT webhook_id FROM ( \
         SELECT webhook_id FROM optout_relay_deliveries \
         WHERE state = 'pending' AND lease_until IS NULL AND next_attempt_at <= $2 \
         ORDER BY next_attempt_at LIMIT $3) \
       LIMIT $3) \
     RETURNING webhook_id, claims, abandoned, data";

async fn claim(
    conn: &mut SqliteConnection,
    max: usize,
    lease: Duration,
    now: Timestamp,
) -> Result<Vec<Claim>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<sql::ClaimedRow> = sqlx::query_as(CLAIM)
        .bind(millis(lease_deadline(now, lease)))
        .bind(millis(now))
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    let (claims, abandoned) = sql::sort_claims(rows, now)?;
    for delivery in abandoned {
        rewrite(conn, &delivery).await?;
    }
    Ok(claims)
}

async fn rewrite(conn: &mut SqliteConnection, delivery: &Delivery) -> Result<(), StoreError> {
    let columns = Columns::of(delivery)?;
    sqlx::query(sql::REWRITE)
        .bind(columns.state)
        .bind(columns.next_attempt_at)
        .bind(columns.attempts)
        .bind(columns.finished_at)
        .bind(&columns.data)
        .bind(delivery.webhook_id().as_str())
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    Ok(())
}

async fn record(
    conn: &mut SqliteConnection,
    token: &ClaimToken,
    columns: &Columns,
) -> Result<(), StoreError> {
    let done = sqlx::query(sql::RECORD)
        .bind(columns.state)
        .bind(columns.next_attempt_at)
        .bind(columns.attempts)
        .bind(columns.finished_at)
        .bind(&columns.data)
        .bind(&token.webhook_id)
        .bind(i64::try_from(token.claim).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    fenced(done.rows_affected(), token)
}

async fn replay(
    conn: &mut SqliteConnection,
    webhook_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let data: Option<String> = sqlx::query_scalar(sql::DEAD_LETTER_DATA)
        .bind(webhook_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(sql::error)?;
    let Some(data) = data else {
        return Ok(false);
    };
    let mut delivery = sql::decode(webhook_id, &data)?;
    delivery.replay(now);
    rewrite(conn, &delivery).await?;
    Ok(true)
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

    async fn record(&self, claim: &ClaimToken, delivery: &Delivery) -> Result<(), StoreError> {
        let columns = Columns::of(delivery)?;
        let token = claim.clone();
        self.write(|reply| Command::Record {
            token,
            columns,
            reply,
        })
        .await
    }

    async fn release(&self, claim: &ClaimToken) -> Result<(), StoreError> {
        let token = claim.clone();
        self.write(|reply| Command::Release { token, reply }).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let (due, lease): (Option<i64>, Option<i64>) = sqlx::query_as(sql::NEXT_DUE)
            .fetch_one(&self.inner.reader)
            .await
            .map_err(sql::error)?;
        Ok(match (due, lease) {
            (Some(a), Some(b)) => Some(sql::from_millis(a.min(b))),
            (a, b) => a.or(b).map(sql::from_millis),
        })
    }

    async fn get(&self, webhook_id: &str) -> Result<Option<Delivery>, StoreError> {
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

    async fn replay(&self, webhook_id: &str) -> Result<bool, StoreError> {
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
}
