//! Profiles: a person's id, typed Email and Mobile attributes, custom attributes, and consent per
//! Subscription and Channel.
//!
//! Email, Mobile and custom attribute values are personal data: their `Debug` and `Display`
//! output is masked. The whole value is only available through an explicit accessor
//! ([`Email::as_str`], [`Mobile::as_str`], [`AttributeValue::to_text`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::error::{
    AttributeError, AttributeNameProblem, EmailProblem, MobileProblem, ProfileError, RegionProblem,
};
use crate::model::ids::{EventId, ProfileId, SectionId, SubscriptionId};
use crate::model::kind::Channel;
use crate::model::mask::mask_prefix;

/// The longest email address accepted, in bytes (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// The longest local part (before the `@`) accepted, in bytes (RFC 5321).
const MAX_LOCAL_PART_LEN: usize = 64;

/// The Profile's Email attribute: an email address, or, when a Profile read from JSON holds
/// something that is not one, that text kept as given.
///
/// [`Email::new`] accepts every mailbox RFC 5321 allows (a dot-string or quoted-string local
/// part, as RFC 5322's addr-spec writes it), with RFC 6531's UTF-8, and rejects only what cannot
/// be an address (an [`EmailProblem`] names the rule). RFC 5322's comments
/// (`john(comment)@example.com`) and obsolete forms (`"a".b@example.com`) are not addresses a
/// mail system sends to, and are refused.
///
/// - the local part (before the `@`) is either quoted or unquoted. Quoted, it is an RFC 5322
///   quoted string: any character but a control character (a tab is allowed), with `\"` and
///   `\\` for a quote and a backslash, so `"o'neil & co=1#x"@example.com`, `"a@b"@example.com`
///   and `"john doe"@example.com` are addresses; the `@` is the first one after the closing
///   quote. Unquoted, it holds letters, digits, ``!#$%&'*+-/=?^_`{|}~``, `.` and any non-ASCII
///   character (`用户`, `Pelé`), and the `@` is the last one. Dots may lead, trail or double
///   (`john..doe@docomo.ne.jp`): RFC 5322 forbids it, but some mail systems issued such
///   addresses and platforms hold them. At most 64 bytes.
/// - the domain is a domain name of non-empty dot-separated labels of letters, digits and `-`
///   (not first or last) or non-ASCII characters (U-labels: `例子.广告`), without a trailing dot
///   (RFC 5321 has none in an address); or a domain literal: `[192.0.2.1]`,
///   `[IPv6:2001:db8::1]` (both checked as IP addresses) or `[tag:text]`.
/// - no control character anywhere (CR, LF, NUL, even inside quotes), at most
///   [`MAX_EMAIL_LEN`] bytes.
///
/// The address is kept as given (no case folding: the local part is case-sensitive), without the
/// whitespace (or byte-order mark) around it, which is never part of an address:
/// `" ada@example.com\r\n"` is `ada@example.com`.
///
/// Reading JSON (serde) never fails on the shape of the text: a Profile holding an Email that is
/// not an address is still read, so its opt-outs are still relayed. Such a value
/// ([`Email::lenient`]) says why it is not an address ([`Email::problem`]), is written back
/// as given, and is never sent: a flow that sends the Email fails to build
/// ([`RequestBuildError::EmailNotAddress`](crate::webhook::RequestBuildError::EmailNotAddress)), flows
/// that send the Profile id or the Mobile still deliver.
///
/// `Debug` and `Display` are masked (`a***@e***.com`); [`Email::as_str`] gives the text.
///
/// ```
/// use optout_relay::Email;
/// use optout_relay::model::{AttributeError, EmailProblem};
///
/// let email = Email::new("a+b@example.com")?;
/// assert_eq!(email.as_str(), "a+b@example.com");
/// assert_eq!(email.to_string(), "a***@e***.com");
/// let quoted = Email::new(r#""a@b"@example.com"#)?;
/// assert_eq!(quoted.to_string(), r#""***@e***.com"#);
/// assert_eq!(
///     Email::new("a b@example.com"),
///     Err(AttributeError::Email { reason: EmailProblem::UnquotedSpecial })
/// );
/// let kept = Email::lenient("not an address");
/// assert_eq!(kept.problem(), Some(EmailProblem::NoAt));
/// assert_eq!(kept.to_string(), "n***");
/// # Ok::<(), optout_relay::model::AttributeError>(())
/// ```
#[derive(Clone)]
pub struct Email {
    text: Arc<str>,
    /// The byte offset of the address's `@`, or why the text is not an address.
    at: Result<usize, EmailProblem>,
}

impl Email {
    /// Validates an email address.
    ///
    /// # Errors
    ///
    /// [`AttributeError::Email`] with the rule broken (never repeating the address).
    pub fn new(value: impl Into<String>) -> Result<Self, AttributeError> {
        let email = Self::lenient(value);
        match email.at {
            Ok(_) => Ok(email),
            Err(reason) => Err(AttributeError::Email { reason }),
        }
    }

    /// Keeps any text, address or not: an address is checked as [`Email::new`] checks it,
    /// anything else is kept as given with its [`Email::problem`]. This is how JSON is read.
    pub fn lenient(value: impl Into<String>) -> Self {
        let value = value.into();
        let trimmed = trim_around(&value);
        match find_at(trimmed) {
            Ok(at) => Self {
                text: Arc::from(trimmed),
                at: Ok(at),
            },
            Err(problem) => Self {
                text: Arc::from(value),
                at: Err(problem),
            },
        }
    }

    /// Whether the text is an email address (always, from [`Email::new`]).
    pub fn is_address(&self) -> bool {
        self.at.is_ok()
    }

    /// Why the text is not an email address, or `None` when it is one.
    pub fn problem(&self) -> Option<EmailProblem> {
        self.at.err()
    }

    /// The whole text, as given. Personal data: do not log it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text, shared (no copy).
    pub(crate) fn shared(&self) -> Arc<str> {
        Arc::clone(&self.text)
    }

    /// The text masked for logs and previews. An address shows the first character of its
    /// local part, the first character of its domain and its last label, as in
    /// `a***@e***.com` (`"***@e***.com` for `"a@b"@example.com`, `u***@[***` for a domain
    /// literal); a text that is not an address shows its first character (`n***`).
    pub fn masked(&self) -> String {
        let Ok(at) = self.at else {
            return mask_prefix(&self.text, 1);
        };
        let (local, domain) = (&self.text[..at], &self.text[at + 1..]);
        let (name, tld) = if domain.starts_with('[') {
            (domain, "")
        } else {
            domain.rsplit_once('.').unwrap_or((domain, ""))
        };
        let mut masked = mask_prefix(local, 1);
        masked.push('@');
        // The first character of the name only when it is long enough not to give it away.
        masked.push_str(&mask_prefix(name, 1));
        if !tld.is_empty() {
            masked.push('.');
            masked.push_str(tld);
        }
        masked
    }
}

/// Finds the `@` that separates the local part from the domain, checking both.
fn find_at(value: &str) -> Result<usize, EmailProblem> {
    if value.len() > MAX_EMAIL_LEN {
        return Err(EmailProblem::TooLong);
    }
    // A tab is whitespace, allowed inside quotes only (checked below).
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(EmailProblem::ControlCharacter);
    }
    let at = if value.starts_with('"') {
        let close = closing_quote(value).ok_or(EmailProblem::UnbalancedQuote)?;
        let after = &value[close + 1..];
        if after.starts_with('@') {
            close + 1
        } else if after.contains('@') {
            return Err(EmailProblem::TextAfterQuote);
        } else {
            return Err(EmailProblem::NoAt);
        }
    } else {
        let at = value.rfind('@').ok_or(EmailProblem::NoAt)?;
        let local = &value[..at];
        if local.is_empty() {
            return Err(EmailProblem::EmptyLocalPart);
        }
        if local.chars().any(is_unquoted_special) {
            return Err(EmailProblem::UnquotedSpecial);
        }
        at
    };
    if at > MAX_LOCAL_PART_LEN {
        return Err(EmailProblem::LocalPartTooLong);
    }
    check_domain(&value[at + 1..])?;
    Ok(at)
}

/// The byte offset of the quote closing the quoted string `value` starts with, skipping
/// quoted pairs (`\"`, `\\`).
fn closing_quote(value: &str) -> Option<usize> {
    let mut chars = value.char_indices().skip(1);
    while let Some((index, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next()?;
            }
            '"' => return Some(index),
            _ => {}
        }
    }
    None
}

/// A character an unquoted local part cannot hold: RFC 5322 specials but `.`, and whitespace.
fn is_unquoted_special(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '(' | ')' | '<' | '>' | '[' | ']' | ':' | ';' | '@' | '\\' | ',' | '"'
        )
}

/// Checks a domain name or a domain literal.
fn check_domain(domain: &str) -> Result<(), EmailProblem> {
    if domain.is_empty() {
        return Err(EmailProblem::EmptyDomain);
    }
    if let Some(literal) = domain.strip_prefix('[') {
        return match literal.strip_suffix(']') {
            Some(inner) if is_domain_literal(inner) => Ok(()),
            _ => Err(EmailProblem::DomainLiteral),
        };
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(EmailProblem::EmptyDomainLabel);
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || is_u_label_char(c);
        if !label.chars().all(allowed) {
            return Err(EmailProblem::DomainCharacter);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(EmailProblem::DomainHyphen);
        }
    }
    Ok(())
}

/// A non-ASCII character of a U-label (RFC 6531): anything but whitespace.
fn is_u_label_char(c: char) -> bool {
    !c.is_ascii() && !c.is_whitespace()
}

/// The inside of `[...]`: an IPv4 address, `IPv6:` and an IPv6 address, or RFC 5321's
/// general literal `tag:text` (the tag letters, digits and inner `-`, the text visible ASCII
/// but `[`, `]` and `\`).
fn is_domain_literal(inner: &str) -> bool {
    if inner.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let Some((tag, text)) = inner.split_once(':') else {
        return false;
    };
    if tag.eq_ignore_ascii_case("IPv6") {
        return text.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let tag_ok = !tag.is_empty()
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !tag.ends_with('-');
    let text_ok = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b'\\'));
    tag_ok && text_ok
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Email {}

impl PartialOrd for Email {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Email {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.masked()).finish()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl TryFrom<String> for Email {
    type Error = AttributeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.text.as_ref().to_owned()
    }
}

impl std::str::FromStr for Email {
    type Err = AttributeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for Email {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Any string is read, address or not ([`Email::lenient`]).
impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::lenient)
    }
}

/// The longest mobile number text accepted, in bytes.
pub const MAX_MOBILE_LEN: usize = 64;

/// A region, for reading phone numbers written in national form: an ISO 3166-1 alpha-2 code
/// such as `SE`, normalized to uppercase.
///
/// With the `phonenumber` feature (on by default), a code libphonenumber's metadata does not
/// know is refused too; without it, any two ASCII letters are accepted.
///
/// ```
/// use optout_relay::model::Region;
///
/// let region: Region = "se".parse()?;
/// assert_eq!(region.as_str(), "SE");
/// assert_eq!(region.to_string(), "SE");
/// assert!(Region::new("S").is_err());
/// # Ok::<(), optout_relay::model::AttributeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region([u8; 2]);

impl Region {
    /// Reads a two-letter region code, in any case.
    ///
    /// # Errors
    ///
    /// [`AttributeError::Region`] when the code is not two ASCII letters, or (feature
    /// `phonenumber`) not a region the phone-number metadata knows.
    pub fn new(code: &str) -> Result<Self, AttributeError> {
        let fail = |reason| Err(AttributeError::Region { reason });
        let region = match code.as_bytes() {
            &[first, second] if first.is_ascii_alphabetic() && second.is_ascii_alphabetic() => {
                Self([first.to_ascii_uppercase(), second.to_ascii_uppercase()])
            }
            _ => {
                return fail(RegionProblem::NotTwoLetters);
            }
        };
        #[cfg(feature = "phonenumber")]
        if region.id().is_none() {
            return fail(RegionProblem::UnknownRegion);
        }
        Ok(region)
    }

    /// The code, two uppercase ASCII letters.
    pub fn as_str(&self) -> &str {
        // Two ASCII letters, checked by `new`.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The metadata's id for this region.
    #[cfg(feature = "phonenumber")]
    fn id(self) -> Option<phonenumber::country::Id> {
        self.as_str().parse().ok()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Region").field(&self.as_str()).finish()
    }
}

impl std::str::FromStr for Region {
    type Err = AttributeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The Profile's Mobile attribute: a phone number, in its E.164 form (`+46701234567`) when it
/// could be normalized with certainty, else as given (without the whitespace around it).
///
/// An opt-out is never refused or rewritten because of how a number was typed. A number is
/// normalized only when it holds nothing but digits and typed separators (`+`, whitespace, `-`,
/// `.`, `/`, parentheses), libphonenumber's metadata (feature `phonenumber`, on by default)
/// reads it as a valid number, and a `(0)` in it does not allow two different valid readings:
/// `+39 (0)6 6982 1234` and `+39 06 6982 1234` both become `+390669821234` (Italy keeps its 0),
/// `+46 (0)70-123 45 67` becomes `+46701234567` (Sweden's trunk 0 goes). Anything else is kept
/// as given: a national form without a region (`070-123 45 67`; [`Mobile::with_region`] reads
/// it), a number the metadata finds invalid or does not know, a text with a letter (an `O`
/// typed for a `0` would be read as a keypad digit, `ext.`, `tel:`), `+39 (0)341 123 4567`
/// (a landline with the 0, a mobile without it). Without the feature, nothing is normalized
/// (nothing is guessed).
///
/// Two values are equal when [`Mobile::as_str`] is: two typings of one number are equal once
/// normalized. JSON holds [`Mobile::as_str`] and is read with [`Mobile::lenient`]: a Profile
/// whose Mobile cannot be a number at all (`""`, `"n/a"`) is still read, its text kept as given
/// with its [`Mobile::problem`], and never sent: a flow that sends the Mobile fails to build
/// ([`RequestBuildError::MobileNotNumber`](crate::webhook::RequestBuildError::MobileNotNumber)), flows
/// that send the Profile id or the Email still deliver.
///
/// `Debug` and `Display` are masked (`+46*******67`, or `***67` for a number kept as given);
/// [`Mobile::as_str`] gives the number.
///
/// ```
/// use optout_relay::Mobile;
/// use optout_relay::model::Region;
///
/// let mobile = Mobile::new("+46 (0)70-123 45 67")?;
/// let national = Mobile::with_region("070-123 45 67", Region::new("SE")?)?;
/// let kept = Mobile::new("070-123 45 67")?;
/// assert_eq!(kept.as_str(), "070-123 45 67");
/// assert!(!kept.is_normalized());
/// assert_eq!(kept.to_string(), "***67");
/// # #[cfg(feature = "phonenumber")] {
/// assert_eq!(mobile.as_str(), "+46701234567");
/// assert_eq!(mobile.as_given(), "+46 (0)70-123 45 67");
/// assert_eq!(national, mobile);
/// assert_eq!(mobile.to_string(), "+46*******67");
/// # }
/// # Ok::<(), optout_relay::model::AttributeError>(())
/// ```
#[derive(Clone)]
pub struct Mobile {
    given: Arc<str>,
    /// What is sent: the E.164 form when normalized, else the text as given without the
    /// whitespace around it (or exactly as given when it cannot be a number).
    value: Arc<str>,
    normalized: bool,
    /// Why the text cannot be a number (only from [`Mobile::lenient`]).
    problem: Option<MobileProblem>,
}

impl Mobile {
    /// Reads a mobile number, normalizing it when it is written in international form (`+` and
    /// the country code) and the metadata is certain of it; otherwise keeps it as given.
    ///
    /// # Errors
    ///
    /// [`AttributeError::Mobile`] only for what cannot be a number at all: an empty or blank
    /// text, a control character, more than 64 bytes, no digit. Never repeats the number.
    pub fn new(value: impl AsRef<str>) -> Result<Self, AttributeError> {
        Self::read(value.as_ref(), None).map_err(|reason| AttributeError::Mobile { reason })
    }

    /// Reads a mobile number as [`Mobile::new`] does, and also normalizes national forms
    /// written as in `region` (`070-123 45 67` or `0046 70 123 45 67` in `SE` is
    /// `+46701234567`).
    ///
    /// # Errors
    ///
    /// As [`Mobile::new`].
    pub fn with_region(value: impl AsRef<str>, region: Region) -> Result<Self, AttributeError> {
        Self::read(value.as_ref(), Some(region)).map_err(|reason| AttributeError::Mobile { reason })
    }

    /// Keeps any text, number or not: a number is read as [`Mobile::new`] reads it, anything
    /// else is kept as given with its [`Mobile::problem`] (and is never sent). This is how JSON
    /// is read.
    pub fn lenient(value: impl AsRef<str>) -> Self {
        let value = value.as_ref();
        Self::read(value, None).unwrap_or_else(|problem| {
            let given: Arc<str> = Arc::from(value);
            Self {
                value: Arc::clone(&given),
                given,
                normalized: false,
                problem: Some(problem),
            }
        })
    }

    /// Why the text cannot be a phone number, or `None` when it can (always `None` from
    /// [`Mobile::new`]).
    pub fn problem(&self) -> Option<MobileProblem> {
        self.problem
    }

    fn read(value: &str, region: Option<Region>) -> Result<Self, MobileProblem> {
        if value.len() > MAX_MOBILE_LEN {
            return Err(MobileProblem::TooLong);
        }
        // Whitespace around a number (a CSV's line end, a stray space) is not part of it.
        let text = trim_around(value);
        if text.chars().any(char::is_control) {
            return Err(MobileProblem::ControlCharacter);
        }
        if text.is_empty() {
            return Err(MobileProblem::Empty);
        }
        if !text.chars().any(char::is_numeric) {
            return Err(MobileProblem::NoDigit);
        }
        let given: Arc<str> = Arc::from(value);
        let (value, normalized) = match normalize_certain(text, region) {
            Some(e164) => (Arc::from(e164), true),
            None if text.len() == given.len() => (Arc::clone(&given), false),
            None => (Arc::from(text), false),
        };
        Ok(Self {
            given,
            value,
            normalized,
            problem: None,
        })
    }

    /// The number: its E.164 form when normalized, else the text as given (without the
    /// whitespace around it). This is what is sent and stored. Personal data: do not log it.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The text exactly as given, before any normalization.
    pub fn as_given(&self) -> &str {
        &self.given
    }

    /// The E.164 form (`+46701234567`), when the number could be normalized with certainty.
    pub fn e164(&self) -> Option<&str> {
        self.normalized.then_some(&*self.value)
    }

    /// Whether the number is normalized (in E.164 form).
    pub fn is_normalized(&self) -> bool {
        self.normalized
    }

    /// The number, shared (no copy).
    pub(crate) fn shared(&self) -> Arc<str> {
        Arc::clone(&self.value)
    }

    /// The number masked for logs and previews. In E.164 form of at least 10 digits: `+`, the
    /// first two and the last two digits (`+46*******67`); a shorter one shows its last two
    /// only (`+***02`). Any other text shows its last two digits (`***67`), or `***` when it
    /// holds fewer than 6 digits or cannot be a number.
    pub fn masked(&self) -> String {
        if self.problem.is_some() {
            return "***".to_owned();
        }
        mask_number(&self.value)
    }
}

/// Masks a phone number's text. In E.164 form (`+` and digits) of at least 10 digits: `+`,
/// the first two and the last two digits (`+46*******67`); a shorter one shows its last two
/// only (`+***02`). Any other text shows its last two digits (`***67`), or `***` when it holds
/// fewer than 6 digits.
pub(crate) fn mask_number(text: &str) -> String {
    let e164 = text
        .strip_prefix('+')
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    if let Some(digits) = e164 {
        let mut masked = String::with_capacity(text.len());
        masked.push('+');
        if digits.len() >= 10 {
            masked.push_str(&digits[..2]);
            masked.extend(std::iter::repeat_n('*', digits.len() - 4));
        } else {
            masked.push_str("***");
        }
        if digits.len() >= 6 {
            masked.push_str(&digits[digits.len() - 2..]);
        }
        return masked;
    }
    let digits: Vec<char> = text.chars().filter(char::is_ascii_digit).collect();
    let mut masked = String::from("***");
    if digits.len() >= 6 {
        masked.extend(&digits[digits.len() - 2..]);
    }
    masked
}

/// `value` without the whitespace (and byte-order mark) around it.
fn trim_around(value: &str) -> &str {
    value.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// The E.164 form of `text` when it is certain:
///
/// - the text holds only digits and the separators people type (`+`, whitespace, `-`, `.`,
///   `/`, `(`, `)`): a letter (a keypad letter, an `O` typed for a `0`, `ext.`) would be read
///   as some digit, so such a text is never rewritten;
/// - the metadata reads it as a valid number without an extension;
/// - when it holds `(0)`, reading it with and without that 0 does not give two different
///   valid numbers (`+39 (0)341 123 4567` could be a landline with the 0 or a mobile without
///   it: kept as given; `+44 (0)20 …` is the same number either way).
fn normalize_certain(text: &str, region: Option<Region>) -> Option<String> {
    let typed = |c: char| {
        c.is_ascii_digit() || c.is_whitespace() || matches!(c, '+' | '-' | '.' | '/' | '(' | ')')
    };
    if !text.chars().all(typed) {
        return None;
    }
    let read = normalize(text, region);
    if !text.contains("(0)") {
        return read;
    }
    match (read, normalize(&text.replace("(0)", ""), region)) {
        (Some(with), Some(without)) => (with == without).then_some(with),
        (with, without) => with.or(without),
    }
}

/// The E.164 form of `text` when the metadata reads it as a valid number without an extension.
#[cfg(feature = "phonenumber")]
fn normalize(text: &str, region: Option<Region>) -> Option<String> {
    let number = phonenumber::parse(region.and_then(Region::id), text).ok()?;
    if number.extension().is_some() || !phonenumber::is_valid(&number) {
        return None;
    }
    Some(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Without metadata, nothing is normalized: nothing is guessed.
#[cfg(not(feature = "phonenumber"))]
fn normalize(_text: &str, _region: Option<Region>) -> Option<String> {
    None
}

impl PartialEq for Mobile {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Mobile {}

impl PartialOrd for Mobile {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Mobile {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Mobile {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Mobile").field(&self.masked()).finish()
    }
}

impl fmt::Display for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl TryFrom<String> for Mobile {
    type Error = AttributeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl Serialize for Mobile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Any string is read, number or not ([`Mobile::lenient`]); so is a whole number (a
/// spreadsheet's `46701234567`), as its digits.
impl<'de> Deserialize<'de> for Mobile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MobileVisitor;

        impl serde::de::Visitor<'_> for MobileVisitor {
            type Value = Mobile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a phone number, as text or a whole number")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Mobile, E> {
                Ok(Mobile::lenient(text))
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Mobile, E> {
                Ok(Mobile::lenient(number.to_string()))
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Mobile, E> {
                Ok(Mobile::lenient(number.to_string()))
            }
        }

        deserializer.deserialize_any(MobileVisitor)
    }
}

impl From<Mobile> for String {
    fn from(mobile: Mobile) -> Self {
        mobile.as_str().to_owned()
    }
}

impl std::str::FromStr for Mobile {
    type Err = AttributeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The longest custom attribute name accepted, in bytes.
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 128;

/// The name of a custom Profile attribute, such as `first_name` or `crm_id`.
/// Non-empty, at most [`MAX_ATTRIBUTE_NAME_LEN`] bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AttributeName(Box<str>);

impl AttributeName {
    /// Validates an attribute name.
    ///
    /// # Errors
    ///
    /// [`AttributeError::Name`] when the name is empty, too long or holds a control character.
    pub fn new(value: impl Into<String>) -> Result<Self, AttributeError> {
        let value = value.into();
        let fail = |reason| Err(AttributeError::Name { reason });
        if value.is_empty() {
            return fail(AttributeNameProblem::Empty);
        }
        if value.len() > MAX_ATTRIBUTE_NAME_LEN {
            return fail(AttributeNameProblem::TooLong);
        }
        if value.chars().any(char::is_control) {
            return fail(AttributeNameProblem::ControlCharacter);
        }
        Ok(Self(value.into_boxed_str()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AttributeName {
    type Error = AttributeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<AttributeName> for String {
    fn from(name: AttributeName) -> Self {
        name.0.into_string()
    }
}

impl std::borrow::Borrow<str> for AttributeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The value of a custom Profile attribute: text, a number or a boolean, as in JSON.
///
/// Personal data: `Debug` shows only the type and size, never the value.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AttributeValue {
    /// A boolean.
    Bool(bool),
    /// A number, as JSON reads it (exactly: `0.1` stays `0.1`; `1.50` is written back `1.5`).
    Number(serde_json::Number),
    /// Text.
    Text(String),
}

impl AttributeValue {
    /// The value as text, as it is sent in a query string or form: text as is, numbers as
    /// written, `true` or `false`. Personal data: do not log it.
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Text(text) => std::borrow::Cow::Borrowed(text),
            Self::Number(number) => std::borrow::Cow::Owned(number.to_string()),
            Self::Bool(true) => std::borrow::Cow::Borrowed("true"),
            Self::Bool(false) => std::borrow::Cow::Borrowed("false"),
        }
    }
}

impl fmt::Debug for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => write!(f, "Text([masked, {} chars])", text.chars().count()),
            Self::Number(_) => f.write_str("Number([masked])"),
            Self::Bool(_) => f.write_str("Bool([masked])"),
        }
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for AttributeValue {
    fn from(value: i64) -> Self {
        Self::Number(value.into())
    }
}

/// A Profile's consent to one Subscription on one Channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConsentState {
    /// The Profile may be sent messages.
    OptedIn,
    /// The Profile opted out.
    OptedOut {
        /// The opt-out event that revoked consent, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<EventId>,
        /// When consent was revoked, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<Timestamp>,
    },
}

/// A Profile's consent to one Subscription, per Channel. `None` means no consent was ever
/// recorded for that channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct ChannelConsent {
    /// Email consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<ConsentState>,
    /// SMS consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<ConsentState>,
}

impl ChannelConsent {
    /// The consent on `channel`.
    pub fn get(&self, channel: Channel) -> Option<&ConsentState> {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
        }
    }

    /// The consent slot of `channel`, to change it.
    pub fn get_mut(&mut self, channel: Channel) -> &mut Option<ConsentState> {
        match channel {
            Channel::Email => &mut self.email,
            Channel::Sms => &mut self.sms,
        }
    }
}

/// A section-level opt-out, recorded once when a Profile reports an email as spam
/// (Email - Abuse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct SectionOptOut {
    /// The Email - Abuse event that opted the Profile out.
    pub event: EventId,
    /// When it happened.
    pub at: Timestamp,
}

/// A person: an id, Email and Mobile attributes, custom attributes, and consent per
/// Subscription and Channel.
///
/// `Debug` masks Email, Mobile and every custom attribute value.
///
/// JSON shape:
///
/// ```json
/// {
///   "id": "p-1",
///   "email": "a+b@example.com",
///   "mobile": "+46701234567",
///   "attributes": {"first_name": "Ada"},
///   "consent": {"123456": {"email": {"status": "opted_in"}}},
///   "section_opt_outs": {}
/// }
/// ```
///
/// A key given twice in `attributes`, `consent` or `section_opt_outs` is refused
/// ([`ProfileError::DuplicateKey`](crate::model::ProfileError::DuplicateKey)) rather than read as the
/// last one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Profile {
    /// The Profile's id.
    pub id: ProfileId,
    /// The Email attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// The Mobile attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<Mobile>,
    /// Custom attributes by name.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "unique_attributes"
    )]
    pub attributes: BTreeMap<AttributeName, AttributeValue>,
    /// Consent per Subscription and Channel.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "unique_consent"
    )]
    pub consent: BTreeMap<SubscriptionId, ChannelConsent>,
    /// Section-level opt-outs (from Email - Abuse), one per Section.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "unique_section_opt_outs"
    )]
    pub section_opt_outs: BTreeMap<SectionId, SectionOptOut>,
}

fn unique_attributes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<AttributeName, AttributeValue>, D::Error> {
    deserializer.deserialize_map(UniqueKeys::new("attributes", "attribute name"))
}

fn unique_consent<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<SubscriptionId, ChannelConsent>, D::Error> {
    deserializer.deserialize_map(UniqueKeys::new("consent", "Subscription id"))
}

fn unique_section_opt_outs<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<SectionId, SectionOptOut>, D::Error> {
    deserializer.deserialize_map(UniqueKeys::new("section_opt_outs", "Section id"))
}

/// Reads a map whose every key appears once, refusing a repeated key with
/// [`ProfileError::DuplicateKey`] (serde's own maps keep the last value silently).
struct UniqueKeys<K, V> {
    field: &'static str,
    key: &'static str,
    entries: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<K, V> UniqueKeys<K, V> {
    fn new(field: &'static str, key: &'static str) -> Self {
        Self {
            field,
            key,
            entries: std::marker::PhantomData,
        }
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> serde::de::Visitor<'de>
    for UniqueKeys<K, V>
{
    type Value = BTreeMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map with each {} once", self.key)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<K>()? {
            if entries.contains_key(&key) {
                return Err(serde::de::Error::custom(ProfileError::DuplicateKey {
                    field: self.field,
                    key: self.key,
                    position: entries.len(),
                }));
            }
            let value = map.next_value()?;
            entries.insert(key, value);
        }
        Ok(entries)
    }
}

impl Profile {
    /// A Profile with no attributes and no consent recorded.
    pub fn new(id: ProfileId) -> Self {
        Self {
            id,
            email: None,
            mobile: None,
            attributes: BTreeMap::new(),
            consent: BTreeMap::new(),
            section_opt_outs: BTreeMap::new(),
        }
    }

    /// Sets the Email attribute.
    #[must_use]
    pub fn with_email(mut self, email: Email) -> Self {
        self.email = Some(email);
        self
    }

    /// Sets the Mobile attribute.
    #[must_use]
    pub fn with_mobile(mut self, mobile: Mobile) -> Self {
        self.mobile = Some(mobile);
        self
    }

    /// Sets a custom attribute.
    #[must_use]
    pub fn with_attribute(mut self, name: AttributeName, value: impl Into<AttributeValue>) -> Self {
        self.attributes.insert(name, value.into());
        self
    }

    /// Records consent (opted in) to `subscription` on `channel`.
    #[must_use]
    pub fn with_consent(mut self, subscription: SubscriptionId, channel: Channel) -> Self {
        self.set_consent(subscription, channel, ConsentState::OptedIn);
        self
    }

    /// The custom attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&AttributeValue> {
        self.attributes.get(name)
    }

    /// The consent recorded for `subscription` on `channel`, if any.
    pub fn consent(
        &self,
        subscription: &SubscriptionId,
        channel: Channel,
    ) -> Option<&ConsentState> {
        self.consent.get(subscription)?.get(channel)
    }

    /// Whether the Profile is opted in to `subscription` on `channel`.
    pub fn is_opted_in(&self, subscription: &SubscriptionId, channel: Channel) -> bool {
        matches!(
            self.consent(subscription, channel),
            Some(ConsentState::OptedIn)
        )
    }

    /// Records `state` for `subscription` on `channel`, replacing what was there.
    pub fn set_consent(
        &mut self,
        subscription: SubscriptionId,
        channel: Channel,
        state: ConsentState,
    ) {
        *self
            .consent
            .entry(subscription)
            .or_default()
            .get_mut(channel) = Some(state);
    }
}
