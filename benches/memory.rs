//! Memory: one million events through the worker with a transport that answers at once. Peak
//! resident memory (VmHWM) is read after 100,000 events and again after 1,000,000: the worker
//! holds at most `max_in_flight` deliveries, so the peak must not grow with the number of
//! events.
//!
//! The outcome channel is bounded (`outcome_capacity`): by default it is unbounded, and unread
//! outcomes then take memory in proportion to how far the host's reading lags.
//!
//! The entry ledger is the one part that remembers every event (to recognise re-delivered
//! copies); the worker run uses a ledger that keeps nothing, and a last run measures what
//! `InMemoryLedger` costs per entry.
//!
//! `cargo bench --bench memory --features tokio` (Linux: reads /proc/self/status).

use std::sync::Arc;
use std::time::Instant;

use optout_relay::*;

/// Lets every entry in and remembers nothing.
struct Forgetful;

impl EntryLedger for Forgetful {
    fn try_enter(
        &mut self,
        _request: EntryRequest<'_>,
        _limit: EntryLimit,
        _now: Timestamp,
    ) -> EntryDecision {
        EntryDecision::Entered { entry: 1 }
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn current_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn router() -> Arc<Router> {
    let flow: Flow = serde_json::from_value(serde_json::json!({
        "id": "crm", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]},
        "webhook": {"url": "https://crm.example.com/optout", "encoding": "json", "params": [
            {"name": "email", "source": "email"}, {"name": "subscription", "source": "subscription_id"},
            {"name": "event", "source": "event_id"}],
            "signing_secrets": ["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]}
    }))
    .unwrap();
    Arc::new(Router::new([flow], &Catalog::default()).unwrap())
}

/// Sends events `from..to` through a worker with `ledger`; returns the ledger.
async fn run<L: EntryLedger + Send + 'static>(
    router: Arc<Router>,
    ledger: L,
    from: usize,
    to: usize,
) -> L {
    let instant: Arc<dyn HttpClient> =
        Arc::new(client_fn(|_request: http::Request<Vec<u8>>| async {
            Ok(http::Response::builder()
                .status(204)
                .body(Vec::new())
                .expect("a valid response"))
        }));
    let (worker, mut outcomes) = Worker::builder(router, instant)
        .ledger(ledger)
        .max_in_flight(64)
        // Outcomes the host has not read yet wait in a bounded channel.
        .outcome_capacity(1024)
        .start();
    let expected = to - from;
    let counter = tokio::spawn(async move {
        let mut delivered = 0;
        while delivered < expected {
            match outcomes.recv().await {
                Some(Outcome::Delivered(_)) => delivered += 1,
                other => panic!("not delivered: {other:?}"),
            }
        }
        delivered
    });
    let profile = Profile::new(ProfileId::new("p-ada").unwrap())
        .with_email(Email::new("ada+news@example.com").unwrap());
    let section = SectionId::new("sec-1").unwrap();
    let subscription = SubscriptionId::new("123456").unwrap();
    let at: Timestamp = "2026-11-26T09:30:00Z".parse().unwrap();
    for i in from..to {
        let event = OptOutEvent::email_unsubscribe(
            EventId::new(format!("evt-{i}")).unwrap(),
            profile.id.clone(),
            section.clone(),
            subscription.clone(),
            at,
        );
        let _ = worker.submit(&event, &profile).await.unwrap();
    }
    assert_eq!(counter.await.unwrap(), expected);
    let stopped = worker.shutdown().await;
    assert!(stopped.pending.is_empty());
    stopped.ledger
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let router = router();
    let start = current_rss_kib();
    println!("memory: resident at start {start} KiB");

    let started = Instant::now();
    let ledger = runtime.block_on(run(Arc::clone(&router), Forgetful, 0, 100_000));
    let after_100k = peak_rss_kib();
    println!(
        "memory: worker, 100,000 events: peak RSS {after_100k} KiB ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let _ = runtime.block_on(run(Arc::clone(&router), ledger, 100_000, 1_000_000));
    let after_1m = peak_rss_kib();
    println!(
        "memory: worker, 1,000,000 events: peak RSS {after_1m} KiB ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "memory: growth from 100,000 to 1,000,000 events: {} KiB ({:.2} bytes per event)",
        after_1m.saturating_sub(after_100k),
        after_1m.saturating_sub(after_100k) as f64 * 1024.0 / 900_000.0
    );

    let before = current_rss_kib();
    let ledger = runtime.block_on(run(
        Arc::clone(&router),
        InMemoryLedger::new(),
        0,
        1_000_000,
    ));
    let after = current_rss_kib();
    println!(
        "memory: InMemoryLedger holding {} entries: {} KiB more resident ({:.0} bytes per entry)",
        ledger.len(),
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 * 1024.0 / ledger.len() as f64
    );
}
