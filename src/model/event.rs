//! Opt-out events: Email - Unsubscribe, Email - Abuse and SMS - Unsubscribe, where they came
//! from, and when they happened.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::error::EventError;
use crate::model::ids::{ActivityId, EventId, ProfileId, SectionId, SubscriptionId};
use crate::model::kind::{Channel, EventKind, Origin};

/// An opt-out event's kind with the data that kind needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OptOutKind {
    /// Email - Unsubscribe from one Subscription.
    EmailUnsubscribe {
        /// The Subscription the email was sent to.
        subscription: SubscriptionId,
    },
    /// Email - Abuse: a spam report, an opt-out from email for the whole Section.
    EmailAbuse,
    /// SMS - Unsubscribe from one Subscription.
    SmsUnsubscribe {
        /// The Subscription the SMS was sent to.
        subscription: SubscriptionId,
    },
}

impl OptOutKind {
    /// The kind without its data.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::EmailUnsubscribe { .. } => EventKind::EmailUnsubscribe,
            Self::EmailAbuse => EventKind::EmailAbuse,
            Self::SmsUnsubscribe { .. } => EventKind::SmsUnsubscribe,
        }
    }

    /// The Subscription opted out from; `None` for the section-level Email - Abuse.
    pub fn subscription(&self) -> Option<&SubscriptionId> {
        match self {
            Self::EmailUnsubscribe { subscription } | Self::SmsUnsubscribe { subscription } => {
                Some(subscription)
            }
            Self::EmailAbuse => None,
        }
    }
}

/// One opt-out event: who opted out of what, in which Section, from which message, when, and
/// through which origin.
///
/// JSON shape (`subscription` for the two unsubscribe kinds only; `activity` optional):
///
/// ```json
/// {
///   "id": "evt-1",
///   "profile": "p-1",
///   "section": "sec-1",
///   "kind": "email_unsubscribe",
///   "subscription": "123456",
///   "activity": "newsletter-2026-11",
///   "occurred_at": "2026-11-26T09:30:00Z",
///   "origin": "communication"
/// }
/// ```
///
/// ```
/// use optout_relay::{EventId, OptOutEvent, ProfileId, SectionId, SubscriptionId, EventKind};
///
/// let event = OptOutEvent::email_unsubscribe(
///     EventId::new("evt-1")?,
///     ProfileId::new("p-1")?,
///     SectionId::new("sec-1")?,
///     SubscriptionId::new("123456")?,
///     "2026-11-26T09:30:00Z".parse()?,
/// );
/// assert_eq!(event.kind(), EventKind::EmailUnsubscribe);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EventData", into = "EventData")]
pub struct OptOutEvent {
    id: EventId,
    profile: ProfileId,
    section: SectionId,
    kind: OptOutKind,
    activity: Option<ActivityId>,
    occurred_at: Timestamp,
    origin: Origin,
}

impl OptOutEvent {
    /// An event of any kind, through a communication, without an Activity.
    pub fn new(
        id: EventId,
        profile: ProfileId,
        section: SectionId,
        kind: OptOutKind,
        occurred_at: Timestamp,
    ) -> Self {
        Self {
            id,
            profile,
            section,
            kind,
            activity: None,
            occurred_at,
            origin: Origin::Communication,
        }
    }

    /// An Email - Unsubscribe from `subscription`, through a communication.
    pub fn email_unsubscribe(
        id: EventId,
        profile: ProfileId,
        section: SectionId,
        subscription: SubscriptionId,
        occurred_at: Timestamp,
    ) -> Self {
        Self::new(
            id,
            profile,
            section,
            OptOutKind::EmailUnsubscribe { subscription },
            occurred_at,
        )
    }

    /// An Email - Abuse (spam report) in `section`, through a communication.
    pub fn email_abuse(
        id: EventId,
        profile: ProfileId,
        section: SectionId,
        occurred_at: Timestamp,
    ) -> Self {
        Self::new(id, profile, section, OptOutKind::EmailAbuse, occurred_at)
    }

    /// An SMS - Unsubscribe from `subscription`, through a communication.
    pub fn sms_unsubscribe(
        id: EventId,
        profile: ProfileId,
        section: SectionId,
        subscription: SubscriptionId,
        occurred_at: Timestamp,
    ) -> Self {
        Self::new(
            id,
            profile,
            section,
            OptOutKind::SmsUnsubscribe { subscription },
            occurred_at,
        )
    }

    /// Sets the Activity (the message) the opt-out was made from.
    #[must_use]
    pub fn with_activity(mut self, activity: ActivityId) -> Self {
        self.activity = Some(activity);
        self
    }

    /// Sets the origin.
    #[must_use]
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// The event's id; a re-delivered copy carries the same id.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The Profile that opted out.
    pub fn profile(&self) -> &ProfileId {
        &self.profile
    }

    /// The Section the event happened in.
    pub fn section(&self) -> &SectionId {
        &self.section
    }

    /// The kind with its data.
    pub fn opt_out(&self) -> &OptOutKind {
        &self.kind
    }

    /// The kind without its data.
    pub fn kind(&self) -> EventKind {
        self.kind.kind()
    }

    /// The Subscription opted out from; `None` for Email - Abuse.
    pub fn subscription(&self) -> Option<&SubscriptionId> {
        self.kind.subscription()
    }

    /// The channel the opt-out concerns.
    pub fn channel(&self) -> Channel {
        self.kind().channel()
    }

    /// The Activity (message) the opt-out was made from, if known.
    pub fn activity(&self) -> Option<&ActivityId> {
        self.activity.as_ref()
    }

    /// When the opt-out happened.
    pub fn occurred_at(&self) -> Timestamp {
        self.occurred_at
    }

    /// Where the opt-out came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }
}

/// The flat serialized form of an [`OptOutEvent`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct EventData {
    id: EventId,
    profile: ProfileId,
    section: SectionId,
    kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription: Option<SubscriptionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activity: Option<ActivityId>,
    occurred_at: Timestamp,
    origin: Origin,
}

impl TryFrom<EventData> for OptOutEvent {
    type Error = EventError;

    fn try_from(data: EventData) -> Result<Self, Self::Error> {
        let kind = match (data.kind, data.subscription) {
            (EventKind::EmailUnsubscribe, Some(subscription)) => {
                OptOutKind::EmailUnsubscribe { subscription }
            }
            (EventKind::SmsUnsubscribe, Some(subscription)) => {
                OptOutKind::SmsUnsubscribe { subscription }
            }
            (EventKind::EmailAbuse, None) => OptOutKind::EmailAbuse,
            (kind @ (EventKind::EmailUnsubscribe | EventKind::SmsUnsubscribe), None) => {
                return Err(EventError::MissingField {
                    kind,
                    field: "subscription",
                });
            }
            (kind @ EventKind::EmailAbuse, Some(_)) => {
                return Err(EventError::UnexpectedField {
                    kind,
                    field: "subscription",
                });
            }
        };
        Ok(Self {
            id: data.id,
            profile: data.profile,
            section: data.section,
            kind,
            activity: data.activity,
            occurred_at: data.occurred_at,
            origin: data.origin,
        })
    }
}

impl From<OptOutEvent> for EventData {
    fn from(event: OptOutEvent) -> Self {
        let kind = event.kind();
        let subscription = match event.kind {
            OptOutKind::EmailUnsubscribe { subscription }
            | OptOutKind::SmsUnsubscribe { subscription } => Some(subscription),
            OptOutKind::EmailAbuse => None,
        };
        Self {
            id: event.id,
            profile: event.profile,
            section: event.section,
            kind,
            subscription,
            activity: event.activity,
            occurred_at: event.occurred_at,
            origin: event.origin,
        }
    }
}
