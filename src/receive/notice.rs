//! The typed result of parsing: [`OptOutNotice`] and what it covers, [`NoticeScope`].

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::model::{
    ActivityId, AttributeName, AttributeValue, Channel, Email, EventId, EventKind, FolderId,
    Mobile, Origin, ProfileId, SectionId, SubscriptionId,
};

/// What an opt-out covers on the receiving side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoticeScope {
    /// One Subscription (Email - Unsubscribe, SMS - Unsubscribe): opt the Profile out of this
    /// Subscription on the notice's channel, and nothing else.
    Subscription(SubscriptionId),
    /// The whole Section (Email - Abuse, a spam complaint): opt the Profile out of email for
    /// every Subscription of this Section.
    Section(SectionId),
}

/// An incoming opt-out, typed: what [`NoticeParser::parse`](crate::receive::NoticeParser::parse)
/// makes of a webhook request.
///
/// Which fields are present depends on the parameters the sender sends (the parser's mapping):
/// only [`kind`](Self::kind) and [`scope`](Self::scope) are always known, and at least one of
/// [`email`](Self::email), [`mobile`](Self::mobile), [`profile`](Self::profile) or
/// [`attributes`](Self::attributes) is present.
///
/// Personal data stays masked in `Debug` (Email, Mobile and attribute values print masked).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OptOutNotice {
    /// The request's `webhook-id` header, if it has one: stable across retries and
    /// re-deliveries, and predictable, so anyone can send it. De-duplicate on it only once the
    /// request is verified ([`Verifier`](crate::receive::Verifier)) and the signature covers the
    /// content (a body encoding); never let an unverified id suppress a request (see
    /// [the module docs](crate::receive#de-duplicating-on-the-webhook-id)).
    pub webhook_id: Option<String>,
    /// The opt-out's kind.
    pub kind: EventKind,
    /// What it covers: one Subscription, or the whole Section for Email - Abuse.
    pub scope: NoticeScope,
    /// The Profile's Email, if sent.
    pub email: Option<Email>,
    /// The Profile's Mobile, if sent: normalized to E.164 when that is certain, else as sent
    /// ([`Mobile::new`]).
    pub mobile: Option<Mobile>,
    /// The Profile's id, if sent.
    pub profile: Option<ProfileId>,
    /// Custom attributes sent, by attribute name. In `query` and `form` encodings every value
    /// is text (a number `42` arrives as the text `42`); JSON keeps numbers and booleans.
    pub attributes: BTreeMap<AttributeName, AttributeValue>,
    /// The Section, if sent (always, for Email - Abuse: it is the scope).
    pub section: Option<SectionId>,
    /// The Folder of the Subscription, if sent.
    pub folder: Option<FolderId>,
    /// The event's id, if sent.
    pub event: Option<EventId>,
    /// The Activity (message) opted out from, if sent.
    pub activity: Option<ActivityId>,
    /// When the opt-out happened, if sent (the `occurred_at` parameter or the envelope's
    /// `timestamp`).
    pub occurred_at: Option<Timestamp>,
    /// Where the opt-out came from, if sent.
    pub origin: Option<Origin>,
}

impl OptOutNotice {
    /// A notice of `kind` covering `scope`, with nothing else known. For tests and hosts that
    /// build notices themselves; the parser fills the rest from the request.
    pub fn new(kind: EventKind, scope: NoticeScope) -> Self {
        Self {
            webhook_id: None,
            kind,
            scope,
            email: None,
            mobile: None,
            profile: None,
            attributes: BTreeMap::new(),
            section: None,
            folder: None,
            event: None,
            activity: None,
            occurred_at: None,
            origin: None,
        }
    }

    /// The channel the opt-out concerns.
    pub fn channel(&self) -> Channel {
        self.kind.channel()
    }

    /// The Subscription opted out from; `None` for a section-level opt-out.
    pub fn subscription(&self) -> Option<&SubscriptionId> {
        match &self.scope {
            NoticeScope::Subscription(subscription) => Some(subscription),
            NoticeScope::Section(_) => None,
        }
    }
}
