//! The worker's tracing spans and events carry ids and statuses, never personal data.
#![cfg(all(feature = "tokio", feature = "tracing"))]

use std::io::Write;
use std::sync::{Arc, Mutex};

use optout_relay::jiff::SignedDuration;
use optout_relay::model::AttributeName;
use optout_relay::testing::{RecordingClient, ScriptedAnswer};
use optout_relay::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn spans_and_events_hold_no_personal_data() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let flow: Flow = serde_json::from_value(serde_json::json!({
        "id": "crm", "section": "sec-1", "listen": {"kinds": ["sms_unsubscribe"]},
        "webhook": {"url": "https://crm.example.com/optout?token=static-secret-param", "params": [
            {"name": "mobile", "source": "mobile"}, {"name": "subscription", "source": "subscription_id"},
            {"name": "name", "source": {"attribute": "first_name"}}]}
    }))
    .unwrap();
    let router = Arc::new(Router::new([flow], &Catalog::default()).unwrap());
    let client = RecordingClient::new().then(ScriptedAnswer::status(503));
    let policy = RetryPolicy::builder()
        .schedule([SignedDuration::from_millis(10)])
        .build()
        .unwrap();
    let (worker, mut outcomes) =
        Worker::builder(router, Arc::new(client), Arc::new(VolatileStore::new()))
            .policy(policy)
            .seed(0)
            .start();
    let profile = Profile::new(ProfileId::new("p-1").unwrap())
        .with_mobile(Mobile::new("+46701234567").unwrap())
        .with_attribute(AttributeName::new("first_name").unwrap(), "Adalberta");
    let event = OptOutEvent::sms_unsubscribe(
        EventId::new("evt-9").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("200001").unwrap(),
        "2026-11-26T10:00:00Z".parse().unwrap(),
    );
    let _ = worker
        .submit(&event.clone(), &profile.clone())
        .await
        .unwrap();
    assert!(matches!(
        outcomes.recv().await.unwrap(),
        Outcome::Delivered(_)
    ));
    // An event whose request cannot be built is logged with the parameter, not the data.
    let no_mobile = Profile::new(ProfileId::new("p-1").unwrap());
    let other = OptOutEvent::sms_unsubscribe(
        EventId::new("evt-10").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("200001").unwrap(),
        "2026-11-26T10:00:00Z".parse().unwrap(),
    );
    let _ = worker.submit(&other, &no_mobile).await.unwrap();
    let _ = worker.shutdown().await;

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "optout.route",
        "optout.send",
        "event=evt-9",
        "flow=crm",
        "attempt recorded",
        "503",
        "entered",
        "request not built",
    ] {
        assert!(log.contains(expected), "{expected:?} missing from:\n{log}");
    }
    for secret in [
        "+46701234567",
        "46701234567",
        "Adalberta",
        "crm.example.com",
        "static-secret-param",
    ] {
        assert!(!log.contains(secret), "{secret:?} leaked into:\n{log}");
    }
}
