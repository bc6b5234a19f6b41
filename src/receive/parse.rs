//! Parsing an incoming opt-out webhook into an [`OptOutNotice`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use http::HeaderMap;
use jiff::Timestamp;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::NoticeError;
use crate::listen::Flow;
use crate::model::{
    ActivityId, AttributeName, AttributeValue, Channel, Email, EventId, EventKind, FolderId,
    Mobile, Origin, ProfileId, SectionId, SubscriptionId,
};
use crate::webhook::WebhookConfigError;
use crate::webhook::{Param, ParamSource, WebhookEncoding, WebhookNode};

/// What an opt-out covers on the receiving side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoticeScope {
    /// One Subscription (Email - Unsubscribe, SMS - Unsubscribe): opt the Profile out of this
    /// Subscription on the notice's channel, and nothing else.
    Subscription(SubscriptionId),
    /// The whole Section (Email - Abuse, a spam complaint): opt the Profile out of email for
    /// every Subscription of this Section.
    Section(SectionId),
}

/// An incoming opt-out, typed: what [`NoticeParser::parse`] makes of a webhook request.
///
/// Which fields are present depends on the parameters the sender sends (the parser's mapping):
/// only [`kind`](Self::kind) and [`scope`](Self::scope) are always known, and at least one of
/// [`email`](Self::email), [`mobile`](Self::mobile), [`profile`](Self::profile) or
/// [`attributes`](Self::attributes) is present.
///
/// Personal data stays masked in `Debug` (Email, Mobile and attribute values print masked).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OptOutNotice {
    /// The request's `webhook-id` header, if it has one: stable across retries and
    /// re-deliveries, and predictable, so anyone can send it. De-duplicate on it only once the
    /// request is verified ([`Verifier`](crate::receive::Verifier)) and the signature covers the
    /// content (a body encoding); never let an unverified id suppress a request (see
    /// [the module docs](crate::receive#de-duplicating-on-the-webhook-id)).
    pub webhook_id: Option<String>,
    /// The opt-out's kind.
    pub kind: EventKind,
    /// What it covers: one Subscription, or the whole Section for Email - Abuse.
    pub scope: NoticeScope,
    /// The Profile's Email, if sent.
    pub email: Option<Email>,
    /// The Profile's Mobile, if sent: normalized to E.164 when that is certain, else as sent
    /// ([`Mobile::new`]).
    pub mobile: Option<Mobile>,
    /// The Profile's id, if sent.
    pub profile: Option<ProfileId>,
    /// Custom attributes sent, by attribute name. In `query` and `form` encodings every value
    /// is text (a number `42` arrives as the text `42`); JSON keeps numbers and booleans.
    pub attributes: BTreeMap<AttributeName, AttributeValue>,
    /// The Section, if sent (always, for Email - Abuse: it is the scope).
    pub section: Option<SectionId>,
    /// The Folder of the Subscription, if sent.
    pub folder: Option<FolderId>,
    /// The event's id, if sent.
    pub event: Option<EventId>,
    /// The Activity (message) opted out from, if sent.
    pub activity: Option<ActivityId>,
    /// When the opt-out happened, if sent (the `occurred_at` parameter or the envelope's
    /// `timestamp`).
    pub occurred_at: Option<Timestamp>,
    /// Where the opt-out came from, if sent.
    pub origin: Option<Origin>,
}

impl OptOutNotice {
    /// A notice of `kind` covering `scope`, with nothing else known. For tests and hosts that
    /// build notices themselves; the parser fills the rest from the request.
    pub fn new(kind: EventKind, scope: NoticeScope) -> Self {
        Self {
            webhook_id: None,
            kind,
            scope,
            email: None,
            mobile: None,
            profile: None,
            attributes: BTreeMap::new(),
            section: None,
            folder: None,
            event: None,
            activity: None,
            occurred_at: None,
            origin: None,
        }
    }

    /// The channel the opt-out concerns.
    pub fn channel(&self) -> Channel {
        self.kind.channel()
    }

    /// The Subscription opted out from; `None` for a section-level opt-out.
    pub fn subscription(&self) -> Option<&SubscriptionId> {
        match &self.scope {
            NoticeScope::Subscription(subscription) => Some(subscription),
            NoticeScope::Section(_) => None,
        }
    }
}

/// Turns incoming webhook requests into [`OptOutNotice`]s, driven by a mapping from parameter
/// names to [`ParamSource`]s and an encoding: the sender's own Webhook node
/// ([`NoticeParser::from_node`], [`NoticeParser::from_flow`]), so that one flow file describes
/// both ends, or a mapping for another sender ([`NoticeParser::builder`]), such as the
/// platform's own query-string webhook.
///
/// # Where parameters are read
///
/// | encoding | read from | `content-type` (checked when present) |
/// | --- | --- | --- |
/// | `query` | the URL's query string; the body is ignored | any |
/// | `form` | the body, `name=value&...`; the query string is ignored | `application/x-www-form-urlencoded` |
/// | `json` | the body, a flat JSON object | `application/json` or `*/*+json` |
/// | `json_envelope` | the body's `data` object; `type` (`opt_out.<kind>`) gives the kind, `timestamp` when it happened | as `json` |
///
/// Query and form values are percent-decoded the usual way (`+` is a space), and must be UTF-8.
/// JSON values are strings; custom attributes may also be numbers or booleans; `null` counts as
/// absent. Parameters the mapping does not name (static query parameters, fields a newer sender
/// adds) are ignored: receivers should be tolerant.
///
/// # What is checked
///
/// - every value with the model's own type ([`Email::new`], [`Mobile::new`],
///   [`SubscriptionId::new`], ...): an Email must be an address; a Mobile is refused only when
///   it cannot be a number at all (a national form such as `070-123 45 67` is kept as sent);
/// - a parameter sent twice must carry the same value; two parameters of the same source must
///   agree;
/// - required parameters (not `optional` in the mapping) must be present;
/// - the kind comes from an `event_kind` parameter, the envelope's `type`, or the parser's
///   fixed kind ([`NoticeParser::with_fixed_kind`]); when several say it, they must agree, and a
///   `channel` parameter must fit it;
/// - an unsubscribe needs its Subscription, an Email - Abuse its Section (a Subscription sent
///   with an Email - Abuse is ignored: the opt-out covers the whole Section);
/// - something must identify the Profile (Email, Mobile, Profile id or a custom attribute).
///
/// Parsing is not authentication: verify signed requests first
/// ([`Verifier`](crate::receive::Verifier), feature `signing`), and bound the body size in
/// your server.
///
/// ```
/// use optout_relay::*;
/// use optout_relay::receive::{NoticeParser, NoticeScope};
/// use optout_relay::webhook::ParamSource;
/// use optout_relay::webhook::WebhookEncoding;
///
/// // The platform's own webhook: POST, everything in the query string, no kind, no signature.
/// let parser = NoticeParser::builder()
///     .encoding(WebhookEncoding::Query)
///     .param("email", ParamSource::Email)
///     .param("subscription", ParamSource::SubscriptionId)
///     .fixed_kind(EventKind::EmailUnsubscribe)
///     .build()?;
/// let request = http::Request::post(
///     "https://crm.example.com/optout?source=platform&email=a%2Bb%40example.com&subscription=123456",
/// )
/// .body(Vec::new())?;
/// let notice = parser.parse(&request)?;
/// assert_eq!(notice.kind, EventKind::EmailUnsubscribe);
/// assert_eq!(notice.scope, NoticeScope::Subscription(SubscriptionId::new("123456")?));
/// assert_eq!(notice.email, Some(Email::new("a+b@example.com")?));
/// assert!(!format!("{notice:?}").contains("a+b@example.com")); // masked in Debug
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeParser {
    encoding: WebhookEncoding,
    params: Arc<[Param]>,
    fixed_kind: Option<EventKind>,
}

impl NoticeParser {
    /// The parser for what `node` sends: its parameter names, sources, optional flags and
    /// encoding. The kind must arrive with the request (an `event_kind` parameter, or the
    /// `json_envelope` encoding) unless a fixed kind is set; [`NoticeParser::from_flow`] sets it
    /// for flows that take one kind.
    pub fn from_node(node: &WebhookNode) -> Self {
        Self {
            encoding: node.encoding(),
            params: Arc::clone(&node.params),
            fixed_kind: None,
        }
    }

    /// The parser for what `flow` sends: [`NoticeParser::from_node`] of its Webhook node, with
    /// the fixed kind of its Listen node when it takes exactly one kind.
    pub fn from_flow(flow: &Flow) -> Self {
        let kinds = flow.listen.kinds();
        let parser = Self::from_node(&flow.webhook);
        match (kinds.len(), kinds.iter().next()) {
            (1, Some(kind)) => parser.with_fixed_kind(*kind),
            _ => parser,
        }
    }

    /// A parser for another sender's webhook: give the encoding (default `query`), the
    /// parameters and, when the sender does not send the kind, a fixed kind.
    pub fn builder() -> NoticeParserBuilder {
        NoticeParserBuilder {
            encoding: WebhookEncoding::Query,
            params: Vec::new(),
            fixed_kind: None,
            error: None,
        }
    }

    /// Sets the kind of every opt-out this endpoint receives, for senders that do not send it
    /// (one endpoint per kind, as on the platform). A kind that arrives anyway must agree.
    #[must_use]
    pub fn with_fixed_kind(mut self, kind: EventKind) -> Self {
        self.fixed_kind = Some(kind);
        self
    }

    /// The encoding read.
    pub fn encoding(&self) -> WebhookEncoding {
        self.encoding
    }

    /// The parameters read, in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The fixed kind, if any.
    pub fn fixed_kind(&self) -> Option<EventKind> {
        self.fixed_kind
    }

    /// Parses a request.
    ///
    /// # Errors
    ///
    /// A [`NoticeError`] naming the parameter and what is wrong; see the
    /// [type's docs](NoticeParser#what-is-checked).
    pub fn parse<B: AsRef<[u8]>>(
        &self,
        request: &http::Request<B>,
    ) -> Result<OptOutNotice, NoticeError> {
        self.parse_parts(request.uri(), request.headers(), request.body().as_ref())
    }

    /// Parses a request given as its URI, headers and body.
    ///
    /// # Errors
    ///
    /// As [`NoticeParser::parse`].
    pub fn parse_parts(
        &self,
        uri: &http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<OptOutNotice, NoticeError> {
        let raw = self.read(uri, headers, body)?;
        let mut slots = Slots::new(self.params.len());
        for (name, value) in raw.entries {
            let Some(index) = self.params.iter().position(|p| p.name() == name) else {
                continue; // not ours: tolerated
            };
            if let Some(value) = value {
                slots.put(&self.params, index, value)?;
            }
        }
        for (index, param) in self.params.iter().enumerate() {
            if !param.is_optional() && !slots.seen[index] {
                return Err(NoticeError::MissingParameter {
                    param: param.name().to_owned(),
                    param_source: param.source().clone(),
                });
            }
        }
        self.assemble(slots, raw.envelope, webhook_id(headers))
    }

    fn read(&self, uri: &http::Uri, headers: &HeaderMap, body: &[u8]) -> Result<Raw, NoticeError> {
        match self.encoding {
            WebhookEncoding::Form => {
                self.check_content_type(headers)?;
                Ok(Raw::flat(form_entries(body)))
            }
            WebhookEncoding::Json => {
                self.check_content_type(headers)?;
                let object = serde_json::from_slice::<MaybeEntries>(body)
                    .map_err(|e| self.json_error(&e))?;
                match object {
                    MaybeEntries::Object(entries) => Ok(Raw::flat(entries)),
                    MaybeEntries::Other => Err(self.malformed("the body is not a JSON object")),
                }
            }
            WebhookEncoding::JsonEnvelope => {
                self.check_content_type(headers)?;
                let envelope = serde_json::from_slice::<EnvelopeBody>(body)
                    .map_err(|e| self.json_error(&e))?;
                let envelope = match envelope {
                    EnvelopeBody::Object(envelope) => envelope,
                    EnvelopeBody::Other => {
                        return Err(self.malformed("the body is not a JSON object"));
                    }
                };
                if envelope.repeated {
                    // Two `type`s or two `data`s: ambiguous, refused whole.
                    return Err(
                        self.malformed("the envelope repeats `type`, `timestamp` or `data`")
                    );
                }
                let entries = match envelope.data {
                    None => return Err(self.malformed("the envelope has no `data`")),
                    Some(MaybeEntries::Other) => {
                        return Err(self.malformed("the envelope's `data` is not a JSON object"));
                    }
                    Some(MaybeEntries::Object(entries)) => entries,
                };
                Ok(Raw {
                    entries,
                    envelope: Some(envelope.fields),
                })
            }
            WebhookEncoding::Query => Ok(Raw::flat(form_entries(
                uri.query().unwrap_or_default().as_bytes(),
            ))),
        }
    }

    fn check_content_type(&self, headers: &HeaderMap) -> Result<(), NoticeError> {
        let Some(expected) = self.encoding.content_type() else {
            return Ok(());
        };
        let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
            return Ok(()); // tolerated: the encoding says what the body is
        };
        let found = match value.to_str() {
            Ok(text) => text,
            Err(_) => {
                return Err(NoticeError::ContentType {
                    encoding: self.encoding,
                    expected,
                    found: "[not visible ASCII]".to_owned(),
                });
            }
        };
        let media = found
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let fits =
            media == expected || (expected == "application/json" && media.ends_with("+json"));
        if fits {
            Ok(())
        } else {
            Err(NoticeError::ContentType {
                encoding: self.encoding,
                expected,
                found: media
                    .chars()
                    .take(64)
                    .flat_map(char::escape_debug)
                    .collect(),
            })
        }
    }

    fn malformed(&self, reason: &str) -> NoticeError {
        NoticeError::MalformedBody {
            encoding: self.encoding,
            reason: reason.to_owned(),
        }
    }

    /// A JSON error without serde's message, which may quote the input.
    fn json_error(&self, error: &serde_json::Error) -> NoticeError {
        let what = match error.classify() {
            serde_json::error::Category::Eof => "the JSON ends early",
            _ => "not valid JSON",
        };
        self.malformed(&format!(
            "{what} (line {}, column {})",
            error.line(),
            error.column()
        ))
    }

    fn assemble(
        &self,
        slots: Slots,
        envelope: Option<EnvelopeFields>,
        webhook_id: Option<String>,
    ) -> Result<OptOutNotice, NoticeError> {
        let Slots {
            email,
            mobile,
            profile,
            attributes,
            subscription,
            folder,
            section,
            kind: sent_kind,
            channel,
            event,
            activity,
            occurred_at,
            origin,
            ..
        } = slots;
        let name = |index: usize| self.params[index].name().to_owned();

        // The kind: every source that says it must agree.
        let mut kind: Option<(EventKind, String)> = None;
        let mut agree = |found: EventKind, what: String| -> Result<(), NoticeError> {
            match &kind {
                None => kind = Some((found, what)),
                Some((known, _)) if *known == found => {}
                Some((_, earlier)) => {
                    return Err(NoticeError::Conflict {
                        param: strip_ticks(&what),
                        with: earlier.clone(),
                    });
                }
            }
            Ok(())
        };
        if let Some(fixed) = self.fixed_kind {
            agree(fixed, format!("the fixed kind {fixed}"))?;
        }
        let mut envelope_time = None;
        if let Some(fields) = envelope {
            if let Some(value) = fields.kind {
                agree(envelope_kind(&value)?, "`type`".to_owned())?;
            }
            if let Some(value) = fields.timestamp {
                envelope_time = Some(envelope_timestamp(&value)?);
            }
        }
        if let Some((found, index)) = sent_kind {
            agree(found, format!("`{}`", name(index)))?;
        }
        let Some((kind, _)) = kind else {
            return Err(NoticeError::UnknownKind);
        };
        if let Some((found, index)) = channel {
            if found != kind.channel() {
                return Err(NoticeError::Conflict {
                    param: name(index),
                    with: format!("the event kind {kind}"),
                });
            }
        }
        let occurred_at = match (occurred_at, envelope_time) {
            (Some((at, index)), Some(time)) if at != time => {
                return Err(NoticeError::Conflict {
                    param: name(index),
                    with: "the envelope's `timestamp`".to_owned(),
                });
            }
            (Some((at, _)), _) => Some(at),
            (None, time) => time,
        };

        // The scope.
        let scope = if kind.is_section_level() {
            match &section {
                Some((section, _)) => NoticeScope::Section(section.clone()),
                None => return Err(self.missing_for(kind, &ParamSource::SectionId)),
            }
        } else {
            match subscription {
                Some((subscription, _)) => NoticeScope::Subscription(subscription),
                None => return Err(self.missing_for(kind, &ParamSource::SubscriptionId)),
            }
        };

        let notice = OptOutNotice {
            webhook_id,
            kind,
            scope,
            email: email.map(|(v, _)| v),
            mobile: mobile.map(|(v, _)| v),
            profile: profile.map(|(v, _)| v),
            attributes: attributes.into_iter().map(|(k, (v, _))| (k, v)).collect(),
            section: section.map(|(v, _)| v),
            folder: folder.map(|(v, _)| v),
            event: event.map(|(v, _)| v),
            activity: activity.map(|(v, _)| v),
            occurred_at,
            origin: origin.map(|(v, _)| v),
        };
        if notice.email.is_none()
            && notice.mobile.is_none()
            && notice.profile.is_none()
            && notice.attributes.is_empty()
        {
            return Err(NoticeError::NoIdentifier);
        }
        Ok(notice)
    }

    fn missing_for(&self, kind: EventKind, source: &ParamSource) -> NoticeError {
        match self.params.iter().find(|p| p.source() == source) {
            Some(param) => NoticeError::MissingForKind {
                kind,
                param: param.name().to_owned(),
                param_source: source.clone(),
            },
            None => NoticeError::NotMapped {
                kind,
                param_source: source.clone(),
            },
        }
    }
}

/// "`name`" to "name", for a kind source that is a parameter.
fn strip_ticks(what: &str) -> String {
    what.trim_matches('`').to_owned()
}

/// Builds a [`NoticeParser`] for a sender that is not this crate (or a mapping written by
/// hand). Keeps the first error and reports it at [`NoticeParserBuilder::build`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct NoticeParserBuilder {
    encoding: WebhookEncoding,
    params: Vec<Param>,
    fixed_kind: Option<EventKind>,
    error: Option<WebhookConfigError>,
}

impl NoticeParserBuilder {
    /// Where the parameters are read (default `query`).
    pub fn encoding(mut self, encoding: WebhookEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// A parameter that must be present.
    pub fn param(self, name: impl Into<String>, source: ParamSource) -> Self {
        self.push(Param::new(name, source))
    }

    /// A parameter that may be absent.
    pub fn optional_param(self, name: impl Into<String>, source: ParamSource) -> Self {
        self.push(Param::optional(name, source))
    }

    /// The kind of every opt-out this endpoint receives, for senders that do not send it.
    pub fn fixed_kind(mut self, kind: EventKind) -> Self {
        self.fixed_kind = Some(kind);
        self
    }

    fn push(mut self, param: Result<Param, WebhookConfigError>) -> Self {
        match param {
            Ok(param) => self.params.push(param),
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
        self
    }

    /// The parser.
    ///
    /// # Errors
    ///
    /// [`WebhookConfigError::InvalidParamName`] for an empty, too long or control-character
    /// name; [`WebhookConfigError::DuplicateParam`] when two parameters share a name;
    /// [`WebhookConfigError::TooManyParams`] past [`MAX_PARAMS`](crate::webhook::MAX_PARAMS).
    pub fn build(self) -> Result<NoticeParser, WebhookConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.params.len() > crate::webhook::MAX_PARAMS {
            return Err(WebhookConfigError::TooManyParams {
                count: self.params.len(),
                max: crate::webhook::MAX_PARAMS,
            });
        }
        for (i, param) in self.params.iter().enumerate() {
            if let Some(first) = self.params[..i]
                .iter()
                .position(|p| p.name() == param.name())
            {
                return Err(WebhookConfigError::DuplicateParam { index: i, first });
            }
        }
        Ok(NoticeParser {
            encoding: self.encoding,
            params: self.params.into(),
            fixed_kind: self.fixed_kind,
        })
    }
}

/// The request's `webhook-id`, if it has a usable one.
fn webhook_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("webhook-id")?.to_str().ok()?.trim();
    (!value.is_empty() && value.len() <= 256).then(|| value.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Raw entries

/// A parameter's value as it arrived.
#[derive(Debug, Clone)]
enum RawValue {
    /// A query or form value, or a JSON string.
    Text(String),
    /// A JSON number or boolean.
    Scalar(serde_json::Value),
    /// A JSON array or object.
    Composite,
    /// A query or form value that is not UTF-8 once percent-decoded.
    NotUtf8,
}

/// Every (name, value) pair, in order; `None` values (JSON `null`) count as absent.
type Entries = Vec<(String, Option<RawValue>)>;

struct Raw {
    entries: Entries,
    envelope: Option<EnvelopeFields>,
}

impl Raw {
    fn flat(entries: Entries) -> Self {
        Self {
            entries,
            envelope: None,
        }
    }
}

/// `application/x-www-form-urlencoded` pairs: `+` is a space, `%XX` a byte (a `%` not followed
/// by two hex digits is kept), names and values must be UTF-8 (a name that is not is skipped:
/// it cannot be one of ours).
fn form_entries(input: &[u8]) -> Entries {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let name = String::from_utf8(percent_decode(name)).ok()?;
            let value = match String::from_utf8(percent_decode(value)) {
                Ok(text) => RawValue::Text(text),
                Err(_) => RawValue::NotUtf8,
            };
            Some((name, Some(value)))
        })
        .collect()
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |at: usize| input.get(at).and_then(|&b| (b as char).to_digit(16));
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    // Two hex digits make one byte: hi * 16 + lo < 256.
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

/// A JSON value that should be an object: its entries in order (repeats kept, so that they can
/// be checked), or the fact that it is something else. Never fails on a valid JSON value, so
/// serde's messages (which may quote the input) never reach an error.
enum MaybeEntries {
    Object(Entries),
    Other,
}

impl<'de> serde::Deserialize<'de> for MaybeEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntriesVisitor)
    }
}

struct EntriesVisitor;

macro_rules! other {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok(Self::Value::other())
        })*
    };
}

trait OtherValue {
    fn other() -> Self;
}

impl OtherValue for MaybeEntries {
    fn other() -> Self {
        Self::Other
    }
}

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = MaybeEntries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    other!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(MaybeEntries::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MaybeEntries::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value::<serde_json::Value>()?;
            entries.push((name, raw_json(value)));
        }
        Ok(MaybeEntries::Object(entries))
    }
}

fn raw_json(value: serde_json::Value) -> Option<RawValue> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(RawValue::Text(text)),
        scalar @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
            Some(RawValue::Scalar(scalar))
        }
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => Some(RawValue::Composite),
    }
}

/// The envelope's own fields.
#[derive(Default)]
struct EnvelopeFields {
    /// `type`.
    kind: Option<RawValue>,
    /// `timestamp`.
    timestamp: Option<RawValue>,
}

struct Envelope {
    fields: EnvelopeFields,
    data: Option<MaybeEntries>,
    /// `type`, `timestamp` or `data` appears more than once.
    repeated: bool,
}

enum EnvelopeBody {
    Object(Envelope),
    Other,
}

impl OtherValue for EnvelopeBody {
    fn other() -> Self {
        Self::Other
    }
}

impl<'de> serde::Deserialize<'de> for EnvelopeBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = EnvelopeBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    other!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(EnvelopeBody::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(EnvelopeBody::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = EnvelopeFields::default();
        let mut data = None;
        let mut repeated = false;
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "type" | "timestamp" => {
                    let value = raw_json(map.next_value::<serde_json::Value>()?);
                    let slot = if name == "type" {
                        &mut fields.kind
                    } else {
                        &mut fields.timestamp
                    };
                    repeated |= slot.is_some();
                    *slot = value;
                }
                "data" => {
                    repeated |= data.is_some();
                    data = Some(map.next_value::<MaybeEntries>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(EnvelopeBody::Object(Envelope {
            fields,
            data,
            repeated,
        }))
    }
}

fn envelope_kind(value: &RawValue) -> Result<EventKind, NoticeError> {
    let invalid = || NoticeError::InvalidValue {
        param: "type".to_owned(),
        reason: "expected `opt_out.email_unsubscribe`, `opt_out.email_abuse` or \
                 `opt_out.sms_unsubscribe`"
            .to_owned(),
    };
    let RawValue::Text(text) = value else {
        return Err(invalid());
    };
    let name = text.strip_prefix("opt_out.").ok_or_else(invalid)?;
    EventKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == name)
        .ok_or_else(invalid)
}

fn envelope_timestamp(value: &RawValue) -> Result<Timestamp, NoticeError> {
    let RawValue::Text(text) = value else {
        return Err(timestamp_error("timestamp"));
    };
    text.parse().map_err(|_| timestamp_error("timestamp"))
}

fn timestamp_error(param: &str) -> NoticeError {
    NoticeError::InvalidValue {
        param: param.to_owned(),
        reason: "not an RFC 3339 timestamp such as 2026-11-26T09:30:00Z".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Slots: one value per source, with the parameter it came from

/// A value and the index of the parameter that carried it.
type Slot<T> = Option<(T, usize)>;

struct Slots {
    /// Which parameters arrived (by index).
    seen: Vec<bool>,
    email: Slot<Email>,
    mobile: Slot<Mobile>,
    profile: Slot<ProfileId>,
    attributes: BTreeMap<AttributeName, (AttributeValue, usize)>,
    subscription: Slot<SubscriptionId>,
    folder: Slot<FolderId>,
    section: Slot<SectionId>,
    kind: Slot<EventKind>,
    channel: Slot<Channel>,
    event: Slot<EventId>,
    activity: Slot<ActivityId>,
    occurred_at: Slot<Timestamp>,
    origin: Slot<Origin>,
}

/// Stores `value` from parameter `index` in `slot`; the same value again is fine, another one
/// is a conflict naming both parameters (or a repeat of one).
fn fill<T: PartialEq>(
    slot: &mut Slot<T>,
    value: T,
    index: usize,
    params: &[Param],
) -> Result<(), NoticeError> {
    match slot {
        None => {
            *slot = Some((value, index));
            Ok(())
        }
        Some((known, _)) if *known == value => Ok(()),
        Some((_, earlier)) if *earlier == index => Err(NoticeError::Repeated {
            param: params[index].name().to_owned(),
        }),
        Some((_, earlier)) => Err(NoticeError::Conflict {
            param: params[index].name().to_owned(),
            with: format!("`{}`", params[*earlier].name()),
        }),
    }
}

impl Slots {
    fn new(params: usize) -> Self {
        Self {
            seen: vec![false; params],
            email: None,
            mobile: None,
            profile: None,
            attributes: BTreeMap::new(),
            subscription: None,
            folder: None,
            section: None,
            kind: None,
            channel: None,
            event: None,
            activity: None,
            occurred_at: None,
            origin: None,
        }
    }

    fn put(&mut self, params: &[Param], index: usize, raw: RawValue) -> Result<(), NoticeError> {
        if let Some(seen) = self.seen.get_mut(index) {
            *seen = true;
        }
        let param = &params[index];
        let invalid = |reason: String| NoticeError::InvalidValue {
            param: param.name().to_owned(),
            reason,
        };
        let source = param.source();
        if let ParamSource::Attribute(attribute) = source {
            let value = match raw {
                RawValue::Text(text) => AttributeValue::Text(text),
                RawValue::Scalar(serde_json::Value::Bool(flag)) => AttributeValue::Bool(flag),
                RawValue::Scalar(serde_json::Value::Number(number)) => {
                    AttributeValue::Number(number)
                }
                RawValue::NotUtf8 => return Err(invalid(NOT_UTF8.to_owned())),
                _ => {
                    return Err(invalid(
                        "expected a JSON string, number or boolean".to_owned(),
                    ));
                }
            };
            let mut slot = self.attributes.remove(attribute);
            let result = fill(&mut slot, value, index, params);
            if let Some(filled) = slot {
                self.attributes.insert(attribute.clone(), filled);
            }
            return result;
        }
        let text = match raw {
            RawValue::Text(text) => text,
            RawValue::NotUtf8 => return Err(invalid(NOT_UTF8.to_owned())),
            RawValue::Scalar(_) | RawValue::Composite => {
                return Err(invalid("expected a JSON string".to_owned()));
            }
        };
        let id_error = |e: crate::error::IdError| invalid(e.to_string());
        match source {
            ParamSource::Email => {
                let value = Email::new(text).map_err(|e| invalid(e.to_string()))?;
                fill(&mut self.email, value, index, params)
            }
            ParamSource::Mobile => {
                let value = Mobile::new(&text).map_err(|e| invalid(e.to_string()))?;
                fill(&mut self.mobile, value, index, params)
            }
            ParamSource::ProfileId => {
                let value = ProfileId::new(text).map_err(id_error)?;
                fill(&mut self.profile, value, index, params)
            }
            ParamSource::SubscriptionId => {
                let value = SubscriptionId::new(text).map_err(id_error)?;
                fill(&mut self.subscription, value, index, params)
            }
            ParamSource::FolderId => {
                let value = FolderId::new(text).map_err(id_error)?;
                fill(&mut self.folder, value, index, params)
            }
            ParamSource::SectionId => {
                let value = SectionId::new(text).map_err(id_error)?;
                fill(&mut self.section, value, index, params)
            }
            ParamSource::EventId => {
                let value = EventId::new(text).map_err(id_error)?;
                fill(&mut self.event, value, index, params)
            }
            ParamSource::ActivityId => {
                let value = ActivityId::new(text).map_err(id_error)?;
                fill(&mut self.activity, value, index, params)
            }
            ParamSource::EventKind => {
                let value = EventKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == text || k.platform_name() == text)
                    .ok_or_else(|| {
                        invalid(
                            "expected email_unsubscribe, email_abuse or sms_unsubscribe".to_owned(),
                        )
                    })?;
                fill(&mut self.kind, value, index, params)
            }
            ParamSource::Channel => {
                let value = Channel::ALL
                    .into_iter()
                    .find(|c| c.as_str() == text)
                    .ok_or_else(|| invalid("expected email or sms".to_owned()))?;
                fill(&mut self.channel, value, index, params)
            }
            ParamSource::OccurredAt => {
                let value = text
                    .parse::<Timestamp>()
                    .map_err(|_| timestamp_error(param.name()))?;
                fill(&mut self.occurred_at, value, index, params)
            }
            ParamSource::Origin => {
                let value = Origin::ALL
                    .into_iter()
                    .find(|o| o.as_str() == text)
                    .ok_or_else(|| {
                        invalid("expected communication, api or file_import".to_owned())
                    })?;
                fill(&mut self.origin, value, index, params)
            }
            // Handled above.
            ParamSource::Attribute(_) => Ok(()),
        }
    }
}

const NOT_UTF8: &str = "not UTF-8 once percent-decoded";
