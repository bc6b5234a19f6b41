//! Email addresses: [`Email`] and its RFC 5321 / RFC 5322 parser (with RFC 6531's UTF-8).
//!
//! An Email is personal data: its `Debug` and `Display` output is masked; the whole value is
//! only available through [`Email::as_str`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::error::{AttributeError, EmailProblem};
use crate::model::text::{mask_prefix, trim_around};

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
