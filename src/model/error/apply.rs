//! Errors relating model values to each other: a Section catalog that is inconsistent, an event
//! whose fields do not fit its kind, an event applied to the wrong Profile or Section.

use crate::model::ids::{FolderId, ProfileId, SectionId, SubscriptionId};
use crate::model::kind::EventKind;

/// A Section catalog (its Folders and Subscriptions) is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Two Folders of one Section share an id.
    #[error("folder `{folder}` appears twice in section `{section}`")]
    DuplicateFolder {
        /// The Section.
        section: SectionId,
        /// The repeated Folder id.
        folder: FolderId,
    },
    /// A Subscription is listed in two Folders (or twice in one), or in two Sections.
    #[error("subscription `{subscription}` appears twice (in section `{section}`)")]
    DuplicateSubscription {
        /// The Section where the second listing was found.
        section: SectionId,
        /// The repeated Subscription id.
        subscription: SubscriptionId,
    },
    /// Two Sections of a catalog share an id.
    #[error("section `{section}` appears twice in the catalog")]
    DuplicateSection {
        /// The repeated Section id.
        section: SectionId,
    },
}

/// A Profile id in `Debug` output, masked as [`ProfileId::masked`] does: `ProfileId("p***")`.
struct MaskedProfileId<'a>(&'a ProfileId);

impl std::fmt::Debug for MaskedProfileId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ProfileId").field(&self.0.masked()).finish()
    }
}

/// An opt-out event could not be applied to a Profile.
///
/// `Display` and `Debug` show Profile ids masked ([`ProfileId::masked`]): an id may be personal.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The event belongs to another Profile.
    #[error(
        "event for profile `{}` applied to profile `{}`",
        event_profile.masked(),
        profile.masked()
    )]
    ProfileMismatch {
        /// The Profile the event names.
        event_profile: ProfileId,
        /// The Profile it was applied to.
        profile: ProfileId,
    },
    /// The event belongs to another Section than the catalog given.
    #[error(
        "event of section `{event_section}` applied with the catalog of section `{catalog_section}`"
    )]
    SectionMismatch {
        /// The Section the event names.
        event_section: SectionId,
        /// The Section of the catalog given.
        catalog_section: SectionId,
    },
    /// The event's Subscription is not in the Section's catalog.
    #[error("subscription `{subscription}` is not in the catalog of section `{section}`")]
    UnknownSubscription {
        /// The Subscription the event names.
        subscription: SubscriptionId,
        /// The Section whose catalog was searched.
        section: SectionId,
    },
}

impl std::fmt::Debug for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ProfileMismatch {
                event_profile,
                profile,
            } => f
                .debug_struct("ProfileMismatch")
                .field("event_profile", &MaskedProfileId(event_profile))
                .field("profile", &MaskedProfileId(profile))
                .finish(),
            Self::SectionMismatch {
                event_section,
                catalog_section,
            } => f
                .debug_struct("SectionMismatch")
                .field("event_section", event_section)
                .field("catalog_section", catalog_section)
                .finish(),
            Self::UnknownSubscription {
                subscription,
                section,
            } => f
                .debug_struct("UnknownSubscription")
                .field("subscription", subscription)
                .field("section", section)
                .finish(),
        }
    }
}

/// An opt-out event's fields do not fit together (for example an Email - Unsubscribe without a
/// Subscription). Raised when an event is read from JSON or another wire form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The kind needs a field that is missing.
    #[error("an event of kind {kind} needs the field `{field}`")]
    MissingField {
        /// The event kind.
        kind: EventKind,
        /// The missing field.
        field: &'static str,
    },
    /// The kind does not take a field that is present.
    #[error("an event of kind {kind} does not take the field `{field}`")]
    UnexpectedField {
        /// The event kind.
        kind: EventKind,
        /// The field that must not be there.
        field: &'static str,
    },
}
