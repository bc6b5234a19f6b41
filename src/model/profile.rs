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

use crate::error::{AttributeError, ProfileError};
use crate::model::{EventId, ProfileId, SectionId, SubscriptionId};

/// A communication channel a Profile consents to per Subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email messages.
    Email,
    /// SMS messages.
    Sms,
}

impl Channel {
    /// Every channel, in order.
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Sms];

    /// The wire name: `email` or `sms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Email => "Email",
            Self::Sms => "SMS",
        })
    }
}

/// Masks all but the first `keep` characters of `value`: `"example"` with 1 kept is `"e***"`.
pub(crate) fn mask_prefix(value: &str, keep: usize) -> String {
    // A value of at most twice `keep` characters keeps none: `p` must not print as `p***`.
    let keep = if value.chars().count() > 2 * keep {
        keep
    } else {
        0
    };
    let mut masked: String = value.chars().take(keep).collect();
    masked.push_str("***");
    masked
}

/// The longest email address accepted, in bytes (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// A validated email address, the Profile's Email attribute.
///
/// Kept exactly as given (no case folding: the local part is case-sensitive). Accepted: one `@`
/// with a non-empty local part of at most 64 bytes, a domain of non-empty dot-separated labels,
/// no whitespace or control characters, at most [`MAX_EMAIL_LEN`] bytes. `a+b@example.com` is
/// valid and stays `a+b@example.com`.
///
/// `Debug` and `Display` are masked (`a***@e***.com`); [`Email::as_str`] gives the address.
///
/// ```
/// use optout_relay::Email;
///
/// let email = Email::new("a+b@example.com")?;
/// assert_eq!(email.as_str(), "a+b@example.com");
/// assert_eq!(email.to_string(), "a***@e***.com");
/// # Ok::<(), optout_relay::AttributeError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(Arc<str>);

impl Email {
    /// Validates an email address.
    ///
    /// # Errors
    ///
    /// [`AttributeError::Email`] naming the rule broken (never repeating the address).
    pub fn new(value: impl Into<String>) -> Result<Self, AttributeError> {
        let value = value.into();
        let fail = |reason| Err(AttributeError::Email { reason });
        if value.len() > MAX_EMAIL_LEN {
            return fail("longer than 254 bytes");
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("holds whitespace or a control character");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return fail("has no `@`");
        };
        if local.is_empty() {
            return fail("has nothing before the `@`");
        }
        if local.len() > 64 {
            return fail("has more than 64 bytes before the `@`");
        }
        if domain.contains('@') {
            return fail("has more than one `@`");
        }
        if domain.is_empty() {
            return fail("has no domain after the `@`");
        }
        if domain.split('.').any(str::is_empty) {
            return fail("has an empty label in its domain");
        }
        Ok(Self(Arc::from(value)))
    }

    /// The whole address. Personal data: do not log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address, shared (no copy).
    pub(crate) fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The address masked for logs and previews: first character of the local part, first
    /// character of the domain and its last label, as in `a***@e***.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let tld = domain.rsplit_once('.').map_or("", |(_, tld)| tld);
        let mut masked = mask_prefix(local, 1);
        masked.push('@');
        masked.push_str(&mask_prefix(domain, 1));
        if !tld.is_empty() {
            masked.push('.');
            masked.push_str(tld);
        }
        masked
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
        email.0.as_ref().to_owned()
    }
}

impl std::str::FromStr for Email {
    type Err = AttributeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A validated mobile number in its normalized international form: `+` and 8 to 15 digits
/// (E.164), such as `+46701234567`.
///
/// [`Mobile::new`] accepts the ways people write such a number: spaces, `-`, `.`, `(` and `)`
/// are removed, a national trunk prefix written `(0)` is dropped, and a leading `00` becomes
/// `+`. A number without its country code (`070 123 45
/// 67`) is rejected rather than guessed.
///
/// `Debug` and `Display` are masked (`+46********67`); [`Mobile::as_str`] gives the number.
///
/// ```
/// use optout_relay::Mobile;
///
/// let mobile = Mobile::new("+46 (0)70-123 45 67")?;
/// assert_eq!(mobile.as_str(), "+46701234567");
/// assert_eq!(Mobile::new("0046 70-123 45 67")?, mobile);
/// assert_eq!(mobile.to_string(), "+46*******67");
/// # Ok::<(), optout_relay::AttributeError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile(Arc<str>);

impl Mobile {
    /// Validates and normalizes a mobile number.
    ///
    /// # Errors
    ///
    /// [`AttributeError::Mobile`] naming the rule broken (never repeating the number).
    pub fn new(value: impl AsRef<str>) -> Result<Self, AttributeError> {
        let value = value.as_ref();
        let fail = |reason| Err(AttributeError::Mobile { reason });
        if value.len() > 64 {
            return fail("longer than 64 bytes");
        }
        let trimmed = value.trim();
        let rest = if let Some(rest) = trimmed.strip_prefix('+') {
            rest
        } else if let Some(rest) = trimmed.strip_prefix("00") {
            rest
        } else {
            return fail("has no country code: write it as +<country code><number>");
        };
        let mut normalized = String::with_capacity(16);
        normalized.push('+');
        for c in rest.replace("(0)", "").chars() {
            match c {
                '0'..='9' => normalized.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return fail(
                        "holds a character other than digits, spaces, `-`, `.`, `(` and `)`",
                    );
                }
            }
        }
        let digits = normalized.len() - 1;
        if digits < 8 {
            return fail("has fewer than 8 digits");
        }
        if digits > 15 {
            return fail("has more than 15 digits");
        }
        if normalized.as_bytes()[1] == b'0' {
            return fail("has a country code starting with 0");
        }
        Ok(Self(Arc::from(normalized)))
    }

    /// The normalized number, `+` and digits. Personal data: do not log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number, shared (no copy).
    pub(crate) fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The number masked for logs and previews: `+`, the first two and the last two digits.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let hidden = digits.len().saturating_sub(4);
        let mut masked = String::with_capacity(self.0.len());
        masked.push('+');
        masked.push_str(&digits[..2]);
        masked.extend(std::iter::repeat_n('*', hidden));
        masked.push_str(&digits[digits.len() - 2..]);
        masked
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

impl From<Mobile> for String {
    fn from(mobile: Mobile) -> Self {
        mobile.0.as_ref().to_owned()
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
            return fail("it is empty");
        }
        if value.len() > MAX_ATTRIBUTE_NAME_LEN {
            return fail("longer than 128 bytes");
        }
        if value.chars().any(char::is_control) {
            return fail("holds a control character");
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
/// ([`ProfileError::DuplicateKey`](crate::ProfileError::DuplicateKey)) rather than read as the
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
