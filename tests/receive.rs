//! The receiving side's parser: the round trip sender -> bytes -> receiver for every encoding and
//! event kind, parsers from flows and for the platform's own webhook, and every error branch.

#[path = "support/node_requests.rs"]
mod node_requests;
use node_requests::NodeRequests;

use optout_relay::model::ActivityId;
use optout_relay::model::AttributeName;
use optout_relay::model::AttributeValue;
use optout_relay::receive::NoticeError;
use optout_relay::receive::{
    BodyProblem, ConflictWith, NoticeParser, NoticeScope, OptOutNotice, ValueProblem,
};
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::WebhookConfigError;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::*;

const ENCODINGS: [WebhookEncoding; 4] = [
    WebhookEncoding::Query,
    WebhookEncoding::Form,
    WebhookEncoding::Json,
    WebhookEncoding::JsonEnvelope,
];

fn now() -> Timestamp {
    "2026-11-26T09:30:05Z".parse().unwrap()
}

fn flow() -> FlowId {
    FlowId::new("crm").unwrap()
}

fn section() -> Section {
    Section::new(
        SectionId::new("sec-1").unwrap(),
        [Folder::new(
            FolderId::new("news").unwrap(),
            [
                SubscriptionId::new("123456").unwrap(),
                SubscriptionId::new("200001").unwrap(),
            ],
        )],
    )
    .unwrap()
}

fn profile() -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(Email::new("a+b@example.com").unwrap())
        .with_mobile(Mobile::new("+46701234567").unwrap())
        .with_attribute(AttributeName::new("crm_id").unwrap(), "C-42 & co=1")
        .with_attribute(AttributeName::new("score").unwrap(), 42)
        .with_attribute(AttributeName::new("vip").unwrap(), true)
}

fn events() -> Vec<OptOutEvent> {
    let at = "2026-11-26T09:30:00.123456789Z".parse().unwrap();
    let (id, profile, section) = (
        |s: &str| EventId::new(s).unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
    );
    vec![
        OptOutEvent::email_unsubscribe(
            id("evt-1"),
            profile.clone(),
            section.clone(),
            SubscriptionId::new("123456").unwrap(),
            at,
        )
        .with_activity(ActivityId::new("weekly-47").unwrap()),
        OptOutEvent::email_abuse(id("evt-2"), profile.clone(), section.clone(), at)
            .with_origin(Origin::Api),
        OptOutEvent::sms_unsubscribe(
            id("evt-3"),
            profile,
            section,
            SubscriptionId::new("200001").unwrap(),
            at,
        )
        .with_origin(Origin::FileImport),
    ]
}

/// A node sending every source there is.
fn full_node(encoding: WebhookEncoding) -> WebhookNode {
    WebhookNode::builder("https://crm.example.com/optout?source=platform")
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
        .optional_param("folder", ParamSource::FolderId)
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

/// What the receiver must read back: the original values, exactly. In query and form encodings
/// attribute values are text.
fn expected(event: &OptOutEvent, encoding: WebhookEncoding, webhook_id: &str) -> OptOutNotice {
    let profile = profile();
    let scope = match event.subscription() {
        Some(subscription) => NoticeScope::Subscription(subscription.clone()),
        None => NoticeScope::Section(event.section().clone()),
    };
    let mut notice = OptOutNotice::new(event.kind(), scope);
    notice.webhook_id = Some(webhook_id.to_owned());
    notice.email = profile.email.clone();
    notice.mobile = profile.mobile.clone();
    notice.profile = Some(profile.id.clone());
    notice.attributes = profile
        .attributes
        .iter()
        .map(|(name, value)| {
            let value = if encoding.content_type() == Some("application/json") {
                value.clone()
            } else {
                AttributeValue::Text(value.to_text().into_owned())
            };
            (name.clone(), value)
        })
        .collect();
    notice.section = Some(event.section().clone());
    notice.folder = event
        .subscription()
        .and_then(|s| section().folder_of(s).cloned());
    notice.event = Some(event.id().clone());
    notice.activity = event.activity().cloned();
    notice.occurred_at = Some(event.occurred_at());
    notice.origin = Some(event.origin());
    notice
}

#[test]
fn round_trip_every_encoding_and_every_kind_gives_the_original_values() {
    for encoding in ENCODINGS {
        let node = full_node(encoding);
        let parser = NoticeParser::from_node(&node);
        assert_eq!(parser.encoding(), encoding);
        assert_eq!(parser.params(), node.params());
        for event in events() {
            let built = node
                .build_request_in(&section(), &flow(), &profile(), &event, now())
                .unwrap();
            // Through bytes: the request as a server would rebuild it from the wire.
            let request = built.request();
            let wire = http::Request::builder()
                .method(request.method())
                .uri(request.uri().to_string())
                .header(
                    "content-type",
                    request
                        .headers()
                        .get("content-type")
                        .map_or("text/plain", |v| v.to_str().unwrap()),
                )
                .header("webhook-id", request.headers()["webhook-id"].clone())
                .body(request.body().clone())
                .unwrap();
            let notice = parser
                .parse(&wire)
                .unwrap_or_else(|e| panic!("{encoding} {}: {e}", event.kind()));
            assert_eq!(
                notice,
                expected(&event, encoding, built.webhook_id().as_str()),
                "{encoding} {}",
                event.kind()
            );
            assert_eq!(notice.channel(), event.channel());
            assert_eq!(notice.subscription(), event.subscription());
        }
    }
}

#[test]
#[cfg(feature = "signing")] // relay.json's SMS flow signs
fn a_minimal_node_round_trips_with_the_kind_from_the_flow() {
    // relay.json's three flows: no event_kind parameter; the kind comes from the listen node
    // (or the envelope's type).
    let file = FlowFile::from_json(include_str!("../examples/flows/relay.json")).unwrap();
    let (ada, bo, cy) = (
        Profile::new(ProfileId::new("p-1").unwrap())
            .with_email(Email::new("ada+news@example.com").unwrap()),
        Profile::new(ProfileId::new("p-1").unwrap())
            .with_email(Email::new("bo@example.org").unwrap()),
        Profile::new(ProfileId::new("p-1").unwrap())
            .with_mobile(Mobile::new("+46 70 123 45 67").unwrap()),
    );
    let events = events();
    for (flow, profile, event) in [
        (&file.flows[0], &ada, &events[0]),
        (&file.flows[1], &bo, &events[1]),
        (&file.flows[2], &cy, &events[2]),
    ] {
        let parser = NoticeParser::from_flow(flow);
        assert_eq!(parser.fixed_kind(), Some(event.kind()));
        let built = flow
            .webhook
            .build_request(&flow.id, profile, event, now())
            .unwrap();
        let notice = parser.parse(built.request()).unwrap();
        assert_eq!(notice.kind, event.kind());
        assert_eq!(notice.email, profile.email);
        assert_eq!(notice.mobile, profile.mobile);
        assert_eq!(
            notice.webhook_id.as_deref(),
            Some(built.webhook_id().as_str())
        );
        match event.kind() {
            EventKind::EmailAbuse => {
                assert_eq!(notice.scope, NoticeScope::Section(event.section().clone()));
                assert_eq!(notice.event.as_ref(), Some(event.id()));
            }
            _ => assert_eq!(
                notice.scope,
                NoticeScope::Subscription(event.subscription().unwrap().clone())
            ),
        }
        // From the node alone, only the envelope says the kind.
        let from_node = NoticeParser::from_node(&flow.webhook).parse(built.request());
        if flow.webhook.encoding() == WebhookEncoding::JsonEnvelope {
            assert_eq!(from_node.unwrap().occurred_at, Some(event.occurred_at()));
        } else {
            assert_eq!(from_node, Err(NoticeError::UnknownKind));
        }
    }
}

fn platform_parser() -> NoticeParser {
    NoticeParser::builder()
        .encoding(WebhookEncoding::Query)
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .fixed_kind(EventKind::EmailUnsubscribe)
        .build()
        .unwrap()
}

fn get(uri: &str) -> http::Request<Vec<u8>> {
    http::Request::post(uri).body(Vec::new()).unwrap()
}

fn body(content_type: Option<&str>, body: &str) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::post("https://crm.example.com/optout?email=ignored");
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(body.as_bytes().to_vec()).unwrap()
}

#[test]
fn the_platforms_own_query_string_webhook() {
    let parser = platform_parser();
    let notice = parser
        .parse(&get(
            "https://crm.example.com/optout?source=platform&email=a%2Bb%40example.com&subscription=123456&utm=x",
        ))
        .unwrap();
    let mut expected = OptOutNotice::new(
        EventKind::EmailUnsubscribe,
        NoticeScope::Subscription(SubscriptionId::new("123456").unwrap()),
    );
    expected.email = Some(Email::new("a+b@example.com").unwrap());
    assert_eq!(notice, expected);
    assert_eq!(notice.webhook_id, None);
    // A literal `+` is a space, as in every form decoder: an unencoded a+b@ is not an address.
    assert!(matches!(
        parser.parse(&get("https://h/?email=a+b@example.com&subscription=1")),
        Err(NoticeError::InvalidValue { param, .. }) if param == "email"
    ));
    // Unencoded `@` and repeated identical values are fine; percent signs without hex are kept.
    let notice = parser
        .parse(&get(
            "https://h/?email=x@example.com&subscription=1&email=x%40example.com",
        ))
        .unwrap();
    assert_eq!(notice.email.unwrap().as_str(), "x@example.com");
    let notice = parser
        .parse(&get(
            "https://h/?email=x@example.com&subscription=50%25off%zz",
        ))
        .unwrap();
    assert_eq!(notice.subscription().unwrap().as_str(), "50%off%zz");
}

#[test]
fn missing_parameters_are_named() {
    assert_eq!(
        platform_parser().parse(&get("https://h/?email=x%40example.com")),
        Err(NoticeError::MissingParameter {
            param: "subscription".to_owned(),
            param_source: ParamSource::SubscriptionId,
        })
    );
    assert_eq!(
        platform_parser().parse(&get("https://h/optout")),
        Err(NoticeError::MissingParameter {
            param: "email".to_owned(),
            param_source: ParamSource::Email,
        })
    );
    // JSON null counts as absent.
    let json = NoticeParser::from_node(&full_node(WebhookEncoding::Json));
    let error = json
        .parse(&body(Some("application/json"), r#"{"email": null}"#))
        .unwrap_err();
    assert_eq!(
        error,
        NoticeError::MissingParameter {
            param: "email".to_owned(),
            param_source: ParamSource::Email,
        }
    );
}

fn lenient(kind_source: bool) -> NoticeParser {
    let mut builder = NoticeParser::builder()
        .encoding(WebhookEncoding::Json)
        .optional_param("email", ParamSource::Email)
        .optional_param("mobile", ParamSource::Mobile)
        .optional_param("profile", ParamSource::ProfileId)
        .optional_param(
            "crm",
            ParamSource::Attribute(AttributeName::new("crm_id").unwrap()),
        )
        .optional_param("subscription", ParamSource::SubscriptionId)
        .optional_param("list", ParamSource::SubscriptionId)
        .optional_param("section", ParamSource::SectionId)
        .optional_param("channel", ParamSource::Channel)
        .optional_param("origin", ParamSource::Origin)
        .optional_param("event", ParamSource::EventId)
        .optional_param("occurred_at", ParamSource::OccurredAt);
    if kind_source {
        builder = builder.optional_param("kind", ParamSource::EventKind);
    }
    builder.build().unwrap()
}

fn json(parser: &NoticeParser, text: &str) -> Result<OptOutNotice, NoticeError> {
    parser.parse(&body(Some("application/json"), text))
}

#[test]
fn the_scope_needs_the_subscription_or_the_section() {
    let parser = lenient(true);
    assert_eq!(
        json(
            &parser,
            r#"{"kind": "email_abuse", "email": "x@example.com"}"#
        ),
        Err(NoticeError::MissingForKind {
            kind: EventKind::EmailAbuse,
            param: "section".to_owned(),
            param_source: ParamSource::SectionId,
        })
    );
    assert_eq!(
        json(
            &parser,
            r#"{"kind": "sms_unsubscribe", "mobile": "+46701234567"}"#
        ),
        Err(NoticeError::MissingForKind {
            kind: EventKind::SmsUnsubscribe,
            param: "subscription".to_owned(),
            param_source: ParamSource::SubscriptionId,
        })
    );
    // A mapping without a Section parameter cannot take a spam complaint.
    let abuse = NoticeParser::builder()
        .param("email", ParamSource::Email)
        .fixed_kind(EventKind::EmailAbuse)
        .build()
        .unwrap();
    let error = abuse
        .parse(&get("https://h/?email=x%40example.com"))
        .unwrap_err();
    assert_eq!(
        error,
        NoticeError::NotMapped {
            kind: EventKind::EmailAbuse,
            param_source: ParamSource::SectionId,
        }
    );
    assert_eq!(
        error.to_string(),
        "an Email - Abuse opt-out needs its section_id, and no parameter is mapped to it"
    );
    // A Subscription sent with a spam complaint is ignored: the scope is the Section.
    let notice = json(
        &parser,
        r#"{"kind": "email_abuse", "email": "x@example.com", "section": "sec-1", "subscription": "1"}"#,
    )
    .unwrap();
    assert_eq!(
        notice.scope,
        NoticeScope::Section(SectionId::new("sec-1").unwrap())
    );
    assert_eq!(notice.subscription(), None);
}

#[test]
fn repeated_and_conflicting_parameters_are_named() {
    assert_eq!(
        platform_parser().parse(&get(
            "https://h/?email=x%40example.com&subscription=1&email=y%40example.com"
        )),
        Err(NoticeError::Repeated {
            param: "email".to_owned()
        })
    );
    let form = NoticeParser::builder()
        .encoding(WebhookEncoding::Form)
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .fixed_kind(EventKind::EmailUnsubscribe)
        .build()
        .unwrap();
    assert_eq!(
        form.parse(&body(
            Some("application/x-www-form-urlencoded"),
            "email=x%40example.com&subscription=1&subscription=2"
        )),
        Err(NoticeError::Repeated {
            param: "subscription".to_owned()
        })
    );
    let parser = lenient(true);
    // Repeated keys in a JSON object too.
    assert_eq!(
        json(
            &parser,
            r#"{"kind": "email_unsubscribe", "email": "x@example.com", "email": "y@example.com", "subscription": "1"}"#
        ),
        Err(NoticeError::Repeated {
            param: "email".to_owned()
        })
    );
    // Two parameters of one source that disagree.
    let conflict = json(
        &parser,
        r#"{"kind": "email_unsubscribe", "email": "x@example.com", "subscription": "1", "list": "2"}"#,
    );
    assert_eq!(
        conflict,
        Err(NoticeError::Conflict {
            param: "list".to_owned(),
            with: ConflictWith::Param("subscription".to_owned())
        })
    );
    assert_eq!(
        conflict.unwrap_err().to_string(),
        "parameter `list` disagrees with `subscription`"
    );
    // ...and that agree.
    assert!(json(
        &parser,
        r#"{"kind": "email_unsubscribe", "email": "x@example.com", "subscription": "1", "list": "1"}"#
    )
    .is_ok());
    // A channel that does not fit the kind.
    assert_eq!(
        json(
            &parser,
            r#"{"kind": "email_unsubscribe", "channel": "sms", "email": "x@example.com", "subscription": "1"}"#
        ),
        Err(NoticeError::Conflict {
            param: "channel".to_owned(),
            with: ConflictWith::EventKind(EventKind::EmailUnsubscribe)
        })
    );
}

#[test]
fn the_kind_comes_from_the_parameter_the_envelope_or_the_fixed_kind_and_they_must_agree() {
    // No kind anywhere.
    assert_eq!(
        json(
            &lenient(false),
            r#"{"email": "x@example.com", "subscription": "1"}"#
        ),
        Err(NoticeError::UnknownKind)
    );
    // The platform's names are read too.
    let notice = json(
        &lenient(true),
        r#"{"kind": "SMS - Unsubscribe", "mobile": "+46701234567", "subscription": "1"}"#,
    )
    .unwrap();
    assert_eq!(notice.kind, EventKind::SmsUnsubscribe);
    // The fixed kind against a sent kind.
    let fixed = lenient(true).with_fixed_kind(EventKind::EmailUnsubscribe);
    assert_eq!(
        json(
            &fixed,
            r#"{"kind": "email_abuse", "email": "x@example.com", "section": "s"}"#
        ),
        Err(NoticeError::Conflict {
            param: "kind".to_owned(),
            with: ConflictWith::FixedKind(EventKind::EmailUnsubscribe)
        })
    );
    // The envelope's type against the parameter, and against the fixed kind.
    let envelope = NoticeParser::builder()
        .encoding(WebhookEncoding::JsonEnvelope)
        .param("email", ParamSource::Email)
        .optional_param("subscription", ParamSource::SubscriptionId)
        .optional_param("section", ParamSource::SectionId)
        .optional_param("kind", ParamSource::EventKind)
        .optional_param("occurred_at", ParamSource::OccurredAt)
        .build()
        .unwrap();
    let env = |text: &str| envelope.parse(&body(Some("application/json"), text));
    assert_eq!(
        env(
            r#"{"type": "opt_out.email_unsubscribe", "data": {"kind": "email_abuse", "email": "x@example.com", "section": "s"}}"#
        ),
        Err(NoticeError::Conflict {
            param: "kind".to_owned(),
            with: ConflictWith::EnvelopeType
        })
    );
    assert_eq!(
        envelope
            .clone()
            .with_fixed_kind(EventKind::EmailAbuse)
            .parse(&body(None, r#"{"type": "opt_out.email_unsubscribe", "data": {"email": "x@example.com", "subscription": "1"}}"#)),
        Err(NoticeError::Conflict {
            param: "type".to_owned(),
            with: ConflictWith::FixedKind(EventKind::EmailAbuse)
        })
    );
    // The envelope's timestamp against occurred_at.
    assert_eq!(
        env(
            r#"{"type": "opt_out.email_unsubscribe", "timestamp": "2026-11-26T09:30:00Z",
                "data": {"email": "x@example.com", "subscription": "1", "occurred_at": "2026-11-26T09:31:00Z"}}"#
        ),
        Err(NoticeError::Conflict {
            param: "occurred_at".to_owned(),
            with: ConflictWith::EnvelopeTimestamp
        })
    );
    let agreed = env(r#"{"type": "opt_out.email_unsubscribe", "timestamp": "2026-11-26T09:30:00Z", "extra": [1],
                "data": {"email": "x@example.com", "subscription": "1", "occurred_at": "2026-11-26T10:30:00+01:00"}}"#)
    .unwrap();
    assert_eq!(
        agreed.occurred_at,
        Some("2026-11-26T09:30:00Z".parse().unwrap())
    );
    // Envelope fields that are not what they should be.
    for (text, param) in [
        (
            r#"{"type": "opt_out.email_bounce", "data": {"email": "x@example.com"}}"#,
            "type",
        ),
        (
            r#"{"type": "email_unsubscribe", "data": {"email": "x@example.com"}}"#,
            "type",
        ),
        (r#"{"type": 7, "data": {"email": "x@example.com"}}"#, "type"),
        (
            r#"{"type": "opt_out.email_unsubscribe", "timestamp": "yesterday", "data": {"email": "x@example.com", "subscription": "1"}}"#,
            "timestamp",
        ),
        (
            r#"{"type": "opt_out.email_unsubscribe", "timestamp": 1795685405, "data": {"email": "x@example.com", "subscription": "1"}}"#,
            "timestamp",
        ),
    ] {
        assert!(
            matches!(env(text), Err(NoticeError::InvalidValue { param: p, .. }) if p == param),
            "{text}: {:?}",
            env(text)
        );
    }
}

#[test]
fn invalid_values_are_named_and_never_repeated() {
    let parser = lenient(true);
    let base = r#""kind": "email_unsubscribe", "subscription": "1""#;
    for (field, value, param) in [
        ("email", r#""secret.person@@example.com""#, "email"),
        ("mobile", r#""secret mobile""#, "mobile"),
        ("profile", r#""""#, "profile"),
        ("section", r#""sec\u0000ret""#, "section"),
        ("channel", r#""fax""#, "channel"),
        ("origin", r#""telepathy""#, "origin"),
        ("occurred_at", r#""last tuesday""#, "occurred_at"),
        ("event", "12345", "event"),
        ("crm", r#"{"nested": "secret-crm"}"#, "crm"),
        ("email", r#"["x@example.com"]"#, "email"),
    ] {
        let text = format!(r#"{{{base}, "profile": "p", "{field}": {value}}}"#);
        let error = json(&parser, &text).unwrap_err();
        assert!(
            matches!(&error, NoticeError::InvalidValue { param: p, .. } if p == param),
            "{field}: {error:?}"
        );
        let message = error.to_string();
        for secret in ["secret", "fax", "telepathy", "tuesday", "12345"] {
            assert!(!message.contains(secret), "{message}");
        }
    }
    let kind = json(
        &parser,
        r#"{"kind": "email_bounce", "email": "x@example.com"}"#,
    );
    assert!(matches!(kind, Err(NoticeError::InvalidValue { param, .. }) if param == "kind"));
    // Query and form values that are not UTF-8 once decoded.
    let error = platform_parser()
        .parse(&get("https://h/?email=x%40example.com&subscription=%FF%FE"))
        .unwrap_err();
    assert_eq!(
        error,
        NoticeError::InvalidValue {
            param: "subscription".to_owned(),
            reason: ValueProblem::NotUtf8
        }
    );
    assert_eq!(
        error.to_string(),
        "parameter `subscription`: not UTF-8 once percent-decoded"
    );
}

#[test]
fn a_mobile_the_metadata_is_not_certain_of_is_kept_as_sent() {
    let text = r#"{"kind": "sms_unsubscribe", "subscription": "1", "mobile": "070-123 45 67"}"#;
    let notice = json(&lenient(true), text).unwrap();
    let mobile = notice.mobile.unwrap();
    assert_eq!(mobile.as_str(), "070-123 45 67");
    assert!(!mobile.is_normalized());
}

#[test]
fn something_must_identify_the_profile() {
    assert_eq!(
        json(
            &lenient(true),
            r#"{"kind": "email_unsubscribe", "subscription": "1"}"#
        ),
        Err(NoticeError::NoIdentifier)
    );
    for identifier in [
        r#""email": "x@example.com""#,
        r#""mobile": "0046 70 123 45 67""#,
        r#""profile": "p-1""#,
        r#""crm": 7"#,
    ] {
        let text = format!(r#"{{"kind": "email_unsubscribe", "subscription": "1", {identifier}}}"#);
        assert!(json(&lenient(true), &text).is_ok(), "{identifier}");
    }
}

#[test]
fn json_attributes_keep_numbers_and_booleans_and_unknown_fields_are_ignored() {
    let parser = NoticeParser::builder()
        .encoding(WebhookEncoding::Json)
        .param(
            "score",
            ParamSource::Attribute(AttributeName::new("score").unwrap()),
        )
        .param(
            "vip",
            ParamSource::Attribute(AttributeName::new("vip").unwrap()),
        )
        .param("subscription", ParamSource::SubscriptionId)
        .fixed_kind(EventKind::EmailUnsubscribe)
        .build()
        .unwrap();
    let notice = json(
        &parser,
        r#"{"score": 4.5, "vip": false, "subscription": "1", "new_field": {"a": [1, 2]}}"#,
    )
    .unwrap();
    assert_eq!(
        notice.attributes.values().cloned().collect::<Vec<_>>(),
        vec![
            AttributeValue::Number(serde_json::Number::from_f64(4.5).unwrap()),
            AttributeValue::Bool(false)
        ]
    );
}

#[test]
fn content_types_and_malformed_bodies() {
    let parser = lenient(true);
    let ok = r#"{"kind": "email_unsubscribe", "email": "x@example.com", "subscription": "1"}"#;
    for content_type in [
        None,
        Some("application/json"),
        Some("Application/JSON; charset=utf-8"),
        Some("application/cloudevents+json"),
    ] {
        assert!(
            parser.parse(&body(content_type, ok)).is_ok(),
            "{content_type:?}"
        );
    }
    assert_eq!(
        parser.parse(&body(Some("application/x-www-form-urlencoded"), ok)),
        Err(NoticeError::ContentType {
            encoding: WebhookEncoding::Json,
            expected: "application/json",
            found: "application/x-www-form-urlencoded".to_owned()
        })
    );
    let form = NoticeParser::from_node(&full_node(WebhookEncoding::Form));
    assert!(matches!(
        form.parse(&body(Some("text/plain"), "email=x")),
        Err(NoticeError::ContentType { .. })
    ));
    let mut binary = body(None, ok);
    binary.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_bytes(b"application/j\xffson").unwrap(),
    );
    assert!(matches!(
        parser.parse(&binary),
        Err(NoticeError::ContentType { .. })
    ));

    let malformed = |parser: &NoticeParser, text: &str| match parser.parse(&body(None, text)) {
        Err(NoticeError::MalformedBody { reason, .. }) => reason.to_string(),
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(
        malformed(&parser, r#"{"email": "secret@example.com""#),
        "the JSON ends early (line 1, column 30)"
    );
    assert_eq!(
        parser.parse(&body(None, r#"{"email": "secret@example.com""#)),
        Err(NoticeError::MalformedBody {
            encoding: WebhookEncoding::Json,
            reason: BodyProblem::JsonEndsEarly {
                line: 1,
                column: 30
            }
        })
    );
    assert_eq!(
        malformed(&parser, "email=secret"),
        "not valid JSON (line 1, column 1)"
    );
    assert_eq!(
        malformed(&parser, r#""secret@example.com""#),
        "the body is not a JSON object"
    );
    assert_eq!(
        malformed(&parser, "[1, 2]"),
        "the body is not a JSON object"
    );
    assert_eq!(
        malformed(&parser, ""),
        "the JSON ends early (line 1, column 0)"
    );
    let envelope = NoticeParser::from_node(&full_node(WebhookEncoding::JsonEnvelope));
    assert_eq!(
        malformed(&envelope, "null"),
        "the body is not a JSON object"
    );
    assert_eq!(
        malformed(&envelope, r#"{"type": "opt_out.email_abuse"}"#),
        "the envelope has no `data`"
    );
    assert_eq!(
        malformed(
            &envelope,
            r#"{"type": "opt_out.email_abuse", "data": "secret"}"#
        ),
        "the envelope's `data` is not a JSON object"
    );
    assert_eq!(
        malformed(
            &envelope,
            r#"{"type": "opt_out.email_abuse", "type": "opt_out.sms_unsubscribe", "data": {}}"#
        ),
        "the envelope repeats `type`, `timestamp` or `data`"
    );
    assert_eq!(
        envelope.parse(&body(
            None,
            r#"{"type": "opt_out.email_abuse", "data": {}, "data": {}}"#
        )),
        Err(NoticeError::MalformedBody {
            encoding: WebhookEncoding::JsonEnvelope,
            reason: BodyProblem::EnvelopeRepeats
        })
    );
    // Deep nesting is refused by the JSON reader, not by a stack overflow.
    let deep = format!(r#"{{"a": {}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    assert!(malformed(&parser, &deep).starts_with("not valid JSON"));
}

#[test]
fn debug_masks_personal_data() {
    let node = full_node(WebhookEncoding::Json);
    let built = node
        .build_request_in(&section(), &flow(), &profile(), &events()[0], now())
        .unwrap();
    let notice = NoticeParser::from_node(&node)
        .parse(built.request())
        .unwrap();
    let debug = format!("{notice:?}");
    for personal in ["a+b@example.com", "+46701234567", "C-42", "42"] {
        assert!(!debug.contains(personal), "{personal} in {debug}");
    }
    assert!(debug.contains("a***@e***.com"), "{debug}");
}

#[test]
fn parser_builders_report_bad_names() {
    assert!(matches!(
        NoticeParser::builder()
            .param("", ParamSource::Email)
            .build(),
        Err(WebhookConfigError::InvalidParamName { .. })
    ));
    assert_eq!(
        NoticeParser::builder()
            .param("email", ParamSource::Email)
            .optional_param("email", ParamSource::Mobile)
            .build(),
        Err(WebhookConfigError::DuplicateParam { index: 1, first: 0 })
    );
}

#[test]
fn reasons_are_matchable_and_their_messages_are_unchanged() {
    let conflicts = [
        (ConflictWith::Param("list".to_owned()), "`list`"),
        (ConflictWith::EnvelopeType, "`type`"),
        (
            ConflictWith::EnvelopeTimestamp,
            "the envelope's `timestamp`",
        ),
        (
            ConflictWith::FixedKind(EventKind::EmailAbuse),
            "the fixed kind Email - Abuse",
        ),
        (
            ConflictWith::EventKind(EventKind::SmsUnsubscribe),
            "the event kind SMS - Unsubscribe",
        ),
    ];
    for (with, text) in conflicts {
        let error = NoticeError::Conflict {
            param: "p".to_owned(),
            with,
        };
        assert_eq!(
            error.to_string(),
            format!("parameter `p` disagrees with {text}")
        );
    }
    let values = [
        (ValueProblem::NotUtf8, "not UTF-8 once percent-decoded"),
        (ValueProblem::NotString, "expected a JSON string"),
        (
            ValueProblem::NotAttributeValue,
            "expected a JSON string, number or boolean",
        ),
        (
            ValueProblem::NotEventKind,
            "expected email_unsubscribe, email_abuse or sms_unsubscribe",
        ),
        (ValueProblem::NotChannel, "expected email or sms"),
        (
            ValueProblem::NotOrigin,
            "expected communication, api or file_import",
        ),
        (
            ValueProblem::NotTimestamp,
            "not an RFC 3339 timestamp such as 2026-11-26T09:30:00Z",
        ),
        (
            ValueProblem::NotEnvelopeType,
            "expected `opt_out.email_unsubscribe`, `opt_out.email_abuse` or \
             `opt_out.sms_unsubscribe`",
        ),
        (
            ValueProblem::Id(SubscriptionId::new("").unwrap_err()),
            "invalid subscription id: it is empty",
        ),
        (
            ValueProblem::Attribute(Email::new("x").unwrap_err()),
            "invalid email address: it has no `@` outside quotes",
        ),
    ];
    for (reason, text) in values {
        let error = NoticeError::InvalidValue {
            param: "p".to_owned(),
            reason,
        };
        assert_eq!(error.to_string(), format!("parameter `p`: {text}"));
    }
    let bodies = [
        (
            BodyProblem::NotJson { line: 2, column: 7 },
            "not valid JSON (line 2, column 7)",
        ),
        (
            BodyProblem::JsonEndsEarly { line: 1, column: 0 },
            "the JSON ends early (line 1, column 0)",
        ),
        (BodyProblem::NotObject, "the body is not a JSON object"),
        (
            BodyProblem::EnvelopeRepeats,
            "the envelope repeats `type`, `timestamp` or `data`",
        ),
        (BodyProblem::NoData, "the envelope has no `data`"),
        (
            BodyProblem::DataNotObject,
            "the envelope's `data` is not a JSON object",
        ),
    ];
    for (reason, text) in bodies {
        let error = NoticeError::MalformedBody {
            encoding: WebhookEncoding::JsonEnvelope,
            reason,
        };
        assert_eq!(
            error.to_string(),
            format!("the json_envelope body is malformed: {text}")
        );
    }
}
