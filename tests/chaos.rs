//! Nothing lost under faults: thousands of events through the worker and the reqwest transport
//! to a server on 127.0.0.1 that fails a share of requests (500, 503, 429 with Retry-After, an
//! answer after the timeout, a connection closed mid-response), and a crash-and-resume run.
#![cfg(all(feature = "reqwest", feature = "tokio"))]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use optout_relay::jiff::SignedDuration;
use optout_relay::transport::ReqwestClient;
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
async fn collect(outcomes: &mut Outcomes, expected: usize, into: &mut Vec<Outcome>) {
    while into.len() < expected {
        match tokio::time::timeout(Duration::from_secs(60), outcomes.recv()).await {
            Ok(Some(outcome)) => into.push(outcome),
            _ => break,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entered_event_ends_exactly_once_under_faults() {
    let (server, receiver) = faulty_receiver(30, 7).await;
    let (worker, mut outcomes) = Worker::builder(router(&server), client())
        .destination_policy(DestinationPolicy::default().allow_loopback())
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
                FlowResult::Entered { webhook_id } => assert!(entered.insert(webhook_id)),
                other => panic!("{other:?}"),
            }
        }
    }
    let mut ended = Vec::new();
    collect(&mut outcomes, entered.len(), &mut ended).await;
    let stopped = worker.shutdown().await;

    let mut delivered = BTreeSet::new();
    let mut dead = BTreeSet::new();
    let mut attempts = 0;
    for outcome in &ended {
        let d = outcome.delivery();
        attempts += d.attempts().len();
        let fresh = match outcome {
            Outcome::Delivered(_) => delivered.insert(d.webhook_id().to_owned()),
            _ => dead.insert(d.webhook_id().to_owned()),
        };
        assert!(fresh, "{} ended twice", d.webhook_id());
    }
    let receiver = receiver.lock().unwrap();
    let faults: usize = receiver.faults.values().sum();
    let lost = entered.len() - delivered.len() - dead.len() - stopped.pending.len();
    println!(
        "chaos: events {EVENTS}, entered {}, attempts {attempts}, faults injected {faults} {:?}, retries {}, delivered {}, dead-lettered {}, pending {}, lost {lost}",
        entered.len(),
        receiver.faults,
        attempts - ended.len(),
        delivered.len(),
        dead.len(),
        stopped.pending.len(),
    );
    assert_eq!(entered.len(), EVENTS);
    assert_eq!(lost, 0);
    assert!(stopped.pending.is_empty());
    assert_eq!(delivered.len() + dead.len(), entered.len());
    assert!(delivered.is_disjoint(&dead));
    // De-duplicated by webhook-id, what the receiver accepted is exactly what was delivered.
    assert_eq!(receiver.accepted, delivered);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_way_resumes_from_serialized_state_without_loss() {
    let (server, receiver) = faulty_receiver(30, 99).await;
    let (worker, mut outcomes) = Worker::builder(router(&server), client())
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .policy(policy())
        .max_in_flight(32)
        .start();
    let mut entered = BTreeSet::new();
    for i in 0..500 {
        let (event, profile) = event(i);
        for entry in worker.submit(&event, &profile).await.unwrap().flows {
            if let FlowResult::Entered { webhook_id } = entry.result {
                entered.insert(webhook_id);
            }
        }
    }
    // Crash: stop at once, in the middle of retries and attempts in flight.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let crashed = worker.abort().await;
    let mut ended = Vec::new();
    while let Some(outcome) = outcomes.try_recv() {
        ended.push(outcome);
    }
    assert!(!crashed.pending.is_empty(), "the crash left work behind");
    // Everything the host must keep survives serialization.
    let saved_deliveries = serde_json::to_string(&crashed.pending).unwrap();
    let saved_ledger = serde_json::to_string(&crashed.ledger).unwrap();
    let pending: Vec<Delivery> = serde_json::from_str(&saved_deliveries).unwrap();
    let ledger: InMemoryLedger = serde_json::from_str(&saved_ledger).unwrap();
    let before_crash = ended.len();
    println!(
        "crash: {} ended before the crash, {} pending handed back",
        before_crash,
        pending.len()
    );

    // A new worker carries on; re-delivered copies of the same events enter nothing again.
    let (worker, mut outcomes) = Worker::builder(router(&server), client())
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .policy(policy())
        .ledger(ledger)
        .resume(pending)
        .start();
    for i in 0..500 {
        let (event, profile) = event(i);
        let again = worker.submit(&event, &profile).await.unwrap();
        assert!(
            again
                .flows
                .iter()
                .all(|e| e.result == FlowResult::Refused(EntryDecision::AlreadyEntered))
        );
    }
    collect(&mut outcomes, entered.len(), &mut ended).await;
    let stopped = worker.shutdown().await;
    assert!(stopped.pending.is_empty());

    let mut ids = BTreeSet::new();
    let mut delivered = BTreeSet::new();
    for outcome in &ended {
        assert!(
            ids.insert(outcome.delivery().webhook_id().to_owned()),
            "ended twice"
        );
        if let Outcome::Delivered(d) = outcome {
            delivered.insert(d.webhook_id().to_owned());
        }
    }
    assert_eq!(
        ids, entered,
        "every entered delivery ended exactly once across the crash"
    );
    // Duplicates at the receiver only ever share a webhook-id: de-duplicated, they are exactly
    // the delivered set.
    assert_eq!(receiver.lock().unwrap().accepted, delivered);
    println!(
        "crash: after resume {} delivered, {} dead-lettered, 0 lost",
        delivered.len(),
        ids.len() - delivered.len()
    );
}
