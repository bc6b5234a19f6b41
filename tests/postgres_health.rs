//! Endpoint health on the PostgreSQL store against a real server (a private one started by
//! `support/pg.rs`, or `OPTOUT_RELAY_TEST_PG_URL`): a 410 pauses its endpoint and holds the
//! delivery, resume releases it in admission order, per-Profile order, the policy off, the
//! schema's move from version 1 to 2, and the per-endpoint limits (in flight, per second) held
//! across four worker processes sharing one database.
//!
//! The multi-process test re-executes this test binary: `child_limited_worker` is `#[ignore]`d
//! and does its part only when the parent has set `OPTOUT_RELAY_PG_CHILD_ROLE`.
#![cfg(all(feature = "postgres", feature = "reqwest"))]

#[path = "support/child.rs"]
mod child;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/pg.rs"]
mod pg;
mod support;

use child::{CHILD_INDEX_ENV, CHILD_URL_ENV, ChildProcess, ROLE_ENV, child_env, spawn_child};
use fixtures::{counts, plan, response};

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use optout_relay::DeliveryStore;
use optout_relay::PostgresStore;
use optout_relay::ReqwestClient;
use optout_relay::delivery::{DeadLetterReason, DeliveryState};
use optout_relay::health::{
    Endpoint, EndpointChange, EndpointPolicy, EndpointState, Limits, PauseReason,
};
use optout_relay::listen::{DeliveryOrder, FlowSettings};
use optout_relay::relay::{FlowResult, Submitted};
use optout_relay::store::{Claim, Recorded, StoreErrorKind};
use optout_relay::webhook::{ParamSource, WebhookId};
use optout_relay::*;
use sqlx::Connection as _;

/// Stored deliveries of the store-only tests point here; nothing is ever sent to them.
const GONE: &str = "http://127.0.0.1:9/gone";
const OTHER: &str = "http://127.0.0.1:9/other";

// The environment a parent hands its child processes.
const CHILD_RECEIVER_ENV: &str = "OPTOUT_RELAY_PG_CHILD_RECEIVER";

// ---------------------------------------------------------------------------------------------
// Building blocks

fn node(url: &str) -> WebhookNode {
    WebhookNode::builder(url)
        .param("email", ParamSource::Email)
        .build()
        .unwrap()
}

fn flow(id: &str, url: &str, settings: FlowSettings) -> Flow {
    Flow::new(
        FlowId::new(id).unwrap(),
        SectionId::new("sec-1").unwrap(),
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        node(url),
    )
    .with_settings(settings)
}

/// One flow `crm` to `url`, in `order`.
fn router(url: &str, order: DeliveryOrder) -> Arc<Router> {
    let settings = FlowSettings::default().with_order(order);
    Arc::new(Router::new([flow("crm", url, settings)], &Catalog::default()).unwrap())
}

fn entered_id(submitted: &Submitted) -> WebhookId {
    assert_eq!(submitted.flows.len(), 1, "{submitted:?}");
    match &submitted.flows[0].result {
        FlowResult::Entered { webhook_id } => webhook_id.clone(),
        other => panic!("expected an entry, got {other:?}"),
    }
}

async fn admit(
    store: &PostgresStore,
    router: &Router,
    event_id: &str,
    profile_id: &str,
) -> WebhookId {
    entered_id(
        &store
            .admit(plan(router, event_id, profile_id))
            .await
            .unwrap(),
    )
}

async fn open(url: &str, policy: EndpointPolicy) -> PostgresStore {
    PostgresStore::builder(url)
        .max_connections(4)
        .listen(false)
        .endpoint_policy(policy)
        .open()
        .await
        .unwrap()
}

/// Records `status` as the attempt of a claimed delivery, ended now.
async fn record(store: &PostgresStore, claim: &Claim, status: u16) -> Recorded {
    let mut delivery = claim.delivery.clone();
    let now = Timestamp::now();
    let _ = delivery.record(Ok(&response(status)), now, now, &RetryPolicy::default(), 0);
    store.record(&claim.token, &delivery).await.unwrap()
}

fn ids(claims: &[Claim]) -> Vec<&str> {
    claims.iter().map(|c| c.token.webhook_id.as_str()).collect()
}

const LEASE: Duration = Duration::from_secs(60);

/// A change of `endpoint` from `from` to `to`, made between `before` and `after`; returns when.
fn assert_change(
    change: &EndpointChange,
    endpoint: &str,
    from: EndpointState,
    to: impl Fn(Timestamp) -> EndpointState,
    (before, after): (Timestamp, Timestamp),
) -> Timestamp {
    assert_eq!(change.endpoint.as_str(), endpoint, "{change:?}");
    assert_eq!(change.from, from, "{change:?}");
    assert_eq!(change.to, to(change.at), "{change:?}");
    // The database's clock counts whole milliseconds.
    let before = Timestamp::from_millisecond(before.as_millisecond()).unwrap();
    assert!(
        before <= change.at && change.at <= after,
        "{change:?} not within {before}..{after}"
    );
    change.at
}

// ---------------------------------------------------------------------------------------------
// a. 410 Gone pauses the endpoint and holds the delivery; resume releases it, in order.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_pauses_its_endpoint_and_holds_its_deliveries_until_resume() {
    let db = pg::database().await;
    let store = open(&db.url, EndpointPolicy::default()).await;
    let gone = router(GONE, DeliveryOrder::Any);
    let other = router(OTHER, DeliveryOrder::Any);
    let mut held = Vec::new();
    for i in 1..=3 {
        held.push(admit(&store, &gone, &format!("evt-{i}"), &format!("p-{i}")).await);
    }
    let held: Vec<&str> = held.iter().map(WebhookId::as_str).collect();

    let first = store.claim(1, LEASE).await.unwrap();
    assert_eq!(ids(&first), [held[0]]);
    let before = Timestamp::now();
    let recorded = record(&store, &first[0], 410).await;
    let after = Timestamp::now();
    assert!(recorded.held, "{recorded:?}");
    let change = recorded.change.as_ref().expect("a change");
    let paused_at = assert_change(
        change,
        GONE,
        EndpointState::Healthy,
        |at| EndpointState::Paused {
            reason: PauseReason::Gone,
            since: at,
        },
        (before, after),
    );
    // Held, not dead-lettered: pending again, due at the pause, its attempt kept.
    let stored = store
        .get(&first[0].delivery.webhook_id().clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.state(),
        &DeliveryState::Pending {
            next_attempt_at: paused_at
        }
    );
    assert_eq!(stored.attempts().len(), 1);
    assert_eq!(store.counts().await.unwrap(), counts(3, 0, 0, 0, 3));

    // Nothing of the paused endpoint is claimed; another endpoint's delivery is.
    let evt4 = admit(&store, &other, "evt-4", "p-4").await;
    let claims = store.claim(10, LEASE).await.unwrap();
    assert_eq!(ids(&claims), [evt4.as_str()]);
    assert!(store.claim(10, LEASE).await.unwrap().is_empty());
    assert_eq!(store.counts().await.unwrap(), counts(4, 1, 0, 0, 4));
    let statuses = store.endpoints().await.unwrap();
    let seen: Vec<(&str, EndpointState, u64, u64)> = statuses
        .iter()
        .map(|s| (s.endpoint.as_str(), s.state, s.pending, s.in_flight))
        .collect();
    assert_eq!(
        seen,
        [
            (
                GONE,
                EndpointState::Paused {
                    reason: PauseReason::Gone,
                    since: paused_at
                },
                3,
                0
            ),
            (OTHER, EndpointState::Healthy, 1, 1),
        ]
    );

    // An operator's pause and resume of the other endpoint.
    let other_key: Endpoint = OTHER.parse().unwrap();
    let before = Timestamp::now();
    let paused = store.pause(&other_key).await.unwrap().expect("paused");
    let after = Timestamp::now();
    let operator_at = assert_change(
        &paused,
        OTHER,
        EndpointState::Healthy,
        |at| EndpointState::Paused {
            reason: PauseReason::Operator,
            since: at,
        },
        (before, after),
    );
    assert_eq!(store.pause(&other_key).await.unwrap(), None);
    let resumed = store.resume(&other_key).await.unwrap().expect("resumed");
    assert_eq!(
        resumed.from,
        EndpointState::Paused {
            reason: PauseReason::Operator,
            since: operator_at
        }
    );
    assert_eq!(resumed.to, EndpointState::Healthy);

    // Resume: healthy again, and the held deliveries are due at once, in admission order.
    let gone_key: Endpoint = GONE.parse().unwrap();
    let before = Timestamp::now();
    let resumed = store.resume(&gone_key).await.unwrap().expect("resumed");
    let after = Timestamp::now();
    let resumed_at = assert_change(
        &resumed,
        GONE,
        EndpointState::Paused {
            reason: PauseReason::Gone,
            since: paused_at,
        },
        |_| EndpointState::Healthy,
        (before, after),
    );
    assert_eq!(store.resume(&gone_key).await.unwrap(), None);
    let released = store.claim(10, LEASE).await.unwrap();
    assert_eq!(ids(&released), held);
    for claim in &released {
        assert_eq!(
            claim.delivery.state(),
            &DeliveryState::Pending {
                next_attempt_at: resumed_at
            }
        );
    }
    assert_eq!(released[0].delivery.attempts().len(), 1);
    assert_eq!(released[0].token.claim, 2);
    for claim in &released {
        assert_eq!(record(&store, claim, 204).await, Recorded::default());
    }
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 3, 0, 4));
}

/// A healthy endpoint's successes are recorded without its lock and counted later, by the next
/// record that takes the lock: a failure counts them first, so the breaker sees every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successes_recorded_without_the_endpoints_lock_still_count_in_its_breaker() {
    let db = pg::database().await;
    let store = open(&db.url, EndpointPolicy::default()).await;
    for (url, successes, opens_at) in [(OTHER, 20, None), (GONE, 5, Some(4))] {
        let router = router(url, DeliveryOrder::Any);
        for i in 0..successes + 10 {
            admit(
                &store,
                &router,
                &format!("{url}-evt-{i}"),
                &format!("p-{i}"),
            )
            .await;
        }
        let claims = store.claim(100, LEASE).await.unwrap();
        assert_eq!(claims.len(), successes + 10, "{url}");
        for claim in &claims[..successes] {
            assert_eq!(
                record(&store, claim, 204).await,
                Recorded::default(),
                "{url}"
            );
        }
        // 10 failures: with 20 successes, 10 of 30 failed (under 50 %): it stays healthy. With
        // 5, the 5th failure makes 5 of 10: the circuit opens then, not before. (Were the
        // successes not counted, the 9th failure would open both.)
        let mut first_change = None;
        for (i, claim) in claims[successes..].iter().enumerate() {
            let recorded = record(&store, claim, 503).await;
            if recorded.change.is_some() && first_change.is_none() {
                first_change = Some(i);
            }
        }
        assert_eq!(first_change, opens_at, "{url}");
    }
}

/// A success to an endpoint this process last saw healthy, after another process opened its
/// circuit, is recorded under the lock and closes the circuit, as everywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_closes_the_circuit_another_process_opened() {
    let db = pg::database().await;
    let first = open(&db.url, EndpointPolicy::default()).await;
    let second = open(&db.url, EndpointPolicy::default()).await;
    let router = router(OTHER, DeliveryOrder::Any);
    for i in 0..12 {
        admit(&first, &router, &format!("evt-{i}"), &format!("p-{i}")).await;
    }
    let claims = first.claim(100, LEASE).await.unwrap();
    assert_eq!(claims.len(), 12);
    assert_eq!(record(&first, &claims[0], 204).await, Recorded::default());
    let mut opened = None;
    for (i, claim) in claims[1..11].iter().enumerate() {
        if record(&second, claim, 503).await.change.is_some() && opened.is_none() {
            opened = Some(i);
        }
    }
    // 1 success, then the 9th failure makes 9 of 10.
    assert_eq!(opened, Some(8));
    assert_eq!(
        second.endpoints().await.unwrap()[0].state.as_str(),
        "degraded"
    );
    let change = record(&first, &claims[11], 204)
        .await
        .change
        .expect("the circuit closes");
    assert_eq!(
        (change.from.as_str(), change.to.as_str()),
        ("degraded", "healthy")
    );
    assert_eq!(
        first.endpoints().await.unwrap()[0].state.as_str(),
        "healthy"
    );
}

// ---------------------------------------------------------------------------------------------
// b. Per-Profile order

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_profile_order_sends_a_profiles_next_delivery_after_its_previous_ended() {
    let db = pg::database().await;
    let store = open(&db.url, EndpointPolicy::default()).await;
    let ordered = router(OTHER, DeliveryOrder::PerProfile);
    let p1_first = admit(&store, &ordered, "evt-1", "p-1").await;
    let p1_second = admit(&store, &ordered, "evt-2", "p-1").await;
    let p2_only = admit(&store, &ordered, "evt-3", "p-2").await;

    let claims = store.claim(10, LEASE).await.unwrap();
    assert_eq!(ids(&claims), [p1_first.as_str(), p2_only.as_str()]);
    assert!(store.claim(10, LEASE).await.unwrap().is_empty());
    // p-2's delivery ending changes nothing for p-1.
    record(&store, &claims[1], 204).await;
    assert!(store.claim(10, LEASE).await.unwrap().is_empty());
    // A retry of p-1's first keeps the second waiting; only its delivery lets it go.
    record(&store, &claims[0], 204).await;
    let next = store.claim(10, LEASE).await.unwrap();
    assert_eq!(ids(&next), [p1_second.as_str()]);
    record(&store, &next[0], 204).await;
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, 3, 0, 3));
}

// ---------------------------------------------------------------------------------------------
// d. The policy off: as before endpoint health

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_policy_off_gone_dead_letters_as_before() {
    let db = pg::database().await;
    let store = open(&db.url, EndpointPolicy::off()).await;
    let gone = router(GONE, DeliveryOrder::Any);
    let first = admit(&store, &gone, "evt-1", "p-1").await;
    let second = admit(&store, &gone, "evt-2", "p-2").await;
    let claims = store.claim(1, LEASE).await.unwrap();
    assert_eq!(ids(&claims), [first.as_str()]);
    assert_eq!(record(&store, &claims[0], 410).await, Recorded::default());
    let dead = store.get(&first).await.unwrap().unwrap();
    assert!(
        matches!(
            dead.state(),
            DeliveryState::DeadLettered {
                reason: DeadLetterReason::Gone,
                ..
            }
        ),
        "{:?}",
        dead.state()
    );
    // The endpoint is not paused: its other delivery is claimed.
    let claims = store.claim(10, LEASE).await.unwrap();
    assert_eq!(ids(&claims), [second.as_str()]);
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 0, 1, 2));
    let statuses = store.endpoints().await.unwrap();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(
        (
            statuses[0].endpoint.as_str(),
            statuses[0].state,
            statuses[0].pending
        ),
        (GONE, EndpointState::Healthy, 1)
    );
}

// ---------------------------------------------------------------------------------------------
// The schema: version 1 to version 2

const V1: &str = include_str!("../src/store/migrations/postgres.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_brought_to_version_2_with_its_endpoints_filled_in() {
    let db = pg::database().await;
    let gone = router(GONE, DeliveryOrder::Any);
    let plan = plan(&gone, "evt-1", "p-1");
    let delivery = plan.candidates[0].delivery.clone();
    let id = delivery.webhook_id().as_str().to_owned();
    {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(V1).execute(&mut conn).await.unwrap();
        sqlx::query("INSERT INTO optout_relay_schema (version) VALUES (1)")
            .execute(&mut conn)
            .await
            .unwrap();
        let created = delivery.created_at().as_millisecond();
        sqlx::query(
            "INSERT INTO optout_relay_deliveries (webhook_id, flow, event, profile, state, \
             next_attempt_at, attempts, created_at, data) \
             VALUES ($1, 'crm', 'evt-1', 'p-1', 'pending', $2, 0, $2, $3)",
        )
        .bind(&id)
        .bind(created)
        .bind(serde_json::to_string(&delivery).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let store = open(&db.url, EndpointPolicy::default()).await;
    let version: i64 = sqlx::query_scalar("SELECT max(version) FROM optout_relay_schema")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(version, 2);
    let row: (String, bool, i64) =
        sqlx::query_as("SELECT endpoint, ordered, seq FROM optout_relay_deliveries")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(row, (GONE.to_owned(), false, 1));
    // The migration run again, and the store opened again: nothing changes.
    sqlx::raw_sql(optout_relay::store::POSTGRES_MIGRATION)
        .execute(store.pool())
        .await
        .unwrap();
    drop(store);
    let store = open(&db.url, EndpointPolicy::default()).await;
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM optout_relay_schema")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(versions, [2]);
    let sequences: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relkind = 'S'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(sequences, 1);
    // The row is claimable, and rows admitted now follow it in order.
    let next = admit(&store, &gone, "evt-2", "p-2").await;
    let claims = store.claim(10, LEASE).await.unwrap();
    assert_eq!(ids(&claims), [id.as_str(), next.as_str()]);

    // A newer schema than this crate writes is refused.
    sqlx::query("UPDATE optout_relay_schema SET version = 3")
        .execute(store.pool())
        .await
        .unwrap();
    let error = PostgresStore::builder(&db.url)
        .listen(false)
        .open()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Schema, "{error}");
}

// ---------------------------------------------------------------------------------------------
// c. Per-endpoint limits held across four worker processes

const LIMITED_DELIVERIES: usize = 200;
const LIMITED_WORKERS: usize = 4;
const MAX_IN_FLIGHT: usize = 4;
const PER_SECOND: usize = 20;
const RECEIVER_DELAY: Duration = Duration::from_millis(50);

fn limited_policy() -> EndpointPolicy {
    EndpointPolicy::default().limits(Limits {
        max_in_flight: Some(MAX_IN_FLIGHT as u32),
        per_second: Some(PER_SECOND as u32),
    })
}

/// The receiver's tally: requests in progress (and the most at once), and each request's
/// arrival with its webhook id.
#[derive(Default)]
struct Tally {
    current: AtomicUsize,
    max: AtomicUsize,
    arrivals: Mutex<Vec<(Instant, String)>>,
}

/// A loopback HTTP/1.1 receiver: answers every request 200 after `RECEIVER_DELAY`, counting
/// it as in progress from its arrival until just before its answer is written.
async fn start_receiver(tally: Arc<Tally>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tally = Arc::clone(&tally);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let tally = Arc::clone(&tally);
                        async move {
                            let id = request
                                .headers()
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-")
                                .to_owned();
                            let now = tally.current.fetch_add(1, Ordering::SeqCst) + 1;
                            tally.max.fetch_max(now, Ordering::SeqCst);
                            tally.arrivals.lock().unwrap().push((Instant::now(), id));
                            tokio::time::sleep(RECEIVER_DELAY).await;
                            tally.current.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(hyper::Response::new(http_body_util::Empty::<
                                hyper::body::Bytes,
                            >::new(
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A worker process: delivers from the shared database, under the limits, until nothing is
/// pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of limits_hold_across_four_worker_processes (runs only with OPTOUT_RELAY_PG_CHILD_ROLE=limited)"]
async fn child_limited_worker() {
    let Some((url, index)) = child_env("limited") else {
        return;
    };
    let receiver = std::env::var(CHILD_RECEIVER_ENV).unwrap();
    let store = Arc::new(
        PostgresStore::builder(&url)
            .max_connections(4)
            .endpoint_policy(limited_policy())
            .open()
            .await
            .unwrap(),
    );
    let client = Arc::new(
        ReqwestClient::builder()
            .destination_policy(DestinationPolicy::new().allow_loopback())
            .build()
            .unwrap(),
    );
    let ended = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&ended);
    let worker = Worker::builder(router(&receiver, DeliveryOrder::Any), client, store.clone())
        .max_in_flight(16)
        .lease(Duration::from_secs(20))
        .poll_interval(Duration::from_millis(50))
        .seed(u64::try_from(index).unwrap())
        .start_with_callback(move |outcome| {
            if outcome.delivery().is_some() {
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
    println!("WORKER {index} started");
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(counts) = store.counts().await {
            if counts.pending == 0 {
                break;
            }
        }
    }
    let _ = worker.shutdown().await;
    println!("ENDED {index} {}", ended.load(Ordering::Relaxed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_four_worker_processes() {
    let db = pg::database().await;
    let store = open(&db.url, limited_policy()).await;
    let tally = Arc::new(Tally::default());
    let addr = start_receiver(Arc::clone(&tally)).await;
    let url = format!("http://{addr}/optout");
    let target = router(&url, DeliveryOrder::Any);
    let mut admitted = BTreeSet::new();
    for i in 0..LIMITED_DELIVERIES {
        let id = admit(&store, &target, &format!("evt-{i}"), &format!("p-{i}")).await;
        admitted.insert(id.as_str().to_owned());
    }
    let total = u64::try_from(LIMITED_DELIVERIES).unwrap();
    assert_eq!(store.counts().await.unwrap(), counts(total, 0, 0, 0, total));

    let started = Instant::now();
    let workers: Vec<ChildProcess> = (0..LIMITED_WORKERS)
        .map(|index| {
            spawn_child(
                "child_limited_worker",
                format!("limited worker {index}"),
                &[
                    (ROLE_ENV, "limited".to_owned()),
                    (CHILD_URL_ENV, db.url.clone()),
                    (CHILD_INDEX_ENV, index.to_string()),
                    (CHILD_RECEIVER_ENV, url.clone()),
                ],
            )
        })
        .collect();
    let deadline = started + Duration::from_secs(40);
    let mut last = store.counts().await.unwrap();
    while last.delivered < total {
        assert!(
            Instant::now() < deadline,
            "not everything was delivered in time: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = store.counts().await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut ended = Vec::new();
    for worker in workers {
        let (status, output) = worker.finish(Duration::from_secs(15)).await;
        assert!(status.success(), "{status}\n{output}");
        let count: usize = output
            .lines()
            .find_map(|l| l.split_once("ENDED ").map(|(_, r)| r))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_else(|| panic!("no ENDED line\n{output}"))
            .parse()
            .unwrap();
        ended.push(count);
    }
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, total, 0, total));
    assert_eq!(ended.iter().sum::<usize>(), LIMITED_DELIVERIES, "{ended:?}");

    // Every delivery arrived exactly once.
    let mut arrivals = tally.arrivals.lock().unwrap().clone();
    arrivals.sort_by_key(|(at, _)| *at);
    let mut times: BTreeMap<&str, u32> = BTreeMap::new();
    for (_, id) in &arrivals {
        *times.entry(id.as_str()).or_default() += 1;
    }
    assert!(times.values().all(|n| *n == 1), "sent more than once");
    let received: BTreeSet<String> = times.keys().map(|id| (*id).to_owned()).collect();
    assert_eq!(received, admitted);
    assert_eq!(arrivals.len(), LIMITED_DELIVERIES);

    // In flight: never more than the limit, and more than one at once (the processes shared it).
    let max_concurrent = tally.max.load(Ordering::SeqCst);
    // Per second: the most requests started within any one second (a full bucket, 20, plus one
    // second's refill, 20), and the steady rate once the first second's burst is spent.
    let first = arrivals[0].0;
    let last_at = arrivals[arrivals.len() - 1].0;
    let mut max_window = 0;
    let mut start = 0;
    for end in 0..arrivals.len() {
        while arrivals[end].0.duration_since(arrivals[start].0) >= Duration::from_secs(1) {
            start += 1;
        }
        max_window = max_window.max(end - start + 1);
    }
    let steady_from = first + Duration::from_secs(1);
    let steady = arrivals.iter().filter(|(at, _)| *at >= steady_from).count();
    let steady_span = last_at.duration_since(steady_from).as_secs_f64();
    let steady_rate = steady as f64 / steady_span;
    let span = last_at.duration_since(first).as_secs_f64();
    eprintln!(
        "postgres limits ({MAX_IN_FLIGHT} in flight, {PER_SECOND}/s) over {LIMITED_WORKERS} \
         processes: {LIMITED_DELIVERIES} delivered once each; max concurrency at the receiver \
         {max_concurrent}; max requests in any 1 s window {max_window}; after the first second \
         {steady} requests in {steady_span:.2} s = {steady_rate:.2}/s; overall {:.2}/s over \
         {span:.2} s; per process {ended:?}; all delivered {elapsed:.1?} after the workers started",
        LIMITED_DELIVERIES as f64 / span,
    );
    assert!(
        max_concurrent <= MAX_IN_FLIGHT,
        "{max_concurrent} in flight at once"
    );
    assert!(max_concurrent >= 2, "never more than one request at once");
    assert!(
        max_window <= 2 * PER_SECOND,
        "{max_window} requests within one second"
    );
    assert!(steady_rate <= PER_SECOND as f64 + 0.5, "{steady_rate}/s");
    // The rate limit, not something else, set the pace: the burst and then 20/s.
    let least = (LIMITED_DELIVERIES - PER_SECOND - 1) as f64 / PER_SECOND as f64;
    assert!(span >= least - 0.2, "{span} s for {LIMITED_DELIVERIES}");
    assert!(ended.iter().filter(|n| **n > 0).count() >= 2, "{ended:?}");
}

// ---------------------------------------------------------------------------------------------
// Child processes: this test binary, run again for one `child_*` test.
