//! Mobile numbers: [`Mobile`], the [`Region`] a national number is read in, normalization to
//! E.164 (feature `phonenumber`) and the masking of numbers.
//!
//! A Mobile is personal data: its `Debug` and `Display` output is masked; the whole value is
//! only available through [`Mobile::as_str`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::error::{AttributeError, MobileProblem, RegionProblem};
use crate::model::text::trim_around;

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
