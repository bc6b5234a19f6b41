//! Webhook nodes from arbitrary parts (URL, method, encoding, parameter names and sources,
//! headers, auth, signing secrets) and requests built from arbitrary Profiles and events; then
//! the previews, the node's JSON round trip, and the receiving side reading the built request
//! back (`NoticeParser::from_node`, `Verifier::from_node`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use optout_relay::model::ActivityId;
use optout_relay::model::AttributeName;
use optout_relay::model::AttributeValue;
use optout_relay::model::OptOutKind;
use optout_relay::receive::NoticeParser;
use optout_relay::receive::Verifier;
use optout_relay::webhook::Auth;
use optout_relay::webhook::MAX_REQUEST_URL_LEN;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::Secret;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookMethod;
use optout_relay::*;

/// A valid signing secret, so that signing is reached often.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Arbitrary)]
enum Source {
    Email,
    Mobile,
    Attribute(String),
    ProfileId,
    SubscriptionId,
    FolderId,
    SectionId,
    EventKind,
    Channel,
    EventId,
    ActivityId,
    OccurredAt,
    Origin,
}

impl Source {
    fn to_source(&self) -> Option<ParamSource> {
        Some(match self {
            Self::Email => ParamSource::Email,
            Self::Mobile => ParamSource::Mobile,
            Self::Attribute(name) => {
                ParamSource::Attribute(AttributeName::new(name.as_str()).ok()?)
            }
            Self::ProfileId => ParamSource::ProfileId,
            Self::SubscriptionId => ParamSource::SubscriptionId,
            Self::FolderId => ParamSource::FolderId,
            Self::SectionId => ParamSource::SectionId,
            Self::EventKind => ParamSource::EventKind,
            Self::Channel => ParamSource::Channel,
            Self::EventId => ParamSource::EventId,
            Self::ActivityId => ParamSource::ActivityId,
            Self::OccurredAt => ParamSource::OccurredAt,
            Self::Origin => ParamSource::Origin,
        })
    }
}

#[derive(Debug, Arbitrary)]
enum AuthInput {
    None,
    Bearer(String),
    Basic(String, String),
    Header(String, String),
}

#[derive(Debug, Arbitrary)]
enum Value {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// Prefix the URL with a valid endpoint, so that building gets past it most of the time.
    url_prefixed: bool,
    url: String,
    method: u8,
    encoding: u8,
    params: Vec<(String, Source, bool)>,
    headers: Vec<(String, String)>,
    auth: AuthInput,
    /// Sign with the valid secret.
    signed: bool,
    secrets: Vec<String>,
    email: Option<String>,
    mobile: Option<String>,
    attributes: Vec<(String, Value)>,
    kind: u8,
    profile: String,
    event_profile: Option<String>,
    event: String,
    section: String,
    subscription: String,
    folder: Option<String>,
    activity: Option<String>,
    origin: u8,
    occurred_at: i64,
    now: i64,
    fixed_kind: bool,
}

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds.rem_euclid(253_402_207_200)).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn id<T>(make: impl Fn(String) -> Result<T, IdError>, text: &str, fallback: &str) -> T {
    make(text.to_owned())
        .or_else(|_| make(fallback.to_owned()))
        .expect("the fallback id is valid")
}

fuzz_target!(|input: Input| {
    let method = [
        WebhookMethod::Get,
        WebhookMethod::Post,
        WebhookMethod::Put,
        WebhookMethod::Delete,
        WebhookMethod::Patch,
    ][usize::from(input.method % 5)];
    let encoding = [
        WebhookEncoding::Query,
        WebhookEncoding::Form,
        WebhookEncoding::Json,
        WebhookEncoding::JsonEnvelope,
    ][usize::from(input.encoding % 4)];
    let url = if input.url_prefixed {
        format!("https://crm.example.com/optout?{}", input.url)
    } else {
        input.url.clone()
    };
    let mut builder = WebhookNode::builder(url).method(method).encoding(encoding);
    for (name, source, optional) in &input.params {
        let Some(source) = source.to_source() else {
            continue;
        };
        builder = if *optional {
            builder.optional_param(name.as_str(), source)
        } else {
            builder.param(name.as_str(), source)
        };
    }
    for (name, value) in &input.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder = match &input.auth {
        AuthInput::None => builder,
        AuthInput::Bearer(token) => builder.bearer(token.as_str()),
        AuthInput::Basic(user, password) => builder.basic(user.as_str(), password.as_str()),
        AuthInput::Header(name, value) => builder.auth(Auth::Header {
            name: name.clone(),
            value: Secret::new(value.as_str()),
        }),
    };
    if input.signed {
        builder = builder.sign_with(SECRET);
    }
    for secret in &input.secrets {
        builder = builder.sign_with(secret.as_str());
    }
    let node = match builder.build() {
        Ok(node) => node,
        Err(error) => {
            let _ = (error.to_string(), format!("{error:?}"));
            return;
        }
    };
    let _ = format!("{node:?}");
    // The node's JSON form reads back as the same node.
    let json = serde_json::to_string(&node).expect("a node serializes");
    let again: WebhookNode = serde_json::from_str(&json).expect("a written node reads back");
    assert_eq!(again, node, "node round trip");

    // The Profile, through the validating constructors.
    let profile_id = id(ProfileId::new, &input.profile, "p-1");
    let mut profile = Profile::new(profile_id.clone());
    if let Some(email) = input.email.as_deref().and_then(|e| Email::new(e).ok()) {
        let _ = (email.to_string(), format!("{email:?}"));
        profile = profile.with_email(email);
    }
    if let Some(mobile) = input.mobile.as_deref().and_then(|m| Mobile::new(m).ok()) {
        let _ = (mobile.to_string(), format!("{mobile:?}"));
        profile = profile.with_mobile(mobile);
    }
    for (name, value) in &input.attributes {
        let Ok(name) = AttributeName::new(name.as_str()) else {
            continue;
        };
        let value = match value {
            Value::Text(text) => AttributeValue::from(text.as_str()),
            Value::Int(n) => AttributeValue::from(*n),
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => AttributeValue::Number(n),
                None => continue,
            },
            Value::Bool(b) => AttributeValue::from(*b),
        };
        profile = profile.with_attribute(name, value);
    }

    let event_profile = match &input.event_profile {
        Some(other) => id(ProfileId::new, other, "p-2"),
        None => profile_id,
    };
    let section = id(SectionId::new, &input.section, "sec-1");
    let subscription = id(SubscriptionId::new, &input.subscription, "123456");
    let kind = match input.kind % 3 {
        0 => OptOutKind::EmailUnsubscribe {
            subscription: subscription.clone(),
        },
        1 => OptOutKind::EmailAbuse,
        _ => OptOutKind::SmsUnsubscribe {
            subscription: subscription.clone(),
        },
    };
    let mut event = OptOutEvent::new(
        id(EventId::new, &input.event, "evt-1"),
        event_profile,
        section.clone(),
        kind,
        timestamp(input.occurred_at),
    )
    .with_origin(
        [Origin::Communication, Origin::Api, Origin::FileImport][usize::from(input.origin % 3)],
    );
    if let Some(activity) = input
        .activity
        .as_deref()
        .and_then(|a| ActivityId::new(a).ok())
    {
        event = event.with_activity(activity);
    }
    let now = timestamp(input.now);
    let listen = ListenNode::new([event.kind()]).expect("one event kind");
    let flow = Flow::new(
        FlowId::new("fuzz").expect("a valid flow id"),
        section.clone(),
        listen,
        node,
    );
    let node = &flow.webhook;

    let _ = node.lint(&flow.id, &[event.kind()]);
    let catalog = match input.folder.as_deref().and_then(|f| FolderId::new(f).ok()) {
        Some(folder) => match Section::new(section, [Folder::new(folder, [subscription])])
            .and_then(|section| Catalog::new([section]))
        {
            Ok(catalog) => catalog,
            Err(_) => return,
        },
        None => Catalog::default(),
    };
    let built = flow.build_request(&catalog, &profile, &event, now);
    let request = match built {
        Ok(request) => request,
        Err(error) => {
            let _ = (error.to_string(), format!("{error:?}"));
            return;
        }
    };
    assert!(request.request().uri().to_string().len() <= MAX_REQUEST_URL_LEN);
    let preview = request.preview();
    let _ = (preview.curl(), preview.summary(), preview.to_string());
    let _ = (request.preview_unmasked().curl(), format!("{request:?}"));

    // The receiving side reads the built request back.
    let mut parser = NoticeParser::from_node(node);
    if input.fixed_kind {
        parser = parser.with_fixed_kind(event.kind());
    }
    match parser.parse(request.request()) {
        Ok(notice) => {
            let _ = format!("{notice:?}");
            assert_eq!(notice.kind, event.kind(), "the kind reads back");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
    if let Some(verifier) = Verifier::from_node(node) {
        let verified = verifier.verify(request.request().headers(), request.request().body(), now);
        assert!(
            verified.is_ok(),
            "a request signed at now verifies at now: {verified:?}"
        );
    }
});
