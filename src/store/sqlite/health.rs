//! Endpoint health in the SQLite store: claims that take from each endpoint only what its
//! health and limits grant, records that settle the attempt on its endpoint, operators' pause
//! and resume, and the schema's second version. Everything here runs in the writer's
//! transaction, so one writer at a time decides (in this process and any other on the file).

use std::time::Duration;

use jiff::Timestamp;
use sqlx::sqlite::SqliteConnection;

use crate::delivery::Delivery;
use crate::health::{self, Endpoint, EndpointChange, EndpointHealth, EndpointPolicy, Limits};
use crate::store::sql::{self, Columns, millis};
use crate::store::sql_health::{self, ENDPOINT_HEALTH, IN_FLIGHT, PENDING_OF};
use crate::store::{Claim, ClaimToken, Recorded, StoreError, StoreErrorKind, lease_deadline};

use super::ops::{Boxed, fenced, record_batch, rewrite};

/// Endpoints with claimable work, earliest due first, leaving out those whose health blocks them
/// until later. ($1 now, $2 how many) -> endpoint.
///
/// It reads the endpoints' table (every endpoint with a pending delivery has a row: made at
/// admission, and at open for files written before), and each endpoint's deliveries through
/// its index, so that its cost grows with the number of endpoints, not of pending deliveries.
const DUE_ENDPOINTS: &str = concat!(
    "SELECT e.endpoint FROM optout_relay_endpoints e \
     WHERE e.blocked_until <= $1 \
       AND EXISTS (SELECT 1 FROM optout_relay_deliveries d \
         WHERE d.endpoint = e.endpoint AND d.state = 'pending' AND d.next_attempt_at <= $1 \
           AND (d.lease_until IS NULL OR d.lease_until <= $1) AND ",
    sql_health::first_of_profile!("rowid"),
    ") ORDER BY (SELECT min(d.next_attempt_at) FROM optout_relay_deliveries d \
         WHERE d.endpoint = e.endpoint AND d.state = 'pending'), e.endpoint \
     LIMIT $2"
);
/// ($1 endpoint, $2 now, $3 how many) -> webhook id.
const CANDIDATES: &str = sql_health::candidates!("rowid", "");
/// () -> (endpoint, due): for each endpoint, its earliest delivery not under lease that
/// per-Profile order lets go, found through the endpoint's index.
pub(super) const NEXT_DUE_BY_ENDPOINT: &str = concat!(
    "SELECT e.endpoint, (SELECT d.next_attempt_at FROM optout_relay_deliveries d \
       WHERE d.endpoint = e.endpoint AND d.state = 'pending' AND d.lease_until IS NULL AND ",
    sql_health::first_of_profile!("rowid"),
    " ORDER BY d.next_attempt_at LIMIT 1) FROM optout_relay_endpoints e"
);

/// Rows for the endpoints of pending deliveries that have none (files written before rows were
/// made at admission).
/// ($1 the health of a new endpoint).
const ENDPOINTS_OF_PENDING: &str = "INSERT INTO optout_relay_endpoints \
     (endpoint, state, health, blocked_until) \
     SELECT DISTINCT endpoint, 'healthy', $1, 0 FROM optout_relay_deliveries \
     WHERE state = 'pending' AND endpoint <> '' \
     ON CONFLICT (endpoint) DO NOTHING";

/// ($1 endpoint, $2 now, $3 how many, $4 lease deadline) -> claimed rows: takes an endpoint's
/// claimable deliveries in one statement (for a healthy endpoint without limits, where nothing
/// is counted).
const TAKE_DUE: &str = concat!(
    "UPDATE optout_relay_deliveries \
     SET claims = claims + 1, \
         abandoned = abandoned + (CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END), \
         lease_until = $4 \
     WHERE webhook_id IN (",
    sql_health::candidates!("rowid", ""),
    ") RETURNING webhook_id, claims, abandoned, data"
);

/// ($1 lease deadline, $2 a JSON array of webhook ids) -> claimed rows.
const TAKE_IDS: &str = "UPDATE optout_relay_deliveries \
     SET claims = claims + 1, \
         abandoned = abandoned + (CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END), \
         lease_until = $1 \
     WHERE webhook_id IN (SELECT value FROM json_each($2)) \
     RETURNING webhook_id, claims, abandoned, data";

/// ($1 endpoint, $2 state, $3 health, $4 blocked until): writes an endpoint's row, creating it
/// if it has none.
const UPSERT_ENDPOINT: &str = "INSERT INTO optout_relay_endpoints \
     (endpoint, state, health, blocked_until) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (endpoint) DO UPDATE SET state = excluded.state, health = excluded.health, \
     blocked_until = excluded.blocked_until";

/// An endpoint's health as stored, and whether it has a row (a new endpoint is healthy).
struct Loaded {
    health: EndpointHealth,
    stored: Option<EndpointHealth>,
}

impl Loaded {
    /// Writes the health back if it changed (or the endpoint has no row yet).
    async fn save(
        &self,
        conn: &mut SqliteConnection,
        endpoint: &Endpoint,
        policy: &EndpointPolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if self.stored.as_ref() == Some(&self.health) {
            return Ok(());
        }
        let (state, text, blocked) =
            sql_health::endpoint_columns(&self.health, endpoint, policy, now);
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
}

/// Reads an endpoint's health (healthy if it has no row).
async fn load(conn: &mut SqliteConnection, endpoint: &Endpoint) -> Result<Loaded, StoreError> {
    let text: Option<String> = sqlx::query_scalar(ENDPOINT_HEALTH)
        .bind(endpoint.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(sql::error)?;
    let stored = match text {
        Some(text) => Some(sql_health::health_of(endpoint.as_str(), &text)?),
        None => None,
    };
    Ok(Loaded {
        health: stored.clone().unwrap_or_default(),
        stored,
    })
}

/// Claims up to `max` due deliveries, endpoint by endpoint (earliest due first), each endpoint
/// giving what its health and limits grant.
pub(super) async fn claim(
    conn: &mut SqliteConnection,
    max: usize,
    lease: Duration,
    now: Timestamp,
    policy: &EndpointPolicy,
) -> Result<Vec<Claim>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let endpoints: Vec<String> = sqlx::query_scalar(DUE_ENDPOINTS)
        .bind(millis(now))
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    let until = millis(lease_deadline(now, lease));
    let mut rows: Vec<sql::ClaimedRow> = Vec::new();
    for endpoint in endpoints {
        let remaining = max.saturating_sub(rows.len());
        if remaining == 0 {
            break;
        }
        let remaining = i64::try_from(remaining).unwrap_or(i64::MAX);
        let endpoint = Endpoint::from_stored(endpoint);
        let mut loaded = load(conn, &endpoint).await?;
        let limits = policy.limits_of(&endpoint);
        if loaded.health.state().is_healthy() && limits == Limits::NONE {
            // Nothing to count: everything due may start.
            let taken: Vec<sql::ClaimedRow> = sqlx::query_as(TAKE_DUE)
                .bind(endpoint.as_str())
                .bind(millis(now))
                .bind(remaining)
                .bind(until)
                .fetch_all(&mut *conn)
                .await
                .map_err(sql::error)?;
            rows.extend(taken);
        } else {
            let in_flight: i64 = sqlx::query_scalar(IN_FLIGHT)
                .bind(endpoint.as_str())
                .bind(millis(now))
                .fetch_one(&mut *conn)
                .await
                .map_err(sql::error)?;
            let ids: Vec<String> = sqlx::query_scalar(CANDIDATES)
                .bind(endpoint.as_str())
                .bind(millis(now))
                .bind(remaining)
                .fetch_all(&mut *conn)
                .await
                .map_err(sql::error)?;
            let granted = loaded.health.grant(
                ids.len(),
                usize::try_from(in_flight).unwrap_or(0),
                limits,
                now,
                lease,
            );
            if granted > 0 {
                let ids = serde_json::to_string(&ids[..granted])
                    .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
                let taken: Vec<sql::ClaimedRow> = sqlx::query_as(TAKE_IDS)
                    .bind(until)
                    .bind(ids)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(sql::error)?;
                rows.extend(taken);
            }
        }
        loaded.save(conn, &endpoint, policy, now).await?;
    }
    let (claims, abandoned) = sql::sort_claims(rows, now)?;
    for delivery in abandoned {
        rewrite(conn, &delivery).await?;
    }
    Ok(claims)
}

/// Records an attempt and settles it on its endpoint: the delivery may be held, the endpoint's
/// state may change, and a recovery releases the endpoint's pending deliveries.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    token: &ClaimToken,
    delivery: &Delivery,
    now: Timestamp,
    policy: &EndpointPolicy,
) -> Result<Recorded, StoreError> {
    let endpoint = delivery.endpoint();
    let mut loaded = load(conn, &endpoint).await?;
    let mut settled = delivery.clone();
    let settlement = health::settle(&mut settled, &endpoint, &mut loaded.health, policy, now);
    let columns = Columns::of(&settled)?;
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
    fenced(done.rows_affected(), token)?;
    loaded.save(conn, &endpoint, policy, now).await?;
    if settlement.release {
        release(conn, &endpoint, now, &[]).await?;
    }
    Ok(Recorded {
        held: settlement.held,
        change: settlement.change,
    })
}

/// Records a group commit's attempts (distinct webhook ids) and settles them on their endpoints
/// with a few statements in all: each endpoint's health is read once, the attempts applied to it
/// in the order they came (exactly as one by one), the deliveries written with one statement,
/// each endpoint's health written once. Returns `None`, having written nothing the caller keeps,
/// when a claim was lost: the caller rolls back to its savepoint and records one by one, so that
/// the lost one fails alone and its attempt is not counted.
pub(super) fn record_all<'a>(
    conn: &'a mut SqliteConnection,
    records: &'a [(&'a ClaimToken, &'a Delivery)],
    now: Timestamp,
    policy: &'a EndpointPolicy,
) -> Boxed<'a, Result<Option<Vec<Recorded>>, StoreError>> {
    Box::pin(async move {
        // The endpoints in the order they first come, each with its records' places.
        let mut endpoints: Vec<(Endpoint, Vec<usize>)> = Vec::new();
        for (i, (_, delivery)) in records.iter().enumerate() {
            let endpoint = delivery.endpoint();
            match endpoints.iter_mut().find(|(e, _)| *e == endpoint) {
                Some((_, places)) => places.push(i),
                None => endpoints.push((endpoint, vec![i])),
            }
        }
        let mut columns: Vec<Option<Columns>> = (0..records.len()).map(|_| None).collect();
        let mut recorded: Vec<Recorded> = vec![Recorded::default(); records.len()];
        // Per endpoint: its health after the batch, and the records after its last recovery
        // (those a release must leave alone: one by one, they were still in flight).
        let mut settled_endpoints = Vec::with_capacity(endpoints.len());
        for (endpoint, places) in &endpoints {
            let mut loaded = load(conn, endpoint).await?;
            let mut release_after: Option<usize> = None;
            for (n, &i) in places.iter().enumerate() {
                let mut settled = records[i].1.clone();
                let settlement =
                    health::settle(&mut settled, endpoint, &mut loaded.health, policy, now);
                if settlement.release {
                    release_after = Some(n);
                }
                columns[i] = Some(Columns::of(&settled)?);
                recorded[i] = Recorded {
                    held: settlement.held,
                    change: settlement.change,
                };
            }
            let later: Vec<&str> = release_after.map_or_else(Vec::new, |n| {
                places[n + 1..]
                    .iter()
                    .map(|&i| records[i].0.webhook_id.as_str())
                    .collect()
            });
            settled_endpoints.push((loaded, release_after.is_some(), later));
        }
        let columns: Vec<Columns> = columns.into_iter().flatten().collect();
        let rows: Vec<(&ClaimToken, &Columns)> = records
            .iter()
            .map(|(token, _)| *token)
            .zip(columns.iter())
            .collect();
        let written = record_batch(conn, &rows).await?;
        if written.len() != records.len() {
            return Ok(None);
        }
        for ((endpoint, _), (loaded, release_now, later)) in
            endpoints.iter().zip(&settled_endpoints)
        {
            loaded.save(conn, endpoint, policy, now).await?;
            if *release_now {
                release(conn, endpoint, now, later).await?;
            }
        }
        Ok(Some(recorded))
    })
}

/// Makes every pending delivery of `endpoint` not in flight due at `now`, with a fresh
/// allowance, but for those in `except`.
async fn release(
    conn: &mut SqliteConnection,
    endpoint: &Endpoint,
    now: Timestamp,
    except: &[&str],
) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(PENDING_OF)
        .bind(endpoint.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    for (id, data) in rows {
        if except.contains(&id.as_str()) {
            continue;
        }
        let mut delivery = sql::decode(&id, &data)?;
        if delivery.hold(now) {
            rewrite(conn, &delivery).await?;
        }
    }
    Ok(())
}

/// An operator's pause (`resume` false) or resume of `endpoint`.
pub(super) async fn pause_or_resume(
    conn: &mut SqliteConnection,
    endpoint: &Endpoint,
    resume: bool,
    now: Timestamp,
    policy: &EndpointPolicy,
) -> Result<Option<EndpointChange>, StoreError> {
    let mut loaded = load(conn, endpoint).await?;
    let change = if resume {
        health::resume(endpoint, &mut loaded.health, now)
    } else {
        health::pause(endpoint, &mut loaded.health, now)
    };
    loaded.save(conn, endpoint, policy, now).await?;
    if resume && change.is_some() {
        release(conn, endpoint, now, &[]).await?;
    }
    Ok(change)
}

/// Brings a file at schema version 1 to version 2: the deliveries' `endpoint` (filled from each
/// stored request) and `ordered` columns, the endpoints' table and their indexes.
pub(super) async fn migrate_v2(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let schema = |e: sqlx::Error| {
        StoreError::new(
            StoreErrorKind::Schema,
            format!("the tables cannot be brought to version 2: {e}"),
        )
    };
    let has_endpoint: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pragma_table_info('optout_relay_deliveries') WHERE name = 'endpoint'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(schema)?;
    if has_endpoint == 0 {
        sqlx::raw_sql(
            "ALTER TABLE optout_relay_deliveries ADD COLUMN endpoint TEXT NOT NULL DEFAULT ''; \
             ALTER TABLE optout_relay_deliveries ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;",
        )
        .execute(&mut *conn)
        .await
        .map_err(schema)?;
    }
    sqlx::raw_sql(include_str!("../migrations/sqlite_v2.sql"))
        .execute(&mut *conn)
        .await
        .map_err(schema)?;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT webhook_id, data FROM optout_relay_deliveries WHERE endpoint = ''")
            .fetch_all(&mut *conn)
            .await
            .map_err(schema)?;
    for (id, data) in rows {
        let endpoint = sql::decode(&id, &data)?.endpoint();
        sqlx::query("UPDATE optout_relay_deliveries SET endpoint = $1 WHERE webhook_id = $2")
            .bind(endpoint.as_str())
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(schema)?;
    }
    sqlx::query(ENDPOINTS_OF_PENDING)
        .bind(sql_health::NEW_HEALTH)
        .execute(&mut *conn)
        .await
        .map_err(schema)?;
    Ok(())
}
