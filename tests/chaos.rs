//! Nothing lost under faults: thousands of events through the worker and the reqwest transport
//! to a server on 127.0.0.1 that fails a share of requests (500, 503, 429 with Retry-After, an
//! answer after the timeout, a connection closed mid-response), and a crash-and-resume run on a
//! SQLite store.
#![cfg(all(feature = "reqwest", feature = "tokio"))]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use optout_relay::ReqwestClient;
use optout_relay::delivery::Outcomes;
use optout_relay::health;
use optout_relay::jiff::SignedDuration;
use optout_relay::listen::EntryDecision;
use optout_relay::relay::FlowResult;
use optout_relay::*;
use support::{Answer, TestServer};

const EVENTS: usize = 2_000;

/// SplitMix64, seeded: the same faults on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// What the faulty receiver did, per webhook id.
#[derive(Default)]
struct Ledger {
    /// Every webhook id a request carried.
    seen: BTreeSet<String>,
    accepted: BTreeSet<String>,
    faults: BTreeMap<&'static str, usize>,
}

/// A receiver that fails `percent` % of requests with one of five faults, and accepts (204)
/// the rest. Only a 204 counts as accepted: a late answer is a 504, never an acceptance.
async fn faulty_receiver(percent: u64, seed: u64) -> (TestServer, Arc<Mutex<Ledger>>) {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let record = Arc::clone(&ledger);
    let mut rng = Rng(seed);
    let server = TestServer::start_with(Box::new(move |request| {
        let id = request.header("webhook-id").unwrap_or("-").to_owned();
        let mut ledger = record.lock().unwrap();
        ledger.seen.insert(id.clone());
        if rng.next() % 100 >= percent {
            ledger.accepted.insert(id);
            return Answer::status(204);
        }
        let (name, answer) = match rng.next() % 5 {
            0 => ("500", Answer::status(500)),
            1 => ("503", Answer::status(503)),
            2 => (
                "429 + Retry-After",
                Answer::with_header(429, "retry-after", "1"),
            ),
            3 => (
                "answer after the timeout",
                Answer::Delay(Duration::from_millis(600), Box::new(Answer::status(504))),
            ),
            _ => ("closed mid-response", Answer::CloseMidResponse),
        };
        *ledger.faults.entry(name).or_default() += 1;
        answer
    }))
    .await;
    (server, ledger)
}

fn router(server: &TestServer) -> Arc<Router> {
    let flow: Flow = serde_json::from_value(serde_json::json!({
        "id": "crm", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe", "email_abuse"]},
        "webhook": {"url": server.url("/optout"), "encoding": "json", "params": [
            {"name": "email", "source": "email"}, {"name": "kind", "source": "event_kind"},
            {"name": "subscription", "source": "subscription_id", "optional": true},
            {"name": "section", "source": "section_id"}]}
    }))
    .unwrap();
    Arc::new(Router::new([flow], &Catalog::default()).unwrap())
}

fn policy() -> RetryPolicy {
    RetryPolicy::builder()
        .schedule([10, 20, 40, 80, 160, 320, 640].map(SignedDuration::from_millis))
        .max_attempts(8)
        .retry_after_max(SignedDuration::from_secs(1))
        .build()
        .unwrap()
}

fn client() -> Arc<ReqwestClient> {
    Arc::new(
        ReqwestClient::builder()
            .destination_policy(DestinationPolicy::default().allow_loopback())
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
}

fn event(i: usize) -> (OptOutEvent, Profile) {
    let profile = Profile::new(ProfileId::new(format!("p-{}", i % 300)).unwrap())
        .with_email(Email::new(format!("person{}@example.com", i % 300)).unwrap());
    let section = SectionId::new("sec-1").unwrap();
    let event = if i % 7 == 0 {
        OptOutEvent::email_abuse(
            EventId::new(format!("evt-{i}")).unwrap(),
            profile.id.clone(),
            section,
            "2026-11-26T09:00:00Z".parse().unwrap(),
        )
    } else {
        let subscription = SubscriptionId::new(format!("{}", 100_000 + i % 40)).unwrap();
        OptOutEvent::email_unsubscribe(
            EventId::new(format!("evt-{i}")).unwrap(),
            profile.id.clone(),
            section,
            subscription,
            "2026-11-26T09:00:00Z".parse().unwrap(),
        )
    };
    (event, profile)
}

/// Reads outcomes until `expected` have arrived (or the time runs out).
/// Reads outcomes until `expected` deliveries have ended (outcomes of events that entered no
/// flow are kept too, but not counted).
async fn collect(outcomes: &mut Outcomes, expected: usize, into: &mut Vec<Outcome>) {
    while into.iter().filter(|o| o.delivery().is_some()).count() < expected {
        match tokio::time::timeout(Duration::from_secs(60), outcomes.recv()).await {
            Ok(Some(outcome)) => into.push(outcome),
            _ => break,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entered_event_ends_exactly_once_under_faults() {
    let (server, receiver) = faulty_receiver(30, 7).await;
    // The retry policy alone under faults: endpoint health off, so that a burst of faults that
    // opens the circuit does not hold deliveries past the end of the run (tests/health.rs and
    // tests/health_worker.rs test the circuit).
    let store = Arc::new(VolatileStore::new().with_endpoint_policy(health::EndpointPolicy::off()));
    let (worker, mut outcomes) = Worker::builder(router(&server), client(), store.clone())
        .policy(policy())
        .max_in_flight(64)
        .seed(11)
        .start();
    let mut entered = BTreeSet::new();
    for i in 0..EVENTS {
        let (event, profile) = event(i);
        let submitted = worker.submit(&event, &profile).await.unwrap();
        for entry in submitted.flows {
            match entry.result {
                FlowResult::Entered { webhook_id } => {
                    assert!(entered.insert(webhook_id.as_str().to_owned()))
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let mut ended = Vec::new();
    collect(&mut outcomes, entered.len(), &mut ended).await;
    let stopped = worker.shutdown().await;
    assert_eq!(stopped.abandoned, 0);
    let counts = store.counts().await.unwrap();

    let mut delivered = BTreeSet::new();
    let mut dead = BTreeSet::new();
    let mut attempts = 0;
    for outcome in &ended {
        let d = outcome.delivery().expect("every event entered its flow");
        attempts += d.attempt_count() as usize;
        let fresh = match outcome {
            Outcome::Delivered(_) => delivered.insert(d.webhook_id().as_str().to_owned()),
            _ => dead.insert(d.webhook_id().as_str().to_owned()),
        };
        assert!(fresh, "{} ended twice", d.webhook_id());
    }
    let receiver = receiver.lock().unwrap();
    let faults: usize = receiver.faults.values().sum();
    let lost = entered.len() - delivered.len() - dead.len() - counts.pending as usize;
    println!(
        "chaos: events {EVENTS}, entered {}, attempts {attempts}, faults injected {faults} {:?}, retries {}, delivered {}, dead-lettered {}, pending {}, lost {lost}",
        entered.len(),
        receiver.faults,
        attempts - ended.len(),
        delivered.len(),
        dead.len(),
        counts.pending,
    );
    assert_eq!(entered.len(), EVENTS);
    assert_eq!(lost, 0);
    assert_eq!(counts.pending, 0);
    assert_eq!(delivered.len() + dead.len(), entered.len());
    // The store recorded exactly what was reported.
    assert_eq!(counts.delivered as usize, delivered.len());
    assert_eq!(counts.dead_lettered as usize, dead.len());
    assert_eq!(counts.entries as usize, EVENTS);
    assert!(delivered.is_disjoint(&dead));
    // De-duplicated by webhook-id, what the receiver accepted is exactly what was delivered.
    assert_eq!(receiver.accepted, delivered);
    assert!(receiver.seen.is_subset(&entered));
    assert!(faults > EVENTS / 5, "faults were injected: {faults}");
    for kind in [
        "500",
        "503",
        "429 + Retry-After",
        "answer after the timeout",
        "closed mid-response",
    ] {
        assert!(
            receiver.faults.get(kind).copied().unwrap_or(0) > 0,
            "{kind} injected"
        );
    }
}

/// A directory under the system's temporary directory, removed when dropped.
#[cfg(feature = "sqlite")]
struct TempDir(std::path::PathBuf);

#[cfg(feature = "sqlite")]
impl TempDir {
    fn new(name: &str) -> Self {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "optout-relay-{name}-{}-{unique}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

#[cfg(feature = "sqlite")]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_way_carries_on_from_the_store_without_loss() {
    use optout_relay::store::{ListQuery, StateFilter};

    let dir = TempDir::new("chaos");
    let path = dir.0.join("relay.db");
    let (server, receiver) = faulty_receiver(30, 99).await;
    let store = Arc::new(
        SqliteStore::builder(&path)
            .endpoint_policy(health::EndpointPolicy::off())
            .open()
            .await
            .unwrap(),
    );
    let (worker, mut outcomes) = Worker::builder(router(&server), client(), store.clone())
        .policy(policy())
        .max_in_flight(32)
        .seed(0)
        .start();
    let mut entered = BTreeSet::new();
    for i in 0..500 {
        let (event, profile) = event(i);
        for entry in worker.submit(&event, &profile).await.unwrap().flows {
            if let FlowResult::Entered { webhook_id } = entry.result {
                entered.insert(webhook_id.as_str().to_owned());
            }
        }
    }
    assert_eq!(entered.len(), 500);
    // Crash: stop at once, in the middle of retries and attempts in flight.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let crashed = worker.abort().await;
    let mut ended = Vec::new();
    while let Some(outcome) = outcomes.try_recv() {
        ended.push(outcome);
    }
    let left = store.counts().await.unwrap();
    assert!(left.pending > 0, "the crash left work behind");
    assert_eq!(left.leased, 0, "the aborted attempts' claims were released");
    assert_eq!(
        left.delivered + left.dead_lettered,
        ended.len() as u64,
        "every delivery that ended before the crash was reported"
    );
    assert_eq!(
        (left.pending + left.delivered + left.dead_lettered) as usize,
        entered.len()
    );
    println!(
        "crash: {} ended before the crash, {} pending in the store, {} attempts abandoned",
        ended.len(),
        left.pending,
        crashed.abandoned
    );
    // The process is gone: only the file remains.
    drop(store);

    // A new worker on the same file carries on; re-delivered copies of the same events enter
    // nothing again.
    let store = Arc::new(
        SqliteStore::builder(&path)
            .endpoint_policy(health::EndpointPolicy::off())
            .open()
            .await
            .unwrap(),
    );
    let (worker, mut outcomes) = Worker::builder(router(&server), client(), store.clone())
        .policy(policy())
        .seed(0)
        .start();
    for i in 0..500 {
        let (event, profile) = event(i);
        let again = worker.submit(&event, &profile).await.unwrap();
        assert_eq!(again.flows.len(), 1);
        assert!(
            again
                .flows
                .iter()
                .all(|e| e.result == FlowResult::Refused(EntryDecision::AlreadyEntered)),
            "{again:?}"
        );
    }
    collect(&mut outcomes, entered.len(), &mut ended).await;
    let stopped = worker.shutdown().await;
    assert_eq!(stopped.abandoned, 0);

    let mut ids = BTreeSet::new();
    let mut delivered = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for outcome in &ended {
        let Some(d) = outcome.delivery() else {
            // The outcome stream reports each re-delivered copy too.
            match outcome {
                Outcome::Refused {
                    event,
                    decision: EntryDecision::AlreadyEntered,
                    ..
                } => assert!(refused.insert(event.clone()), "refused twice"),
                other => panic!("{other:?}"),
            }
            continue;
        };
        assert!(
            ids.insert(d.webhook_id().as_str().to_owned()),
            "ended twice"
        );
        if let Outcome::Delivered(d) = outcome {
            delivered.insert(d.webhook_id().as_str().to_owned());
        }
    }
    assert_eq!(
        ids, entered,
        "every entered delivery ended exactly once across the crash"
    );
    assert_eq!(refused.len(), 500, "every re-delivered copy was reported");
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.pending, 0);
    assert_eq!(counts.delivered as usize, delivered.len());
    assert_eq!(counts.dead_lettered as usize, ids.len() - delivered.len());
    assert_eq!(counts.entries as usize, entered.len());
    let stored: BTreeSet<String> = store
        .list(&ListQuery::new(StateFilter::Delivered).limit(10_000))
        .await
        .unwrap()
        .iter()
        .map(|d| d.webhook_id().as_str().to_owned())
        .collect();
    assert_eq!(stored, delivered);
    // Duplicates at the receiver only ever share a webhook-id: de-duplicated, they are exactly
    // the delivered set, and no request carried an id that was not entered.
    let receiver = receiver.lock().unwrap();
    assert_eq!(receiver.accepted, delivered);
    assert!(receiver.seen.is_subset(&entered));
    println!(
        "crash: after the restart {} delivered, {} dead-lettered, 0 lost",
        delivered.len(),
        ids.len() - delivered.len()
    );
}
