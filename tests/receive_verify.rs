//! The receiving side's Standard Webhooks verifier: every branch, key rotation, tolerance, and
//! interoperability with the independent `standardwebhooks` crate in both directions.
#![cfg(feature = "signing")]

#[path = "support/node_requests.rs"]
mod node_requests;
use node_requests::NodeRequests;

use http::{HeaderMap, HeaderValue};
use optout_relay::jiff::SignedDuration;
use optout_relay::receive::Verifier;
use optout_relay::receive::VerifyError;
use optout_relay::receive::{DEFAULT_TOLERANCE, HeaderProblem, MAX_SIGNATURES};
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::SigningSecret;
use optout_relay::webhook::WebhookConfigError;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::*;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SECRET_2: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_dGhpcyBpcyBhbm90aGVyIGtleSBvZiAyNCBieXRlcw==";
const ID: &str = "msg_f602f46a34bde42fbf025123344f856d";
const TS: i64 = 1795685405; // 2026-11-26T09:30:05Z
const BODY: &[u8] = br#"{"email":"a+b@example.com","subscription":"123456"}"#;

fn secret(s: &str) -> SigningSecret {
    SigningSecret::new(s).unwrap()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap()
}

fn headers(id: &str, ts: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
    headers.insert("webhook-timestamp", HeaderValue::from_str(ts).unwrap());
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    headers
}

/// Headers of `BODY` signed by `secrets` at `TS`.
fn signed_by(secrets: &[&str]) -> HeaderMap {
    let signature: Vec<String> = secrets
        .iter()
        .map(|s| secret(s).sign(ID, TS, BODY))
        .collect();
    headers(ID, &TS.to_string(), &signature.join(" "))
}

fn verifier(secrets: &[&str]) -> Verifier {
    Verifier::new(secrets.iter().map(|s| secret(s)))
}

#[test]
fn a_valid_request_verifies_and_gives_its_id_and_timestamp() {
    let verified = verifier(&[SECRET])
        .verify(&signed_by(&[SECRET]), BODY, at(TS))
        .unwrap();
    assert_eq!(verified.id(), ID);
    assert_eq!(verified.timestamp(), at(TS));
    assert_eq!(verified.timestamp().to_string(), "2026-11-26T09:30:05Z");
}

#[test]
fn the_specifications_known_answer_vector_verifies() {
    let headers = headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    verifier(&[SECRET_2])
        .verify(&headers, br#"{"test": 2432232314}"#, at(1614265330))
        .unwrap();
}

#[test]
fn each_missing_header_is_named() {
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut headers = signed_by(&[SECRET]);
        headers.remove(name);
        assert_eq!(
            verifier(&[SECRET]).verify(&headers, BODY, at(TS)),
            Err(VerifyError::MissingHeader { name }),
            "{name}"
        );
    }
    // Header names are case-insensitive, as HTTP says.
    let mut headers = HeaderMap::new();
    for (name, value) in signed_by(&[SECRET]).iter() {
        headers.insert(
            http::HeaderName::from_bytes(name.as_str().to_ascii_uppercase().as_bytes()).unwrap(),
            value.clone(),
        );
    }
    assert!(verifier(&[SECRET]).verify(&headers, BODY, at(TS)).is_ok());
}

#[test]
fn malformed_headers_are_named() {
    let check = |headers: HeaderMap, name: &'static str, reason: HeaderProblem| {
        assert_eq!(
            verifier(&[SECRET]).verify(&headers, BODY, at(TS)),
            Err(VerifyError::MalformedHeader { name, reason }),
            "{name}: {reason:?}"
        );
    };
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut twice = signed_by(&[SECRET]);
        let value = twice[name].clone();
        twice.append(name, value);
        check(twice, name, HeaderProblem::Repeated);

        let mut empty = signed_by(&[SECRET]);
        empty.insert(name, HeaderValue::from_static("  "));
        check(empty, name, HeaderProblem::Empty);

        let mut binary = signed_by(&[SECRET]);
        binary.insert(name, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        check(binary, name, HeaderProblem::NotVisibleAscii);
    }
    let long_id = format!("msg_{}", "a".repeat(300));
    check(
        headers(
            &long_id,
            &TS.to_string(),
            &secret(SECRET).sign(&long_id, TS, BODY),
        ),
        "webhook-id",
        HeaderProblem::TooLong,
    );
    check(
        headers(ID, &TS.to_string(), "v1a,c2lnbmF0dXJl v2,abc"),
        "webhook-signature",
        HeaderProblem::NoV1Signature,
    );
    let many = vec!["v1,AAAA"; MAX_SIGNATURES + 1].join(" ");
    check(
        headers(ID, &TS.to_string(), &many),
        "webhook-signature",
        HeaderProblem::TooManySignatures,
    );
}

#[test]
fn malformed_header_messages_name_the_header_and_the_problem() {
    for (reason, text) in [
        (HeaderProblem::Repeated, "is sent more than once"),
        (
            HeaderProblem::NotVisibleAscii,
            "holds a byte that is not visible ASCII",
        ),
        (HeaderProblem::Empty, "is empty"),
        (HeaderProblem::TooLong, "is longer than 256 bytes"),
        (
            HeaderProblem::TooManySignatures,
            "holds more than 16 signatures",
        ),
        (HeaderProblem::NoV1Signature, "holds no `v1,` signature"),
    ] {
        let error = VerifyError::MalformedHeader {
            name: "webhook-signature",
            reason,
        };
        assert_eq!(
            error.to_string(),
            format!("the `webhook-signature` header {text}")
        );
    }
}

#[test]
fn timestamps_that_are_not_unix_seconds_are_invalid() {
    for ts in [
        "abc",
        "-5",
        "+1795685405",
        "1795685405.0",
        "1795685405 ",
        "0x6b0a3d9d",
        "2026-11-26T09:30:05Z",
        "99999999999999999999",
        "9999999999999999999",
        "1 2",
    ] {
        let signature = secret(SECRET).sign(ID, TS, BODY);
        let Ok(value) = HeaderValue::from_str(ts) else {
            continue;
        };
        let mut headers = headers(ID, "1", &signature);
        headers.insert("webhook-timestamp", value);
        let result = verifier(&[SECRET]).verify(&headers, BODY, at(TS));
        // A trailing space is trimmed as HTTP allows; the rest are not numbers of seconds.
        if ts == "1795685405 " {
            assert!(result.is_ok());
        } else {
            assert_eq!(result, Err(VerifyError::InvalidTimestamp), "{ts:?}");
        }
    }
}

#[test]
fn the_tolerance_is_five_minutes_either_way_inclusive() {
    assert_eq!(DEFAULT_TOLERANCE, SignedDuration::from_secs(300));
    let v = verifier(&[SECRET]);
    let headers = signed_by(&[SECRET]);
    assert!(v.verify(&headers, BODY, at(TS + 300)).is_ok());
    assert!(v.verify(&headers, BODY, at(TS - 300)).is_ok());
    assert_eq!(
        v.verify(&headers, BODY, at(TS + 301)),
        Err(VerifyError::TooOld {
            age: SignedDuration::from_secs(301),
            tolerance: SignedDuration::from_secs(300),
        })
    );
    assert_eq!(
        v.verify(&headers, BODY, at(TS - 301)),
        Err(VerifyError::TooNew {
            ahead: SignedDuration::from_secs(301),
            tolerance: SignedDuration::from_secs(300),
        })
    );
    assert_eq!(
        v.verify(&headers, BODY, at(TS + 301))
            .unwrap_err()
            .to_string(),
        "the webhook was signed 5m 1s ago, longer than the tolerance of 5m"
    );
    // Timestamps far outside any range are too old or too new, not a panic.
    let signature = secret(SECRET).sign(ID, 0, BODY);
    assert!(matches!(
        v.verify(&headers_at(0, &signature), BODY, at(TS)),
        Err(VerifyError::TooOld { .. })
    ));
    assert!(matches!(
        v.verify(&headers_at(i64::MAX, "v1,AAAA"), BODY, at(TS)),
        Err(VerifyError::TooNew { .. })
    ));
}

fn headers_at(ts: i64, signature: &str) -> HeaderMap {
    headers(ID, &ts.to_string(), signature)
}

#[test]
fn the_tolerance_can_be_set() {
    let v = verifier(&[SECRET]).tolerance(SignedDuration::from_secs(30));
    assert_eq!(v.tolerance_value(), SignedDuration::from_secs(30));
    let headers = signed_by(&[SECRET]);
    assert!(v.verify(&headers, BODY, at(TS + 30)).is_ok());
    assert!(matches!(
        v.verify(&headers, BODY, at(TS + 31)),
        Err(VerifyError::TooOld { .. })
    ));
    // A negative tolerance counts as its absolute value; zero accepts only the same second.
    let negative = verifier(&[SECRET]).tolerance(SignedDuration::from_secs(-30));
    assert_eq!(negative.tolerance_value(), SignedDuration::from_secs(30));
    let zero = verifier(&[SECRET]).tolerance(SignedDuration::ZERO);
    assert!(zero.verify(&headers, BODY, at(TS)).is_ok());
    assert!(zero.verify(&headers, BODY, at(TS + 1)).is_err());
    assert!(zero.verify(&headers, BODY, at(TS - 1)).is_err());
    let min = verifier(&[SECRET]).tolerance(SignedDuration::MIN);
    assert_eq!(min.tolerance_value(), SignedDuration::MAX);
}

#[test]
fn a_signature_that_does_not_match_is_rejected_without_saying_why() {
    let v = verifier(&[SECRET]);
    let no = Err(VerifyError::NoMatchingSignature);
    // Another secret.
    assert_eq!(v.verify(&signed_by(&[OTHER]), BODY, at(TS)), no);
    // A changed body, id or timestamp.
    assert_eq!(v.verify(&signed_by(&[SECRET]), b"{}", at(TS)), no);
    let good = secret(SECRET).sign(ID, TS, BODY);
    assert_eq!(
        v.verify(&headers("msg_other", &TS.to_string(), &good), BODY, at(TS)),
        no
    );
    assert_eq!(
        v.verify(&headers(ID, &(TS + 1).to_string(), &good), BODY, at(TS)),
        no
    );
    // Truncated, extended, undecodable, empty: the length is checked, nothing panics.
    for bad in [
        good[..good.len() - 4].to_owned(),
        format!("{good}AAAA"),
        "v1,".to_owned(),
        "v1,!!!notbase64!!!".to_owned(),
        good.replacen("v1,", "v1a,", 1) + " v1,AAAA",
        good.to_lowercase(),
    ] {
        assert_eq!(
            v.verify(&headers(ID, &TS.to_string(), &bad), BODY, at(TS)),
            no,
            "{bad}"
        );
    }
    // The message is the same whatever came close, and names no secret.
    let message = VerifyError::NoMatchingSignature.to_string();
    assert!(!message.contains("whsec") && !message.contains('#'));
    // A verifier without secrets accepts nothing.
    assert_eq!(
        Verifier::new([]).verify(&signed_by(&[SECRET]), BODY, at(TS)),
        no
    );
}

#[test]
fn any_valid_signature_among_several_is_accepted() {
    let good = secret(SECRET).sign(ID, TS, BODY);
    for header in [
        format!("v1,AAAA {good}"),
        format!("{good} v1,AAAA"),
        format!("v1a,whatever v1,!!! {good}"),
        format!("  {good}  "),
    ] {
        verifier(&[SECRET])
            .verify(&headers(ID, &TS.to_string(), &header), BODY, at(TS))
            .unwrap();
    }
}

#[test]
fn key_rotation_accepts_either_secret() {
    let rotating = verifier(&[SECRET_2, SECRET]);
    assert_eq!(rotating.secret_count(), 2);
    for signers in [
        &[SECRET][..],
        &[SECRET_2],
        &[SECRET, SECRET_2],
        &[OTHER, SECRET],
    ] {
        rotating
            .verify(&signed_by(signers), BODY, at(TS))
            .unwrap_or_else(|e| panic!("{signers:?}: {e}"));
    }
    assert_eq!(
        rotating.verify(&signed_by(&[OTHER]), BODY, at(TS)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn verifiers_from_strings_name_the_bad_secret_by_position() {
    assert_eq!(
        Verifier::from_secrets([SECRET, SECRET_2])
            .unwrap()
            .secret_count(),
        2
    );
    let error = Verifier::from_secrets([SECRET, "whsec_short"]).unwrap_err();
    assert!(matches!(
        error,
        WebhookConfigError::InvalidSigningSecret { index: 1, .. }
    ));
    assert!(!error.to_string().contains("short"));
    let verifier = Verifier::from_secrets([SECRET]).unwrap();
    let debug = format!("{verifier:?}");
    assert!(!debug.contains("C2FVsBQ"), "{debug}");
    assert!(debug.contains("secrets: 1"), "{debug}");
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

fn node(encoding: WebhookEncoding, secrets: &[&str]) -> WebhookNode {
    let mut builder = WebhookNode::builder("https://crm.example.com/optout")
        .encoding(encoding)
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId);
    for s in secrets {
        builder = builder.sign_with(*s);
    }
    builder.build().unwrap()
}

#[test]
fn a_verifier_from_the_senders_node_verifies_what_it_sends() {
    let flow = FlowId::new("crm-unsubscribes").unwrap();
    assert!(Verifier::from_node(&node(WebhookEncoding::Json, &[])).is_none());
    for encoding in [
        WebhookEncoding::Query,
        WebhookEncoding::Form,
        WebhookEncoding::Json,
        WebhookEncoding::JsonEnvelope,
    ] {
        let sender = node(encoding, &[SECRET, SECRET_2]);
        let verifier = Verifier::from_node(&sender).unwrap();
        assert_eq!(verifier.secret_count(), 2);
        let mut request = sender
            .build_request(&flow, &profile(), &unsubscribe(), at(TS))
            .unwrap()
            .into_request();
        let verified = verifier.verify_request(&request, at(TS + 10)).unwrap();
        assert_eq!(verified.id(), ID);
        // A retry an hour later is signed anew and verifies then, not with the old signature.
        assert!(matches!(
            verifier.verify_request(&request, at(TS + 3600)),
            Err(VerifyError::TooOld { .. })
        ));
        sender.sign_request(&mut request, at(TS + 3600));
        verifier.verify_request(&request, at(TS + 3600)).unwrap();
        // With a body, changing it breaks the signature; with the query encoding, the body is
        // empty and the URL (the parameters) is not covered: it verifies still.
        let mut tampered = request.clone();
        *tampered.uri_mut() =
            "https://crm.example.com/optout?email=evil%40example.com&subscription=1"
                .parse()
                .unwrap();
        tampered.body_mut().extend_from_slice(b" ");
        let query_untouched = {
            let mut r = request.clone();
            *r.uri_mut() = tampered.uri().clone();
            r
        };
        if encoding == WebhookEncoding::Query {
            assert!(
                verifier
                    .verify_request(&query_untouched, at(TS + 3600))
                    .is_ok()
            );
        }
        assert_eq!(
            verifier.verify_request(&tampered, at(TS + 3600)),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}

#[test]
fn signatures_by_the_standardwebhooks_crate_verify_here() {
    for (id, ts, body) in [
        (ID, TS, BODY),
        ("msg_x", TS, &b""[..]),
        ("msg_y", TS, "{\"n\":\"Zoë\"}".as_bytes()),
        (
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        ),
    ] {
        for key in [SECRET, SECRET_2] {
            let signature = standardwebhooks::Webhook::new(key)
                .unwrap()
                .sign(id, ts, body)
                .unwrap();
            let headers = headers(id, &ts.to_string(), &signature);
            verifier(&[key]).verify(&headers, body, at(ts)).unwrap();
            verifier(&[OTHER, key])
                .verify(&headers, body, at(ts + 299))
                .unwrap();
            assert_eq!(
                verifier(&[OTHER]).verify(&headers, body, at(ts)),
                Err(VerifyError::NoMatchingSignature)
            );
            assert_eq!(
                verifier(&[key]).verify(&headers, b"tampered", at(ts)),
                Err(VerifyError::NoMatchingSignature)
            );
        }
    }
    // Their headers for a rotation, two signatures in one header.
    let both = format!(
        "{} {}",
        standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .sign(ID, TS, BODY)
            .unwrap(),
        standardwebhooks::Webhook::new(SECRET_2)
            .unwrap()
            .sign(ID, TS, BODY)
            .unwrap()
    );
    verifier(&[SECRET_2])
        .verify(&headers(ID, &TS.to_string(), &both), BODY, at(TS))
        .unwrap();
}

#[test]
fn the_standardwebhooks_crate_and_this_verifier_agree() {
    // The standardwebhooks verifier reads the system clock: sign at the current time.
    let now = Timestamp::now();
    let ts = now.as_second();
    let theirs = standardwebhooks::Webhook::new(SECRET).unwrap();
    let ours = verifier(&[SECRET]);
    let good = secret(SECRET).sign(ID, ts, BODY);
    let cases: Vec<(HeaderMap, &[u8])> = vec![
        (headers(ID, &ts.to_string(), &good), BODY),
        (
            headers(ID, &ts.to_string(), &format!("v1,AAAA {good}")),
            BODY,
        ),
        (headers(ID, &ts.to_string(), &good), b"other body"),
        (
            headers(
                ID,
                &(ts - 600).to_string(),
                &secret(SECRET).sign(ID, ts - 600, BODY),
            ),
            BODY,
        ),
        (
            headers(
                ID,
                &(ts + 600).to_string(),
                &secret(SECRET).sign(ID, ts + 600, BODY),
            ),
            BODY,
        ),
        (
            headers(ID, &ts.to_string(), &secret(OTHER).sign(ID, ts, BODY)),
            BODY,
        ),
        (headers(ID, "not-a-number", &good), BODY),
    ];
    for (headers, body) in cases {
        let their_verdict = theirs.verify(body, &headers).is_ok();
        let our_verdict = ours.verify(&headers, body, now).is_ok();
        assert_eq!(their_verdict, our_verdict, "{headers:?}");
    }
}
