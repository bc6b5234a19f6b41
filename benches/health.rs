//! Endpoint health's cost: the whole pipeline (route, build, sign, store, send through the
//! worker and the reqwest transport to an in-process HTTP server on 127.0.0.1, record) with
//! endpoint health on (the default policy: every claim through the endpoint's gate, every
//! record settled on its endpoint) beside the same pipeline with it off, in the same run, on the
//! in-memory store and on SQLite.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{event, profile, router, server};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use optout_relay::ReqwestClient;
use optout_relay::health;
use optout_relay::*;

const EVENTS: usize = 2_000;
const CONCURRENCY: usize = 32;

#[derive(Clone, Copy)]
enum Store {
    Volatile,
    Sqlite,
}

/// A new worker on a new store (so that every event enters), EVENTS events submitted, every
/// outcome awaited.
async fn run(
    router: Arc<Router>,
    client: Arc<ReqwestClient>,
    events: &Arc<Vec<OptOutEvent>>,
    kind: Store,
    policy: health::EndpointPolicy,
    dir: &std::path::Path,
    round: usize,
) -> Duration {
    let store: Arc<dyn DeliveryStore> = match kind {
        Store::Volatile => Arc::new(VolatileStore::new().with_endpoint_policy(policy)),
        Store::Sqlite => Arc::new(
            SqliteStore::builder(dir.join(format!("health-{round}.db")))
                .synchronous(optout_relay::store::Synchronous::Normal)
                .endpoint_policy(policy)
                .open()
                .await
                .unwrap(),
        ),
    };
    let started = Instant::now();
    let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let expected = events.len();
    let worker = {
        let (delivered, done) = (Arc::clone(&delivered), Arc::clone(&done));
        Worker::builder(router, client, store)
            .max_in_flight(CONCURRENCY)
            .start_with_callback(move |outcome| {
                assert!(
                    matches!(outcome, Outcome::Delivered(_)),
                    "not delivered: {outcome:?}"
                );
                if delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == expected {
                    done.notify_one();
                }
            })
    };
    let profile = profile();
    for event in events.iter() {
        let _ = worker.submit(event, &profile).await.unwrap();
    }
    done.notified().await;
    let _ = worker.shutdown().await;
    started.elapsed()
}

fn health_cost(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(server());
    let router = router(addr);
    let client = Arc::new(
        ReqwestClient::builder()
            .destination_policy(DestinationPolicy::default().allow_loopback())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    );
    let events: Arc<Vec<OptOutEvent>> = Arc::new((0..EVENTS).map(event).collect());
    let dir =
        std::env::temp_dir().join(format!("optout-relay-bench-health-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let round = std::sync::atomic::AtomicUsize::new(0);

    let mut group = c.benchmark_group("health");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for (store, store_name) in [(Store::Volatile, "volatile"), (Store::Sqlite, "sqlite")] {
        for (on, name) in [(false, "off"), (true, "on")] {
            group.bench_function(format!("{store_name}_health_{name}"), |b| {
                b.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| {
                            let policy = if on {
                                health::EndpointPolicy::default()
                            } else {
                                health::EndpointPolicy::off()
                            };
                            let n = round.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            runtime.block_on(run(
                                Arc::clone(&router),
                                Arc::clone(&client),
                                &events,
                                store,
                                policy,
                                &dir,
                                n,
                            ))
                        })
                        .sum()
                })
            });
        }
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, health_cost);
criterion_main!(benches);
