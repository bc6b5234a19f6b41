//! A rejected id value: which kind of id ([`IdKind`]) and what is wrong with it ([`IdProblem`]).

/// Which kind of id an [`IdError`] is about. `Display` is its name in errors, such as
/// `subscription id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// A [`SectionId`](crate::SectionId): `section id`.
    Section,
    /// A [`FolderId`](crate::FolderId): `folder id`.
    Folder,
    /// A [`SubscriptionId`](crate::SubscriptionId): `subscription id`.
    Subscription,
    /// A [`ProfileId`](crate::ProfileId): `profile id`.
    Profile,
    /// An [`ActivityId`](crate::model::ActivityId): `activity id`.
    Activity,
    /// A [`FlowId`](crate::FlowId): `flow id`.
    Flow,
    /// An [`EventId`](crate::EventId): `event id`.
    Event,
}

impl IdKind {
    /// The name, as errors show it: `subscription id`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Section => "section id",
            Self::Folder => "folder id",
            Self::Subscription => "subscription id",
            Self::Profile => "profile id",
            Self::Activity => "activity id",
            Self::Flow => "flow id",
            Self::Event => "event id",
        }
    }
}

impl std::fmt::Display for IdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with an id value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdProblem {
    /// The value is the empty string.
    Empty,
    /// The value is longer than the limit.
    TooLong {
        /// The value's length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The value holds a control character (such as CR, LF, TAB or NUL).
    ControlCharacter {
        /// Byte offset of the first control character.
        position: usize,
    },
    /// The URL given holds no `subscription/<id>` path segments.
    NotInUrl,
}

impl std::fmt::Display for IdProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::TooLong { len, max } => write!(f, "it is {len} bytes long, the limit is {max}"),
            Self::ControlCharacter { position } => {
                write!(f, "it holds a control character at byte {position}")
            }
            Self::NotInUrl => f.write_str("the URL has no `subscription/<id>` path segment"),
        }
    }
}

/// An id value was rejected. The value itself is not repeated (a Profile id may be personal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {problem}")]
pub struct IdError {
    /// Which id type was being made, such as [`IdKind::Subscription`].
    pub kind: IdKind,
    /// What is wrong with the value.
    pub problem: IdProblem,
}
