//! Endpoint health in the SQLite store: claims that take from each endpoint only what its
//! health and limits grant, records that settle the attempt on its endpoint, operators' pause
//! and resume, and the schema's second version. Everything here runs in the writer's
//! transaction, so one writer at a time decides (in this process and any other on the file).

use std::time::Duration;

use jiff::Timestamp;
use sqlx::sqlite::SqliteConnection;

use crate::delivery::Delivery;
use crate::health::{self, Endpoint, EndpointChange, EndpointHealth, EndpointPolicy};
use crate::store::sql::{self, Columns, millis};
use crate::store::sql_health::{
    self, ENDPOINT_HEALTH, ENSURE_ENDPOINT, IN_FLIGHT, PENDING_OF, SAVE_ENDPOINT, TAKE,
};
use crate::store::{Claim, ClaimToken, Recorded, StoreError, StoreErrorKind, lease_deadline};

use super::ops::{fenced, rewrite};

/// ($1 now, $2 how many) -> endpoint.
const DUE_ENDPOINTS: &str = sql_health::due_endpoints!("rowid");
/// ($1 endpoint, $2 now, $3 how many) -> webhook id.
const CANDIDATES: &str = sql_health::candidates!("rowid", "");
/// () -> (endpoint, due).
pub(super) const NEXT_DUE_BY_ENDPOINT: &str = sql_health::next_due_by_endpoint!("rowid");

/// Reads (creating it healthy if missing) an endpoint's health.
async fn load(
    conn: &mut SqliteConnection,
    endpoint: &Endpoint,
) -> Result<EndpointHealth, StoreError> {
    sqlx::query(ENSURE_ENDPOINT)
        .bind(endpoint.as_str())
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    let text: String = sqlx::query_scalar(ENDPOINT_HEALTH)
        .bind(endpoint.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(sql::error)?;
    sql_health::health_of(endpoint.as_str(), &text)
}

async fn save(
    conn: &mut SqliteConnection,
    endpoint: &Endpoint,
    health: &EndpointHealth,
    policy: &EndpointPolicy,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (state, text, blocked) = sql_health::endpoint_columns(health, endpoint, policy, now);
    sqlx::query(SAVE_ENDPOINT)
        .bind(state)
        .bind(text)
        .bind(blocked)
        .bind(endpoint.as_str())
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    Ok(())
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
        let endpoint = Endpoint::from_stored(endpoint);
        let mut health = load(conn, &endpoint).await?;
        let in_flight: i64 = sqlx::query_scalar(IN_FLIGHT)
            .bind(endpoint.as_str())
            .bind(millis(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(sql::error)?;
        let ids: Vec<String> = sqlx::query_scalar(CANDIDATES)
            .bind(endpoint.as_str())
            .bind(millis(now))
            .bind(i64::try_from(remaining).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await
            .map_err(sql::error)?;
        let granted = health.grant(
            ids.len(),
            usize::try_from(in_flight).unwrap_or(0),
            policy.limits_of(&endpoint),
            now,
            lease,
        );
        for id in ids.iter().take(granted) {
            let row: sql::ClaimedRow = sqlx::query_as(TAKE)
                .bind(until)
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .map_err(sql::error)?;
            rows.push(row);
        }
        save(conn, &endpoint, &health, policy, now).await?;
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
    let mut health = load(conn, &endpoint).await?;
    let mut settled = delivery.clone();
    let settlement = health::settle(&mut settled, &endpoint, &mut health, policy, now);
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
    save(conn, &endpoint, &health, policy, now).await?;
    if settlement.release {
        release(conn, &endpoint, now).await?;
    }
    Ok(Recorded {
        held: settlement.held,
        change: settlement.change,
    })
}

/// Makes every pending delivery of `endpoint` not in flight due at `now`, with a fresh
/// allowance.
async fn release(
    conn: &mut SqliteConnection,
    endpoint: &Endpoint,
    now: Timestamp,
) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(PENDING_OF)
        .bind(endpoint.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    for (id, data) in rows {
        let mut delivery = sql::decode(&id, &data)?;
        delivery.hold(now);
        rewrite(conn, &delivery).await?;
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
    let mut health = load(conn, endpoint).await?;
    let change = if resume {
        health::resume(endpoint, &mut health, now)
    } else {
        health::pause(endpoint, &mut health, now)
    };
    save(conn, endpoint, &health, policy, now).await?;
    if resume && change.is_some() {
        release(conn, endpoint, now).await?;
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
    Ok(())
}
