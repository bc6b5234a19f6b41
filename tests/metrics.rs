//! The `metrics` feature: what the worker counts, times and gauges, with exact values, and
//! labels that never carry a query string, a secret or personal data.
#![cfg(all(feature = "metrics", feature = "tokio"))]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use optout_relay::health::EndpointPolicy;
use optout_relay::jiff::SignedDuration;
use optout_relay::metrics;
use optout_relay::*;

const FLOWS: &str = r#"{"version": 1, "flows": [
  {"id": "ok", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]},
   "webhook": {"url": "https://ok.example.com/optout?token=s3cret-token", "encoding": "query",
               "params": [{"name": "email", "source": "email"}]}},
  {"id": "rejected", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]},
   "webhook": {"url": "https://rejected.example.com/optout?token=s3cret-token", "encoding": "query",
               "params": [{"name": "email", "source": "email"}]}},
  {"id": "gone", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]},
   "webhook": {"url": "https://gone.example.com/optout?token=s3cret-token", "encoding": "query",
               "params": [{"name": "email", "source": "email"}]}},
  {"id": "flaky", "section": "sec-1", "listen": {"kinds": ["email_abuse"]},
   "webhook": {"url": "https://flaky.example.com:8443/optout?token=s3cret-token", "encoding": "query",
               "params": [{"name": "email", "source": "email"}]}}
]}"#;

const EMAIL: &str = "ada.lovelace@example.org";

fn profile() -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap()).with_email(Email::new(EMAIL).unwrap())
}

fn unsubscribe(i: usize) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new(format!("e{i}")).unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        Timestamp::now(),
    )
}

/// Each metric by (kind, name, sorted labels).
type Seen = BTreeMap<(String, String, Vec<(String, String)>), DebugValue>;

fn seen(snapshotter: &metrics_util::debugging::Snapshotter) -> Seen {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value): (CompositeKey, _, _, _)| {
            let kind = match key.kind() {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                MetricKind::Histogram => "histogram",
            };
            let mut labels: Vec<(String, String)> = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            (
                (kind.to_owned(), key.key().name().to_owned(), labels),
                value,
            )
        })
        .collect()
}

fn counter(seen: &Seen, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    match seen.get(&("counter".to_owned(), name.to_owned(), labels)) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{name} is not a counter: {other:?}"),
    }
}

fn gauge(seen: &Seen, name: &str, endpoint: &str) -> f64 {
    let labels = vec![("endpoint".to_owned(), endpoint.to_owned())];
    match seen.get(&("gauge".to_owned(), name.to_owned(), labels)) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{name} for {endpoint}: {other:?}"),
    }
}

fn histogram(seen: &Seen, name: &str, endpoint: &str) -> Vec<f64> {
    let labels = vec![("endpoint".to_owned(), endpoint.to_owned())];
    match seen.get(&("histogram".to_owned(), name.to_owned(), labels)) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
        other => panic!("{name} for {endpoint}: {other:?}"),
    }
}

const OK: &str = "https://ok.example.com/optout";
const REJECTED: &str = "https://rejected.example.com/optout";
const GONE: &str = "https://gone.example.com/optout";
const FLAKY: &str = "https://flaky.example.com:8443/optout";

#[tokio::test]
async fn the_worker_counts_times_and_gauges_every_endpoint_without_personal_data() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    ::metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
    metrics::describe();

    let flows = FlowFile::from_json(FLOWS).unwrap();
    let router = Router::new(flows.flows, &Catalog::default()).unwrap();
    let client = client_fn(|request: http::Request<Vec<u8>>| async move {
        let status = match request.uri().host() {
            Some("ok.example.com") => 204,
            Some("rejected.example.com") => 400,
            Some("gone.example.com") => 410,
            _ => 503,
        };
        Ok(http::Response::builder()
            .status(status)
            .body(Vec::new())
            .unwrap())
    });
    let store = Arc::new(VolatileStore::new().with_endpoint_policy(EndpointPolicy::default()));
    let retry = RetryPolicy::builder()
        .schedule([SignedDuration::from_millis(10)])
        .max_attempts(2)
        .max_age(SignedDuration::from_secs(60))
        .build()
        .unwrap();
    // One attempt at a time, so that the 410 pauses its endpoint before another of its
    // deliveries is claimed.
    let (worker, mut outcomes) = Worker::builder(router, client, Arc::clone(&store))
        .policy(retry)
        .max_in_flight(1)
        .metrics_every(Duration::from_millis(100))
        .start();
    for i in 0..3 {
        let submitted = worker.submit(&unsubscribe(i), &profile()).await.unwrap();
        assert_eq!(submitted.entered().count(), 3);
    }
    let abuse = OptOutEvent::email_abuse(
        EventId::new("abuse-1").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        Timestamp::now(),
    );
    let submitted = worker.submit(&abuse, &profile()).await.unwrap();
    assert_eq!(submitted.entered().count(), 1);
    // 3 delivered (ok), 3 dead-lettered (rejected), 2 endpoints paused (gone, flaky).
    let (mut delivered, mut dead, mut changes) = (0, 0, 0);
    while (delivered, dead, changes) != (3, 3, 2) {
        match tokio::time::timeout(Duration::from_secs(10), outcomes.recv())
            .await
            .expect("every outcome within 10 s")
        {
            Some(Outcome::Delivered(_)) => delivered += 1,
            Some(Outcome::DeadLettered(_)) => dead += 1,
            Some(Outcome::EndpointChanged(_)) => changes += 1,
            other => panic!("unexpected: {other:?}"),
        }
    }
    // Two gauge reports at least after the last change.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let _stopped = worker.shutdown().await;
    let seen = seen(&snapshotter);

    for (endpoint, admitted) in [(OK, 3), (REJECTED, 3), (GONE, 3), (FLAKY, 1)] {
        assert_eq!(
            counter(&seen, metrics::ADMITTED, &[("endpoint", endpoint)]),
            admitted,
            "{endpoint}"
        );
    }
    let attempts = |e| counter(&seen, metrics::ATTEMPTS, &[("endpoint", e)]);
    assert_eq!(
        [
            attempts(OK),
            attempts(REJECTED),
            attempts(GONE),
            attempts(FLAKY)
        ],
        [3, 3, 1, 2]
    );
    assert_eq!(counter(&seen, metrics::DELIVERED, &[("endpoint", OK)]), 3);
    assert_eq!(
        counter(
            &seen,
            metrics::DEAD_LETTERED,
            &[("endpoint", REJECTED), ("reason", "rejected")]
        ),
        3
    );
    assert_eq!(counter(&seen, metrics::RETRIED, &[("endpoint", FLAKY)]), 1);
    assert_eq!(counter(&seen, metrics::HELD, &[("endpoint", FLAKY)]), 1);
    assert_eq!(counter(&seen, metrics::HELD, &[("endpoint", GONE)]), 1);
    for endpoint in [GONE, FLAKY] {
        assert_eq!(
            counter(
                &seen,
                metrics::STATE_CHANGES,
                &[
                    ("endpoint", endpoint),
                    ("from", "healthy"),
                    ("to", "paused")
                ]
            ),
            1,
            "{endpoint}"
        );
    }
    assert_eq!(histogram(&seen, metrics::ATTEMPT_SECONDS, OK).len(), 3);
    assert_eq!(histogram(&seen, metrics::ATTEMPT_SECONDS, FLAKY).len(), 2);
    assert!(
        histogram(&seen, metrics::ATTEMPT_SECONDS, OK)
            .iter()
            .all(|s| (0.0..1.0).contains(s))
    );

    // The gauges: the paused endpoints hold their deliveries, the others have none pending.
    let gauges = |e| {
        [
            gauge(&seen, metrics::PENDING, e),
            gauge(&seen, metrics::IN_FLIGHT, e),
            gauge(&seen, metrics::PAUSED, e),
            gauge(&seen, metrics::STATE, e),
        ]
    };
    assert_eq!(gauges(OK), [0.0, 0.0, 0.0, 0.0]);
    assert_eq!(gauges(REJECTED), [0.0, 0.0, 0.0, 0.0]);
    assert_eq!(gauges(GONE), [3.0, 0.0, 3.0, 2.0]);
    assert_eq!(gauges(FLAKY), [1.0, 0.0, 1.0, 2.0]);

    // No label anywhere carries the query string, the secret in it, or the Profile's email.
    for (_, name, labels) in seen.keys() {
        for (key, value) in labels {
            for forbidden in ["?", "token", "s3cret", EMAIL, "ada", "lovelace", "%40"] {
                assert!(
                    !value.contains(forbidden),
                    "{name}: label {key}={value} holds {forbidden:?}"
                );
            }
        }
    }
}
