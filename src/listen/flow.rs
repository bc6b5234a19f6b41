//! Flows (a Listen node, Flow Settings and a Webhook node in one Section) and the flow file.

use std::num::NonZeroU32;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::error::{FlowFileError, ListenError};
use crate::listen::ListenNode;
use crate::model::{FlowId, SectionId};
use crate::webhook::WebhookNode;

/// How often one Profile may enter a flow (the platform's Flow Settings, General Settings).
///
/// Whatever the limit, a re-delivered copy of the same event (same [`EventId`](crate::EventId))
/// never enters the same flow twice.
///
/// JSON: `"unlimited"`, or `{"at_most": {"entries": 1}}`, or
/// `{"at_most": {"entries": 2, "within": "PT720H"}}` (an ISO 8601 duration, or jiff's friendly
/// form such as `"30 days"` when reading; days are 24 hours).
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
        within: Option<SignedDuration>,
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
    /// [`ListenError::ZeroEntries`] for 0 entries, [`ListenError::NonPositiveWindow`] for a
    /// window that is zero or negative.
    pub fn at_most_within(entries: u32, within: SignedDuration) -> Result<Self, ListenError> {
        let entries = NonZeroU32::new(entries).ok_or(ListenError::ZeroEntries)?;
        if within <= SignedDuration::ZERO {
            return Err(ListenError::NonPositiveWindow);
        }
        Ok(Self::AtMost {
            entries,
            within: Some(within),
        })
    }

    fn validate(&self) -> Result<(), ListenError> {
        match self {
            Self::AtMost {
                within: Some(within),
                ..
            } if *within <= SignedDuration::ZERO => Err(ListenError::NonPositiveWindow),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for EntryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unlimited => f.write_str("unlimited"),
            Self::AtMost {
                entries,
                within: None,
            } => write!(f, "at most {entries} entries"),
            Self::AtMost {
                entries,
                within: Some(within),
            } => write!(f, "at most {entries} entries within {within:#}"),
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
}

impl FlowSettings {
    /// Settings with this entry limit.
    pub fn with_entry_limit(entry_limit: EntryLimit) -> Self {
        Self { entry_limit }
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
    #[serde(default, deserialize_with = "deserialize_settings")]
    pub settings: FlowSettings,
    /// Where and how the flow sends.
    pub webhook: WebhookNode,
}

fn active_default() -> bool {
    true
}

fn deserialize_settings<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<FlowSettings, D::Error> {
    let settings = FlowSettings::deserialize(deserializer)?;
    settings
        .entry_limit
        .validate()
        .map_err(serde::de::Error::custom)?;
    Ok(settings)
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
    /// unknown field, a wrong type, an invalid id or setting, an unsupported version or a
    /// repeated flow id) and its line and column. The message never repeats a string value
    /// found in the file (it may be a token, a password or a signing secret written in the
    /// wrong place), nor, under `auth`, an unknown variant name.
    pub fn from_json(text: &str) -> Result<Self, FlowFileError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let file: FlowFile =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
                let mut path = err.path().to_string();
                if path.is_empty() {
                    // A key `""` at the top level: serde_path_to_error writes it as nothing.
                    path = ".".to_owned();
                }
                let inner = err.into_inner();
                let mut message = redact_strings(&strip_position(&inner.to_string()));
                if path.split('.').any(|segment| segment == "auth") {
                    message = redact_variant(&message);
                }
                FlowFileError {
                    path,
                    message,
                    line: inner.line(),
                    column: inner.column(),
                }
            })?;
        deserializer.end().map_err(|err| FlowFileError {
            path: ".".into(),
            message: redact_strings(&strip_position(&err.to_string())),
            line: err.line(),
            column: err.column(),
        })?;
        if file.version != FLOW_FILE_VERSION {
            return Err(FlowFileError {
                path: "version".into(),
                message: format!(
                    "unsupported flow-file version {}, expected {FLOW_FILE_VERSION}",
                    file.version
                ),
                line: 0,
                column: 0,
            });
        }
        for (position, flow) in file.flows.iter().enumerate() {
            if file.flows[..position].iter().any(|f| f.id == flow.id) {
                return Err(FlowFileError {
                    path: format!("flows[{position}].id"),
                    message: format!("flow id `{}` is used by an earlier flow", flow.id),
                    line: 0,
                    column: 0,
                });
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

/// serde_json appends " at line L column C" to its messages; the error keeps those apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// serde quotes a string it did not expect (`invalid type: string "...", expected ...`): in a
/// flow file that string may be a bearer token, a password or a signing secret written where a
/// structure belongs, so the error says `a string` instead. serde writes the string with Rust's
/// `{:?}` escaping, so the closing quote is the first one not preceded by a backslash.
fn redact_strings(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(QUOTED) {
        out.push_str(&rest[..start]);
        out.push_str("a string");
        let quoted = &rest[start + QUOTED.len()..];
        let mut escaped = false;
        let mut end = quoted.len();
        for (index, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = index + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

/// Under `auth`, serde's `unknown variant `...`` is what was written instead of `bearer`,
/// `basic` or `header`: quite possibly the token itself (`"auth": "s3cr3t"`). The error keeps
/// the list of expected variants and drops the value.
fn redact_variant(message: &str) -> String {
    const UNKNOWN: &str = "unknown variant `";
    match message.strip_prefix(UNKNOWN) {
        Some(rest) => match rest.find("`, expected") {
            Some(end) => format!("unknown variant{}", &rest[end + 1..]),
            None => "unknown variant".to_owned(),
        },
        None => message.to_owned(),
    }
}
