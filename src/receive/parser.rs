//! [`NoticeParser`]: the mapping from parameter names to sources and an encoding, and the
//! parsing of a request with it; [`NoticeParserBuilder`] for a mapping written by hand.

use std::sync::Arc;

use http::HeaderMap;

use crate::listen::Flow;
use crate::model::EventKind;
use crate::receive::assemble::assemble;
use crate::receive::error::NoticeError;
use crate::receive::notice::OptOutNotice;
use crate::receive::read::{read, webhook_id};
use crate::receive::slots::Slots;
use crate::webhook::{
    Param, ParamSource, WebhookConfigError, WebhookEncoding, WebhookNode, check_params,
};

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
/// - every value with the model's own type ([`Email::new`](crate::Email::new),
///   [`Mobile::new`](crate::Mobile::new), [`SubscriptionId::new`](crate::SubscriptionId::new),
///   ...): an Email must be an address; a Mobile is refused only when
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
        let raw = read(self.encoding, uri, headers, body)?;
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
        assemble(
            &self.params,
            self.fixed_kind,
            slots,
            raw.envelope,
            webhook_id(headers),
        )
    }
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
        // The Webhook node's own checks: both ends report a bad list the same way.
        check_params(&self.params)?;
        Ok(NoticeParser {
            encoding: self.encoding,
            params: self.params.into(),
            fixed_kind: self.fixed_kind,
        })
    }
}
