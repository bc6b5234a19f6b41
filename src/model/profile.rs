//! Profiles: a person's id, typed Email and Mobile attributes, custom attributes, and consent per
//! Subscription and Channel.
//!
//! Email, Mobile and custom attribute values are personal data: their `Debug` and `Display`
//! output is masked. The whole value is only available through an explicit accessor
//! ([`Email::as_str`], [`Mobile::as_str`], [`AttributeValue::to_text`]).

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::email::Email;
use crate::model::error::{AttributeError, AttributeNameProblem, ProfileError};
use crate::model::ids::{EventId, ProfileId, SectionId, SubscriptionId};
use crate::model::kind::Channel;
use crate::model::mobile::Mobile;

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
