//! Properties of the receiving side: any valid opt-out survives sender -> bytes -> receiver
//! exactly, in every encoding; no input (bytes, headers, JSON shapes) makes verify or parse
//! panic, and every rejection is a typed error.

#[path = "support/node_requests.rs"]
mod node_requests;
use node_requests::NodeRequests;

use std::collections::BTreeMap;

use optout_relay::model::ActivityId;
use optout_relay::model::AttributeName;
use optout_relay::model::AttributeValue;
#[cfg(feature = "signing")]
use optout_relay::receive::Verifier;
use optout_relay::receive::{NoticeParser, NoticeScope, OptOutNotice};
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use proptest::prelude::*;

const ENCODINGS: [WebhookEncoding; 4] = [
    WebhookEncoding::Query,
    WebhookEncoding::Form,
    WebhookEncoding::Json,
    WebhookEncoding::JsonEnvelope,
];

fn email() -> impl Strategy<Value = Email> {
    (
        "[^\\s@\\p{Cc}]{1,16}",
        prop::collection::vec("[^\\s@.\\p{Cc}]{1,10}", 1..4),
    )
        .prop_filter_map("a valid email", |(local, labels)| {
            Email::new(format!("{local}@{}", labels.join("."))).ok()
        })
}

fn mobile() -> impl Strategy<Value = Mobile> {
    "\\+[1-9][0-9]{7,14}".prop_map(|m| Mobile::new(m).unwrap())
}

fn id() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,32}"
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800, 0i32..1_000_000_000).prop_map(|(s, n)| Timestamp::new(s, n).unwrap())
}

#[derive(Debug, Clone)]
struct Case {
    encoding: WebhookEncoding,
    kind: EventKind,
    email: Email,
    mobile: Mobile,
    profile: String,
    crm: String,
    score: i64,
    vip: bool,
    subscription: String,
    section: String,
    event: String,
    activity: Option<String>,
    occurred_at: Timestamp,
    origin: Origin,
    flow: String,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            prop::sample::select(ENCODINGS.to_vec()),
            prop::sample::select(EventKind::ALL.to_vec()),
            email(),
            mobile(),
            id(),
            "(?s).{0,20}",
            any::<i64>(),
            any::<bool>(),
        ),
        (
            id(),
            id(),
            id(),
            prop::option::of(id()),
            timestamp(),
            prop::sample::select(Origin::ALL.to_vec()),
            id(),
        ),
    )
        .prop_map(
            |(
                (encoding, kind, email, mobile, profile, crm, score, vip),
                (subscription, section, event, activity, occurred_at, origin, flow),
            )| Case {
                encoding,
                kind,
                email,
                mobile,
                profile,
                crm,
                score,
                vip,
                subscription,
                section,
                event,
                activity,
                occurred_at,
                origin,
                flow,
            },
        )
}

fn node(encoding: WebhookEncoding) -> WebhookNode {
    WebhookNode::builder("https://crm.example.com/optout?source=platform&x=1")
        .encoding(encoding)
        .param("email", ParamSource::Email)
        .param("mobile", ParamSource::Mobile)
        .param(
            "crm",
            ParamSource::Attribute(AttributeName::new("crm_id").unwrap()),
        )
        .param(
            "score",
            ParamSource::Attribute(AttributeName::new("score").unwrap()),
        )
        .param(
            "vip",
            ParamSource::Attribute(AttributeName::new("vip").unwrap()),
        )
        .param("profile", ParamSource::ProfileId)
        .optional_param("subscription", ParamSource::SubscriptionId)
        .param("section", ParamSource::SectionId)
        .param("kind", ParamSource::EventKind)
        .param("channel", ParamSource::Channel)
        .param("event", ParamSource::EventId)
        .optional_param("activity", ParamSource::ActivityId)
        .param("occurred_at", ParamSource::OccurredAt)
        .param("origin", ParamSource::Origin)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_valid_opt_out_round_trips_exactly(case in case()) {
        let profile_id = ProfileId::new(case.profile.clone()).unwrap();
        let section = SectionId::new(case.section.clone()).unwrap();
        let subscription = SubscriptionId::new(case.subscription.clone()).unwrap();
        let event_id = EventId::new(case.event.clone()).unwrap();
        let mut event = match case.kind {
            EventKind::EmailUnsubscribe => OptOutEvent::email_unsubscribe(
                event_id, profile_id.clone(), section.clone(), subscription.clone(), case.occurred_at),
            EventKind::EmailAbuse => OptOutEvent::email_abuse(
                event_id, profile_id.clone(), section.clone(), case.occurred_at),
            EventKind::SmsUnsubscribe => OptOutEvent::sms_unsubscribe(
                event_id, profile_id.clone(), section.clone(), subscription.clone(), case.occurred_at),
        }
        .with_origin(case.origin);
        if let Some(activity) = &case.activity {
            event = event.with_activity(ActivityId::new(activity.clone()).unwrap());
        }
        let profile = Profile::new(profile_id.clone())
            .with_email(case.email.clone())
            .with_mobile(case.mobile.clone())
            .with_attribute(AttributeName::new("crm_id").unwrap(), case.crm.clone())
            .with_attribute(AttributeName::new("score").unwrap(), case.score)
            .with_attribute(AttributeName::new("vip").unwrap(), case.vip);

        let node = node(case.encoding);
        let flow = FlowId::new(case.flow.clone()).unwrap();
        let built = node.build_request(&flow, &profile, &event, case.occurred_at).unwrap();
        let notice = NoticeParser::from_node(&node).parse(built.request());
        let notice = match notice {
            Ok(notice) => notice,
            Err(error) => return Err(TestCaseError::fail(format!("{}: {error}", case.encoding))),
        };

        let json = case.encoding.content_type() == Some("application/json");
        let scope = match case.kind {
            EventKind::EmailAbuse => NoticeScope::Section(section.clone()),
            _ => NoticeScope::Subscription(subscription),
        };
        let mut expected = OptOutNotice::new(case.kind, scope);
        expected.webhook_id = Some(WebhookId::derive(&flow, event.id()).to_string());
        expected.email = Some(case.email);
        expected.mobile = Some(case.mobile);
        expected.profile = Some(profile_id);
        expected.attributes = BTreeMap::from([
            (AttributeName::new("crm_id").unwrap(), AttributeValue::Text(case.crm)),
            (AttributeName::new("score").unwrap(), if json {
                AttributeValue::from(case.score)
            } else {
                AttributeValue::Text(case.score.to_string())
            }),
            (AttributeName::new("vip").unwrap(), if json {
                AttributeValue::Bool(case.vip)
            } else {
                AttributeValue::Text(case.vip.to_string())
            }),
        ]);
        expected.section = Some(section);
        expected.event = Some(event.id().clone());
        expected.activity = event.activity().cloned();
        expected.occurred_at = Some(case.occurred_at);
        expected.origin = Some(case.origin);
        prop_assert_eq!(notice, expected);
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        encoding in prop::sample::select(ENCODINGS.to_vec()),
        content_type in prop::option::of("[ -~]{0,40}"),
        body in prop::collection::vec(any::<u8>(), 0..512),
        query in "[a-zA-Z0-9=&%+._~-]{0,200}",
    ) {
        let parser = NoticeParser::from_node(&node(encoding)).with_fixed_kind(EventKind::EmailAbuse);
        let mut headers = http::HeaderMap::new();
        if let Some(value) = content_type.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            headers.insert("content-type", value);
        }
        let uri: http::Uri = format!("https://h.example/optout?{query}").parse().unwrap();
        if let Err(error) = parser.parse_parts(&uri, &headers, &body) {
            let _ = error.to_string();
        }
    }

    #[test]
    fn arbitrary_json_shapes_never_panic(value in json_value(), envelope in any::<bool>()) {
        let encoding = if envelope { WebhookEncoding::JsonEnvelope } else { WebhookEncoding::Json };
        let parser = NoticeParser::builder()
            .encoding(encoding)
            .optional_param("email", ParamSource::Email)
            .optional_param("mobile", ParamSource::Mobile)
            .optional_param("kind", ParamSource::EventKind)
            .optional_param("subscription", ParamSource::SubscriptionId)
            .optional_param("section", ParamSource::SectionId)
            .optional_param("crm", ParamSource::Attribute(AttributeName::new("crm").unwrap()))
            .optional_param("occurred_at", ParamSource::OccurredAt)
            .build()
            .unwrap();
        let body = serde_json::to_vec(&value).unwrap();
        let request = http::Request::post("https://h/").body(body).unwrap();
        match parser.parse(&request) {
            Ok(notice) => {
                prop_assert!(notice.email.is_some() || notice.mobile.is_some() || !notice.attributes.is_empty());
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let key = prop::sample::select(vec![
        "email",
        "mobile",
        "kind",
        "subscription",
        "section",
        "crm",
        "occurred_at",
        "type",
        "timestamp",
        "data",
        "other",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "x@example.com",
            "+46701234567",
            "email_abuse",
            "email_unsubscribe",
            "opt_out.email_abuse",
            "opt_out.sms_unsubscribe",
            "2026-11-26T09:30:00Z",
            "sec-1",
            "123456",
            "",
            "\u{0}",
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8).prop_map(|entries| {
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

#[cfg(feature = "signing")]
proptest! {
    #[test]
    fn arbitrary_headers_never_panic_the_verifier(
        id in prop::collection::vec(any::<u8>(), 0..64),
        ts in prop_oneof!["[0-9]{0,21}".prop_map(String::into_bytes), prop::collection::vec(any::<u8>(), 0..24)],
        signature in prop_oneof![
            "(v1,[A-Za-z0-9+/=]{0,48} ?){0,20}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..128),
        ],
        body in prop::collection::vec(any::<u8>(), 0..256),
        now in any::<i32>(),
    ) {
        let verifier = Verifier::from_secrets(["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]).unwrap();
        let mut headers = http::HeaderMap::new();
        for (name, value) in [("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", signature)] {
            if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                headers.insert(name, value);
            }
        }
        let now = Timestamp::from_second(i64::from(now)).unwrap();
        match verifier.verify(&headers, &body, now) {
            Ok(_) => prop_assert!(false, "a random signature verified"),
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
}
