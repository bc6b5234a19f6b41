//! The reqwest transport against real servers on 127.0.0.1.
#![cfg(feature = "reqwest")]

mod support;

use std::time::Duration;

use optout_relay::ReqwestClient;
use optout_relay::delivery::DeadLetterReason;
use optout_relay::delivery::StatusClass;
use optout_relay::delivery::Step;
use optout_relay::transport::TransportErrorKind;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use support::{Answer, TestServer};

fn client() -> ReqwestClient {
    ReqwestClient::builder()
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn post(url: &str, body: &[u8]) -> http::Request<Vec<u8>> {
    http::Request::post(url)
        .header("content-type", "application/json")
        .header("webhook-id", "msg_1")
        .body(body.to_vec())
        .unwrap()
}

#[tokio::test]
async fn a_request_arrives_byte_exact_and_the_response_comes_back() {
    let server = TestServer::start(
        [],
        Answer::Status(
            202,
            vec![("x-answer".into(), "yes".into())],
            b"queued".to_vec(),
        ),
    )
    .await;
    let url = server.url("/optout?source=platform&email=a%2Bb%40example.com");
    let response = client()
        .send(post(&url, br#"{"email":"a+b@example.com"}"#))
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-answer"], "yes");
    assert_eq!(response.body(), b"queued");
    let received = server.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target,
        "/optout?source=platform&email=a%2Bb%40example.com"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("webhook-id"), Some("msg_1"));
    assert_eq!(r.header("content-length"), Some("27"));
    assert_eq!(r.body, br#"{"email":"a+b@example.com"}"#);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = TestServer::start([], Answer::with_header(302, "location", "/elsewhere")).await;
    let response = client()
        .send(post(&server.url("/optout"), b"{}"))
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(server.received().len(), 1);
    let (flow, event) = (FlowId::new("f").unwrap(), EventId::new("e").unwrap());
    let mut delivery = Delivery::new(
        WebhookId::derive(&flow, &event),
        flow,
        event,
        post(&server.url("/optout"), b"{}"),
        Timestamp::UNIX_EPOCH,
    );
    let step = delivery.record(
        Ok(&response),
        Timestamp::UNIX_EPOCH,
        Timestamp::UNIX_EPOCH,
        &RetryPolicy::default(),
        0,
    );
    assert_eq!(
        step,
        Step::DeadLetter {
            reason: DeadLetterReason::Rejected { status: 302 }
        }
    );
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let server = TestServer::start(
        [],
        Answer::Delay(Duration::from_secs(3), Box::new(Answer::status(200))),
    )
    .await;
    let started = std::time::Instant::now();
    let error = client()
        .send(post(&server.url("/slow"), b"{}"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Timeout, "{error}");
    assert!(error.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        !error.message().contains("127.0.0.1"),
        "the URL must not leak: {error}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/optout?email=a%2Bb%40example.com");
    let error = client().send(post(&url, b"{}")).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Connect, "{error}");
    assert!(error.is_retryable());
    assert!(
        !error.message().contains("example.com"),
        "the URL must not leak: {error}"
    );
}

#[tokio::test]
async fn a_connection_closed_mid_response_is_retryable() {
    let server = TestServer::start([], Answer::CloseMidResponse).await;
    let error = client()
        .send(post(&server.url("/optout"), b"{}"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    // Classified from hyper's error in the source chain (an incomplete message), not its text.
    assert_eq!(error.kind(), TransportErrorKind::Body, "{error:?}");
}

/// A TLS handshake with a server that answers in plain HTTP fails in rustls: classified from the
/// `rustls::Error` in the source chain.
#[cfg(feature = "rustls")]
#[tokio::test]
async fn a_failed_tls_handshake_is_a_tls_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello).await;
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let error = client()
        .send(post(&format!("https://127.0.0.1:{port}/optout"), b"{}"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Tls, "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn gone_and_server_errors_are_classified() {
    let server = TestServer::start(
        [
            Answer::status(410),
            Answer::with_header(503, "retry-after", "1"),
        ],
        Answer::status(200),
    )
    .await;
    let c = client();
    let gone = c.send(post(&server.url("/a"), b"{}")).await.unwrap();
    assert_eq!(StatusClass::of(gone.status()), StatusClass::Gone);
    let busy = c.send(post(&server.url("/a"), b"{}")).await.unwrap();
    assert_eq!(
        (
            busy.status().as_u16(),
            busy.headers()["retry-after"].to_str().unwrap()
        ),
        (503, "1")
    );
    assert_eq!(
        c.send(post(&server.url("/a"), b"{}"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn response_bodies_are_read_up_to_the_limit() {
    let server = TestServer::start([], Answer::Status(200, vec![], vec![b'x'; 100_000])).await;
    let c = ReqwestClient::builder()
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .body_limit(1000)
        .build()
        .unwrap();
    let response = c.send(post(&server.url("/big"), b"{}")).await.unwrap();
    assert_eq!(response.body().len(), 1000);
}
