//! The catalog of a Section: its Folders and their Subscriptions, with lookups.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::error::CatalogError;
use crate::model::{FolderId, SectionId, SubscriptionId};

/// One thing a Profile can consent to, such as a newsletter or an SMS programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Subscription {
    /// The Subscription's id.
    pub id: SubscriptionId,
    /// A display name, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Subscription {
    /// A Subscription without a display name.
    pub fn new(id: SubscriptionId) -> Self {
        Self { id, name: None }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl From<SubscriptionId> for Subscription {
    fn from(id: SubscriptionId) -> Self {
        Self::new(id)
    }
}

/// A group of Subscriptions inside a Section (the platform's older word: consent list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Folder {
    /// The Folder's id.
    pub id: FolderId,
    /// A display name, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Subscriptions in this Folder, in order.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

impl Folder {
    /// A Folder holding `subscriptions`, without a display name.
    pub fn new(
        id: FolderId,
        subscriptions: impl IntoIterator<Item = impl Into<Subscription>>,
    ) -> Self {
        Self {
            id,
            name: None,
            subscriptions: subscriptions.into_iter().map(Into::into).collect(),
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// The catalog of one Section: the top-level workspace of an account, its Folders and their
/// Subscriptions.
///
/// Built once and validated: Folder ids are unique in the Section, and every Subscription is
/// listed exactly once. Lookups of a Subscription's Folder are O(1).
///
/// JSON shape:
///
/// ```json
/// {"id":"sec-1","name":"Brand","folders":[{"id":"news","subscriptions":[{"id":"123456","name":"Weekly"}]}]}
/// ```
///
/// ```
/// use optout_relay::{Folder, Section, SectionId, FolderId, SubscriptionId};
///
/// let weekly = SubscriptionId::new("123456")?;
/// let section = Section::new(
///     SectionId::new("sec-1")?,
///     [Folder::new(FolderId::new("news")?, [weekly.clone()])],
/// )?;
/// assert_eq!(section.folder_of(&weekly).map(|f| f.as_str()), Some("news"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SectionData", into = "SectionData")]
pub struct Section {
    data: SectionData,
    /// Subscription id -> index of its Folder in `data.folders`.
    index: HashMap<SubscriptionId, usize>,
}

/// The serialized form of a [`Section`], validated into one by `TryFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct SectionData {
    id: SectionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default)]
    folders: Vec<Folder>,
}

impl TryFrom<SectionData> for Section {
    type Error = CatalogError;

    fn try_from(data: SectionData) -> Result<Self, Self::Error> {
        let mut index = HashMap::new();
        for (position, folder) in data.folders.iter().enumerate() {
            if data.folders[..position].iter().any(|f| f.id == folder.id) {
                return Err(CatalogError::DuplicateFolder {
                    section: data.id.clone(),
                    folder: folder.id.clone(),
                });
            }
            for subscription in &folder.subscriptions {
                if index.insert(subscription.id.clone(), position).is_some() {
                    return Err(CatalogError::DuplicateSubscription {
                        section: data.id.clone(),
                        subscription: subscription.id.clone(),
                    });
                }
            }
        }
        Ok(Self { data, index })
    }
}

impl From<Section> for SectionData {
    fn from(section: Section) -> Self {
        section.data
    }
}

impl Section {
    /// Builds and validates the catalog of a Section.
    ///
    /// # Errors
    ///
    /// [`CatalogError::DuplicateFolder`] when two Folders share an id;
    /// [`CatalogError::DuplicateSubscription`] when a Subscription is listed twice.
    pub fn new(
        id: SectionId,
        folders: impl IntoIterator<Item = Folder>,
    ) -> Result<Self, CatalogError> {
        Self::try_from(SectionData {
            id,
            name: None,
            folders: folders.into_iter().collect(),
        })
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.data.name = Some(name.into());
        self
    }

    /// The Section's id.
    pub fn id(&self) -> &SectionId {
        &self.data.id
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        self.data.name.as_deref()
    }

    /// The Folders, in order.
    pub fn folders(&self) -> &[Folder] {
        &self.data.folders
    }

    /// The Folder with this id.
    pub fn folder(&self, id: &FolderId) -> Option<&Folder> {
        self.data.folders.iter().find(|f| &f.id == id)
    }

    /// Whether the Subscription is in this Section.
    pub fn contains(&self, subscription: &SubscriptionId) -> bool {
        self.index.contains_key(subscription)
    }

    /// The Folder that holds the Subscription, if it is in this Section.
    pub fn folder_of(&self, subscription: &SubscriptionId) -> Option<&FolderId> {
        self.index
            .get(subscription)
            .map(|&position| &self.data.folders[position].id)
    }

    /// Every Subscription of the Section, Folder by Folder, in catalog order.
    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.data
            .folders
            .iter()
            .flat_map(|f| f.subscriptions.iter())
    }

    /// The number of Subscriptions in the Section.
    pub fn subscription_count(&self) -> usize {
        self.index.len()
    }
}

/// Where a Subscription sits: its Section and Folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location<'a> {
    /// The Section that owns the Folder.
    pub section: &'a SectionId,
    /// The Folder that holds the Subscription.
    pub folder: &'a FolderId,
}

/// The catalogs of several Sections of one account. Subscription ids are unique across the
/// whole catalog, so any Subscription can be located without knowing its Section.
///
/// Serializes as a JSON array of [`Section`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Section>", into = "Vec<Section>")]
pub struct Catalog {
    sections: Vec<Section>,
    /// Subscription id -> index of its Section in `sections`.
    index: HashMap<SubscriptionId, usize>,
}

impl TryFrom<Vec<Section>> for Catalog {
    type Error = CatalogError;

    fn try_from(sections: Vec<Section>) -> Result<Self, Self::Error> {
        let mut index = HashMap::new();
        for (position, section) in sections.iter().enumerate() {
            if sections[..position].iter().any(|s| s.id() == section.id()) {
                return Err(CatalogError::DuplicateSection {
                    section: section.id().clone(),
                });
            }
            for subscription in section.subscriptions() {
                if index.insert(subscription.id.clone(), position).is_some() {
                    return Err(CatalogError::DuplicateSubscription {
                        section: section.id().clone(),
                        subscription: subscription.id.clone(),
                    });
                }
            }
        }
        Ok(Self { sections, index })
    }
}

impl From<Catalog> for Vec<Section> {
    fn from(catalog: Catalog) -> Self {
        catalog.sections
    }
}

impl Catalog {
    /// Builds and validates a catalog of several Sections.
    ///
    /// # Errors
    ///
    /// [`CatalogError::DuplicateSection`] when two Sections share an id;
    /// [`CatalogError::DuplicateSubscription`] when a Subscription appears in two Sections.
    pub fn new(sections: impl IntoIterator<Item = Section>) -> Result<Self, CatalogError> {
        Self::try_from(sections.into_iter().collect::<Vec<_>>())
    }

    /// The Sections, in order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The Section with this id.
    pub fn section(&self, id: &SectionId) -> Option<&Section> {
        self.sections.iter().find(|s| s.id() == id)
    }

    /// The Section and Folder a Subscription belongs to.
    pub fn locate(&self, subscription: &SubscriptionId) -> Option<Location<'_>> {
        let section = &self.sections[*self.index.get(subscription)?];
        let folder = section.folder_of(subscription)?;
        Some(Location {
            section: section.id(),
            folder,
        })
    }
}
