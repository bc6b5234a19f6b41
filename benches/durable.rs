//! Durable throughput: the crate's stores and worker beside hand-written equivalents on the same
//! driver (sqlx), in the same run.
//!
//! - `sqlite_submit`: durable admissions per second into SQLite (WAL, `synchronous = FULL`) from
//!   [`SUBMITTERS`] concurrent tasks: the crate's [`SqliteStore`] (group commit); a hand-written
//!   group-committed writer doing the same writes (entry-history `SELECT`, entry row, delivery
//!   row with the same JSON), plain, then with the crate's `SAVEPOINT`/`RELEASE` around each
//!   operation, then with those savepoint statements folded into one call per operation; and the
//!   crate with `max_batch(1)` (one commit per admission).
//! - `postgres_workers`: deliveries per second drained from PostgreSQL (fsync on, the server's
//!   defaults) by 1 and by 4 workers, in this process (one pool each) and as separate processes
//!   (this bench binary run again as a child), to a loopback HTTP server answering 204 at once,
//!   and (in process) to one answering after [`SLOW_RECEIVER`].
//! - `pipeline_durable`: submit, store, claim, sign, send, record through the crate's `Worker`,
//!   `SqliteStore` and `ReqwestClient`, beside bare reqwest with a hand-written SQLite outbox
//!   doing the same durable writes (plain, then with the crate's savepoints), at the same
//!   concurrency ([`SUBMITTERS`] submitters, [`IN_FLIGHT`] requests in flight).
//!
//! Every SQLite iteration uses a fresh file (opened outside the measured time); every PostgreSQL
//! iteration starts from empty tables with [`EVENTS`] deliveries admitted outside the measured
//! time. PostgreSQL: `OPTOUT_RELAY_TEST_PG_URL` if set (its store tables are TRUNCATEd!), else a
//! private cluster started from `/usr/lib/postgresql/*/bin` on a Unix socket, stopped at the end.
//!
//! `OPTOUT_RELAY_BENCH_VERBOSE=1` prints, per iteration, how the workers used their store
//! (claim calls and rows per claim) and, for `pipeline_durable`, how far delivery had got when
//! the last submit returned.

mod common;

use common::{SLOW_RECEIVER, router, server, server_with_delay};
use std::cell::OnceCell;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use optout_relay::DeliveryStore;
use optout_relay::PostgresStore;
use optout_relay::ReqwestClient;
use optout_relay::SqliteStore;
use optout_relay::delivery::Step;
use optout_relay::delivery::WorkerBuilder;
use optout_relay::relay::Plan;
use optout_relay::relay::Submitted;
use optout_relay::store::StoreError;
use optout_relay::store::Synchronous;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;

/// Events (and so deliveries) per iteration.
const EVENTS: usize = 2_000;
/// Concurrent submitting tasks.
const SUBMITTERS: usize = 64;
/// Requests in flight (the worker's `max_in_flight`, the baseline's semaphore).
const IN_FLIGHT: usize = 32;
/// The hand-written writers' largest batch (the crate's default `max_batch`).
const MAX_BATCH: usize = 512;

/// Set in a child process: its role.
const CHILD_ENV: &str = "OPTOUT_RELAY_BENCH_CHILD";
const CHILD_URL_ENV: &str = "OPTOUT_RELAY_BENCH_PG";
const CHILD_ADDR_ENV: &str = "OPTOUT_RELAY_BENCH_ADDR";
const PG_URL_ENV: &str = "OPTOUT_RELAY_TEST_PG_URL";

/// The crate's SQLite schema, created by the hand-written baselines too.
const SCHEMA: &str = include_str!("../src/store/migrations/sqlite.sql");
/// The crate's statements (src/store/sql.rs), run by the hand-written baselines too.
const ENTRY_HISTORY: &str = "SELECT \
     (SELECT count(*) FROM optout_relay_entries WHERE flow = $1 AND event = $2), \
     (SELECT count(*) FROM optout_relay_entries WHERE flow = $1 AND profile = $3), \
     (SELECT count(*) FROM optout_relay_entries WHERE flow = $1 AND profile = $3 \
        AND entered_at > $4 AND entered_at <= $5)";
const INSERT_ENTRY: &str = "INSERT INTO optout_relay_entries \
     (flow, event, profile, entered_at, webhook_id) VALUES ($1, $2, $3, $4, $5)";
const INSERT_DELIVERY: &str = "INSERT INTO optout_relay_deliveries \
     (webhook_id, flow, event, profile, state, next_attempt_at, attempts, created_at, \
      finished_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (webhook_id) DO NOTHING";
/// The baseline outbox's own statements.
const DUE: &str = "SELECT webhook_id, data FROM optout_relay_deliveries \
     WHERE state = 'pending' AND lease_until IS NULL AND next_attempt_at <= $1 \
     ORDER BY next_attempt_at LIMIT $2";
const MARK_DELIVERED: &str = "UPDATE optout_relay_deliveries SET state = 'delivered', \
     next_attempt_at = NULL, attempts = $1, finished_at = $2, data = $3 WHERE webhook_id = $4";

// ---------------------------------------------------------------------------------------------
// Fixtures

type Work = Arc<Vec<(OptOutEvent, Profile)>>;

/// `EVENTS` opt-outs of `EVENTS` different people, with event ids of their own to `run`.
fn work(run: usize) -> Work {
    Arc::new(
        (0..EVENTS)
            .map(|i| {
                let id = ProfileId::new(format!("p-{i}")).unwrap();
                let event = OptOutEvent::email_unsubscribe(
                    EventId::new(format!("evt-{run}-{i}")).unwrap(),
                    id.clone(),
                    SectionId::new("sec-1").unwrap(),
                    SubscriptionId::new("123456").unwrap(),
                    "2026-11-26T09:30:00Z".parse().unwrap(),
                );
                let profile = Profile::new(id)
                    .with_email(Email::new(format!("user{i}@example.com")).unwrap());
                (event, profile)
            })
            .collect(),
    )
}

fn reqwest_client() -> Arc<ReqwestClient> {
    Arc::new(
        ReqwestClient::builder()
            .destination_policy(DestinationPolicy::new().allow_loopback())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    )
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh database file per iteration, in one directory removed at the end.
struct Files {
    dir: PathBuf,
    next: AtomicUsize,
}

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("optout-relay-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            next: AtomicUsize::new(0),
        }
    }

    fn fresh(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{n}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        path
    }

    fn remove(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `submitters` tasks take events in turn and run `admit` on each; the time they take.
async fn drive<F, Fut>(work: &Work, submitters: usize, admit: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let admit = Arc::new(admit);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..submitters {
        let (admit, next, len) = (Arc::clone(&admit), Arc::clone(&next), work.len());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= len {
                    break;
                }
                admit(i).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    started.elapsed()
}

// ---------------------------------------------------------------------------------------------
// The hand-written SQLite baseline: one writer task, batches from a channel, one transaction per
// batch; the same statements and the same JSON as the crate.

/// One admission, as the baseline's submitter prepares it.
struct Admission {
    flow: String,
    event: String,
    profile: String,
    at: i64,
    webhook_id: String,
    next_attempt_at: i64,
    created_at: i64,
    data: String,
}

enum Op {
    Admit(Admission, oneshot::Sender<bool>),
    Delivered {
        webhook_id: String,
        attempts: i64,
        finished_at: i64,
        data: String,
        reply: oneshot::Sender<()>,
    },
}

enum Reply {
    Admit(oneshot::Sender<bool>, bool),
    Delivered(oneshot::Sender<()>),
}

/// How the hand-written writer isolates the operations of one transaction from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Savepoints {
    /// Not at all: the obvious way.
    No,
    /// `SAVEPOINT op` and `RELEASE op` around each operation, as the crate's writer does (two
    /// more statements, so two more round trips to sqlx's SQLite thread, per operation).
    PerOp,
    /// The same savepoints, each `RELEASE` sent with the next `SAVEPOINT` (and with `BEGIN` and
    /// `COMMIT`) in one call: one round trip per operation more than `No`.
    Folded,
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(false)
        .disable_statement_logging()
}

/// Opens the file, creates the crate's tables, and starts the writer.
async fn hand_open(path: &Path, savepoints: Savepoints) -> mpsc::Sender<Op> {
    let mut conn = options(path).connect().await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    let (ops, receiver) = mpsc::channel(MAX_BATCH * 4);
    tokio::spawn(hand_writer(conn, receiver, savepoints));
    ops
}

async fn hand_writer(
    mut conn: SqliteConnection,
    mut ops: mpsc::Receiver<Op>,
    savepoints: Savepoints,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while ops.recv_many(&mut batch, MAX_BATCH).await > 0 {
        for reply in write_batch(&mut conn, &mut batch, savepoints).await {
            match reply {
                Reply::Admit(reply, entered) => drop(reply.send(entered)),
                Reply::Delivered(reply) => drop(reply.send(())),
            }
        }
    }
    let _ = conn.close().await;
}

type Boxed<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One transaction for the whole batch; the replies to send once it has committed. (Boxed, as
/// in the crate, so that the spawned writer is `Send`: sqlx's executor bounds otherwise defeat
/// the compiler.)
fn write_batch<'a>(
    conn: &'a mut SqliteConnection,
    batch: &'a mut Vec<Op>,
    savepoints: Savepoints,
) -> Boxed<'a, Vec<Reply>> {
    Box::pin(async move {
        let mut replies = Vec::with_capacity(batch.len());
        let folded = savepoints == Savepoints::Folded;
        execute(
            conn,
            if folded {
                "BEGIN IMMEDIATE; SAVEPOINT op"
            } else {
                "BEGIN IMMEDIATE"
            },
        )
        .await;
        let last = batch.len().saturating_sub(1);
        for (i, op) in batch.drain(..).enumerate() {
            if savepoints == Savepoints::PerOp {
                execute(conn, "SAVEPOINT op").await;
            }
            match op {
                Op::Admit(a, reply) => {
                    let entered = admit_row(conn, &a).await;
                    replies.push(Reply::Admit(reply, entered));
                }
                Op::Delivered {
                    webhook_id,
                    attempts,
                    finished_at,
                    data,
                    reply,
                } => {
                    mark_delivered(conn, &webhook_id, attempts, finished_at, &data).await;
                    replies.push(Reply::Delivered(reply));
                }
            }
            match savepoints {
                Savepoints::No => {}
                Savepoints::PerOp => execute(conn, "RELEASE op").await,
                Savepoints::Folded if i < last => execute(conn, "RELEASE op; SAVEPOINT op").await,
                Savepoints::Folded => {}
            }
        }
        execute(
            conn,
            if folded {
                "RELEASE op; COMMIT"
            } else {
                "COMMIT"
            },
        )
        .await;
        replies
    })
}

fn execute<'a>(conn: &'a mut SqliteConnection, statement: &'static str) -> Boxed<'a, ()> {
    Box::pin(async move {
        sqlx::Executor::execute(conn, statement).await.unwrap();
    })
}

fn admit_row<'a>(conn: &'a mut SqliteConnection, a: &'a Admission) -> Boxed<'a, bool> {
    Box::pin(async move {
        let (already, _total, _counted): (i64, i64, i64) = sqlx::query_as(ENTRY_HISTORY)
            .bind(&a.flow)
            .bind(&a.event)
            .bind(&a.profile)
            .bind(i64::MIN)
            .bind(a.at)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        if already > 0 {
            return false;
        }
        sqlx::query(INSERT_ENTRY)
            .bind(&a.flow)
            .bind(&a.event)
            .bind(&a.profile)
            .bind(a.at)
            .bind(&a.webhook_id)
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(INSERT_DELIVERY)
            .bind(&a.webhook_id)
            .bind(&a.flow)
            .bind(&a.event)
            .bind(&a.profile)
            .bind("pending")
            .bind(a.next_attempt_at)
            .bind(0i64)
            .bind(a.created_at)
            .bind(None::<i64>)
            .bind(&a.data)
            .execute(&mut *conn)
            .await
            .unwrap();
        true
    })
}

fn mark_delivered<'a>(
    conn: &'a mut SqliteConnection,
    webhook_id: &'a str,
    attempts: i64,
    finished_at: i64,
    data: &'a str,
) -> Boxed<'a, ()> {
    Box::pin(async move {
        sqlx::query(MARK_DELIVERED)
            .bind(attempts)
            .bind(finished_at)
            .bind(data)
            .bind(webhook_id)
            .execute(&mut *conn)
            .await
            .unwrap();
    })
}

/// Plans the event as the crate does, writes its delivery's JSON, and has the writer commit it.
async fn hand_admit(
    ops: &mpsc::Sender<Op>,
    router: &Router,
    event: &OptOutEvent,
    profile: &Profile,
) {
    let plan = relay::plan(router, event, profile, Timestamp::now());
    for candidate in &plan.candidates {
        let delivery = &candidate.delivery;
        let admission = Admission {
            flow: candidate.flow.as_str().to_owned(),
            event: plan.event.as_str().to_owned(),
            profile: plan.profile.as_str().to_owned(),
            at: plan.at.as_millisecond(),
            webhook_id: delivery.webhook_id().as_str().to_owned(),
            next_attempt_at: delivery.next_attempt_at().unwrap().as_millisecond(),
            created_at: delivery.created_at().as_millisecond(),
            data: serde_json::to_string(delivery).unwrap(),
        };
        let (reply, entered) = oneshot::channel();
        ops.send(Op::Admit(admission, reply)).await.unwrap();
        assert!(entered.await.unwrap(), "not entered");
    }
}

// ---------------------------------------------------------------------------------------------
// 1. sqlite_submit

fn sqlite_submit(c: &mut Criterion, runtime: &Runtime, files: &Files) {
    let router = router("127.0.0.1:9".parse().unwrap());
    let run = AtomicUsize::new(0);
    let mut group = c.benchmark_group("sqlite_submit");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    let crate_store = |max_batch: usize| {
        let router = Arc::clone(&router);
        let run = &run;
        move |iterations: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let work = work(run.fetch_add(1, Ordering::Relaxed));
                let path = files.fresh();
                total += runtime.block_on(async {
                    let store = SqliteStore::builder(&path)
                        .synchronous(Synchronous::Full)
                        .max_batch(max_batch)
                        .open()
                        .await
                        .unwrap();
                    let store: Arc<dyn DeliveryStore> = Arc::new(store);
                    let took = {
                        let (store, router, work) =
                            (Arc::clone(&store), Arc::clone(&router), Arc::clone(&work));
                        drive(&work.clone(), SUBMITTERS, move |i| {
                            let (store, router, work) =
                                (Arc::clone(&store), Arc::clone(&router), Arc::clone(&work));
                            async move {
                                let (event, profile) = &work[i];
                                let plan = relay::plan(&router, event, profile, Timestamp::now());
                                let submitted = store.admit(plan).await.unwrap();
                                assert_eq!(submitted.entered().count(), 1);
                            }
                        })
                        .await
                    };
                    assert_eq!(store.counts().await.unwrap().pending, EVENTS as u64);
                    took
                });
                Files::remove(&path);
            }
            total
        }
    };
    group.bench_function("crate_group_commit", |b| b.iter_custom(crate_store(512)));
    let hand_written = |savepoints: Savepoints| {
        let router = Arc::clone(&router);
        let run = &run;
        move |iterations: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let work = work(run.fetch_add(1, Ordering::Relaxed));
                let path = files.fresh();
                total += runtime.block_on(async {
                    let ops = hand_open(&path, savepoints).await;
                    let router = Arc::clone(&router);
                    let w = Arc::clone(&work);
                    let took = drive(&work, SUBMITTERS, move |i| {
                        let (ops, router, work) =
                            (ops.clone(), Arc::clone(&router), Arc::clone(&w));
                        async move {
                            let (event, profile) = &work[i];
                            hand_admit(&ops, &router, event, profile).await;
                        }
                    })
                    .await;
                    let mut conn = options(&path).connect().await.unwrap();
                    let pending: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM optout_relay_deliveries WHERE state = 'pending'",
                    )
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                    assert_eq!(pending, EVENTS as i64);
                    took
                });
                Files::remove(&path);
            }
            total
        }
    };
    group.bench_function("hand_written_group_commit", |b| {
        b.iter_custom(hand_written(Savepoints::No))
    });
    group.bench_function("hand_written_savepoint_per_op", |b| {
        b.iter_custom(hand_written(Savepoints::PerOp))
    });
    group.bench_function("hand_written_savepoints_folded", |b| {
        b.iter_custom(hand_written(Savepoints::Folded))
    });
    group.bench_function("crate_one_commit_per_event", |b| {
        b.iter_custom(crate_store(1))
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. postgres_workers

/// The PostgreSQL server the bench uses: an external one, or a private cluster it stops.
struct PgServer {
    url: String,
    local: Option<(PathBuf, PathBuf, bool)>,
}

impl PgServer {
    fn start() -> Self {
        if let Ok(url) = std::env::var(PG_URL_ENV) {
            if !url.trim().is_empty() {
                return Self { url, local: None };
            }
        }
        let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql (or set OPTOUT_RELAY_TEST_PG_URL)")
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = name.split('.').map(str::parse).collect::<Result<Vec<u32>, _>>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        let (_, bin) = versions.pop().expect("no /usr/lib/postgresql/*/bin/initdb");
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt as _;
            m.uid() == 0
        });
        let dir = PathBuf::from(format!("/tmp/optout-relay-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if root {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir));
        }
        let server = Self {
            url: format!("postgres:///postgres?host={}&user=postgres", dir.display()),
            local: Some((bin.clone(), dir.clone(), root)),
        };
        run(pg_command(root, &bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale"]));
        run(pg_command(root, &bin.join("pg_ctl"))
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-o")
            .arg(format!(
                "-k {} -c listen_addresses='' -c max_connections=200",
                dir.display()
            ))
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "start"]));
        server
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some((bin, dir, root)) = &self.local {
            let _ = pg_command(*root, &bin.join("pg_ctl"))
                .arg("-D")
                .arg(dir.join("data"))
                .args(["stop", "-m", "immediate"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn pg_command(root: bool, program: &Path) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) {
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Empties the tables and admits `EVENTS` fresh deliveries (outside the measured time).
async fn pg_refill(store: &Arc<PostgresStore>, router: &Arc<Router>, run: usize) {
    sqlx::raw_sql("TRUNCATE optout_relay_deliveries, optout_relay_entries")
        .execute(store.pool())
        .await
        .unwrap();
    let work = work(run);
    let (store, router, w) = (Arc::clone(store), Arc::clone(router), Arc::clone(&work));
    drive(&work, SUBMITTERS, move |i| {
        let (store, router, work) = (Arc::clone(&store), Arc::clone(&router), Arc::clone(&w));
        async move {
            let (event, profile) = &work[i];
            let plan = relay::plan(&router, event, profile, Timestamp::now());
            assert_eq!(store.admit(plan).await.unwrap().entered().count(), 1);
        }
    })
    .await;
}

/// With `OPTOUT_RELAY_BENCH_VERBOSE` set, stores are wrapped in [`Counting`] and each iteration
/// prints how the worker used them.
fn verbose() -> bool {
    std::env::var_os("OPTOUT_RELAY_BENCH_VERBOSE").is_some()
}

/// A store that counts the calls a worker makes (diagnostics only).
struct Counting {
    inner: Arc<dyn DeliveryStore>,
    claims: AtomicUsize,
    claimed: AtomicUsize,
    records: AtomicUsize,
    next_due: AtomicUsize,
}

impl Counting {
    fn wrap(inner: Arc<dyn DeliveryStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            claims: AtomicUsize::new(0),
            claimed: AtomicUsize::new(0),
            records: AtomicUsize::new(0),
            next_due: AtomicUsize::new(0),
        })
    }

    /// "claim calls, rows claimed, records, next_due calls" since the last report.
    fn report(&self) -> String {
        let claims = self.claims.swap(0, Ordering::Relaxed);
        let claimed = self.claimed.swap(0, Ordering::Relaxed);
        format!(
            "{claims} claim calls ({:.1} rows each), {} records, {} next_due calls",
            claimed as f64 / claims.max(1) as f64,
            self.records.swap(0, Ordering::Relaxed),
            self.next_due.swap(0, Ordering::Relaxed),
        )
    }
}

#[async_trait::async_trait]
impl DeliveryStore for Counting {
    async fn admit(&self, plan: Plan) -> Result<Submitted, StoreError> {
        self.inner.admit(plan).await
    }
    async fn claim(
        &self,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<optout_relay::store::Claim>, StoreError> {
        self.claims.fetch_add(1, Ordering::Relaxed);
        let claims = self.inner.claim(max, lease).await?;
        self.claimed.fetch_add(claims.len(), Ordering::Relaxed);
        Ok(claims)
    }
    async fn record(
        &self,
        claim: &optout_relay::store::ClaimToken,
        delivery: &Delivery,
    ) -> Result<optout_relay::store::Recorded, StoreError> {
        self.records.fetch_add(1, Ordering::Relaxed);
        self.inner.record(claim, delivery).await
    }
    async fn release(&self, claim: &optout_relay::store::ClaimToken) -> Result<(), StoreError> {
        self.inner.release(claim).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.next_due.fetch_add(1, Ordering::Relaxed);
        self.inner.next_due().await
    }
    async fn wait_for_work(&self) {
        self.inner.wait_for_work().await;
    }
    async fn get(&self, webhook_id: &WebhookId) -> Result<Option<Delivery>, StoreError> {
        self.inner.get(webhook_id).await
    }
    async fn list(
        &self,
        query: &optout_relay::store::ListQuery,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list(query).await
    }
    async fn replay(&self, webhook_id: &WebhookId) -> Result<bool, StoreError> {
        self.inner.replay(webhook_id).await
    }
    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge(before).await
    }
    async fn counts(&self) -> Result<optout_relay::store::Counts, StoreError> {
        self.inner.counts().await
    }
    async fn endpoints(&self) -> Result<Vec<optout_relay::health::EndpointStatus>, StoreError> {
        self.inner.endpoints().await
    }
    async fn pause(
        &self,
        endpoint: &optout_relay::health::Endpoint,
    ) -> Result<Option<optout_relay::health::EndpointChange>, StoreError> {
        self.inner.pause(endpoint).await
    }
    async fn resume(
        &self,
        endpoint: &optout_relay::health::Endpoint,
    ) -> Result<Option<optout_relay::health::EndpointChange>, StoreError> {
        self.inner.resume(endpoint).await
    }
}

fn worker_builder(router: Arc<Router>, store: Arc<dyn DeliveryStore>) -> WorkerBuilder {
    Worker::builder(router, reqwest_client(), store)
        .max_in_flight(IN_FLIGHT)
        .poll_interval(Duration::from_millis(50))
}

/// Worker processes: this binary run again with [`CHILD_ENV`] set. Each reads `go` (start a
/// worker; print `d` per delivery), `stop` (shut it down; print `stopped`) on stdin; exits at
/// the end of stdin.
struct Children {
    stdins: Vec<ChildStdin>,
    children: Vec<Child>,
    lines: std_mpsc::Receiver<String>,
}

impl Children {
    fn spawn(n: usize, url: &str, addr: SocketAddr) -> Self {
        let (tx, lines) = std_mpsc::channel();
        let mut stdins = Vec::new();
        let mut children = Vec::new();
        for _ in 0..n {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env(CHILD_ENV, "pg-worker")
                .env(CHILD_URL_ENV, url)
                .env(CHILD_ADDR_ENV, addr.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            stdins.push(child.stdin.take().unwrap());
            let stdout = child.stdout.take().unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
            children.push(child);
        }
        let children = Self {
            stdins,
            children,
            lines,
        };
        children.expect_each("ready");
        children
    }

    fn tell(&self, what: &str) {
        for mut stdin in &self.stdins {
            writeln!(stdin, "{what}").unwrap();
            stdin.flush().unwrap();
        }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(120))
            .expect("a worker process stopped answering")
    }

    fn expect_each(&self, what: &str) {
        for _ in 0..self.children.len() {
            assert_eq!(self.line(), what);
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stdins.clear();
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

/// The child's side of [`Children`].
fn pg_worker_child() {
    let url = std::env::var(CHILD_URL_ENV).unwrap();
    let addr: SocketAddr = std::env::var(CHILD_ADDR_ENV).unwrap().parse().unwrap();
    runtime().block_on(async move {
        let store: Arc<dyn DeliveryStore> = Arc::new(PostgresStore::open(url).await.unwrap());
        let router = router(addr);
        let (tx, mut commands) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let say = |what: &str| {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{what}").unwrap();
            out.flush().unwrap();
        };
        say("ready");
        let mut worker = None;
        while let Some(command) = commands.recv().await {
            match command.as_str() {
                "go" => {
                    worker = Some(
                        worker_builder(Arc::clone(&router), Arc::clone(&store))
                            .start_with_callback(move |outcome| {
                                assert!(matches!(outcome, Outcome::Delivered(_)), "{outcome:?}");
                                let mut out = std::io::stdout().lock();
                                let _ = writeln!(out, "d");
                                let _ = out.flush();
                            }),
                    );
                }
                "stop" => {
                    if let Some(worker) = worker.take() {
                        let _ = worker.shutdown().await;
                    }
                    say("stopped");
                }
                _ => break,
            }
        }
    });
}

/// Starts one worker per store, waits until they have delivered `EVENTS`, stops them: the time
/// from start to the last delivery.
async fn drain_in_process(router: &Arc<Router>, stores: &[Arc<dyn DeliveryStore>]) -> Duration {
    let counters: Vec<Arc<Counting>> = stores
        .iter()
        .map(|store| Counting::wrap(Arc::clone(store)))
        .collect();
    let used: Vec<Arc<dyn DeliveryStore>> = if verbose() {
        counters
            .iter()
            .map(|c| Arc::clone(c) as Arc<dyn DeliveryStore>)
            .collect()
    } else {
        stores.to_vec()
    };
    let delivered = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let started = Instant::now();
    let running: Vec<Worker> = used
        .iter()
        .map(|store| {
            let (delivered, done) = (Arc::clone(&delivered), Arc::clone(&done));
            worker_builder(Arc::clone(router), Arc::clone(store)).start_with_callback(
                move |outcome| {
                    assert!(matches!(outcome, Outcome::Delivered(_)));
                    if delivered.fetch_add(1, Ordering::Relaxed) + 1 == EVENTS {
                        done.notify_one();
                    }
                },
            )
        })
        .collect();
    done.notified().await;
    let took = started.elapsed();
    for worker in running {
        let _ = worker.shutdown().await;
    }
    assert_eq!(delivered.load(Ordering::Relaxed), EVENTS);
    if verbose() {
        for (i, counter) in counters.iter().enumerate() {
            eprintln!("  worker {i}: {}", counter.report());
        }
    }
    took
}

fn postgres_workers(c: &mut Criterion, runtime: &Runtime, pg: &OnceCell<PgServer>) {
    let addr = runtime.block_on(server());
    let router = router(addr);
    let run = AtomicUsize::new(1_000_000);
    // Opened and started on first use, so that a filter that skips this group starts nothing.
    let url = || pg.get_or_init(PgServer::start).url.clone();
    let admin_cell: OnceCell<Arc<PostgresStore>> = OnceCell::new();
    let admin = || {
        admin_cell.get_or_init(|| Arc::new(runtime.block_on(PostgresStore::open(url())).unwrap()))
    };
    let pools: [OnceCell<Vec<Arc<dyn DeliveryStore>>>; 2] = [OnceCell::new(), OnceCell::new()];
    let processes: [OnceCell<Children>; 2] = [OnceCell::new(), OnceCell::new()];

    let mut group = c.benchmark_group("postgres_workers");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    let slow_addr = runtime.block_on(server_with_delay(SLOW_RECEIVER));
    let slow_router = self::router(slow_addr);
    let slow = format!("slow_receiver_{}ms_", SLOW_RECEIVER.as_millis());
    for (prefix, router) in [("", &router), (slow.as_str(), &slow_router)] {
        for (slot, workers) in [1usize, 4].into_iter().enumerate() {
            group.bench_function(format!("{prefix}in_process_{workers}_workers"), |b| {
                let admin = admin();
                let stores = pools[slot].get_or_init(|| {
                    (0..workers)
                        .map(|_| {
                            let store: Arc<dyn DeliveryStore> =
                                Arc::new(runtime.block_on(PostgresStore::open(url())).unwrap());
                            store
                        })
                        .collect()
                });
                b.iter_custom(|iterations| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        runtime.block_on(pg_refill(
                            admin,
                            router,
                            run.fetch_add(1, Ordering::Relaxed),
                        ));
                        total += runtime.block_on(drain_in_process(router, stores));
                        assert_eq!(
                            runtime.block_on(admin.counts()).unwrap().delivered,
                            EVENTS as u64
                        );
                    }
                    total
                })
            });
        }
    }
    for (slot, count) in [1usize, 4].into_iter().enumerate() {
        group.bench_function(format!("{count}_processes"), |b| {
            let admin = admin();
            let children = processes[slot].get_or_init(|| Children::spawn(count, &url(), addr));
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    runtime.block_on(pg_refill(
                        admin,
                        &router,
                        run.fetch_add(1, Ordering::Relaxed),
                    ));
                    let started = Instant::now();
                    children.tell("go");
                    for _ in 0..EVENTS {
                        assert_eq!(children.line(), "d");
                    }
                    total += started.elapsed();
                    children.tell("stop");
                    children.expect_each("stopped");
                    assert_eq!(
                        runtime.block_on(admin.counts()).unwrap().delivered,
                        EVENTS as u64
                    );
                }
                total
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. pipeline_durable

/// The crate: a fresh store and worker, EVENTS events from SUBMITTERS tasks, until every
/// delivery is recorded as delivered.
async fn crate_pipeline(router: &Arc<Router>, path: &Path, work: &Work) -> Duration {
    let store: Arc<dyn DeliveryStore> = Arc::new(
        SqliteStore::builder(path)
            .synchronous(Synchronous::Full)
            .open()
            .await
            .unwrap(),
    );
    let counter = Counting::wrap(Arc::clone(&store));
    let used: Arc<dyn DeliveryStore> = if verbose() {
        Arc::clone(&counter) as Arc<dyn DeliveryStore>
    } else {
        Arc::clone(&store)
    };
    let delivered = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let started = Instant::now();
    let worker = {
        let (delivered, done) = (Arc::clone(&delivered), Arc::clone(&done));
        Arc::new(
            worker_builder(Arc::clone(router), used).start_with_callback(move |outcome| {
                assert!(matches!(outcome, Outcome::Delivered(_)), "{outcome:?}");
                if delivered.fetch_add(1, Ordering::Relaxed) + 1 == EVENTS {
                    done.notify_one();
                }
            }),
        )
    };
    {
        let (worker, w) = (Arc::clone(&worker), Arc::clone(work));
        drive(work, SUBMITTERS, move |i| {
            let (worker, work) = (Arc::clone(&worker), Arc::clone(&w));
            async move {
                let (event, profile) = &work[i];
                let submitted = worker.submit(event, profile).await.unwrap();
                assert_eq!(submitted.entered().count(), 1);
            }
        })
        .await;
    }
    let submitted = started.elapsed();
    let delivered_by_then = delivered.load(Ordering::Relaxed);
    done.notified().await;
    let took = started.elapsed();
    if verbose() {
        eprintln!(
            "  crate: submits done at {submitted:.2?}, {} delivered by then, all delivered at \
             {took:.2?}; {}",
            delivered_by_then,
            counter.report()
        );
    }
    let worker = Arc::into_inner(worker).unwrap();
    let _ = worker.shutdown().await;
    assert_eq!(store.counts().await.unwrap().delivered, EVENTS as u64);
    took
}

/// The baseline: bare reqwest and a hand-written outbox in the same file layout: submits insert
/// the rows through the group-committing writer; a dispatcher selects due rows not in flight and
/// sends each (decoded from its JSON and signed as the crate does) with IN_FLIGHT in flight; each
/// sent row is updated as delivered through the writer.
async fn hand_pipeline(
    router: &Arc<Router>,
    client: &reqwest::Client,
    path: &Path,
    work: &Work,
    savepoints: Savepoints,
) -> Duration {
    let ops = hand_open(path, savepoints).await;
    let mut reader = options(path).read_only(true).connect().await.unwrap();
    let wake = Arc::new(Notify::new());
    let delivered = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let in_flight = Arc::new(tokio::sync::Mutex::new(HashSet::<String>::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let started = Instant::now();

    let dispatcher = {
        let (ops, wake, router, client) = (
            ops.clone(),
            Arc::clone(&wake),
            Arc::clone(router),
            client.clone(),
        );
        let (delivered, done, in_flight, permits) = (
            Arc::clone(&delivered),
            Arc::clone(&done),
            Arc::clone(&in_flight),
            Arc::clone(&permits),
        );
        tokio::spawn(async move {
            let policy = DestinationPolicy::new().allow_loopback();
            let retry = RetryPolicy::default();
            loop {
                let woken = wake.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                let free = permits.available_permits();
                if free > 0 {
                    let mut flying = in_flight.lock().await;
                    let rows: Vec<(String, String)> = sqlx::query_as(DUE)
                        .bind(Timestamp::now().as_millisecond())
                        .bind(i64::try_from(free + flying.len()).unwrap())
                        .fetch_all(&mut reader)
                        .await
                        .unwrap();
                    let mut started_any = false;
                    for (webhook_id, data) in rows {
                        if flying.contains(&webhook_id) {
                            continue;
                        }
                        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                            break;
                        };
                        started_any = true;
                        flying.insert(webhook_id.clone());
                        let (ops, wake, router, client, policy, retry) = (
                            ops.clone(),
                            Arc::clone(&wake),
                            Arc::clone(&router),
                            client.clone(),
                            policy.clone(),
                            retry.clone(),
                        );
                        let (delivered, done, in_flight) = (
                            Arc::clone(&delivered),
                            Arc::clone(&done),
                            Arc::clone(&in_flight),
                        );
                        tokio::spawn(async move {
                            let mut delivery: Delivery = serde_json::from_str(&data).unwrap();
                            let sent_at = Timestamp::now();
                            let request =
                                relay::prepare_attempt(&router, &delivery, &policy, sent_at)
                                    .unwrap();
                            let request = reqwest::Request::try_from(request).unwrap();
                            let response = client.execute(request).await.unwrap();
                            let status = response.status();
                            let body = response.bytes().await.unwrap();
                            let response = http::Response::builder()
                                .status(status.as_u16())
                                .body(body.to_vec())
                                .unwrap();
                            let now = Timestamp::now();
                            let step = delivery.record(Ok(&response), sent_at, now, &retry, 0);
                            assert!(matches!(step, Step::Delivered), "{step:?}");
                            let (reply, committed) = oneshot::channel();
                            ops.send(Op::Delivered {
                                webhook_id: webhook_id.clone(),
                                attempts: i64::from(delivery.attempt_count()),
                                finished_at: now.as_millisecond(),
                                data: serde_json::to_string(&delivery).unwrap(),
                                reply,
                            })
                            .await
                            .unwrap();
                            committed.await.unwrap();
                            in_flight.lock().await.remove(&webhook_id);
                            drop(permit);
                            wake.notify_one();
                            if delivered.fetch_add(1, Ordering::Relaxed) + 1 == EVENTS {
                                done.notify_one();
                            }
                        });
                    }
                    drop(flying);
                    if started_any {
                        continue;
                    }
                }
                tokio::select! {
                    () = &mut woken => {}
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        })
    };
    {
        let (router, wake, w) = (Arc::clone(router), Arc::clone(&wake), Arc::clone(work));
        drive(work, SUBMITTERS, move |i| {
            let (ops, router, wake, work) = (
                ops.clone(),
                Arc::clone(&router),
                Arc::clone(&wake),
                Arc::clone(&w),
            );
            async move {
                let (event, profile) = &work[i];
                hand_admit(&ops, &router, event, profile).await;
                wake.notify_one();
            }
        })
        .await;
    }
    let submitted = started.elapsed();
    let delivered_by_then = delivered.load(Ordering::Relaxed);
    done.notified().await;
    let took = started.elapsed();
    if verbose() {
        eprintln!(
            "  baseline: submits done at {submitted:.2?}, {delivered_by_then} delivered by then, \
             all delivered at {took:.2?}"
        );
    }
    dispatcher.abort();
    let _ = dispatcher.await;
    let mut check = options(path).read_only(true).connect().await.unwrap();
    let delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM optout_relay_deliveries WHERE state = 'delivered'",
    )
    .fetch_one(&mut check)
    .await
    .unwrap();
    assert_eq!(delivered, EVENTS as i64);
    took
}

fn pipeline_durable(c: &mut Criterion, runtime: &Runtime, files: &Files) {
    let addr = runtime.block_on(server());
    let router = router(addr);
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let run = AtomicUsize::new(2_000_000);
    let mut group = c.benchmark_group("pipeline_durable");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("crate_worker_sqlite_reqwest", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let work = work(run.fetch_add(1, Ordering::Relaxed));
                let path = files.fresh();
                total += runtime.block_on(crate_pipeline(&router, &path, &work));
                Files::remove(&path);
            }
            total
        })
    });
    let hand_written = |savepoints: Savepoints| {
        let run = &run;
        let (router, bare) = (&router, &bare);
        move |iterations: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let work = work(run.fetch_add(1, Ordering::Relaxed));
                let path = files.fresh();
                total += runtime.block_on(hand_pipeline(router, bare, &path, &work, savepoints));
                Files::remove(&path);
            }
            total
        }
    };
    group.bench_function("bare_reqwest_hand_written_outbox", |b| {
        b.iter_custom(hand_written(Savepoints::No))
    });
    group.bench_function("bare_reqwest_hand_written_outbox_savepoint_per_op", |b| {
        b.iter_custom(hand_written(Savepoints::PerOp))
    });
    group.finish();
}

fn main() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("pg-worker") {
        pg_worker_child();
        return;
    }
    let runtime = runtime();
    let files = Files::new();
    let pg = OnceCell::new();
    let mut criterion = Criterion::default().configure_from_args();
    sqlite_submit(&mut criterion, &runtime, &files);
    postgres_workers(&mut criterion, &runtime, &pg);
    pipeline_durable(&mut criterion, &runtime, &files);
    criterion.final_summary();
    drop(pg);
}
