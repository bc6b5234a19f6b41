//! Endpoint health through the worker and the reqwest transport, in real time compressed: an
//! endpoint that is down several times longer than the retry policy allows loses nothing, a 410
//! pauses its endpoint and holds the rest, and an open circuit stops attempts to its endpoint
//! while a healthy endpoint's deliveries keep flowing.
#![cfg(all(feature = "reqwest", feature = "tokio"))]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use optout_relay::ReqwestClient;
use optout_relay::delivery::Outcomes;
use optout_relay::health::{Breaker, Endpoint, EndpointPolicy, EndpointState, PauseReason};
use optout_relay::jiff::SignedDuration;
use optout_relay::listen::{DeliveryOrder, FlowSettings};
use optout_relay::webhook::ParamSource;
use optout_relay::*;
use support::{Answer, Received, TestServer};

fn flow(id: &str, url: &str, order: DeliveryOrder) -> Flow {
    Flow::new(
        FlowId::new(id).unwrap(),
        SectionId::new("sec-1").unwrap(),
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        WebhookNode::builder(url)
            .param("email", ParamSource::Email)
            .param("event", ParamSource::EventId)
            .build()
            .unwrap(),
    )
    .with_settings(FlowSettings::default().with_order(order))
}

fn event(i: usize) -> (OptOutEvent, Profile) {
    let profile = format!("p-{}", i % 4);
    let event = OptOutEvent::email_unsubscribe(
        EventId::new(format!("e{i:03}")).unwrap(),
        ProfileId::new(&profile).unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:00:00Z".parse().unwrap(),
    );
    let profile = Profile::new(ProfileId::new(&profile).unwrap())
        .with_email(Email::new(format!("{profile}@example.com")).unwrap());
    (event, profile)
}

fn client() -> ReqwestClient {
    ReqwestClient::builder()
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// A retry policy compressed a thousand-fold and more: 3 attempts within 300 ms, then a dead
/// letter (without endpoint health).
fn retry() -> RetryPolicy {
    RetryPolicy::builder()
        .schedule([20, 40].map(SignedDuration::from_millis))
        .max_attempts(3)
        .max_age(SignedDuration::from_millis(300))
        .build()
        .unwrap()
}

/// Endpoint health compressed likewise: the circuit opens at 50 % of 5 attempts within 1 s, for
/// 50 ms (up to 200 ms); failing 400 ms pauses; a paused endpoint is probed every 100 ms.
fn health() -> EndpointPolicy {
    EndpointPolicy::default()
        .breaker(Some(Breaker {
            failure_percent: 50,
            window: Duration::from_secs(1),
            min_attempts: 5,
            cool_down: Duration::from_millis(50),
            max_cool_down: Duration::from_millis(200),
        }))
        .pause_after(Some(Duration::from_millis(400)))
        .probe_paused(Some(Duration::from_millis(100)))
}

/// The webhook id, event and time of each request a receiver got.
fn arrivals(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            let query = r.target.split('?').nth(1).unwrap_or("");
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("event="))
                .unwrap_or("-")
                .to_owned()
        })
        .collect()
}

async fn next(outcomes: &mut Outcomes) -> Outcome {
    tokio::time::timeout(Duration::from_secs(20), outcomes.recv())
        .await
        .expect("an outcome within 20 s")
        .expect("the worker runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_far_longer_than_the_retry_policy_loses_nothing_and_a_healthy_one_keeps_flowing()
 {
    let down_for = Duration::from_millis(1_500);
    let started = Instant::now();
    let hits_while_down = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&hits_while_down);
    let a = TestServer::start_with(Box::new(move |_| {
        let elapsed = started.elapsed();
        if elapsed < down_for {
            log.lock().unwrap().push(elapsed);
            Answer::status(503)
        } else {
            Answer::status(204)
        }
    }))
    .await;
    let b = TestServer::start([], Answer::status(204)).await;
    let router = Router::new(
        [
            flow("a", &a.url("/optout"), DeliveryOrder::PerProfile),
            flow("b", &b.url("/optout"), DeliveryOrder::Any),
        ],
        &Catalog::default(),
    )
    .unwrap();
    let store = Arc::new(VolatileStore::new().with_endpoint_policy(health()));
    let (worker, mut outcomes) = Worker::builder(router, client(), Arc::clone(&store))
        .policy(retry())
        .poll_interval(Duration::from_millis(20))
        .seed(3)
        .start();
    const EVENTS: usize = 40;
    for i in 0..EVENTS {
        let (event, profile) = event(i);
        assert_eq!(
            worker
                .submit(&event, &profile)
                .await
                .unwrap()
                .entered()
                .count(),
            2
        );
    }
    let mut delivered: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    let mut changes = Vec::new();
    let mut dead = 0;
    while delivered.values().map(Vec::len).sum::<usize>() < 2 * EVENTS {
        match next(&mut outcomes).await {
            Outcome::Delivered(d) => delivered
                .entry(d.flow().as_str().to_owned())
                .or_default()
                .push(Instant::now()),
            Outcome::DeadLettered(_) => dead += 1,
            Outcome::EndpointChanged(change) => changes.push((started.elapsed(), change)),
            other => panic!("{other:?}"),
        }
    }
    let _ = worker.shutdown().await;
    assert_eq!(dead, 0, "nothing dead-lettered");
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.delivered, counts.dead_lettered, counts.pending),
        (80, 0, 0)
    );
    // Every one of A's arrived once it recovered, each Profile's in the order submitted.
    let accepted: Vec<String> = arrivals(&a.received())
        .into_iter()
        .skip(hits_while_down.lock().unwrap().len())
        .collect();
    assert_eq!(accepted.len(), EVENTS, "{accepted:?}");
    for p in 0..4 {
        let mine: Vec<&String> = accepted
            .iter()
            .filter(|e| e[1..].parse::<usize>().unwrap() % 4 == p)
            .collect();
        let mut sorted = mine.clone();
        sorted.sort();
        assert_eq!(mine, sorted, "p-{p}");
    }
    // The circuit opened, and the endpoint was paused and came back.
    let endpoint = Endpoint::of(&a.url("/optout").parse().unwrap());
    assert!(changes.iter().all(|(_, c)| c.endpoint == endpoint));
    assert!(
        matches!(changes[0].1.to, EndpointState::Degraded { .. }),
        "{changes:?}"
    );
    assert!(changes.iter().any(|(_, c)| matches!(
        c.to,
        EndpointState::Paused {
            reason: PauseReason::Failing,
            ..
        }
    )));
    assert_eq!(changes.last().unwrap().1.to, EndpointState::Healthy);
    // The rates: attempts to A once its circuit opened, and B's deliveries meanwhile.
    let opened = changes[0].0;
    let hits = hits_while_down.lock().unwrap().clone();
    let after_open = hits.iter().filter(|t| **t > opened).count();
    let a_rate = after_open as f64 / (down_for - opened).as_secs_f64();
    let b_times = &delivered["b"];
    let b_span = b_times
        .last()
        .unwrap()
        .duration_since(started)
        .as_secs_f64();
    let b_rate = EVENTS as f64 / b_span;
    assert!(
        after_open < hits.len(),
        "fewer attempts once the circuit opened: {after_open} of {}",
        hits.len()
    );
    assert!(
        b_times.last().unwrap().duration_since(started) < down_for,
        "every one of B's was delivered while A was down"
    );
    eprintln!(
        "A down {down_for:?}: {} attempts to A, {} before its circuit opened at {opened:?}, {after_open} after it ({a_rate:.1}/s); B delivered all {EVENTS} in {b_span:.3} s ({b_rate:.0}/s) meanwhile; {} state changes; 0 dead-lettered",
        hits.len(),
        hits.len() - after_open,
        changes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_pauses_the_endpoint_holds_the_rest_and_resume_delivers_them() {
    let a = TestServer::start([Answer::status(410)], Answer::status(204)).await;
    let router = Router::new(
        [flow("a", &a.url("/optout"), DeliveryOrder::Any)],
        &Catalog::default(),
    )
    .unwrap();
    let store = Arc::new(VolatileStore::new().with_endpoint_policy(health()));
    let (worker, mut outcomes) = Worker::builder(router, client(), Arc::clone(&store))
        .policy(retry())
        .max_in_flight(1)
        .poll_interval(Duration::from_millis(20))
        .start();
    for i in 0..5 {
        let (event, profile) = event(i);
        assert_eq!(
            worker
                .submit(&event, &profile)
                .await
                .unwrap()
                .entered()
                .count(),
            1
        );
    }
    let Outcome::EndpointChanged(change) = next(&mut outcomes).await else {
        panic!("the 410 pauses the endpoint first")
    };
    assert!(matches!(
        change.to,
        EndpointState::Paused {
            reason: PauseReason::Gone,
            ..
        }
    ));
    // Held: nothing more is sent, nothing is dead-lettered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.received().len(), 1);
    assert!(outcomes.try_recv().is_none());
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead_lettered), (5, 0));
    // The operator resumes it: all five arrive.
    let resumed = store.resume(&change.endpoint).await.unwrap().unwrap();
    assert_eq!(resumed.to, EndpointState::Healthy);
    let mut delivered = 0;
    while delivered < 5 {
        match tokio::time::timeout(Duration::from_secs(5), outcomes.recv()).await {
            Ok(Some(Outcome::Delivered(_))) => delivered += 1,
            Ok(other) => panic!("{other:?}"),
            // The worker finds the released work at its poll interval.
            Err(_) => panic!("not delivered after resume"),
        }
    }
    let _ = worker.shutdown().await;
    assert_eq!(a.received().len(), 6);
    assert_eq!(store.counts().await.unwrap().delivered, 5);
}
