//! The pure domain model: Sections, Folders, Subscriptions, Profiles, opt-out events and their
//! consent effects. No I/O, no clock.

mod catalog;
mod consent;
mod event;
mod ids;
mod profile;

pub use catalog::{Catalog, Folder, Location, Section, Subscription};
pub use consent::{ConsentEffect, EffectStatus, OptOutScope, Revocation};
pub use event::{EventKind, OptOutEvent, OptOutKind, Origin};
pub use ids::{
    ActivityId, EventId, FlowId, FolderId, MAX_ID_LEN, ProfileId, SectionId, SubscriptionId,
};
pub(crate) use profile::mask_number;
pub use profile::{
    AttributeName, AttributeValue, Channel, ChannelConsent, ConsentState, Email,
    MAX_ATTRIBUTE_NAME_LEN, MAX_EMAIL_LEN, MAX_MOBILE_LEN, Mobile, Profile, Region, SectionOptOut,
};
