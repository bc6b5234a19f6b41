//! A text that is none of the names of one of the model's closed sets ([`NameKind`]).

use std::fmt;

/// Which closed set of names an [`UnknownName`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// An [`EventKind`](crate::EventKind): its wire name (`email_unsubscribe`) or the platform's
    /// (`Email - Unsubscribe`).
    EventKind,
    /// A [`Channel`](crate::Channel): `email` or `sms`.
    Channel,
    /// An [`Origin`](crate::Origin): `communication`, `api` or `file_import`.
    Origin,
}

impl NameKind {
    /// What the names name, as errors show it: `event kind`, `channel` or `origin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EventKind => "event kind",
            Self::Channel => "channel",
            Self::Origin => "origin",
        }
    }

    /// Every name accepted, in order.
    pub const fn names(self) -> &'static [&'static str] {
        match self {
            Self::EventKind => &[
                "email_unsubscribe",
                "email_abuse",
                "sms_unsubscribe",
                "Email - Unsubscribe",
                "Email - Abuse",
                "SMS - Unsubscribe",
            ],
            Self::Channel => &["email", "sms"],
            Self::Origin => &["communication", "api", "file_import"],
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text is none of the names of an [`EventKind`](crate::EventKind), a
/// [`Channel`](crate::Channel) or an [`Origin`](crate::Origin) (their `FromStr`). The text is
/// not repeated: it may be anything, of any length. `Display` lists the names accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub struct UnknownName {
    /// Which set of names the text was read as.
    pub kind: NameKind,
}

impl UnknownName {
    /// The error for a text that is none of `kind`'s names.
    pub const fn new(kind: NameKind) -> Self {
        Self { kind }
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {}, expected one of ", self.kind)?;
        for (i, name) in self.kind.names().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{name}`")?;
        }
        Ok(())
    }
}
