//! What exactly is wrong in a Webhook node's errors: one enum per kind of reason, each
//! `Display`ing the words the error's message uses.

use std::fmt;

/// Which kind of character makes an endpoint URL unusable
/// ([`WebhookConfigError::UrlCharacter`](crate::webhook::WebhookConfigError::UrlCharacter)).
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

/// Why the `http` crate refuses a URI ([`WebhookConfigError::UrlNotHttp`](crate::webhook::WebhookConfigError::UrlNotHttp),
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

/// What is wrong with a parameter name ([`WebhookConfigError::InvalidParamName`](crate::webhook::WebhookConfigError::InvalidParamName)).
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

/// What makes a text not an HTTP header name ([`WebhookConfigError::InvalidHeaderName`](crate::webhook::WebhookConfigError::InvalidHeaderName)).
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

/// What is wrong with a header value ([`WebhookConfigError::InvalidHeaderValue`](crate::webhook::WebhookConfigError::InvalidHeaderValue)). `Display`
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
/// ([`WebhookConfigError::ReservedHeader`](crate::webhook::WebhookConfigError::ReservedHeader)). `Display` says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReservedHeaderHint {
    /// `host`, `content-length`, `transfer-encoding`, `connection`: the transport derives them
    /// from the URL and the body.
    Transport,
    /// `content-type`: it follows from the node's [`WebhookEncoding`](crate::webhook::WebhookEncoding).
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

/// What is wrong with an `auth` setting ([`WebhookConfigError::InvalidAuth`](crate::webhook::WebhookConfigError::InvalidAuth)). The secret is
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
/// ([`WebhookConfigError::InvalidSigningSecret`](crate::webhook::WebhookConfigError::InvalidSigningSecret)). The secret is never repeated.
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

/// Why a parameter's source has no value for this Profile or event
/// ([`RequestBuildError::MissingValue`](crate::webhook::RequestBuildError::MissingValue)).
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

/// What the `http` crate rejected while a request was assembled ([`RequestBuildError::Http`](crate::webhook::RequestBuildError::Http)).
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
