//! Flows (a Listen node, Flow Settings and a Webhook node in one Section) and the flow file.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::listen::error::{FlowFileError, FlowFileProblem, ListenError};
use crate::listen::{EntryWindow, ListenNode};
use crate::model::{FlowId, SectionId};
use crate::webhook::WebhookNode;

/// How often one Profile may enter a flow (the platform's Flow Settings, General Settings).
///
/// Whatever the limit, a re-delivered copy of the same event (same [`EventId`](crate::EventId))
/// never enters the same flow twice.
///
/// JSON: `"unlimited"`, or `{"at_most": {"entries": 1}}`, or
/// `{"at_most": {"entries": 2, "within": "30 days"}}`: the window in days, weeks, months,
/// years, hours or minutes, friendly (`"7 days"`, `"1 week"`, `"1 month"`, `"1 year"`, `"7d"`)
/// or ISO 8601 (`"P7D"`, `"P1W"`, `"P1M"`, `"P1Y"`, `"PT36H"`). A day counts as 24 hours, a
/// week as 7 days, a month as 30 days and a year as 365 days (see [`EntryWindow`]).
///
/// ```
/// use optout_relay::EntryLimit;
/// use optout_relay::listen::EntryWindow;
/// use optout_relay::listen::WindowUnit;
///
/// let limit: EntryLimit =
///     serde_json::from_str(r#"{"at_most": {"entries": 1, "within": "7 days"}}"#)?;
/// assert_eq!(limit, EntryLimit::at_most_within(1, EntryWindow::new(7, WindowUnit::Day)?)?);
/// assert_eq!(limit.to_string(), "at most 1 entry within 7 days");
/// assert_eq!(serde_json::to_string(&limit)?, r#"{"at_most":{"entries":1,"within":"7 days"}}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum EntryLimit {
    /// Profiles may re-enter every time they opt out: what an opt-out flow needs.
    #[default]
    Unlimited,
    /// At most `entries` entries per Profile, ever or within a sliding window.
    AtMost {
        /// How many entries.
        entries: NonZeroU32,
        /// The sliding window the entries are counted in; `None` counts every entry ever.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<EntryWindow>,
    },
}

impl EntryLimit {
    /// At most `entries` entries per Profile, counted over all time.
    ///
    /// # Errors
    ///
    /// [`ListenError::ZeroEntries`] for 0.
    pub fn at_most(entries: u32) -> Result<Self, ListenError> {
        let entries = NonZeroU32::new(entries).ok_or(ListenError::ZeroEntries)?;
        Ok(Self::AtMost {
            entries,
            within: None,
        })
    }

    /// At most `entries` entries per Profile within any window of length `within`.
    ///
    /// # Errors
    ///
    /// [`ListenError::ZeroEntries`] for 0 entries.
    pub fn at_most_within(entries: u32, within: EntryWindow) -> Result<Self, ListenError> {
        let entries = NonZeroU32::new(entries).ok_or(ListenError::ZeroEntries)?;
        Ok(Self::AtMost {
            entries,
            within: Some(within),
        })
    }
}

impl fmt::Display for EntryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlimited => f.write_str("unlimited"),
            Self::AtMost { entries, within } => {
                let noun = if entries.get() == 1 {
                    "entry"
                } else {
                    "entries"
                };
                write!(f, "at most {entries} {noun}")?;
                match within {
                    Some(within) => write!(f, " within {within}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A flow's settings (the platform's Flow Settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub struct FlowSettings {
    /// How often one Profile may enter. Defaults to [`EntryLimit::Unlimited`].
    #[serde(default)]
    pub entry_limit: EntryLimit,
    /// The order the flow's deliveries are sent in. Defaults to [`DeliveryOrder::Any`].
    #[serde(default, skip_serializing_if = "DeliveryOrder::is_any")]
    pub order: DeliveryOrder,
}

impl FlowSettings {
    /// Settings with this entry limit.
    pub fn with_entry_limit(entry_limit: EntryLimit) -> Self {
        Self {
            entry_limit,
            order: DeliveryOrder::Any,
        }
    }

    /// These settings with deliveries sent in `order`.
    #[must_use]
    pub fn with_order(mut self, order: DeliveryOrder) -> Self {
        self.order = order;
        self
    }
}

/// The order a flow's deliveries are sent in (`settings.order` in JSON: `"any"` or
/// `"per_profile"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryOrder {
    /// Any order: every due delivery may be sent at once (the default).
    #[default]
    Any,
    /// One Profile's deliveries in the order the store admitted them: while an earlier
    /// delivery of the same (flow, Profile) is pending (waiting for a retry, or in flight), the
    /// later ones wait, so the receiver sees a Profile's opt-outs in the order they were
    /// submitted. A dead-lettered earlier delivery no longer holds the later ones back, and
    /// other Profiles never wait for this one.
    PerProfile,
}

impl DeliveryOrder {
    /// Whether this is [`DeliveryOrder::Any`].
    pub fn is_any(&self) -> bool {
        *self == Self::Any
    }
}

/// One flow: a Listen node and a Webhook node in one Section, with its settings.
///
/// JSON shape (`name`, `active` and `settings` optional; `active` defaults to `true`,
/// `settings.entry_limit` to `"unlimited"`):
///
/// ```json
/// {
///   "id": "forward-unsubscribes",
///   "name": "Forward email unsubscribes",
///   "section": "sec-1",
///   "active": true,
///   "listen": {"kinds": ["email_unsubscribe"]},
///   "settings": {"entry_limit": "unlimited"},
///   "webhook": {"method": "POST", "url": "https://crm.example.com/optout"}
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Flow {
    /// The flow's id, unique among the flows of one router.
    pub id: FlowId,
    /// A display name, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Section the flow belongs to; events of other Sections never enter.
    pub section: SectionId,
    /// Whether the flow is active; an inactive flow takes nothing.
    #[serde(default = "active_default")]
    pub active: bool,
    /// What the flow takes.
    pub listen: ListenNode,
    /// Flow Settings.
    #[serde(default)]
    pub settings: FlowSettings,
    /// Where and how the flow sends.
    pub webhook: WebhookNode,
}

fn active_default() -> bool {
    true
}

impl Flow {
    /// An active flow with default settings (unlimited re-entry).
    pub fn new(id: FlowId, section: SectionId, listen: ListenNode, webhook: WebhookNode) -> Self {
        Self {
            id,
            name: None,
            section,
            active: true,
            listen,
            settings: FlowSettings::default(),
            webhook,
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the settings.
    #[must_use]
    pub fn with_settings(mut self, settings: FlowSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets whether the flow is active.
    #[must_use]
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = active;
        self
    }
}

/// The current version of the flow-file format.
pub const FLOW_FILE_VERSION: u32 = 1;

/// A flow file: the JSON document that defines a host's flows.
///
/// ```json
/// {"version": 1, "flows": [ /* Flow objects */ ]}
/// ```
///
/// Reading checks the JSON against the format and reports the path of the first problem:
///
/// ```
/// use optout_relay::FlowFile;
///
/// let err = FlowFile::from_json(r#"{"version": 1, "flows": [{"id": "f", "section": "s",
///     "listen": {"kinds": ["email_bounce"]}, "webhook": {"url": "https://example.com/"}}]}"#)
///     .unwrap_err();
/// assert_eq!(err.path, "flows[0].listen.kinds[0]");
/// assert!(matches!(err.problem, optout_relay::listen::FlowFileProblem::UnknownVariant { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct FlowFile {
    /// The format version; [`FLOW_FILE_VERSION`].
    pub version: u32,
    /// The flows, in order.
    pub flows: Vec<Flow>,
}

impl FlowFile {
    /// A flow file of the current version holding `flows`.
    pub fn new(flows: impl IntoIterator<Item = Flow>) -> Self {
        Self {
            version: FLOW_FILE_VERSION,
            flows: flows.into_iter().collect(),
        }
    }

    /// Reads a flow file from JSON text.
    ///
    /// # Errors
    ///
    /// [`FlowFileError`] naming the JSON path of the first problem (malformed JSON, a missing or
    /// unknown field, a wrong type, an unknown variant, an invalid id, name or setting, an
    /// unsupported version or a repeated flow id), what it is ([`FlowFileProblem`]) and its line
    /// and column. The error is built from what went wrong and where, never from a parser's
    /// message: it repeats no value found in the file (a string, a number, an unknown key or
    /// variant name, a flow id), which may be a token, a password or an Email written in the
    /// wrong place, and its text stays short however large the file.
    pub fn from_json(text: &str) -> Result<Self, FlowFileError> {
        let file: FlowFile = super::read::from_str(text)?;
        if file.version != FLOW_FILE_VERSION {
            return Err(FlowFileError {
                path: "version".into(),
                problem: FlowFileProblem::Version {
                    expected: FLOW_FILE_VERSION,
                },
                line: None,
                column: None,
            });
        }
        let mut seen: HashMap<&FlowId, usize> = HashMap::with_capacity(file.flows.len());
        for (position, flow) in file.flows.iter().enumerate() {
            match seen.entry(&flow.id) {
                Entry::Occupied(first) => {
                    return Err(FlowFileError {
                        path: format!("flows[{position}].id"),
                        problem: FlowFileProblem::DuplicateFlowId {
                            first: *first.get(),
                        },
                        line: None,
                        column: None,
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(position);
                }
            }
        }
        Ok(file)
    }

    /// Writes the flow file as pretty-printed JSON.
    ///
    /// # Errors
    ///
    /// Only what [`serde_json::to_string_pretty`] reports; the flow types hold plain data with
    /// string keys, so none is expected.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}
