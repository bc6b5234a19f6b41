//! Route, build, sign, send and retry through the worker and the reqwest transport, against real
//! servers on 127.0.0.1.
#![cfg(all(feature = "reqwest", feature = "tokio"))]

mod support;

use std::sync::Arc;
use std::time::Duration;

use optout_relay::ReqwestClient;
use optout_relay::delivery::AttemptOutcome;
use optout_relay::delivery::DeadLetterReason;
use optout_relay::delivery::DeliveryState;
use optout_relay::jiff::SignedDuration;
use optout_relay::model::AttributeName;
use optout_relay::relay::FlowResult;
use optout_relay::transport::TransportErrorKind;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use support::{Answer, Received, TestServer};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn node(server: &TestServer, method: &str, encoding: &str, signed: bool) -> serde_json::Value {
    let mut node = serde_json::json!({
        "method": method,
        "url": server.url("/optout?source=platform&tag=a%20b"),
        "encoding": encoding,
        "params": [
            {"name": "email", "source": "email"},
            {"name": "subscription", "source": "subscription_id"},
            {"name": "note", "source": {"attribute": "note"}}
        ]
    });
    if signed {
        node["signing_secrets"] = serde_json::json!([SECRET]);
    }
    node
}

fn router_for(webhook: serde_json::Value) -> Arc<Router> {
    let flow: Flow = serde_json::from_value(serde_json::json!({
        "id": "f", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]}, "webhook": webhook
    }))
    .unwrap();
    Arc::new(Router::new([flow], &Catalog::default()).unwrap())
}

fn profile() -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(Email::new("a+b@example.com").unwrap())
        .with_attribute(AttributeName::new("note").unwrap(), "x & y = #1 é")
}

fn event(id: &str) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new(id).unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
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

fn fast() -> RetryPolicy {
    RetryPolicy::builder()
        .schedule([SignedDuration::from_millis(50)])
        .jitter_percent(0)
        .max_attempts(4)
        .build()
        .unwrap()
}

async fn one(router: Arc<Router>, policy: RetryPolicy) -> Outcome {
    let store = Arc::new(VolatileStore::new());
    let (worker, mut outcomes) = Worker::builder(router, client(), store.clone())
        .policy(policy)
        .start();
    let submitted = worker.submit(&event("evt-1"), &profile()).await.unwrap();
    assert!(
        matches!(submitted.flows[0].result, FlowResult::Entered { .. }),
        "{submitted:?}"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(20), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    let stopped = worker.shutdown().await;
    assert_eq!(stopped.abandoned, 0);
    // The one delivery ended, and the store holds it as reported.
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.delivered + counts.dead_lettered),
        (0, 1)
    );
    let delivery = outcome.delivery().expect("the event entered its flow");
    assert_eq!(
        store.get(delivery.webhook_id()).await.unwrap().as_ref(),
        Some(delivery)
    );
    outcome
}

const ID: &str = "msg_78cd6c1201d1e3c970b254220845d79f";
const QUERY: &str = "email=a%2Bb%40example.com&subscription=123456&note=x+%26+y+%3D+%231+%C3%A9";

fn headers(r: &Received) -> Vec<(&str, &str)> {
    r.headers
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "host" | "accept" | "webhook-timestamp" | "webhook-signature"
            )
        })
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// Method, encoding, expected request target, expected body, expected content type.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [u8],
    Option<&'static str>,
);

#[tokio::test]
async fn each_encoding_arrives_byte_exact() {
    assert_eq!(
        WebhookId::derive(&FlowId::new("f").unwrap(), &EventId::new("evt-1").unwrap()).as_str(),
        ID
    );
    let cases: [Case; 6] = [
        ("GET", "query", "/optout?source=platform&tag=a%20b&", b"", None),
        ("POST", "query", "/optout?source=platform&tag=a%20b&", b"", None),
        ("DELETE", "query", "/optout?source=platform&tag=a%20b&", b"", None),
        ("PUT", "form", "/optout?source=platform&tag=a%20b", QUERY.as_bytes(), Some("application/x-www-form-urlencoded")),
        (
            "PATCH",
            "json",
            "/optout?source=platform&tag=a%20b",
            r#"{"email":"a+b@example.com","subscription":"123456","note":"x & y = #1 é"}"#.as_bytes(),
            Some("application/json"),
        ),
        (
            "POST",
            "json_envelope",
            "/optout?source=platform&tag=a%20b",
            r#"{"type":"opt_out.email_unsubscribe","timestamp":"2026-11-26T09:30:00Z","data":{"email":"a+b@example.com","subscription":"123456","note":"x & y = #1 é"}}"#.as_bytes(),
            Some("application/json"),
        ),
    ];
    for (method, encoding, target, body, content_type) in cases {
        let server = TestServer::start([], Answer::status(204)).await;
        let outcome = one(
            router_for(node(&server, method, encoding, encoding != "query")),
            fast(),
        )
        .await;
        assert!(
            matches!(outcome, Outcome::Delivered(_)),
            "{encoding}: {outcome:?}"
        );
        let received = server.received();
        assert_eq!(received.len(), 1, "{encoding}");
        let r = &received[0];
        assert_eq!(r.method, method, "{encoding}");
        let expected_target = if encoding == "query" {
            format!("{target}{QUERY}")
        } else {
            target.to_owned()
        };
        assert_eq!(r.target, expected_target, "{encoding}");
        assert_eq!(r.body, body, "{encoding}");
        let mut expected: Vec<(&str, &str)> = Vec::new();
        if let Some(ct) = content_type {
            expected.push(("content-type", ct));
        }
        expected.push(("webhook-id", ID));
        let length = body.len().to_string();
        // hyper sends no Content-Length for an empty body, whatever the method.
        if !body.is_empty() {
            expected.push(("content-length", &length));
        }
        assert_eq!(headers(r), expected, "{method} {encoding}: {:?}", r.headers);
        if encoding != "query" {
            // Signed at the time of the attempt, verifiable by an independent verifier.
            let mut map = http::HeaderMap::new();
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                map.insert(name, r.header(name).unwrap().parse().unwrap());
            }
            standardwebhooks::Webhook::new(SECRET)
                .unwrap()
                .verify(&r.body, &map)
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_503_then_success() {
    let server = TestServer::start([Answer::status(503)], Answer::status(200)).await;
    let outcome = one(router_for(node(&server, "POST", "json", false)), fast()).await;
    let Outcome::Delivered(d) = outcome else {
        panic!("{outcome:?}")
    };
    let statuses: Vec<_> = d.attempts().iter().map(|a| a.outcome.clone()).collect();
    assert!(matches!(
        statuses[0],
        AttemptOutcome::Response { status: 503, .. }
    ));
    assert!(matches!(
        statuses[1],
        AttemptOutcome::Response { status: 200, .. }
    ));
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn retry_after_is_honoured_under_a_compressed_schedule() {
    let server = TestServer::start(
        [Answer::with_header(429, "retry-after", "1")],
        Answer::status(204),
    )
    .await;
    let outcome = one(router_for(node(&server, "POST", "form", false)), fast()).await;
    let Outcome::Delivered(d) = outcome else {
        panic!("{outcome:?}")
    };
    let gap = d.attempts()[1]
        .started_at
        .duration_since(d.attempts()[0].started_at);
    // The schedule says 50 ms; the receiver asked for 1 s.
    assert!(
        gap >= SignedDuration::from_millis(1000),
        "retried after {gap:?}"
    );
    assert!(
        gap < SignedDuration::from_millis(2500),
        "retried after {gap:?}"
    );
}

#[tokio::test]
async fn gone_is_dead_lettered_at_once() {
    let server = TestServer::start([], Answer::status(410)).await;
    let outcome = one(router_for(node(&server, "POST", "json", false)), fast()).await;
    let Outcome::DeadLettered(d) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(d.attempts().len(), 1);
    assert!(matches!(
        d.state(),
        DeliveryState::DeadLettered {
            reason: DeadLetterReason::Gone,
            ..
        }
    ));
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_timeout_is_retried_and_a_redirect_is_not_followed() {
    let slow = Answer::Delay(Duration::from_secs(2), Box::new(Answer::status(200)));
    let server = TestServer::start([slow], Answer::status(204)).await;
    let outcome = one(router_for(node(&server, "POST", "json", false)), fast()).await;
    let Outcome::Delivered(d) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(matches!(
        d.attempts()[0].outcome,
        AttemptOutcome::Error {
            kind: TransportErrorKind::Timeout,
            ..
        }
    ));
    assert_eq!(d.attempts().len(), 2);

    let redirect = TestServer::start([], Answer::with_header(302, "location", "/elsewhere")).await;
    let outcome = one(router_for(node(&redirect, "POST", "json", false)), fast()).await;
    let Outcome::DeadLettered(d) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(matches!(
        d.state(),
        DeliveryState::DeadLettered {
            reason: DeadLetterReason::Rejected { status: 302 },
            ..
        }
    ));
    assert_eq!(redirect.received().len(), 1);
}

#[tokio::test]
async fn refused_connections_are_retried_until_the_attempts_run_out() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let webhook = serde_json::json!({
        "url": format!("http://127.0.0.1:{port}/optout"), "encoding": "json",
        "params": [{"name": "email", "source": "email"}, {"name": "subscription", "source": "subscription_id"}]
    });
    let outcome = one(router_for(webhook), fast()).await;
    let Outcome::DeadLettered(d) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(d.attempts().len(), 4);
    assert!(d.attempts().iter().all(|a| matches!(
        a.outcome,
        AttemptOutcome::Error {
            kind: TransportErrorKind::Connect,
            ..
        }
    )));
    assert!(matches!(
        d.state(),
        DeliveryState::DeadLettered {
            reason: DeadLetterReason::AttemptsExhausted { attempts: 4 },
            ..
        }
    ));
}
