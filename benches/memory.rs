//! Memory: one million events through the worker on a [`VolatileStore`] with a transport that
//! answers at once. Peak resident memory (VmHWM) is read after 100,000 events and again after
//! 1,000,000, and the live heap (counted by this bench's global allocator) with them.
//!
//! The worker holds at most `max_in_flight` deliveries; everything else is in the store. A
//! `VolatileStore` keeps in memory:
//!
//! - the deliveries not yet delivered (the backlog): the host here submits at most `BACKLOG`
//!   events ahead of the deliveries, as a host consuming a queue at delivery pace does;
//! - the delivered ones, until purged: the runs purge every `BACKLOG` events
//!   ([`DeliveryStore::purge`]), as a host purges after a retention period;
//! - every entry (ids only), forever: they are what recognises a re-delivered copy of an event.
//!   This is the one part that grows with the number of events; its cost per entry is printed.
//!
//! A last run purges nothing and prints what a delivered delivery costs while it is kept.
//!
//! The outcome channel is bounded (`outcome_capacity`): by default it is unbounded, and unread
//! outcomes then take memory in proportion to how far the host's reading lags.
//!
//! First, with the `sqlite` feature: the worker on a `SqliteStore` whose receiver answers `503`,
//! so that every delivery stays pending, waiting for its retry: peak RSS after 20,000 and after
//! 200,000 pending deliveries shows that the worker's memory does not grow with the backlog (it
//! holds at most `max_in_flight` deliveries; the rest is in the file).
//!
//! `cargo bench --bench memory --features tokio` (Linux: reads /proc/self/status).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use optout_relay::jiff::SignedDuration;
use optout_relay::*;

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `pointer` was allocated by `System` with `layout`; the caller upholds the rest.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// How many events the host submits ahead of the deliveries, and how often it purges.
const BACKLOG: usize = 10_000;

fn live_heap_kib() -> u64 {
    (LIVE.load(Ordering::Relaxed) / 1024) as u64
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

/// Deletes every delivery of `store` that has ended.
async fn purge(store: &VolatileStore) -> u64 {
    let after_now = Timestamp::now()
        .checked_add(SignedDuration::from_secs(1))
        .expect("a time in range");
    store.purge(after_now).await.expect("a volatile store")
}

/// Sends events `from..to` through a worker on `store`, at most `BACKLOG` events ahead of the
/// deliveries; purges every `BACKLOG` events and at the end when `purging`.
async fn run(
    router: Arc<Router>,
    store: Arc<VolatileStore>,
    from: usize,
    to: usize,
    purging: bool,
) {
    let instant: Arc<dyn HttpClient> =
        Arc::new(client_fn(|_request: http::Request<Vec<u8>>| async {
            Ok(http::Response::builder()
                .status(204)
                .body(Vec::new())
                .expect("a valid response"))
        }));
    let (worker, mut outcomes) = Worker::builder(router, instant, store.clone())
        .max_in_flight(64)
        // Outcomes the host has not read yet wait in a bounded channel.
        .outcome_capacity(1024)
        .start();
    let expected = to - from;
    let (progress, mut delivered) = tokio::sync::watch::channel(0usize);
    let counter = tokio::spawn(async move {
        let mut count = 0;
        while count < expected {
            match outcomes.recv().await {
                Some(Outcome::Delivered(_)) => count += 1,
                other => panic!("not delivered: {other:?}"),
            }
            progress.send_replace(count);
        }
        count
    });
    let profile = Profile::new(ProfileId::new("p-ada").unwrap())
        .with_email(Email::new("ada+news@example.com").unwrap());
    let section = SectionId::new("sec-1").unwrap();
    let subscription = SubscriptionId::new("123456").unwrap();
    let at: Timestamp = "2026-11-26T09:30:00Z".parse().unwrap();
    for (submitted, i) in (from..to).enumerate() {
        if submitted > 0 && submitted % BACKLOG == 0 {
            delivered
                .wait_for(|count| count + BACKLOG >= submitted)
                .await
                .expect("the counter runs");
            if purging {
                purge(&store).await;
            }
        }
        let event = OptOutEvent::email_unsubscribe(
            EventId::new(format!("evt-{i}")).unwrap(),
            profile.id.clone(),
            section.clone(),
            subscription.clone(),
            at,
        );
        let entered = worker.submit(&event, &profile).await.unwrap();
        assert_eq!(entered.entered().count(), 1);
    }
    assert_eq!(counter.await.unwrap(), expected);
    let stopped = worker.shutdown().await;
    assert_eq!(stopped.abandoned, 0);
    if purging {
        purge(&store).await;
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.pending, 0);
}

/// Submits events `from..to` from 16 tasks through `worker`, whose receiver answers 503: every
/// delivery stays pending in the SQLite file.
#[cfg(feature = "sqlite")]
async fn backlog(worker: &Arc<Worker>, from: usize, to: usize) {
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let worker = Arc::clone(worker);
            tokio::spawn(async move {
                let section = SectionId::new("sec-1").unwrap();
                let subscription = SubscriptionId::new("123456").unwrap();
                let at: Timestamp = "2026-11-26T09:30:00Z".parse().unwrap();
                for i in (from..to).filter(|i| i % 16 == task) {
                    let profile = Profile::new(ProfileId::new(format!("p-{i}")).unwrap())
                        .with_email(Email::new(format!("person{i}@example.com")).unwrap());
                    let event = OptOutEvent::email_unsubscribe(
                        EventId::new(format!("backlog-{i}")).unwrap(),
                        profile.id.clone(),
                        section.clone(),
                        subscription.clone(),
                        at,
                    );
                    let submitted = worker.submit(&event, &profile).await.unwrap();
                    assert_eq!(submitted.entered().count(), 1);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_backlog(runtime: &tokio::runtime::Runtime, router: &Arc<Router>) {
    let dir = std::env::temp_dir().join(format!("optout-relay-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    runtime.block_on(async {
        let store = Arc::new(
            SqliteStore::builder(dir.join("relay.db"))
                .synchronous(store::Synchronous::Normal)
                .open()
                .await
                .unwrap(),
        );
        let down: Arc<dyn HttpClient> =
            Arc::new(client_fn(|_request: http::Request<Vec<u8>>| async {
                Ok(http::Response::builder()
                    .status(503)
                    .body(Vec::new())
                    .expect("a valid response"))
            }));
        let (worker, outcomes) = Worker::builder(Arc::clone(router), down, store.clone())
            .max_in_flight(64)
            .start();
        drop(outcomes);
        let worker = Arc::new(worker);
        let started = Instant::now();
        backlog(&worker, 0, 20_000).await;
        let (peak_20k, heap_20k) = (peak_rss_kib(), live_heap_kib());
        let pending_20k = store.counts().await.unwrap().pending;
        println!(
            "memory: worker + SqliteStore, receiver down, {pending_20k} pending: peak RSS {peak_20k} KiB, live heap {heap_20k} KiB ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        backlog(&worker, 20_000, 200_000).await;
        let (peak_200k, heap_200k) = (peak_rss_kib(), live_heap_kib());
        let pending_200k = store.counts().await.unwrap().pending;
        println!(
            "memory: worker + SqliteStore, receiver down, {pending_200k} pending: peak RSS {peak_200k} KiB, live heap {heap_200k} KiB ({:.1} s); growth for {} more pending deliveries: {} KiB",
            started.elapsed().as_secs_f64(),
            pending_200k - pending_20k,
            peak_200k.saturating_sub(peak_20k)
        );
        let Ok(worker) = Arc::try_unwrap(worker) else {
            panic!("every submitter has ended")
        };
        let _ = worker.abort().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let router = router();
    #[cfg(feature = "sqlite")]
    sqlite_backlog(&runtime, &router);
    let start = current_rss_kib();
    println!(
        "memory: resident at start {start} KiB, live heap {} KiB",
        live_heap_kib()
    );

    let store = Arc::new(VolatileStore::new());
    let started = Instant::now();
    runtime.block_on(run(
        Arc::clone(&router),
        Arc::clone(&store),
        0,
        100_000,
        true,
    ));
    let (peak_100k, heap_100k) = (peak_rss_kib(), live_heap_kib());
    println!(
        "memory: worker + VolatileStore purged every {BACKLOG} events, 100,000 events: peak RSS {peak_100k} KiB, live heap {heap_100k} KiB ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    runtime.block_on(run(
        Arc::clone(&router),
        Arc::clone(&store),
        100_000,
        1_000_000,
        true,
    ));
    let (peak_1m, heap_1m) = (peak_rss_kib(), live_heap_kib());
    let counts = runtime.block_on(store.counts()).unwrap();
    println!(
        "memory: worker + VolatileStore purged every {BACKLOG} events, 1,000,000 events: peak RSS {peak_1m} KiB, live heap {heap_1m} KiB ({:.1} s); the store holds {} entries and {} deliveries",
        started.elapsed().as_secs_f64(),
        counts.entries,
        counts.pending + counts.delivered + counts.dead_lettered,
    );
    println!(
        "memory: growth from 100,000 to 1,000,000 events: peak RSS {} KiB ({:.2} bytes per event), live heap {} KiB ({:.2} bytes per event): the store's entries, kept to recognise re-delivered copies",
        peak_1m.saturating_sub(peak_100k),
        peak_1m.saturating_sub(peak_100k) as f64 * 1024.0 / 900_000.0,
        heap_1m.saturating_sub(heap_100k),
        heap_1m.saturating_sub(heap_100k) as f64 * 1024.0 / 900_000.0,
    );
    drop(store);

    // Nothing purged: every delivered delivery stays in memory with its entry.
    let before = live_heap_kib();
    let kept = Arc::new(VolatileStore::new());
    runtime.block_on(run(
        Arc::clone(&router),
        Arc::clone(&kept),
        0,
        100_000,
        false,
    ));
    let after = live_heap_kib();
    let counts = runtime.block_on(kept.counts()).unwrap();
    println!(
        "memory: VolatileStore never purged, holding {} delivered deliveries and {} entries: {} KiB more live heap ({:.0} bytes per delivered event)",
        counts.delivered,
        counts.entries,
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 * 1024.0 / counts.delivered as f64
    );
}
