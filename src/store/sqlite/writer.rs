//! The writer task: every write, in groups, one transaction each.

use std::time::Duration;

use jiff::Timestamp;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::mpsc;

use std::sync::Arc;

use crate::delivery::Delivery;
use crate::health::{Endpoint, EndpointChange, EndpointPolicy};
use crate::relay::{Plan, Submitted};
use crate::store::sql::{self, Columns, millis};
use crate::store::{Claim, ClaimToken, Recorded, StoreError, StoreErrorKind};

use super::health;
use super::healths::Healths;
use super::ops::{Boxed, admit_batch, claim, execute, fenced, record, record_batch, replay};
use super::synchronous::Synchronous;

/// Where a command's answer goes.
type Reply<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Command {
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
        delivery: Delivery,
        reply: Reply<Recorded>,
    },
    Release {
        token: ClaimToken,
        reply: Reply<()>,
    },
    /// An operator's pause, or resume.
    Pause {
        endpoint: Endpoint,
        resume: bool,
        reply: Reply<Option<EndpointChange>>,
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
pub(super) type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

pub(super) fn finish<T: Send + 'static>(
    reply: Reply<T>,
    result: Result<T, StoreError>,
) -> (bool, Finish) {
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
    /// (A record with endpoint health opens a savepoint of its own when it writes more than
    /// the delivery.)
    fn needs_savepoint(&self) -> bool {
        match self {
            Self::Admit { .. } | Self::Claim { .. } | Self::Replay { .. } | Self::Pause { .. } => {
                true
            }
            Self::Record { .. } | Self::Release { .. } | Self::Purge { .. } => false,
        }
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
pub(super) async fn write_loop(
    mut conn: SqliteConnection,
    mut commands: mpsc::Receiver<Command>,
    max_batch: usize,
    synchronous: Synchronous,
    policy: Arc<EndpointPolicy>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut flushing = true;
    let mut healths = Healths::default();
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
        let begun = if policy.gates() {
            begin_checked(&mut conn, begin, &mut healths, &policy, now).await
        } else {
            // Read again if a pause or resume needs it (rows known stay known).
            healths.forget();
            execute(&mut conn, begin).await
        };
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
                    let result = admit_batch(&mut conn, &plans, &mut healths).await;
                    let end = if result.is_ok() {
                        "RELEASE batch"
                    } else {
                        healths.invalidate();
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
        // The attempts' records, all together (one statement, and with endpoint health on a few
        // per endpoint) when their ids are distinct; one by one below otherwise, or if that
        // fails.
        let mut ids = std::collections::HashSet::new();
        let distinct = batch.iter().all(|command| match command {
            Command::Record { token, .. } => ids.insert(token.webhook_id.as_str()),
            _ => true,
        });
        if distinct && ids.len() > 1 {
            let records: Vec<(&ClaimToken, &Columns, &Delivery)> = batch
                .iter()
                .filter_map(|command| match command {
                    Command::Record {
                        token,
                        columns,
                        delivery,
                        ..
                    } => Some((token, columns, delivery)),
                    _ => None,
                })
                .collect();
            let results = if policy.is_enabled() {
                // Each record also settles on its endpoint: inside a savepoint, so that a lost
                // claim (or an error) undoes the batch and the records go one by one below.
                settle_all(&mut conn, &records, now, &policy, &mut healths).await
            } else {
                let rows: Vec<(&ClaimToken, &Columns)> = records
                    .iter()
                    .map(|(token, columns, _)| (*token, *columns))
                    .collect();
                record_batch(&mut conn, &rows).await.ok().map(|written| {
                    rows.iter()
                        .map(|(token, _)| {
                            if written.contains(&token.webhook_id) {
                                Ok(Recorded::default())
                            } else {
                                Err(StoreError::lease_lost(&token.webhook_id))
                            }
                        })
                        .collect::<Vec<_>>()
                })
            };
            if let Some(results) = results {
                let (records, rest): (Vec<Command>, Vec<Command>) = batch
                    .drain(..)
                    .partition(|command| matches!(command, Command::Record { .. }));
                batch.extend(rest);
                for (command, result) in records.into_iter().zip(results) {
                    if let Command::Record { reply, .. } = command {
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
                Ok(()) => run(&mut conn, command, now, &policy, &mut healths).await,
                Err(e) => fail(command, e),
            };
            if savepoint && ok {
                open = true;
            } else if savepoint {
                healths.invalidate();
                let _ = execute(&mut conn, "ROLLBACK TO op; RELEASE op").await;
            }
            finishes.push(done);
        }
        let end = if open { "RELEASE op; COMMIT" } else { "COMMIT" };
        let commit = match execute(&mut conn, end).await {
            Ok(()) => Ok(()),
            Err(e) => {
                healths.invalidate();
                let _ = execute(&mut conn, "ROLLBACK").await;
                Err(e)
            }
        };
        for done in finishes {
            done(commit.clone());
        }
    }
    if policy.is_enabled() {
        // The successes kept in the copy only, written as the writer stops (when its runtime
        // lets it finish; otherwise at most a second of them is not counted).
        let now = Timestamp::now();
        if let Ok(version) = begin_version(&mut conn, "BEGIN IMMEDIATE").await {
            let flushed = healths.flush(&mut conn, version, &policy, now).await;
            let end = if flushed.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            let _ = execute(&mut conn, end).await;
        }
    }
    let _ = conn.close().await;
}

/// Begins a group commit's transaction and reads the file's `data_version` in the same round
/// trip.
async fn begin_version(
    conn: &mut SqliteConnection,
    begin: &'static str,
) -> Result<i64, StoreError> {
    let statement: &'static str = match begin {
        "PRAGMA synchronous = FULL; BEGIN IMMEDIATE" => {
            "PRAGMA synchronous = FULL; BEGIN IMMEDIATE; PRAGMA data_version"
        }
        "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE" => {
            "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE; PRAGMA data_version"
        }
        _ => "BEGIN IMMEDIATE; PRAGMA data_version",
    };
    sqlx::query_scalar(statement)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql::error)
}

/// Begins a group commit's transaction and brings the writer's copy of the endpoints' health up
/// to date; on failure the transaction is rolled back.
async fn begin_checked(
    conn: &mut SqliteConnection,
    begin: &'static str,
    healths: &mut Healths,
    policy: &EndpointPolicy,
    now: Timestamp,
) -> Result<(), StoreError> {
    let version = begin_version(conn, begin).await?;
    if let Err(error) = healths.check(conn, version, policy, now).await {
        healths.invalidate();
        let _ = execute(conn, "ROLLBACK").await;
        return Err(error);
    }
    Ok(())
}

/// Records and settles a batch's attempts together, in a savepoint: `None` (the savepoint rolled
/// back) when that fails or a claim was lost, for the caller to record them one by one.
async fn settle_all(
    conn: &mut SqliteConnection,
    records: &[(&ClaimToken, &Columns, &Delivery)],
    now: Timestamp,
    policy: &EndpointPolicy,
    healths: &mut Healths,
) -> Option<Vec<Result<Recorded, StoreError>>> {
    execute(conn, "SAVEPOINT batch").await.ok()?;
    let pairs: Vec<(&ClaimToken, &Delivery)> = records
        .iter()
        .map(|(token, _, delivery)| (*token, *delivery))
        .collect();
    let settled = health::record_all(conn, &pairs, now, policy, healths).await;
    if let Ok(Some(recorded)) = settled {
        if execute(conn, "RELEASE batch").await.is_ok() {
            return Some(recorded.into_iter().map(Ok).collect());
        }
    }
    healths.invalidate();
    let _ = execute(conn, "ROLLBACK TO batch; RELEASE batch").await;
    None
}

pub(super) fn fail(command: Command, error: StoreError) -> (bool, Finish) {
    match command {
        Command::Admit { reply, .. } => finish(reply, Err(error)),
        Command::Claim { reply, .. } => finish(reply, Err(error)),
        Command::Record { reply, .. } => finish(reply, Err(error)),
        Command::Release { reply, .. } => finish(reply, Err(error)),
        Command::Pause { reply, .. } => finish(reply, Err(error)),
        Command::Replay { reply, .. } => finish(reply, Err(error)),
        Command::Purge { reply, .. } => finish(reply, Err(error)),
    }
}

pub(super) fn run<'a>(
    conn: &'a mut SqliteConnection,
    command: Command,
    now: Timestamp,
    policy: &'a EndpointPolicy,
    healths: &'a mut Healths,
) -> Boxed<'a, (bool, Finish)> {
    Box::pin(async move {
        match command {
            Command::Admit { plan, rows, reply } => {
                // The batched path with a batch of one: the same statements, the same rule.
                let result = admit_batch(conn, &[(&plan, &rows)], healths)
                    .await
                    .and_then(|submitted| {
                        submitted.into_iter().next().ok_or_else(|| {
                            StoreError::new(StoreErrorKind::Other, "no result for the admission")
                        })
                    });
                finish(reply, result)
            }
            Command::Claim { max, lease, reply } if policy.gates() => finish(
                reply,
                health::claim(conn, max, lease, now, policy, healths).await,
            ),
            Command::Claim { max, lease, reply } => {
                finish(reply, claim(conn, max, lease, now).await)
            }
            Command::Record {
                token,
                delivery,
                reply,
                ..
            } if policy.is_enabled() => finish(
                reply,
                health::record(conn, &token, &delivery, now, policy, healths).await,
            ),
            Command::Record {
                token,
                columns,
                reply,
                ..
            } => finish(
                reply,
                record(conn, &token, &columns)
                    .await
                    .map(|()| Recorded::default()),
            ),
            Command::Pause {
                endpoint,
                resume,
                reply,
            } => finish(
                reply,
                health::pause_or_resume(conn, &endpoint, resume, now, policy, healths).await,
            ),
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
