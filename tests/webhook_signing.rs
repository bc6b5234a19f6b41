//! Standard Webhooks signatures: the known-answer vectors, exact signed requests, key rotation,
//! and interoperability with the independent `standardwebhooks` crate in both directions.
#![cfg(feature = "signing")]

#[path = "support/node_requests.rs"]
mod node_requests;
use node_requests::NodeRequests;

use optout_relay::webhook::ParamSource;
use optout_relay::webhook::SigningSecret;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::*;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SECRET_2: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID_EVT_1: &str = "msg_f602f46a34bde42fbf025123344f856d";

fn flow() -> FlowId {
    FlowId::new("crm-unsubscribes").unwrap()
}

fn profile() -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap()).with_email(Email::new("a+b@example.com").unwrap())
}

fn unsubscribe() -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new("evt-1").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}

fn signed_node(secrets: &[&str]) -> WebhookNode {
    let mut builder = WebhookNode::builder("https://crm.example.com/optout")
        .encoding(WebhookEncoding::Json)
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId);
    for secret in secrets {
        builder = builder.sign_with(*secret);
    }
    builder.build().unwrap()
}

fn header<'a>(request: &'a http::Request<Vec<u8>>, name: &str) -> &'a str {
    request.headers()[name].to_str().unwrap()
}

#[test]
fn known_answer_vectors() {
    // The Standard Webhooks specification's (and svix's) vector.
    let spec = SigningSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(
        spec.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    // The standardwebhooks crate's own test vector.
    let crate_vector = SigningSecret::new(SECRET).unwrap();
    assert_eq!(
        crate_vector.sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#
        ),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
    assert!(spec.verify(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        br#"{"test": 2432232314}"#,
        "v1,bm90IGl0 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
    assert_eq!(format!("{spec:?}"), "SigningSecret([redacted])");
}

#[test]
fn a_signed_request_is_exact() {
    let now: Timestamp = "2026-11-26T09:30:05Z".parse().unwrap();
    let request = signed_node(&[SECRET])
        .build_request(&flow(), &profile(), &unsubscribe(), now)
        .unwrap()
        .into_request();
    let body = br#"{"email":"a+b@example.com","subscription":"123456"}"#;
    assert_eq!(request.body().as_slice(), body);
    let expected = standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .sign(ID_EVT_1, 1795685405, body)
        .unwrap();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        headers,
        [
            ("content-type", "application/json"),
            ("webhook-id", ID_EVT_1),
            ("webhook-timestamp", "1795685405"),
            ("webhook-signature", expected.as_str()),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    assert_eq!(
        header(&request, "webhook-signature"),
        "v1,4ALZFZe7c+GA6h45QJujtGg5PzWUVCBv0hWCDrE3z1o="
    );
}

#[test]
fn signatures_verify_with_the_standardwebhooks_crate() {
    // The standardwebhooks verifier checks the timestamp against its own clock: sign at now.
    let now = Timestamp::now();
    for encoding in [
        WebhookEncoding::Form,
        WebhookEncoding::Json,
        WebhookEncoding::JsonEnvelope,
    ] {
        let node = WebhookNode::builder("https://crm.example.com/optout")
            .encoding(encoding)
            .param("email", ParamSource::Email)
            .sign_with(SECRET)
            .build()
            .unwrap();
        let request = node
            .build_request(&flow(), &profile(), &unsubscribe(), now)
            .unwrap()
            .into_request();
        standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .verify(request.body(), request.headers())
            .unwrap();
        // A changed body does not verify.
        let mut tampered = request.body().clone();
        tampered[2] ^= 1;
        assert!(
            standardwebhooks::Webhook::new(SECRET)
                .unwrap()
                .verify(&tampered, request.headers())
                .is_err()
        );
    }
}

#[test]
fn several_secrets_give_several_signatures_each_verifying() {
    let now = Timestamp::now();
    let request = signed_node(&[SECRET, SECRET_2])
        .build_request(&flow(), &profile(), &unsubscribe(), now)
        .unwrap()
        .into_request();
    let signatures = header(&request, "webhook-signature");
    assert_eq!(signatures.split(' ').count(), 2);
    for secret in [SECRET, SECRET_2] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(request.body(), request.headers())
            .unwrap();
    }
    assert!(
        standardwebhooks::Webhook::new("whsec_dGhpcyBpcyBhbm90aGVyIGtleSBvZiAyNCBieXRlcw==")
            .unwrap()
            .verify(request.body(), request.headers())
            .is_err()
    );
}

#[test]
fn signatures_made_by_standardwebhooks_verify_here() {
    let theirs = standardwebhooks::Webhook::new(SECRET).unwrap();
    let ours = SigningSecret::new(SECRET).unwrap();
    for (id, ts, body) in [
        (ID_EVT_1, 1795685405_i64, &b"email=a%2Bb%40example.com"[..]),
        ("msg_x", 0, b""),
        ("msg_y", 4102444800, "{\"n\":\"Zoë\"}".as_bytes()),
    ] {
        let signature = theirs.sign(id, ts, body).unwrap();
        assert!(ours.verify(id, ts, body, &signature));
        assert_eq!(ours.sign(id, ts, body), signature);
        // Another id, timestamp or body, a truncated or empty signature: rejected.
        assert!(!ours.verify("msg_other", ts, body, &signature));
        assert!(!ours.verify(id, ts + 1, body, &signature));
        assert!(!ours.verify(id, ts, b"x", &signature));
        assert!(!ours.verify(id, ts, body, &signature[..signature.len() - 4]));
        assert!(!ours.verify(id, ts, body, "v1,"));
        assert!(!ours.verify(id, ts, body, ""));
    }
}

#[test]
fn signing_uses_now_only_for_the_timestamp() {
    let node = signed_node(&[SECRET]);
    let at = |s: &str| {
        node.build_request(&flow(), &profile(), &unsubscribe(), s.parse().unwrap())
            .unwrap()
            .into_request()
    };
    let (first, retry) = (at("2026-11-26T09:30:05Z"), at("2026-11-26T09:35:05Z"));
    assert_eq!(header(&first, "webhook-id"), header(&retry, "webhook-id"));
    assert_eq!(header(&first, "webhook-timestamp"), "1795685405");
    assert_eq!(header(&retry, "webhook-timestamp"), "1795685705");
    assert_ne!(
        header(&first, "webhook-signature"),
        header(&retry, "webhook-signature")
    );
    assert_eq!(first.body(), retry.body());
}

#[test]
fn a_signed_node_round_trips_through_json() {
    let node: WebhookNode = serde_json::from_str(&format!(
        r#"{{"url": "https://h.example/", "encoding": "json", "params": [{{"name": "email", "source": "email"}}],
            "signing_secrets": ["{SECRET}", "{SECRET_2}"]}}"#
    ))
    .unwrap();
    assert!(node.is_signed());
    assert_eq!(node.signing_secret_count(), 2);
    let json = serde_json::to_string(&node).unwrap();
    assert!(json.contains(SECRET) && json.contains(SECRET_2));
    assert_eq!(serde_json::from_str::<WebhookNode>(&json).unwrap(), node);
    assert!(!format!("{node:?}").contains("C2FVsBQ"));
}

#[test]
fn a_retry_is_signed_anew_with_the_same_webhook_id() {
    let node = signed_node(&[SECRET, SECRET_2]);
    let built_at: Timestamp = "2026-11-26T09:30:05Z".parse().unwrap();
    let mut request = node
        .build_request(&flow(), &profile(), &unsubscribe(), built_at)
        .unwrap()
        .into_request();
    let original = header(&request, "webhook-signature").to_owned();
    // Hours later, the retry gets the attempt's time and a fresh signature that verifies now.
    let now = Timestamp::now();
    node.sign_request(&mut request, now);
    assert_eq!(header(&request, "webhook-id"), ID_EVT_1);
    assert_eq!(
        header(&request, "webhook-timestamp"),
        now.as_second().to_string()
    );
    let resigned = header(&request, "webhook-signature").to_owned();
    assert_ne!(resigned, original);
    assert_eq!(resigned.split(' ').count(), 2);
    let secret = SigningSecret::new(SECRET).unwrap();
    assert_eq!(
        resigned.split(' ').next().unwrap(),
        secret.sign(ID_EVT_1, now.as_second(), request.body())
    );
    for key in [SECRET, SECRET_2] {
        standardwebhooks::Webhook::new(key)
            .unwrap()
            .verify(request.body(), request.headers())
            .unwrap();
    }
    // Exactly one timestamp and one signature header remain.
    assert_eq!(
        request
            .headers()
            .get_all("webhook-timestamp")
            .iter()
            .count(),
        1
    );
    assert_eq!(
        request
            .headers()
            .get_all("webhook-signature")
            .iter()
            .count(),
        1
    );
    // An unsigned node leaves a request alone.
    let unsigned = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .build()
        .unwrap();
    let before = request.headers().clone();
    unsigned.sign_request(&mut request, now);
    assert_eq!(request.headers(), &before);
}
