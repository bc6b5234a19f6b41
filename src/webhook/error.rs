//! The Webhook node's errors: a configuration that is rejected ([`WebhookConfigError`]) and a
//! request that cannot be built for a Profile and an event ([`RequestBuildError`]). What
//! exactly is wrong is in the enums of `problem.rs`, for hosts to match on.

use std::fmt;

use crate::model::error::{EmailProblem, MobileProblem};
use crate::model::{ProfileId, SectionId};
use crate::webhook::method::{WebhookEncoding, WebhookMethod};
use crate::webhook::problem::{
    AuthProblem, HeaderNameProblem, HeaderValueProblem, HttpProblem, MissingValueReason,
    ParamNameProblem, ReservedHeaderHint, SigningSecretProblem, UriProblem, UrlCharacterKind,
};
use crate::webhook::source::ParamSource;

/// A Webhook node's configuration was rejected (by [`crate::webhook::WebhookNodeBuilder::build`],
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

/// A Webhook request could not be built for this Profile and event
/// ([`crate::Flow::build_request`]).
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
    /// A parameter takes the Folder id, which only the Section's catalog knows, and the
    /// catalog given does not hold the flow's Section.
    #[error(
        "parameter `{param}` (source folder_id) needs the Section's catalog: give a catalog that \
         holds the flow's Section"
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
    /// The event belongs to another Section than the flow
    /// ([`Flow::build_request`](crate::Flow::build_request)).
    #[error("event of section `{event_section}` given to a flow of section `{section}`")]
    SectionMismatch {
        /// The Section the event names.
        event_section: SectionId,
        /// The flow's Section.
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

/// Text that cannot be a `webhook-id` (from [`WebhookId`](crate::webhook::WebhookId)'s
/// `FromStr`). The text itself is not repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookIdError {
    /// The text is empty.
    #[error("a webhook-id cannot be empty")]
    Empty,
    /// The text is longer than [`MAX_WEBHOOK_ID_LEN`](crate::webhook::MAX_WEBHOOK_ID_LEN).
    #[error("the webhook-id is {len} bytes long, the limit is {max}")]
    TooLong {
        /// The text's length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The text holds a byte that is not a visible ASCII character (a space, a control
    /// character, or non-ASCII).
    #[error("the webhook-id holds a character other than visible ASCII at byte {position}")]
    NotVisibleAscii {
        /// Byte offset of the first such byte.
        position: usize,
    },
}
