//! Endpoint health on PostgreSQL: claims that take from each endpoint only what its health and
//! limits grant, records that settle each attempt with the endpoint's row locked, and the
//! operators' view, pause and resume.
//!
//! Each endpoint's row in `optout_relay_endpoints` is the lock that serializes every decision on
//! that endpoint across processes: a claimer, a record, a pause or a resume takes it with
//! `FOR UPDATE`, each holding it for one short transaction. (A claimer that skipped a locked
//! endpoint instead found one busy endpoint locked by records most of the time and delivered
//! five times slower with four processes.) No cycle: a claim locks only due rows after the
//! endpoint's, without waiting (`SKIP LOCKED`), and a record locks its endpoint before its row.
//! Under READ COMMITTED each statement after the lock sees what the previous holder committed,
//! so the in-flight count a claim grants against is exact.
//!
//! Two things need no decision, and so no lock: when no endpoint has limits, the due work of a
//! healthy endpoint is claimed as without endpoint health ([`CLAIM_HEALTHY`]: rows locked,
//! skipped when locked); and a success to an endpoint this process last saw healthy is written
//! alone while the endpoint's row still says healthy, counted in its breaker later
//! ([`Deferred`]). A degraded or paused
//! endpoint's work (a probe at a time), every failure, hold and release, and everything under
//! limits still go under the lock. One busy endpoint shared by 4 processes: 5,000 deliveries in
//! 4.4 to 5.1 s with health on, against 3.6 to 3.9 s with it off (17.7 s before these two).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, PgPool};

use crate::delivery::Delivery;
use crate::health::{
    self, AttemptClass, Endpoint, EndpointChange, EndpointHealth, EndpointPolicy, EndpointStatus,
    Limits, MAX_WINDOW_ATTEMPTS,
};
use crate::store::sql::{self, ClaimedRow, Columns, from_millis, millis};
use crate::store::sql_health::{
    self, ALL_HEALTH, ENDPOINT_COUNTS, ENSURE_ENDPOINT, IN_FLIGHT, IN_FLIGHT_BY_ENDPOINT,
    NEXT_LEASE_END, PENDING_OF, candidates, first_of_profile,
};
use crate::store::{Claim, ClaimToken, Recorded, StoreError, StoreErrorKind, lease_deadline};

/// The channel the store's `NOTIFY` wakes workers on.
pub const NOTIFY_CHANNEL: &str = "optout_relay";

/// The database's clock, in milliseconds since the Unix epoch.
pub(super) const DB_NOW: &str = "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Endpoints with claimable work, earliest due first, leaving out those whose health blocks them
/// until later, on the database's clock. ($1 how many, $2 how many to skip) -> endpoint.
const DUE_ENDPOINTS: &str = concat!(
    "WITH clock AS (SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now) \
     SELECT d.endpoint FROM optout_relay_deliveries d, clock \
     WHERE d.state = 'pending' \
       AND ((d.lease_until IS NULL AND d.next_attempt_at <= clock.now) \
            OR d.lease_until <= clock.now) \
       AND NOT EXISTS (SELECT 1 FROM optout_relay_endpoints e \
         WHERE e.endpoint = d.endpoint AND e.blocked_until > clock.now) \
       AND ",
    first_of_profile!("seq"),
    " GROUP BY d.endpoint \
     ORDER BY min(CASE WHEN d.lease_until IS NULL THEN d.next_attempt_at \
                  ELSE d.lease_until END) \
     LIMIT $1 OFFSET $2"
);

/// Claims the due work of healthy endpoints (those with no row too) when no endpoint has limits,
/// as [`super::CLAIM`] does, in per-Profile order. ($1 lease in milliseconds, $2 how many) ->
/// (webhook id, claim, abandoned, data, now).
const CLAIM_HEALTHY: &str = concat!(
    "WITH clock AS ( \
       SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now), \
     due AS ( \
       SELECT d.webhook_id FROM optout_relay_deliveries d, clock \
       WHERE d.state = 'pending' \
         AND ((d.lease_until IS NULL AND d.next_attempt_at <= clock.now) \
              OR d.lease_until <= clock.now) \
         AND d.endpoint NOT IN (SELECT e.endpoint FROM optout_relay_endpoints e \
           WHERE e.state <> 'healthy') \
         AND ",
    first_of_profile!("seq"),
    " ORDER BY d.next_attempt_at \
       LIMIT $2 \
       FOR UPDATE OF d SKIP LOCKED) \
     UPDATE optout_relay_deliveries AS u \
     SET claims = u.claims + 1, \
         abandoned = u.abandoned + (CASE WHEN u.lease_until IS NULL THEN 0 ELSE 1 END), \
         lease_until = clock.now + $1 \
     FROM due, clock WHERE u.webhook_id = due.webhook_id \
     RETURNING u.webhook_id, u.claims, u.abandoned, u.data, u.seq, clock.now"
);

/// Endpoints not healthy whose state lets work start, with claimable work, on the database's
/// clock. ($1 how many, $2 how many to skip) -> endpoint.
const UNHEALTHY_DUE: &str = concat!(
    "WITH clock AS (SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now) \
     SELECT e.endpoint FROM optout_relay_endpoints e, clock \
     WHERE e.state <> 'healthy' AND e.blocked_until <= clock.now \
       AND EXISTS (SELECT 1 FROM optout_relay_deliveries d \
         WHERE d.endpoint = e.endpoint AND d.state = 'pending' \
           AND d.next_attempt_at <= clock.now \
           AND (d.lease_until IS NULL OR d.lease_until <= clock.now) AND ",
    first_of_profile!("seq"),
    ") ORDER BY e.endpoint LIMIT $1 OFFSET $2"
);

/// For each endpoint, its earliest due delivery not under lease that per-Profile order lets go.
/// () -> (endpoint, due).
const NEXT_DUE_BY_ENDPOINT: &str = concat!(
    "SELECT d.endpoint, min(d.next_attempt_at) FROM optout_relay_deliveries d \
     WHERE d.state = 'pending' AND d.lease_until IS NULL AND ",
    first_of_profile!("seq"),
    " GROUP BY d.endpoint"
);

/// ($1 lease deadline, $2 webhook ids) -> (webhook id, claim, abandoned, data).
const TAKE: &str = "UPDATE optout_relay_deliveries \
     SET claims = claims + 1, \
         abandoned = abandoned + (CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END), \
         lease_until = $1 \
     WHERE webhook_id = ANY($2) RETURNING webhook_id, claims, abandoned, data, seq";

/// ($1 state, $2 health, $3 blocked until, $4 endpoint).
const SAVE_ENDPOINT: &str = "UPDATE optout_relay_endpoints \
     SET state = $1, health = $2, blocked_until = $3 WHERE endpoint = $4";

/// One endpoint's claimable deliveries, locked. ($1 endpoint, $2 now, $3 how many) -> webhook id.
const CANDIDATES: &str = candidates!("seq", " FOR UPDATE OF d SKIP LOCKED");

/// ($1 endpoint) -> (health, now): the endpoint's row, locked (waiting for the transaction that
/// holds it), with the database's time once it is held.
const LOCK_HEALTH: &str = "SELECT health, \
     (extract(epoch from clock_timestamp()) * 1000)::bigint \
     FROM optout_relay_endpoints WHERE endpoint = $1 FOR UPDATE";

/// Rows written by schema version 1, without their endpoint. ($1 after this webhook id, $2 how
/// many) -> (webhook id, data).
const WITHOUT_ENDPOINT: &str = "SELECT webhook_id, data FROM optout_relay_deliveries \
     WHERE endpoint = '' AND webhook_id > $1 ORDER BY webhook_id LIMIT $2";

/// ($1 webhook ids, $2 their endpoints).
const FILL_ENDPOINTS: &str = "UPDATE optout_relay_deliveries d SET endpoint = v.endpoint \
     FROM unnest($1::text[], $2::text[]) AS v(webhook_id, endpoint) \
     WHERE d.webhook_id = v.webhook_id";

/// [`sql::RECORD`], only while the endpoint ($8) is healthy (or has no row), returning the
/// database's time. (Its binds, $8 endpoint) -> now; no row when the claim was lost or the
/// endpoint is not healthy.
const RECORD_AT: &str = concat!(
    sql::record_sql!(),
    " AND NOT EXISTS (SELECT 1 FROM optout_relay_endpoints e \
       WHERE e.endpoint = $8 AND e.state <> 'healthy') \
     RETURNING (extract(epoch from clock_timestamp()) * 1000)::bigint"
);

/// The successes this process recorded for endpoints it last saw healthy, without taking their
/// lock: a healthy endpoint's success changes nothing but its breaker's window, so it waits
/// here (up to [`MAX_WINDOW_ATTEMPTS`] per endpoint) and is counted the next time this process
/// holds the endpoint's lock: a failure (counted after them, so the breaker's ratio sees them),
/// a pause, a claim under the lock, or the first success after the oldest has waited [`WAIT`].
/// One busy endpoint's successes then do not queue on its lock across processes. A success
/// counted late never changes the state ([`EndpointHealth::absorb_success`]); one that waits
/// while another process finds the endpoint down is dropped, and a probe decides the recovery.
#[derive(Debug, Default)]
pub(super) struct Deferred(Mutex<HashMap<String, Waiting>>);

#[derive(Debug, Default)]
struct Waiting {
    /// Whether the endpoint was healthy when this process last held its lock.
    healthy: bool,
    successes: Vec<Timestamp>,
    /// When the oldest success began to wait.
    since: Option<std::time::Instant>,
}

/// Successes taken out of [`Deferred`] and counted in a transaction: put back when dropped
/// unless [`Absorbed::committed`] (a rollback must not lose them).
pub(super) struct Absorbed<'a> {
    deferred: &'a Deferred,
    endpoint: String,
    successes: Vec<Timestamp>,
}

impl Absorbed<'_> {
    /// The transaction that counted them committed.
    fn committed(mut self) {
        self.successes.clear();
    }

    fn any(&self) -> bool {
        !self.successes.is_empty()
    }
}

impl Drop for Absorbed<'_> {
    fn drop(&mut self) {
        if self.successes.is_empty() {
            return;
        }
        let mut map = self.deferred.map();
        let waiting = map.entry(std::mem::take(&mut self.endpoint)).or_default();
        let mut back = std::mem::take(&mut self.successes);
        back.append(&mut waiting.successes);
        let extra = back.len().saturating_sub(MAX_WINDOW_ATTEMPTS);
        back.drain(..extra);
        waiting.successes = back;
        waiting.since.get_or_insert_with(std::time::Instant::now);
    }
}

/// How long a success may wait: the next success after that takes the lock and counts them all.
const WAIT: Duration = Duration::from_secs(1);

impl Deferred {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a success to `endpoint` may wait: it was healthy when this process last held its
    /// lock, and its oldest waiting success has not waited [`WAIT`].
    fn may_wait(&self, endpoint: &str) -> bool {
        self.map().get(endpoint).is_some_and(|waiting| {
            waiting.healthy && waiting.since.is_none_or(|since| since.elapsed() < WAIT)
        })
    }

    fn push(&self, endpoint: &str, at: Timestamp) {
        let mut map = self.map();
        let waiting = map.entry(endpoint.to_owned()).or_default();
        if waiting.successes.len() >= MAX_WINDOW_ATTEMPTS {
            waiting.successes.remove(0);
        }
        waiting.successes.push(at);
        waiting.since.get_or_insert_with(std::time::Instant::now);
    }

    /// Counts the endpoint's waiting successes in `health`, read under its lock at `now`, and
    /// takes them out; they come back (for the next transaction) unless the returned
    /// [`Absorbed`] is marked committed.
    fn absorb(
        &self,
        endpoint: &str,
        health: &mut EndpointHealth,
        policy: &EndpointPolicy,
        now: Timestamp,
    ) -> Absorbed<'_> {
        let successes = self
            .map()
            .get_mut(endpoint)
            .map(|waiting| {
                waiting.since = None;
                std::mem::take(&mut waiting.successes)
            })
            .unwrap_or_default();
        for at in &successes {
            health.absorb_success(*at, now, policy);
        }
        Absorbed {
            deferred: self,
            endpoint: endpoint.to_owned(),
            successes,
        }
    }

    /// Notes the endpoint's state as this process leaves its lock.
    fn note(&self, endpoint: &str, health: &EndpointHealth) {
        self.map().entry(endpoint.to_owned()).or_default().healthy = health.state().is_healthy();
    }
}

/// The database's time.
pub(super) async fn db_now(conn: &mut PgConnection) -> Result<Timestamp, StoreError> {
    let now: i64 = sqlx::query_scalar(DB_NOW)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql::error)?;
    Ok(from_millis(now))
}

/// Wakes the workers of every process when the transaction commits.
pub(super) async fn notify(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    Ok(())
}

/// Writes a store's own change to a delivery (replay, abandoned, hold, release).
pub(super) async fn rewrite<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    delivery: &Delivery,
) -> Result<(), StoreError> {
    let columns = Columns::of(delivery)?;
    sql::rewrite_query!(columns, delivery.webhook_id().as_str())
        .execute(conn)
        .await
        .map_err(sql::error)?;
    Ok(())
}

/// Fills in the endpoint of the rows schema version 1 wrote, a page at a time. A row whose data
/// cannot be read keeps `''` (a claim reports it as corrupt).
pub(super) async fn fill_endpoints(conn: &mut PgConnection) -> Result<(), StoreError> {
    const PAGE: i64 = 1_000;
    let mut after = String::new();
    loop {
        let rows: Vec<(String, String)> = sqlx::query_as(WITHOUT_ENDPOINT)
            .bind(&after)
            .bind(PAGE)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql::error)?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        after.clone_from(last);
        let (ids, endpoints): (Vec<&str>, Vec<String>) = rows
            .iter()
            .filter_map(|(id, data)| {
                let delivery = sql::decode(id, data).ok()?;
                Some((id.as_str(), delivery.endpoint().as_str().to_owned()))
            })
            .unzip();
        sqlx::query(FILL_ENDPOINTS)
            .bind(&ids)
            .bind(&endpoints)
            .execute(&mut *conn)
            .await
            .map_err(sql::error)?;
        if rows.len() < PAGE as usize {
            return Ok(());
        }
    }
}

/// Creates the endpoint's row, healthy, if it has none.
async fn ensure(conn: &mut PgConnection, endpoint: &str) -> Result<(), StoreError> {
    sqlx::query(ENSURE_ENDPOINT)
        .bind(endpoint)
        .bind(sql_health::NEW_HEALTH)
        .execute(&mut *conn)
        .await
        .map_err(sql::error)?;
    Ok(())
}

/// Saves an endpoint's health (its row is locked).
async fn save(
    conn: &mut PgConnection,
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

/// Locks the endpoint's row (waiting for another holder; creating it first if it is missing)
/// and reads its health and the database's time once it is held, in one round trip when the row
/// exists.
async fn lock(
    conn: &mut PgConnection,
    endpoint: &Endpoint,
) -> Result<(EndpointHealth, Timestamp), StoreError> {
    for _ in 0..2 {
        let locked: Option<(String, i64)> = sqlx::query_as(LOCK_HEALTH)
            .bind(endpoint.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql::error)?;
        if let Some((text, now)) = locked {
            let health = sql_health::health_of(endpoint.as_str(), &text)?;
            return Ok((health, from_millis(now)));
        }
        ensure(conn, endpoint.as_str()).await?;
    }
    Err(StoreError::new(
        StoreErrorKind::Other,
        format!("the row of endpoint {endpoint} cannot be created"),
    ))
}

/// Makes every pending delivery of `endpoint` that is not in flight due at `now` with a fresh
/// allowance (the endpoint recovered), and wakes the workers at commit.
async fn release(
    conn: &mut PgConnection,
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
        if delivery.hold(now) {
            rewrite(&mut *conn, &delivery).await?;
        }
    }
    notify(conn).await
}

/// Claims up to `max` due deliveries, endpoint by endpoint (earliest due first), each in its own
/// transaction under the endpoint's lock, as much as each endpoint's health grants.
pub(super) async fn claim(
    pool: &PgPool,
    policy: &EndpointPolicy,
    deferred: &Deferred,
    max: usize,
    lease: Duration,
) -> Result<Vec<Claim>, StoreError> {
    // Without limits, a healthy endpoint has nothing to count: its due work is claimed as
    // without endpoint health, rows locked and skipped when locked, no endpoint's lock taken.
    // The others (degraded, paused: a probe at a time) go one by one under their lock.
    let unlimited = policy.limits == Limits::NONE && policy.overrides.is_empty();
    let mut claims = if unlimited {
        super::claim_due(pool, CLAIM_HEALTHY, max, lease).await?
    } else {
        Vec::new()
    };
    if claims.len() >= max {
        return Ok(claims);
    }
    let due_endpoints = if unlimited {
        UNHEALTHY_DUE
    } else {
        DUE_ENDPOINTS
    };
    let mut conn = pool.acquire().await.map_err(sql::error)?;
    let page = i64::try_from(max.max(8)).unwrap_or(i64::MAX);
    let mut skip = 0i64;
    // An endpoint that grants nothing (at its limit, locked by another claimer) leaves its place
    // to the next: the endpoints are read a page at a time until `max` are claimed.
    loop {
        let endpoints: Vec<String> = sqlx::query_scalar(due_endpoints)
            .bind(page)
            .bind(skip)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql::error)?;
        for endpoint in &endpoints {
            let wanted = max - claims.len();
            if wanted == 0 {
                claims.sort_by_key(|claim| claim.delivery.next_attempt_at());
                return Ok(claims);
            }
            let mut tx = conn.begin().await.map_err(sql::error)?;
            let (taken, absorbed) =
                claim_endpoint(&mut tx, endpoint, policy, deferred, wanted, lease).await?;
            tx.commit().await.map_err(sql::error)?;
            absorbed.committed();
            claims.extend(taken);
        }
        if claims.len() >= max || endpoints.len() < usize::try_from(page).unwrap_or(usize::MAX) {
            // Earliest due first across the endpoints (each one's already in admission order).
            claims.sort_by_key(|claim| claim.delivery.next_attempt_at());
            return Ok(claims);
        }
        skip = skip.saturating_add(page);
    }
}

/// Claims up to `wanted` of one endpoint's due deliveries, as its health grants, inside the
/// caller's transaction; with how many waiting successes it counted.
async fn claim_endpoint<'d>(
    conn: &mut PgConnection,
    endpoint: &str,
    policy: &EndpointPolicy,
    deferred: &'d Deferred,
    wanted: usize,
    lease: Duration,
) -> Result<(Vec<Claim>, Absorbed<'d>), StoreError> {
    let key = Endpoint::from_stored(endpoint.to_owned());
    let (mut health, now) = lock(conn, &key).await?;
    let before = health.clone();
    let absorbed = deferred.absorb(endpoint, &mut health, policy, now);
    let taken = take(conn, &key, &mut health, policy, wanted, lease, now).await?;
    if health != before {
        save(conn, &key, &health, policy, now).await?;
    }
    deferred.note(endpoint, &health);
    Ok((taken, absorbed))
}

/// Takes up to `wanted` of the endpoint's due deliveries (its row locked), as much as its
/// health grants.
async fn take(
    conn: &mut PgConnection,
    key: &Endpoint,
    health: &mut EndpointHealth,
    policy: &EndpointPolicy,
    wanted: usize,
    lease: Duration,
    now: Timestamp,
) -> Result<Vec<Claim>, StoreError> {
    let endpoint = key.as_str();
    let in_flight: i64 = sqlx::query_scalar(IN_FLIGHT)
        .bind(endpoint)
        .bind(millis(now))
        .fetch_one(&mut *conn)
        .await
        .map_err(sql::error)?;
    let ids: Vec<String> = sqlx::query_scalar(CANDIDATES)
        .bind(endpoint)
        .bind(millis(now))
        .bind(i64::try_from(wanted).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let in_flight = usize::try_from(in_flight).unwrap_or(0);
    let granted = health.grant(ids.len(), in_flight, policy.limits_of(key), now, lease);
    if granted == 0 {
        // Nothing counted: the health is as it was (a refill is a function of the time).
        return Ok(Vec::new());
    }
    let ids = &ids[..granted];
    let until = millis(lease_deadline(now, lease));
    let rows: Vec<ClaimedRow> = sqlx::query_as(TAKE)
        .bind(until)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    let (mut claims, abandoned) = sql::sort_claims(rows, now)?;
    // Abandoned too often: dead-lettered while still locked by this claim.
    for delivery in abandoned {
        rewrite(&mut *conn, &delivery).await?;
    }
    // In the order the candidates came: earliest due, then admission order.
    claims.sort_by_key(|c| ids.iter().position(|id| *id == c.token.webhook_id));
    Ok(claims)
}

/// Records an attempt and settles it with its endpoint, in one transaction: the endpoint's row
/// is locked first, the delivery (held, if its endpoint is down) is written fenced by the
/// claim, the health saved, and a recovery releases the endpoint's pending deliveries.
pub(super) async fn record(
    pool: &PgPool,
    policy: &EndpointPolicy,
    deferred: &Deferred,
    token: &ClaimToken,
    delivery: &Delivery,
) -> Result<Recorded, StoreError> {
    let endpoint = delivery.endpoint();
    if policy.is_enabled()
        && health::classify(delivery) == AttemptClass::Succeeded
        && deferred.may_wait(endpoint.as_str())
    {
        // A success to an endpoint last seen healthy: the delivery alone, without the lock, if
        // it is still healthy. Otherwise (or if the claim was lost) as below, under the lock: a
        // success there may close the circuit another process opened.
        let columns = Columns::of(delivery)?;
        let at: Option<i64> = sql::record_query!(sqlx::query_scalar(RECORD_AT); columns, token)
            .bind(endpoint.as_str())
            .fetch_optional(pool)
            .await
            .map_err(sql::error)?;
        if let Some(at) = at {
            deferred.push(endpoint.as_str(), from_millis(at));
            return Ok(Recorded::default());
        }
    }
    let mut tx = pool.begin().await.map_err(sql::error)?;
    let (mut health, now) = lock(&mut tx, &endpoint).await?;
    let absorbed = deferred.absorb(endpoint.as_str(), &mut health, policy, now);
    let mut settled = delivery.clone();
    let settlement = health::settle(&mut settled, &endpoint, &mut health, policy, now);
    let columns = Columns::of(&settled)?;
    let done = sql::record_query!(columns, token)
        .execute(&mut *tx)
        .await
        .map_err(sql::error)?;
    if done.rows_affected() != 1 {
        tx.rollback().await.map_err(sql::error)?;
        return Err(StoreError::lease_lost(&token.webhook_id));
    }
    save(&mut tx, &endpoint, &health, policy, now).await?;
    if settlement.release {
        release(&mut tx, &endpoint, now).await?;
    }
    tx.commit().await.map_err(sql::error)?;
    absorbed.committed();
    deferred.note(endpoint.as_str(), &health);
    Ok(Recorded {
        held: settlement.held,
        change: settlement.change,
    })
}

/// When the earliest claimable work is due, on the database's clock: each endpoint's earliest
/// delivery as its health and limits let it go, and the earliest lease end.
pub(super) async fn next_due(
    pool: &PgPool,
    policy: &EndpointPolicy,
) -> Result<(Option<Timestamp>, Timestamp), StoreError> {
    let mut conn = pool.acquire().await.map_err(sql::error)?;
    let now = db_now(&mut conn).await?;
    let due: Vec<(String, Option<i64>)> = sqlx::query_as(NEXT_DUE_BY_ENDPOINT)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    let in_flight: Vec<(String, i64)> = sqlx::query_as(IN_FLIGHT_BY_ENDPOINT)
        .bind(millis(now))
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    let healths: Vec<(String, String)> = sqlx::query_as(ALL_HEALTH)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    let lease_end: Option<i64> = sqlx::query_scalar(NEXT_LEASE_END)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql::error)?;
    let earliest = sql_health::next_due(due, in_flight, healths, lease_end, policy, now)?;
    Ok((earliest, now))
}

/// Every endpoint with its state and pending deliveries.
pub(super) async fn endpoints(pool: &PgPool) -> Result<Vec<EndpointStatus>, StoreError> {
    let mut conn = pool.acquire().await.map_err(sql::error)?;
    let now = db_now(&mut conn).await?;
    let counts: Vec<(String, i64, i64)> = sqlx::query_as(ENDPOINT_COUNTS)
        .bind(millis(now))
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    let healths: Vec<(String, String)> = sqlx::query_as(ALL_HEALTH)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql::error)?;
    sql_health::statuses(counts, healths)
}

/// An operator's pause (`resume` false) or resume of `endpoint`, in one transaction under its
/// lock; a resume that changes the state releases the endpoint's held deliveries.
pub(super) async fn pause_or_resume(
    pool: &PgPool,
    policy: &EndpointPolicy,
    deferred: &Deferred,
    endpoint: &Endpoint,
    resume: bool,
) -> Result<Option<EndpointChange>, StoreError> {
    let mut tx = pool.begin().await.map_err(sql::error)?;
    let (mut health, now) = lock(&mut tx, endpoint).await?;
    let absorbed = deferred.absorb(endpoint.as_str(), &mut health, policy, now);
    let change = if resume {
        health::resume(endpoint, &mut health, now)
    } else {
        health::pause(endpoint, &mut health, now)
    };
    if change.is_some() || absorbed.any() {
        save(&mut tx, endpoint, &health, policy, now).await?;
    }
    if resume && change.is_some() {
        release(&mut tx, endpoint, now).await?;
    }
    tx.commit().await.map_err(sql::error)?;
    absorbed.committed();
    deferred.note(endpoint.as_str(), &health);
    Ok(change)
}
