//! Pipeline: route + build + sign + send through the worker and the reqwest transport to an
//! in-process HTTP server on 127.0.0.1, at a fixed concurrency, beside bare reqwest sending the
//! same requests, pre-built, to the same server at the same concurrency, in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{event, profile, router, server};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use optout_relay::ReqwestClient;
use optout_relay::*;

const EVENTS: usize = 2_000;
const CONCURRENCY: usize = 32;

/// The crate: a new worker on a new in-memory store (so that every event enters), EVENTS events
/// submitted, every outcome awaited.
async fn through_the_crate(
    router: Arc<Router>,
    client: Arc<ReqwestClient>,
    events: &Arc<Vec<OptOutEvent>>,
) -> Duration {
    through_the_crate_with(router, client, events).await
}

async fn through_the_crate_with(
    router: Arc<Router>,
    client: Arc<dyn HttpClient>,
    events: &Arc<Vec<OptOutEvent>>,
) -> Duration {
    let started = Instant::now();
    // Outcomes are counted by a callback; the last one wakes the bench.
    let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let expected = events.len();
    let worker = {
        let (delivered, done) = (Arc::clone(&delivered), Arc::clone(&done));
        // In memory for now: the durable stores are measured separately.
        let store: Arc<dyn DeliveryStore> = Arc::new(VolatileStore::new());
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

/// Experiment: the baseline plus an outcome channel read by the caller.
async fn bare_reqwest_with_outcomes(
    client: reqwest::Client,
    requests: Arc<Vec<http::Request<Vec<u8>>>>,
) -> Duration {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for lane in 0..CONCURRENCY {
        let (client, requests, tx) = (client.clone(), Arc::clone(&requests), tx.clone());
        tokio::spawn(async move {
            for request in requests.iter().skip(lane).step_by(CONCURRENCY) {
                let request = reqwest::Request::try_from(request.clone()).unwrap();
                let response = client.execute(request).await.unwrap();
                let _ = response.bytes().await.unwrap();
                tx.send(()).unwrap();
            }
        });
    }
    for _ in 0..requests.len() {
        rx.recv().await.unwrap();
    }
    started.elapsed()
}

/// The baseline: bare reqwest, the same requests already built, CONCURRENCY tasks in parallel.
async fn bare_reqwest(
    client: reqwest::Client,
    requests: Arc<Vec<http::Request<Vec<u8>>>>,
) -> Duration {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..CONCURRENCY {
        let (client, requests) = (client.clone(), Arc::clone(&requests));
        tasks.spawn(async move {
            for request in requests.iter().skip(lane).step_by(CONCURRENCY) {
                let request = reqwest::Request::try_from(request.clone()).unwrap();
                let response = client.execute(request).await.unwrap();
                assert_eq!(response.status(), 204);
                let _ = response.bytes().await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    started.elapsed()
}

fn pipeline(c: &mut Criterion) {
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
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let events: Arc<Vec<OptOutEvent>> = Arc::new((0..EVENTS).map(event).collect());
    let flow = &router.flows()[0];
    let now = Timestamp::now();
    let prebuilt: Arc<Vec<_>> = Arc::new(
        events
            .iter()
            .map(|e| {
                flow.build_request(router.catalog(), &profile(), e, now)
                    .unwrap()
                    .into_request()
            })
            .collect(),
    );

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("crate_route_build_sign_send", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| {
                    runtime.block_on(through_the_crate(
                        Arc::clone(&router),
                        Arc::clone(&client),
                        &events,
                    ))
                })
                .sum()
        })
    });
    group.bench_function("crate_instant_client", |b| {
        let instant: Arc<dyn HttpClient> = Arc::new(
            client_fn(|_r: http::Request<Vec<u8>>| async {
                Ok(http::Response::builder()
                    .status(204)
                    .body(Vec::new())
                    .unwrap())
            })
            // The flows point at the receiver on 127.0.0.1.
            .with_destination_policy(DestinationPolicy::default().allow_loopback()),
        );
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| {
                    runtime.block_on(through_the_crate_with(
                        Arc::clone(&router),
                        Arc::clone(&instant),
                        &events,
                    ))
                })
                .sum()
        })
    });
    group.bench_function("bare_reqwest_with_outcomes", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| {
                    runtime.block_on(bare_reqwest_with_outcomes(
                        bare.clone(),
                        Arc::clone(&prebuilt),
                    ))
                })
                .sum()
        })
    });
    group.bench_function("bare_reqwest_prebuilt", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| runtime.block_on(bare_reqwest(bare.clone(), Arc::clone(&prebuilt))))
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
