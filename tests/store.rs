//! The delivery stores' contract, checked on the volatile store and on the SQLite file store
//! (the PostgreSQL store is checked in tests/postgres.rs): idempotent admit, entry limits inside
//! the transaction, fenced leases, abandoned claims, replay, purge, and requests stored without
//! credentials or signatures.

#![cfg(feature = "signing")]

#[path = "support/stores.rs"]
mod stores;

use std::sync::Arc;
use std::time::Duration;

use stores::{Scratch, StoreUnderTest, stores_with};

use optout_relay::DeliveryStore;
use optout_relay::VolatileStore;
use optout_relay::delivery::DeadLetterReason;
use optout_relay::delivery::DeliveryState;
use optout_relay::delivery::Step;
#[cfg(feature = "tokio")]
use optout_relay::delivery::SubmitError;
use optout_relay::health::{self, EndpointPolicy};
use optout_relay::listen::EntryDecision;
use optout_relay::listen::FlowSettings;
#[cfg(feature = "tokio")]
use optout_relay::relay::Plan;
#[cfg(feature = "tokio")]
use optout_relay::relay::Submitted;
use optout_relay::relay::{self, FlowResult};
use optout_relay::store::ListQuery;
use optout_relay::store::StateFilter;
#[cfg(feature = "tokio")]
use optout_relay::store::StoreError;
use optout_relay::store::StoreErrorKind;
#[cfg(feature = "tokio")]
use optout_relay::testing::RecordingClient;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::SigningSecret;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookId;
use optout_relay::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn router(limit: EntryLimit) -> Router {
    let flow = Flow::new(
        FlowId::new("crm").unwrap(),
        SectionId::new("sec-1").unwrap(),
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        WebhookNode::builder("https://crm.example.com/optout")
            .param("email", ParamSource::Email)
            .bearer("bearer-token-not-stored")
            .sign_with(SECRET)
            .encoding(WebhookEncoding::Json)
            .build()
            .unwrap(),
    )
    .with_settings(FlowSettings::with_entry_limit(limit));
    Router::new([flow], &Catalog::default()).unwrap()
}

fn event(id: &str, subscription: &str) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new(id).unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new(subscription).unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}

fn profile() -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap()).with_email(Email::new("a+b@example.com").unwrap())
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// Plans the event `id` (Subscription `subscription`) of the test Profile now, and admits it.
async fn admit(
    store: &dyn DeliveryStore,
    router: &Router,
    id: &str,
    subscription: &str,
) -> relay::Submitted {
    let plan = relay::plan(router, &event(id, subscription), &profile(), now());
    store.admit(plan).await.unwrap()
}

fn ok() -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(204)
        .body(Vec::new())
        .unwrap()
}

/// Each store under test, fresh; the SQLite one in its own file.
async fn stores(name: &str) -> Vec<StoreUnderTest> {
    stores_with(name, EndpointPolicy::default()).await
}

#[tokio::test]
async fn admit_is_idempotent_and_stores_no_secret() {
    let router = router(EntryLimit::Unlimited);
    for (name, store, _scratch) in stores("idempotent").await {
        let e = event("evt-1", "123456");
        let first = store
            .admit(relay::plan(&router, &e, &profile(), now()))
            .await
            .unwrap();
        let id = WebhookId::derive(&FlowId::new("crm").unwrap(), e.id());
        assert_eq!(
            first.flows[0].result,
            FlowResult::Entered {
                webhook_id: id.clone()
            },
            "{name}"
        );
        let again = store
            .admit(relay::plan(&router, &e, &profile(), now()))
            .await
            .unwrap();
        assert_eq!(
            again.flows[0].result,
            FlowResult::Refused(EntryDecision::AlreadyEntered),
            "{name}"
        );
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.entries), (1, 1), "{name}");

        let stored = store.get(&id).await.unwrap().unwrap();
        let headers = stored.request().headers();
        for secret in ["authorization", "webhook-signature", "webhook-timestamp"] {
            assert!(headers.get(secret).is_none(), "{name}: {secret} was stored");
        }
        assert_eq!(headers["webhook-id"], id.as_str(), "{name}");
        assert_eq!(
            stored.request().body(),
            br#"{"email":"a+b@example.com"}"#,
            "{name}"
        );
        // The attempt gets them back: the bearer token and a signature for its second.
        let at: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let request =
            relay::prepare_attempt(&router, &stored, &DestinationPolicy::default(), at).unwrap();
        assert_eq!(
            request.headers()["authorization"],
            "Bearer bearer-token-not-stored",
            "{name}"
        );
        assert_eq!(
            request.headers()["webhook-timestamp"],
            "1795687200",
            "{name}"
        );
        let signature = request.headers()["webhook-signature"].to_str().unwrap();
        assert!(
            SigningSecret::new(SECRET).unwrap().verify(
                id.as_str(),
                1_795_687_200,
                request.body(),
                signature
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn entry_limit_is_decided_in_the_store_and_a_missing_value_enters_nothing() {
    let router = router(EntryLimit::at_most(1).unwrap());
    for (name, store, _scratch) in stores("limit").await {
        // A Profile without the Email the flow sends enters nothing...
        let bare = Profile::new(ProfileId::new("p-1").unwrap());
        let not_built = store
            .admit(relay::plan(&router, &event("evt-a", "111"), &bare, now()))
            .await
            .unwrap();
        assert!(
            matches!(not_built.flows[0].result, FlowResult::NotBuilt(_)),
            "{name}"
        );
        assert_eq!(store.counts().await.unwrap().entries, 0, "{name}");
        // ...so the same event enters once the data is fixed.
        let a = admit(&*store, &router, "evt-a", "111").await;
        assert_eq!(a.entered().count(), 1, "{name}");
        let b = admit(&*store, &router, "evt-b", "222").await;
        assert_eq!(
            b.flows[0].result,
            FlowResult::Refused(EntryDecision::LimitReached {
                limit: EntryLimit::at_most(1).unwrap(),
                entries: 1
            }),
            "{name}"
        );
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.entries), (1, 1), "{name}");
    }
}

#[tokio::test]
async fn claims_are_leased_and_fenced() {
    let router = router(EntryLimit::Unlimited);
    for (name, store, _scratch) in stores("lease").await {
        let submitted = admit(&*store, &router, "evt-1", "1").await;
        let id = submitted.entered().next().unwrap().to_owned();
        let first = store.claim(10, Duration::from_millis(300)).await.unwrap();
        assert_eq!(first.len(), 1, "{name}");
        assert_eq!(first[0].token.claim, 1, "{name}");
        assert_eq!(first[0].token.webhook_id, id.as_str(), "{name}");
        assert!(
            store
                .claim(10, Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_eq!(store.counts().await.unwrap().leased, 1, "{name}");

        // The lease expires; another worker takes the delivery over.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = store.claim(10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(second.len(), 1, "{name}");
        assert_eq!(second[0].token.claim, 2, "{name}");

        // The first worker's late result is refused; the second one's is kept.
        let mut late = first[0].delivery.clone();
        let _ = late.record(Ok(&ok()), now(), now(), &RetryPolicy::default(), 0);
        let refused = store.record(&first[0].token, &late).await.unwrap_err();
        assert_eq!(refused.kind(), StoreErrorKind::LeaseLost, "{name}");
        let mut current = second[0].delivery.clone();
        let _ = current.record(Ok(&ok()), now(), now(), &RetryPolicy::default(), 0);
        store.record(&second[0].token, &current).await.unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.delivered), (0, 1), "{name}");
        // Recording twice on one claim is refused too.
        let twice = store.record(&second[0].token, &current).await.unwrap_err();
        assert_eq!(twice.kind(), StoreErrorKind::LeaseLost, "{name}");
        let stored = store.get(&id).await.unwrap().unwrap();
        assert_eq!(stored.attempts().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn a_retry_waits_in_the_store_until_due_and_release_gives_work_back() {
    let router = router(EntryLimit::Unlimited);
    for (name, store, _scratch) in stores("retry").await {
        let _ = admit(&*store, &router, "evt-1", "1").await;
        let claim = store
            .claim(1, Duration::from_secs(60))
            .await
            .unwrap()
            .remove(0);
        // Released without an attempt: due again at once, not counted as abandoned.
        store.release(&claim.token).await.unwrap();
        let claim = store
            .claim(1, Duration::from_secs(60))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(claim.token.claim, 2, "{name}");

        let mut delivery = claim.delivery.clone();
        let unavailable = http::Response::builder()
            .status(503)
            .body(Vec::new())
            .unwrap();
        let started = now();
        let step = delivery.record(
            Ok(&unavailable),
            started,
            started,
            &RetryPolicy::default(),
            0,
        );
        let Step::RetryAt { at } = step else {
            panic!("{name}: {step:?}")
        };
        store.record(&claim.token, &delivery).await.unwrap();
        assert!(
            store
                .claim(10, Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        // The SQL stores keep times in milliseconds.
        let due = store.next_due().await.unwrap().unwrap();
        assert_eq!(due.as_millisecond(), at.as_millisecond(), "{name}");
        assert_eq!(store.counts().await.unwrap().pending, 1, "{name}");
    }
}

#[tokio::test]
async fn abandoned_claims_dead_letter_and_replay_brings_it_back() {
    let router = router(EntryLimit::Unlimited);
    for (name, store, _scratch) in stores("abandoned").await {
        let submitted = admit(&*store, &router, "evt-1", "1").await;
        let id = submitted.entered().next().unwrap().to_owned();
        // Three claims expire without an attempt (a worker that dies on this delivery).
        for claim in 1..=store::MAX_ABANDONED_CLAIMS {
            let claims = store.claim(1, Duration::from_millis(50)).await.unwrap();
            assert_eq!(claims.len(), 1, "{name}: claim {claim}");
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
        assert!(
            store
                .claim(1, Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        let dead = store
            .list(&ListQuery::new(StateFilter::DeadLettered))
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{name}");
        assert!(
            matches!(
                dead[0].state(),
                DeliveryState::DeadLettered {
                    reason: DeadLetterReason::Abandoned { claims: 3 },
                    ..
                }
            ),
            "{name}: {:?}",
            dead[0].state()
        );
        assert!(store.replay(&id).await.unwrap(), "{name}");
        assert!(!store.replay(&id).await.unwrap(), "{name}: replayed twice");
        let claims = store.claim(1, Duration::from_secs(60)).await.unwrap();
        assert_eq!(claims.len(), 1, "{name}");
        assert_eq!(claims[0].token.webhook_id, id.as_str(), "{name}");
    }
}

#[tokio::test]
async fn replay_gives_the_retry_policy_its_whole_allowance_again() {
    let router = router(EntryLimit::Unlimited);
    let policy = RetryPolicy::builder().max_attempts(1).build().unwrap();
    // Endpoint health off: with it on, a delivery that runs out of attempts without its
    // endpoint ever answering is held instead (tests/health.rs).
    for (name, store, _scratch) in stores_with("replay", EndpointPolicy::off()).await {
        let submitted = admit(&*store, &router, "evt-1", "1").await;
        let id = submitted.entered().next().unwrap().to_owned();
        let claim = store
            .claim(1, Duration::from_secs(60))
            .await
            .unwrap()
            .remove(0);
        let mut delivery = claim.delivery;
        let unavailable = http::Response::builder()
            .status(503)
            .body(Vec::new())
            .unwrap();
        let step = delivery.record(Ok(&unavailable), now(), now(), &policy, 0);
        assert_eq!(
            step,
            Step::DeadLetter {
                reason: DeadLetterReason::AttemptsExhausted { attempts: 1 }
            },
            "{name}"
        );
        store.record(&claim.token, &delivery).await.unwrap();
        assert_eq!(store.counts().await.unwrap().dead_lettered, 1, "{name}");

        assert!(store.replay(&id).await.unwrap(), "{name}");
        let claim = store
            .claim(1, Duration::from_secs(60))
            .await
            .unwrap()
            .remove(0);
        let mut delivery = claim.delivery;
        assert_eq!(delivery.attempts().len(), 1, "{name}: the history is kept");
        assert_eq!(
            delivery.record(Ok(&ok()), now(), now(), &policy, 0),
            Step::Delivered
        );
        store.record(&claim.token, &delivery).await.unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.delivered, counts.dead_lettered), (1, 0), "{name}");
    }
}

#[tokio::test]
async fn purge_deletes_finished_deliveries_only_and_list_pages() {
    let router = router(EntryLimit::Unlimited);
    for (name, store, _scratch) in stores("purge").await {
        let mut ids = Vec::new();
        for i in 0..5 {
            let submitted = admit(&*store, &router, &format!("evt-{i}"), "1").await;
            ids.push(submitted.entered().next().unwrap().to_owned());
        }
        ids.sort();
        let page = store
            .list(&ListQuery::new(StateFilter::Pending).limit(2))
            .await
            .unwrap();
        let page: Vec<&str> = page.iter().map(|d| d.webhook_id().as_str()).collect();
        assert_eq!(page, [ids[0].as_str(), ids[1].as_str()], "{name}");
        let next = store
            .list(
                &ListQuery::new(StateFilter::Pending)
                    .after(ids[1].as_str().to_owned())
                    .limit(2),
            )
            .await
            .unwrap();
        let next: Vec<&str> = next.iter().map(|d| d.webhook_id().as_str()).collect();
        assert_eq!(next, [ids[2].as_str(), ids[3].as_str()], "{name}");

        // Deliver three of them.
        let claims = store.claim(3, Duration::from_secs(60)).await.unwrap();
        for claim in claims {
            let mut delivery = claim.delivery;
            let _ = delivery.record(Ok(&ok()), now(), now(), &RetryPolicy::default(), 0);
            store.record(&claim.token, &delivery).await.unwrap();
        }
        assert_eq!(
            store
                .purge(now() - jiff::SignedDuration::from_hours(1))
                .await
                .unwrap(),
            0,
            "{name}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.purge(now()).await.unwrap(), 3, "{name}");
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (counts.pending, counts.delivered, counts.entries),
            (2, 0, 5),
            "{name}: entries stay, so re-delivered events are still recognised"
        );
    }
}

/// A delivery past its kept history is stored with its whole count: in the record and, for
/// SQLite, in the `attempts` column.
#[tokio::test]
async fn a_bounded_history_is_stored_with_its_whole_count() {
    let router = router(EntryLimit::Unlimited);
    let policy = RetryPolicy::builder()
        .jitter_percent(0)
        .max_attempts(optout_relay::delivery::MAX_ATTEMPTS)
        .build()
        .unwrap();
    for (name, store, scratch) in stores("history").await {
        let submitted = admit(&*store, &router, "evt-1", "1").await;
        let id = submitted.entered().next().unwrap().to_owned();
        let claim = store
            .claim(1, Duration::from_secs(60))
            .await
            .unwrap()
            .remove(0);
        let mut delivery = claim.delivery;
        let unavailable = http::Response::builder()
            .status(503)
            .body(Vec::new())
            .unwrap();
        let at = now();
        for _ in 0..30 {
            let step = delivery.record(Ok(&unavailable), at, at, &policy, 0);
            assert!(matches!(step, Step::RetryAt { .. }), "{name}: {step:?}");
        }
        store.record(&claim.token, &delivery).await.unwrap();
        let stored = store.get(&id).await.unwrap().unwrap();
        assert_eq!(
            (stored.attempt_count(), stored.attempts().len()),
            (30, 17),
            "{name}"
        );
        assert_eq!(stored, delivery, "{name}");
        #[cfg(feature = "sqlite")]
        if let Some(scratch) = scratch {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                "sqlite://{}",
                scratch.0.join("relay.db").display()
            ))
            .await
            .unwrap();
            let attempts: i64 = sqlx::query_scalar(
                "SELECT attempts FROM optout_relay_deliveries WHERE webhook_id = $1",
            )
            .bind(id.as_str())
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(attempts, 30, "{name}");
        }
        #[cfg(not(feature = "sqlite"))]
        let _ = scratch;
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_sqlite_file_survives_reopening_and_refuses_a_newer_schema() {
    let scratch = Scratch::new("reopen");
    let path = scratch.0.join("relay.db");
    let router = router(EntryLimit::Unlimited);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        let _ = admit(&store, &router, "evt-1", "1").await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.counts().await.unwrap().pending, 1);
    let again = admit(&store, &router, "evt-1", "1").await;
    assert_eq!(
        again.flows[0].result,
        FlowResult::Refused(EntryDecision::AlreadyEntered)
    );
    drop(store);

    // A file written by a newer version of the crate is refused, not misread.
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        path.display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE optout_relay_schema SET version = 99")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Schema, "{error}");
    assert!(error.message().contains("schema version 99"), "{error}");
}

/// A store that can be switched off: every operation then fails as a down database does.
#[cfg(feature = "tokio")]
struct Switchable {
    inner: VolatileStore,
    down: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "tokio")]
impl Switchable {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "connection refused",
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(feature = "tokio")]
#[async_trait::async_trait]
impl DeliveryStore for Switchable {
    async fn admit(&self, plan: Plan) -> Result<Submitted, StoreError> {
        self.check()?;
        self.inner.admit(plan).await
    }
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<store::Claim>, StoreError> {
        self.check()?;
        self.inner.claim(max, lease).await
    }
    async fn record(
        &self,
        claim: &store::ClaimToken,
        delivery: &Delivery,
    ) -> Result<store::Recorded, StoreError> {
        self.check()?;
        self.inner.record(claim, delivery).await
    }
    async fn release(&self, claim: &store::ClaimToken) -> Result<(), StoreError> {
        self.check()?;
        self.inner.release(claim).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.check()?;
        self.inner.next_due().await
    }
    async fn get(&self, webhook_id: &WebhookId) -> Result<Option<Delivery>, StoreError> {
        self.inner.get(webhook_id).await
    }
    async fn list(&self, query: &ListQuery) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list(query).await
    }
    async fn replay(&self, webhook_id: &WebhookId) -> Result<bool, StoreError> {
        self.inner.replay(webhook_id).await
    }
    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge(before).await
    }
    async fn counts(&self) -> Result<store::Counts, StoreError> {
        self.inner.counts().await
    }
    async fn endpoints(&self) -> Result<Vec<health::EndpointStatus>, StoreError> {
        self.inner.endpoints().await
    }
    async fn pause(
        &self,
        endpoint: &health::Endpoint,
    ) -> Result<Option<health::EndpointChange>, StoreError> {
        self.inner.pause(endpoint).await
    }
    async fn resume(
        &self,
        endpoint: &health::Endpoint,
    ) -> Result<Option<health::EndpointChange>, StoreError> {
        self.inner.resume(endpoint).await
    }
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn a_store_that_is_down_makes_submit_fail_loudly_and_nothing_is_half_done() {
    let store = Arc::new(Switchable {
        inner: VolatileStore::new(),
        down: std::sync::atomic::AtomicBool::new(true),
    });
    let client = Arc::new(RecordingClient::new());
    let (worker, mut outcomes) = Worker::builder(
        Arc::new(router(EntryLimit::Unlimited)),
        client.clone(),
        store.clone(),
    )
    .poll_interval(Duration::from_millis(20))
    .start();
    let e = event("evt-1", "1");
    let error = worker.submit(&e, &profile()).await.unwrap_err();
    let SubmitError::Store(error) = error else {
        panic!("{error:?}")
    };
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert!(error.is_retryable());
    assert_eq!(
        store.inner.counts().await.unwrap(),
        store::Counts::default()
    );
    // While the store is down nothing is sent; once it is back, the host submits again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(client.requests().is_empty());
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let submitted = worker.submit(&e, &profile()).await.unwrap();
    assert_eq!(submitted.entered().count(), 1);
    let outcome = tokio::time::timeout(Duration::from_secs(5), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Delivered(_)));
    assert_eq!(client.requests().len(), 1);
    let _ = worker.shutdown().await;
}

#[tokio::test]
async fn an_entry_planned_later_but_admitted_first_counts_against_the_limit() {
    // Two submitters: B planned at 10:00:00, A at 10:00:01, A admitted first. B must see A's
    // entry although it is "in B's future" (a regression: both entered when the count stopped
    // at the plan's time).
    let router = router(EntryLimit::at_most(1).unwrap());
    let early: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
    let late: Timestamp = "2026-11-26T10:00:01Z".parse().unwrap();
    for (name, store, _scratch) in stores("later").await {
        let b = relay::plan(&router, &event("evt-b", "2"), &profile(), early);
        let a = relay::plan(&router, &event("evt-a", "1"), &profile(), late);
        assert_eq!(store.admit(a).await.unwrap().entered().count(), 1, "{name}");
        let refused = store.admit(b).await.unwrap();
        assert_eq!(
            refused.flows[0].result,
            FlowResult::Refused(EntryDecision::LimitReached {
                limit: EntryLimit::at_most(1).unwrap(),
                entries: 1
            }),
            "{name}"
        );
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_operation_in_a_group_commit_fails_alone_and_leaves_nothing_half_done() {
    let scratch = Scratch::new("group");
    let path = scratch.0.join("relay.db");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    // A trigger makes the delivery insert of one event fail, after its entry was inserted.
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        path.display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON optout_relay_deliveries \
         WHEN NEW.event = 'evt-poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    let router = Arc::new(router(EntryLimit::Unlimited));
    // 200 admits at once, so that they share group commits, one of them poisoned, and records
    // on a claim that is not held.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (admitting, router) = (store.clone(), router.clone());
        tasks.push(tokio::spawn(async move {
            let id = if i == 100 {
                "evt-poison".to_owned()
            } else {
                format!("evt-{i}")
            };
            let plan = relay::plan(&router, &event(&id, "1"), &profile(), now());
            admitting.admit(plan).await.map(|s| s.entered().count())
        }));
        if i % 50 == 0 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let (flow, event) = (FlowId::new("crm").unwrap(), EventId::new("e").unwrap());
                let webhook_id = WebhookId::derive(&flow, &event);
                let stale = store::ClaimToken {
                    webhook_id: webhook_id.as_str().to_owned(),
                    claim: 1,
                };
                let delivery = Delivery::new(
                    webhook_id,
                    flow,
                    event,
                    http::Request::new(Vec::new()),
                    now(),
                );
                match store.record(&stale, &delivery).await {
                    Err(e) if e.kind() == StoreErrorKind::LeaseLost => Ok(0),
                    other => panic!("{other:?}"),
                }
            }));
        }
    }
    let mut entered = 0;
    let mut failed = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(n) => entered += n,
            Err(error) => failed.push(error),
        }
    }
    assert_eq!(entered, 199);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].message().contains("poisoned"), "{}", failed[0]);
    let counts = store.counts().await.unwrap();
    // The poisoned admit's entry was rolled back with its delivery.
    assert_eq!((counts.pending, counts.entries), (199, 199));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admits_sharing_a_commit_decide_as_if_one_by_one() {
    // Admitted at once, these share group commits in the SQLite store: the entries decided
    // earlier in a batch must count for the later ones.
    let limited = Arc::new(router(EntryLimit::at_most(2).unwrap()));
    let mut other = router(EntryLimit::Unlimited).flows()[0].clone();
    other.id = FlowId::new("crm-all").unwrap();
    let unlimited = Arc::new(Router::new([other], &Catalog::default()).unwrap());
    for (name, store, _scratch) in stores("batch").await {
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (store, limited, unlimited) = (store.clone(), limited.clone(), unlimited.clone());
            tasks.push(tokio::spawn(async move {
                // 50 events of one Profile under a limit of two; 50 copies of one event.
                let a = relay::plan(
                    &limited,
                    &event(&format!("evt-{i}"), "1"),
                    &profile(),
                    now(),
                );
                let b = relay::plan(&unlimited, &event("evt-same", "1"), &profile(), now());
                let (a, b) = tokio::join!(store.admit(a), store.admit(b));
                (a.unwrap(), b.unwrap())
            }));
        }
        let (mut limited_in, mut same_in, mut already, mut refused) = (0, 0, 0, 0);
        for task in tasks {
            let (a, b) = task.await.unwrap();
            match &a.flows[0].result {
                FlowResult::Entered { .. } => limited_in += 1,
                FlowResult::Refused(EntryDecision::LimitReached { entries: 2, .. }) => refused += 1,
                other => panic!("{name}: {other:?}"),
            }
            match &b.flows[0].result {
                FlowResult::Entered { .. } => same_in += 1,
                FlowResult::Refused(EntryDecision::AlreadyEntered) => already += 1,
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!((limited_in, refused), (2, 48), "{name}");
        assert_eq!((same_in, already), (1, 49), "{name}");
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.entries), (3, 3), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_are_each_fenced_by_their_own_claim() {
    let router = router(EntryLimit::Unlimited);
    for (name, store, _scratch) in stores("records").await {
        for i in 0..100 {
            let plan = relay::plan(&router, &event(&format!("evt-{i}"), "1"), &profile(), now());
            let _ = store.admit(plan).await.unwrap();
        }
        let claims = store.claim(100, Duration::from_secs(60)).await.unwrap();
        assert_eq!(claims.len(), 100, "{name}");
        // Recorded at once (sharing commits): every tenth with a claim number it does not hold.
        let mut tasks = Vec::new();
        for (i, claim) in claims.into_iter().enumerate() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut token = claim.token;
                if i % 10 == 0 {
                    token.claim += 1;
                }
                let mut delivery = claim.delivery;
                let _ = delivery.record(Ok(&ok()), now(), now(), &RetryPolicy::default(), 0);
                store.record(&token, &delivery).await.map_err(|e| e.kind())
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let lost = results
            .iter()
            .filter(|r| **r == Err(StoreErrorKind::LeaseLost))
            .count();
        assert_eq!((results.len() - lost, lost), (90, 10), "{name}");
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (counts.delivered, counts.pending, counts.leased),
            (90, 10, 10),
            "{name}"
        );
    }
}
