//! The Webhook node and the pure request builder: exact bytes of every request, configuration
//! and build errors, the webhook id, previews and lints. Signatures are in `webhook_signing.rs`.

#[path = "support/node_requests.rs"]
mod node_requests;
use node_requests::NodeRequests;

use optout_relay::lint::Severity;
use optout_relay::listen::FlowFileProblem;
use optout_relay::model::ActivityId;
use optout_relay::model::AttributeError;
use optout_relay::model::AttributeName;
use optout_relay::model::EmailProblem;
use optout_relay::model::MobileProblem;
use optout_relay::webhook::Auth;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::RequestBuildError;
use optout_relay::webhook::Secret;
#[cfg(feature = "signing")]
use optout_relay::webhook::SigningSecretProblem;
use optout_relay::webhook::WebhookConfigError;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookId;
use optout_relay::webhook::WebhookMethod;
use optout_relay::webhook::WebhookNodeBuilder;
use optout_relay::webhook::{
    AuthProblem, HeaderNameProblem, HeaderValueProblem, MissingValueReason, ParamNameProblem,
    UrlCharacterKind,
};
use optout_relay::*;
use serde_json::json;

const FLOW: &str = "crm-unsubscribes";
const ID_EVT_1: &str = "msg_f602f46a34bde42fbf025123344f856d";
const ID_EVT_2: &str = "msg_363859072f37b60038d83f3fcf43ef71";

fn flow() -> FlowId {
    FlowId::new(FLOW).unwrap()
}

fn now() -> Timestamp {
    "2026-11-26T09:30:05Z".parse().unwrap()
}

fn profile() -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(Email::new("a+b@example.com").unwrap())
        .with_mobile(Mobile::new("+46701234567").unwrap())
        .with_attribute(AttributeName::new("crm_id").unwrap(), "C-42")
        .with_attribute(AttributeName::new("score").unwrap(), 42)
        .with_attribute(AttributeName::new("vip").unwrap(), true)
}

/// Email - Unsubscribe from 123456, from the Activity `weekly-47`.
fn unsubscribe() -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new("evt-1").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
    .with_activity(ActivityId::new("weekly-47").unwrap())
}

fn abuse() -> OptOutEvent {
    OptOutEvent::email_abuse(
        EventId::new("evt-2").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}

fn sms() -> OptOutEvent {
    OptOutEvent::sms_unsubscribe(
        EventId::new("evt-3").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("200001").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}

fn build(node: &WebhookNode, event: &OptOutEvent) -> http::Request<Vec<u8>> {
    node.build_request(&flow(), &profile(), event, now())
        .unwrap()
        .into_request()
}

/// Every header, in order, as (name, value) strings.
fn headers(request: &http::Request<Vec<u8>>) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect()
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The article's node: POST, parameters `email` and `subscription` in the query string.
fn article_node() -> WebhookNode {
    WebhookNode::builder("https://crm.example.com/optout?source=platform&list=a%2Bb")
        .method(WebhookMethod::Post)
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Exact requests
// ---------------------------------------------------------------------------------------------

#[test]
fn article_node_sends_every_parameter_in_the_query_string_after_the_static_ones() {
    let request = build(&article_node(), &unsubscribe());
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(
        request.uri().to_string(),
        "https://crm.example.com/optout?source=platform&list=a%2Bb&email=a%2Bb%40example.com&subscription=123456"
    );
    assert_eq!(headers(&request), h(&[("webhook-id", ID_EVT_1)]));
    assert_eq!(request.body(), b"");
    assert_eq!(request.version(), http::Version::HTTP_11);
}

#[test]
fn query_encoding_is_the_same_for_every_method() {
    for (method, name) in [
        (WebhookMethod::Get, "GET"),
        (WebhookMethod::Post, "POST"),
        (WebhookMethod::Put, "PUT"),
        (WebhookMethod::Delete, "DELETE"),
        (WebhookMethod::Patch, "PATCH"),
    ] {
        let node = WebhookNode::builder("https://crm.example.com/optout")
            .method(method)
            .param("email", ParamSource::Email)
            .param("kind", ParamSource::EventKind)
            .build()
            .unwrap();
        let request = build(&node, &unsubscribe());
        assert_eq!(request.method().as_str(), name);
        assert_eq!(method.as_str(), name);
        assert_eq!(
            request.uri().to_string(),
            "https://crm.example.com/optout?email=a%2Bb%40example.com&kind=email_unsubscribe"
        );
        assert_eq!(headers(&request), h(&[("webhook-id", ID_EVT_1)]));
        assert!(request.body().is_empty());
    }
}

#[test]
fn query_parameters_join_the_endpoint_query_with_the_right_separator() {
    for (url, expected) in [
        (
            "https://h.example/p",
            "https://h.example/p?email=a%2Bb%40example.com",
        ),
        (
            "https://h.example/p?",
            "https://h.example/p?email=a%2Bb%40example.com",
        ),
        (
            "https://h.example/p?x=1&",
            "https://h.example/p?x=1&email=a%2Bb%40example.com",
        ),
        (
            "https://h.example/p?x=1&flag&y=%7E",
            "https://h.example/p?x=1&flag&y=%7E&email=a%2Bb%40example.com",
        ),
        (
            "https://h.example",
            "https://h.example/?email=a%2Bb%40example.com",
        ),
    ] {
        let node = WebhookNode::builder(url)
            .param("email", ParamSource::Email)
            .build()
            .unwrap();
        assert_eq!(
            build(&node, &unsubscribe()).uri().to_string(),
            expected,
            "{url}"
        );
    }
    // No parameters: the endpoint exactly.
    let node = WebhookNode::builder("https://h.example/p?x=1")
        .build()
        .unwrap();
    assert_eq!(
        build(&node, &unsubscribe()).uri().to_string(),
        "https://h.example/p?x=1"
    );
}

#[test]
fn every_source_has_its_exact_value() {
    let node = WebhookNode::builder("https://crm.example.com/optout")
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
        .param("subscription", ParamSource::SubscriptionId)
        .param("section", ParamSource::SectionId)
        .param("kind", ParamSource::EventKind)
        .param("channel", ParamSource::Channel)
        .param("event", ParamSource::EventId)
        .param("activity", ParamSource::ActivityId)
        .param("at", ParamSource::OccurredAt)
        .param("origin", ParamSource::Origin)
        .build()
        .unwrap();
    assert_eq!(
        build(&node, &unsubscribe()).uri().to_string(),
        "https://crm.example.com/optout?email=a%2Bb%40example.com&mobile=%2B46701234567\
         &crm=C-42&score=42&vip=true&profile=p-1&subscription=123456&section=sec-1\
         &kind=email_unsubscribe&channel=email&event=evt-1&activity=weekly-47\
         &at=2026-11-26T09%3A30%3A00Z&origin=communication"
    );
}

#[test]
fn form_encoding_sends_a_urlencoded_body() {
    let node = WebhookNode::builder("https://crm.example.com/optout?source=platform")
        .encoding(WebhookEncoding::Form)
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .build()
        .unwrap();
    let request = build(&node, &unsubscribe());
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(
        request.uri().to_string(),
        "https://crm.example.com/optout?source=platform"
    );
    assert_eq!(
        headers(&request),
        h(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("webhook-id", ID_EVT_1),
        ])
    );
    assert_eq!(
        request.body().as_slice(),
        b"email=a%2Bb%40example.com&subscription=123456"
    );
}

#[test]
fn json_encoding_sends_a_flat_object_in_parameter_order() {
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .method(WebhookMethod::Put)
        .encoding(WebhookEncoding::Json)
        .param("subscription", ParamSource::SubscriptionId)
        .param("email", ParamSource::Email)
        .param(
            "score",
            ParamSource::Attribute(AttributeName::new("score").unwrap()),
        )
        .param(
            "vip",
            ParamSource::Attribute(AttributeName::new("vip").unwrap()),
        )
        .param("at", ParamSource::OccurredAt)
        .build()
        .unwrap();
    let request = build(&node, &unsubscribe());
    assert_eq!(request.method(), http::Method::PUT);
    assert_eq!(request.uri().to_string(), "https://crm.example.com/optout");
    assert_eq!(
        headers(&request),
        h(&[
            ("content-type", "application/json"),
            ("webhook-id", ID_EVT_1)
        ])
    );
    assert_eq!(
        String::from_utf8(request.body().clone()).unwrap(),
        r#"{"subscription":"123456","email":"a+b@example.com","score":42,"vip":true,"at":"2026-11-26T09:30:00Z"}"#
    );
}

#[test]
fn json_envelope_follows_the_standard_webhooks_shape() {
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .method(WebhookMethod::Patch)
        .encoding(WebhookEncoding::JsonEnvelope)
        .param("email", ParamSource::Email)
        .param("section", ParamSource::SectionId)
        .build()
        .unwrap();
    let request = build(&node, &abuse());
    assert_eq!(request.method(), http::Method::PATCH);
    assert_eq!(
        headers(&request),
        h(&[
            ("content-type", "application/json"),
            ("webhook-id", ID_EVT_2)
        ])
    );
    assert_eq!(
        String::from_utf8(request.body().clone()).unwrap(),
        r#"{"type":"opt_out.email_abuse","timestamp":"2026-11-26T09:30:00Z","data":{"email":"a+b@example.com","section":"sec-1"}}"#
    );
}

#[test]
fn headers_come_in_a_fixed_order_with_credentials_after_the_static_ones() {
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .encoding(WebhookEncoding::Json)
        .param("email", ParamSource::Email)
        .header("X-Tenant", "acme")
        .header("accept", "application/json")
        .bearer("tok.en-123")
        .build()
        .unwrap();
    let request = build(&node, &unsubscribe());
    assert_eq!(
        headers(&request),
        h(&[
            ("x-tenant", "acme"),
            ("accept", "application/json"),
            ("authorization", "Bearer tok.en-123"),
            ("content-type", "application/json"),
            ("webhook-id", ID_EVT_1),
        ])
    );

    let basic = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .basic("ada", "pa:ss wörd")
        .build()
        .unwrap();
    assert_eq!(
        headers(&build(&basic, &unsubscribe())),
        h(&[
            ("authorization", "Basic YWRhOnBhOnNzIHfDtnJk"),
            ("webhook-id", ID_EVT_1),
        ])
    );

    let api_key = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .auth(Auth::Header {
            name: "X-Api-Key".into(),
            value: "k-123".into(),
        })
        .build()
        .unwrap();
    assert_eq!(
        headers(&build(&api_key, &unsubscribe())),
        h(&[("x-api-key", "k-123"), ("webhook-id", ID_EVT_1)])
    );
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let node = article_node();
    let a = build(&node, &unsubscribe());
    let b = build(&node, &unsubscribe());
    assert_eq!(a.uri(), b.uri());
    assert_eq!(a.headers(), b.headers());
    assert_eq!(a.body(), b.body());
}

// ---------------------------------------------------------------------------------------------
// Values that must arrive unchanged
// ---------------------------------------------------------------------------------------------

/// A node sending Email and the `note` attribute, in `encoding`.
fn tricky_node(encoding: WebhookEncoding) -> WebhookNode {
    WebhookNode::builder("https://h.example/in?static=a%2Bb&x=1")
        .encoding(encoding)
        .param("email", ParamSource::Email)
        .param(
            "note & = #",
            ParamSource::Attribute(AttributeName::new("note").unwrap()),
        )
        .build()
        .unwrap()
}

fn tricky_profile(email: &str, note: &str) -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(Email::new(email).unwrap())
        .with_attribute(AttributeName::new("note").unwrap(), note)
}

/// The parameters a receiver reads, by the usual parsers, for each encoding.
fn received(request: &http::Request<Vec<u8>>, encoding: WebhookEncoding) -> Vec<(String, String)> {
    match encoding {
        WebhookEncoding::Query => {
            let query = request.uri().query().unwrap_or_default();
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        }
        WebhookEncoding::Form => url::form_urlencoded::parse(request.body())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        _ => {
            let value: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
            let object = if encoding == WebhookEncoding::JsonEnvelope {
                value["data"].clone()
            } else {
                value
            };
            // serde_json's map is ordered by key; compare as a set via sorting below.
            let mut pairs: Vec<(String, String)> = object
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            pairs.sort();
            pairs
        }
    }
}

fn expected_pairs(encoding: WebhookEncoding, email: &str, note: &str) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("email".to_owned(), email.to_owned()),
        ("note & = #".to_owned(), note.to_owned()),
    ];
    match encoding {
        WebhookEncoding::Query => {
            pairs.insert(0, ("x".into(), "1".into()));
            pairs.insert(0, ("static".into(), "a+b".into()));
        }
        WebhookEncoding::Json | WebhookEncoding::JsonEnvelope => pairs.sort(),
        _ => {}
    }
    pairs
}

const ENCODINGS: [WebhookEncoding; 4] = [
    WebhookEncoding::Query,
    WebhookEncoding::Form,
    WebhookEncoding::Json,
    WebhookEncoding::JsonEnvelope,
];

#[test]
fn plus_space_ampersand_equals_hash_and_non_ascii_arrive_unchanged() {
    let email = "a+b&c=d#e@exämple.com";
    let note = "a b+c&d=e#f %20 Zoë 日本 \u{1F600}";
    for encoding in ENCODINGS {
        let node = tricky_node(encoding);
        let request = node
            .build_request(
                &flow(),
                &tricky_profile(email, note),
                &unsubscribe_for("p-1"),
                now(),
            )
            .unwrap()
            .into_request();
        assert_eq!(
            received(&request, encoding),
            expected_pairs(encoding, email, note),
            "{encoding}"
        );
    }
    // The exact query bytes: only A-Z a-z 0-9 * - . _ kept, space as +, the rest %XX.
    let request = tricky_node(WebhookEncoding::Query)
        .build_request(
            &flow(),
            &tricky_profile("a+b@example.com", "x y*z~'!"),
            &unsubscribe_for("p-1"),
            now(),
        )
        .unwrap()
        .into_request();
    assert_eq!(
        request.uri().to_string(),
        "https://h.example/in?static=a%2Bb&x=1&email=a%2Bb%40example.com&note+%26+%3D+%23=x+y*z%7E%27%21"
    );
}

fn unsubscribe_for(profile: &str) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new("evt-1").unwrap(),
        ProfileId::new(profile).unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn email() -> impl Strategy<Value = String> {
        (
            "[a-zA-Z0-9+&=#%?/!*'~.\\-_äöüé日本]{1,30}",
            "[a-z0-9ä]{1,10}(\\.[a-z]{2,5}){1,2}",
        )
            .prop_map(|(local, domain)| format!("{local}@{domain}"))
    }

    proptest! {
        #[test]
        fn every_encoding_decodes_back_to_the_original_values(
            email in email(),
            note in any::<String>(),
        ) {
            prop_assume!(Email::new(email.as_str()).is_ok());
            for encoding in ENCODINGS {
                let request = tricky_node(encoding)
                    .build_request(&flow(), &tricky_profile(&email, &note), &unsubscribe_for("p-1"), now())
                    .unwrap()
                    .into_request();
                prop_assert_eq!(
                    received(&request, encoding),
                    expected_pairs(encoding, &email, &note)
                );
            }
        }

        #[test]
        fn parameter_names_decode_back_too(name in "[^\\p{Cc}]{1,30}", value in any::<String>()) {
            let node = WebhookNode::builder("https://h.example/in")
                .encoding(WebhookEncoding::Form)
                .param(name.as_str(), ParamSource::Attribute(AttributeName::new("v").unwrap()))
                .build()
                .unwrap();
            let profile = Profile::new(ProfileId::new("p-1").unwrap())
                .with_attribute(AttributeName::new("v").unwrap(), value.as_str());
            let request = node
                .build_request(&flow(), &profile, &unsubscribe_for("p-1"), now())
                .unwrap()
                .into_request();
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(request.body())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            prop_assert_eq!(pairs, vec![(name, value)]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Build errors
// ---------------------------------------------------------------------------------------------

fn build_err(node: &WebhookNode, profile: &Profile, event: &OptOutEvent) -> RequestBuildError {
    node.build_request(&flow(), profile, event, now())
        .unwrap_err()
}

#[test]
fn a_source_without_a_value_is_an_error_naming_parameter_and_source() {
    // An SMS flow asking for the Email of a Profile that has none.
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .build()
        .unwrap();
    let sms_only = Profile::new(ProfileId::new("p-1").unwrap())
        .with_mobile(Mobile::new("+46701234567").unwrap());
    let error = build_err(&node, &sms_only, &sms());
    assert_eq!(
        error,
        RequestBuildError::MissingValue {
            param: "email".into(),
            param_source: ParamSource::Email,
            reason: MissingValueReason::NoEmail,
        }
    );
    assert_eq!(
        error.to_string(),
        "parameter `email` (source email) has no value: the Profile has no Email; mark the \
         parameter optional to leave it out instead"
    );

    // The SubscriptionId of an Email - Abuse event.
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .build()
        .unwrap();
    assert!(matches!(
        build_err(&node, &profile(), &abuse()),
        RequestBuildError::MissingValue { param, param_source: ParamSource::SubscriptionId, .. }
            if param == "subscription"
    ));

    for (source, event, reason, text) in [
        (
            ParamSource::Mobile,
            unsubscribe(),
            MissingValueReason::NoMobile,
            "the Profile has no Mobile",
        ),
        (
            ParamSource::Attribute(AttributeName::new("nope").unwrap()),
            unsubscribe(),
            MissingValueReason::NoAttribute,
            "the Profile has no such attribute",
        ),
        (
            ParamSource::ActivityId,
            sms(),
            MissingValueReason::NoActivity,
            "the event names no Activity",
        ),
    ] {
        assert_eq!(reason.to_string(), text);
        let node = WebhookNode::builder("https://crm.example.com/optout")
            .param("p", source.clone())
            .build()
            .unwrap();
        let bare = Profile::new(ProfileId::new("p-1").unwrap());
        assert_eq!(
            build_err(&node, &bare, &event),
            RequestBuildError::MissingValue {
                param: "p".into(),
                param_source: source,
                reason,
            }
        );
    }
}

#[test]
fn an_email_that_is_not_an_address_holds_back_only_the_flows_that_send_it() {
    // A platform's Profile whose Email field holds something that is not an address.
    let profile: Profile = serde_json::from_str(
        r#"{"id": "p-1", "email": "not an address", "mobile": "+46701234567"}"#,
    )
    .unwrap();
    assert_eq!(
        profile.email.as_ref().map(Email::problem),
        Some(Some(EmailProblem::NoAt))
    );
    let flow = |id: &str, name: &str, source: ParamSource, optional: bool| {
        let webhook = WebhookNode::builder(format!("https://crm.example.com/{id}"));
        let webhook = if optional {
            webhook.optional_param(name, source)
        } else {
            webhook.param(name, source)
        };
        Flow::new(
            FlowId::new(id).unwrap(),
            SectionId::new("sec-1").unwrap(),
            ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
            webhook.build().unwrap(),
        )
    };
    let router = Router::new(
        [
            flow("by-id", "id", ParamSource::ProfileId, false),
            flow("by-mobile", "mobile", ParamSource::Mobile, false),
            flow("by-email", "email", ParamSource::Email, false),
            flow("maybe-email", "email", ParamSource::Email, true),
        ],
        &Catalog::default(),
    )
    .unwrap();
    let plan = relay::plan(&router, &unsubscribe(), &profile, now());
    let built: Vec<(&str, String)> = plan
        .candidates
        .iter()
        .map(|c| (c.flow.as_str(), c.delivery.request().uri().to_string()))
        .collect();
    assert_eq!(
        built,
        [
            ("by-id", "https://crm.example.com/by-id?id=p-1".to_owned()),
            (
                "by-mobile",
                "https://crm.example.com/by-mobile?mobile=%2B46701234567".to_owned()
            ),
            // An optional Email that is not an address is left out, as one that is absent.
            (
                "maybe-email",
                "https://crm.example.com/maybe-email".to_owned()
            ),
        ]
    );
    assert_eq!(plan.not_built.len(), 1);
    assert_eq!(plan.not_built[0].flow.as_str(), "by-email");
    let error = &plan.not_built[0].error;
    assert_eq!(
        error,
        &RequestBuildError::EmailNotAddress {
            param: "email".into(),
            problem: EmailProblem::NoAt,
        }
    );
    assert_eq!(
        error.to_string(),
        "parameter `email` (source email) has no value: the Profile's Email is not an address: \
         it has no `@` outside quotes; mark the parameter optional to leave it out instead"
    );
    assert_eq!(
        format!("{error:?}"),
        "EmailNotAddress { param: \"email\", problem: NoAt }"
    );
}

#[test]
fn a_mobile_that_cannot_be_a_number_holds_back_only_the_flows_that_send_it() {
    for (text, problem) in [
        ("", MobileProblem::Empty),
        ("n/a", MobileProblem::NoDigit),
        ("   ", MobileProblem::Empty),
    ] {
        // A platform's Profile whose Mobile field holds something that cannot be a number.
        let json = serde_json::json!({"id": "p-1", "email": "a@example.com", "mobile": text});
        let profile: Profile = serde_json::from_value(json.clone()).unwrap();
        let mobile = profile.mobile.as_ref().unwrap();
        assert_eq!(
            (mobile.problem(), mobile.as_str(), mobile.to_string()),
            (Some(problem), text, "***".to_owned())
        );
        // Written back as given.
        assert_eq!(serde_json::to_value(&profile).unwrap(), json);
        assert_eq!(
            Mobile::new(text),
            Err(AttributeError::Mobile { reason: problem })
        );
        let node = |source: ParamSource, optional: bool| {
            let builder = WebhookNode::builder("https://sms.example.com/stop");
            if optional {
                builder.optional_param("p", source)
            } else {
                builder.param("p", source)
            }
            .build()
            .unwrap()
        };
        let event = unsubscribe();
        assert_eq!(
            build_err(&node(ParamSource::Mobile, false), &profile, &event),
            RequestBuildError::MobileNotNumber {
                param: "p".into(),
                problem
            }
        );
        let built = |node: WebhookNode| {
            node.build_request(&FlowId::new("f").unwrap(), &profile, &event, now())
                .unwrap()
                .request()
                .uri()
                .to_string()
        };
        assert_eq!(
            built(node(ParamSource::Mobile, true)),
            "https://sms.example.com/stop"
        );
        assert_eq!(
            built(node(ParamSource::Email, false)),
            "https://sms.example.com/stop?p=a%40example.com"
        );
    }
    let error = RequestBuildError::MobileNotNumber {
        param: "mobile".into(),
        problem: MobileProblem::NoDigit,
    };
    assert_eq!(
        error.to_string(),
        "parameter `mobile` (source mobile) has no value: the Profile's Mobile is not a phone \
         number: it holds no digit; mark the parameter optional to leave it out instead"
    );
}

#[test]
fn an_optional_parameter_without_a_value_is_left_out() {
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .optional_param("subscription", ParamSource::SubscriptionId)
        .param("section", ParamSource::SectionId)
        .build()
        .unwrap();
    assert_eq!(
        build(&node, &abuse()).uri().to_string(),
        "https://crm.example.com/optout?email=a%2Bb%40example.com&section=sec-1"
    );
    assert_eq!(
        build(&node, &unsubscribe()).uri().to_string(),
        "https://crm.example.com/optout?email=a%2Bb%40example.com&subscription=123456&section=sec-1"
    );
}

#[test]
fn folder_id_needs_the_section_catalog() {
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("folder", ParamSource::FolderId)
        .build()
        .unwrap();
    assert_eq!(
        build_err(&node, &profile(), &unsubscribe()),
        RequestBuildError::SectionNeeded {
            param: "folder".into()
        }
    );
    let section = Section::new(
        SectionId::new("sec-1").unwrap(),
        [Folder::new(
            FolderId::new("news").unwrap(),
            [SubscriptionId::new("123456").unwrap()],
        )],
    )
    .unwrap();
    let request = node
        .build_request_in(&section, &flow(), &profile(), &unsubscribe(), now())
        .unwrap();
    assert_eq!(
        request.request().uri().to_string(),
        "https://crm.example.com/optout?folder=news"
    );
    // Not in the catalog, or a section-level event: no Folder.
    assert!(matches!(
        node.build_request_in(&section, &flow(), &profile(), &sms(), now()),
        Err(RequestBuildError::MissingValue {
            param_source: ParamSource::FolderId,
            ..
        })
    ));
    assert!(matches!(
        node.build_request_in(&section, &flow(), &profile(), &abuse(), now()),
        Err(RequestBuildError::MissingValue {
            param_source: ParamSource::FolderId,
            ..
        })
    ));
    // Another Section's catalog.
    let other = Section::new(SectionId::new("sec-2").unwrap(), []).unwrap();
    assert_eq!(
        node.build_request_in(&other, &flow(), &profile(), &unsubscribe(), now())
            .unwrap_err(),
        RequestBuildError::SectionMismatch {
            event_section: SectionId::new("sec-1").unwrap(),
            section: SectionId::new("sec-2").unwrap(),
        }
    );
}

#[test]
fn the_event_must_be_the_profiles() {
    assert_eq!(
        build_err(&article_node(), &profile(), &unsubscribe_for("p-2")),
        RequestBuildError::ProfileMismatch {
            event_profile: ProfileId::new("p-2").unwrap(),
            profile: ProfileId::new("p-1").unwrap(),
        }
    );
    // A Profile id may be personal: both are shown masked.
    let error = build_err(&article_node(), &profile(), &unsubscribe_for("p-2"));
    assert_eq!(
        error.to_string(),
        "event for profile `p***` built with profile `p***`"
    );
    assert_eq!(
        format!("{error:?}"),
        r#"ProfileMismatch { event_profile: ProfileId("p***"), profile: ProfileId("p***") }"#
    );
}

#[test]
fn an_oversized_query_is_an_error_and_a_body_encoding_is_not_limited() {
    let big = "x".repeat(9000);
    let node = tricky_node(WebhookEncoding::Query);
    let error = node
        .build_request(
            &flow(),
            &tricky_profile("a@b.c", &big),
            &unsubscribe(),
            now(),
        )
        .unwrap_err();
    assert!(matches!(
        error,
        RequestBuildError::UrlTooLong { max: 8192, .. }
    ));
    assert!(
        tricky_node(WebhookEncoding::Form)
            .build_request(
                &flow(),
                &tricky_profile("a@b.c", &big),
                &unsubscribe(),
                now()
            )
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------------
// The webhook id
// ---------------------------------------------------------------------------------------------

#[test]
fn the_webhook_id_is_stable_per_flow_and_event() {
    let id = WebhookId::derive(&flow(), &EventId::new("evt-1").unwrap());
    assert_eq!(id.as_str(), ID_EVT_1);
    assert_eq!(
        WebhookId::derive(
            &FlowId::new("other-flow").unwrap(),
            &EventId::new("evt-1").unwrap()
        )
        .as_str(),
        "msg_f1fbf8ee0ca9ee11dc8edc4b8247ffe7"
    );
    // The same on a retry at another time and on a re-delivered copy of the event.
    let node = article_node();
    let first = node
        .build_request(&flow(), &profile(), &unsubscribe(), now())
        .unwrap();
    let retry = node
        .build_request(
            &flow(),
            &profile(),
            &unsubscribe().clone(),
            "2026-11-27T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    assert_eq!(first.webhook_id(), retry.webhook_id());
    assert_eq!(first.webhook_id(), &id);
    // Standard Webhooks ids: [A-Za-z0-9_-].
    assert!(
        id.as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert_eq!(id.to_string(), ID_EVT_1);
}

// ---------------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------------

fn config_err(builder: WebhookNodeBuilder) -> WebhookConfigError {
    builder.build().unwrap_err()
}

fn at(url: &str) -> WebhookNodeBuilder {
    WebhookNode::builder(url).param("email", ParamSource::Email)
}

#[test]
fn endpoint_errors() {
    assert!(matches!(
        config_err(at("not-a-url")),
        WebhookConfigError::InvalidUrl { .. }
    ));
    assert_eq!(
        config_err(at("ftp://h.example/x")),
        WebhookConfigError::UnsupportedScheme {
            scheme: "ftp".into()
        }
    );
    assert_eq!(
        config_err(at("https://user:secret@h.example/")),
        WebhookConfigError::CredentialsInUrl
    );
    assert_eq!(
        config_err(at("https://user@h.example/")),
        WebhookConfigError::CredentialsInUrl
    );
    assert!(
        !WebhookConfigError::CredentialsInUrl
            .to_string()
            .contains("secret")
    );
    assert!(
        WebhookConfigError::CredentialsInUrl
            .to_string()
            .contains("use `auth`")
    );
    assert_eq!(
        config_err(at("https://h.example/#frag")),
        WebhookConfigError::FragmentInUrl
    );
    let long = format!("https://h.example/?q={}", "x".repeat(2048));
    assert_eq!(
        config_err(at(&long)),
        WebhookConfigError::UrlTooLong {
            len: long.len(),
            max: 2048
        }
    );
    assert_eq!(
        WebhookNode::new(WebhookMethod::Get, url::Url::parse("file:///etc").unwrap()),
        Err(WebhookConfigError::UnsupportedScheme {
            scheme: "file".into()
        })
    );
    let plain = WebhookNode::new(
        WebhookMethod::Get,
        url::Url::parse("https://h.example/x?a=1").unwrap(),
    )
    .unwrap();
    assert_eq!(plain.method(), WebhookMethod::Get);
    assert_eq!(plain.url().as_str(), "https://h.example/x?a=1");
    assert_eq!(plain.encoding(), WebhookEncoding::Query);
}

/// Control characters and whitespace in an endpoint URL are refused before parsing: the URL
/// parser would drop CR, LF and TAB anywhere and trim leading and trailing controls and spaces
/// (`x.exa\r\nmple` would call `x.example`). The error names the byte, never the URL.
#[test]
fn endpoint_url_with_control_characters_or_whitespace() {
    let refused = |position, found| WebhookConfigError::UrlCharacter { position, found };
    let control = UrlCharacterKind::Control;
    assert_eq!(control.to_string(), "a control character");
    assert_eq!(UrlCharacterKind::Whitespace.to_string(), "whitespace");
    for (url, error) in [
        ("https://x.exa\r\nmple/optout", refused(13, control)),
        ("https://x.example/opt\tout", refused(21, control)),
        (
            " https://x.example/optout",
            refused(0, UrlCharacterKind::Whitespace),
        ),
        (
            "https://x.example/optout ",
            refused(24, UrlCharacterKind::Whitespace),
        ),
        ("https://x.example/optout?a=b\0", refused(28, control)),
        ("https://x.example/opt\x7fout", refused(21, control)),
        (
            "https://x.example/opt out",
            refused(21, UrlCharacterKind::Whitespace),
        ),
        (
            "https://x.example/opt\u{a0}out",
            refused(21, UrlCharacterKind::Whitespace),
        ),
        ("https://x.example/opt\u{85}out", refused(21, control)),
    ] {
        assert_eq!(config_err(at(url)), error, "{url:?}");
    }
    assert_eq!(
        refused(13, control).to_string(),
        "the endpoint URL holds a control character at byte 13: the URL parser would silently \
         drop or encode it; remove it (write a space in a path or query as %20)"
    );
    // Percent-encoded, they are part of the URL as written.
    let node = at("https://x.example/opt%20out?a=%0D%0A").build().unwrap();
    assert_eq!(node.url().as_str(), "https://x.example/opt%20out?a=%0D%0A");
    // The JSON form and a flow file check the same.
    let err = serde_json::from_value::<WebhookNode>(json!({"url": "https://x.exa\r\nmple/"}))
        .unwrap_err();
    assert_eq!(err.to_string(), refused(13, control).to_string());
    let err = FlowFile::from_json(
        r#"{"version": 1, "flows": [{"id": "f", "section": "s", "listen": {"kinds": ["email_unsubscribe"]},
            "webhook": {"url": "https://x.example/\topt", "params": [{"name": "email", "source": "email"}]}}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "flows[0].webhook");
    assert_eq!(
        err.problem,
        FlowFileProblem::Invalid {
            reason: refused(18, control).to_string()
        }
    );
}

#[test]
fn parameter_errors() {
    for (problem, text) in [
        (ParamNameProblem::Empty, "it is empty"),
        (
            ParamNameProblem::ControlCharacter,
            "it holds a control character",
        ),
        (ParamNameProblem::TooLong, "it is longer than 128 bytes"),
    ] {
        assert_eq!(problem.to_string(), text);
    }
    assert_eq!(
        config_err(WebhookNode::builder("https://h.example/").param("", ParamSource::Email)),
        WebhookConfigError::InvalidParamName {
            reason: ParamNameProblem::Empty
        }
    );
    assert_eq!(
        config_err(WebhookNode::builder("https://h.example/").param("a\nb", ParamSource::Email)),
        WebhookConfigError::InvalidParamName {
            reason: ParamNameProblem::ControlCharacter
        }
    );
    assert!(matches!(
        config_err(
            WebhookNode::builder("https://h.example/").param("x".repeat(129), ParamSource::Email)
        ),
        WebhookConfigError::InvalidParamName {
            reason: ParamNameProblem::TooLong
        }
    ));
    assert_eq!(
        config_err(at("https://h.example/").param("email", ParamSource::Mobile)),
        WebhookConfigError::DuplicateParam { index: 1, first: 0 }
    );
    assert_eq!(
        config_err(at("https://h.example/").param("email", ParamSource::Mobile)).to_string(),
        "parameter #1 has the same name as parameter #0"
    );
    let mut many = WebhookNode::builder("https://h.example/");
    for i in 0..65 {
        many = many.param(format!("p{i}"), ParamSource::EventId);
    }
    assert_eq!(
        config_err(many),
        WebhookConfigError::TooManyParams { count: 65, max: 64 }
    );
    // The first error is kept.
    assert!(matches!(
        config_err(
            WebhookNode::builder("ftp://h.example/")
                .param("", ParamSource::Email)
                .header("host", "x")
        ),
        WebhookConfigError::InvalidParamName { .. }
    ));
}

/// A static query parameter of the endpoint URL and a parameter of the same name would both be
/// sent (`email=static&email=...`): a configuration error, whatever the encoding, naming the
/// parameter by position, never its name or the static value.
#[test]
fn parameter_named_like_a_static_query_parameter() {
    let conflict = |index| WebhookConfigError::ParamConflictsWithStaticQuery { index };
    assert_eq!(
        config_err(at("https://h.example/optout?email=static-canary")),
        conflict(0)
    );
    assert_eq!(
        config_err(at("https://h.example/optout?email=static-canary")).to_string(),
        "parameter #0 has the name of a static query parameter of the endpoint URL: the receiver \
         would get two values under one name; rename the parameter or remove the static one"
    );
    // The second parameter, a name written percent-encoded or with `+` for a space in the URL.
    assert_eq!(
        config_err(
            at("https://h.example/?source=platform&sub=1")
                .param("sub", ParamSource::SubscriptionId)
        ),
        conflict(1)
    );
    assert_eq!(config_err(at("https://h.example/?e%6Dail=x")), conflict(0));
    assert_eq!(
        config_err(
            WebhookNode::builder("https://h.example/?the+email=x")
                .param("the email", ParamSource::Email)
        ),
        conflict(0)
    );
    // Every encoding: receivers that merge query and body parameters would see both.
    for encoding in [
        WebhookEncoding::Form,
        WebhookEncoding::Json,
        WebhookEncoding::JsonEnvelope,
    ] {
        assert_eq!(
            config_err(at("https://h.example/?email=x").encoding(encoding)),
            conflict(0)
        );
    }
    // Other static names are fine.
    let node = at("https://h.example/?source=platform&emails=1")
        .build()
        .unwrap();
    assert_eq!(
        node.url().as_str(),
        "https://h.example/?source=platform&emails=1"
    );
    // `with_url` checks the new URL's query against the parameters.
    assert_eq!(
        node.with_url("https://staging.example/?email=x".parse().unwrap()),
        Err(conflict(0))
    );
    assert_eq!(
        node.with_url("https://staging.example/?source=staging".parse().unwrap())
            .unwrap()
            .url()
            .as_str(),
        "https://staging.example/?source=staging"
    );
    // A flow file names the node.
    let err = FlowFile::from_json(
        r#"{"version": 1, "flows": [{"id": "f", "section": "s", "listen": {"kinds": ["email_unsubscribe"]},
            "webhook": {"url": "https://h.example/?email=static-canary",
                        "params": [{"name": "subscription", "source": "subscription_id"},
                                   {"name": "email", "source": "email"}]}}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "flows[0].webhook");
    assert_eq!(
        err.problem,
        FlowFileProblem::Invalid {
            reason: conflict(1).to_string()
        }
    );
}

#[test]
fn header_errors() {
    let hdr = |name: &str, value: &str| config_err(at("https://h.example/").header(name, value));
    assert_eq!(
        hdr("x-a", "1\r\nx-evil: 2"),
        WebhookConfigError::InvalidHeaderValue {
            index: Some(0),
            reason: HeaderValueProblem::LineBreak
        }
    );
    assert_eq!(
        hdr("x-a", "1\n"),
        WebhookConfigError::InvalidHeaderValue {
            index: Some(0),
            reason: HeaderValueProblem::LineBreak
        }
    );
    assert_eq!(
        hdr("x-a", "zoë"),
        WebhookConfigError::InvalidHeaderValue {
            index: Some(0),
            reason: HeaderValueProblem::NotVisibleAscii
        }
    );
    assert_eq!(
        hdr("x-a", " padded"),
        WebhookConfigError::InvalidHeaderValue {
            index: Some(0),
            reason: HeaderValueProblem::SurroundingWhitespace
        }
    );
    assert_eq!(
        hdr("x-a", &"v".repeat(4097)),
        WebhookConfigError::InvalidHeaderValue {
            index: Some(0),
            reason: HeaderValueProblem::TooLong
        }
    );
    for (problem, text) in [
        (HeaderValueProblem::LineBreak, "holds a CR or LF"),
        (
            HeaderValueProblem::NotVisibleAscii,
            "holds a byte that is not visible ASCII, space or tab",
        ),
        (
            HeaderValueProblem::SurroundingWhitespace,
            "starts or ends with whitespace",
        ),
        (HeaderValueProblem::TooLong, "is longer than 4096 bytes"),
    ] {
        assert_eq!(problem.to_string(), text);
    }
    let not_a_token = HeaderNameProblem::NotToken;
    assert_eq!(
        not_a_token.to_string(),
        "it holds a character other than letters, digits and !#$%&'*+-.^_`|~"
    );
    assert_eq!(HeaderNameProblem::Empty.to_string(), "it is empty");
    assert_eq!(HeaderNameProblem::TooLong.to_string(), "it is too long");
    assert_eq!(
        hdr("x a", "1"),
        WebhookConfigError::InvalidHeaderName {
            reason: not_a_token
        }
    );
    assert_eq!(
        hdr("x-a\r\n", "1"),
        WebhookConfigError::InvalidHeaderName {
            reason: not_a_token
        }
    );
    assert_eq!(
        hdr("", "1"),
        WebhookConfigError::InvalidHeaderName {
            reason: HeaderNameProblem::Empty
        }
    );
    assert_eq!(
        hdr(&"x".repeat(70_000), "1"),
        WebhookConfigError::InvalidHeaderName {
            reason: HeaderNameProblem::TooLong
        }
    );
    assert_eq!(
        hdr("x a", "1").to_string(),
        format!("invalid header name: {not_a_token}")
    );
    for name in [
        "Content-Length",
        "host",
        "content-type",
        "Transfer-Encoding",
        "connection",
        "Authorization",
        "webhook-id",
        "Webhook-Timestamp",
        "webhook-signature",
    ] {
        match hdr(name, "1") {
            WebhookConfigError::ReservedHeader { name: got, .. } => {
                assert_eq!(got, name.to_ascii_lowercase())
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(
        hdr("authorization", "Bearer x")
            .to_string()
            .contains("use `auth`")
    );
    assert_eq!(
        config_err(
            at("https://h.example/")
                .header("x-a", "1")
                .header("X-A", "2")
        ),
        WebhookConfigError::DuplicateHeader {
            index: Some(1),
            first: 0
        }
    );
    let mut many = at("https://h.example/");
    for i in 0..33 {
        many = many.header(format!("x-h{i}"), "1");
    }
    assert_eq!(
        config_err(many),
        WebhookConfigError::TooManyHeaders { count: 33, max: 32 }
    );
}

#[test]
fn a_body_encoding_with_get_or_delete_is_an_error() {
    for method in [WebhookMethod::Get, WebhookMethod::Delete] {
        for encoding in [
            WebhookEncoding::Form,
            WebhookEncoding::Json,
            WebhookEncoding::JsonEnvelope,
        ] {
            assert_eq!(
                config_err(at("https://h.example/").method(method).encoding(encoding)),
                WebhookConfigError::BodyOnBodylessMethod { method, encoding }
            );
        }
    }
    assert_eq!(
        WebhookConfigError::BodyOnBodylessMethod {
            method: WebhookMethod::Get,
            encoding: WebhookEncoding::Json
        }
        .to_string(),
        "method GET with encoding `json`: GET requests carry no body; use encoding `query`, or \
         the method POST, PUT or PATCH"
    );
}

#[test]
fn auth_errors_never_repeat_the_secret() {
    let cases = [
        (
            Auth::Bearer { token: "".into() },
            "bearer",
            AuthProblem::EmptyToken,
            "the token is empty",
        ),
        (
            Auth::Bearer {
                token: "has space-SECRET".into(),
            },
            "bearer",
            AuthProblem::TokenNotVisibleAscii,
            "the token holds a byte that is not visible ASCII (a space, CR, LF or non-ASCII)",
        ),
        (
            Auth::Basic {
                username: "a:b".into(),
                password: "SECRET".into(),
            },
            "basic",
            AuthProblem::ColonInUserName,
            "the user name holds a `:`",
        ),
        (
            Auth::Basic {
                username: "a".into(),
                password: "SECRET\n".into(),
            },
            "basic",
            AuthProblem::CredentialControlCharacter,
            "the user name or password holds a control character",
        ),
    ];
    for (auth, scheme, reason, text) in cases {
        assert_eq!(reason.to_string(), text);
        let error = config_err(at("https://h.example/").auth(auth));
        assert_eq!(error, WebhookConfigError::InvalidAuth { scheme, reason });
        assert!(!error.to_string().contains("SECRET"));
    }
    let header = |name: &str, value: &str| {
        config_err(
            at("https://h.example/")
                .header("x-tenant", "1")
                .auth(Auth::Header {
                    name: name.into(),
                    value: value.into(),
                }),
        )
    };
    assert!(matches!(
        header("authorization", "x"),
        WebhookConfigError::ReservedHeader { .. }
    ));
    assert_eq!(
        header("X-Tenant", "x"),
        WebhookConfigError::DuplicateHeader {
            index: None,
            first: 0
        }
    );
    assert_eq!(
        header("X-Tenant", "x").to_string(),
        "the auth header has the same name as header #0"
    );
    let error = header("x-api-key", "SECRET\r\n");
    assert_eq!(
        error,
        WebhookConfigError::InvalidHeaderValue {
            index: None,
            reason: HeaderValueProblem::LineBreak
        }
    );
}

#[cfg(feature = "signing")]
#[test]
fn signing_secret_errors() {
    let secret = |s: &str| {
        config_err(
            at("https://h.example/")
                .encoding(WebhookEncoding::Json)
                .sign_with(s),
        )
    };
    for (value, reason, text) in [
        (
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            SigningSecretProblem::NoPrefix,
            "it does not start with `whsec_`",
        ),
        (
            "whsec_not base64!",
            SigningSecretProblem::NotBase64,
            "the part after `whsec_` is not standard base64",
        ),
        (
            "whsec_c2hvcnQ=",
            SigningSecretProblem::KeyTooShort,
            "the key is shorter than 24 bytes",
        ),
        (
            &format!("whsec_{}", "QUFB".repeat(22)),
            SigningSecretProblem::KeyTooLong,
            "the key is longer than 64 bytes",
        ),
    ] {
        assert_eq!(reason.to_string(), text);
        let error = secret(value);
        assert_eq!(
            error,
            WebhookConfigError::InvalidSigningSecret { index: 0, reason },
            "{value}"
        );
        assert!(!error.to_string().contains(value));
    }
    // 24 and 64 bytes are accepted; the index names the bad one.
    let ok24 = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let ok64 = format!("whsec_{}", "QUFB".repeat(21) + "QQ==");
    assert!(
        at("https://h.example/")
            .sign_with(ok24)
            .sign_with(ok64.as_str())
            .build()
            .is_ok()
    );
    assert_eq!(
        config_err(at("https://h.example/").sign_with(ok24).sign_with("whsec_")),
        WebhookConfigError::InvalidSigningSecret {
            index: 1,
            reason: SigningSecretProblem::KeyTooShort
        }
    );
    let mut many = at("https://h.example/");
    for _ in 0..9 {
        many = many.sign_with(ok24);
    }
    assert_eq!(
        config_err(many),
        WebhookConfigError::TooManySigningSecrets { count: 9, max: 8 }
    );
}

#[cfg(not(feature = "signing"))]
#[test]
fn without_the_signing_feature_a_signed_node_does_not_build() {
    let error = config_err(
        at("https://h.example/")
            .encoding(WebhookEncoding::Json)
            .sign_with("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
    );
    assert_eq!(error, WebhookConfigError::SigningUnavailable);
    let json = r#"{"url": "https://h.example/", "signing_secrets": ["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]}"#;
    assert!(
        serde_json::from_str::<WebhookNode>(json)
            .unwrap_err()
            .to_string()
            .contains("without the `signing` feature")
    );
}

// ---------------------------------------------------------------------------------------------
// JSON form
// ---------------------------------------------------------------------------------------------

#[test]
fn json_form_reads_validates_and_round_trips() {
    let node: WebhookNode = serde_json::from_value(json!({
        "url": "https://crm.example.com/optout?source=platform",
        "params": [
            {"name": "email", "source": "email"},
            {"name": "subscription", "source": "subscription_id", "optional": true},
            {"name": "crm", "source": {"attribute": "crm_id"}}
        ],
        "headers": [{"name": "x-tenant", "value": "acme"}],
        "auth": {"basic": {"username": "ada", "password": "pw"}}
    }))
    .unwrap();
    assert_eq!(node.method(), WebhookMethod::Post);
    assert_eq!(node.encoding(), WebhookEncoding::Query);
    assert_eq!(node.params()[1].name(), "subscription");
    assert!(node.params()[1].is_optional());
    assert_eq!(
        node.params()[2].source(),
        &ParamSource::Attribute(AttributeName::new("crm_id").unwrap())
    );
    assert_eq!(node.headers()[0].value(), "acme");
    assert_eq!(
        serde_json::to_value(&node).unwrap(),
        json!({
            "method": "POST",
            "url": "https://crm.example.com/optout?source=platform",
            "encoding": "query",
            "params": [
                {"name": "email", "source": "email"},
                {"name": "subscription", "source": "subscription_id", "optional": true},
                {"name": "crm", "source": {"attribute": "crm_id"}}
            ],
            "headers": [{"name": "x-tenant", "value": "acme"}],
            "auth": {"basic": {"username": "ada", "password": "pw"}}
        })
    );
    let again: WebhookNode = serde_json::from_str(&serde_json::to_string(&node).unwrap()).unwrap();
    assert_eq!(again, node);

    // Built and read nodes are the same value.
    let built = WebhookNode::builder("https://crm.example.com/optout?source=platform")
        .param("email", ParamSource::Email)
        .optional_param("subscription", ParamSource::SubscriptionId)
        .param(
            "crm",
            ParamSource::Attribute(AttributeName::new("crm_id").unwrap()),
        )
        .header("x-tenant", "acme")
        .basic("ada", "pw")
        .build()
        .unwrap();
    assert_eq!(built, node);
}

#[test]
fn json_form_rejects_unknown_keys_and_invalid_values() {
    let err = |value: serde_json::Value| {
        serde_json::from_value::<WebhookNode>(value)
            .unwrap_err()
            .to_string()
    };
    assert!(
        err(json!({"url": "https://h.example/", "body": "x"})).contains("unknown field `body`")
    );
    assert!(err(json!({"url": "https://h.example/", "params": [{"name": "e", "source": "email", "x": 1}]}))
        .contains("unknown field `x`"));
    assert!(
        err(json!({"url": "https://h.example/", "params": [{"name": "e", "source": "shoe_size"}]}))
            .contains("unknown variant `shoe_size`")
    );
    assert!(
        err(json!({"url": "https://h.example/", "method": "TRACE"}))
            .contains("unknown variant `TRACE`")
    );
    assert_eq!(
        err(json!({"url": "https://u:p@h.example/"})),
        WebhookConfigError::CredentialsInUrl.to_string()
    );
    assert_eq!(
        err(json!({"url": "https://h.example/", "method": "GET", "encoding": "json"})),
        WebhookConfigError::BodyOnBodylessMethod {
            method: WebhookMethod::Get,
            encoding: WebhookEncoding::Json
        }
        .to_string()
    );
    assert!(
        err(json!({"url": "https://h.example/", "headers": [{"name": "Host", "value": "x"}]}))
            .starts_with("header `host` is set by the crate")
    );
    assert!(
        err(json!({"url": "https://h.example/", "params": [{"name": "", "source": "email"}]}))
            .starts_with("invalid parameter name")
    );
}

#[test]
fn debug_never_shows_secrets() {
    let node = WebhookNode::builder("https://h.example/")
        .param("email", ParamSource::Email)
        .bearer("TOKEN-1234")
        .build()
        .unwrap();
    let debug = format!("{node:?}");
    assert!(!debug.contains("TOKEN-1234"), "{debug}");
    assert!(debug.contains("[redacted]"));
    let basic = WebhookNode::builder("https://h.example/")
        .basic("ada", "PASSWORD-1")
        .build()
        .unwrap();
    assert!(!format!("{basic:?}").contains("PASSWORD-1"));
    assert_eq!(Secret::new("x").to_string(), "[redacted]");
    assert_eq!(Secret::new("x").expose(), "x");
}

// ---------------------------------------------------------------------------------------------
// Previews
// ---------------------------------------------------------------------------------------------

fn preview_node() -> WebhookNode {
    WebhookNode::builder("https://crm.example.com/optout?source=platform")
        .encoding(WebhookEncoding::Json)
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
        .param("subscription", ParamSource::SubscriptionId)
        .header("x-tenant", "it's")
        .bearer("TOKEN-1234")
        .build()
        .unwrap()
}

/// The Profile's Mobile (`+46701234567`) masked: in E.164 form whether the metadata normalized
/// it or, without it, it was kept as given.
const MOBILE_MASKED: &str = "+46*******67";

#[test]
fn masked_preview_hides_personal_data_and_secrets() {
    let built = preview_node()
        .build_request(&flow(), &profile(), &unsubscribe(), now())
        .unwrap();
    let preview = built.preview();
    assert!(preview.is_masked());
    assert_eq!(
        preview.curl(),
        format!(
            "curl --request POST 'https://crm.example.com/optout?source=platform' \\\n  \
             --header 'x-tenant: it'\\''s' \\\n  \
             --header 'authorization: Bearer [redacted]' \\\n  \
             --header 'content-type: application/json' \\\n  \
             --header 'webhook-id: {ID_EVT_1}' \\\n  \
             --data-binary '{{\"email\":\"a***@e***.com\",\"mobile\":\"{MOBILE_MASKED}\",\"crm\":\"[masked]\",\"score\":\"[masked]\",\"subscription\":\"123456\"}}'"
        )
    );
    assert_eq!(
        preview.summary(),
        format!(
            "POST https://crm.example.com/optout?source=platform\n\
             x-tenant: it's\n\
             authorization: Bearer [redacted]\n\
             content-type: application/json\n\
             webhook-id: {ID_EVT_1}\n\
             body:\n\
             {{\"email\":\"a***@e***.com\",\"mobile\":\"{MOBILE_MASKED}\",\"crm\":\"[masked]\",\"score\":\"[masked]\",\"subscription\":\"123456\"}}\n\
             parameters:\n  \
             email = a***@e***.com  (from email)\n  \
             mobile = {MOBILE_MASKED}  (from mobile)\n  \
             crm = [masked]  (from attribute `crm_id`)\n  \
             score = [masked]  (from attribute `score`)\n  \
             subscription = 123456  (from subscription_id)\n"
        )
    );
    assert_eq!(preview.to_string(), preview.summary());
    for shown in [preview.curl(), preview.summary(), format!("{built:?}")] {
        for hidden in [
            "a+b@example.com",
            "46701234567",
            "C-42",
            "42,",
            "TOKEN-1234",
        ] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
    }
}

#[test]
fn masked_previews_redact_static_credentials_and_the_lint_names_them() {
    use optout_relay::lint;

    // A token in the URL's static query and an API key in a static header, where `auth` belongs.
    let node = WebhookNode::builder(
        "https://crm.example.com/optout?source=platform&api_key=sk_live_77f1&token=",
    )
    .param("email", ParamSource::Email)
    .param("subscription", ParamSource::SubscriptionId)
    .header("x-tenant", "acme")
    .header("X-Auth-Token", "hdr-secret-9")
    .build()
    .unwrap();
    let built = node
        .build_request(&flow(), &profile(), &unsubscribe(), now())
        .unwrap();
    assert_eq!(
        built.preview().curl(),
        format!(
            "curl --request POST 'https://crm.example.com/optout?source=platform&api_key=[redacted]&token=&email=a***%40e***.com&subscription=123456' \\\n  \
             --header 'x-tenant: acme' \\\n  \
             --header 'x-auth-token: [redacted]' \\\n  \
             --header 'webhook-id: {ID_EVT_1}'"
        )
    );
    assert!(!format!("{built:?}").contains("sk_live"));
    // Unmasked, the exact request.
    let unmasked = built.preview_unmasked().curl();
    assert!(unmasked.contains("api_key=sk_live_77f1&token=&email=a%2Bb%40example.com"));
    assert!(unmasked.contains("--header 'x-auth-token: hdr-secret-9'"));

    let found: Vec<(&str, String)> = node
        .lint(&FlowId::new("crm").unwrap(), &[EventKind::EmailUnsubscribe])
        .into_iter()
        .map(|d| (d.code, d.message))
        .collect();
    // The empty `token=` holds nothing and is not reported.
    let fix = "; put it in `auth` (bearer, basic or header), which is never stored and always \
               redacted";
    assert_eq!(
        found,
        [
            (
                lint::CREDENTIAL_OUTSIDE_AUTH,
                format!(
                    "the static query parameter `api_key` looks like a credential: it is stored \
                     with every delivery of the flow and travels with the URL into logs and \
                     proxies{fix}"
                )
            ),
            (
                lint::CREDENTIAL_OUTSIDE_AUTH,
                format!(
                    "the static header `X-Auth-Token` looks like a credential: it is stored with \
                     every delivery of the flow{fix}"
                )
            ),
        ]
    );

    // A header of the `webhook-` family that is not the crate's own is masked too; the
    // signature is not (it reveals nothing).
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .header("webhook-secret", "wh-secret-3")
        .build()
        .unwrap();
    let built = node
        .build_request(&flow(), &profile(), &unsubscribe(), now())
        .unwrap();
    let summary = built.preview().summary();
    assert!(
        summary.contains("webhook-secret: [redacted]\n"),
        "{summary}"
    );
    assert!(!summary.contains("wh-secret-3"), "{summary}");
}

#[test]
fn unmasked_preview_is_the_exact_request() {
    let built = article_node()
        .build_request(&flow(), &profile(), &unsubscribe(), now())
        .unwrap();
    let preview = built.preview_unmasked();
    assert!(!preview.is_masked());
    assert_eq!(
        preview.curl(),
        format!(
            "curl --request POST 'https://crm.example.com/optout?source=platform&list=a%2Bb&email=a%2Bb%40example.com&subscription=123456' \\\n  \
             --header 'webhook-id: {ID_EVT_1}'"
        )
    );
    assert_eq!(
        preview.summary(),
        format!(
            "POST https://crm.example.com/optout?source=platform&list=a%2Bb&email=a%2Bb%40example.com&subscription=123456\n\
             webhook-id: {ID_EVT_1}\n\
             (no body)\n\
             parameters:\n  \
             email = a+b@example.com  (from email)\n  \
             subscription = 123456  (from subscription_id)\n"
        )
    );
    // The masked one of the same request.
    assert_eq!(
        built.preview().curl(),
        format!(
            "curl --request POST 'https://crm.example.com/optout?source=platform&list=a%2Bb&email=a***%40e***.com&subscription=123456' \\\n  \
             --header 'webhook-id: {ID_EVT_1}'"
        )
    );

    let secret = preview_node()
        .build_request(&flow(), &profile(), &unsubscribe(), now())
        .unwrap();
    let curl = secret.preview_unmasked().curl();
    assert!(curl.contains("--header 'authorization: Bearer TOKEN-1234'"));
    assert!(curl.ends_with(
        "--data-binary '{\"email\":\"a+b@example.com\",\"mobile\":\"+46701234567\",\"crm\":\"C-42\",\"score\":42,\"subscription\":\"123456\"}'"
    ));
}

// ---------------------------------------------------------------------------------------------
// Lints
// ---------------------------------------------------------------------------------------------

fn codes(node: &WebhookNode, kinds: &[EventKind]) -> Vec<(&'static str, Severity)> {
    node.lint(&flow(), kinds)
        .into_iter()
        .map(|d| {
            assert_eq!(d.flow, flow());
            (d.code, d.severity)
        })
        .collect()
}

fn node_with(params: &[(&str, ParamSource)]) -> WebhookNodeBuilder {
    let mut b = WebhookNode::builder("https://crm.example.com/optout");
    for (name, source) in params {
        b = b.param(*name, source.clone());
    }
    b
}

#[test]
fn the_articles_nodes_lint_clean() {
    assert_eq!(codes(&article_node(), &[EventKind::EmailUnsubscribe]), []);
    let abuse = node_with(&[
        ("email", ParamSource::Email),
        ("section", ParamSource::SectionId),
    ])
    .build()
    .unwrap();
    assert_eq!(codes(&abuse, &[EventKind::EmailAbuse]), []);
    let sms = node_with(&[
        ("mobile", ParamSource::Mobile),
        ("subscription", ParamSource::SubscriptionId),
    ])
    .build()
    .unwrap();
    assert_eq!(codes(&sms, &[EventKind::SmsUnsubscribe]), []);
}

#[test]
fn abuse_flow_sending_a_subscription() {
    assert_eq!(
        codes(&article_node(), &[EventKind::EmailAbuse]),
        [
            ("abuse_sends_subscription", Severity::Error),
            ("abuse_without_section", Severity::Warning)
        ]
    );
    let optional = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .optional_param("subscription", ParamSource::SubscriptionId)
        .param("section", ParamSource::SectionId)
        .param("kind", ParamSource::EventKind)
        .build()
        .unwrap();
    // Optional, in a flow that also takes Unsubscribe events: the right configuration.
    assert_eq!(
        codes(
            &optional,
            &[EventKind::EmailAbuse, EventKind::EmailUnsubscribe]
        ),
        []
    );
    // Optional, in an Email - Abuse flow: never sent.
    assert_eq!(
        codes(&optional, &[EventKind::EmailAbuse]),
        [("abuse_sends_subscription", Severity::Warning)]
    );
    let message = &optional.lint(&flow(), &[EventKind::EmailAbuse])[0].message;
    assert!(
        message.contains("send the Section (source section_id) instead"),
        "{message}"
    );
}

#[test]
fn unsubscribe_flow_without_a_subscription() {
    let node = node_with(&[("email", ParamSource::Email)]).build().unwrap();
    assert_eq!(
        codes(&node, &[EventKind::EmailUnsubscribe]),
        [("unsubscribe_without_subscription", Severity::Warning)]
    );
}

#[test]
fn identifier_of_the_wrong_channel() {
    let by_email = node_with(&[
        ("email", ParamSource::Email),
        ("subscription", ParamSource::SubscriptionId),
    ])
    .build()
    .unwrap();
    assert_eq!(
        codes(&by_email, &[EventKind::SmsUnsubscribe]),
        [("identifier_mismatch", Severity::Warning)]
    );
    let by_mobile = node_with(&[
        ("mobile", ParamSource::Mobile),
        ("subscription", ParamSource::SubscriptionId),
    ])
    .build()
    .unwrap();
    assert_eq!(
        codes(&by_mobile, &[EventKind::EmailUnsubscribe]),
        [("identifier_mismatch", Severity::Warning)]
    );
    // A Profile id identifies on every channel.
    let with_id = node_with(&[
        ("email", ParamSource::Email),
        ("profile", ParamSource::ProfileId),
        ("subscription", ParamSource::SubscriptionId),
    ])
    .build()
    .unwrap();
    assert_eq!(codes(&with_id, &[EventKind::SmsUnsubscribe]), []);
}

#[test]
fn no_identifying_parameter() {
    let node = node_with(&[("subscription", ParamSource::SubscriptionId)])
        .build()
        .unwrap();
    assert_eq!(
        codes(&node, &[EventKind::EmailUnsubscribe]),
        [("no_identifier", Severity::Error)]
    );
}

#[test]
fn several_kinds_not_told_apart() {
    let node = node_with(&[
        ("email", ParamSource::Email),
        ("subscription", ParamSource::SubscriptionId),
        ("section", ParamSource::SectionId),
    ])
    .build()
    .unwrap();
    assert_eq!(
        codes(&node, &[EventKind::EmailUnsubscribe, EventKind::EmailAbuse]),
        [
            ("abuse_sends_subscription", Severity::Error),
            ("kind_not_sent", Severity::Warning)
        ]
    );
    let envelope = WebhookNode::builder("https://crm.example.com/optout")
        .encoding(WebhookEncoding::JsonEnvelope)
        .param("email", ParamSource::Email)
        .optional_param("subscription", ParamSource::SubscriptionId)
        .param("section", ParamSource::SectionId)
        .build()
        .unwrap();
    assert_eq!(
        codes(
            &envelope,
            &[EventKind::EmailUnsubscribe, EventKind::EmailAbuse]
        ),
        []
    );
}

#[cfg(feature = "signing")]
#[test]
fn signing_with_query_encoding() {
    let node = node_with(&[
        ("email", ParamSource::Email),
        ("subscription", ParamSource::SubscriptionId),
    ])
    .sign_with("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
    .build()
    .unwrap();
    assert_eq!(
        codes(&node, &[EventKind::EmailUnsubscribe]),
        [("signed_query_encoding", Severity::Warning)]
    );
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback() {
    for (url, flagged) in [
        ("http://crm.example.com/optout", true),
        ("http://10.0.0.1/optout", true),
        ("http://localhost:8080/optout", false),
        ("http://app.localhost/optout", false),
        ("http://127.0.0.2/optout", false),
        ("http://[::1]/optout", false),
        ("https://crm.example.com/optout", false),
    ] {
        let node = WebhookNode::builder(url)
            .param("email", ParamSource::Email)
            .param("subscription", ParamSource::SubscriptionId)
            .build()
            .unwrap();
        let expected: &[(&str, Severity)] = if flagged {
            &[("plain_http", Severity::Warning)]
        } else {
            &[]
        };
        assert_eq!(
            codes(&node, &[EventKind::EmailUnsubscribe]),
            expected,
            "{url}"
        );
    }
}

#[test]
fn a_webhook_id_held_as_text_is_read_back_and_text_that_cannot_be_one_is_refused() {
    use optout_relay::webhook::{MAX_WEBHOOK_ID_LEN, WebhookIdError};

    let derived = WebhookId::derive(
        &FlowId::new("crm").unwrap(),
        &EventId::new("evt-1").unwrap(),
    );
    let read: WebhookId = derived.as_str().parse().unwrap();
    assert_eq!(read, derived);
    // An id a host chose in an earlier version, at the limit.
    let longest = "m".repeat(MAX_WEBHOOK_ID_LEN);
    assert_eq!(longest.parse::<WebhookId>().unwrap(), longest.as_str());
    assert_eq!(
        format!("{longest}x").parse::<WebhookId>(),
        Err(WebhookIdError::TooLong {
            len: MAX_WEBHOOK_ID_LEN + 1,
            max: MAX_WEBHOOK_ID_LEN
        })
    );
    assert_eq!("".parse::<WebhookId>(), Err(WebhookIdError::Empty));
    for (text, position) in [("msg 1", 3), ("msg_\r\n", 4), ("msg_é", 4), ("\u{7f}", 0)] {
        assert_eq!(
            text.parse::<WebhookId>(),
            Err(WebhookIdError::NotVisibleAscii { position }),
            "{text:?}"
        );
    }
    assert_eq!(
        WebhookIdError::NotVisibleAscii { position: 3 }.to_string(),
        "the webhook-id holds a character other than visible ASCII at byte 3"
    );
    assert_eq!(
        WebhookIdError::TooLong { len: 300, max: 256 }.to_string(),
        "the webhook-id is 300 bytes long, the limit is 256"
    );
    assert_eq!(
        WebhookIdError::Empty.to_string(),
        "a webhook-id cannot be empty"
    );
}
