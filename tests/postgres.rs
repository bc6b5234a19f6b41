//! The PostgreSQL store against a real server (a private one started by `support/pg.rs`, or
//! `OPTOUT_RELAY_TEST_PG_URL`): the store contract, concurrent admits on separate connections and
//! in separate OS processes, and four worker processes sharing one database while one of them is
//! SIGKILLed mid-way.
//!
//! The multi-process tests re-execute this test binary: the `child_*` tests are `#[ignore]`d and
//! do their part only when the parent has set `OPTOUT_RELAY_PG_CHILD_ROLE`.
#![cfg(all(feature = "postgres", feature = "reqwest"))]

#[path = "support/child.rs"]
mod child;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/pg.rs"]
mod pg;
mod support;

use child::{CHILD_INDEX_ENV, CHILD_URL_ENV, ChildProcess, ROLE_ENV, child_env, spawn_child};
use fixtures::{counts, event, plan, profile, response};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use optout_relay::DeliveryStore;
use optout_relay::PostgresStore;
use optout_relay::ReqwestClient;
use optout_relay::delivery::DeadLetterReason;
use optout_relay::delivery::DeliveryState;
use optout_relay::health::{EndpointPolicy, Limits};
use optout_relay::jiff::SignedDuration;
use optout_relay::listen::EntryDecision;
use optout_relay::listen::FlowSettings;
use optout_relay::relay::Submitted;
use optout_relay::relay::{self, FlowResult};
use optout_relay::store::ClaimToken;
use optout_relay::store::ListQuery;
use optout_relay::store::MAX_ABANDONED_CLAIMS;
use optout_relay::store::StateFilter;
use optout_relay::store::StoreErrorKind;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use support::{Answer, TestServer};
use tokio::sync::Barrier;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SECRET_KEY: &str = "C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const BEARER: &str = "pg-test-bearer-t0ken-5f1c";
/// Stored deliveries of the store-only tests point here; nothing is ever sent to it.
const NOWHERE: &str = "http://127.0.0.1:9/optout";

// The environment a parent hands its child processes.
const CHILD_MODE_ENV: &str = "OPTOUT_RELAY_PG_CHILD_MODE";
const CHILD_START_ENV: &str = "OPTOUT_RELAY_PG_CHILD_START_MS";
const CHILD_ROUNDS_ENV: &str = "OPTOUT_RELAY_PG_CHILD_ROUNDS";
const CHILD_RECEIVER_ENV: &str = "OPTOUT_RELAY_PG_CHILD_RECEIVER";

// ---------------------------------------------------------------------------------------------
// Building blocks

fn flow_with(id: &str, webhook: WebhookNode, limit: Option<EntryLimit>) -> Flow {
    let flow = Flow::new(
        FlowId::new(id).unwrap(),
        SectionId::new("sec-1").unwrap(),
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        webhook,
    );
    match limit {
        Some(limit) => flow.with_settings(FlowSettings::with_entry_limit(limit)),
        None => flow,
    }
}

fn plain_node(url: &str) -> WebhookNode {
    WebhookNode::builder(url)
        .param("email", ParamSource::Email)
        .build()
        .unwrap()
}

fn router(flows: impl IntoIterator<Item = Flow>) -> Arc<Router> {
    Arc::new(Router::new(flows, &Catalog::default()).unwrap())
}

/// One unlimited flow `crm` to `url`.
fn unlimited(url: &str) -> Arc<Router> {
    router([flow_with("crm", plain_node(url), None)])
}

/// One flow `once` that a Profile may enter once.
fn at_most_once() -> Arc<Router> {
    router([flow_with(
        "once",
        plain_node(NOWHERE),
        Some(EntryLimit::at_most(1).unwrap()),
    )])
}

fn entered_id(submitted: &Submitted) -> WebhookId {
    assert_eq!(submitted.flows.len(), 1, "{submitted:?}");
    match &submitted.flows[0].result {
        FlowResult::Entered { webhook_id } => webhook_id.clone(),
        other => panic!("expected an entry, got {other:?}"),
    }
}

async fn open(url: &str) -> PostgresStore {
    PostgresStore::builder(url)
        .max_connections(4)
        .listen(false)
        .open()
        .await
        .unwrap()
}

/// Records `status` as the attempt of a claimed delivery, ended at `at`; returns the delivery.
async fn record_at(
    store: &PostgresStore,
    claim: &optout_relay::store::Claim,
    status: u16,
    at: Timestamp,
) -> Delivery {
    let mut delivery = claim.delivery.clone();
    let _ = delivery.record(Ok(&response(status)), at, at, &RetryPolicy::default(), 0);
    store.record(&claim.token, &delivery).await.unwrap();
    delivery
}

fn unix_millis() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// a. The store contract on PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admit_is_idempotent_and_a_claim_is_recorded_once() {
    let db = pg::database().await;
    let store = open(&db.url).await;
    let router = unlimited(NOWHERE);

    let first = store.admit(plan(&router, "evt-1", "p-1")).await.unwrap();
    let id = entered_id(&first);
    let again = store.admit(plan(&router, "evt-1", "p-1")).await.unwrap();
    assert_eq!(
        again.flows[0].result,
        FlowResult::Refused(EntryDecision::AlreadyEntered)
    );
    assert_eq!(again.entered().count(), 0);
    assert_eq!(store.counts().await.unwrap(), counts(1, 0, 0, 0, 1));
    assert!(store.next_due().await.unwrap().is_some());

    let claims = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        claims[0].token,
        ClaimToken {
            webhook_id: id.to_string(),
            claim: 1
        }
    );
    assert_eq!(claims[0].delivery.webhook_id(), &id);
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 0, 0, 1));
    // Leased: nobody else gets it.
    assert!(
        store
            .claim(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );

    let now = Timestamp::now();
    let delivered = record_at(&store, &claims[0], 204, now).await;
    assert_eq!(delivered.state(), &DeliveryState::Delivered { at: now });
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, 1, 0, 1));
    // The claim has ended: recording or releasing with it again is refused.
    let twice = store
        .record(&claims[0].token, &delivered)
        .await
        .unwrap_err();
    assert_eq!(twice.kind(), StoreErrorKind::LeaseLost);
    let release = store.release(&claims[0].token).await.unwrap_err();
    assert_eq!(release.kind(), StoreErrorKind::LeaseLost);

    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.state(), &DeliveryState::Delivered { at: now });
    assert_eq!(stored.attempts().len(), 1);
    let listed = store
        .list(&ListQuery::new(StateFilter::Delivered))
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|d| d.webhook_id().as_str())
            .collect::<Vec<_>>(),
        [id.as_str()]
    );
    assert!(
        store
            .list(&ListQuery::new(StateFilter::Pending))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due().await.unwrap(), None);
    assert!(
        store
            .claim(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    // Admitting the event once more still enters nothing.
    let third = store.admit(plan(&router, "evt-1", "p-1")).await.unwrap();
    assert_eq!(
        third.flows[0].result,
        FlowResult::Refused(EntryDecision::AlreadyEntered)
    );
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, 1, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_limit_one_lets_one_event_of_a_profile_in() {
    let db = pg::database().await;
    let store = open(&db.url).await;
    let router = at_most_once();

    let a = store.admit(plan(&router, "evt-a", "p-1")).await.unwrap();
    entered_id(&a);
    let b = store.admit(plan(&router, "evt-b", "p-1")).await.unwrap();
    assert_eq!(
        b.flows[0].result,
        FlowResult::Refused(EntryDecision::LimitReached {
            limit: EntryLimit::at_most(1).unwrap(),
            entries: 1
        })
    );
    // A re-delivered copy of A is recognised as such, not counted against the limit.
    let a_again = store.admit(plan(&router, "evt-a", "p-1")).await.unwrap();
    assert_eq!(
        a_again.flows[0].result,
        FlowResult::Refused(EntryDecision::AlreadyEntered)
    );
    // Another Profile has its own allowance.
    let c = store.admit(plan(&router, "evt-c", "p-2")).await.unwrap();
    entered_id(&c);
    assert_eq!(store.counts().await.unwrap(), counts(2, 0, 0, 0, 2));
}

/// A windowed limit in the database: one entry within 1 month (30 days), decided at the plans'
/// times: refused 1 s before the month is over, entered again exactly at its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_limit_counts_entries_within_the_window_only() {
    let db = pg::database().await;
    let store = open(&db.url).await;
    let limit = EntryLimit::at_most_within(1, "1 month".parse().unwrap()).unwrap();
    let router = router([flow_with("monthly", plain_node(NOWHERE), Some(limit))]);
    let start: Timestamp = "2026-01-31T12:00:00Z".parse().unwrap();
    let month = SignedDuration::from_hours(30 * 24);
    let at =
        |id: &str, now: Timestamp| relay::plan(&router, &event(id, "p-1"), &profile("p-1"), now);
    entered_id(&store.admit(at("evt-a", start)).await.unwrap());
    let early = store
        .admit(at("evt-b", start + month - SignedDuration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(
        early.flows[0].result,
        FlowResult::Refused(EntryDecision::LimitReached { limit, entries: 1 })
    );
    entered_id(&store.admit(at("evt-c", start + month)).await.unwrap());
    assert_eq!(store.counts().await.unwrap(), counts(2, 0, 0, 0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_fences_the_old_claim() {
    let db = pg::database().await;
    let store = open(&db.url).await;
    let router = unlimited(NOWHERE);
    let id = entered_id(&store.admit(plan(&router, "evt-1", "p-1")).await.unwrap());

    let old = store.claim(5, Duration::from_secs(1)).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].token.claim, 1);
    assert!(
        store
            .claim(5, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 0, 0, 1));

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // Expired: no longer counted as leased, and the next claim takes it over.
    assert_eq!(store.counts().await.unwrap(), counts(1, 0, 0, 0, 1));
    let new = store.claim(5, Duration::from_secs(60)).await.unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!(
        new[0].token,
        ClaimToken {
            webhook_id: id.to_string(),
            claim: 2
        }
    );

    // The worker that lost the lease cannot write any more.
    let mut late = old[0].delivery.clone();
    let _ = late.record(
        Ok(&response(500)),
        Timestamp::now(),
        Timestamp::now(),
        &RetryPolicy::default(),
        0,
    );
    let lost = store.record(&old[0].token, &late).await.unwrap_err();
    assert_eq!(lost.kind(), StoreErrorKind::LeaseLost);
    assert_eq!(
        store.release(&old[0].token).await.unwrap_err().kind(),
        StoreErrorKind::LeaseLost
    );
    // The one that holds it can.
    let now = Timestamp::now();
    record_at(&store, &new[0], 200, now).await;
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.state(), &DeliveryState::Delivered { at: now });
    assert_eq!(
        stored.attempts().len(),
        1,
        "only the new claim's attempt is kept"
    );
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, 1, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_claims_dead_letter_and_replay_brings_it_back() {
    let db = pg::database().await;
    let store = open(&db.url).await;
    let router = unlimited(NOWHERE);
    let id = entered_id(&store.admit(plan(&router, "evt-1", "p-1")).await.unwrap());

    for claim in 1..=u64::from(MAX_ABANDONED_CLAIMS) {
        let claims = store.claim(5, Duration::from_millis(100)).await.unwrap();
        assert_eq!(claims.len(), 1, "claim {claim}");
        assert_eq!(claims[0].token.claim, claim);
        // The worker "crashes": the lease runs out without an attempt recorded.
        tokio::time::sleep(Duration::from_millis(160)).await;
    }
    // The next claim gives it up instead of handing it out once more.
    assert!(
        store
            .claim(5, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, 0, 1, 1));
    let dead = store.get(&id).await.unwrap().unwrap();
    match dead.state() {
        DeliveryState::DeadLettered { reason, .. } => assert_eq!(
            reason,
            &DeadLetterReason::Abandoned {
                claims: MAX_ABANDONED_CLAIMS
            }
        ),
        other => panic!("{other:?}"),
    }
    assert!(dead.attempts().is_empty());
    let listed = store
        .list(&ListQuery::new(StateFilter::DeadLettered))
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|d| d.webhook_id().as_str())
            .collect::<Vec<_>>(),
        [id.as_str()]
    );
    assert_eq!(store.next_due().await.unwrap(), None);

    let unknown = WebhookId::derive(
        &FlowId::new("no-such-flow").unwrap(),
        &EventId::new("e").unwrap(),
    );
    assert!(!store.replay(&unknown).await.unwrap());
    assert!(store.replay(&id).await.unwrap());
    // Pending again: a second replay finds no dead letter.
    assert!(!store.replay(&id).await.unwrap());
    assert_eq!(store.counts().await.unwrap(), counts(1, 0, 0, 0, 1));
    let claims = store.claim(5, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claims.len(), 1);
    // Claims 1 to 3 expired, claim 4 dead-lettered it; the replayed delivery is claim 5.
    assert_eq!(
        claims[0].token,
        ClaimToken {
            webhook_id: id.to_string(),
            claim: u64::from(MAX_ABANDONED_CLAIMS) + 2
        }
    );
    record_at(&store, &claims[0], 204, Timestamp::now()).await;
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, 1, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_finished_deliveries_older_than_the_cut_off() {
    let db = pg::database().await;
    let store = open(&db.url).await;
    let router = unlimited(NOWHERE);
    let mut ids = Vec::new();
    for i in 1..=3 {
        let submitted = store
            .admit(plan(&router, &format!("evt-{i}"), &format!("p-{i}")))
            .await
            .unwrap();
        ids.push(entered_id(&submitted));
    }
    let claims = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claims.len(), 3);
    let by_id: HashMap<&str, &optout_relay::store::Claim> = claims
        .iter()
        .map(|c| (c.token.webhook_id.as_str(), c))
        .collect();
    let base: Timestamp = Timestamp::now();
    let delivered_at = base - SignedDuration::from_mins(10);
    let dead_at = base - SignedDuration::from_mins(5);
    record_at(&store, by_id[ids[0].as_str()], 204, delivered_at).await;
    let dead = record_at(&store, by_id[ids[1].as_str()], 400, dead_at).await;
    assert!(matches!(dead.state(), DeliveryState::DeadLettered { at, .. } if *at == dead_at));
    store.release(&by_id[ids[2].as_str()].token).await.unwrap();
    assert_eq!(store.counts().await.unwrap(), counts(1, 0, 1, 1, 3));

    // Strictly before the cut-off: a delivery that ended at the cut-off stays.
    assert_eq!(store.purge(delivered_at).await.unwrap(), 0);
    assert_eq!(
        store
            .purge(delivered_at + SignedDuration::from_millis(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.get(&ids[0]).await.unwrap().is_none());
    assert!(store.get(&ids[1]).await.unwrap().is_some());
    assert_eq!(store.counts().await.unwrap(), counts(1, 0, 0, 1, 3));
    assert_eq!(store.purge(base).await.unwrap(), 1);
    assert!(store.get(&ids[1]).await.unwrap().is_none());
    // Pending work is never purged, whatever the cut-off.
    assert_eq!(
        store
            .purge(base + SignedDuration::from_hours(24))
            .await
            .unwrap(),
        0
    );
    assert!(store.get(&ids[2]).await.unwrap().unwrap().is_pending());
    // Entries (ids only) are kept: a re-delivered event is still recognised.
    assert_eq!(store.counts().await.unwrap(), counts(1, 0, 0, 0, 3));
    let again = store.admit(plan(&router, "evt-1", "p-1")).await.unwrap();
    assert_eq!(
        again.flows[0].result,
        FlowResult::Refused(EntryDecision::AlreadyEntered)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_requests_hold_no_credentials_or_signatures() {
    let db = pg::database().await;
    let store = open(&db.url).await;
    let node = WebhookNode::builder(NOWHERE)
        .param("email", ParamSource::Email)
        .bearer(BEARER)
        .sign_with(SECRET)
        .build()
        .unwrap();
    let router = router([flow_with("signed", node, None)]);
    let id = entered_id(&store.admit(plan(&router, "evt-1", "p-1")).await.unwrap());

    let forbidden = ["authorization", "webhook-signature", "webhook-timestamp"];
    let stored = store.get(&id).await.unwrap().unwrap();
    let claims = store.claim(1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claims.len(), 1);
    for delivery in [&stored, &claims[0].delivery] {
        let headers = delivery.request().headers();
        for name in forbidden {
            assert!(!headers.contains_key(name), "{name} was stored");
        }
        assert_eq!(headers.get("webhook-id").unwrap(), id.as_str());
    }
    // Not anywhere in the rows either.
    let rows: Vec<(String,)> = sqlx::query_as("SELECT data FROM optout_relay_deliveries")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    for (data,) in &rows {
        for secret in [BEARER, SECRET_KEY, "Bearer", "v1,"] {
            assert!(!data.contains(secret), "{secret:?} in the stored row");
        }
    }
    // They are added at send time, from the flow.
    let sent = relay::prepare_attempt(
        &router,
        &stored,
        &DestinationPolicy::default().allow_loopback(),
        Timestamp::now(),
    )
    .unwrap();
    assert_eq!(
        sent.headers().get("authorization").unwrap(),
        format!("Bearer {BEARER}").as_str()
    );
    assert!(
        sent.headers()
            .get("webhook-signature")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("v1,")
    );
    assert!(sent.headers().contains_key("webhook-timestamp"));
}

// ---------------------------------------------------------------------------------------------
// b. Concurrent admits in one process, each on its own connection pool

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_admits_of_one_event_enter_it_once() {
    const TASKS: usize = 8;
    const ROUNDS: usize = 5;
    let db = pg::database().await;
    let mut stores = Vec::new();
    for _ in 0..TASKS {
        stores.push(open(&db.url).await);
    }
    let router = unlimited(NOWHERE);
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(TASKS));
        let mut tasks = tokio::task::JoinSet::new();
        for store in &stores {
            let (store, router, barrier) =
                (store.clone(), Arc::clone(&router), Arc::clone(&barrier));
            tasks.spawn(async move {
                let plan = plan(&router, &format!("evt-{round}"), &format!("p-{round}"));
                barrier.wait().await;
                store.admit(plan).await.unwrap()
            });
        }
        let results: Vec<Submitted> = tasks.join_all().await;
        let entered: Vec<&Submitted> = results
            .iter()
            .filter(|s| s.entered().count() == 1)
            .collect();
        assert_eq!(entered.len(), 1, "round {round}: {results:?}");
        for submitted in &results {
            assert_eq!(submitted.flows.len(), 1);
            if submitted.entered().count() == 0 {
                assert_eq!(
                    submitted.flows[0].result,
                    FlowResult::Refused(EntryDecision::AlreadyEntered),
                    "round {round}"
                );
            }
        }
        let rounds = u64::try_from(round + 1).unwrap();
        assert_eq!(
            stores[0].counts().await.unwrap(),
            counts(rounds, 0, 0, 0, rounds)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admits_under_a_limit_of_one_enter_one_event() {
    const ROUNDS: usize = 20;
    let db = pg::database().await;
    let (one, two) = (open(&db.url).await, open(&db.url).await);
    let router = at_most_once();
    let mut winners = BTreeMap::new();
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = tokio::task::JoinSet::new();
        for (store, name) in [(one.clone(), "a"), (two.clone(), "b")] {
            let (router, barrier) = (Arc::clone(&router), Arc::clone(&barrier));
            tasks.spawn(async move {
                let plan = plan(
                    &router,
                    &format!("evt-{round}-{name}"),
                    &format!("p-{round}"),
                );
                barrier.wait().await;
                (name, store.admit(plan).await.unwrap())
            });
        }
        let results = tasks.join_all().await;
        let entered: Vec<&str> = results
            .iter()
            .filter(|(_, s)| s.entered().count() == 1)
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(entered.len(), 1, "round {round}: {results:?}");
        *winners.entry(entered[0]).or_insert(0) += 1;
        let refused = results
            .iter()
            .find(|(_, s)| s.entered().count() == 0)
            .unwrap();
        assert_eq!(
            refused.1.flows[0].result,
            FlowResult::Refused(EntryDecision::LimitReached {
                limit: EntryLimit::at_most(1).unwrap(),
                entries: 1
            })
        );
    }
    let rounds = u64::try_from(ROUNDS).unwrap();
    assert_eq!(one.counts().await.unwrap(), counts(rounds, 0, 0, 0, rounds));
    eprintln!("postgres limit 1, {ROUNDS} concurrent rounds in one process: winners {winners:?}");
}

// ---------------------------------------------------------------------------------------------
// Child processes: this test binary, run again for one `child_*` test.

fn env_number(name: &str) -> u64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is set by the parent"))
        .parse()
        .unwrap()
}

async fn sleep_until_unix_ms(at: u64) -> u64 {
    let now = unix_millis();
    if at > now {
        tokio::time::sleep(Duration::from_millis(at - now)).await;
        0
    } else {
        now - at
    }
}

const ROUND_MS: u64 = 100;
const PROCESS_ROUNDS: u64 = 10;

/// Two processes admit, round after round at the same instants: in mode `same` the same event,
/// in mode `limit` events A and B of one Profile into a flow with a limit of 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of two_processes_* (runs only with OPTOUT_RELAY_PG_CHILD_ROLE=admit)"]
async fn child_admit() {
    let Some((url, index)) = child_env("admit") else {
        return;
    };
    let mode = std::env::var(CHILD_MODE_ENV).unwrap();
    let start = env_number(CHILD_START_ENV);
    let rounds = env_number(CHILD_ROUNDS_ENV);
    let store = open(&url).await;
    let router = match mode.as_str() {
        "same" => unlimited(NOWHERE),
        _ => at_most_once(),
    };
    // The connection is open before the first round.
    store.counts().await.unwrap();
    for round in 0..rounds {
        let event = match mode.as_str() {
            "same" => format!("evt-{round}"),
            _ => format!("evt-{round}-{index}"),
        };
        let plan = plan(&router, &event, &format!("p-{round}"));
        let late = sleep_until_unix_ms(start + round * ROUND_MS).await;
        let submitted = store.admit(plan).await.unwrap();
        let result = match &submitted.flows[0].result {
            FlowResult::Entered { .. } => "entered".to_owned(),
            FlowResult::Refused(EntryDecision::AlreadyEntered) => "already".to_owned(),
            FlowResult::Refused(EntryDecision::LimitReached { entries, .. }) => {
                format!("limit:{entries}")
            }
            other => format!("{other:?}"),
        };
        println!("RESULT {round} {result} late_ms={late}");
    }
}

/// Runs two `child_admit` processes in `mode`; returns each round's results.
async fn two_processes(mode: &str) -> (pg::TestDb, Vec<Vec<String>>) {
    let db = pg::database().await;
    // Tables first, so that the children start on equal terms.
    let store = open(&db.url).await;
    let start = unix_millis() + 2_000;
    let children: Vec<ChildProcess> = (0..2)
        .map(|index| {
            spawn_child(
                "child_admit",
                format!("admit child {index}"),
                &[
                    (ROLE_ENV, "admit".to_owned()),
                    (CHILD_URL_ENV, db.url.clone()),
                    (CHILD_INDEX_ENV, index.to_string()),
                    (CHILD_MODE_ENV, mode.to_owned()),
                    (CHILD_START_ENV, start.to_string()),
                    (CHILD_ROUNDS_ENV, PROCESS_ROUNDS.to_string()),
                ],
            )
        })
        .collect();
    let mut rounds = vec![Vec::new(); usize::try_from(PROCESS_ROUNDS).unwrap()];
    let mut lateness = Vec::new();
    for child in children {
        let (status, output) = child.finish(Duration::from_secs(30)).await;
        assert!(status.success(), "{status}\n{output}");
        // libtest's "test child_admit ... " may precede the first line.
        for line in output
            .lines()
            .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        {
            let mut words = line.split(' ');
            let round: usize = words.next().unwrap().parse().unwrap();
            rounds[round].push(words.next().unwrap().to_owned());
            lateness.push(words.next().unwrap().to_owned());
        }
    }
    let expected = u64::try_from(rounds.len()).unwrap();
    assert_eq!(
        store.counts().await.unwrap(),
        counts(expected, 0, 0, 0, expected)
    );
    eprintln!(
        "postgres two processes ({mode}): {:?}; lateness {lateness:?}",
        rounds
    );
    (db, rounds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_admitting_one_event_enter_it_once() {
    let (_db, rounds) = two_processes("same").await;
    for (round, results) in rounds.iter().enumerate() {
        let mut sorted = results.clone();
        sorted.sort();
        assert_eq!(sorted, ["already", "entered"], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_under_a_limit_of_one_enter_one_event() {
    let (_db, rounds) = two_processes("limit").await;
    for (round, results) in rounds.iter().enumerate() {
        let mut sorted = results.clone();
        sorted.sort();
        assert_eq!(sorted, ["entered", "limit:1"], "round {round}");
    }
}

// ---------------------------------------------------------------------------------------------
// d. Four worker processes on one database; one is SIGKILLed mid-way.

const DELIVERIES: usize = 5_000;
const WORKERS: usize = 4;
const WORKER_IN_FLIGHT: usize = 16;
const WORKER_LEASE: Duration = Duration::from_secs(2);

fn worker_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .schedule([100, 200, 400].map(SignedDuration::from_millis))
        .max_attempts(10)
        .build()
        .unwrap()
}

/// A worker process: delivers from the shared database until nothing is pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of worker_processes_share_the_work_and_lose_nothing (runs only with OPTOUT_RELAY_PG_CHILD_ROLE=worker)"]
async fn child_worker() {
    let Some((url, index)) = child_env("worker") else {
        return;
    };
    let receiver = std::env::var(CHILD_RECEIVER_ENV).unwrap();
    let store = Arc::new(
        PostgresStore::builder(&url)
            .max_connections(8)
            // Endpoint health on, without the per-endpoint in-flight limit: every worker holds
            // work of the one endpoint when one of them is killed.
            .endpoint_policy(EndpointPolicy::default().limits(Limits::NONE))
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
    let worker = Worker::builder(unlimited(&receiver), client, store.clone())
        .policy(worker_policy())
        .max_in_flight(WORKER_IN_FLIGHT)
        .lease(WORKER_LEASE)
        .poll_interval(Duration::from_millis(100))
        .seed(u64::try_from(index).unwrap())
        .start_with_callback(move |_| {
            count.fetch_add(1, Ordering::Relaxed);
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
async fn worker_processes_share_the_work_and_lose_nothing() {
    let started = Instant::now();
    let db = pg::database().await;
    let store = PostgresStore::builder(&db.url)
        .max_connections(8)
        .listen(false)
        .open()
        .await
        .unwrap();

    // The receiver: counts requests per webhook-id and accepts each after a short pause.
    let received: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let tally = Arc::clone(&received);
    let server = TestServer::start_with(Box::new(move |request| {
        let id = request.header("webhook-id").unwrap_or("-").to_owned();
        *tally.lock().unwrap().entry(id).or_default() += 1;
        Answer::Delay(Duration::from_millis(2), Box::new(Answer::status(200)))
    }))
    .await;
    let url = server.url("/optout");
    let router = unlimited(&url);

    // Admit everything first, on 8 connections.
    let mut admitting = tokio::task::JoinSet::new();
    for part in 0..8 {
        let (store, router) = (store.clone(), Arc::clone(&router));
        admitting.spawn(async move {
            let mut ids = Vec::new();
            for i in (part..DELIVERIES).step_by(8) {
                let submitted = store
                    .admit(plan(
                        &router,
                        &format!("evt-{i}"),
                        &format!("p-{}", i % 500),
                    ))
                    .await
                    .unwrap();
                ids.push(entered_id(&submitted));
            }
            ids
        });
    }
    let admitted: BTreeSet<String> = admitting
        .join_all()
        .await
        .into_iter()
        .flatten()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(admitted.len(), DELIVERIES);
    let total = u64::try_from(DELIVERIES).unwrap();
    assert_eq!(store.counts().await.unwrap(), counts(total, 0, 0, 0, total));
    let admit_time = started.elapsed();

    let mut workers: Vec<ChildProcess> = (0..WORKERS)
        .map(|index| {
            spawn_child(
                "child_worker",
                format!("worker {index}"),
                &[
                    (ROLE_ENV, "worker".to_owned()),
                    (CHILD_URL_ENV, db.url.clone()),
                    (CHILD_INDEX_ENV, index.to_string()),
                    (CHILD_RECEIVER_ENV, url.clone()),
                ],
            )
        })
        .collect();

    // Kill worker 0 once a fifth of the work is done, then wait for the rest to be delivered.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut killed_at = None;
    let mut last = store.counts().await.unwrap();
    while last.delivered < total {
        assert!(
            Instant::now() < deadline,
            "not everything was delivered in time: {last:?} (killed at {killed_at:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = store.counts().await.unwrap();
        if killed_at.is_none() && last.delivered >= total / 5 {
            workers[0].kill();
            killed_at = Some(last);
        }
    }
    let killed_at = killed_at.expect("worker 0 was killed");
    let delivery_time = started.elapsed() - admit_time;

    let mut ended_by_survivors = 0;
    let mut survivors = workers.split_off(1);
    for worker in survivors.drain(..) {
        let (status, output) = worker.finish(Duration::from_secs(15)).await;
        assert!(status.success(), "{status}\n{output}");
        let ended: usize = output
            .lines()
            .find_map(|l| l.split_once("ENDED ").map(|(_, r)| r))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_else(|| panic!("no ENDED line\n{output}"))
            .parse()
            .unwrap();
        ended_by_survivors += ended;
    }
    let (killed_status, _) = workers.remove(0).finish(Duration::from_secs(1)).await;
    assert!(!killed_status.success());

    // Every delivery ended once, delivered, in the store.
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, total, 0, total));
    let delivered = store
        .list(&ListQuery::new(StateFilter::Delivered).limit(10_000))
        .await
        .unwrap();
    let delivered_ids: BTreeSet<String> = delivered
        .iter()
        .map(|d| d.webhook_id().as_str().to_owned())
        .collect();
    assert_eq!(delivered.len(), DELIVERIES);
    assert_eq!(delivered_ids, admitted);
    for delivery in &delivered {
        assert_eq!(
            delivery.attempts().len(),
            1,
            "{} has more than one recorded attempt",
            delivery.webhook_id()
        );
    }
    // The deliveries the killed worker held when it died: claimed again after its lease.
    let taken_over: BTreeSet<String> =
        sqlx::query_scalar("SELECT webhook_id FROM optout_relay_deliveries WHERE claims > 1")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();

    // Nothing lost at the receiver; duplicates only among what the killed worker held.
    let received = received.lock().unwrap().clone();
    let missing: Vec<&String> = admitted
        .iter()
        .filter(|id| !received.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "lost {}: {missing:?}", missing.len());
    assert_eq!(received.len(), DELIVERIES, "unknown webhook ids received");
    let duplicated: BTreeMap<&String, u32> = received
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| (id, *n))
        .collect();
    let duplicates: u32 = duplicated.values().map(|n| n - 1).sum();
    eprintln!(
        "postgres {WORKERS} workers: {DELIVERIES} delivered, {duplicates} duplicates at the \
         receiver, killed worker had {} in flight (killed at {} delivered; survivors ended {}; \
         admit {:.1?}, delivery {:.1?})",
        taken_over.len(),
        killed_at.delivered,
        ended_by_survivors,
        admit_time,
        delivery_time,
    );
    assert!(
        !taken_over.is_empty(),
        "the killed worker held nothing: the kill tested no takeover"
    );
    assert!(taken_over.len() <= WORKER_IN_FLIGHT, "{taken_over:?}");
    for id in duplicated.keys() {
        assert!(
            taken_over.contains(*id),
            "{id} sent twice but never taken over"
        );
        assert_eq!(duplicated[id], 2, "{id}");
    }
    assert!(usize::try_from(duplicates).unwrap() <= WORKER_IN_FLIGHT);
    // The survivors ended everything but what the killed worker had delivered before it died.
    assert!(ended_by_survivors <= DELIVERIES);
}

// ---------------------------------------------------------------------------------------------
// e. The outbox: admitting inside the host's own transaction

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admit_in_the_hosts_transaction_is_durable_at_its_commit_and_wakes_workers() {
    let db = pg::database().await;
    let store = PostgresStore::builder(&db.url)
        .max_connections(4)
        .listen(true)
        .open()
        .await
        .unwrap();
    let router = unlimited(NOWHERE);
    // The listener wakes once when it connects: take that wake-up first.
    let _ = tokio::time::timeout(Duration::from_secs(2), store.wait_for_work()).await;

    // Rolled back: nothing stored, nobody woken.
    let mut tx = store.pool().begin().await.unwrap();
    let submitted = PostgresStore::admit_in(&mut tx, &plan(&router, "evt-rollback", "p-1"))
        .await
        .unwrap();
    let rolled_back = entered_id(&submitted);
    tx.rollback().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), store.wait_for_work())
            .await
            .is_err(),
        "a rolled-back admit woke the workers"
    );
    assert_eq!(store.get(&rolled_back).await.unwrap(), None);
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, 0, 0, 0));

    // Committed with the host's own write: stored, and the workers are woken at the commit.
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("CREATE TABLE host_unsubscribes (profile TEXT NOT NULL)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO host_unsubscribes (profile) VALUES ('p-1')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let submitted = PostgresStore::admit_in(&mut tx, &plan(&router, "evt-commit", "p-1"))
        .await
        .unwrap();
    let committed = entered_id(&submitted);
    tx.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), store.wait_for_work())
        .await
        .expect("the commit's NOTIFY woke the workers");
    assert!(store.get(&committed).await.unwrap().is_some());
    assert_eq!(store.counts().await.unwrap(), counts(1, 0, 0, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_be_reached_is_a_retryable_error() {
    let dir = std::env::temp_dir().join(format!("optout-relay-no-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut url = optout_relay::url::Url::parse("postgres:///postgres").unwrap();
    url.query_pairs_mut()
        .append_pair("host", &dir.display().to_string())
        .append_pair("user", "postgres");
    let url = url.to_string();
    let error = PostgresStore::builder(&url).open().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    assert!(error.is_retryable());
    let _ = std::fs::remove_dir_all(&dir);
}
