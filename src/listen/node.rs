//! The Listen node: which opt-out events a flow takes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::listen::error::ListenError;
use crate::model::{ActivityId, EventKind, FolderId, Origin, SubscriptionId};

/// What a flow takes: event kinds, optional narrowing by Subscriptions, Folders and Activities,
/// and the origins it accepts.
///
/// - **Kinds**: a non-empty set (the platform allows one per flow; this crate allows several).
/// - **Subscriptions / Folders / Activities**: absent means any; present means the event's
///   Subscription (its Folder, its Activity) must be in the set. Email - Abuse is section-level:
///   Subscription and Folder narrowing never exclude it (the lint says such a setting is
///   meaningless there). An event without an Activity never matches an Activity narrowing.
/// - **Origins**: by default only [`Origin::Communication`], as on the platform; opt in to
///   [`Origin::Api`] and [`Origin::FileImport`] explicitly.
///
/// JSON shape (every field but `kinds` optional):
///
/// ```json
/// {"kinds": ["email_unsubscribe", "sms_unsubscribe"], "subscriptions": ["123456"],
///  "folders": ["news"], "activities": ["weekly-2026-47"], "origins": ["communication", "api"]}
/// ```
///
/// ```
/// use optout_relay::{EventKind, ListenNode, Origin, SubscriptionId};
///
/// let listen = ListenNode::builder()
///     .kind(EventKind::EmailUnsubscribe)
///     .subscription(SubscriptionId::new("123456")?)
///     .origin(Origin::Api)
///     .build()?;
/// assert!(listen.takes_origin(Origin::Communication));
/// assert!(listen.takes_origin(Origin::Api));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ListenData", into = "ListenData")]
pub struct ListenNode {
    kinds: BTreeSet<EventKind>,
    subscriptions: Option<BTreeSet<SubscriptionId>>,
    folders: Option<BTreeSet<FolderId>>,
    activities: Option<BTreeSet<ActivityId>>,
    origins: BTreeSet<Origin>,
}

fn default_origins() -> BTreeSet<Origin> {
    BTreeSet::from([Origin::Communication])
}

impl ListenNode {
    /// A builder; at least one kind must be added.
    pub fn builder() -> ListenNodeBuilder {
        ListenNodeBuilder::default()
    }

    /// A Listen node taking `kinds` from any Subscription, Folder and Activity of the Section,
    /// through communications only: the platform's Listen node without further settings.
    ///
    /// # Errors
    ///
    /// [`ListenError::NoEventKind`] when `kinds` is empty.
    pub fn new(kinds: impl IntoIterator<Item = EventKind>) -> Result<Self, ListenError> {
        kinds
            .into_iter()
            .fold(Self::builder(), ListenNodeBuilder::kind)
            .build()
    }

    /// The event kinds taken.
    pub fn kinds(&self) -> &BTreeSet<EventKind> {
        &self.kinds
    }

    /// Whether events of `kind` are taken.
    pub fn takes_kind(&self, kind: EventKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The Subscriptions narrowed to; `None` for any.
    pub fn subscriptions(&self) -> Option<&BTreeSet<SubscriptionId>> {
        self.subscriptions.as_ref()
    }

    /// The Folders narrowed to; `None` for any.
    pub fn folders(&self) -> Option<&BTreeSet<FolderId>> {
        self.folders.as_ref()
    }

    /// The Activities narrowed to; `None` for any.
    pub fn activities(&self) -> Option<&BTreeSet<ActivityId>> {
        self.activities.as_ref()
    }

    /// The origins taken.
    pub fn origins(&self) -> &BTreeSet<Origin> {
        &self.origins
    }

    /// Whether opt-outs of `origin` are taken.
    pub fn takes_origin(&self, origin: Origin) -> bool {
        self.origins.contains(&origin)
    }

    /// Whether the node narrows by Subscription or Folder.
    pub fn narrows_subscriptions(&self) -> bool {
        self.subscriptions.is_some() || self.folders.is_some()
    }
}

/// Builds a [`ListenNode`]; keeps the first error and reports it at [`build`](Self::build).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ListenNodeBuilder {
    kinds: BTreeSet<EventKind>,
    subscriptions: Option<BTreeSet<SubscriptionId>>,
    folders: Option<BTreeSet<FolderId>>,
    activities: Option<BTreeSet<ActivityId>>,
    origins: Option<BTreeSet<Origin>>,
}

impl ListenNodeBuilder {
    /// Takes events of `kind`.
    pub fn kind(mut self, kind: EventKind) -> Self {
        self.kinds.insert(kind);
        self
    }

    /// Narrows to `subscription` (adds it to the Subscription set).
    pub fn subscription(mut self, subscription: SubscriptionId) -> Self {
        self.subscriptions
            .get_or_insert_with(BTreeSet::new)
            .insert(subscription);
        self
    }

    /// Narrows to `folder` (adds it to the Folder set).
    pub fn folder(mut self, folder: FolderId) -> Self {
        self.folders
            .get_or_insert_with(BTreeSet::new)
            .insert(folder);
        self
    }

    /// Narrows to `activity` (adds it to the Activity set).
    pub fn activity(mut self, activity: ActivityId) -> Self {
        self.activities
            .get_or_insert_with(BTreeSet::new)
            .insert(activity);
        self
    }

    /// Also takes opt-outs of `origin` (communications are always taken unless
    /// [`only_origins`](Self::only_origins) says otherwise).
    pub fn origin(mut self, origin: Origin) -> Self {
        self.origins
            .get_or_insert_with(default_origins)
            .insert(origin);
        self
    }

    /// Takes exactly these origins.
    pub fn only_origins(mut self, origins: impl IntoIterator<Item = Origin>) -> Self {
        self.origins = Some(origins.into_iter().collect());
        self
    }

    /// Validates and builds the node.
    ///
    /// # Errors
    ///
    /// [`ListenError::NoEventKind`] without a kind; [`ListenError::EmptySet`] when
    /// [`only_origins`](Self::only_origins) was given no origin.
    pub fn build(self) -> Result<ListenNode, ListenError> {
        ListenNode::try_from(ListenData {
            kinds: self.kinds.into_iter().collect(),
            subscriptions: self.subscriptions.map(|s| s.into_iter().collect()),
            folders: self.folders.map(|s| s.into_iter().collect()),
            activities: self.activities.map(|s| s.into_iter().collect()),
            origins: self.origins.map(|s| s.into_iter().collect()),
        })
    }
}

/// The serialized form of a [`ListenNode`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct ListenData {
    kinds: Vec<EventKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscriptions: Option<Vec<SubscriptionId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    folders: Option<Vec<FolderId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activities: Option<Vec<ActivityId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origins: Option<Vec<Origin>>,
}

fn non_empty<T: Ord>(
    field: &'static str,
    values: Option<Vec<T>>,
) -> Result<Option<BTreeSet<T>>, ListenError> {
    match values {
        Some(values) if values.is_empty() => Err(ListenError::EmptySet { field }),
        Some(values) => Ok(Some(values.into_iter().collect())),
        None => Ok(None),
    }
}

impl TryFrom<ListenData> for ListenNode {
    type Error = ListenError;

    fn try_from(data: ListenData) -> Result<Self, Self::Error> {
        if data.kinds.is_empty() {
            return Err(ListenError::NoEventKind);
        }
        Ok(Self {
            kinds: data.kinds.into_iter().collect(),
            subscriptions: non_empty("subscriptions", data.subscriptions)?,
            folders: non_empty("folders", data.folders)?,
            activities: non_empty("activities", data.activities)?,
            origins: non_empty("origins", data.origins)?.unwrap_or_else(default_origins),
        })
    }
}

impl From<ListenNode> for ListenData {
    fn from(node: ListenNode) -> Self {
        let origins =
            (node.origins != default_origins()).then(|| node.origins.into_iter().collect());
        Self {
            kinds: node.kinds.into_iter().collect(),
            subscriptions: node.subscriptions.map(|s| s.into_iter().collect()),
            folders: node.folders.map(|s| s.into_iter().collect()),
            activities: node.activities.map(|s| s.into_iter().collect()),
            origins,
        }
    }
}
