//! The model's errors: ids, Profile attributes, Profiles read from JSON, Section catalogs, opt-out
//! events and their consent effects, names of kinds. Every error names what was wrong (which id, which field,
//! which Subscription) so that the input can be fixed, and none of them carries personal data
//! whole.

mod apply;
mod attribute;
mod id;
mod name;

pub use apply::{ApplyError, CatalogError, EventError};
pub use attribute::{
    AttributeError, AttributeNameProblem, EmailProblem, MobileProblem, ProfileError, RegionProblem,
};
pub use id::{IdError, IdKind, IdProblem};
pub use name::{NameKind, UnknownName};
