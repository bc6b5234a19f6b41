//! The SQL of each write: admissions and attempts in batches, claims, replays.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::sqlite::SqliteConnection;

use crate::delivery::Delivery;
use crate::listen::{DeliveryOrder, EntryDecision};
use crate::relay::{EntryHistory, Plan, Submitted, decide_entry, window_start};
use crate::store::sql::{self, Columns, millis};
use crate::store::{Claim, ClaimToken, StoreError, StoreErrorKind, lease_deadline};

use super::healths::Healths;

/// A boxed `Send` future: the writer's futures are boxed where they borrow the connection, so
/// that the spawned writer task is `Send` for every lifetime (a limit of today's compiler with
/// sqlx's executor bounds).
pub(super) type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(super) fn execute<'a>(
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

pub(super) fn fenced(rows: u64, token: &ClaimToken) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::lease_lost(&token.webhook_id))
    }
}

/// The most candidates one statement of the batched admit carries (SQLite allows 32,766
/// parameters; a delivery row takes 12).
pub(super) const ROWS_PER_STATEMENT: usize = 1_000;

/// Admits every plan of a batch with a few statements in all, instead of a few per plan: one
/// query reads the entry history of every candidate, the entries are decided in order (each
/// seeing the entries decided before it in the batch), then one statement inserts the entries
/// and one the deliveries. The caller holds a savepoint around it and falls back to admitting
/// the plans one by one if it fails. It also makes a row, healthy, for each endpoint the writer
/// does not know to have one (the rows endpoint health's claims read; made whatever the store's
/// policy, so that a store with endpoint health on finds the work another one admitted).
pub(super) fn admit_batch<'a>(
    conn: &'a mut SqliteConnection,
    admits: &'a [(&'a Plan, &'a [Columns])],
    healths: &'a mut Healths,
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
                 next_attempt_at, attempts, created_at, finished_at, data, endpoint, ordered) ",
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
                    .push_bind(row.columns.data.as_str())
                    .push_bind(row.columns.endpoint.as_str())
                    .push_bind(row.candidate.order == DeliveryOrder::PerProfile);
            });
            query.push(" ON CONFLICT (webhook_id) DO NOTHING");
            query
                .build()
                .execute(&mut *conn)
                .await
                .map_err(sql::error)?;
        }
        {
            let mut seen = std::collections::HashSet::new();
            let new: Vec<&str> = entered
                .iter()
                .map(|row| row.columns.endpoint.as_str())
                .filter(|endpoint| !healths.has_row(endpoint) && seen.insert(*endpoint))
                .collect();
            for part in new.chunks(ROWS_PER_STATEMENT) {
                let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT INTO optout_relay_endpoints (endpoint, state, health, blocked_until) ",
                );
                query.push_values(part, |mut values, endpoint| {
                    values
                        .push_bind(*endpoint)
                        .push_bind("healthy")
                        .push_bind(crate::store::sql_health::NEW_HEALTH)
                        .push_bind(0i64);
                });
                query.push(" ON CONFLICT (endpoint) DO NOTHING");
                query
                    .build()
                    .execute(&mut *conn)
                    .await
                    .map_err(sql::error)?;
            }
            for endpoint in new {
                healths.made(endpoint);
            }
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
pub(super) fn record_batch<'a>(
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
pub(super) const CLAIM: &str = "UPDATE optout_relay_deliveries \
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
     RETURNING webhook_id, claims, abandoned, data, rowid";

pub(super) async fn claim(
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

pub(super) async fn rewrite(
    conn: &mut SqliteConnection,
    delivery: &Delivery,
) -> Result<(), StoreError> {
    let columns = Columns::of(delivery)?;
    sql::rewrite_query!(columns, delivery.webhook_id().as_str())
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    Ok(())
}

pub(super) async fn record(
    conn: &mut SqliteConnection,
    token: &ClaimToken,
    columns: &Columns,
) -> Result<(), StoreError> {
    let done = sql::record_query!(columns, token)
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    fenced(done.rows_affected(), token)
}

pub(super) async fn replay(
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
    // Its endpoint's row, if a file written without one lacks it (the claims of endpoint
    // health read the rows).
    sqlx::query(crate::store::sql_health::ENSURE_ENDPOINT)
        .bind(delivery.endpoint().as_str())
        .bind(crate::store::sql_health::NEW_HEALTH)
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    Ok(true)
}
