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
    /// Longer than [`crate::model::MAX_EMAIL_LEN`] bytes (RFC 5321's path limit less the brackets).
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
    /// Longer than [`crate::model::MAX_MOBILE_LEN`] bytes.
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
    /// An entry-limit window longer than [`EntryWindow::MAX`](crate::listen::EntryWindow::MAX), 100
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
        /// The version read, [`FLOW_FILE_VERSION`](crate::listen::FLOW_FILE_VERSION).
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
