//! The receiving side: `Verifier::verify` with arbitrary headers, body, `now` and tolerance,
//! and `NoticeParser::parse_parts` with an arbitrary URI, headers and body for each encoding.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use optout_relay::jiff::SignedDuration;
use optout_relay::model::AttributeName;
use optout_relay::receive::NoticeParser;
use optout_relay::receive::Verifier;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::*;

const SECRETS: [&str; 2] = [
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_Y2FuYXJ5LXNpZ25pbmctc2VjcmV0LWtleS0wMTIzNDU=",
];

#[derive(Debug, Arbitrary)]
struct Input {
    encoding: u8,
    /// Use the parameter names the sender's node uses (else the arbitrary mapping below).
    node_mapping: bool,
    mapping: Vec<(String, u8, bool)>,
    fixed_kind: Option<u8>,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    /// Add well-formed Standard Webhooks headers, so that verification gets far.
    standard_headers: Option<(String, i64, Vec<String>)>,
    body: Vec<u8>,
    now: i64,
    tolerance: i64,
}

fn source(n: u8) -> ParamSource {
    match n % 13 {
        0 => ParamSource::Email,
        1 => ParamSource::Mobile,
        2 => ParamSource::Attribute(AttributeName::new("crm_id").expect("valid")),
        3 => ParamSource::ProfileId,
        4 => ParamSource::SubscriptionId,
        5 => ParamSource::FolderId,
        6 => ParamSource::SectionId,
        7 => ParamSource::EventKind,
        8 => ParamSource::Channel,
        9 => ParamSource::EventId,
        10 => ParamSource::ActivityId,
        11 => ParamSource::OccurredAt,
        _ => ParamSource::Origin,
    }
}

fn node(encoding: WebhookEncoding) -> WebhookNode {
    WebhookNode::builder("https://crm.example.com/optout")
        .encoding(encoding)
        .param("email", ParamSource::Email)
        .optional_param("mobile", ParamSource::Mobile)
        .optional_param(
            "crm",
            ParamSource::Attribute(AttributeName::new("crm_id").expect("valid")),
        )
        .optional_param("profile", ParamSource::ProfileId)
        .optional_param("subscription", ParamSource::SubscriptionId)
        .optional_param("folder", ParamSource::FolderId)
        .optional_param("section", ParamSource::SectionId)
        .optional_param("kind", ParamSource::EventKind)
        .optional_param("channel", ParamSource::Channel)
        .optional_param("event", ParamSource::EventId)
        .optional_param("activity", ParamSource::ActivityId)
        .optional_param("at", ParamSource::OccurredAt)
        .optional_param("origin", ParamSource::Origin)
        .sign_with(SECRETS[0])
        .build()
        .expect("a valid node")
}

fuzz_target!(|input: Input| {
    let encoding = [
        WebhookEncoding::Query,
        WebhookEncoding::Form,
        WebhookEncoding::Json,
        WebhookEncoding::JsonEnvelope,
    ][usize::from(input.encoding % 4)];
    let mut headers = http::HeaderMap::new();
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    if let Some((id, timestamp, signatures)) = &input.standard_headers {
        for (name, value) in [
            ("webhook-id", id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signatures.join(" ")),
        ] {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    let now = Timestamp::from_second(input.now.rem_euclid(253_402_207_200))
        .unwrap_or(Timestamp::UNIX_EPOCH);

    let verifier = Verifier::from_secrets(SECRETS)
        .expect("valid secrets")
        .tolerance(SignedDuration::from_secs(input.tolerance));
    match verifier.verify(&headers, &input.body, now) {
        Ok(verified) => {
            let _ = format!("{verified:?}");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }

    let parser = if input.node_mapping {
        NoticeParser::from_node(&node(encoding))
    } else {
        let mut builder = NoticeParser::builder().encoding(encoding);
        for (name, n, optional) in &input.mapping {
            builder = if *optional {
                builder.optional_param(name.as_str(), source(*n))
            } else {
                builder.param(name.as_str(), source(*n))
            };
        }
        if let Some(kind) = input.fixed_kind {
            builder = builder.fixed_kind(EventKind::ALL[usize::from(kind) % EventKind::ALL.len()]);
        }
        match builder.build() {
            Ok(parser) => parser,
            Err(error) => {
                let _ = error.to_string();
                return;
            }
        }
    };
    let uri = http::Uri::try_from(input.uri.as_str())
        .unwrap_or_else(|_| http::Uri::from_static("https://crm.example.com/optout"));
    match parser.parse_parts(&uri, &headers, &input.body) {
        Ok(notice) => {
            let _ = format!("{notice:?}");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
