//! Error types. Every error names what was wrong (which id, which field, which Subscription) so
//! that the input can be fixed, and none of them carries personal data whole.

use crate::model::{EventKind, FlowId, FolderId, ProfileId, SectionId, SubscriptionId};

/// What is wrong with an id value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdProblem {
    /// The value is the empty string.
    Empty,
    /// The value is longer than the limit.
    TooLong {
        /// The value's length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The value holds a control character (such as CR, LF, TAB or NUL).
    ControlCharacter {
        /// Byte offset of the first control character.
        position: usize,
    },
    /// The URL given holds no `subscription/<id>` path segments.
    NotInUrl,
}

impl std::fmt::Display for IdProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::TooLong { len, max } => write!(f, "it is {len} bytes long, the limit is {max}"),
            Self::ControlCharacter { position } => {
                write!(f, "it holds a control character at byte {position}")
            }
            Self::NotInUrl => f.write_str("the URL has no `subscription/<id>` path segment"),
        }
    }
}

/// An id value was rejected. The value itself is not repeated (a Profile id may be personal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {problem}")]
pub struct IdError {
    /// Which id type was being made, such as `"subscription id"`.
    pub kind: &'static str,
    /// What is wrong with the value.
    pub problem: IdProblem,
}

/// What makes a text not an email address ([`crate::Email::new`]): one variant per rule of
/// RFC 5321 and RFC 5322 (with RFC 6531's UTF-8) that it breaks. `Display` names the rule, never
/// the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmailProblem {
    /// Longer than [`crate::MAX_EMAIL_LEN`] bytes (RFC 5321's path limit less the brackets).
    TooLong,
    /// A control character (CR, LF, NUL, DEL, ...) anywhere, even inside quotes. A tab is
    /// allowed inside a quoted local part only.
    ControlCharacter,
    /// No `@` outside quotes.
    NoAt,
    /// Nothing before the `@`.
    EmptyLocalPart,
    /// More than 64 bytes before the `@` (RFC 5321).
    LocalPartTooLong,
    /// A local part opens a quote it never closes.
    UnbalancedQuote,
    /// A quoted local part goes on after its closing quote (`"a"b@example.com`).
    TextAfterQuote,
    /// An unquoted local part holds whitespace or one of `( ) < > [ ] : ; @ \ , "` (these need
    /// quotes: `"a b"@example.com`).
    UnquotedSpecial,
    /// Nothing after the `@`.
    EmptyDomain,
    /// The domain has an empty label: two dots in a row, or a dot at its start or end.
    EmptyDomainLabel,
    /// A domain label holds a character other than letters, digits and `-` (non-ASCII letters
    /// are allowed: RFC 6531 U-labels).
    DomainCharacter,
    /// A domain label starts or ends with `-` (RFC 1035, RFC 5321 `Ldh-str`).
    DomainHyphen,
    /// A domain literal in brackets is not an IPv4 address, `IPv6:` and an IPv6 address, or a
    /// general `tag:text` literal.
    DomainLiteral,
}

impl std::fmt::Display for EmailProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TooLong => "it is longer than 254 bytes",
            Self::ControlCharacter => "it holds a control character",
            Self::NoAt => "it has no `@` outside quotes",
            Self::EmptyLocalPart => "it has nothing before the `@`",
            Self::LocalPartTooLong => "it has more than 64 bytes before the `@`",
            Self::UnbalancedQuote => "its local part opens a quote it does not close",
            Self::TextAfterQuote => "its quoted local part goes on after the closing quote",
            Self::UnquotedSpecial => {
                "its local part holds whitespace or one of `( ) < > [ ] : ; @ \\ , \"` \
                 outside quotes"
            }
            Self::EmptyDomain => "it has no domain after the `@`",
            Self::EmptyDomainLabel => "its domain has an empty label",
            Self::DomainCharacter => {
                "its domain holds a character other than letters, digits, `-` and `.`"
            }
            Self::DomainHyphen => "a label of its domain starts or ends with `-`",
            Self::DomainLiteral => {
                "its domain literal is not an IPv4 address, `IPv6:` and an IPv6 address, or \
                 `tag:text`"
            }
        })
    }
}

/// What makes a text not a phone number at all ([`crate::Mobile::new`]). A number that is
/// merely not normalizable is not a problem: it is kept as given. `Display` names the rule,
/// never the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MobileProblem {
    /// Empty, or only whitespace.
    Empty,
    /// A control character (CR, LF, NUL, ...).
    ControlCharacter,
    /// Longer than [`crate::MAX_MOBILE_LEN`] bytes.
    TooLong,
    /// Not one digit.
    NoDigit,
}

impl std::fmt::Display for MobileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "it is empty",
            Self::ControlCharacter => "it holds a control character",
            Self::TooLong => "it is longer than 64 bytes",
            Self::NoDigit => "it holds no digit",
        })
    }
}

/// A Profile attribute value (Email, Mobile, a custom attribute name) or a Region was rejected.
///
/// The rejected value is never repeated whole: it is personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// The text is not an email address.
    #[error("invalid email address: {reason}")]
    Email {
        /// The rule it breaks.
        reason: EmailProblem,
    },
    /// The text cannot be a phone number at all (empty, a control character, too long, no
    /// digit). A number that is merely not normalizable is accepted as given.
    #[error("invalid mobile number: {reason}")]
    Mobile {
        /// The rule it breaks.
        reason: MobileProblem,
    },
    /// A region code is not two ASCII letters, or not a region the phone-number metadata knows.
    #[error("invalid region: {reason}")]
    Region {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A custom attribute name is empty, too long or holds a control character.
    #[error("invalid attribute name: {reason}")]
    Name {
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A Profile read from JSON is inconsistent. Raised through serde: the message of the
/// deserializer's error is this error's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A key appears twice in one of the Profile's maps (`attributes`, `consent` or
    /// `section_opt_outs`). JSON readers keep the last silently, so a consent written opted in
    /// and then opted out would read as opted out: the Profile is refused instead. Neither the
    /// key nor the value is repeated.
    #[error(
        "`{field}` entry #{position} repeats the {key} of an earlier entry: each may appear once"
    )]
    DuplicateKey {
        /// The map: `attributes`, `consent` or `section_opt_outs`.
        field: &'static str,
        /// What its keys are: `attribute name`, `Subscription id` or `Section id`.
        key: &'static str,
        /// The repeating entry's position in the map, from 0.
        position: usize,
    },
}

/// A Section catalog (its Folders and Subscriptions) is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Two Folders of one Section share an id.
    #[error("folder `{folder}` appears twice in section `{section}`")]
    DuplicateFolder {
        /// The Section.
        section: SectionId,
        /// The repeated Folder id.
        folder: FolderId,
    },
    /// A Subscription is listed in two Folders (or twice in one), or in two Sections.
    #[error("subscription `{subscription}` appears twice (in section `{section}`)")]
    DuplicateSubscription {
        /// The Section where the second listing was found.
        section: SectionId,
        /// The repeated Subscription id.
        subscription: SubscriptionId,
    },
    /// Two Sections of a catalog share an id.
    #[error("section `{section}` appears twice in the catalog")]
    DuplicateSection {
        /// The repeated Section id.
        section: SectionId,
    },
}

/// A Profile id in `Debug` output, masked as [`ProfileId::masked`] does: `ProfileId("p***")`.
struct MaskedProfileId<'a>(&'a ProfileId);

impl std::fmt::Debug for MaskedProfileId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ProfileId").field(&self.0.masked()).finish()
    }
}

/// An opt-out event could not be applied to a Profile.
///
/// `Display` and `Debug` show Profile ids masked ([`ProfileId::masked`]): an id may be personal.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The event belongs to another Profile.
    #[error(
        "event for profile `{}` applied to profile `{}`",
        event_profile.masked(),
        profile.masked()
    )]
    ProfileMismatch {
        /// The Profile the event names.
        event_profile: ProfileId,
        /// The Profile it was applied to.
        profile: ProfileId,
    },
    /// The event belongs to another Section than the catalog given.
    #[error(
        "event of section `{event_section}` applied with the catalog of section `{catalog_section}`"
    )]
    SectionMismatch {
        /// The Section the event names.
        event_section: SectionId,
        /// The Section of the catalog given.
        catalog_section: SectionId,
    },
    /// The event's Subscription is not in the Section's catalog.
    #[error("subscription `{subscription}` is not in the catalog of section `{section}`")]
    UnknownSubscription {
        /// The Subscription the event names.
        subscription: SubscriptionId,
        /// The Section whose catalog was searched.
        section: SectionId,
    },
}

impl std::fmt::Debug for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
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
                catalog_section,
            } => f
                .debug_struct("SectionMismatch")
                .field("event_section", event_section)
                .field("catalog_section", catalog_section)
                .finish(),
            Self::UnknownSubscription {
                subscription,
                section,
            } => f
                .debug_struct("UnknownSubscription")
                .field("subscription", subscription)
                .field("section", section)
                .finish(),
        }
    }
}

/// An opt-out event's fields do not fit together (for example an Email - Unsubscribe without a
/// Subscription). Raised when an event is read from JSON or another wire form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The kind needs a field that is missing.
    #[error("an event of kind {kind} needs the field `{field}`")]
    MissingField {
        /// The event kind.
        kind: EventKind,
        /// The missing field.
        field: &'static str,
    },
    /// The kind does not take a field that is present.
    #[error("an event of kind {kind} does not take the field `{field}`")]
    UnexpectedField {
        /// The event kind.
        kind: EventKind,
        /// The field that must not be there.
        field: &'static str,
    },
}

/// A Listen node or flow definition is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// A Listen node takes no event kind.
    #[error("a listen node must take at least one event kind")]
    NoEventKind,
    /// A narrowing set (`subscriptions`, `folders`, `activities`, `origins`) is present but
    /// empty, which would match nothing. Leave it out to take any.
    #[error("`{field}` is empty and would match nothing; leave it out to take any")]
    EmptySet {
        /// The field: `subscriptions`, `folders`, `activities` or `origins`.
        field: &'static str,
    },
    /// An entry limit of zero entries, which would let nothing in.
    #[error("an entry limit must allow at least 1 entry")]
    ZeroEntries,
    /// An entry-limit time window that is zero or negative.
    #[error("an entry-limit window must be longer than zero")]
    NonPositiveWindow,
    /// An entry-limit window longer than [`EntryWindow::MAX`](crate::EntryWindow::MAX), 100
    /// years: leave the window out to count every entry ever.
    #[error(
        "an entry-limit window must be at most 100 years; leave `within` out to count every entry ever"
    )]
    WindowTooLong,
    /// An entry-limit window with a fraction of a second.
    #[error("an entry-limit window must be a whole number of seconds")]
    WindowFraction,
    /// An entry-limit window that is neither an ISO 8601 duration nor a friendly one (the text
    /// is not repeated).
    #[error(
        "an entry-limit window must be written like \"7 days\", \"1 week\", \"1 month\", \"1 year\", \"36 hours\" or in ISO 8601 (\"P7D\", \"P1W\", \"P1M\", \"P1Y\", \"PT36H\")"
    )]
    UnreadableWindow,
}

/// A [`Router`](crate::Router) could not be built from the flows given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// Two flows share an id.
    #[error("flow id `{flow}` is used by more than one flow")]
    DuplicateFlow {
        /// The repeated id.
        flow: FlowId,
    },
    /// A flow narrows by a Folder that the catalog does not hold in the flow's Section, so the
    /// flow could never match: every opt-out it was meant to take would be lost.
    #[error(
        "flow `{flow}` narrows by folder `{folder}`, which the catalog does not hold in section `{section}`"
    )]
    UnknownFolder {
        /// The flow.
        flow: FlowId,
        /// The Folder.
        folder: FolderId,
        /// The flow's Section.
        section: SectionId,
    },
}

/// A flow file could not be read. Names the JSON path of the problem (such as
/// `flows[2].listen.kinds[0]`), what is wrong, and where it is in the text.
///
/// It is built from what went wrong and where, never from a parser's message, and repeats no
/// value from the file: not a string, not a number, not an unknown key or variant name, not a
/// flow id. Its text is bounded (well under 1 KiB) however large the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem} (line {line}, column {column})")]
pub struct FlowFileError {
    /// The JSON path to the offending value, `.` for the whole document. An unknown field is
    /// reported at the object holding it; map keys are cut at 64 characters.
    pub path: String,
    /// What was wrong and what was expected.
    pub problem: FlowFileProblem,
    /// 1-based line of the problem, 0 when not known.
    pub line: usize,
    /// 1-based column of the problem, 0 when not known.
    pub column: usize,
}

/// What is wrong in a flow file ([`FlowFileError::problem`]). No variant holds a value from the
/// file: a value found is named by its kind only (`"a string"`, `"a number"`, `"an object"`...),
/// and what was expected comes from the format.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowFileProblem {
    /// The text is not valid JSON.
    Syntax,
    /// The text ends inside a JSON value.
    Eof,
    /// More text follows the JSON document.
    TrailingCharacters,
    /// A value of the wrong type.
    InvalidType {
        /// The kind of value found, such as `"a string"`.
        found: &'static str,
        /// What the format expects there, such as `"struct Flow"` or `"a sequence"`.
        expected: String,
    },
    /// A value of the right type that the format does not accept.
    InvalidValue {
        /// The kind of value found, such as `"a number"`.
        found: &'static str,
        /// What the format expects there, such as `"a nonzero u32"`.
        expected: String,
    },
    /// An array (or object) with the wrong number of elements.
    InvalidLength {
        /// How many there were.
        len: usize,
        /// What the format expects.
        expected: String,
    },
    /// A name that is none of the enum's variants (the name is not repeated: it may be a
    /// secret written in the wrong place).
    UnknownVariant {
        /// The variants accepted.
        expected: &'static [&'static str],
    },
    /// A key the object does not take (the key is not repeated, and the path names the object).
    UnknownField {
        /// The keys the object takes.
        expected: &'static [&'static str],
    },
    /// A required key is absent.
    MissingField {
        /// The key.
        field: &'static str,
    },
    /// A key appears twice in one object.
    DuplicateField {
        /// The key.
        field: &'static str,
    },
    /// A value the crate rejects, such as an empty id, an invalid parameter or header name, a
    /// URL with credentials or an empty `origins`: the reason, which never repeats the value.
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// The file's `version` is not one this crate reads (the number found is not repeated, as
    /// no value of the file is).
    Version {
        /// The version read, [`FLOW_FILE_VERSION`](crate::FLOW_FILE_VERSION).
        expected: u32,
    },
    /// Two flows share an id (the id is not repeated).
    DuplicateFlowId {
        /// The index of the earlier flow with that id, in `flows`.
        first: usize,
    },
}

/// serde's way of listing names: `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``.
fn one_of(f: &mut std::fmt::Formatter<'_>, names: &[&str]) -> std::fmt::Result {
    match names {
        [] => f.write_str("nothing"),
        [one] => write!(f, "`{one}`"),
        [a, b] => write!(f, "`{a}` or `{b}`"),
        _ => {
            f.write_str("one of ")?;
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "`{name}`")?;
            }
            Ok(())
        }
    }
}

impl std::fmt::Display for FlowFileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syntax => f.write_str("the text is not valid JSON"),
            Self::Eof => f.write_str("the text ends inside a JSON value"),
            Self::TrailingCharacters => f.write_str("more text follows the JSON document"),
            Self::InvalidType { found, expected } => {
                write!(f, "invalid type: {found}, expected {expected}")
            }
            Self::InvalidValue { found, expected } => {
                write!(f, "invalid value: {found}, expected {expected}")
            }
            Self::InvalidLength { len, expected } => {
                write!(f, "invalid length {len}, expected {expected}")
            }
            Self::UnknownVariant { expected } => {
                f.write_str("unknown variant, expected ")?;
                one_of(f, expected)
            }
            Self::UnknownField { expected } => {
                f.write_str("unknown field, expected ")?;
                one_of(f, expected)
            }
            Self::MissingField { field } => write!(f, "missing field `{field}`"),
            Self::DuplicateField { field } => write!(f, "duplicate field `{field}`"),
            Self::Invalid { reason } => f.write_str(reason),
            Self::Version { expected } => {
                write!(f, "unsupported flow-file version, expected {expected}")
            }
            Self::DuplicateFlowId { first } => {
                write!(f, "the flow id is already used by flows[{first}]")
            }
        }
    }
}

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
        /// `a control character` or `whitespace`.
        found: &'static str,
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
        /// The `http` crate's reason.
        reason: String,
    },
    /// A parameter name is empty, too long or holds a control character. The name is not
    /// repeated: an invalid one may be a value written in the wrong place.
    #[error("invalid parameter name: {reason}")]
    InvalidParamName {
        /// What is wrong with it.
        reason: &'static str,
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
        reason: &'static str,
    },
    /// A header value holds a CR, LF or another byte that is not visible ASCII, space or tab.
    #[error("{}: the value {reason}", HeaderAt(*.index))]
    InvalidHeaderValue {
        /// The header's position in `headers`, from 0; `None` for the `auth` header.
        index: Option<usize>,
        /// What is wrong with the value (which is not repeated).
        reason: &'static str,
    },
    /// A header the crate sets itself (such as `content-length`, `host`, `content-type`,
    /// `authorization` or the `webhook-*` signature headers) was configured.
    #[error("header `{name}` is set by the crate and cannot be configured: {hint}")]
    ReservedHeader {
        /// The reserved header's name (the crate's, lower case).
        name: &'static str,
        /// What to do instead.
        hint: &'static str,
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
        method: crate::WebhookMethod,
        /// The body encoding.
        encoding: crate::WebhookEncoding,
    },
    /// The `auth` setting is invalid.
    #[error("invalid auth ({scheme}): {reason}")]
    InvalidAuth {
        /// `bearer`, `basic` or `header`.
        scheme: &'static str,
        /// What is wrong (the secret is not repeated).
        reason: &'static str,
    },
    /// A signing secret is not `whsec_` followed by the base64 of 24 to 64 bytes.
    #[error("signing secret #{index}: {reason}")]
    InvalidSigningSecret {
        /// Its position in the list, from 0.
        index: usize,
        /// What is wrong (the secret is not repeated).
        reason: &'static str,
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
        param_source: crate::ParamSource,
        /// Why there is no value.
        reason: &'static str,
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
        /// The `http` crate's reason.
        reason: String,
    },
}

impl std::fmt::Debug for RequestBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

/// An incoming webhook failed Standard Webhooks verification
/// ([`crate::receive::Verifier::verify`], feature `signing`).
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
        reason: &'static str,
    },
    /// `webhook-timestamp` is not a whole number of seconds since the Unix epoch.
    #[error("the `webhook-timestamp` header is not a number of seconds since 1970-01-01T00:00:00Z")]
    InvalidTimestamp,
    /// `webhook-timestamp` is further in the past than the tolerance: a replay, or a sender whose
    /// clock is far behind.
    #[error("the webhook was signed {age:#} ago, longer than the tolerance of {tolerance:#}")]
    TooOld {
        /// How long before `now` it was signed.
        age: jiff::SignedDuration,
        /// The tolerance.
        tolerance: jiff::SignedDuration,
    },
    /// `webhook-timestamp` is further in the future than the tolerance: a sender whose clock is
    /// far ahead.
    #[error(
        "the webhook is timestamped {ahead:#} in the future, more than the tolerance of {tolerance:#}"
    )]
    TooNew {
        /// How far after `now` it is timestamped.
        ahead: jiff::SignedDuration,
        /// The tolerance.
        tolerance: jiff::SignedDuration,
    },
    /// No signature in `webhook-signature` is a valid signature of this id, timestamp and body
    /// by any of the secrets (or no secret is configured).
    #[error("no signature matches: the body, id or timestamp was changed, or the secret differs")]
    NoMatchingSignature,
}

/// An incoming opt-out webhook could not be turned into an [`crate::OptOutNotice`]
/// ([`crate::NoticeParser::parse`]).
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
        encoding: crate::WebhookEncoding,
        /// The media type the encoding expects.
        expected: &'static str,
        /// The media type found (escaped, cut at 64 characters).
        found: String,
    },
    /// The body is not what the encoding expects (not JSON, not a JSON object, an envelope
    /// without a `data` object).
    #[error("the {encoding} body is malformed: {reason}")]
    MalformedBody {
        /// The parser's encoding.
        encoding: crate::WebhookEncoding,
        /// What is wrong (no value is repeated).
        reason: String,
    },
    /// A required parameter is absent.
    #[error("parameter `{param}` (source {param_source}) is missing")]
    MissingParameter {
        /// The parameter name.
        param: String,
        /// What it carries.
        param_source: crate::ParamSource,
    },
    /// The event kind needs a parameter that is absent (the Subscription of an unsubscribe, the
    /// Section of a spam complaint).
    #[error(
        "an {kind} opt-out needs parameter `{param}` (source {param_source}), which is missing"
    )]
    MissingForKind {
        /// The event kind.
        kind: crate::EventKind,
        /// The parameter name.
        param: String,
        /// What it carries.
        param_source: crate::ParamSource,
    },
    /// The event kind needs a value that no parameter of the mapping carries.
    #[error("an {kind} opt-out needs its {param_source}, and no parameter is mapped to it")]
    NotMapped {
        /// The event kind.
        kind: crate::EventKind,
        /// The source no parameter carries.
        param_source: crate::ParamSource,
    },
    /// A parameter is sent more than once with different values.
    #[error("parameter `{param}` is sent more than once with different values")]
    Repeated {
        /// The parameter name.
        param: String,
    },
    /// A parameter disagrees with another one, with the envelope, or with the parser's fixed
    /// kind.
    #[error("parameter `{param}` disagrees with {with}")]
    Conflict {
        /// The parameter name.
        param: String,
        /// What it disagrees with, such as "`type`" or "the fixed kind Email - Unsubscribe".
        with: String,
    },
    /// A parameter's value is invalid.
    #[error("parameter `{param}`: {reason}")]
    InvalidValue {
        /// The parameter name.
        param: String,
        /// What is wrong (the value is not repeated).
        reason: String,
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

/// "header #N", or "the auth header", in error messages.
struct HeaderAt(Option<usize>);

impl std::fmt::Display for HeaderAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(index) => write!(f, "header #{index}"),
            None => f.write_str("the auth header"),
        }
    }
}
