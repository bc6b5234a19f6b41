//! The closed sets of names of the model: an opt-out's [`EventKind`], the [`Channel`] it
//! concerns and the [`Origin`] it came through.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::error::{NameKind, UnknownName};

/// The kind of an opt-out event, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// "Email - Unsubscribe": the Profile unsubscribed through an email; consent is revoked for
    /// the Subscription that email was sent to.
    #[serde(alias = "Email - Unsubscribe")]
    EmailUnsubscribe,
    /// "Email - Abuse": the Profile reported an email as spam; email consent is revoked for every
    /// Subscription of the Section.
    #[serde(alias = "Email - Abuse")]
    EmailAbuse,
    /// "SMS - Unsubscribe": the Profile unsubscribed through an SMS (a STOP reply); SMS consent is
    /// revoked for the Subscription that SMS was sent to.
    #[serde(alias = "SMS - Unsubscribe")]
    SmsUnsubscribe,
}

impl EventKind {
    /// Every kind, in order.
    pub const ALL: [EventKind; 3] = [
        EventKind::EmailUnsubscribe,
        EventKind::EmailAbuse,
        EventKind::SmsUnsubscribe,
    ];

    /// The channel the opt-out concerns.
    pub fn channel(self) -> Channel {
        match self {
            Self::EmailUnsubscribe | Self::EmailAbuse => Channel::Email,
            Self::SmsUnsubscribe => Channel::Sms,
        }
    }

    /// Whether the opt-out covers the whole Section (only Email - Abuse does).
    pub fn is_section_level(self) -> bool {
        matches!(self, Self::EmailAbuse)
    }

    /// The wire name: `email_unsubscribe`, `email_abuse` or `sms_unsubscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailUnsubscribe => "email_unsubscribe",
            Self::EmailAbuse => "email_abuse",
            Self::SmsUnsubscribe => "sms_unsubscribe",
        }
    }

    /// The platform's name: `Email - Unsubscribe`, `Email - Abuse` or `SMS - Unsubscribe`.
    pub fn platform_name(self) -> &'static str {
        match self {
            Self::EmailUnsubscribe => "Email - Unsubscribe",
            Self::EmailAbuse => "Email - Abuse",
            Self::SmsUnsubscribe => "SMS - Unsubscribe",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.platform_name())
    }
}

/// Where an opt-out came from.
///
/// The platform's own flow only fires for opt-outs made through its communications; listeners
/// of this crate take only [`Origin::Communication`] by default too, and can opt in to the
/// others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Origin {
    /// Through a communication the platform sent (an unsubscribe link, a spam report, a STOP
    /// reply).
    Communication,
    /// Through the platform's API.
    Api,
    /// Through a file import.
    FileImport,
}

impl Origin {
    /// Every origin, in order.
    pub const ALL: [Origin; 3] = [Origin::Communication, Origin::Api, Origin::FileImport];

    /// The wire name: `communication`, `api` or `file_import`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Communication => "communication",
            Self::Api => "api",
            Self::FileImport => "file_import",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Reads the wire name (`email_unsubscribe`, as [`EventKind::as_str`] gives it) or the
/// platform's name (`Email - Unsubscribe`, as `Display` and [`EventKind::platform_name`] give
/// it): exactly the names JSON accepts.
impl FromStr for EventKind {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|kind| text == kind.as_str() || text == kind.platform_name())
            .ok_or(UnknownName::new(NameKind::EventKind))
    }
}

/// Reads the wire name, as [`Channel::as_str`] gives it (`email`, `sms`): exactly the names
/// JSON accepts. `Display`'s `Email` and `SMS` are for people and are not read.
impl FromStr for Channel {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|channel| text == channel.as_str())
            .ok_or(UnknownName::new(NameKind::Channel))
    }
}

/// Reads the wire name, as [`Origin::as_str`] and `Display` give it (`communication`, `api`,
/// `file_import`): exactly the names JSON accepts.
impl FromStr for Origin {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|origin| text == origin.as_str())
            .ok_or(UnknownName::new(NameKind::Origin))
    }
}
