//! Endpoint health in the SQLite store: claims that take from each endpoint only what its
//! health and limits grant, records that settle the attempt on its endpoint, operators' pause
//! and resume, and the schema's second version. Everything here runs in the writer's
//! transaction, so one writer at a time decides (in this process and any other on the file).

use std::time::Duration;

use jiff::Timestamp;
use sqlx::sqlite::SqliteConnection;

use crate::delivery::Delivery;
use crate::health::{
    self, AttemptClass, Endpoint, EndpointChange, EndpointHealth, EndpointPolicy, Limits,
};
use crate::store::sql::{self, Columns, millis};
use crate::store::sql_health::{self, IN_FLIGHT, PENDING_OF};
use crate::store::{Claim, ClaimToken, Recorded, StoreError, StoreErrorKind, lease_deadline};

use super::healths::Healths;
use super::ops::{Boxed, execute, fenced, record_batch, rewrite};

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
    ") RETURNING webhook_id, claims, abandoned, data, rowid"
);

/// ($1 lease deadline, $2 a JSON array of webhook ids) -> claimed rows.
const TAKE_IDS: &str = "UPDATE optout_relay_deliveries \
     SET claims = claims + 1, \
         abandoned = abandoned + (CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END), \
         lease_until = $1 \
     WHERE webhook_id IN (SELECT value FROM json_each($2)) \
     RETURNING webhook_id, claims, abandoned, data, rowid";

/// Claims due work when every endpoint is healthy and none has limits: nothing to count, so
/// one statement, as without endpoint health, but for per-Profile order. ($1 lease deadline,
/// $2 now, $3 how many.)
const CLAIM_ORDERED: &str = concat!(
    "UPDATE optout_relay_deliveries \
     SET claims = claims + 1, \
         abandoned = abandoned + (CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END), \
         lease_until = $1 \
     WHERE webhook_id IN ( \
       SELECT webhook_id FROM ( \
         SELECT d.webhook_id FROM optout_relay_deliveries d \
         WHERE d.state = 'pending' AND d.lease_until IS NOT NULL AND d.lease_until <= $2 AND ",
    sql_health::first_of_profile!("rowid"),
    " ORDER BY d.lease_until LIMIT $3) \
       UNION ALL \
       SELECT webhook_id FROM ( \
         SELECT d.webhook_id FROM optout_relay_deliveries d \
         WHERE d.state = 'pending' AND d.lease_until IS NULL AND d.next_attempt_at <= $2 AND ",
    sql_health::first_of_profile!("rowid"),
    " ORDER BY d.next_attempt_at LIMIT $3) \
       LIMIT $3) \
     RETURNING webhook_id, claims, abandoned, data, rowid"
);

/// Claims up to `max` due deliveries, endpoint by endpoint (earliest due first), each endpoint
/// giving what its health and limits grant.
pub(super) async fn claim(
    conn: &mut SqliteConnection,
    max: usize,
    lease: Duration,
    now: Timestamp,
    policy: &EndpointPolicy,
    healths: &mut Healths,
) -> Result<Vec<Claim>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    healths.ensure(conn, policy, now).await?;
    let until = millis(lease_deadline(now, lease));
    let mut rows: Vec<sql::ClaimedRow> = Vec::new();
    let mut kept: Vec<(Endpoint, EndpointHealth, bool)> = Vec::new();
    if policy.limits == Limits::NONE && policy.overrides.is_empty() && healths.all_healthy() {
        rows = sqlx::query_as(CLAIM_ORDERED)
            .bind(until)
            .bind(millis(now))
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await
            .map_err(sql::error)?;
    } else {
        let endpoints: Vec<String> = sqlx::query_scalar(DUE_ENDPOINTS)
            .bind(millis(now))
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await
            .map_err(sql::error)?;
        for endpoint in endpoints {
            let remaining = max.saturating_sub(rows.len());
            if remaining == 0 {
                break;
            }
            let endpoint = Endpoint::from_stored(endpoint);
            let mut health = healths.get(&endpoint);
            let taken = take(conn, &endpoint, &mut health, remaining, lease, now, policy).await?;
            rows.extend(taken);
            let limits = policy.limits_of(&endpoint);
            let write = healths.must_write(&endpoint, &health, None, limits, now);
            if write {
                Healths::write(conn, &endpoint, &health, policy, now).await?;
            }
            kept.push((endpoint, health, write));
        }
    }
    let (claims, abandoned) = sql::sort_claims(rows, now)?;
    for delivery in abandoned {
        rewrite(conn, &delivery).await?;
    }
    for (endpoint, health, written) in kept {
        healths.keep(&endpoint, health, written, &[], now);
    }
    Ok(claims)
}

/// Takes up to `wanted` of one endpoint's claimable deliveries, as much as its health grants.
async fn take(
    conn: &mut SqliteConnection,
    endpoint: &Endpoint,
    health: &mut EndpointHealth,
    wanted: usize,
    lease: Duration,
    now: Timestamp,
    policy: &EndpointPolicy,
) -> Result<Vec<sql::ClaimedRow>, StoreError> {
    let until = millis(lease_deadline(now, lease));
    let wanted_sql = i64::try_from(wanted).unwrap_or(i64::MAX);
    let limits = policy.limits_of(endpoint);
    if health.state().is_healthy() && limits == Limits::NONE {
        // Nothing to count: everything due may start.
        return sqlx::query_as(TAKE_DUE)
            .bind(endpoint.as_str())
            .bind(millis(now))
            .bind(wanted_sql)
            .bind(until)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql::error);
    }
    let in_flight: i64 = sqlx::query_scalar(IN_FLIGHT)
        .bind(endpoint.as_str())
        .bind(millis(now))
        .fetch_one(&mut *conn)
        .await
        .map_err(sql::error)?;
    let ids: Vec<String> = sqlx::query_scalar(CANDIDATES)
        .bind(endpoint.as_str())
        .bind(millis(now))
        .bind(wanted_sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    let granted = health.grant(
        ids.len(),
        usize::try_from(in_flight).unwrap_or(0),
        limits,
        now,
        lease,
    );
    if granted == 0 {
        return Ok(Vec::new());
    }
    let ids = serde_json::to_string(&ids[..granted])
        .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
    sqlx::query_as(TAKE_IDS)
        .bind(until)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)
}

/// Records an attempt and settles it on its endpoint: the delivery may be held, the endpoint's
/// state may change, and a recovery releases the endpoint's pending deliveries. One statement
/// when only the delivery is written (a healthy endpoint's success kept in the writer's copy);
/// otherwise all of it in a savepoint of its own, so that a lost claim changes nothing.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    token: &ClaimToken,
    delivery: &Delivery,
    now: Timestamp,
    policy: &EndpointPolicy,
    healths: &mut Healths,
) -> Result<Recorded, StoreError> {
    healths.ensure(conn, policy, now).await?;
    let endpoint = delivery.endpoint();
    let mut health = healths.get(&endpoint);
    let class = health::classify(delivery);
    let mut settled = delivery.clone();
    let settlement = health::settle(&mut settled, &endpoint, &mut health, policy, now);
    let columns = Columns::of(&settled)?;
    let limits = policy.limits_of(&endpoint);
    let write = healths.must_write(&endpoint, &health, Some(class), limits, now);
    let alone = !write && !settlement.release;
    if !alone {
        execute(conn, "SAVEPOINT rec").await?;
    }
    let result = async {
        let done = sql::record_query!(columns, token)
            .execute(&mut *conn)
            .await
            .map_err(sql::error)?;
        fenced(done.rows_affected(), token)?;
        if write {
            Healths::write(conn, &endpoint, &health, policy, now).await?;
        }
        if settlement.release {
            release(conn, &endpoint, now, &[]).await?;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    if !alone {
        let end = if result.is_ok() {
            "RELEASE rec"
        } else {
            "ROLLBACK TO rec; RELEASE rec"
        };
        execute(conn, end).await?;
    }
    result?;
    let success = [now];
    let kept_only = if class == AttemptClass::Succeeded {
        &success[..]
    } else {
        &[]
    };
    healths.keep(&endpoint, health, write, kept_only, now);
    Ok(Recorded {
        held: settlement.held,
        change: settlement.change,
    })
}

/// Records a group commit's attempts (distinct webhook ids) and settles them on their endpoints
/// with a few statements in all: the attempts are applied to each endpoint's health in the
/// order they came (exactly as one by one), the deliveries written with one statement, each
/// endpoint's row at most once. Returns `None` when a claim was lost: the caller rolls back to
/// its savepoint and records one by one, so that the lost one fails alone and its attempt is
/// not counted.
pub(super) fn record_all<'a>(
    conn: &'a mut SqliteConnection,
    records: &'a [(&'a ClaimToken, &'a Delivery)],
    now: Timestamp,
    policy: &'a EndpointPolicy,
    healths: &'a mut Healths,
) -> Boxed<'a, Result<Option<Vec<Recorded>>, StoreError>> {
    Box::pin(async move {
        healths.ensure(conn, policy, now).await?;
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
        // Per endpoint: its health after the batch, whether to write it, whether it recovered,
        // and the records after its last recovery (those a release must leave alone: one by
        // one, they were still in flight).
        let mut settled_endpoints = Vec::with_capacity(endpoints.len());
        for (endpoint, places) in &endpoints {
            let mut health = healths.get(endpoint);
            let mut release_after: Option<usize> = None;
            let mut deferrable = true;
            let mut successes = Vec::new();
            for (n, &i) in places.iter().enumerate() {
                let class = health::classify(records[i].1);
                deferrable &= matches!(class, AttemptClass::Succeeded | AttemptClass::Neutral);
                if class == AttemptClass::Succeeded {
                    successes.push(now);
                }
                let mut settled = records[i].1.clone();
                let settlement = health::settle(&mut settled, endpoint, &mut health, policy, now);
                if settlement.release {
                    release_after = Some(n);
                }
                columns[i] = Some(Columns::of(&settled)?);
                recorded[i] = Recorded {
                    held: settlement.held,
                    change: settlement.change,
                };
            }
            let class = deferrable.then_some(AttemptClass::Succeeded);
            let limits = policy.limits_of(endpoint);
            let write = healths.must_write(endpoint, &health, class, limits, now);
            let later: Vec<&str> = release_after.map_or_else(Vec::new, |n| {
                places[n + 1..]
                    .iter()
                    .map(|&i| records[i].0.webhook_id.as_str())
                    .collect()
            });
            settled_endpoints.push((health, write, release_after.is_some(), later, successes));
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
        for ((endpoint, _), (health, write, recovered, later, _)) in
            endpoints.iter().zip(&settled_endpoints)
        {
            if *write {
                Healths::write(conn, endpoint, health, policy, now).await?;
            }
            if *recovered {
                release(conn, endpoint, now, later).await?;
            }
        }
        for ((endpoint, _), (health, write, _, _, successes)) in
            endpoints.iter().zip(settled_endpoints)
        {
            healths.keep(endpoint, health, write, &successes, now);
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
    healths: &mut Healths,
) -> Result<Option<EndpointChange>, StoreError> {
    healths.ensure(conn, policy, now).await?;
    let mut health = healths.get(endpoint);
    let change = if resume {
        health::resume(endpoint, &mut health, now)
    } else {
        health::pause(endpoint, &mut health, now)
    };
    let write = change.is_some() || !healths.has_row(endpoint.as_str());
    if write {
        Healths::write(conn, endpoint, &health, policy, now).await?;
    }
    if resume && change.is_some() {
        release(conn, endpoint, now, &[]).await?;
    }
    healths.keep(endpoint, health, write, &[], now);
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
