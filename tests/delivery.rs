//! The retry planner, with exact times for every branch, and the delivery record's serde form.

use optout_relay::delivery::Attempt;
use optout_relay::delivery::AttemptOutcome;
use optout_relay::delivery::DeadLetterReason;
use optout_relay::delivery::DeliveryError;
use optout_relay::delivery::DeliveryState;
use optout_relay::delivery::DurationSetting;
use optout_relay::delivery::PolicyError;
use optout_relay::delivery::RetryAfterError;
use optout_relay::delivery::StatusClass;
use optout_relay::delivery::Step;
use optout_relay::delivery::parse_retry_after;
use optout_relay::jiff::SignedDuration;
use optout_relay::testing::{RecordingClient, ScriptedAnswer};
use optout_relay::transport::TransportErrorKind;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use serde_json::json;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn response(status: u16) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .body(Vec::new())
        .unwrap()
}

fn with_retry_after(status: u16, value: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("retry-after", value)
        .body(Vec::new())
        .unwrap()
}

/// The webhook id of flow `f` and event `e`.
const ID: &str = "msg_44091e99c60222ca434a9206195a9a37";

fn id() -> WebhookId {
    let id = WebhookId::derive(&FlowId::new("f").unwrap(), &EventId::new("e").unwrap());
    assert_eq!(id.as_str(), ID);
    id
}

fn delivery() -> Delivery {
    let request = http::Request::post(
        "https://crm.example.com/optout?source=platform&email=a%2Bb%40example.com",
    )
    .header("content-type", "application/json")
    .header("webhook-id", ID)
    .body(br#"{"email":"a+b@example.com"}"#.to_vec())
    .unwrap();
    Delivery::new(
        id(),
        FlowId::new("f").unwrap(),
        EventId::new("e").unwrap(),
        request,
        at("2026-11-26T09:00:00Z"),
    )
}

/// No jitter, so that every time below is exact without picking `random`.
fn flat_policy() -> RetryPolicy {
    RetryPolicy::builder().jitter_percent(0).build().unwrap()
}

const T0: &str = "2026-11-26T09:00:00Z";
const T1: &str = "2026-11-26T09:00:01Z";

#[test]
fn success_is_2xx_only() {
    for status in [200, 201, 202, 204, 299] {
        let mut d = delivery();
        assert_eq!(
            d.record(Ok(&response(status)), at(T0), at(T1), &flat_policy(), 0),
            Step::Delivered,
            "{status}"
        );
        assert_eq!(d.state(), &DeliveryState::Delivered { at: at(T1) });
        assert_eq!(d.next_attempt_at(), None);
    }
}

#[test]
fn retryable_statuses_and_errors_follow_the_schedule() {
    for status in [408, 429, 500, 502, 503, 504, 599] {
        let mut d = delivery();
        let step = d.record(Ok(&response(status)), at(T0), at(T1), &flat_policy(), 0);
        assert_eq!(
            step,
            Step::RetryAt {
                at: at("2026-11-26T09:00:06Z")
            },
            "{status}"
        );
        assert_eq!(d.next_attempt_at(), Some(at("2026-11-26T09:00:06Z")));
    }
    for kind in [
        TransportErrorKind::Connect,
        TransportErrorKind::Timeout,
        TransportErrorKind::Dns,
        TransportErrorKind::Tls,
        TransportErrorKind::Body,
        TransportErrorKind::Other,
    ] {
        let mut d = delivery();
        let error = TransportError::new(kind, "failed");
        let step = d.record(Err(&error), at(T0), at(T1), &flat_policy(), 0);
        assert_eq!(
            step,
            Step::RetryAt {
                at: at("2026-11-26T09:00:06Z")
            },
            "{kind:?}"
        );
        assert_eq!(
            d.attempts()[0].outcome,
            AttemptOutcome::Error {
                kind,
                message: "failed".into()
            }
        );
    }
}

#[test]
fn permanent_answers_are_dead_lettered_with_the_reason() {
    for status in [
        101, 301, 302, 303, 307, 308, 400, 401, 403, 404, 409, 413, 422,
    ] {
        let mut d = delivery();
        let step = d.record(Ok(&response(status)), at(T0), at(T1), &flat_policy(), 0);
        assert_eq!(
            step,
            Step::DeadLetter {
                reason: DeadLetterReason::Rejected { status }
            },
            "{status}"
        );
        assert!(step.is_terminal());
        assert_eq!(
            d.state(),
            &DeliveryState::DeadLettered {
                at: at(T1),
                reason: DeadLetterReason::Rejected { status }
            }
        );
    }
    let mut d = delivery();
    let step = d.record(Ok(&response(410)), at(T0), at(T1), &flat_policy(), 0);
    assert_eq!(
        step,
        Step::DeadLetter {
            reason: DeadLetterReason::Gone
        }
    );
    assert!(DeadLetterReason::Gone.disable_endpoint());
    assert!(!DeadLetterReason::Rejected { status: 404 }.disable_endpoint());
    for kind in [
        TransportErrorKind::Blocked,
        TransportErrorKind::InvalidRequest,
    ] {
        let mut d = delivery();
        let step = d.record(
            Err(&TransportError::new(kind, "no")),
            at(T0),
            at(T1),
            &flat_policy(),
            0,
        );
        assert_eq!(
            step,
            Step::DeadLetter {
                reason: DeadLetterReason::NotRetryable { kind }
            }
        );
    }
}

#[test]
fn the_default_schedule_with_and_without_jitter() {
    let policy = RetryPolicy::default();
    let mut d = delivery();
    let mut now = at(T0);
    // random = 20 is the middle of 0..=40: no jitter at all.
    let expected = ["PT5S", "PT5M", "PT30M", "PT2H", "PT5H", "PT10H", "PT10H"];
    for wait in expected {
        let step = d.record(Ok(&response(503)), now, now, &policy, 20);
        let next = now
            .checked_add(wait.parse::<SignedDuration>().unwrap())
            .unwrap();
        assert_eq!(
            step,
            Step::RetryAt { at: next },
            "after {} attempts",
            d.attempts().len()
        );
        now = next;
    }
    assert_eq!(now, at("2026-11-27T12:35:05Z"));
    let step = d.record(Ok(&response(503)), now, now, &policy, 20);
    assert_eq!(
        step,
        Step::DeadLetter {
            reason: DeadLetterReason::AttemptsExhausted { attempts: 8 }
        }
    );
    assert_eq!(d.attempts().len(), 8);

    // Jitter bounds: +-20 %.
    assert_eq!(policy.delay(1, 0), SignedDuration::from_secs(4));
    assert_eq!(policy.delay(1, 40), SignedDuration::from_secs(6));
    assert_eq!(policy.delay(1, 41), SignedDuration::from_secs(4));
    assert_eq!(
        policy.delay(3, 30),
        SignedDuration::from_secs(30 * 60 * 110 / 100)
    );
    assert_eq!(policy.delay(7, 0), SignedDuration::from_hours(8));
    // Past the schedule, the last delay repeats.
    assert_eq!(policy.delay(100, 20), SignedDuration::from_hours(10));
    let mut d = delivery();
    assert_eq!(
        d.record(Ok(&response(500)), at(T0), at(T0), &policy, 7),
        Step::RetryAt {
            at: at("2026-11-26T09:00:04.350Z")
        }
    );
}

#[test]
fn retry_after_moves_the_next_attempt_later_within_bounds() {
    let policy = flat_policy();
    let case = |value: &str| {
        let mut d = delivery();
        d.record(
            Ok(&with_retry_after(429, value)),
            at(T0),
            at(T1),
            &policy,
            0,
        )
    };
    // Later than the 5 s schedule: honoured.
    assert_eq!(
        case("120"),
        Step::RetryAt {
            at: at("2026-11-26T09:02:01Z")
        }
    );
    assert_eq!(
        case("Thu, 26 Nov 2026 09:10:00 GMT"),
        Step::RetryAt {
            at: at("2026-11-26T09:10:00Z")
        }
    );
    // Earlier than the schedule: the schedule wins (never sooner).
    assert_eq!(
        case("1"),
        Step::RetryAt {
            at: at("2026-11-26T09:00:06Z")
        }
    );
    assert_eq!(
        case("Thu, 26 Nov 2026 08:00:00 GMT"),
        Step::RetryAt {
            at: at("2026-11-26T09:00:06Z")
        }
    );
    // Beyond the bound (1 h): clamped.
    assert_eq!(
        case("86400"),
        Step::RetryAt {
            at: at("2026-11-26T10:00:01Z")
        }
    );
    assert_eq!(
        case("99999999999999999999999"),
        Step::RetryAt {
            at: at("2026-11-26T10:00:01Z")
        }
    );
    // Malformed: ignored.
    assert_eq!(
        case("soon"),
        Step::RetryAt {
            at: at("2026-11-26T09:00:06Z")
        }
    );
    assert_eq!(
        case("-5"),
        Step::RetryAt {
            at: at("2026-11-26T09:00:06Z")
        }
    );
    // On 503 too.
    let mut d = delivery();
    assert_eq!(
        d.record(Ok(&with_retry_after(503, "30")), at(T0), at(T1), &policy, 0),
        Step::RetryAt {
            at: at("2026-11-26T09:00:31Z")
        }
    );
    assert_eq!(
        d.attempts()[0].outcome,
        AttemptOutcome::Response {
            status: 503,
            retry_after: Some("30".into()),
            body: String::new(),
            body_truncated: false
        }
    );
}

#[test]
fn attempts_and_age_limits() {
    let policy = RetryPolicy::builder()
        .schedule([SignedDuration::from_secs(1), SignedDuration::from_secs(2)])
        .jitter_percent(0)
        .max_attempts(3)
        .build()
        .unwrap();
    let mut d = delivery();
    let fail = TransportError::new(TransportErrorKind::Connect, "connection refused");
    assert_eq!(
        d.record(Err(&fail), at(T0), at(T0), &policy, 0),
        Step::RetryAt {
            at: at("2026-11-26T09:00:01Z")
        }
    );
    assert_eq!(
        d.record(Err(&fail), at(T1), at(T1), &policy, 0),
        Step::RetryAt {
            at: at("2026-11-26T09:00:03Z")
        }
    );
    let step = d.record(
        Err(&fail),
        at("2026-11-26T09:00:03Z"),
        at("2026-11-26T09:00:03Z"),
        &policy,
        0,
    );
    assert_eq!(
        step,
        Step::DeadLetter {
            reason: DeadLetterReason::AttemptsExhausted { attempts: 3 }
        }
    );
    // A terminal delivery takes no more attempts.
    let again = d.record(
        Ok(&response(200)),
        at("2026-11-26T09:00:04Z"),
        at("2026-11-26T09:00:04Z"),
        &policy,
        0,
    );
    assert_eq!(again, step);
    assert_eq!(d.attempts().len(), 3);

    let young = RetryPolicy::builder()
        .jitter_percent(0)
        .max_age(SignedDuration::from_mins(10))
        .build()
        .unwrap();
    let mut d = delivery();
    assert_eq!(
        d.record(Ok(&response(500)), at(T0), at(T0), &young, 0),
        Step::RetryAt {
            at: at("2026-11-26T09:00:05Z")
        }
    );
    assert_eq!(
        d.record(
            Ok(&response(500)),
            at("2026-11-26T09:00:05Z"),
            at("2026-11-26T09:00:05Z"),
            &young,
            0
        ),
        Step::RetryAt {
            at: at("2026-11-26T09:05:05Z")
        }
    );
    // The next one would be 30 min later: past the 10 min age.
    assert_eq!(
        d.record(
            Ok(&response(500)),
            at("2026-11-26T09:05:05Z"),
            at("2026-11-26T09:05:06Z"),
            &young,
            0
        ),
        Step::DeadLetter {
            reason: DeadLetterReason::Expired {
                next_attempt_at: at("2026-11-26T09:35:06Z")
            }
        }
    );
}

#[test]
fn response_bodies_are_kept_bounded() {
    let policy = RetryPolicy::builder()
        .response_body_limit(8)
        .build()
        .unwrap();
    let mut d = delivery();
    let long = http::Response::builder()
        .status(500)
        .body(b"internal server error".to_vec())
        .unwrap();
    let _ = d.record(Ok(&long), at(T0), at(T1), &policy, 0);
    assert_eq!(
        d.attempts()[0],
        Attempt {
            started_at: at(T0),
            duration: SignedDuration::from_secs(1),
            outcome: AttemptOutcome::Response {
                status: 500,
                retry_after: None,
                body: "internal".into(),
                body_truncated: true
            },
        }
    );
}

#[test]
fn a_delivery_round_trips_mid_retry_and_resumes() {
    let policy = flat_policy();
    let mut d = delivery();
    let _ = d.record(Ok(&with_retry_after(503, "10")), at(T0), at(T1), &policy, 0);
    let value = serde_json::to_value(&d).unwrap();
    assert_eq!(
        value,
        json!({
            "webhook_id": ID,
            "flow": "f",
            "event": "e",
            "created_at": "2026-11-26T09:00:00Z",
            "request": {
                "method": "POST",
                "uri": "https://crm.example.com/optout?source=platform&email=a%2Bb%40example.com",
                "headers": [["content-type", "application/json"], ["webhook-id", ID]],
                "body": "{\"email\":\"a+b@example.com\"}"
            },
            "attempts": [{
                "started_at": "2026-11-26T09:00:00Z",
                "duration": "PT1S",
                "outcome": {"type": "response", "status": 503, "retry_after": "10"}
            }],
            "state": {"state": "pending", "next_attempt_at": "2026-11-26T09:00:11Z"}
        })
    );
    let mut resumed: Delivery = serde_json::from_value(value).unwrap();
    assert_eq!(resumed, d);
    let request = resumed.request();
    assert_eq!(request.method(), "POST");
    assert_eq!(
        request.uri(),
        "https://crm.example.com/optout?source=platform&email=a%2Bb%40example.com"
    );
    assert_eq!(request.headers()["webhook-id"], ID);
    assert_eq!(request.body(), br#"{"email":"a+b@example.com"}"#);
    assert_eq!(
        resumed.record(
            Ok(&response(200)),
            at("2026-11-26T09:00:11Z"),
            at("2026-11-26T09:00:12Z"),
            &policy,
            0
        ),
        Step::Delivered
    );
    assert_eq!(resumed.attempts().len(), 2);

    // Non-UTF-8 bodies survive too.
    let binary = http::Request::put("http://127.0.0.1:1/")
        .body(vec![0xff, 0x00, 0x80])
        .unwrap();
    let d = Delivery::new(
        id(),
        FlowId::new("f").unwrap(),
        EventId::new("e").unwrap(),
        binary,
        at(T0),
    );
    let text = serde_json::to_string(&d).unwrap();
    let back: Delivery = serde_json::from_str(&text).unwrap();
    assert_eq!(back.request().body(), &[0xff, 0x00, 0x80]);

    // A corrupt stored request is a typed error.
    let mut corrupt = serde_json::to_value(&d).unwrap();
    corrupt["request"]["headers"] = json!([["bad header", "x"]]);
    let err = serde_json::from_value::<Delivery>(corrupt).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the stored request is invalid: "),
        "{err}"
    );
}

/// Issue 12: a delivery kept every attempt. It keeps the first and the latest 16 now, and counts
/// them all: 50 rounds of 100 failed attempts, each round replayed, keep 17 attempts, and each
/// round is exhausted after exactly 100 attempts (the count, not the 17 kept, decides).
#[test]
fn a_long_failing_delivery_keeps_a_bounded_history_and_counts_every_attempt() {
    use optout_relay::delivery::{KEPT_FIRST_ATTEMPTS, KEPT_LATEST_ATTEMPTS, MAX_ATTEMPTS};
    assert_eq!((KEPT_FIRST_ATTEMPTS, KEPT_LATEST_ATTEMPTS), (1, 16));
    let policy = RetryPolicy::builder()
        .schedule([SignedDuration::from_secs(1)])
        .jitter_percent(0)
        .max_attempts(MAX_ATTEMPTS)
        .build()
        .unwrap();
    let t0 = at(T0);
    let second = |n: i64| t0.checked_add(SignedDuration::from_secs(n)).unwrap();
    let mut d = delivery();
    let mut n = 0;
    for round in 1..=50u32 {
        for attempt in 1..=100u32 {
            let step = d.record(Ok(&response(503)), second(n), second(n), &policy, 0);
            n += 1;
            let expected = if attempt < 100 {
                Step::RetryAt { at: second(n) }
            } else {
                Step::DeadLetter {
                    reason: DeadLetterReason::AttemptsExhausted { attempts: 100 },
                }
            };
            assert_eq!(step, expected, "round {round}, attempt {attempt}");
        }
        assert_eq!(d.attempt_count(), round * 100);
        assert_eq!(d.attempts().len(), 17, "round {round}");
        if round == 1 {
            // Through the stored form: the count survives the dropped attempts.
            let value = serde_json::to_value(&d).unwrap();
            assert_eq!(value["attempt_count"], json!(100));
            assert_eq!(value["attempts"].as_array().unwrap().len(), 17);
            let back: Delivery = serde_json::from_value(value).unwrap();
            assert_eq!(back, d);
            d = back;
        }
        assert!(d.replay(second(n)));
    }
    assert_eq!(d.attempt_count(), 5_000);
    let started: Vec<Timestamp> = d.attempts().iter().map(|a| a.started_at).collect();
    // Attempt 1, then attempts 4,985 to 5,000.
    let mut expected = vec![second(0)];
    expected.extend((4_984..5_000).map(second));
    assert_eq!(started, expected);
    assert_eq!(
        format!("{d:?}"),
        "Delivery { method: POST, webhook_id: \"msg_44091e99c60222ca434a9206195a9a37\", \
         flow: FlowId(\"f\"), \
         event: EventId(\"e\"), created_at: 2026-11-26T09:00:00Z, attempts: 5000, \
         state: Pending { next_attempt_at: 2026-11-26T10:23:20Z }, .. }"
    );
}

/// A record written before the history was bounded (no `attempt_count`, every attempt) is read
/// with its count, keeps only the first and latest attempts, and is written back bounded.
#[test]
fn an_unbounded_old_record_is_read_bounded_with_its_count() {
    let mut value = serde_json::to_value(delivery()).unwrap();
    let attempts: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            json!({
                "started_at": format!("2026-11-26T09:{i:02}:00Z"),
                "duration": "PT1S",
                "outcome": {"type": "response", "status": 503}
            })
        })
        .collect();
    value["attempts"] = json!(attempts);
    value["state"] = json!({"state": "pending", "next_attempt_at": "2026-11-26T09:40:00Z"});
    let mut d: Delivery = serde_json::from_value(value).unwrap();
    assert_eq!(d.attempt_count(), 40);
    let started: Vec<Timestamp> = d.attempts().iter().map(|a| a.started_at).collect();
    let mut expected = vec![at("2026-11-26T09:00:00Z")];
    expected.extend((24..40).map(|i| at(&format!("2026-11-26T09:{i:02}:00Z"))));
    assert_eq!(started, expected);
    let written = serde_json::to_value(&d).unwrap();
    assert_eq!(written["attempt_count"], json!(40));
    assert_eq!(written["attempts"].as_array().unwrap().len(), 17);

    // The 41st attempt is the last one a 41-attempt policy allows.
    let policy = RetryPolicy::builder()
        .jitter_percent(0)
        .max_attempts(41)
        .build()
        .unwrap();
    let now = at("2026-11-26T09:40:00Z");
    assert_eq!(
        d.record(Ok(&response(503)), now, now, &policy, 0),
        Step::DeadLetter {
            reason: DeadLetterReason::AttemptsExhausted { attempts: 41 }
        }
    );
    assert_eq!((d.attempt_count(), d.attempts().len()), (41, 17));
    assert_eq!(d.attempts()[1].started_at, at("2026-11-26T09:25:00Z"));
    assert_eq!(d.attempts()[16].started_at, now);

    // A count below the attempts stored is a typed error.
    let mut corrupt = serde_json::to_value(&d).unwrap();
    corrupt["attempt_count"] = json!(3);
    let error = serde_json::from_value::<Delivery>(corrupt).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the stored attempt_count 3 is less than the 17 attempts stored"
    );
    assert_eq!(
        DeliveryError::AttemptCount {
            count: 3,
            stored: 17
        }
        .to_string(),
        "the stored attempt_count 3 is less than the 17 attempts stored"
    );

    // A replay mark that counts more attempts than the delivery has (it would let the delivery
    // retry past max_attempts) or predates the delivery is a typed error too.
    assert!(d.replay(now));
    let replayed = serde_json::to_value(&d).unwrap();
    assert_eq!(replayed["replayed"]["after_attempts"], json!(41));
    assert!(serde_json::from_value::<Delivery>(replayed.clone()).is_ok());
    let mut inflated = replayed.clone();
    inflated["replayed"]["after_attempts"] = json!(4_000_000_000u32);
    assert_eq!(
        serde_json::from_value::<Delivery>(inflated)
            .unwrap_err()
            .to_string(),
        "the stored replay mark does not fit: 4000000000 attempts before it of 41, or dated \
         before the delivery was created"
    );
    let mut early = replayed;
    early["replayed"]["at"] = json!("2000-01-01T00:00:00Z");
    assert!(
        serde_json::from_value::<Delivery>(early)
            .unwrap_err()
            .to_string()
            .starts_with("the stored replay mark does not fit: 41 attempts before it of 41")
    );
}

#[test]
fn policy_validation_and_json() {
    assert_eq!(
        RetryPolicy::builder().schedule([]).build(),
        Err(PolicyError::EmptySchedule)
    );
    assert_eq!(
        RetryPolicy::builder()
            .schedule([SignedDuration::from_secs(1), SignedDuration::ZERO])
            .build(),
        Err(PolicyError::DelayOutOfRange {
            position: 1,
            delay: SignedDuration::ZERO
        })
    );
    assert_eq!(
        RetryPolicy::builder().jitter_percent(101).build(),
        Err(PolicyError::JitterOutOfRange { percent: 101 })
    );
    assert_eq!(
        RetryPolicy::builder().max_attempts(0).build(),
        Err(PolicyError::AttemptsOutOfRange { attempts: 0 })
    );
    assert_eq!(
        RetryPolicy::builder().max_age(SignedDuration::ZERO).build(),
        Err(PolicyError::DurationOutOfRange {
            field: DurationSetting::MaxAge,
            value: SignedDuration::ZERO
        })
    );
    let value = serde_json::to_value(RetryPolicy::default()).unwrap();
    assert_eq!(
        value,
        json!({
            "schedule": ["PT5S", "PT5M", "PT30M", "PT2H", "PT5H", "PT10H", "PT10H"],
            "jitter_percent": 20, "max_attempts": 8, "max_age": "PT72H",
            "retry_after_max": "PT1H", "response_body_limit": 512
        })
    );
    let short: RetryPolicy =
        serde_json::from_value(json!({"schedule": ["PT1S"], "max_attempts": 2})).unwrap();
    assert_eq!(short.schedule(), [SignedDuration::from_secs(1)]);
    assert_eq!((short.max_attempts(), short.jitter_percent()), (2, 20));
    let err = serde_json::from_value::<RetryPolicy>(json!({"jitter_percent": 150})).unwrap_err();
    assert_eq!(err.to_string(), "jitter of 150% is out of range 0..=100");
}

/// Issue 12: 1 ns passed "longer than zero" and was waited as 0 ms; 1 ms delays with jitter 100
/// and `u32::MAX` attempts made 1.86 M attempts in 20 s. Every setting is bounded now, from the
/// builder and from JSON alike, with an error naming the setting and the value.
#[test]
fn policy_bounds_refuse_a_hot_retry_loop() {
    use optout_relay::delivery::{
        MAX_AGE, MAX_ATTEMPTS, MAX_DELAY, MAX_JITTER_PERCENT, MAX_RESPONSE_BODY_LIMIT, MIN_DELAY,
    };
    assert_eq!(
        (MIN_DELAY, MAX_DELAY, MAX_AGE),
        (
            SignedDuration::from_millis(10),
            SignedDuration::from_hours(24),
            SignedDuration::from_hours(720)
        )
    );
    assert_eq!(
        (MAX_ATTEMPTS, MAX_JITTER_PERCENT, MAX_RESPONSE_BODY_LIMIT),
        (100, 100, 65_536)
    );

    // The case of the issue: the first setting out of range is named.
    let hot = RetryPolicy::builder()
        .schedule([SignedDuration::from_millis(1)])
        .jitter_percent(100)
        .max_attempts(u32::MAX)
        .build()
        .unwrap_err();
    assert_eq!(
        hot,
        PolicyError::DelayOutOfRange {
            position: 0,
            delay: SignedDuration::from_millis(1)
        }
    );
    assert_eq!(
        hot.to_string(),
        "retry delay 0 of the schedule (1ms) is out of range 10ms..=24h"
    );
    let unbounded = RetryPolicy::builder()
        .schedule([MIN_DELAY])
        .jitter_percent(100)
        .max_attempts(u32::MAX)
        .build()
        .unwrap_err();
    assert_eq!(
        unbounded,
        PolicyError::AttemptsOutOfRange { attempts: u32::MAX }
    );
    assert_eq!(
        unbounded.to_string(),
        "max_attempts of 4294967295 is out of range 1..=100"
    );

    // Each bound, just inside and just outside.
    let schedule = |delays: &[SignedDuration]| {
        RetryPolicy::builder()
            .schedule(delays.iter().copied())
            .build()
    };
    let nanosecond = SignedDuration::from_nanos(1);
    assert_eq!(
        schedule(&[SignedDuration::from_secs(1), nanosecond]),
        Err(PolicyError::DelayOutOfRange {
            position: 1,
            delay: nanosecond
        })
    );
    assert_eq!(
        schedule(&[MIN_DELAY - nanosecond]),
        Err(PolicyError::DelayOutOfRange {
            position: 0,
            delay: SignedDuration::from_nanos(9_999_999)
        })
    );
    assert_eq!(
        schedule(&[MAX_DELAY + nanosecond]),
        Err(PolicyError::DelayOutOfRange {
            position: 0,
            delay: SignedDuration::new(86_400, 1)
        })
    );
    assert_eq!(
        schedule(&[-SignedDuration::from_secs(5)]),
        Err(PolicyError::DelayOutOfRange {
            position: 0,
            delay: SignedDuration::from_secs(-5)
        })
    );
    assert_eq!(
        schedule(&[MIN_DELAY, MAX_DELAY]).unwrap().schedule(),
        [MIN_DELAY, MAX_DELAY]
    );
    assert_eq!(
        schedule(&[MIN_DELAY; 100]),
        Err(PolicyError::ScheduleTooLong { len: 100 })
    );
    assert_eq!(
        PolicyError::ScheduleTooLong { len: 100 }.to_string(),
        "the retry schedule has 100 delays, more than the 99 that can be used"
    );
    assert_eq!(schedule(&[MIN_DELAY; 99]).unwrap().schedule().len(), 99);
    let attempts = |n| RetryPolicy::builder().max_attempts(n).build();
    assert_eq!(attempts(MAX_ATTEMPTS).unwrap().max_attempts(), 100);
    assert_eq!(
        attempts(101),
        Err(PolicyError::AttemptsOutOfRange { attempts: 101 })
    );
    let age = |d| RetryPolicy::builder().max_age(d).build();
    assert_eq!(age(MAX_AGE).unwrap().max_age(), MAX_AGE);
    assert_eq!(age(MIN_DELAY).unwrap().max_age(), MIN_DELAY);
    let too_old = age(MAX_AGE + nanosecond).unwrap_err();
    assert_eq!(
        too_old,
        PolicyError::DurationOutOfRange {
            field: DurationSetting::MaxAge,
            value: SignedDuration::new(2_592_000, 1)
        }
    );
    assert_eq!(
        too_old.to_string(),
        "`max_age` of 720h 1ns is out of range 10ms..=720h"
    );
    let wait = |d| RetryPolicy::builder().retry_after_max(d).build();
    assert_eq!(
        wait(SignedDuration::ZERO).unwrap().retry_after_max(),
        SignedDuration::ZERO
    );
    assert_eq!(wait(MAX_DELAY).unwrap().retry_after_max(), MAX_DELAY);
    let too_long = wait(SignedDuration::from_hours(25)).unwrap_err();
    assert_eq!(
        too_long,
        PolicyError::DurationOutOfRange {
            field: DurationSetting::RetryAfterMax,
            value: SignedDuration::from_hours(25)
        }
    );
    assert_eq!(
        too_long.to_string(),
        "`retry_after_max` of 25h is out of range 0s..=24h"
    );
    assert_eq!(
        wait(-nanosecond),
        Err(PolicyError::DurationOutOfRange {
            field: DurationSetting::RetryAfterMax,
            value: -nanosecond
        })
    );
    let body = |n| RetryPolicy::builder().response_body_limit(n).build();
    assert_eq!(body(65_536).unwrap().response_body_limit(), 65_536);
    let too_big = body(usize::MAX).unwrap_err();
    assert_eq!(
        too_big,
        PolicyError::BodyLimitOutOfRange { bytes: usize::MAX }
    );
    assert_eq!(
        too_big.to_string(),
        format!(
            "response_body_limit of {} bytes is out of range 0..=65536",
            usize::MAX
        )
    );

    // The JSON form is checked the same way.
    let json_error = |value: serde_json::Value| {
        serde_json::from_value::<RetryPolicy>(value)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        json_error(json!({"schedule": ["PT0.000000001S"]})),
        "retry delay 0 of the schedule (1ns) is out of range 10ms..=24h"
    );
    assert_eq!(
        json_error(
            json!({"schedule": ["PT0.001S"], "jitter_percent": 100, "max_attempts": u32::MAX})
        ),
        "retry delay 0 of the schedule (1ms) is out of range 10ms..=24h"
    );
    assert_eq!(
        json_error(
            json!({"schedule": ["PT0.01S"], "jitter_percent": 100, "max_attempts": u32::MAX})
        ),
        "max_attempts of 4294967295 is out of range 1..=100"
    );
    assert_eq!(
        json_error(json!({"max_age": "PT744H"})),
        "`max_age` of 744h is out of range 10ms..=720h"
    );
    assert_eq!(
        json_error(json!({"response_body_limit": 65_537})),
        "response_body_limit of 65537 bytes is out of range 0..=65536"
    );
}

/// No delay is rounded, and none, with any jitter, is shorter than `MIN_DELAY`.
#[test]
fn delays_keep_their_nanoseconds_and_never_fall_below_the_minimum() {
    use optout_relay::delivery::MIN_DELAY;
    let full = RetryPolicy::builder()
        .schedule([
            SignedDuration::from_millis(10),
            SignedDuration::new(1, 500_001),
        ])
        .jitter_percent(100)
        .build()
        .unwrap();
    // random % 201 = 0: a factor of 0; 1: 1 %; 100: 100 %; 200: 200 %.
    assert_eq!(full.delay(1, 0), MIN_DELAY);
    assert_eq!(full.delay(1, 1), MIN_DELAY);
    assert_eq!(full.delay(1, 100), SignedDuration::from_millis(10));
    assert_eq!(full.delay(1, 200), SignedDuration::from_millis(20));
    assert_eq!(full.delay(2, 0), MIN_DELAY);
    assert_eq!(full.delay(2, 1), SignedDuration::from_nanos(10_005_000));
    assert_eq!(full.delay(2, 100), SignedDuration::new(1, 500_001));
    assert_eq!(full.delay(2, 200), SignedDuration::new(2, 1_000_002));
    // 15 ms at 83 %: 12.45 ms, not 12 ms.
    let fine = RetryPolicy::builder()
        .schedule([SignedDuration::from_millis(15)])
        .jitter_percent(20)
        .build()
        .unwrap();
    assert_eq!(fine.delay(1, 3), SignedDuration::from_micros(12_450));
    // Through the planner: the next attempt is exactly one minimum delay after `now`.
    let mut d = delivery();
    assert_eq!(
        d.record(Ok(&response(503)), at(T0), at(T1), &full, 0),
        Step::RetryAt {
            at: at("2026-11-26T09:00:01.010Z")
        }
    );
}

#[test]
fn retry_after_values() {
    let now = at(T0);
    assert_eq!(parse_retry_after("0", now).unwrap(), now);
    assert_eq!(
        parse_retry_after(" 60 ", now).unwrap(),
        at("2026-11-26T09:01:00Z")
    );
    assert_eq!(
        parse_retry_after("Thu, 26 Nov 2026 09:00:30 GMT", now).unwrap(),
        at("2026-11-26T09:00:30Z")
    );
    // A date in the past means now.
    assert_eq!(
        parse_retry_after("Wed, 25 Nov 2026 09:00:00 GMT", now).unwrap(),
        now
    );
    assert_eq!(parse_retry_after("", now), Err(RetryAfterError::Empty));
    assert_eq!(
        parse_retry_after("1.5", now),
        Err(RetryAfterError::Malformed)
    );
    assert_eq!(
        parse_retry_after("tomorrow", now),
        Err(RetryAfterError::Malformed)
    );
    assert_eq!(
        parse_retry_after(&"9".repeat(65), now),
        Err(RetryAfterError::TooLong { len: 65 })
    );
    assert!(parse_retry_after(&"9".repeat(64), now).is_ok());
}

/// Issue 12: RFC 9110 has recipients accept all three HTTP-date forms; RFC 850 and asctime were
/// ignored (a retry 5 s later instead of 10 min), and a date past the range of a `Timestamp` was
/// ignored instead of capped at the policy's `retry_after_max` (1 h). Exact times through the
/// planner (received at 09:00:01, schedule 5 s, no jitter).
#[test]
fn retry_after_reads_every_http_date_form_and_caps_dates_beyond_range() {
    let policy = flat_policy();
    let case = |value: &str| {
        let mut d = delivery();
        d.record(
            Ok(&with_retry_after(503, value)),
            at(T0),
            at(T1),
            &policy,
            0,
        )
    };
    let retry = |s: &str| Step::RetryAt { at: at(s) };
    let scheduled = retry("2026-11-26T09:00:06Z");
    let capped = retry("2026-11-26T10:00:01Z");
    let cases = [
        // The three forms, 10 minutes ahead.
        (
            "Thu, 26 Nov 2026 09:10:00 GMT",
            retry("2026-11-26T09:10:00Z"),
        ),
        (
            "Thursday, 26-Nov-26 09:10:00 GMT",
            retry("2026-11-26T09:10:00Z"),
        ),
        ("Thu Nov 26 09:10:00 2026", retry("2026-11-26T09:10:00Z")),
        // asctime pads a one-digit day with a space.
        ("Sun Dec  6 09:00:00 2026", capped.clone()),
        // In the past (RFC 9110's own example, in each form): the schedule.
        ("Sun, 06 Nov 1994 08:49:37 GMT", scheduled.clone()),
        ("Sunday, 06-Nov-94 08:49:37 GMT", scheduled.clone()),
        ("Sun Nov  6 08:49:37 1994", scheduled.clone()),
        // Before the years httpdate reads: in the past.
        ("Sun, 20 Jul 1969 20:17:40 GMT", scheduled.clone()),
        ("Sun Jul 20 20:17:40 1969", scheduled.clone()),
        // Further than `retry_after_max`: capped.
        ("Sat, 26 Dec 2026 09:00:00 GMT", capped.clone()),
        // RFC 850's "70" is 2070 in 2026 (not more than 50 years ahead), not 1970.
        ("Wednesday, 01-Jan-70 00:00:00 GMT", capped.clone()),
        ("Fri, 01 Jan 9999 00:00:00 GMT", capped.clone()),
        // Past the last `Timestamp` (9999-12-30T22:00Z), and years of more than four digits.
        ("Fri, 31 Dec 9999 23:59:59 GMT", capped.clone()),
        ("Fri Dec 31 23:59:59 9999", capped.clone()),
        ("Sat, 01 Jan 10000 00:00:00 GMT", capped.clone()),
        ("Sat Jan  1 00:00:00 10000", capped.clone()),
        (
            "Fri, 01 Jan 99999999999999999999 00:00:00 GMT",
            capped.clone(),
        ),
        // Malformed, or a weekday that is not the date's: ignored.
        ("Mon, 01 Jan 10000 00:00:00 GMT", scheduled.clone()),
        ("Fri, 26 Nov 2026 09:10:00 GMT", scheduled.clone()),
        ("Friday, 26-Nov-26 09:10:00 GMT", scheduled.clone()),
        ("Thu, 31 Nov 2026 09:10:00 GMT", scheduled.clone()),
        ("Thu, 26 Nov 2026 24:10:00 GMT", scheduled.clone()),
        ("Thu Nov 26 09:10:00 26", scheduled.clone()),
        ("Thu, 26 Nov 0 09:10:00 GMT", scheduled.clone()),
    ];
    for (value, expected) in cases {
        assert_eq!(case(value), expected, "{value}");
    }
}

#[test]
fn retry_after_dates_read_exactly() {
    let now = at(T0);
    let read = |value: &str| parse_retry_after(value, now);
    let ten_past = at("2026-11-26T09:10:00Z");
    assert_eq!(read("Thu, 26 Nov 2026 09:10:00 GMT"), Ok(ten_past));
    assert_eq!(read("Thursday, 26-Nov-26 09:10:00 GMT"), Ok(ten_past));
    assert_eq!(read("Thu Nov 26 09:10:00 2026"), Ok(ten_past));
    assert_eq!(read(" Thu Nov 26 09:10:00 2026 "), Ok(ten_past));
    assert_eq!(
        read("Sun Dec  6 09:00:00 2026"),
        Ok(at("2026-12-06T09:00:00Z"))
    );
    assert_eq!(
        read("Wednesday, 01-Jan-70 00:00:00 GMT"),
        Ok(at("2070-01-01T00:00:00Z"))
    );
    assert_eq!(
        read("Saturday, 01-Jan-77 00:00:00 GMT"),
        Ok(now),
        "1977: 2077 would be more than 50 years ahead"
    );
    assert_eq!(
        read("Tuesday, 31-Dec-69 23:59:59 GMT"),
        Ok(at("2069-12-31T23:59:59Z"))
    );
    assert_eq!(
        read("Fri, 01 Jan 9999 00:00:00 GMT"),
        Ok(at("9999-01-01T00:00:00Z"))
    );
    for beyond in [
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Sat, 01 Jan 10000 00:00:00 GMT",
        "Sat Jan  1 00:00:00 10000",
        "Fri, 01 Jan 99999999999999999999 00:00:00 GMT",
    ] {
        assert_eq!(read(beyond), Ok(Timestamp::MAX), "{beyond}");
    }
    for past in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 20 Jul 1969 20:17:40 GMT",
        "Sat, 01 Jan 0000 00:00:00 GMT",
    ] {
        assert_eq!(read(past), Ok(now), "{past}");
    }
    // Not an HTTP-date, but an RFC 2822 date with an offset, as before.
    assert_eq!(read("Thu, 26 Nov 2026 10:10:00 +0100"), Ok(ten_past));
    for malformed in [
        "Mon, 01 Jan 10000 00:00:00 GMT",
        "Fri, 26 Nov 2026 09:10:00 GMT",
        "Thu, 26-Nov-26 09:10:00 GMT",
        "Thursday, 26-Nov-2026 09:10:00 GMT",
        "Thu Nov 26 09:10:00 26",
        "Thu, 26 Nov 026 09:10:00 GMT",
    ] {
        assert_eq!(
            read(malformed),
            Err(RetryAfterError::Malformed),
            "{malformed}"
        );
    }
}

#[test]
fn status_classes() {
    let class = |s: u16| StatusClass::of(http::StatusCode::from_u16(s).unwrap());
    assert_eq!(class(204), StatusClass::Success);
    assert_eq!(class(429), StatusClass::Retryable);
    assert_eq!(class(410), StatusClass::Gone);
    assert_eq!(class(302), StatusClass::Permanent);
    assert_eq!(class(100), StatusClass::Permanent);
}

#[tokio::test]
async fn recording_client_and_client_fn() {
    let client = RecordingClient::new()
        .then(ScriptedAnswer::retry_after(503, "1"))
        .then(ScriptedAnswer::error(TransportErrorKind::Timeout))
        .otherwise(ScriptedAnswer::status(204));
    let request = |n: u8| {
        http::Request::post("http://127.0.0.1:9/")
            .body(vec![n])
            .unwrap()
    };
    let first = client.send(request(1)).await.unwrap();
    assert_eq!(
        (
            first.status().as_u16(),
            first.headers()["retry-after"].to_str().unwrap()
        ),
        (503, "1")
    );
    let second = client.send(request(2)).await.unwrap_err();
    assert_eq!(second.kind(), TransportErrorKind::Timeout);
    assert_eq!(second.to_string(), "timeout error: scripted timeout error");
    assert_eq!(client.clone().send(request(3)).await.unwrap().status(), 204);
    let bodies: Vec<Vec<u8>> = client
        .requests()
        .into_iter()
        .map(|r| r.into_body())
        .collect();
    assert_eq!(bodies, [vec![1], vec![2], vec![3]]);

    let echo = client_fn(|request: http::Request<Vec<u8>>| async move {
        Ok(http::Response::builder()
            .status(200)
            .body(request.into_body())
            .unwrap())
    });
    let shared: std::sync::Arc<dyn HttpClient> = std::sync::Arc::new(echo);
    assert_eq!(shared.send(request(7)).await.unwrap().into_body(), [7]);
}
