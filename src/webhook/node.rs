//! The Webhook node's configuration: method, endpoint, parameters, headers, auth, encoding and
//! signing secrets; its validation, its JSON form and its builder.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::WebhookConfigError;
use crate::webhook::params::{Param, ParamSource};
use crate::webhook::sign::SigningSecret;

/// The longest endpoint URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// The most Profile-data parameters a node may send.
pub const MAX_PARAMS: usize = 64;
/// The most static headers a node may send.
pub const MAX_HEADERS: usize = 32;
/// The longest static header value, bearer token or auth header value accepted, in bytes.
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
/// The longest basic-auth user name or password accepted, in bytes.
pub const MAX_BASIC_CREDENTIAL_LEN: usize = 1024;
/// The most signing secrets a node may hold at once (key rotation).
pub const MAX_SIGNING_SECRETS: usize = 8;

/// The HTTP method of a Webhook node. POST is the recommended default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    /// GET.
    Get,
    /// POST (the default, and the article's recommendation).
    #[default]
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// PATCH.
    Patch,
}

impl WebhookMethod {
    /// The method's name: `GET`, `POST`, `PUT`, `DELETE` or `PATCH`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
        }
    }

    /// Whether a request of this method may carry a body (GET and DELETE do not).
    pub fn takes_body(self) -> bool {
        !matches!(self, Self::Get | Self::Delete)
    }

    /// The method as an [`http::Method`].
    pub fn to_http(self) -> http::Method {
        match self {
            Self::Get => http::Method::GET,
            Self::Post => http::Method::POST,
            Self::Put => http::Method::PUT,
            Self::Delete => http::Method::DELETE,
            Self::Patch => http::Method::PATCH,
        }
    }
}

impl fmt::Display for WebhookMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the parameters go.
///
/// See the [module docs](crate::webhook#encodings) for the exact bytes of each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookEncoding {
    /// Every parameter in the query string after the static ones, empty body, for every method:
    /// the platform's behaviour, byte-compatible. The default.
    #[default]
    Query,
    /// An `application/x-www-form-urlencoded` body.
    Form,
    /// A flat JSON object of the parameters (`application/json`).
    Json,
    /// A Standard Webhooks envelope (`application/json`):
    /// `{"type": "opt_out.<kind>", "timestamp": "<occurred_at>", "data": {<parameters>}}`.
    JsonEnvelope,
}

impl WebhookEncoding {
    /// The wire name: `query`, `form`, `json` or `json_envelope`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Form => "form",
            Self::Json => "json",
            Self::JsonEnvelope => "json_envelope",
        }
    }

    /// Whether the parameters go in a body.
    pub fn has_body(self) -> bool {
        !matches!(self, Self::Query)
    }

    /// The `content-type` of the body, if there is one.
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            Self::Query => None,
            Self::Form => Some("application/x-www-form-urlencoded"),
            Self::Json | Self::JsonEnvelope => Some("application/json"),
        }
    }
}

impl fmt::Display for WebhookEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret string (a bearer token, a password, an API key, a signing secret).
///
/// `Debug` and `Display` print `[redacted]`; [`Secret::expose`] gives the value. It serializes
/// as the plain string, so that a node's JSON form round-trips: keep flow files that hold secrets
/// as private as the secrets themselves, or fill the secrets in when loading.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// How the request authenticates to the receiver. Secrets are redacted in `Debug`, `Display`
/// and masked previews.
///
/// JSON: absent or `"none"`; `{"bearer": {"token": "..."}}`;
/// `{"basic": {"username": "...", "password": "..."}}`;
/// `{"header": {"name": "x-api-key", "value": "..."}}`.
///
/// Never put credentials in the URL (`https://user:pass@host/` is rejected): URLs end up in
/// logs, proxies and previews.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// `authorization: Bearer <token>`.
    Bearer {
        /// The token: visible ASCII, no spaces.
        token: Secret,
    },
    /// `authorization: Basic base64(<username>:<password>)` (RFC 7617, UTF-8).
    Basic {
        /// The user name (no `:`), not secret.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A custom header holding an API key, such as `x-api-key: <value>`.
    Header {
        /// The header name.
        #[serde(deserialize_with = "deserialize_header_name")]
        name: String,
        /// The header value: visible ASCII and spaces.
        value: Secret,
    },
}

impl Auth {
    /// Whether this is [`Auth::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The header carrying the credentials and its value, if any.
    pub(crate) fn header(&self) -> Option<(String, String)> {
        match self {
            Self::None => None,
            Self::Bearer { token } => Some((
                "authorization".to_owned(),
                format!("Bearer {}", token.expose()),
            )),
            Self::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose());
                Some((
                    "authorization".to_owned(),
                    format!("Basic {}", base64_encode(pair.as_bytes())),
                ))
            }
            Self::Header { name, value } => {
                Some((name.to_ascii_lowercase(), value.expose().to_owned()))
            }
        }
    }

    /// The header value as masked previews show it.
    pub(crate) fn masked_value(&self) -> &'static str {
        match self {
            Self::Bearer { .. } => "Bearer [redacted]",
            Self::Basic { .. } => "Basic [redacted]",
            Self::None | Self::Header { .. } => "[redacted]",
        }
    }

    fn validate(&self, headers: &[Header]) -> Result<(), WebhookConfigError> {
        match self {
            Self::None => Ok(()),
            Self::Bearer { token } => {
                let reason = if token.expose().is_empty() {
                    "the token is empty"
                } else if token.expose().len() > MAX_HEADER_VALUE_LEN {
                    "the token is longer than 4096 bytes"
                } else if !token.expose().bytes().all(|b| b.is_ascii_graphic()) {
                    "the token holds a byte that is not visible ASCII (a space, CR, LF or \
                     non-ASCII)"
                } else {
                    return Ok(());
                };
                Err(WebhookConfigError::InvalidAuth {
                    scheme: "bearer",
                    reason,
                })
            }
            Self::Basic { username, password } => {
                let reason = if username.contains(':') {
                    "the user name holds a `:`"
                } else if username.len() > MAX_BASIC_CREDENTIAL_LEN
                    || password.expose().len() > MAX_BASIC_CREDENTIAL_LEN
                {
                    "the user name or password is longer than 1024 bytes"
                } else if username.chars().any(char::is_control)
                    || password.expose().chars().any(char::is_control)
                {
                    "the user name or password holds a control character"
                } else {
                    return Ok(());
                };
                Err(WebhookConfigError::InvalidAuth {
                    scheme: "basic",
                    reason,
                })
            }
            Self::Header { name, value } => {
                let lower = validate_header_name(name)?;
                if let Some(reserved) = reserved_header(&lower) {
                    return Err(reserved);
                }
                if let Some(first) = headers
                    .iter()
                    .position(|h| h.name.eq_ignore_ascii_case(name))
                {
                    return Err(WebhookConfigError::DuplicateHeader { index: None, first });
                }
                validate_header_value(None, value.expose())
            }
        }
    }
}

/// Standard base64 (RFC 4648, with padding), for basic auth: the core does not depend on a
/// base64 crate.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A static header: sent with every request, shown in previews (it is not treated as a secret;
/// put API keys in [`Auth::Header`]).
///
/// JSON: `{"name": "x-tenant", "value": "acme"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Header {
    #[serde(deserialize_with = "deserialize_header_name")]
    name: String,
    value: String,
}

impl Header {
    /// A static header. It is validated when the node is built.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The header name, as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Headers the crate sets (or leaves to the transport), with what to do instead.
/// The reserved header `lower` names (the crate's own spelling) and what to do instead.
fn reserved_header(lower: &str) -> Option<WebhookConfigError> {
    const TRANSPORT: &str = "the transport derives it from the URL and body";
    const SIGNING: &str =
        "the crate sets the Standard Webhooks headers; use `signing_secrets` to sign";
    const RESERVED: [(&str, &str); 9] = [
        ("host", TRANSPORT),
        ("content-length", TRANSPORT),
        ("transfer-encoding", TRANSPORT),
        ("connection", TRANSPORT),
        ("content-type", "it follows from `encoding`"),
        (
            "authorization",
            "use `auth` (bearer or basic), which is redacted in logs and previews",
        ),
        ("webhook-id", SIGNING),
        ("webhook-timestamp", SIGNING),
        ("webhook-signature", SIGNING),
    ];
    RESERVED
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|&(name, hint)| WebhookConfigError::ReservedHeader { name, hint })
}

fn validate_header_name(name: &str) -> Result<String, WebhookConfigError> {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(WebhookConfigError::InvalidHeaderName {
            reason: header_name_problem(name),
        });
    }
    Ok(name.to_ascii_lowercase())
}

/// Why `http` refuses a header name.
fn header_name_problem(name: &str) -> &'static str {
    /// The characters of an HTTP token (RFC 9110) besides letters and digits.
    const TOKEN: &[u8] = b"!#$%&'*+-.^_`|~";
    if name.is_empty() {
        "it is empty"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || TOKEN.contains(&b))
    {
        "it holds a character other than letters, digits and !#$%&'*+-.^_`|~"
    } else {
        "it is too long"
    }
}

/// A header name read from JSON is checked there, so that a flow-file error points at it.
fn deserialize_header_name<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    validate_header_name(&name).map_err(serde::de::Error::custom)?;
    Ok(name)
}

fn validate_header_value(index: Option<usize>, value: &str) -> Result<(), WebhookConfigError> {
    let reason = if value.len() > MAX_HEADER_VALUE_LEN {
        "is longer than 4096 bytes"
    } else if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        "holds a CR or LF"
    } else if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        "holds a byte that is not visible ASCII, space or tab"
    } else if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        "starts or ends with whitespace"
    } else {
        return Ok(());
    };
    Err(WebhookConfigError::InvalidHeaderValue { index, reason })
}

/// The Webhook node of a flow: where and how the opt-out is sent.
///
/// Build one with [`WebhookNode::builder`] or read it from JSON (it is validated either way);
/// turn a Profile and an event into the exact request with [`WebhookNode::build_request`]; check
/// it with [`WebhookNode::lint`]. The [module docs](crate::webhook) give the JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NodeSpec", into = "NodeSpec")]
pub struct WebhookNode {
    pub(crate) method: WebhookMethod,
    pub(crate) url: Url,
    pub(crate) params: std::sync::Arc<[Param]>,
    pub(crate) headers: Vec<Header>,
    pub(crate) encoding: WebhookEncoding,
    pub(crate) auth: Auth,
    pub(crate) signing: Vec<SigningSecret>,
    /// The static headers and the credentials, parsed once for every request built.
    pub(crate) prepared: Prepared,
}

/// Header names and values checked once, when the node is built, and cloned into each request
/// (a clone shares the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// The static headers, names lower-cased, in order.
    pub(crate) headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The credentials header, its value marked sensitive, and the value masked previews show.
    pub(crate) auth: Option<(http::HeaderName, http::HeaderValue, &'static str)>,
}

impl Prepared {
    fn new(headers: &[Header], auth: &Auth) -> Result<Self, WebhookConfigError> {
        let invalid = |name: &str| WebhookConfigError::InvalidHeaderName {
            reason: header_name_problem(name),
        };
        let mut prepared = Vec::with_capacity(headers.len());
        for (index, header) in headers.iter().enumerate() {
            let lower = header.name().to_ascii_lowercase();
            let name =
                http::HeaderName::from_bytes(lower.as_bytes()).map_err(|_| invalid(&lower))?;
            let value = http::HeaderValue::from_str(header.value()).map_err(|_| {
                WebhookConfigError::InvalidHeaderValue {
                    index: Some(index),
                    reason: "holds a byte that is not visible ASCII, space or tab",
                }
            })?;
            prepared.push((name, value));
        }
        let auth = match auth.header() {
            None => None,
            Some((name, value)) => {
                let header =
                    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(&name))?;
                let mut value = http::HeaderValue::from_str(&value).map_err(|_| {
                    WebhookConfigError::InvalidAuth {
                        scheme: match auth {
                            Auth::Bearer { .. } => "bearer",
                            Auth::Basic { .. } => "basic",
                            _ => "header",
                        },
                        reason: "the header value holds a byte that is not visible ASCII",
                    }
                })?;
                value.set_sensitive(true);
                Some((header, value, auth.masked_value()))
            }
        };
        Ok(Self {
            headers: prepared,
            auth,
        })
    }
}

impl WebhookNode {
    /// A node sending with `method` to `url`, no parameters, `query` encoding, no auth, not
    /// signed. Add the rest with [`WebhookNode::builder`].
    ///
    /// # Errors
    ///
    /// The URL errors of [`WebhookConfigError`] (scheme, credentials, fragment, length).
    pub fn new(method: WebhookMethod, url: Url) -> Result<Self, WebhookConfigError> {
        validate_url(&url)?;
        Ok(Self {
            method,
            url,
            params: std::sync::Arc::from([]),
            headers: Vec::new(),
            encoding: WebhookEncoding::Query,
            auth: Auth::None,
            signing: Vec::new(),
            prepared: Prepared {
                headers: Vec::new(),
                auth: None,
            },
        })
    }

    /// A builder for a node sending to `url` (parsed and checked at
    /// [`WebhookNodeBuilder::build`]), by POST with `query` encoding unless told otherwise.
    ///
    /// The text is taken exactly as written: a control character or whitespace anywhere in it
    /// (a CR or LF, a tab, a leading or trailing space) is an error, never silently dropped.
    ///
    /// ```
    /// use optout_relay::webhook::ParamSource;
    /// use optout_relay::webhook::WebhookEncoding;
    /// use optout_relay::webhook::WebhookMethod;
    /// use optout_relay::WebhookNode;
    ///
    /// let node = WebhookNode::builder("https://crm.example.com/optout?source=platform")
    ///     .method(WebhookMethod::Post)
    ///     .param("email", ParamSource::Email)
    ///     .param("subscription", ParamSource::SubscriptionId)
    ///     .header("x-tenant", "acme")
    ///     .encoding(WebhookEncoding::Json)
    ///     .build()?;
    /// assert_eq!(node.url().as_str(), "https://crm.example.com/optout?source=platform");
    /// # Ok::<(), optout_relay::WebhookConfigError>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> WebhookNodeBuilder {
        WebhookNodeBuilder {
            spec: NodeSpec {
                method: WebhookMethod::default(),
                url: url.into(),
                encoding: WebhookEncoding::default(),
                params: Vec::new(),
                headers: Vec::new(),
                auth: Auth::None,
                signing_secrets: Vec::new(),
            },
            error: None,
        }
    }

    /// The same node sending to another endpoint (a staging receiver, a local test server),
    /// with everything else unchanged.
    ///
    /// # Errors
    ///
    /// The URL errors of [`WebhookConfigError`], as for [`WebhookNode::new`], and
    /// [`WebhookConfigError::ParamConflictsWithStaticQuery`] when the new URL has a static query
    /// parameter named like one of the node's parameters.
    pub fn with_url(&self, url: Url) -> Result<Self, WebhookConfigError> {
        validate_url(&url)?;
        check_static_query(&url, &self.params)?;
        Ok(Self {
            url,
            ..self.clone()
        })
    }

    /// The HTTP method.
    pub fn method(&self) -> WebhookMethod {
        self.method
    }

    /// The endpoint URL, with its static query parameters.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The Profile-data parameters, in the order they are sent.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The static headers, in the order they are sent.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Where the parameters go.
    pub fn encoding(&self) -> WebhookEncoding {
        self.encoding
    }

    /// How the request authenticates.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Whether requests carry a Standard Webhooks signature.
    pub fn is_signed(&self) -> bool {
        !self.signing.is_empty()
    }

    /// How many signing secrets sign each request (more than one during key rotation).
    pub fn signing_secret_count(&self) -> usize {
        self.signing.len()
    }
}

/// Parses an endpoint URL written as text, refusing control characters and whitespace first:
/// the WHATWG parser removes tabs and newlines anywhere, trims leading and trailing C0 controls
/// and spaces, and percent-encodes the rest, so what is called would differ from what is written.
fn parse_url(text: &str) -> Result<Url, WebhookConfigError> {
    if let Some((position, c)) = text
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        return Err(WebhookConfigError::UrlCharacter {
            position,
            found: if c.is_control() {
                "a control character"
            } else {
                "whitespace"
            },
        });
    }
    Url::parse(text).map_err(|source| WebhookConfigError::InvalidUrl { source })
}

/// Refuses a parameter named like a static query parameter of `url`, as a receiver decodes the
/// names (percent-decoded, `+` a space). Checked whatever the encoding: with `query` both are
/// in one query string, with a body a receiver that merges query and body parameters sees both.
fn check_static_query(url: &Url, params: &[Param]) -> Result<(), WebhookConfigError> {
    if url.query().is_none() {
        return Ok(());
    }
    let statics: Vec<_> = url.query_pairs().map(|(name, _)| name).collect();
    match params
        .iter()
        .position(|p| statics.iter().any(|name| name == p.name()))
    {
        Some(index) => Err(WebhookConfigError::ParamConflictsWithStaticQuery { index }),
        None => Ok(()),
    }
}

fn validate_url(url: &Url) -> Result<(), WebhookConfigError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookConfigError::UnsupportedScheme {
            scheme: url.scheme().chars().take(32).collect(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookConfigError::CredentialsInUrl);
    }
    if url.fragment().is_some() {
        return Err(WebhookConfigError::FragmentInUrl);
    }
    if url.as_str().len() > MAX_URL_LEN {
        return Err(WebhookConfigError::UrlTooLong {
            len: url.as_str().len(),
            max: MAX_URL_LEN,
        });
    }
    if let Err(error) = http::Uri::try_from(url.as_str()) {
        return Err(WebhookConfigError::UrlNotHttp {
            reason: error.to_string(),
        });
    }
    Ok(())
}

/// Builds a [`WebhookNode`] step by step. Like the `http` crate's builders, it keeps the first
/// error and reports it at [`WebhookNodeBuilder::build`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct WebhookNodeBuilder {
    spec: NodeSpec,
    error: Option<WebhookConfigError>,
}

impl WebhookNodeBuilder {
    /// Sets the HTTP method (POST by default).
    pub fn method(mut self, method: WebhookMethod) -> Self {
        self.spec.method = method;
        self
    }

    /// Adds a required parameter, sent after the ones added before.
    pub fn param(self, name: impl Into<String>, source: ParamSource) -> Self {
        self.push_param(Param::new(name, source))
    }

    /// Adds an optional parameter: left out when its source has no value.
    pub fn optional_param(self, name: impl Into<String>, source: ParamSource) -> Self {
        self.push_param(Param::optional(name, source))
    }

    fn push_param(mut self, param: Result<Param, WebhookConfigError>) -> Self {
        match param {
            Ok(param) => self.spec.params.push(param),
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
        self
    }

    /// Adds a static header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.headers.push(Header::new(name, value));
        self
    }

    /// Sets where the parameters go (`query` by default).
    pub fn encoding(mut self, encoding: WebhookEncoding) -> Self {
        self.spec.encoding = encoding;
        self
    }

    /// Sets the authentication.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.spec.auth = auth;
        self
    }

    /// Authenticates with `authorization: Bearer <token>`.
    pub fn bearer(self, token: impl Into<Secret>) -> Self {
        self.auth(Auth::Bearer {
            token: token.into(),
        })
    }

    /// Authenticates with `authorization: Basic ...`.
    pub fn basic(self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.auth(Auth::Basic {
            username: username.into(),
            password: password.into(),
        })
    }

    /// Adds a Standard Webhooks signing secret (`whsec_` + base64 of 24 to 64 bytes). Several
    /// secrets (during key rotation) give several signatures.
    pub fn sign_with(mut self, secret: impl Into<Secret>) -> Self {
        self.spec.signing_secrets.push(secret.into());
        self
    }

    /// Validates everything and builds the node.
    ///
    /// # Errors
    ///
    /// The first [`WebhookConfigError`] met: the URL, a parameter, a header, the auth, a
    /// signing secret, or a body encoding with GET or DELETE.
    pub fn build(self) -> Result<WebhookNode, WebhookConfigError> {
        match self.error {
            Some(error) => Err(error),
            None => WebhookNode::try_from(self.spec),
        }
    }
}

/// The JSON form of a [`WebhookNode`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct NodeSpec {
    #[serde(default)]
    method: WebhookMethod,
    url: String,
    #[serde(default)]
    encoding: WebhookEncoding,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<Header>,
    #[serde(default, skip_serializing_if = "Auth::is_none")]
    auth: Auth,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    signing_secrets: Vec<Secret>,
}

impl TryFrom<NodeSpec> for WebhookNode {
    type Error = WebhookConfigError;

    fn try_from(spec: NodeSpec) -> Result<Self, Self::Error> {
        let url = parse_url(&spec.url)?;
        validate_url(&url)?;

        if spec.params.len() > MAX_PARAMS {
            return Err(WebhookConfigError::TooManyParams {
                count: spec.params.len(),
                max: MAX_PARAMS,
            });
        }
        for (i, param) in spec.params.iter().enumerate() {
            param.validate()?;
            if let Some(first) = spec.params[..i]
                .iter()
                .position(|p| p.name() == param.name())
            {
                return Err(WebhookConfigError::DuplicateParam { index: i, first });
            }
        }
        check_static_query(&url, &spec.params)?;

        if spec.headers.len() > MAX_HEADERS {
            return Err(WebhookConfigError::TooManyHeaders {
                count: spec.headers.len(),
                max: MAX_HEADERS,
            });
        }
        for (i, header) in spec.headers.iter().enumerate() {
            let lower = validate_header_name(&header.name)?;
            if let Some(reserved) = reserved_header(&lower) {
                return Err(reserved);
            }
            if let Some(first) = spec.headers[..i]
                .iter()
                .position(|h| h.name.eq_ignore_ascii_case(&header.name))
            {
                return Err(WebhookConfigError::DuplicateHeader {
                    index: Some(i),
                    first,
                });
            }
            validate_header_value(Some(i), &header.value)?;
        }

        spec.auth.validate(&spec.headers)?;

        if !spec.method.takes_body() && spec.encoding.has_body() {
            return Err(WebhookConfigError::BodyOnBodylessMethod {
                method: spec.method,
                encoding: spec.encoding,
            });
        }

        if spec.signing_secrets.len() > MAX_SIGNING_SECRETS {
            return Err(WebhookConfigError::TooManySigningSecrets {
                count: spec.signing_secrets.len(),
                max: MAX_SIGNING_SECRETS,
            });
        }
        let signing = spec
            .signing_secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| SigningSecret::for_node(index, secret))
            .collect::<Result<Vec<_>, _>>()?;

        let prepared = Prepared::new(&spec.headers, &spec.auth)?;
        Ok(Self {
            method: spec.method,
            url,
            params: spec.params.into(),
            headers: spec.headers,
            encoding: spec.encoding,
            auth: spec.auth,
            signing,
            prepared,
        })
    }
}

impl From<WebhookNode> for NodeSpec {
    fn from(node: WebhookNode) -> Self {
        Self {
            method: node.method,
            url: node.url.into(),
            encoding: node.encoding,
            params: node.params.to_vec(),
            headers: node.headers,
            auth: node.auth,
            signing_secrets: node.signing.iter().map(SigningSecret::secret).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::base64_encode;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), output);
        }
    }

    #[cfg(feature = "signing")]
    #[test]
    fn base64_matches_the_base64_crate() {
        use base64::Engine as _;
        let bytes: Vec<u8> = (0..=255u8).collect();
        for len in 0..bytes.len() {
            assert_eq!(
                base64_encode(&bytes[..len]),
                base64::engine::general_purpose::STANDARD.encode(&bytes[..len])
            );
        }
    }
}
