//! Validated identifiers: [`SectionId`], [`FolderId`], [`SubscriptionId`], [`ProfileId`],
//! [`ActivityId`], [`EventId`] and [`FlowId`].
//!
//! Every id is a non-empty string of at most [`MAX_ID_LEN`] bytes without control characters.
//! The platform's own ids (for example the `123456` of `/subscription/123456`) are valid as they
//! are. Each id type is distinct, so a [`SubscriptionId`] can never be passed where a
//! [`SectionId`] is expected. Ids are reference-counted: cloning one never allocates.

use std::borrow::Borrow;
use std::fmt;

use crate::model::error::{IdError, IdKind, IdProblem};

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Checks the rules shared by every id type and names the id type in the error.
fn validate(kind: IdKind, value: &str) -> Result<(), IdError> {
    let problem = if value.is_empty() {
        Some(IdProblem::Empty)
    } else if value.len() > MAX_ID_LEN {
        Some(IdProblem::TooLong {
            len: value.len(),
            max: MAX_ID_LEN,
        })
    } else {
        value
            .char_indices()
            .find(|(_, c)| c.is_control())
            .map(|(position, _)| IdProblem::ControlCharacter { position })
    };
    match problem {
        Some(problem) => Err(IdError { kind, problem }),
        None => Ok(()),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// This id type, as errors name it.
            pub const KIND: IdKind = IdKind::$kind;

            /// Validates `value` and wraps it.
            ///
            /// # Errors
            ///
            /// [`IdError`] when the value is empty, longer than [`MAX_ID_LEN`] bytes, or holds
            /// a control character.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate(Self::KIND, &value)?;
                Ok(Self(std::sync::Arc::from(value)))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id, shared (no copy).
            #[allow(dead_code, reason = "not every id type is sent as a parameter")]
            pub(crate) fn shared(&self) -> std::sync::Arc<str> {
                std::sync::Arc::clone(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&&*self.0).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// The id of a Section, the top-level workspace of an account that owns Folders.
    SectionId,
    Section
);
id_type!(
    /// The id of a Folder, a group of Subscriptions inside a Section.
    FolderId,
    Folder
);
id_type!(
    /// The id of a Subscription, one thing a Profile can consent to.
    ///
    /// The platform shows it as the number after `/subscription/` in the Audience URL;
    /// [`SubscriptionId::from_audience_url`] takes it from such a URL.
    ///
    /// ```
    /// use optout_relay::SubscriptionId;
    ///
    /// let id = SubscriptionId::new("123456")?;
    /// assert_eq!(id.as_str(), "123456");
    /// # Ok::<(), optout_relay::model::IdError>(())
    /// ```
    SubscriptionId,
    Subscription
);
id_type!(
    /// The id of a Profile (a person).
    ProfileId,
    Profile
);
id_type!(
    /// The id of an Activity: one message (an email or SMS send) a Profile can opt out from.
    ActivityId,
    Activity
);
id_type!(
    /// The id of a Flow (a Listen node and a Webhook node), unique among a host's flows.
    FlowId,
    Flow
);
id_type!(
    /// The id of one opt-out event. A re-delivered copy of an event carries the same id.
    EventId,
    Event
);

impl ProfileId {
    /// The id masked for logs and errors: its first character and `***`, as in `p***` (only
    /// `***` for an id of one or two characters, which would otherwise show whole). A
    /// Profile id may be personal (some hosts use the Email or Mobile as the id), so errors
    /// that name a Profile show it masked.
    ///
    /// ```
    /// use optout_relay::ProfileId;
    ///
    /// assert_eq!(ProfileId::new("ada@example.com")?.masked(), "a***");
    /// assert_eq!(ProfileId::new("p")?.masked(), "***");
    /// # Ok::<(), optout_relay::model::IdError>(())
    /// ```
    pub fn masked(&self) -> String {
        crate::model::text::mask_prefix(&self.0, 1)
    }
}

impl SubscriptionId {
    /// Takes the Subscription id from an Audience URL such as
    /// `https://app.example.com/audience/subscription/123456`: the path segment after the last
    /// `subscription` segment. Query and fragment are ignored.
    ///
    /// # Errors
    ///
    /// [`IdError`] with [`IdProblem::NotInUrl`] when the URL has no `subscription/<id>` segment
    /// pair, or the usual id errors for the segment found.
    ///
    /// ```
    /// use optout_relay::SubscriptionId;
    ///
    /// let id = SubscriptionId::from_audience_url("https://app.example.com/audience/subscription/123456?tab=1")?;
    /// assert_eq!(id.as_str(), "123456");
    /// # Ok::<(), optout_relay::model::IdError>(())
    /// ```
    pub fn from_audience_url(address: &str) -> Result<Self, IdError> {
        let path = address
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        let mut segments = path.rsplit('/');
        let mut last = None;
        for segment in segments.by_ref() {
            if segment == "subscription" {
                return match last {
                    Some(id) => Self::new(id),
                    None => Err(IdError {
                        kind: Self::KIND,
                        problem: IdProblem::NotInUrl,
                    }),
                };
            }
            last = Some(segment);
        }
        Err(IdError {
            kind: Self::KIND,
            problem: IdProblem::NotInUrl,
        })
    }
}
