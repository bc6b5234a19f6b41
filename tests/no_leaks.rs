//! Personal data and secrets never appear whole in `Debug` (`{:?}`, `{:#?}`), `Display` or a
//! masked preview of any public type that can hold them.
//!
//! Every value below is distinctive (a canary): an Email, a Mobile, a custom attribute text, a
//! bearer token, a basic-auth password, an API-key header value and a signing secret. Each type
//! is formatted every way it can be, and no canary may appear (nor the Email percent-encoded,
//! nor the basic-auth header value, nor the signing key's base64). JSON serialization is data,
//! not logging, and is not checked here.

#[path = "support/node_requests.rs"]
mod node_requests;
use node_requests::NodeRequests;

use optout_relay::delivery::AttemptOutcome;
use optout_relay::lint::lint_flows;
use optout_relay::listen::InMemoryLedger;
#[cfg(feature = "tokio")]
use optout_relay::model::ActivityId;
use optout_relay::model::ApplyError;
use optout_relay::model::AttributeName;
use optout_relay::model::AttributeValue;
#[cfg(feature = "signing")]
use optout_relay::receive::Verifier;
use optout_relay::receive::{NoticeParser, NoticeScope, OptOutNotice};
#[cfg(feature = "tokio")]
use optout_relay::relay::Submitted;
use optout_relay::testing::RecordingClient;
use optout_relay::transport::TransportErrorKind;
use optout_relay::webhook::Auth;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::RequestBuildError;
use optout_relay::webhook::Secret;
#[cfg(feature = "signing")]
use optout_relay::webhook::SigningSecret;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookRequest;
use optout_relay::*;

const EMAIL: &str = "leak.canary+x@secret-domain.example";
const EMAIL_ENCODED: &str = "leak.canary%2Bx%40secret-domain.example";
const MOBILE: &str = "+46701234567";
const ATTRIBUTE: &str = "Canary-Attribute-Value";
const BEARER: &str = "Bearer-Canary-Token-0123456789";
const BASIC_USER: &str = "canary-user";
const BASIC_PASSWORD: &str = "Basic-Canary-Password";
/// base64("canary-user:Basic-Canary-Password"), the `authorization: Basic` value.
const BASIC_ENCODED: &str = "Y2FuYXJ5LXVzZXI6QmFzaWMtQ2FuYXJ5LVBhc3N3b3Jk";
const API_KEY: &str = "ApiKey-Canary-Value";
/// `whsec_` + base64("canary-signing-secret-key-012345").
const SIGNING: &str = "whsec_Y2FuYXJ5LXNpZ25pbmctc2VjcmV0LWtleS0wMTIzNDU=";
const SIGNING_KEY: &str = "Y2FuYXJ5LXNpZ25pbmctc2VjcmV0LWtleS0wMTIzNDU=";
/// A value written into a flow file where a name, a variant or an id belongs.
const MARKER: &str = "alice.secret@example.com";
const MARKER_ENCODED: &str = "alice.secret%40example.com";

/// Every whole value that must never appear.
const CANARIES: [&str; 11] = [
    EMAIL,
    EMAIL_ENCODED,
    MOBILE,
    ATTRIBUTE,
    BEARER,
    BASIC_PASSWORD,
    BASIC_ENCODED,
    API_KEY,
    SIGNING_KEY,
    MARKER,
    MARKER_ENCODED,
];

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} shows `{canary}`:\n{text}");
    }
    // The Mobile's digits without the `+`, in case some output drops it.
    assert!(
        !text.contains(&MOBILE[1..]),
        "{what} shows the Mobile's digits:\n{text}"
    );
}

/// `{:?}` and `{:#?}`.
#[track_caller]
fn check_debug<T: std::fmt::Debug + ?Sized>(what: &str, value: &T) {
    assert_clean(&format!("{what} {{:?}}"), &format!("{value:?}"));
    assert_clean(&format!("{what} {{:#?}}"), &format!("{value:#?}"));
}

/// `{:?}`, `{:#?}` and `{}`.
#[track_caller]
fn check_all<T: std::fmt::Debug + std::fmt::Display + ?Sized>(what: &str, value: &T) {
    check_debug(what, value);
    assert_clean(&format!("{what} {{}}"), &format!("{value}"));
    assert_clean(&format!("{what} {{:#}}"), &format!("{value:#}"));
}

fn email() -> Email {
    Email::new(EMAIL).unwrap()
}

fn mobile() -> Mobile {
    Mobile::new(MOBILE).unwrap()
}

fn profile() -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(email())
        .with_mobile(mobile())
        .with_attribute(AttributeName::new("crm_id").unwrap(), ATTRIBUTE)
        .with_attribute(AttributeName::new("vip").unwrap(), true)
        .with_consent(SubscriptionId::new("123456").unwrap(), Channel::Email)
}

fn event() -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new("evt-1").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}

fn now() -> Timestamp {
    "2026-11-26T09:30:05Z".parse().unwrap()
}

fn flow_id() -> FlowId {
    FlowId::new("crm").unwrap()
}

/// A node sending every personal source, with `auth` and (with `signing`) a signing secret.
fn node(encoding: WebhookEncoding, auth: Auth) -> WebhookNode {
    let builder = WebhookNode::builder("https://crm.example.com/optout?source=platform")
        .encoding(encoding)
        .param("email", ParamSource::Email)
        .param("mobile", ParamSource::Mobile)
        .param(
            "crm",
            ParamSource::Attribute(AttributeName::new("crm_id").unwrap()),
        )
        .param("subscription", ParamSource::SubscriptionId)
        .header("x-tenant", "acme")
        .auth(auth);
    #[cfg(feature = "signing")]
    let builder = builder.sign_with(SIGNING);
    builder.build().unwrap()
}

fn auths() -> Vec<(&'static str, Auth)> {
    vec![
        (
            "bearer",
            Auth::Bearer {
                token: Secret::new(BEARER),
            },
        ),
        (
            "basic",
            Auth::Basic {
                username: BASIC_USER.to_owned(),
                password: Secret::new(BASIC_PASSWORD),
            },
        ),
        (
            "header",
            Auth::Header {
                name: "x-api-key".to_owned(),
                value: Secret::new(API_KEY),
            },
        ),
    ]
}

const ENCODINGS: [WebhookEncoding; 4] = [
    WebhookEncoding::Query,
    WebhookEncoding::Form,
    WebhookEncoding::Json,
    WebhookEncoding::JsonEnvelope,
];

/// Every node (encoding x auth) and its request built for the canary Profile.
fn built() -> Vec<(String, WebhookNode, WebhookRequest)> {
    let mut out = Vec::new();
    for encoding in ENCODINGS {
        for (name, auth) in auths() {
            let node = node(encoding, auth);
            let request = node
                .build_request(&flow_id(), &profile(), &event(), now())
                .unwrap();
            out.push((format!("{encoding}/{name}"), node, request));
        }
    }
    out
}

/// The canaries really are in the built requests: the checks below would be vacuous otherwise.
#[test]
fn the_canaries_are_really_sent() {
    for (what, _, request) in built() {
        let unmasked = request.preview_unmasked().curl();
        assert!(
            unmasked.contains(EMAIL) || unmasked.contains(EMAIL_ENCODED),
            "{what}"
        );
        assert!(unmasked.contains(ATTRIBUTE), "{what}");
        assert!(
            unmasked.contains(BEARER)
                || unmasked.contains(BASIC_ENCODED)
                || unmasked.contains(API_KEY),
            "{what}"
        );
    }
}

#[test]
fn personal_values_are_masked() {
    check_all("Email", &email());
    check_all("Mobile", &mobile());
    check_debug("AttributeValue", &AttributeValue::from(ATTRIBUTE));
    check_debug("Option<Email>", &Some(email()));
    check_debug("Profile", &profile());
    // A Profile read from JSON is the same type; check it once that way too.
    let json = serde_json::to_string(&profile()).unwrap();
    let read: Profile = serde_json::from_str(&json).unwrap();
    check_debug("Profile (from JSON)", &read);
}

/// An Email that is not an address and a Mobile kept as given hold the canaries whole: they are
/// masked as well, and the error of a flow that cannot send the Email repeats nothing.
#[test]
fn values_kept_as_given_are_masked() {
    let not_address = Email::lenient(format!("x {EMAIL}"));
    assert!(!not_address.is_address());
    check_all("Email (not an address)", &not_address);
    let kept = Mobile::new(&MOBILE[1..]).unwrap();
    assert!(!kept.is_normalized());
    check_all("Mobile (as given)", &kept);
    let profile = Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(not_address)
        .with_mobile(kept);
    check_debug("Profile (values as given)", &profile);
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .build()
        .unwrap();
    let error = node
        .build_request(&flow_id(), &profile, &event(), now())
        .unwrap_err();
    assert!(matches!(error, RequestBuildError::EmailNotAddress { .. }));
    check_all("RequestBuildError::EmailNotAddress", &error);
}

#[test]
fn secrets_are_redacted() {
    check_all("Secret", &Secret::new(BEARER));
    for (what, auth) in auths() {
        check_debug(&format!("Auth::{what}"), &auth);
    }
    #[cfg(feature = "signing")]
    {
        let secret = SigningSecret::new(SIGNING).unwrap();
        check_debug("SigningSecret", &secret);
        let verifier = Verifier::new([secret]);
        check_debug("Verifier", &verifier);
        check_debug(
            "Verifier::from_secrets",
            &Verifier::from_secrets([SIGNING]).unwrap(),
        );
    }
}

#[test]
fn nodes_requests_and_previews_are_masked() {
    for (what, node, request) in built() {
        check_debug(&format!("WebhookNode {what}"), &node);
        check_debug(&format!("WebhookRequest {what}"), &request);
        check_debug(&format!("WebhookId {what}"), request.webhook_id());
        let preview = request.preview();
        assert!(preview.is_masked());
        check_all(&format!("Preview {what}"), &preview);
        assert_clean(&format!("Preview::curl {what}"), &preview.curl());
        assert_clean(&format!("Preview::summary {what}"), &preview.summary());
        check_debug(
            &format!("NoticeParser {what}"),
            &NoticeParser::from_node(&node),
        );
        for diagnostic in node.lint(&flow_id(), &[EventKind::EmailUnsubscribe]) {
            check_all(&format!("Diagnostic {what}"), &diagnostic);
        }
    }
}

fn flow_file_json() -> String {
    let signing = if cfg!(feature = "signing") {
        format!(r#", "signing_secrets": ["{SIGNING}"]"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"version": 1, "flows": [
        {{"id": "bearer", "section": "sec-1", "listen": {{"kinds": ["email_unsubscribe"]}},
          "webhook": {{"url": "https://crm.example.com/optout", "encoding": "json",
            "params": [{{"name": "email", "source": "email"}},
                       {{"name": "subscription", "source": "subscription_id"}}],
            "auth": {{"bearer": {{"token": "{BEARER}"}}}}{signing}}}}},
        {{"id": "basic", "section": "sec-1", "listen": {{"kinds": ["email_unsubscribe"]}},
          "webhook": {{"url": "https://crm.example.com/optout",
            "params": [{{"name": "email", "source": "email"}}],
            "auth": {{"basic": {{"username": "{BASIC_USER}", "password": "{BASIC_PASSWORD}"}}}}}}}},
        {{"id": "key", "section": "sec-1", "listen": {{"kinds": ["email_unsubscribe"]}},
          "webhook": {{"url": "https://crm.example.com/optout",
            "params": [{{"name": "email", "source": "email"}}],
            "auth": {{"header": {{"name": "x-api-key", "value": "{API_KEY}"}}}}}}}}
    ]}}"#
    )
}

#[test]
fn flows_flow_files_and_routers_are_redacted() {
    let file = FlowFile::from_json(&flow_file_json()).unwrap();
    check_debug("FlowFile", &file);
    for flow in &file.flows {
        check_debug(&format!("Flow {}", flow.id), flow);
    }
    for diagnostic in lint_flows(&file.flows) {
        check_all("Diagnostic", &diagnostic);
    }
    let router = Router::new(file.flows.clone(), &Catalog::default()).unwrap();
    check_debug("Router", &router);
    check_debug(
        "Routing",
        &router.route(&event(), &mut InMemoryLedger::new(), now()),
    );
    let mut ledger = InMemoryLedger::new();
    let _ = router.route(&event(), &mut ledger, now());
    check_debug("InMemoryLedger", &ledger);
}

/// A flow file with a secret where a structure was expected: serde's message quotes the string
/// it found, and the error must not.
#[test]
fn flow_file_errors_do_not_quote_secrets() {
    let cases = [
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "https://x.example/", "auth": {{"bearer": "{BEARER}"}}}}}}]}}"#
        ),
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "https://x.example/", "auth": {{"basic": {{"username": "u", "password": ["{BASIC_PASSWORD}"]}}}}}}}}]}}"#
        ),
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "https://x.example/", "auth": "{API_KEY}"}}}}]}}"#
        ),
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "https://x.example/", "signing_secrets": "{SIGNING}"}}}}]}}"#
        ),
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "https://x.example/", "signing_secrets": [["{SIGNING}"]]}}}}]}}"#
        ),
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "https://x.example/", "headers": {{"x": "{API_KEY}"}}}}}}]}}"#
        ),
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "{EMAIL}"}}}}]}}"#
        ),
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "https://x.example/?email={EMAIL}#x"}}}}]}}"#
        ),
        // An escaped quote before the secret: the redaction must not stop there.
        format!(
            r#"{{"version": 1, "flows": [{{"id": "f", "section": "s", "listen": {{"kinds": ["email_unsubscribe"]}}, "webhook": {{"url": "https://x.example/", "auth": {{"bearer": "x\"{BEARER}"}}}}}}]}}"#
        ),
        // Trailing input after the document.
        format!(r#"{{"version": 1, "flows": []}} "{BEARER}""#),
    ];
    for (i, json) in cases.iter().enumerate() {
        let error = FlowFile::from_json(json).unwrap_err();
        assert!(!error.path.is_empty(), "case {i}: {error}");
        assert!(!error.problem.to_string().is_empty(), "case {i}");
        check_all(&format!("FlowFileError case {i}"), &error);
    }
}

/// A flow file with one flow whose webhook, listen node or settings are patched by `edit`.
fn flow_file_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut file = serde_json::json!({"version": 1, "flows": [{
        "id": "f", "section": "s",
        "listen": {"kinds": ["email_unsubscribe"]},
        "webhook": {"url": "https://x.example/", "params": [{"name": "email", "source": "email"}]}
    }]});
    edit(&mut file["flows"][0]);
    serde_json::to_string_pretty(&file).unwrap()
}

/// The marker written where a variant, a name, a key or an id belongs: serde's messages repeat
/// such values (`unknown variant `...``, `unknown field `...``), and the errors must not.
#[test]
fn flow_file_errors_do_not_repeat_names_variants_keys_or_ids() {
    let cases: Vec<(&str, String)> = vec![
        (
            "kinds",
            flow_file_with(|f| f["listen"]["kinds"][0] = MARKER.into()),
        ),
        (
            "origins",
            flow_file_with(|f| f["listen"]["origins"] = serde_json::json!([MARKER])),
        ),
        (
            "method",
            flow_file_with(|f| f["webhook"]["method"] = MARKER.into()),
        ),
        (
            "encoding",
            flow_file_with(|f| f["webhook"]["encoding"] = MARKER.into()),
        ),
        (
            "source",
            flow_file_with(|f| f["webhook"]["params"][0]["source"] = MARKER.into()),
        ),
        (
            "source (map)",
            flow_file_with(|f| {
                f["webhook"]["params"][0]["source"] = serde_json::json!({MARKER: "crm_id"})
            }),
        ),
        (
            "entry_limit",
            flow_file_with(|f| f["settings"] = serde_json::json!({"entry_limit": MARKER})),
        ),
        (
            "entry_limit (map)",
            flow_file_with(|f| f["settings"] = serde_json::json!({"entry_limit": {MARKER: {}}})),
        ),
        (
            "within",
            flow_file_with(|f| {
                f["settings"] = serde_json::json!({"entry_limit": {"at_most": {"entries": 1, "within": MARKER}}})
            }),
        ),
        (
            "auth",
            flow_file_with(|f| f["webhook"]["auth"] = MARKER.into()),
        ),
        (
            "auth (map)",
            flow_file_with(|f| f["webhook"]["auth"] = serde_json::json!({MARKER: {"token": "t"}})),
        ),
        (
            "param name",
            flow_file_with(|f| f["webhook"]["params"][0]["name"] = format!("{MARKER}\n").into()),
        ),
        (
            "header name",
            flow_file_with(|f| {
                f["webhook"]["headers"] = serde_json::json!([{"name": MARKER, "value": "v"}])
            }),
        ),
        (
            "auth header name",
            flow_file_with(|f| {
                f["webhook"]["auth"] = serde_json::json!({"header": {"name": MARKER, "value": "v"}})
            }),
        ),
        (
            "duplicated valid param name",
            flow_file_with(|f| {
                f["webhook"]["params"] = serde_json::json!([
                    {"name": MARKER, "source": "email"},
                    {"name": MARKER, "source": "section_id"}
                ])
            }),
        ),
        (
            "param named like a static query parameter",
            flow_file_with(|f| {
                f["webhook"]["url"] =
                    "https://crm.example.com/?alice.secret%40example.com=1".into();
                f["webhook"]["params"] = serde_json::json!([{"name": MARKER, "source": "email"}]);
            }),
        ),
        (
            "duplicated valid header name",
            flow_file_with(|f| {
                f["webhook"]["headers"] = serde_json::json!([
                    {"name": "x-alice.secret", "value": "1"},
                    {"name": "X-Alice.Secret", "value": "2"}
                ])
            }),
        ),
        (
            "header value",
            flow_file_with(|f| {
                f["webhook"]["headers"] = serde_json::json!([{"name": "x-alice.secret", "value": format!("{MARKER}\r\n")}])
            }),
        ),
        (
            "auth header clashing with a header",
            flow_file_with(|f| {
                f["webhook"]["headers"] =
                    serde_json::json!([{"name": "x-alice.secret", "value": "1"}]);
                f["webhook"]["auth"] =
                    serde_json::json!({"header": {"name": "x-alice.secret", "value": "v"}});
            }),
        ),
        ("version", {
            let mut file: serde_json::Value =
                serde_json::from_str(&flow_file_with(|_| {})).unwrap();
            file["version"] = 987_654_321.into();
            file.to_string()
        }),
        ("unknown field", flow_file_with(|f| f[MARKER] = 1.into())),
        (
            "unknown field (webhook)",
            flow_file_with(|f| f["webhook"][MARKER] = "x".into()),
        ),
        ("flow id", {
            let mut file: serde_json::Value =
                serde_json::from_str(&flow_file_with(|f| f["id"] = MARKER.into())).unwrap();
            let again = file["flows"][0].clone();
            file["flows"].as_array_mut().unwrap().push(again);
            file.to_string()
        }),
    ];
    for (what, json) in cases {
        let marked = ["x-alice.secret", "987654321"]
            .iter()
            .find(|extra| json.contains(*extra))
            .copied();
        assert!(
            json.contains(MARKER) || marked.is_some(),
            "{what}: the marker is in the file"
        );
        let error = FlowFile::from_json(&json).unwrap_err();
        check_all(&format!("FlowFileError ({what})"), &error);
        // Valid names and numbers are not repeated either.
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains("alice.secret"), "{what}: {shown}");
            assert!(!shown.contains("987654321"), "{what}: {shown}");
        }
    }
}

#[test]
fn build_errors_are_clean() {
    // A URL that grows too long from a long custom attribute: the error gives lengths only.
    let long = Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(email())
        .with_attribute(AttributeName::new("crm_id").unwrap(), ATTRIBUTE.repeat(400));
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .param(
            "crm",
            ParamSource::Attribute(AttributeName::new("crm_id").unwrap()),
        )
        .build()
        .unwrap();
    let error = node
        .build_request(&flow_id(), &long, &event(), now())
        .unwrap_err();
    check_all("RequestBuildError::UrlTooLong", &error);
    // A missing value names the parameter and source only.
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .param("sms", ParamSource::Mobile)
        .build()
        .unwrap();
    let no_mobile = Profile::new(ProfileId::new("p-1").unwrap()).with_email(email());
    let error = node
        .build_request(&flow_id(), &no_mobile, &event(), now())
        .unwrap_err();
    check_all("RequestBuildError::MissingValue", &error);
}

/// A Profile id may be personal (some hosts use the Email or Mobile as the id): an event applied
/// to, or built with, another Profile names neither id whole.
#[test]
fn profile_mismatch_errors_mask_profile_ids() {
    let by_email = Profile::new(ProfileId::new(EMAIL).unwrap()).with_email(email());
    let for_mobile = OptOutEvent::email_unsubscribe(
        EventId::new("evt-1").unwrap(),
        ProfileId::new(MOBILE).unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    );
    let section = Section::new(SectionId::new("sec-1").unwrap(), []).unwrap();
    let error = by_email.clone().apply(&for_mobile, &section).unwrap_err();
    assert!(matches!(error, ApplyError::ProfileMismatch { .. }));
    check_all("ApplyError::ProfileMismatch", &error);
    let node = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .build()
        .unwrap();
    let error = node
        .build_request(&flow_id(), &by_email, &for_mobile, now())
        .unwrap_err();
    assert!(matches!(error, RequestBuildError::ProfileMismatch { .. }));
    check_all("RequestBuildError::ProfileMismatch", &error);
}

/// A Profile id may be personal (here the host uses the Email as the id): sent as a parameter,
/// it is masked in previews and in a request's `Debug`, in every encoding.
#[test]
fn a_profile_id_sent_as_a_parameter_is_masked_in_previews() {
    let by_email = Profile::new(ProfileId::new(EMAIL).unwrap());
    let event = OptOutEvent::email_unsubscribe(
        EventId::new("evt-1").unwrap(),
        ProfileId::new(EMAIL).unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    );
    for encoding in ENCODINGS {
        let node = WebhookNode::builder("https://crm.example.com/optout")
            .encoding(encoding)
            .param("id", ParamSource::ProfileId)
            .build()
            .unwrap();
        let request = node
            .build_request(&flow_id(), &by_email, &event, now())
            .unwrap();
        let unmasked = request.preview_unmasked().curl();
        assert!(
            unmasked.contains(EMAIL) || unmasked.contains(EMAIL_ENCODED),
            "{encoding}: {unmasked}"
        );
        let preview = request.preview();
        check_all(&format!("Preview {encoding}"), &preview);
        assert_clean(&format!("Preview::curl {encoding}"), &preview.curl());
        assert_clean(&format!("Preview::summary {encoding}"), &preview.summary());
        check_debug(&format!("WebhookRequest {encoding}"), &request);
        assert!(
            preview
                .summary()
                .contains("  id = l***  (from profile_id)\n"),
            "{encoding}: {}",
            preview.summary()
        );
    }
}

#[test]
fn config_errors_are_clean() {
    let url = "https://crm.example.com/optout";
    let errors = [
        WebhookNode::builder(format!(
            "https://{BASIC_USER}:{BASIC_PASSWORD}@crm.example.com/"
        ))
        .build()
        .unwrap_err(),
        WebhookNode::builder(format!("https://crm.example.com/optout#{EMAIL}"))
            .build()
            .unwrap_err(),
        WebhookNode::builder(format!("mailto:{EMAIL}"))
            .build()
            .unwrap_err(),
        WebhookNode::builder(format!("https://crm.example.com:99999/?email={EMAIL}"))
            .build()
            .unwrap_err(),
        WebhookNode::builder(format!("https://crm.example.com/{}", EMAIL.repeat(80)))
            .build()
            .unwrap_err(),
        WebhookNode::builder(url)
            .bearer(format!("{BEARER} with spaces"))
            .build()
            .unwrap_err(),
        WebhookNode::builder(url)
            .basic(BASIC_USER, format!("{BASIC_PASSWORD}\n"))
            .build()
            .unwrap_err(),
        WebhookNode::builder(url)
            .auth(Auth::Header {
                name: "x-api-key".to_owned(),
                value: Secret::new(format!("{API_KEY}\r\n")),
            })
            .build()
            .unwrap_err(),
        WebhookNode::builder(url)
            .auth(Auth::Header {
                name: "x-api-key".to_owned(),
                value: Secret::new(format!(" {API_KEY}")),
            })
            .build()
            .unwrap_err(),
        WebhookNode::builder(url)
            .sign_with(format!("{SIGNING}!"))
            .build()
            .unwrap_err(),
        WebhookNode::builder(url)
            .sign_with(SIGNING_KEY)
            .build()
            .unwrap_err(),
    ];
    for (i, error) in errors.iter().enumerate() {
        check_all(&format!("WebhookConfigError case {i}"), error);
    }
}

/// Incoming requests holding the canaries, and what the receiving side makes of them.
#[test]
fn notices_and_notice_errors_are_masked() {
    for (what, node, request) in built() {
        let parser = NoticeParser::from_node(&node).with_fixed_kind(EventKind::EmailUnsubscribe);
        let notice: OptOutNotice = parser.parse(request.request()).unwrap();
        assert_eq!(notice.email.as_ref().map(Email::as_str), Some(EMAIL));
        check_debug(&format!("OptOutNotice {what}"), &notice);
        check_debug(&format!("NoticeScope {what}"), &notice.scope);
    }

    let parser = NoticeParser::builder()
        .encoding(WebhookEncoding::Json)
        .param("email", ParamSource::Email)
        .optional_param("email2", ParamSource::Email)
        .optional_param("mobile", ParamSource::Mobile)
        .optional_param(
            "crm",
            ParamSource::Attribute(AttributeName::new("crm_id").unwrap()),
        )
        .optional_param(
            "crm2",
            ParamSource::Attribute(AttributeName::new("crm_id").unwrap()),
        )
        .param("subscription", ParamSource::SubscriptionId)
        .fixed_kind(EventKind::EmailUnsubscribe)
        .build()
        .unwrap();
    check_debug("NoticeParser (builder)", &parser);
    let json = |body: String| {
        http::Request::post("https://crm.example.com/optout")
            .header("content-type", "application/json")
            .body(body.into_bytes())
            .unwrap()
    };
    let bodies = [
        // Malformed JSON around the values.
        format!(r#"{{"email": "{EMAIL}", "crm": "{ATTRIBUTE}""#),
        format!(r#"{{"email": "{EMAIL}" "crm": "{ATTRIBUTE}"}}"#),
        format!(r#"["{EMAIL}", "{MOBILE}"]"#),
        // Values that fail validation.
        format!(r#"{{"email": "{EMAIL},", "subscription": "1"}}"#),
        format!(r#"{{"email": "{EMAIL}@{EMAIL}", "subscription": "1"}}"#),
        format!(r#"{{"email": "{EMAIL}", "mobile": "{MOBILE}\u0001", "subscription": "1"}}"#),
        format!(
            r#"{{"email": "{EMAIL}", "mobile": "{MOBILE}{}", "subscription": "1"}}"#,
            " ".repeat(64)
        ),
        format!(r#"{{"email": ["{EMAIL}"], "subscription": "1"}}"#),
        format!(r#"{{"email": "{EMAIL}", "crm": ["{ATTRIBUTE}"], "subscription": "1"}}"#),
        // Conflicts and repeats.
        format!(r#"{{"email": "{EMAIL}", "email2": "other@example.com", "subscription": "1"}}"#),
        format!(r#"{{"email": "{EMAIL}", "email": "other@example.com", "subscription": "1"}}"#),
        format!(
            r#"{{"email": "{EMAIL}", "crm": "{ATTRIBUTE}", "crm2": "other", "subscription": "1"}}"#
        ),
        // Missing parameters.
        format!(r#"{{"email": "{EMAIL}", "crm": "{ATTRIBUTE}"}}"#),
        format!(r#"{{"mobile": "{MOBILE}", "subscription": "{EMAIL}\u0001"}}"#),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        let error = parser.parse(&json(body)).unwrap_err();
        check_all(&format!("NoticeError json case {i}"), &error);
    }

    // The same through a query string and a form, with bytes that are not UTF-8.
    let query = NoticeParser::builder()
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .fixed_kind(EventKind::EmailUnsubscribe)
        .build()
        .unwrap();
    for uri in [
        format!("https://crm.example.com/optout?email={EMAIL_ENCODED}%FF&subscription=1"),
        format!("https://crm.example.com/optout?email={EMAIL_ENCODED}%2C&subscription=1"),
        format!(
            "https://crm.example.com/optout?email={EMAIL_ENCODED}&email=x%40y.z&subscription=1"
        ),
        format!("https://crm.example.com/optout?email={EMAIL_ENCODED}"),
    ] {
        let request = http::Request::get(uri.as_str()).body(Vec::new()).unwrap();
        let error = query.parse(&request).unwrap_err();
        check_all("NoticeError query", &error);
    }
    // A content-type that does not fit.
    let form = NoticeParser::builder()
        .encoding(WebhookEncoding::Form)
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .fixed_kind(EventKind::EmailUnsubscribe)
        .build()
        .unwrap();
    let request = http::Request::post("https://crm.example.com/optout")
        .header("content-type", "application/json")
        .body(format!("email={EMAIL_ENCODED}").into_bytes())
        .unwrap();
    check_all(
        "NoticeError content-type",
        &form.parse(&request).unwrap_err(),
    );
    let notice = OptOutNotice::new(
        EventKind::EmailUnsubscribe,
        NoticeScope::Subscription(SubscriptionId::new("1").unwrap()),
    );
    check_debug("OptOutNotice::new", &notice);
}

#[cfg(feature = "signing")]
#[test]
fn verify_errors_and_verified_webhooks_are_clean() {
    let (_, node, request) = built()
        .into_iter()
        .find(|(what, _, _)| what == "json/bearer")
        .unwrap();
    let verifier = Verifier::from_node(&node).unwrap();
    let verified = verifier
        .verify(request.request().headers(), request.request().body(), now())
        .unwrap();
    check_debug("VerifiedWebhook", &verified);
    // A changed body, a replay, missing and malformed headers.
    let mut tampered = request.request().body().clone();
    tampered.extend_from_slice(EMAIL.as_bytes());
    let later: Timestamp = "2026-11-27T09:30:05Z".parse().unwrap();
    let mut broken = request.request().headers().clone();
    broken.insert(
        "webhook-signature",
        format!("v1,{SIGNING_KEY}").parse().unwrap(),
    );
    let mut odd = request.request().headers().clone();
    odd.insert("webhook-timestamp", EMAIL.parse().unwrap());
    let mut id = request.request().headers().clone();
    id.insert("webhook-id", EMAIL.repeat(10).parse().unwrap());
    let errors = [
        verifier
            .verify(request.request().headers(), &tampered, now())
            .unwrap_err(),
        verifier
            .verify(request.request().headers(), request.request().body(), later)
            .unwrap_err(),
        verifier
            .verify(&http::HeaderMap::new(), request.request().body(), now())
            .unwrap_err(),
        verifier
            .verify(&broken, request.request().body(), now())
            .unwrap_err(),
        verifier
            .verify(&odd, request.request().body(), now())
            .unwrap_err(),
        verifier
            .verify(&id, request.request().body(), now())
            .unwrap_err(),
    ];
    for (i, error) in errors.iter().enumerate() {
        check_all(&format!("VerifyError case {i}"), error);
    }
}

#[test]
fn deliveries_and_recording_clients_are_masked() {
    for (what, _, request) in built() {
        let id = request.webhook_id().clone();
        let mut delivery = Delivery::new(
            id,
            flow_id(),
            EventId::new("evt-1").unwrap(),
            request.into_request(),
            now(),
        );
        check_debug(&format!("Delivery {what}"), &delivery);
        let answer = http::Response::builder()
            .status(503)
            .body(Vec::new())
            .unwrap();
        let step = delivery.record(Ok(&answer), now(), now(), &RetryPolicy::default(), 0);
        check_debug(&format!("Step {what}"), &step);
        check_debug(&format!("Delivery after an attempt {what}"), &delivery);
        check_debug(&format!("DeliveryState {what}"), delivery.state());
    }
}

#[test]
fn recording_client_is_masked() {
    let (_, _, request) = built().swap_remove(0);
    let client = RecordingClient::new();
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut send = std::pin::pin!(client.send(request.into_request()));
    let std::task::Poll::Ready(answer) = send.as_mut().poll(&mut cx) else {
        panic!("RecordingClient answers at once");
    };
    answer.unwrap();
    assert_eq!(client.requests().len(), 1);
    check_debug("RecordingClient", &client);
}

#[test]
fn transport_errors_are_clean() {
    // A transport error carries the transport's message only; the kinds never hold data.
    for kind in [
        TransportErrorKind::Connect,
        TransportErrorKind::Timeout,
        TransportErrorKind::Other,
    ] {
        let error = TransportError::new(kind, "connection refused");
        check_all(&format!("TransportError {kind}"), &error);
    }
}

#[cfg(feature = "reqwest")]
#[tokio::test]
async fn reqwest_errors_do_not_hold_the_url() {
    // A port nothing listens on, loopback allowed: a connect error for a URL holding the Email.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = ReqwestClient::builder()
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .build()
        .unwrap();
    for (_, node, _) in built() {
        let node = node
            .with_url(format!("http://{address}/optout").parse().unwrap())
            .unwrap();
        let request = node
            .build_request(&flow_id(), &profile(), &event(), now())
            .unwrap();
        let error = client.send(request.into_request()).await.unwrap_err();
        check_all("TransportError (reqwest)", &error);
        check_debug("ReqwestClient", &client);
    }
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn worker_results_and_outcomes_are_masked() {
    use std::sync::Arc;

    let file = FlowFile::from_json(&flow_file_json()).unwrap();
    let router = Arc::new(Router::new(file.flows, &Catalog::default()).unwrap());
    let client = RecordingClient::new();
    let store = Arc::new(VolatileStore::new());
    let (worker, mut outcomes) =
        Worker::builder(router, Arc::new(client.clone()), store.clone()).start();
    check_debug("Worker", &worker);
    let submitted: Submitted = worker.submit(&event(), &profile()).await.unwrap();
    check_debug("Submitted", &submitted);
    for _ in 0..submitted.flows.len() {
        let outcome: Outcome =
            tokio::time::timeout(std::time::Duration::from_secs(10), outcomes.recv())
                .await
                .unwrap()
                .unwrap();
        check_debug("Outcome", &outcome);
    }
    check_debug("Outcomes", &outcomes);
    // A Profile without the Email the flows need: not built, and the error names no value.
    let no_email = Profile::new(ProfileId::new("p-1").unwrap())
        .with_mobile(mobile())
        .with_attribute(AttributeName::new("crm_id").unwrap(), ATTRIBUTE);
    let submitted = worker
        .submit(
            &event().with_activity(ActivityId::new("a-1").unwrap()),
            &no_email,
        )
        .await
        .unwrap();
    check_debug("Submitted (not built)", &submitted);
    check_debug("RecordingClient (after a worker)", &client);
    check_debug("VolatileStore", &store);
    let stored = store
        .list(&optout_relay::store::ListQuery::new(
            optout_relay::store::StateFilter::Delivered,
        ))
        .await
        .unwrap();
    assert_eq!(stored.len(), submitted.flows.len());
    check_debug("Delivery (from the store)", &stored);
    let stopped = worker.shutdown().await;
    check_debug("Stopped", &stopped);
}

#[test]
fn attempt_records_do_not_print_a_response_body_that_echoes_personal_data() {
    let echo = format!("{{\"stored\":\"{EMAIL}\",\"mobile\":\"{MOBILE}\"}}");
    let response = http::Response::builder()
        .status(422)
        .body(echo.clone().into_bytes())
        .unwrap();
    let outcome = AttemptOutcome::from_response(&response, 512);
    // The record keeps the text (it is data for the host), but Debug does not print it.
    assert!(matches!(&outcome, AttemptOutcome::Response { body, .. } if *body == echo));
    check_debug("AttemptOutcome echoing the request", &outcome);
    assert_eq!(
        format!("{outcome:?}"),
        format!(
            "Response {{ status: 422, retry_after: None, body_bytes: {}, body_truncated: false }}",
            echo.len()
        )
    );
}
