//! The pure domain model: Sections, Folders, Subscriptions, Profiles, opt-out events and their
//! consent effects. No I/O, no clock.

pub(crate) mod catalog;
mod consent;
pub(crate) mod email;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod ids;
pub(crate) mod kind;
pub(crate) mod mobile;
pub(crate) mod profile;
mod text;

pub use catalog::Location;
pub use consent::{ConsentEffect, EffectStatus, OptOutScope, Revocation};
pub use email::MAX_EMAIL_LEN;
pub use error::{
    ApplyError, AttributeError, AttributeNameProblem, CatalogError, EmailProblem, EventError,
    IdError, IdKind, IdProblem, MobileProblem, NameKind, ProfileError, RegionProblem, UnknownName,
};
pub use event::OptOutKind;
pub use ids::{ActivityId, MAX_ID_LEN};
pub(crate) use mobile::mask_number;
pub use mobile::{MAX_MOBILE_LEN, Region};
pub use profile::{
    AttributeName, AttributeValue, ChannelConsent, ConsentState, MAX_ATTRIBUTE_NAME_LEN,
    SectionOptOut,
};
pub(crate) use text::mask_prefix;

// Crate-internal paths of the items the crate root exports.
pub(crate) use catalog::{Catalog, Section};
pub(crate) use email::Email;
pub(crate) use event::OptOutEvent;
pub(crate) use ids::{EventId, FlowId, FolderId, ProfileId, SectionId, SubscriptionId};
pub(crate) use kind::{Channel, EventKind, Origin};
pub(crate) use mobile::Mobile;
pub(crate) use profile::Profile;
