//! A rejected Profile attribute (Email, Mobile, custom attribute name) or Region, and a Profile
//! read from JSON that is inconsistent. None repeats the rejected value: it is personal data.

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
        reason: RegionProblem,
    },
    /// A custom attribute name is empty, too long or holds a control character.
    #[error("invalid attribute name: {reason}")]
    Name {
        /// What is wrong with it.
        reason: AttributeNameProblem,
    },
}

/// What makes a text not a region code ([`Region::new`](crate::model::Region::new)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegionProblem {
    /// Not two ASCII letters (an ISO 3166-1 alpha-2 code such as `SE`).
    NotTwoLetters,
    /// Two letters, but not a region the phone-number metadata knows (feature `phonenumber`).
    UnknownRegion,
}

impl std::fmt::Display for RegionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotTwoLetters => {
                "it is not two ASCII letters (an ISO 3166-1 alpha-2 code such as `SE`)"
            }
            Self::UnknownRegion => "it is not a region the phone-number metadata knows",
        })
    }
}

/// What makes a text not a custom attribute name
/// ([`AttributeName::new`](crate::model::AttributeName::new)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttributeNameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_ATTRIBUTE_NAME_LEN`](crate::model::MAX_ATTRIBUTE_NAME_LEN)
    /// bytes.
    TooLong,
    /// The name holds a control character.
    ControlCharacter,
}

impl std::fmt::Display for AttributeNameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "it is empty",
            Self::TooLong => "longer than 128 bytes",
            Self::ControlCharacter => "holds a control character",
        })
    }
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
