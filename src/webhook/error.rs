//! The Webhook node's errors: a configuration that is rejected ([`WebhookConfigError`]) and a
//! request that cannot be built for a Profile and an event ([`RequestBuildError`]), with the
//! enums that say what exactly is wrong, for hosts to match on.

use std::fmt;

use crate::error::{EmailProblem, MobileProblem};
use crate::model::{ProfileId, SectionId};
use crate::webhook::method::{WebhookEncoding, WebhookMethod};
use crate::webhook::source::ParamSource;

/// A Webhook node's configuration was rejected (by [`crate::WebhookNodeBuilder::build`],
/// [`crate::WebhookNode::new`] or when a node is read from JSON).
///
/// Every variant names what is wrong: which parameter, which header, which secret (by position).
/// Header values, tokens, passwords and signing secrets are never repeated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookConfigError {
    /// The endpoint URL cannot be parsed.
    #[error("invalid endpoint URL: {source}")]
    InvalidUrl {
        /// The parser's reason.
        #[source]
        source: url::ParseError,
    },
    /// The endpoint URL holds a control character (C0 such as CR, LF, TAB or NUL, DEL, or C1)
    /// or whitespace (a space, a no-break space, ...). The URL parser would drop some of them
    /// silently (`x.exa\r\nmple` would become `x.example`) and percent-encode others, so the
    /// endpoint called would not be the one written. The URL itself is not repeated.
    #[error(
        "the endpoint URL holds {found} at byte {position}: the URL parser would silently drop \
         or encode it; remove it (write a space in a path or query as %20)"
    )]
    UrlCharacter {
        /// Byte offset of the first such character.
        position: usize,
        /// Which kind of character it is.
        found: UrlCharacterKind,
    },
    /// The endpoint URL's scheme is not `http` or `https`.
    #[error("the endpoint URL scheme is not supported: use https (or http)")]
    UnsupportedScheme {
        /// The scheme found (cut at 32 characters). The message does not repeat it: a URL
        /// written without a scheme can make its first part (a user name) look like one.
        scheme: String,
    },
    /// The endpoint URL carries a user name or password (`https://user:pass@host/`).
    #[error(
        "the endpoint URL carries credentials: remove them from the URL and use `auth` \
         (bearer, basic or header) instead, which is redacted in logs and previews"
    )]
    CredentialsInUrl,
    /// The endpoint URL has a `#fragment`, which is never sent over HTTP.
    #[error("the endpoint URL has a `#` fragment, which HTTP never sends: remove it")]
    FragmentInUrl,
    /// The endpoint URL is longer than the limit.
    #[error("the endpoint URL is {len} bytes long, the limit is {max}")]
    UrlTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The `http` crate does not accept the endpoint URL as a request URI.
    #[error("the endpoint URL is not a valid HTTP request URI: {reason}")]
    UrlNotHttp {
        /// Why the `http` crate refuses it.
        reason: UriProblem,
    },
    /// A parameter name is empty, too long or holds a control character. The name is not
    /// repeated: an invalid one may be a value written in the wrong place.
    #[error("invalid parameter name: {reason}")]
    InvalidParamName {
        /// What is wrong with it.
        reason: ParamNameProblem,
    },
    /// Two parameters share a name. Named by position: a name may be a value written in the
    /// wrong place, so it is not repeated.
    #[error("parameter #{index} has the same name as parameter #{first}")]
    DuplicateParam {
        /// The later parameter's position in the list, from 0.
        index: usize,
        /// The position of the first parameter with that name.
        first: usize,
    },
    /// A parameter has the name of a static query parameter of the endpoint URL
    /// (`https://h.example/?email=x` and a parameter `email`): both would be sent, which a
    /// receiver reads as two values for one name (the crate's own parser refuses them). Names
    /// compare as a receiver reads them, percent-decoded and with `+` as a space; the static
    /// name and the static value are not repeated.
    #[error(
        "parameter #{index} has the name of a static query parameter of the endpoint URL: the \
         receiver would get two values under one name; rename the parameter or remove the \
         static one"
    )]
    ParamConflictsWithStaticQuery {
        /// The parameter's position in the list, from 0.
        index: usize,
    },
    /// More parameters than the limit.
    #[error("{count} parameters configured, the limit is {max}")]
    TooManyParams {
        /// How many were configured.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A header name (of `headers` or of `auth`) is not a valid HTTP header name. The name is
    /// not repeated: an invalid one may be a value written in the wrong place (such as
    /// `Authorization: Bearer ...` as a name).
    #[error("invalid header name: {reason}")]
    InvalidHeaderName {
        /// What is wrong with it.
        reason: HeaderNameProblem,
    },
    /// A header value holds a CR, LF or another byte that is not visible ASCII, space or tab.
    #[error("{}: the value {reason}", HeaderAt(*.index))]
    InvalidHeaderValue {
        /// The header's position in `headers`, from 0; `None` for the `auth` header.
        index: Option<usize>,
        /// What is wrong with the value (which is not repeated).
        reason: HeaderValueProblem,
    },
    /// A header the crate sets itself (such as `content-length`, `host`, `content-type`,
    /// `authorization` or the `webhook-*` signature headers) was configured.
    #[error("header `{name}` is set by the crate and cannot be configured: {hint}")]
    ReservedHeader {
        /// The reserved header's name (the crate's, lower case).
        name: &'static str,
        /// Where the header comes from instead, and so what to do.
        hint: ReservedHeaderHint,
    },
    /// Two headers share a name (names compare case-insensitively). Named by position.
    #[error("{} has the same name as header #{first}", HeaderAt(*.index))]
    DuplicateHeader {
        /// The later header's position in `headers`, from 0; `None` for the `auth` header.
        index: Option<usize>,
        /// The position in `headers` of the first header with that name.
        first: usize,
    },
    /// More headers than the limit.
    #[error("{count} headers configured, the limit is {max}")]
    TooManyHeaders {
        /// How many were configured.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The method sends no body, but the encoding puts the parameters in one.
    #[error(
        "method {method} with encoding `{encoding}`: {method} requests carry no body; use \
         encoding `query`, or the method POST, PUT or PATCH"
    )]
    BodyOnBodylessMethod {
        /// The method (GET or DELETE).
        method: WebhookMethod,
        /// The body encoding.
        encoding: WebhookEncoding,
    },
    /// The `auth` setting is invalid.
    #[error("invalid auth ({scheme}): {reason}")]
    InvalidAuth {
        /// `bearer`, `basic` or `header`.
        scheme: &'static str,
        /// What is wrong (the secret is not repeated).
        reason: AuthProblem,
    },
    /// A signing secret is not `whsec_` followed by the base64 of 24 to 64 bytes.
    #[error("signing secret #{index}: {reason}")]
    InvalidSigningSecret {
        /// Its position in the list, from 0.
        index: usize,
        /// What is wrong (the secret is not repeated).
        reason: SigningSecretProblem,
    },
    /// More signing secrets than the limit.
    #[error("{count} signing secrets configured, the limit is {max}")]
    TooManySigningSecrets {
        /// How many were configured.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Signing secrets were configured but the crate was built without its `signing` feature.
    #[error(
        "signing secrets are configured but optout-relay was built without the `signing` \
         feature: enable it (it is on by default) rather than send unsigned requests"
    )]
    SigningUnavailable,
}

/// Which kind of character makes an endpoint URL unusable
/// ([`WebhookConfigError::UrlCharacter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UrlCharacterKind {
    /// A control character: C0 (such as CR, LF, TAB or NUL), DEL, or C1.
    Control,
    /// Whitespace that is not a control character: a space, a no-break space, ...
    Whitespace,
}

impl fmt::Display for UrlCharacterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Control => "a control character",
            Self::Whitespace => "whitespace",
        })
    }
}

/// Why the `http` crate refuses a URI ([`WebhookConfigError::UrlNotHttp`],
/// [`HttpProblem::Uri`]). `Display` is the `http` crate's own wording.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UriProblem {
    /// A character a URI may not hold.
    InvalidCharacter,
    /// The scheme is invalid.
    InvalidScheme,
    /// The authority (host and port) is invalid.
    InvalidAuthority,
    /// The port is invalid.
    InvalidPort,
    /// The URI's shape is invalid.
    InvalidFormat,
    /// There is no scheme.
    SchemeMissing,
    /// There is no authority.
    AuthorityMissing,
    /// There is no path.
    PathMissing,
    /// The path does not start with `/`.
    PathWithoutSlash,
    /// The URI is too long for the `http` crate.
    TooLong,
    /// The URI is empty.
    Empty,
    /// The scheme is too long.
    SchemeTooLong,
    /// A reason this crate does not know, in the `http` crate's words (it repeats no part of
    /// the URI).
    Other(String),
}

impl UriProblem {
    /// The problem the `http` crate reports, recognised from its message (its error kind is
    /// private).
    pub(crate) fn of(error: &http::uri::InvalidUri) -> Self {
        match error.to_string().as_str() {
            "invalid uri character" => Self::InvalidCharacter,
            "invalid scheme" => Self::InvalidScheme,
            "invalid authority" => Self::InvalidAuthority,
            "invalid port" => Self::InvalidPort,
            "invalid format" => Self::InvalidFormat,
            "scheme missing" => Self::SchemeMissing,
            "authority missing" => Self::AuthorityMissing,
            "path missing" => Self::PathMissing,
            "path does not start with slash" => Self::PathWithoutSlash,
            "uri too long" => Self::TooLong,
            "empty string" => Self::Empty,
            "scheme too long" => Self::SchemeTooLong,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for UriProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidCharacter => "invalid uri character",
            Self::InvalidScheme => "invalid scheme",
            Self::InvalidAuthority => "invalid authority",
            Self::InvalidPort => "invalid port",
            Self::InvalidFormat => "invalid format",
            Self::SchemeMissing => "scheme missing",
            Self::AuthorityMissing => "authority missing",
            Self::PathMissing => "path missing",
            Self::PathWithoutSlash => "path does not start with slash",
            Self::TooLong => "uri too long",
            Self::Empty => "empty string",
            Self::SchemeTooLong => "scheme too long",
            Self::Other(reason) => reason,
        })
    }
}

/// What is wrong with a parameter name ([`WebhookConfigError::InvalidParamName`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamNameProblem {
    /// The name is the empty string.
    Empty,
    /// The name is longer than [`MAX_PARAM_NAME_LEN`](crate::webhook::MAX_PARAM_NAME_LEN)
    /// bytes.
    TooLong,
    /// The name holds a control character (such as CR, LF, TAB or NUL).
    ControlCharacter,
}

impl fmt::Display for ParamNameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "it is empty",
            Self::TooLong => "it is longer than 128 bytes",
            Self::ControlCharacter => "it holds a control character",
        })
    }
}

/// What makes a text not an HTTP header name ([`WebhookConfigError::InvalidHeaderName`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderNameProblem {
    /// The name is the empty string.
    Empty,
    /// The name holds a character that is not allowed in an HTTP token (RFC 9110): anything
    /// but letters, digits and ``!#$%&'*+-.^_`|~``, such as a space, a `:`, CR or LF.
    NotToken,
    /// The name is longer than the `http` crate accepts (64 KiB).
    TooLong,
}

impl fmt::Display for HeaderNameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "it is empty",
            Self::NotToken => "it holds a character other than letters, digits and !#$%&'*+-.^_`|~",
            Self::TooLong => "it is too long",
        })
    }
}

/// What is wrong with a header value ([`WebhookConfigError::InvalidHeaderValue`]). `Display`
/// completes "the value ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderValueProblem {
    /// The value is longer than [`MAX_HEADER_VALUE_LEN`](crate::webhook::MAX_HEADER_VALUE_LEN)
    /// bytes.
    TooLong,
    /// The value holds a CR or an LF (which would start another header).
    LineBreak,
    /// The value holds a byte that is not visible ASCII, a space or a tab (a control
    /// character, or non-ASCII text).
    NotVisibleAscii,
    /// The value starts or ends with a space or a tab (which HTTP drops).
    SurroundingWhitespace,
}

impl fmt::Display for HeaderValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "is longer than 4096 bytes",
            Self::LineBreak => "holds a CR or LF",
            Self::NotVisibleAscii => "holds a byte that is not visible ASCII, space or tab",
            Self::SurroundingWhitespace => "starts or ends with whitespace",
        })
    }
}

/// Where a reserved header comes from instead of the configuration
/// ([`WebhookConfigError::ReservedHeader`]). `Display` says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReservedHeaderHint {
    /// `host`, `content-length`, `transfer-encoding`, `connection`: the transport derives them
    /// from the URL and the body.
    Transport,
    /// `content-type`: it follows from the node's [`WebhookEncoding`].
    Encoding,
    /// `authorization`: set it with `auth` (bearer or basic).
    Auth,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`: the crate sets the Standard
    /// Webhooks headers; sign with `signing_secrets`.
    Signing,
}

impl fmt::Display for ReservedHeaderHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Transport => "the transport derives it from the URL and body",
            Self::Encoding => "it follows from `encoding`",
            Self::Auth => "use `auth` (bearer or basic), which is redacted in logs and previews",
            Self::Signing => {
                "the crate sets the Standard Webhooks headers; use `signing_secrets` to sign"
            }
        })
    }
}

/// What is wrong with an `auth` setting ([`WebhookConfigError::InvalidAuth`]). The secret is
/// never repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthProblem {
    /// The bearer token is empty.
    EmptyToken,
    /// The bearer token is longer than
    /// [`MAX_HEADER_VALUE_LEN`](crate::webhook::MAX_HEADER_VALUE_LEN) bytes.
    TokenTooLong,
    /// The bearer token holds a byte that is not visible ASCII (a space, CR, LF or non-ASCII).
    TokenNotVisibleAscii,
    /// The basic-auth user name holds a `:` (which separates it from the password).
    ColonInUserName,
    /// The basic-auth user name or password is longer than
    /// [`MAX_BASIC_CREDENTIAL_LEN`](crate::webhook::MAX_BASIC_CREDENTIAL_LEN) bytes.
    CredentialTooLong,
    /// The basic-auth user name or password holds a control character.
    CredentialControlCharacter,
    /// The credentials header's value holds a byte that is not visible ASCII.
    ValueNotVisibleAscii,
}

impl fmt::Display for AuthProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EmptyToken => "the token is empty",
            Self::TokenTooLong => "the token is longer than 4096 bytes",
            Self::TokenNotVisibleAscii => {
                "the token holds a byte that is not visible ASCII (a space, CR, LF or non-ASCII)"
            }
            Self::ColonInUserName => "the user name holds a `:`",
            Self::CredentialTooLong => "the user name or password is longer than 1024 bytes",
            Self::CredentialControlCharacter => {
                "the user name or password holds a control character"
            }
            Self::ValueNotVisibleAscii => "the header value holds a byte that is not visible ASCII",
        })
    }
}

/// What makes a text not a Standard Webhooks signing secret
/// ([`WebhookConfigError::InvalidSigningSecret`]). The secret is never repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningSecretProblem {
    /// It does not start with [`SECRET_PREFIX`](crate::webhook::SECRET_PREFIX) (`whsec_`).
    NoPrefix,
    /// The part after `whsec_` is not standard base64 (with padding).
    NotBase64,
    /// The key is shorter than [`MIN_SECRET_BYTES`](crate::webhook::MIN_SECRET_BYTES) bytes.
    KeyTooShort,
    /// The key is longer than [`MAX_SECRET_BYTES`](crate::webhook::MAX_SECRET_BYTES) bytes.
    KeyTooLong,
    /// HMAC-SHA256 refuses the key (not expected: it takes keys of any length).
    NotHmacKey,
}

impl fmt::Display for SigningSecretProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoPrefix => "it does not start with `whsec_`",
            Self::NotBase64 => "the part after `whsec_` is not standard base64",
            Self::KeyTooShort => "the key is shorter than 24 bytes",
            Self::KeyTooLong => "the key is longer than 64 bytes",
            Self::NotHmacKey => "the key cannot key HMAC-SHA256",
        })
    }
}

/// A Webhook request could not be built for this Profile and event
/// ([`crate::WebhookNode::build_request`]).
///
/// `Display` and `Debug` show Profile ids masked ([`ProfileId::masked`]): an id may be personal.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestBuildError {
    /// A required parameter's source has no value for this Profile or event.
    #[error(
        "parameter `{param}` (source {param_source}) has no value: {reason}; mark the \
         parameter optional to leave it out instead"
    )]
    MissingValue {
        /// The parameter name.
        param: String,
        /// The source it takes its value from.
        param_source: ParamSource,
        /// Why there is no value.
        reason: MissingValueReason,
    },
    /// A required `email` parameter's Profile holds an Email that is not an address (kept as
    /// given when the Profile was read): it is not sent. Flows that do not send the Email still
    /// deliver.
    #[error(
        "parameter `{param}` (source email) has no value: the Profile's Email is not an \
         address: {problem}; mark the parameter optional to leave it out instead"
    )]
    EmailNotAddress {
        /// The parameter name.
        param: String,
        /// Why the Email is not an address.
        problem: EmailProblem,
    },
    /// A parameter takes the Mobile, and the Profile's Mobile (read from JSON, kept as given)
    /// cannot be a phone number at all (empty, no digit, ...): it is never sent. Flows that do
    /// not send the Mobile are not affected.
    #[error(
        "parameter `{param}` (source mobile) has no value: the Profile's Mobile is not a phone \
         number: {problem}; mark the parameter optional to leave it out instead"
    )]
    MobileNotNumber {
        /// The parameter name.
        param: String,
        /// Why the Mobile is not a phone number.
        problem: MobileProblem,
    },
    /// A parameter takes the Folder id, which only the Section's catalog knows.
    #[error(
        "parameter `{param}` (source folder_id) needs the Section's catalog: build the request \
         with `build_request_in`"
    )]
    SectionNeeded {
        /// The parameter name.
        param: String,
    },
    /// The event belongs to another Profile than the one given.
    #[error(
        "event for profile `{}` built with profile `{}`",
        event_profile.masked(),
        profile.masked()
    )]
    ProfileMismatch {
        /// The Profile the event names.
        event_profile: ProfileId,
        /// The Profile given.
        profile: ProfileId,
    },
    /// The event belongs to another Section than the catalog given.
    #[error("event of section `{event_section}` built with the catalog of section `{section}`")]
    SectionMismatch {
        /// The Section the event names.
        event_section: SectionId,
        /// The Section of the catalog given.
        section: SectionId,
    },
    /// With `query` encoding, the URL with its parameters is longer than the limit.
    #[error(
        "the request URL with its parameters is {len} bytes long, the limit is {max}: send \
         fewer or shorter parameters, or use a body encoding (form or json)"
    )]
    UrlTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The `http` crate rejected the request (not expected: the configuration is validated).
    #[error("the HTTP request could not be assembled: {reason}")]
    Http {
        /// What the `http` crate rejected.
        reason: HttpProblem,
    },
}

/// Why a parameter's source has no value for this Profile or event
/// ([`RequestBuildError::MissingValue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissingValueReason {
    /// The Profile has no Email (source `email`).
    NoEmail,
    /// The Profile has no Mobile (source `mobile`).
    NoMobile,
    /// The Profile has no such custom attribute (source `{"attribute": ...}`).
    NoAttribute,
    /// An Email - Abuse event concerns the whole Section and has no Subscription (source
    /// `subscription_id`; send `section_id`).
    NoSubscription,
    /// An Email - Abuse event concerns the whole Section and has no Folder (source
    /// `folder_id`; send `section_id`).
    NoFolder,
    /// The event's Subscription is in no Folder of the Section's catalog (source `folder_id`).
    NotInCatalog,
    /// The event names no Activity (source `activity_id`).
    NoActivity,
}

impl fmt::Display for MissingValueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoEmail => "the Profile has no Email",
            Self::NoMobile => "the Profile has no Mobile",
            Self::NoAttribute => "the Profile has no such attribute",
            Self::NoSubscription => {
                "an Email - Abuse event concerns the whole Section and has no Subscription \
                 (send section_id)"
            }
            Self::NoFolder => {
                "an Email - Abuse event concerns the whole Section and has no Folder \
                 (send section_id)"
            }
            Self::NotInCatalog => {
                "the event's Subscription is in no Folder of the Section's catalog"
            }
            Self::NoActivity => "the event names no Activity",
        })
    }
}

/// What the `http` crate rejected while a request was assembled ([`RequestBuildError::Http`]).
/// `Display` is the `http` crate's own wording.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpProblem {
    /// A header value (the webhook id or the signature).
    HeaderValue,
    /// The request URI.
    Uri(UriProblem),
}

impl fmt::Display for HttpProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeaderValue => f.write_str("failed to parse header value"),
            Self::Uri(problem) => problem.fmt(f),
        }
    }
}

impl fmt::Debug for RequestBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingValue {
                param,
                param_source,
                reason,
            } => f
                .debug_struct("MissingValue")
                .field("param", param)
                .field("param_source", param_source)
                .field("reason", reason)
                .finish(),
            Self::EmailNotAddress { param, problem } => f
                .debug_struct("EmailNotAddress")
                .field("param", param)
                .field("problem", problem)
                .finish(),
            Self::MobileNotNumber { param, problem } => f
                .debug_struct("MobileNotNumber")
                .field("param", param)
                .field("problem", problem)
                .finish(),
            Self::SectionNeeded { param } => f
                .debug_struct("SectionNeeded")
                .field("param", param)
                .finish(),
            Self::ProfileMismatch {
                event_profile,
                profile,
            } => f
                .debug_struct("ProfileMismatch")
                .field("event_profile", &MaskedProfileId(event_profile))
                .field("profile", &MaskedProfileId(profile))
                .finish(),
            Self::SectionMismatch {
                event_section,
                section,
            } => f
                .debug_struct("SectionMismatch")
                .field("event_section", event_section)
                .field("section", section)
                .finish(),
            Self::UrlTooLong { len, max } => f
                .debug_struct("UrlTooLong")
                .field("len", len)
                .field("max", max)
                .finish(),
            Self::Http { reason } => f.debug_struct("Http").field("reason", reason).finish(),
        }
    }
}

/// A Profile id in `Debug` output, masked as [`ProfileId::masked`] does: `ProfileId("p***")`.
struct MaskedProfileId<'a>(&'a ProfileId);

impl fmt::Debug for MaskedProfileId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProfileId").field(&self.0.masked()).finish()
    }
}

/// "header #N", or "the auth header", in error messages.
struct HeaderAt(Option<usize>);

impl fmt::Display for HeaderAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(index) => write!(f, "header #{index}"),
            None => f.write_str("the auth header"),
        }
    }
}
