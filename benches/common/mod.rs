//! What the pipeline benches share: a loopback receiver, one signed flow to it, the Profile and
//! the events they send.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use optout_relay::*;

/// The flows' signing secret.
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A keep-alive HTTP/1.1 server on 127.0.0.1 that reads each request whole and answers 204.
pub async fn server() -> SocketAddr {
    server_with_delay(Duration::ZERO).await
}

/// How long the slow receiver takes to answer: a remote endpoint, where the workers wait on the
/// network rather than on the CPU.
pub const SLOW_RECEIVER: Duration = Duration::from_millis(20);

/// As [`server`], answering after `delay`.
pub async fn server_with_delay(delay: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| async move {
                        use http_body_util::BodyExt;
                        let _ = request.into_body().collect().await;
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        let mut response = hyper::Response::new(Empty::<Bytes>::new());
                        *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                        Ok::<_, std::convert::Infallible>(response)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One signed flow to `addr` (any address, for a bench that never sends).
pub fn router(addr: SocketAddr) -> Arc<Router> {
    let flow: Flow = serde_json::from_value(serde_json::json!({
        "id": "crm", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]},
        "webhook": {
            "url": format!("http://{addr}/optout?source=platform"),
            "encoding": "json",
            "params": [
                {"name": "email", "source": "email"},
                {"name": "subscription", "source": "subscription_id"},
                {"name": "section", "source": "section_id"},
                {"name": "event", "source": "event_id"}
            ],
            "signing_secrets": [SECRET]
        }
    }))
    .unwrap();
    Arc::new(Router::new([flow], &Catalog::default()).unwrap())
}

pub fn profile() -> Profile {
    Profile::new(ProfileId::new("p-ada").unwrap())
        .with_email(Email::new("ada+news@example.com").unwrap())
}

pub fn event(i: usize) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new(format!("evt-{i}")).unwrap(),
        ProfileId::new("p-ada").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}
