//! Bad input: for every surface that reads outside data (flow files, events and Profiles, the
//! request builder's names and values, `Retry-After`, the receiving side), arbitrary input never
//! panics and every rejection is the crate's typed error. The same surfaces are fuzzed with
//! cargo-fuzz (`fuzz/`); each crash the fuzzers found is kept here as a regression test.
//!
//! Also the limits on what a hostile or broken input could inflate that the other test files do
//! not already cover.

#[path = "support/node_requests.rs"]
mod node_requests;
use node_requests::NodeRequests;

use optout_relay::delivery::AttemptOutcome;
use optout_relay::delivery::RetryAfterError;
use optout_relay::delivery::parse_retry_after;
use optout_relay::lint::lint_flows;
use optout_relay::listen::FlowFileError;
use optout_relay::listen::FlowFileProblem;
use optout_relay::model::ActivityId;
use optout_relay::model::ApplyError;
use optout_relay::model::AttributeError;
use optout_relay::model::AttributeName;
use optout_relay::model::AttributeValue;
use optout_relay::model::MAX_ATTRIBUTE_NAME_LEN;
use optout_relay::model::MAX_EMAIL_LEN;
use optout_relay::model::OptOutKind;
use optout_relay::model::Region;
use optout_relay::receive::NoticeError;
use optout_relay::receive::NoticeParser;
#[cfg(feature = "signing")]
use optout_relay::receive::Verifier;
#[cfg(feature = "signing")]
use optout_relay::receive::VerifyError;
use optout_relay::webhook::Auth;
use optout_relay::webhook::Param;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::RequestBuildError;
use optout_relay::webhook::Secret;
use optout_relay::webhook::WebhookConfigError;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookMethod;
use optout_relay::webhook::{
    MAX_BASIC_CREDENTIAL_LEN, MAX_HEADER_VALUE_LEN, MAX_PARAM_NAME_LEN, MAX_REQUEST_URL_LEN,
};
use optout_relay::*;
use proptest::prelude::*;

const ENCODINGS: [WebhookEncoding; 4] = [
    WebhookEncoding::Query,
    WebhookEncoding::Form,
    WebhookEncoding::Json,
    WebhookEncoding::JsonEnvelope,
];

const METHODS: [WebhookMethod; 5] = [
    WebhookMethod::Get,
    WebhookMethod::Post,
    WebhookMethod::Put,
    WebhookMethod::Delete,
    WebhookMethod::Patch,
];

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const FLOW_FILE: &str = r#"{"version": 1, "flows": [
 {"id": "crm", "section": "sec-1", "name": "CRM", "active": true,
  "listen": {"kinds": ["email_unsubscribe", "email_abuse"], "subscriptions": ["123456"]},
  "webhook": {"method": "POST", "url": "https://crm.example.com/optout?source=platform",
   "encoding": "json_envelope",
   "params": [{"name": "email", "source": "email"},
              {"name": "sub", "source": "subscription_id", "optional": true},
              {"name": "section", "source": "section_id"},
              {"name": "crm", "source": {"attribute": "crm_id"}}],
   "headers": [{"name": "x-tenant", "value": "acme"}],
   "auth": {"bearer": {"token": "t0ken"}}}},
 {"id": "sms", "section": "sec-1", "listen": {"kinds": ["sms_unsubscribe"]},
  "webhook": {"url": "https://sms.example.com/stop", "params": [{"name": "m", "source": "mobile"}]}}
]}"#;

const EVENT: &str = r#"{"id": "evt-1", "profile": "p-1", "section": "sec-1",
 "kind": "email_unsubscribe", "subscription": "123456",
 "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"}"#;

const PROFILE: &str = r#"{"id": "p-1", "email": "a+b@example.com", "mobile": "+46701234567",
 "attributes": {"crm_id": "C-1", "score": 1.5, "vip": true},
 "consent": {"123456": {"email": {"status": "opted_in"}, "sms": {"status": "opted_out"}}},
 "section_opt_outs": {}}"#;

const SECTION: &str = r#"{"id": "sec-1", "folders": [{"id": "news",
 "subscriptions": [{"id": "123456"}, {"id": "654321", "name": "Offers"}]}]}"#;

/// `template` with up to three byte ranges replaced by arbitrary text: mostly well-formed
/// documents with something wrong somewhere, which reach further than random text does.
fn mutated(template: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            0..template.len(),
            0usize..12,
            "(\\PC|[\"{}\\[\\],:0-9]){0,12}",
        ),
        1..4,
    )
    .prop_map(move |edits| {
        let mut text = template.to_owned();
        for (at, len, with) in edits {
            let start = at.min(text.len());
            let end = (start + len).min(text.len());
            if text.is_char_boundary(start) && text.is_char_boundary(end) {
                text.replace_range(start..end, &with);
            }
        }
        text
    })
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::Value::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)),
        "\\PC{0,16}".prop_map(serde_json::Value::String),
        prop::sample::select(vec![
            "email",
            "sms",
            "email_abuse",
            "opted_in",
            "POST",
            "json",
            "https://h.example/",
            "2026-11-26T09:30:00Z",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "sec-1",
            "",
        ])
        .prop_map(|s| serde_json::Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "version",
                    "flows",
                    "id",
                    "section",
                    "listen",
                    "webhook",
                    "kinds",
                    "url",
                    "params",
                    "name",
                    "source",
                    "auth",
                    "bearer",
                    "token",
                    "headers",
                    "value",
                    "encoding",
                    "method",
                    "settings",
                    "entry_limit",
                    "profile",
                    "kind",
                    "subscription",
                    "occurred_at",
                    "origin",
                    "email",
                    "mobile",
                    "attributes",
                    "consent",
                    "folders",
                    "subscriptions",
                    "activity",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..5,
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Reads a flow file and checks what the reader promises: a typed error naming where, or flows
/// that lint and index without panicking and write back to the same file.
fn check_flow_file(text: &str) {
    match FlowFile::from_json(text) {
        Ok(file) => {
            let _ = lint_flows(&file.flows);
            let _ = Router::new(file.flows.clone(), &Catalog::default());
            let written = file.to_json().unwrap();
            assert_eq!(FlowFile::from_json(&written).unwrap(), file);
        }
        Err(error) => {
            let error: FlowFileError = error;
            assert!(!error.path.is_empty(), "no path: {error:?}");
            assert!(
                !error.problem.to_string().is_empty(),
                "no message: {error:?}"
            );
            assert!(!error.to_string().is_empty());
        }
    }
}

/// Reads an event, a Profile and a Section, applies the event when all three read.
fn check_event(event: &[u8], profile: &[u8], section: &[u8]) {
    let event: Result<OptOutEvent, serde_json::Error> = serde_json::from_slice(event);
    let profile: Result<Profile, serde_json::Error> = serde_json::from_slice(profile);
    let parsed: Result<Section, serde_json::Error> = serde_json::from_slice(section);
    let _: Result<Catalog, serde_json::Error> = serde_json::from_slice(section);
    for error in [
        event.as_ref().err(),
        profile.as_ref().err(),
        parsed.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!error.to_string().is_empty());
    }
    if let (Ok(event), Ok(mut profile), Ok(section)) = (event, profile, parsed) {
        let before = profile.clone();
        match profile.apply(&event, &section) {
            Ok(_) => {}
            Err(error) => {
                let _: ApplyError = error;
                assert_eq!(profile, before, "a refused opt-out changes nothing");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn flow_files_from_any_text(text in "\\PC{0,256}") {
        check_flow_file(&text);
    }

    #[test]
    fn flow_files_from_mutated_documents(text in mutated(FLOW_FILE)) {
        check_flow_file(&text);
    }

    #[test]
    fn flow_files_with_any_json_where_a_flow_or_node_goes(
        value in json_value(),
        slot in 0usize..4,
    ) {
        let mut file: serde_json::Value = serde_json::from_str(FLOW_FILE).unwrap();
        let flow = &mut file["flows"][0];
        match slot {
            0 => *flow = value,
            1 => flow["webhook"] = value,
            2 => flow["listen"] = value,
            _ => flow["webhook"]["params"][0]["source"] = value,
        }
        check_flow_file(&file.to_string());
    }

    #[test]
    fn events_profiles_and_sections_from_any_bytes(
        event in prop::collection::vec(any::<u8>(), 0..128),
        profile in prop::collection::vec(any::<u8>(), 0..128),
        section in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        check_event(&event, &profile, &section);
    }

    #[test]
    fn events_profiles_and_sections_from_mutated_documents(
        event in mutated(EVENT),
        profile in mutated(PROFILE),
        section in mutated(SECTION),
        keep in 0u8..8,
    ) {
        // Keep some of the three intact, so that `apply` is reached.
        let event = if keep & 1 == 0 { EVENT.to_owned() } else { event };
        let profile = if keep & 2 == 0 { PROFILE.to_owned() } else { profile };
        let section = if keep & 4 == 0 { SECTION.to_owned() } else { section };
        check_event(event.as_bytes(), profile.as_bytes(), section.as_bytes());
    }

    #[test]
    fn events_profiles_and_sections_from_any_json(
        event in json_value(),
        profile in json_value(),
        section in json_value(),
    ) {
        check_event(
            event.to_string().as_bytes(),
            profile.to_string().as_bytes(),
            section.to_string().as_bytes(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The request builder

#[derive(Debug, Clone)]
struct NodeInput {
    url: String,
    method: WebhookMethod,
    encoding: WebhookEncoding,
    params: Vec<(String, ParamSource, bool)>,
    headers: Vec<(String, String)>,
    auth: Auth,
    secrets: Vec<String>,
}

fn source() -> impl Strategy<Value = ParamSource> {
    prop_oneof![
        Just(ParamSource::Email),
        Just(ParamSource::Mobile),
        "\\PC{1,12}|crm_id".prop_filter_map("a valid attribute name", |name| {
            AttributeName::new(name).ok().map(ParamSource::Attribute)
        }),
        Just(ParamSource::ProfileId),
        Just(ParamSource::SubscriptionId),
        Just(ParamSource::FolderId),
        Just(ParamSource::SectionId),
        Just(ParamSource::EventKind),
        Just(ParamSource::Channel),
        Just(ParamSource::EventId),
        Just(ParamSource::ActivityId),
        Just(ParamSource::OccurredAt),
        Just(ParamSource::Origin),
    ]
}

/// Any text, or something close to valid.
fn text(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(valid).prop_map(str::to_owned),
        1 => ".{0,24}",
        1 => "[ -~]{0,24}",
    ]
}

fn node_input() -> impl Strategy<Value = NodeInput> {
    let auth = prop_oneof![
        Just(Auth::None),
        text(&["t0ken", "a b", ""]).prop_map(|token| Auth::Bearer {
            token: Secret::new(token)
        }),
        (text(&["user", "a:b"]), text(&["pass", "p\u{0}"])).prop_map(|(username, password)| {
            Auth::Basic {
                username,
                password: Secret::new(password),
            }
        }),
        (
            text(&["x-api-key", "authorization", "bad name"]),
            text(&["key", " k"])
        )
            .prop_map(|(name, value)| Auth::Header {
                name,
                value: Secret::new(value),
            }),
    ];
    (
        text(&[
            "https://crm.example.com/optout?source=platform",
            "https://crm.example.com/optout?",
            "http://localhost:8080/x?a=1&",
            "https://user:pass@h.example/",
            "https://h.example/#frag",
            "ftp://h.example/",
            "https://h.example:99999/",
        ]),
        prop::sample::select(&METHODS[..]),
        prop::sample::select(&ENCODINGS[..]),
        prop::collection::vec(
            (
                text(&["email", "e mail", "a+b", "ü", "x\u{7}"]),
                source(),
                any::<bool>(),
            ),
            0..6,
        ),
        prop::collection::vec(
            (
                text(&["x-tenant", "host", "webhook-id", "X-Tenant"]),
                text(&["acme", " v", "é"]),
            ),
            0..3,
        ),
        auth,
        prop::collection::vec(text(&[SECRET, "whsec_", "whsec_AAAA"]), 0..3),
    )
        .prop_map(
            |(url, method, encoding, params, headers, auth, secrets)| NodeInput {
                url,
                method,
                encoding,
                params,
                headers,
                auth,
                secrets,
            },
        )
}

fn build_node(input: &NodeInput) -> Result<WebhookNode, WebhookConfigError> {
    let mut builder = WebhookNode::builder(input.url.as_str())
        .method(input.method)
        .encoding(input.encoding)
        .auth(input.auth.clone());
    for (name, source, optional) in &input.params {
        builder = if *optional {
            builder.optional_param(name.as_str(), source.clone())
        } else {
            builder.param(name.as_str(), source.clone())
        };
    }
    for (name, value) in &input.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    for secret in &input.secrets {
        builder = builder.sign_with(secret.as_str());
    }
    builder.build()
}

#[derive(Debug, Clone)]
struct DataInput {
    email: String,
    mobile: String,
    attributes: Vec<(String, AttributeValue)>,
    kind: EventKind,
    ids: [String; 4],
    activity: Option<String>,
    folder: Option<String>,
    occurred_at: i64,
    now: i64,
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        any::<bool>().prop_map(AttributeValue::from),
        any::<i64>().prop_map(AttributeValue::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(AttributeValue::Number)),
        ".{0,32}".prop_map(AttributeValue::from),
        "\\PC{0,2000}".prop_map(AttributeValue::from),
    ]
}

fn data_input() -> impl Strategy<Value = DataInput> {
    (
        text(&["a+b@example.com", "a@b", "@x", "a@b..c", "é@ü.example"]),
        text(&["+46701234567", "0046 (0)70-123 45 67", "+0123456789", "+1"]),
        prop::collection::vec((text(&["crm_id", "", "x\u{1}"]), attribute_value()), 0..4),
        prop::sample::select(EventKind::ALL.to_vec()),
        [
            text(&["p-1", ""]),
            text(&["evt-1", "e\u{0}"]),
            text(&["sec-1"]),
            text(&["123456"]),
        ],
        prop::option::of(text(&["act-1"])),
        prop::option::of(text(&["news"])),
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(
            |(email, mobile, attributes, kind, ids, activity, folder, occurred_at, now)| {
                DataInput {
                    email,
                    mobile,
                    attributes,
                    kind,
                    ids,
                    activity,
                    folder,
                    occurred_at,
                    now,
                }
            },
        )
}

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds.rem_euclid(253_402_207_200)).unwrap()
}

/// Builds the request for `data` with `node`, through the validating constructors, and checks
/// the previews and the receiving side's reading of it.
fn check_build(node: &WebhookNode, data: &DataInput) {
    let id = |text: &str, fallback: &str| -> String {
        ProfileId::new(text).map_or(fallback.to_owned(), |_| text.to_owned())
    };
    let profile_id = ProfileId::new(id(&data.ids[0], "p-1")).unwrap();
    let mut profile = Profile::new(profile_id.clone());
    match Email::new(data.email.as_str()) {
        Ok(email) => profile = profile.with_email(email),
        Err(error) => assert!(matches!(error, AttributeError::Email { .. })),
    }
    match Mobile::new(&data.mobile) {
        Ok(mobile) => profile = profile.with_mobile(mobile),
        Err(error) => assert!(matches!(error, AttributeError::Mobile { .. })),
    }
    for (name, value) in &data.attributes {
        match AttributeName::new(name.as_str()) {
            Ok(name) => profile = profile.with_attribute(name, value.clone()),
            Err(error) => assert!(matches!(error, AttributeError::Name { .. })),
        }
    }
    let section = SectionId::new(id(&data.ids[2], "sec-1")).unwrap();
    let subscription = SubscriptionId::new(id(&data.ids[3], "123456")).unwrap();
    let kind = match data.kind {
        EventKind::EmailUnsubscribe => OptOutKind::EmailUnsubscribe {
            subscription: subscription.clone(),
        },
        EventKind::EmailAbuse => OptOutKind::EmailAbuse,
        _ => OptOutKind::SmsUnsubscribe {
            subscription: subscription.clone(),
        },
    };
    let mut event = OptOutEvent::new(
        EventId::new(id(&data.ids[1], "evt-1")).unwrap(),
        profile_id,
        section.clone(),
        kind,
        timestamp(data.occurred_at),
    );
    if let Some(activity) = data
        .activity
        .as_deref()
        .and_then(|a| ActivityId::new(a).ok())
    {
        event = event.with_activity(activity);
    }
    let now = timestamp(data.now);
    let flow = FlowId::new("crm").unwrap();
    let built = match data.folder.as_deref().and_then(|f| FolderId::new(f).ok()) {
        Some(folder) => {
            let section = Section::new(section, [Folder::new(folder, [subscription])]).unwrap();
            node.build_request_in(&section, &flow, &profile, &event, now)
        }
        None => node.build_request(&flow, &profile, &event, now),
    };
    let request = match built {
        Ok(request) => request,
        Err(error) => {
            let error: RequestBuildError = error;
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    assert!(request.request().uri().to_string().len() <= MAX_REQUEST_URL_LEN);
    let preview = request.preview();
    let _ = (preview.curl(), preview.summary(), preview.to_string());
    let _ = request.preview_unmasked().curl();

    let parser = NoticeParser::from_node(node).with_fixed_kind(event.kind());
    match parser.parse(request.request()) {
        Ok(notice) => {
            assert_eq!(notice.kind, event.kind());
            if node
                .params()
                .iter()
                .any(|p| *p.source() == ParamSource::Email)
            {
                assert_eq!(notice.email, profile.email);
            }
        }
        Err(error) => {
            let error: NoticeError = error;
            assert!(!error.to_string().is_empty());
        }
    }
    #[cfg(feature = "signing")]
    if let Some(verifier) = Verifier::from_node(node) {
        let verified = verifier.verify(request.request().headers(), request.request().body(), now);
        assert!(verified.is_ok(), "{verified:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nodes_from_arbitrary_parts_build_or_fail_typed(input in node_input()) {
        match build_node(&input) {
            Ok(node) => {
                let json = serde_json::to_string(&node).unwrap();
                prop_assert_eq!(serde_json::from_str::<WebhookNode>(&json).unwrap(), node);
            }
            Err(error) => {
                let error: WebhookConfigError = error;
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }

    #[test]
    fn requests_from_arbitrary_profile_values_and_names(
        params in prop::collection::vec(
            (text(&["email", "e mail", "a+b", "ü", "&=?#"]), source(), any::<bool>()),
            1..6,
        ),
        encoding in prop::sample::select(&ENCODINGS[..]),
        signed in any::<bool>(),
        data in data_input(),
    ) {
        let method = if encoding.has_body() { WebhookMethod::Post } else { WebhookMethod::Get };
        let input = NodeInput {
            url: "https://crm.example.com/optout?source=platform".to_owned(),
            method,
            encoding,
            params,
            headers: Vec::new(),
            auth: Auth::None,
            secrets: if signed && cfg!(feature = "signing") {
                vec![SECRET.to_owned()]
            } else {
                Vec::new()
            },
        };
        let Ok(node) = build_node(&input) else {
            // Duplicate or invalid names: covered by the property above.
            return Ok(());
        };
        check_build(&node, &data);
    }

    #[test]
    fn arbitrary_nodes_and_data_never_panic(input in node_input(), data in data_input()) {
        if let Ok(node) = build_node(&input) {
            check_build(&node, &data);
        }
    }

    /// The phone-number metadata reads any text without panicking (RFC 3966 `tel:` forms
    /// included, which once made it panic), and what it cannot be certain of is kept as given.
    #[test]
    fn mobiles_from_any_text_are_read_kept_or_refused_typed(
        value in prop_oneof![
            "\\PC{0,80}",
            "[+0-9 ()./-]{0,30}",
            "(tel:)?\\+?[0-9é-]{0,12}(;phone-context=[+0-9.é-]{0,8})?(;ext=[0-9]{0,4})?",
            "(\\+|00)?[0-9]{1,3} ?(\\(0\\))?[0-9 -]{4,20}( ?(ext\\.|x|#) ?[0-9]{1,5})?",
        ],
        region in prop::sample::select(&["SE", "US", "IT", "GB", "JP"][..]),
    ) {
        let region = Region::new(region).unwrap();
        for read in [Mobile::new(&value), Mobile::with_region(&value, region)] {
            match read {
                Ok(mobile) => {
                    prop_assert_eq!(mobile.as_given(), value.as_str());
                    match mobile.e164() {
                        Some(e164) => {
                            prop_assert_eq!(mobile.as_str(), e164);
                            prop_assert!(e164.starts_with('+'));
                            prop_assert!(e164[1..].bytes().all(|b| b.is_ascii_digit()));
                            // E.164 reads back as itself.
                            let again = Mobile::new(e164).unwrap();
                            prop_assert_eq!(again.e164(), Some(e164));
                        }
                        // Kept as given, without the whitespace around it.
                        None => prop_assert_eq!(
                            mobile.as_str(),
                            value.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                        ),
                    }
                    let _ = (mobile.masked(), format!("{mobile:?}"));
                }
                Err(error) => {
                    let typed = matches!(error, AttributeError::Mobile { .. });
                    prop_assert!(typed, "{:?}", error);
                }
            }
        }
    }

    #[test]
    fn retry_after_from_any_text(
        value in prop_oneof![
            "\\PC{0,80}",
            "[0-9]{0,30}",
            " ?[0-9]{1,25} ?",
            "(Mon|Tue|Thu), [0-9]{1,2} (Jan|Feb|Nov) [0-9]{1,5} [0-9]{2}:[0-9]{2}:[0-9]{2} (GMT|UT|\\+0100|-9999)",
            "(Mon|Fri|Sat|Sun), [0-9]{2} (Jan|Dec) [0-9]{4,25} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
            "(Monday|Thursday|Sunday), [0-9]{1,3}-(Jan|Nov|Xyz)-[0-9]{1,3} [0-9]{2}:[0-9]{2}:[0-9]{2} (GMT|UT)",
            "(Mon|Thu|Sun) (Jan|Nov) [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{1,25}",
        ],
        seconds in any::<i64>(),
    ) {
        let now = timestamp(seconds);
        match parse_retry_after(&value, now) {
            Ok(at) => prop_assert!(at >= now),
            Err(error) => {
                let error: RetryAfterError = error;
                let known = matches!(
                    error,
                    RetryAfterError::Empty
                        | RetryAfterError::TooLong { .. }
                        | RetryAfterError::Malformed
                );
                prop_assert!(known, "{:?}", error);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The receiving side

fn header_map(headers: &[(String, Vec<u8>)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn receiving_node(encoding: WebhookEncoding) -> WebhookNode {
    let builder = WebhookNode::builder("https://crm.example.com/optout")
        .encoding(encoding)
        .param("email", ParamSource::Email)
        .optional_param("mobile", ParamSource::Mobile)
        .optional_param(
            "crm",
            ParamSource::Attribute(AttributeName::new("crm_id").unwrap()),
        )
        .optional_param("subscription", ParamSource::SubscriptionId)
        .optional_param("section", ParamSource::SectionId)
        .optional_param("kind", ParamSource::EventKind)
        .optional_param("at", ParamSource::OccurredAt);
    builder.build().unwrap()
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                "content-type",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "x-other",
            ])
            .prop_map(str::to_owned),
            prop_oneof![
                prop::sample::select(vec![
                    "application/json",
                    "application/x-www-form-urlencoded; charset=utf-8",
                    "msg_1",
                    "1795685405",
                    "v1,AAAA v1,",
                    "v1a,x",
                ])
                .prop_map(|s| s.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 0..40),
            ],
        ),
        0..6,
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        "(email|mobile|crm|kind|subscription|at|%[0-9A-F]{2}|%|=|&|\\+|[a-z@.]){0,60}"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_parts_any_uri_headers_and_body(
        encoding in prop::sample::select(&ENCODINGS[..]),
        uri in prop_oneof![
            "https://crm\\.example\\.com/optout\\?(email|crm|kind|subscription|%[0-9A-F]{2}|%|=|&|\\+|[a-z@.]){0,60}",
            "\\PC{0,60}",
        ],
        headers in headers(),
        body in body(),
        fixed in prop::option::of(prop::sample::select(EventKind::ALL.to_vec())),
    ) {
        let mut parser = NoticeParser::from_node(&receiving_node(encoding));
        if let Some(kind) = fixed {
            parser = parser.with_fixed_kind(kind);
        }
        let uri = http::Uri::try_from(uri.as_str())
            .unwrap_or_else(|_| http::Uri::from_static("https://crm.example.com/optout"));
        match parser.parse_parts(&uri, &header_map(&headers), &body) {
            Ok(notice) => prop_assert!(
                notice.email.is_some(),
                "the only required parameter is the email"
            ),
            Err(error) => {
                let error: NoticeError = error;
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }

    #[test]
    fn parsers_from_arbitrary_mappings(
        encoding in prop::sample::select(&ENCODINGS[..]),
        mapping in prop::collection::vec((text(&["email", "e", ""]), source(), any::<bool>()), 0..5),
        fixed in prop::option::of(prop::sample::select(EventKind::ALL.to_vec())),
        body in body(),
    ) {
        let mut builder = NoticeParser::builder().encoding(encoding);
        for (name, source, optional) in mapping {
            builder = if optional {
                builder.optional_param(name, source)
            } else {
                builder.param(name, source)
            };
        }
        if let Some(kind) = fixed {
            builder = builder.fixed_kind(kind);
        }
        match builder.build() {
            Ok(parser) => {
                let request = http::Request::post("https://crm.example.com/optout?email=a%40b")
                    .body(body)
                    .unwrap();
                let _: Result<_, NoticeError> = parser.parse(&request);
            }
            Err(error) => {
                let _: WebhookConfigError = error;
            }
        }
    }
}

#[cfg(feature = "signing")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_any_headers_body_and_now(
        headers in headers(),
        body in body(),
        now in any::<i64>(),
        tolerance in any::<i64>(),
    ) {
        let verifier = Verifier::from_secrets([SECRET])
            .unwrap()
            .tolerance(jiff::SignedDuration::from_secs(tolerance));
        match verifier.verify(&header_map(&headers), &body, timestamp(now)) {
            Ok(_) => {}
            Err(error) => {
                let error: VerifyError = error;
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Limits not covered elsewhere

#[test]
fn credentials_are_bounded() {
    let long_token = "t".repeat(MAX_HEADER_VALUE_LEN + 1);
    let error = WebhookNode::builder("https://h.example/")
        .bearer(long_token)
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        WebhookConfigError::InvalidAuth {
            scheme: "bearer",
            ..
        }
    ));
    assert!(
        WebhookNode::builder("https://h.example/")
            .bearer("t".repeat(MAX_HEADER_VALUE_LEN))
            .build()
            .is_ok()
    );
    for (user, password) in [
        ("u".repeat(MAX_BASIC_CREDENTIAL_LEN + 1), "p".to_owned()),
        ("u".to_owned(), "p".repeat(MAX_BASIC_CREDENTIAL_LEN + 1)),
    ] {
        let error = WebhookNode::builder("https://h.example/")
            .basic(user, password)
            .build()
            .unwrap_err();
        assert!(matches!(
            error,
            WebhookConfigError::InvalidAuth {
                scheme: "basic",
                ..
            }
        ));
    }
    let error = WebhookNode::builder("https://h.example/")
        .auth(Auth::Header {
            name: "x-api-key".to_owned(),
            value: Secret::new("k".repeat(MAX_HEADER_VALUE_LEN + 1)),
        })
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        WebhookConfigError::InvalidHeaderValue { .. }
    ));
}

#[test]
fn names_and_personal_values_are_bounded() {
    assert!(AttributeName::new("a".repeat(MAX_ATTRIBUTE_NAME_LEN)).is_ok());
    assert!(matches!(
        AttributeName::new("a".repeat(MAX_ATTRIBUTE_NAME_LEN + 1)),
        Err(AttributeError::Name { .. })
    ));
    // A Mobile written with any amount of padding is refused before it is scanned.
    assert!(matches!(
        Mobile::new(format!("+46 {}70 123 45 67", " ".repeat(64))),
        Err(AttributeError::Mobile { .. })
    ));
    assert!(matches!(
        Email::new(format!("a@{}.example", "b".repeat(MAX_EMAIL_LEN))),
        Err(AttributeError::Email { .. })
    ));
    // A parameter name at the limit is fine, one byte more is not.
    assert!(Param::new("p".repeat(MAX_PARAM_NAME_LEN), ParamSource::Email).is_ok());
    assert!(Param::new("p".repeat(MAX_PARAM_NAME_LEN + 1), ParamSource::Email).is_err());
}

/// A receiver's answer is kept to the policy's limit in bytes, whatever bytes it holds: not
/// valid UTF-8 (each bad byte would become a 3-byte U+FFFD) or cut inside a character.
#[test]
fn response_bodies_kept_in_attempts_stay_within_the_limit_in_bytes() {
    for (body, limit) in [
        (vec![0xFF; 1000], 512),
        (vec![0xFF; 10], 8),
        ("é".repeat(300).into_bytes(), 511),
        ("ü€𝄞".repeat(100).into_bytes(), 100),
        (b"plain".to_vec(), 512),
    ] {
        let response = http::Response::builder()
            .status(500)
            .body(body.clone())
            .unwrap();
        let AttemptOutcome::Response {
            body: kept,
            body_truncated,
            ..
        } = AttemptOutcome::from_response(&response, limit)
        else {
            panic!("a response is recorded as one");
        };
        assert!(
            kept.len() <= limit,
            "{} bytes kept, limit {limit}",
            kept.len()
        );
        if body.len() > limit {
            assert!(body_truncated);
        }
        if !body_truncated {
            assert_eq!(kept, String::from_utf8_lossy(&body));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_response_body_is_kept_within_the_limit(
        body in prop::collection::vec(any::<u8>(), 0..600),
        limit in 0usize..600,
    ) {
        let response = http::Response::builder().status(503).body(body.clone()).unwrap();
        let AttemptOutcome::Response { body: kept, body_truncated, .. } =
            AttemptOutcome::from_response(&response, limit)
        else {
            panic!("a response is recorded as one");
        };
        prop_assert!(kept.len() <= limit);
        if body.len() > limit {
            prop_assert!(body_truncated);
        }
        if !body_truncated {
            prop_assert_eq!(kept, String::from_utf8_lossy(&body));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions found by the fuzzers (fuzz/), kept as tests.

/// `fuzz/flow_file`: an unknown top-level key `""` gave an error with an empty path
/// (serde_path_to_error writes that key as nothing); the path is now `.`.
#[test]
fn fuzz_flow_file_empty_key_at_the_top_names_a_path() {
    for text in [
        r#"{"": 1}"#,
        r#"{"version": 1, "flows": [], "": 1}"#,
        "{\"\"method\": \"POST\"}",
    ] {
        let error = FlowFile::from_json(text).unwrap_err();
        assert!(!error.path.is_empty(), "{text}: {error:?}");
        assert!(!error.problem.to_string().is_empty(), "{text}: {error:?}");
    }
    check_flow_file("{\"\"method\":   \"POST\", \"url\": \"https://crm.example.coversion\": 1}");
}

/// `fuzz/event`: a custom attribute number with more digits than an `f64` holds read back as
/// another number once written (serde_json's default float parsing may be off by one unit in
/// the last place); the crate now parses floats exactly (`serde_json/float_roundtrip`), so a
/// Profile written and read again is the same Profile, and the request sends the same value.
#[test]
fn fuzz_event_long_attribute_numbers_round_trip() {
    for number in [
        "11111111111111111911111111111111111111111111111111110000000000000000000000000000891532894984237512.5",
        "0.30000000000000004",
        "2.2250738585072011e-308",
        "9007199254740993.5",
    ] {
        let json = format!(r#"{{"id": "p-1", "attributes": {{"n": {number}}}}}"#);
        let profile: Profile = serde_json::from_str(&json).unwrap();
        let written = serde_json::to_string(&profile).unwrap();
        let again: Profile = serde_json::from_str(&written).unwrap();
        assert_eq!(again, profile, "{number}");
    }
}

// ---------------------------------------------------------------------------------------------
// Flow-file errors name what is wrong and where, never the value written there.

/// A value written where a variant, a name, a key or an id belongs (it might as well be a
/// token or an Email).
const MARKER: &str = "alice.secret@example.com";

/// One flow on one line, so that columns are easy to check by eye.
const FLOW: &str = r#"{"id": "f", "section": "s", "listen": {"kinds": ["email_unsubscribe"]}, "webhook": {"url": "https://x.example/", "params": [{"name": "email", "source": "email"}]}}"#;

/// The flow file holding `FLOW` with `from` replaced by `to` (`@` in `to` stands for the
/// marker), on line 2.
fn flow_file_where(from: &str, to: &str) -> String {
    assert!(FLOW.contains(from), "{from}");
    let flow = FLOW.replacen(from, &to.replace('@', MARKER), 1);
    format!("{{\"version\": 1, \"flows\": [\n{flow}\n]}}")
}

/// Reads `text`, expecting an error that neither shows the marker (whole or percent-encoded)
/// nor is long.
#[track_caller]
fn flow_file_error(text: &str) -> FlowFileError {
    assert!(text.contains(MARKER));
    let error = FlowFile::from_json(text).unwrap_err();
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{error:#?}"),
        error.problem.to_string(),
    ] {
        assert!(!shown.contains(MARKER), "{shown}");
        assert!(!shown.contains("alice.secret%40example.com"), "{shown}");
        assert!(!shown.contains("alice.secret"), "{shown}");
    }
    error
}

fn at(path: &str, problem: FlowFileProblem, line: usize, column: usize) -> FlowFileError {
    FlowFileError {
        path: path.to_owned(),
        problem,
        line: Some(line),
        column: Some(column),
    }
}

/// An error found after reading, with no place in the text.
fn unplaced(path: &str, problem: FlowFileProblem) -> FlowFileError {
    FlowFileError {
        path: path.to_owned(),
        problem,
        line: None,
        column: None,
    }
}

#[test]
fn flow_file_unknown_variants_are_not_repeated() {
    let kinds = flow_file_error(&flow_file_where("\"email_unsubscribe\"", "\"@\""));
    assert_eq!(
        kinds,
        at(
            "flows[0].listen.kinds[0]",
            FlowFileProblem::UnknownVariant {
                expected: &[
                    "Email - Unsubscribe",
                    "email_unsubscribe",
                    "Email - Abuse",
                    "email_abuse",
                    "SMS - Unsubscribe",
                    "sms_unsubscribe"
                ]
            },
            2,
            75
        )
    );
    assert_eq!(
        flow_file_error(&flow_file_where(
            "[\"email_unsubscribe\"]}",
            "[\"email_unsubscribe\"], \"origins\": [\"api\", \"@\"]}"
        )),
        at(
            "flows[0].listen.origins[1]",
            FlowFileProblem::UnknownVariant {
                expected: &["communication", "api", "file_import"]
            },
            2,
            116
        )
    );
    assert_eq!(
        flow_file_error(&flow_file_where("{\"url\"", "{\"method\": \"@\", \"url\"")),
        at(
            "flows[0].webhook.method",
            FlowFileProblem::UnknownVariant {
                expected: &["GET", "POST", "PUT", "DELETE", "PATCH"]
            },
            2,
            120
        )
    );
    assert_eq!(
        flow_file_error(&flow_file_where(
            "{\"url\"",
            "{\"encoding\": \"@\", \"url\""
        )),
        at(
            "flows[0].webhook.encoding",
            FlowFileProblem::UnknownVariant {
                expected: &["query", "form", "json", "json_envelope"]
            },
            2,
            122
        )
    );
    let sources = FlowFileProblem::UnknownVariant {
        expected: &[
            "email",
            "mobile",
            "attribute",
            "profile_id",
            "subscription_id",
            "folder_id",
            "section_id",
            "event_kind",
            "channel",
            "event_id",
            "activity_id",
            "occurred_at",
            "origin",
        ],
    };
    assert_eq!(
        flow_file_error(&flow_file_where(
            "\"source\": \"email\"",
            "\"source\": \"@\""
        )),
        at("flows[0].webhook.params[0].source", sources.clone(), 2, 178)
    );
    assert_eq!(
        flow_file_error(&flow_file_where(
            "\"source\": \"email\"",
            "\"source\": {\"@\": \"crm_id\"}"
        )),
        at("flows[0].webhook.params[0].source", sources, 2, 179)
    );
    let limits = FlowFileProblem::UnknownVariant {
        expected: &["unlimited", "at_most"],
    };
    assert_eq!(
        flow_file_error(&flow_file_where(
            "\"webhook\":",
            "\"settings\": {\"entry_limit\": \"@\"}, \"webhook\":"
        )),
        at("flows[0].settings.entry_limit", limits.clone(), 2, 126)
    );
    assert_eq!(
        flow_file_error(&flow_file_where(
            "\"webhook\":",
            "\"settings\": {\"entry_limit\": {\"@\": {\"entries\": 1}}}, \"webhook\":"
        )),
        at("flows[0].settings.entry_limit", limits, 2, 127)
    );
    let auths = FlowFileProblem::UnknownVariant {
        expected: &["none", "bearer", "basic", "header"],
    };
    assert_eq!(
        flow_file_error(&flow_file_where("{\"url\"", "{\"auth\": \"@\", \"url\"")),
        at("flows[0].webhook.auth", auths.clone(), 2, 118)
    );
    assert_eq!(
        flow_file_error(&flow_file_where(
            "{\"url\"",
            "{\"auth\": {\"@\": {\"token\": \"t\"}}, \"url\""
        )),
        at("flows[0].webhook.auth", auths, 2, 119)
    );
    assert_eq!(
        kinds.to_string(),
        "flows[0].listen.kinds[0]: unknown variant, expected one of `Email - Unsubscribe`, \
         `email_unsubscribe`, `Email - Abuse`, `email_abuse`, `SMS - Unsubscribe`, \
         `sms_unsubscribe` (line 2, column 75)"
    );
}

#[test]
fn flow_file_invalid_names_are_not_repeated() {
    let param = flow_file_error(&flow_file_where(
        "\"name\": \"email\"",
        "\"name\": \"@\\n\"",
    ));
    assert_eq!(
        param,
        at(
            "flows[0].webhook.params[0].name",
            FlowFileProblem::Invalid {
                reason: "invalid parameter name: it holds a control character".into()
            },
            2,
            161
        )
    );
    let not_a_token = "invalid header name: it holds a character other than letters, digits \
                       and !#$%&'*+-.^_`|~";
    assert_eq!(
        flow_file_error(&flow_file_where(
            "{\"url\"",
            "{\"headers\": [{\"name\": \"x-a\", \"value\": \"1\"}, {\"name\": \"@\", \"value\": \"v\"}], \"url\""
        )),
        at(
            "flows[0].webhook.headers[1].name",
            FlowFileProblem::Invalid {
                reason: not_a_token.into()
            },
            2,
            162
        )
    );
    assert_eq!(
        flow_file_error(&flow_file_where(
            "{\"url\"",
            "{\"auth\": {\"header\": {\"name\": \"@\", \"value\": \"v\"}}, \"url\""
        )),
        at(
            "flows[0].webhook.auth.header.name",
            FlowFileProblem::Invalid {
                reason: not_a_token.into()
            },
            2,
            138
        )
    );
}

#[test]
fn flow_file_unknown_keys_are_not_repeated() {
    let flow_keys = FlowFileProblem::UnknownField {
        expected: &[
            "id", "name", "section", "active", "listen", "settings", "webhook",
        ],
    };
    let error = flow_file_error(&flow_file_where("{\"id\"", "{\"@\": 1, \"id\""));
    assert_eq!(error, at("flows[0]", flow_keys, 2, 27));
    assert_eq!(
        error.to_string(),
        "flows[0]: unknown field, expected one of `id`, `name`, `section`, `active`, `listen`, \
         `settings`, `webhook` (line 2, column 27)"
    );
    assert_eq!(
        flow_file_error(&flow_file_where("{\"url\"", "{\"@\": \"x\", \"url\"")),
        at(
            "flows[0].webhook",
            FlowFileProblem::UnknownField {
                expected: &[
                    "method",
                    "url",
                    "encoding",
                    "params",
                    "headers",
                    "auth",
                    "signing_secrets"
                ]
            },
            2,
            110
        )
    );
    assert_eq!(
        flow_file_error(&format!(
            "{{\"version\": 1, \"flows\": [], \"{MARKER}\": 1}}"
        )),
        at(
            ".",
            FlowFileProblem::UnknownField {
                expected: &["version", "flows"]
            },
            1,
            54
        )
    );
}

#[test]
fn flow_file_duplicate_flow_ids_are_not_repeated() {
    let flow = FLOW.replace("\"f\"", &format!("\"{MARKER}\""));
    let other = FLOW.replace("\"f\"", "\"other\"");
    let text = format!("{{\"version\": 1, \"flows\": [\n{flow},\n{other},\n{flow}\n]}}");
    let error = flow_file_error(&text);
    assert_eq!(
        error,
        unplaced("flows[2].id", FlowFileProblem::DuplicateFlowId { first: 0 })
    );
    assert_eq!(
        error.to_string(),
        "flows[2].id: the flow id is already used by flows[0]"
    );
}

/// The duplicate check is linear: 20,000 flows with the repeat at the end.
#[test]
fn flow_file_duplicate_flow_id_among_many_flows() {
    let flows: Vec<String> = (0..20_000)
        .map(|i| FLOW.replace("\"f\"", &format!("\"f-{}\"", i % 19_999)))
        .collect();
    let text = format!("{{\"version\": 1, \"flows\": [{}]}}", flows.join(","));
    assert_eq!(
        FlowFile::from_json(&text).unwrap_err(),
        unplaced(
            "flows[19999].id",
            FlowFileProblem::DuplicateFlowId { first: 0 }
        )
    );
}

/// A multi-megabyte unknown key or variant: the error stays short and holds none of it.
#[test]
fn flow_file_errors_are_bounded() {
    let huge = format!("{MARKER}{}", "x".repeat(4 << 20));
    let cases = [
        flow_file_where("{\"id\"", &format!("{{\"{huge}\": 1, \"id\"")),
        flow_file_where("\"email_unsubscribe\"", &format!("\"{huge}\"")),
        flow_file_where("{\"url\"", &format!("{{\"auth\": \"{huge}\", \"url\"")),
        flow_file_where(
            "{\"url\"",
            &format!("{{\"auth\": {{\"{huge}\": {{}}}}, \"url\""),
        ),
        flow_file_where("\"name\": \"email\"", &format!("\"name\": \"{huge}\"")),
        flow_file_where(
            "{\"url\"",
            &format!("{{\"headers\": [{{\"name\": \"{huge}\", \"value\": \"v\"}}], \"url\""),
        ),
        flow_file_where("\"section\": \"s\"", &format!("\"section\": \"{huge}\"")),
        flow_file_where("\"section\": \"s\"", &format!("\"section\": [\"{huge}\"]")),
        flow_file_where("\"https://x.example/\"", &format!("\"https://{huge}/\"")),
    ];
    for text in &cases {
        let error = flow_file_error(text);
        let shown = error.to_string();
        assert!(shown.len() <= 1024, "{} bytes: {shown}", shown.len());
        assert!(format!("{error:?}").len() <= 1024, "{error:?}");
        assert!(!shown.contains("xxxxxxxxxxxxxxxx"), "{shown}");
    }
}
