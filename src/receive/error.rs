//! The receiving side's errors: a request that fails verification ([`VerifyError`]) or cannot be
//! turned into a notice ([`NoticeError`]), and the reasons a host can match on.

use std::fmt;

use jiff::SignedDuration;

use crate::model::EventKind;
use crate::model::error::{AttributeError, IdError};
use crate::webhook::{ParamSource, WebhookEncoding};

/// An incoming webhook failed Standard Webhooks verification
/// ([`Verifier::verify`](crate::receive::Verifier::verify), feature `signing`).
///
/// No variant says which secret came close, or repeats a signature: an attacker learns nothing
/// but "rejected, and why in general terms". Answer all of them with `401` (or `400` for the
/// malformed ones).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A Standard Webhooks header is absent.
    #[error("the `{name}` header is missing")]
    MissingHeader {
        /// `webhook-id`, `webhook-timestamp` or `webhook-signature`.
        name: &'static str,
    },
    /// A Standard Webhooks header is present but unusable (empty, not visible ASCII, sent more
    /// than once, or, for `webhook-signature`, holding no `v1,` signature or too many).
    #[error("the `{name}` header {reason}")]
    MalformedHeader {
        /// `webhook-id`, `webhook-timestamp` or `webhook-signature`.
        name: &'static str,
        /// What is wrong with it (the value is not repeated).
        reason: HeaderProblem,
    },
    /// `webhook-timestamp` is not a whole number of seconds since the Unix epoch.
    #[error("the `webhook-timestamp` header is not a number of seconds since 1970-01-01T00:00:00Z")]
    InvalidTimestamp,
    /// `webhook-timestamp` is further in the past than the tolerance: a replay, or a sender whose
    /// clock is far behind.
    #[error("the webhook was signed {age:#} ago, longer than the tolerance of {tolerance:#}")]
    TooOld {
        /// How long before `now` it was signed.
        age: SignedDuration,
        /// The tolerance.
        tolerance: SignedDuration,
    },
    /// `webhook-timestamp` is further in the future than the tolerance: a sender whose clock is
    /// far ahead.
    #[error(
        "the webhook is timestamped {ahead:#} in the future, more than the tolerance of {tolerance:#}"
    )]
    TooNew {
        /// How far after `now` it is timestamped.
        ahead: SignedDuration,
        /// The tolerance.
        tolerance: SignedDuration,
    },
    /// No signature in `webhook-signature` is a valid signature of this id, timestamp and body
    /// by any of the secrets (or no secret is configured).
    #[error("no signature matches: the body, id or timestamp was changed, or the secret differs")]
    NoMatchingSignature,
}

/// What makes a Standard Webhooks header unusable ([`VerifyError::MalformedHeader`]). `Display`
/// completes "the `<name>` header ...", and never repeats the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The header is sent more than once.
    Repeated,
    /// The value holds a byte that is not visible ASCII (or a space or tab).
    NotVisibleAscii,
    /// The value is empty, or only spaces and tabs.
    Empty,
    /// `webhook-id` is longer than [`MAX_WEBHOOK_ID_LEN`](crate::webhook::MAX_WEBHOOK_ID_LEN)
    /// bytes.
    TooLong,
    /// `webhook-signature` holds more than [`MAX_SIGNATURES`](crate::receive::MAX_SIGNATURES)
    /// space-separated entries.
    TooManySignatures,
    /// `webhook-signature` holds no entry of version `v1,`.
    NoV1Signature,
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Repeated => "is sent more than once",
            Self::NotVisibleAscii => "holds a byte that is not visible ASCII",
            Self::Empty => "is empty",
            Self::TooLong => "is longer than 256 bytes",
            Self::TooManySignatures => "holds more than 16 signatures",
            Self::NoV1Signature => "holds no `v1,` signature",
        })
    }
}

/// An incoming opt-out webhook could not be turned into an
/// [`OptOutNotice`](crate::receive::OptOutNotice)
/// ([`NoticeParser::parse`](crate::receive::NoticeParser::parse)).
///
/// Every variant names the parameter (as the parser's mapping names it) and what is wrong.
/// Values are never repeated: they may be personal data. Answer them with `400`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoticeError {
    /// The `content-type` header names another media type than the encoding's.
    #[error("content-type `{found}` does not fit encoding `{encoding}`: expected `{expected}`")]
    ContentType {
        /// The parser's encoding.
        encoding: WebhookEncoding,
        /// The media type the encoding expects.
        expected: &'static str,
        /// The media type found, lower case (escaped, cut at 64 characters), or
        /// `[not visible ASCII]` when the header holds a byte that is not.
        found: String,
    },
    /// The body is not what the encoding expects (not JSON, not a JSON object, an envelope
    /// without a `data` object).
    #[error("the {encoding} body is malformed: {reason}")]
    MalformedBody {
        /// The parser's encoding.
        encoding: WebhookEncoding,
        /// What is wrong (no value is repeated).
        reason: BodyProblem,
    },
    /// A required parameter is absent.
    #[error("parameter `{param}` (source {param_source}) is missing")]
    MissingParameter {
        /// The parameter name.
        param: String,
        /// What it carries.
        param_source: ParamSource,
    },
    /// The event kind needs a parameter that is absent (the Subscription of an unsubscribe, the
    /// Section of a spam complaint).
    #[error(
        "an {kind} opt-out needs parameter `{param}` (source {param_source}), which is missing"
    )]
    MissingForKind {
        /// The event kind.
        kind: EventKind,
        /// The parameter name.
        param: String,
        /// What it carries.
        param_source: ParamSource,
    },
    /// The event kind needs a value that no parameter of the mapping carries.
    #[error("an {kind} opt-out needs its {param_source}, and no parameter is mapped to it")]
    NotMapped {
        /// The event kind.
        kind: EventKind,
        /// The source no parameter carries.
        param_source: ParamSource,
    },
    /// A parameter is sent more than once with different values.
    #[error("parameter `{param}` is sent more than once with different values")]
    Repeated {
        /// The parameter name.
        param: String,
    },
    /// A parameter (or the envelope's `type`) disagrees with another one, with the envelope,
    /// with the event kind or with the parser's fixed kind.
    #[error("parameter `{param}` disagrees with {with}")]
    Conflict {
        /// The parameter name (`type` for the envelope's).
        param: String,
        /// What it disagrees with.
        with: ConflictWith,
    },
    /// A parameter's value (or the envelope's `type` or `timestamp`) is invalid.
    #[error("parameter `{param}`: {reason}")]
    InvalidValue {
        /// The parameter name (`type` or `timestamp` for the envelope's own fields).
        param: String,
        /// What is wrong (the value is not repeated).
        reason: ValueProblem,
    },
    /// Nothing says which opt-out this is: no `event_kind` parameter, no envelope `type`, no
    /// fixed kind.
    #[error(
        "the event kind is unknown: map an event_kind parameter, use the json_envelope encoding, \
         or give the parser a fixed kind"
    )]
    UnknownKind,
    /// Nothing identifies the Profile: no Email, Mobile, Profile id or custom attribute arrived.
    #[error("no parameter identifies the profile (email, mobile, profile_id or an attribute)")]
    NoIdentifier,
}

/// What is wrong with a request body ([`NoticeError::MalformedBody`]). `Display` never quotes
/// the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyProblem {
    /// The body is not valid JSON; where the JSON parser stopped.
    NotJson {
        /// The line, from 1.
        line: usize,
        /// The column, from 1 (0 before the first character of a line).
        column: usize,
    },
    /// The JSON ends before its value does (an empty body included); where it ends.
    JsonEndsEarly {
        /// The line, from 1.
        line: usize,
        /// The column, from 1 (0 before the first character of a line).
        column: usize,
    },
    /// The body is JSON, but not an object.
    NotObject,
    /// The envelope holds `type`, `timestamp` or `data` more than once: ambiguous, refused
    /// whole.
    EnvelopeRepeats,
    /// The envelope has no `data` (or `data` is `null`).
    NoData,
    /// The envelope's `data` is not a JSON object.
    DataNotObject,
}

impl fmt::Display for BodyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson { line, column } => {
                write!(f, "not valid JSON (line {line}, column {column})")
            }
            Self::JsonEndsEarly { line, column } => {
                write!(f, "the JSON ends early (line {line}, column {column})")
            }
            Self::NotObject => f.write_str("the body is not a JSON object"),
            Self::EnvelopeRepeats => {
                f.write_str("the envelope repeats `type`, `timestamp` or `data`")
            }
            Self::NoData => f.write_str("the envelope has no `data`"),
            Self::DataNotObject => f.write_str("the envelope's `data` is not a JSON object"),
        }
    }
}

/// What a parameter disagrees with ([`NoticeError::Conflict`]). `Display` completes
/// "parameter `<name>` disagrees with ...".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConflictWith {
    /// Another parameter of the same source, by name (shown in backticks).
    Param(String),
    /// The envelope's `type`.
    EnvelopeType,
    /// The envelope's `timestamp`.
    EnvelopeTimestamp,
    /// The parser's fixed kind ([`NoticeParser::with_fixed_kind`](crate::receive::NoticeParser::with_fixed_kind)).
    FixedKind(EventKind),
    /// The event kind the request says: a `channel` parameter that does not fit it.
    EventKind(EventKind),
}

impl fmt::Display for ConflictWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Param(name) => write!(f, "`{name}`"),
            Self::EnvelopeType => f.write_str("`type`"),
            Self::EnvelopeTimestamp => f.write_str("the envelope's `timestamp`"),
            Self::FixedKind(kind) => write!(f, "the fixed kind {kind}"),
            Self::EventKind(kind) => write!(f, "the event kind {kind}"),
        }
    }
}

/// What is wrong with a parameter's value ([`NoticeError::InvalidValue`]). `Display` never
/// repeats the value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueProblem {
    /// A query or form value is not UTF-8 once percent-decoded.
    NotUtf8,
    /// A JSON value that should be a string is a number, a boolean, an array or an object.
    NotString,
    /// A custom attribute's JSON value is an array or an object.
    NotAttributeValue,
    /// An Email that is not an address, or a Mobile that cannot be a number
    /// ([`Email::new`](crate::Email::new), [`Mobile::new`](crate::Mobile::new)).
    Attribute(AttributeError),
    /// An id the model refuses (empty, too long, a control character).
    Id(IdError),
    /// An `event_kind` value that names no event kind.
    NotEventKind,
    /// A `channel` value other than `email` or `sms`.
    NotChannel,
    /// An `origin` value other than `communication`, `api` or `file_import`.
    NotOrigin,
    /// An `occurred_at` value, or the envelope's `timestamp`, that is not an RFC 3339 timestamp.
    NotTimestamp,
    /// The envelope's `type` is not `opt_out.` and an event kind.
    NotEnvelopeType,
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotUtf8 => "not UTF-8 once percent-decoded",
            Self::NotString => "expected a JSON string",
            Self::NotAttributeValue => "expected a JSON string, number or boolean",
            Self::Attribute(error) => return fmt::Display::fmt(error, f),
            Self::Id(error) => return fmt::Display::fmt(error, f),
            Self::NotEventKind => "expected email_unsubscribe, email_abuse or sms_unsubscribe",
            Self::NotChannel => "expected email or sms",
            Self::NotOrigin => "expected communication, api or file_import",
            Self::NotTimestamp => "not an RFC 3339 timestamp such as 2026-11-26T09:30:00Z",
            Self::NotEnvelopeType => {
                "expected `opt_out.email_unsubscribe`, `opt_out.email_abuse` or \
                 `opt_out.sms_unsubscribe`"
            }
        })
    }
}
