//! Where a parameter's value comes from.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::AttributeName;

/// Where a parameter's value comes from: the Profile, the event, or the Section's catalog.
///
/// In JSON a source is a snake_case string (`"email"`, `"subscription_id"`), or
/// `{"attribute": "<name>"}` for a custom attribute.
///
/// | source | value | absent when |
/// | --- | --- | --- |
/// | `email` | the Profile's Email | the Profile has no Email, or holds one that is not an address |
/// | `mobile` | the Profile's Mobile: E.164 when it could be normalized with certainty, else as given | the Profile has no Mobile, or holds a text that cannot be a number |
/// | `{"attribute": name}` | the custom attribute (text, number or boolean) | the Profile has no such attribute |
/// | `profile_id` | the Profile's id | never |
/// | `subscription_id` | the Subscription opted out from | Email - Abuse (section-level) |
/// | `folder_id` | the Folder of that Subscription (needs the Section's catalog) | Email - Abuse, or the Subscription is not in the catalog |
/// | `section_id` | the Section of the event | never |
/// | `event_kind` | `email_unsubscribe`, `email_abuse` or `sms_unsubscribe` | never |
/// | `channel` | `email` or `sms` | never |
/// | `event_id` | the event's id | never |
/// | `activity_id` | the Activity (message) opted out from | the event names no Activity |
/// | `occurred_at` | when it happened, RFC 3339 (`2026-11-26T09:30:00Z`) | never |
/// | `origin` | `communication`, `api` or `file_import` | never |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParamSource {
    /// The Profile's Email attribute.
    Email,
    /// The Profile's Mobile attribute.
    Mobile,
    /// A custom Profile attribute.
    Attribute(AttributeName),
    /// The Profile's id.
    ProfileId,
    /// The Subscription opted out from (absent for Email - Abuse).
    SubscriptionId,
    /// The Folder of the Subscription opted out from (needs the Section's catalog).
    FolderId,
    /// The Section the event happened in.
    SectionId,
    /// The event kind's wire name.
    EventKind,
    /// The channel's wire name (`email` or `sms`).
    Channel,
    /// The event's id.
    EventId,
    /// The Activity (message) opted out from.
    ActivityId,
    /// When the opt-out happened, RFC 3339.
    OccurredAt,
    /// Where the opt-out came from.
    Origin,
}

impl ParamSource {
    /// Whether the value is personal data, masked in previews: the Email, the Mobile, the
    /// Profile id (some hosts use the Email or Mobile as the id; it shows as
    /// [`ProfileId::masked`](crate::ProfileId::masked) does) and custom attributes.
    pub fn is_personal(&self) -> bool {
        matches!(
            self,
            Self::Email | Self::Mobile | Self::ProfileId | Self::Attribute(_)
        )
    }

    /// Whether the value identifies the Profile to the receiver (Email, Mobile, the Profile id
    /// or a custom attribute such as a CRM id).
    pub fn identifies_profile(&self) -> bool {
        matches!(
            self,
            Self::Email | Self::Mobile | Self::ProfileId | Self::Attribute(_)
        )
    }
}

impl fmt::Display for ParamSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Email => "email",
            Self::Mobile => "mobile",
            Self::Attribute(name) => return write!(f, "attribute `{name}`"),
            Self::ProfileId => "profile_id",
            Self::SubscriptionId => "subscription_id",
            Self::FolderId => "folder_id",
            Self::SectionId => "section_id",
            Self::EventKind => "event_kind",
            Self::Channel => "channel",
            Self::EventId => "event_id",
            Self::ActivityId => "activity_id",
            Self::OccurredAt => "occurred_at",
            Self::Origin => "origin",
        })
    }
}
