//! Consent effects: what an opt-out event does to a Profile's consent.
//!
//! - **Email - Unsubscribe** revokes email consent for the one Subscription the email was sent
//!   to; every other Subscription is untouched.
//! - **SMS - Unsubscribe** revokes SMS consent for the one Subscription the SMS was sent to.
//! - **Email - Abuse** revokes email consent for every Subscription in every Folder of the
//!   Section and is recorded once, as one section-level opt-out. SMS consent is untouched.
//!
//! Applying is idempotent: the same event applied twice changes nothing the second time, and the
//! returned [`ConsentEffect`] says so.

use serde::{Deserialize, Serialize};

use crate::model::error::ApplyError;
use crate::model::{
    Channel, ConsentState, EventId, FolderId, OptOutEvent, OptOutKind, Profile, Section, SectionId,
    SectionOptOut, SubscriptionId,
};

/// What an opt-out covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OptOutScope {
    /// One Subscription, on one channel.
    Subscription {
        /// The Section.
        section: SectionId,
        /// The Folder holding the Subscription.
        folder: FolderId,
        /// The Subscription.
        subscription: SubscriptionId,
    },
    /// Every Subscription of the Section (Email - Abuse).
    Section {
        /// The Section.
        section: SectionId,
    },
}

/// One consent that an event changed to opted out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Revocation {
    /// The Subscription.
    pub subscription: SubscriptionId,
    /// Whether the Profile was opted in before (`false`: no consent had been recorded).
    pub was_opted_in: bool,
}

/// Whether applying an event changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EffectStatus {
    /// Consent changed (see [`ConsentEffect::revoked`]) or a section-level opt-out was recorded.
    Changed,
    /// This very event had already been applied: nothing changed.
    AlreadyApplied,
    /// The Profile was already opted out (by an earlier event): nothing changed.
    AlreadyOptedOut,
}

/// What applying one opt-out event to a Profile did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[must_use]
pub struct ConsentEffect {
    /// The event applied.
    pub event: EventId,
    /// What the opt-out covers.
    pub scope: OptOutScope,
    /// The channel whose consent was revoked.
    pub channel: Channel,
    /// The consents changed to opted out, in catalog order. Empty when nothing changed.
    pub revoked: Vec<Revocation>,
    /// Whether anything changed.
    pub status: EffectStatus,
}

impl ConsentEffect {
    /// Whether the Profile changed.
    pub fn changed(&self) -> bool {
        self.status == EffectStatus::Changed
    }
}

impl Profile {
    /// Applies an opt-out event to this Profile, using the catalog of the event's Section.
    ///
    /// # Errors
    ///
    /// - [`ApplyError::ProfileMismatch`] when the event is for another Profile;
    /// - [`ApplyError::SectionMismatch`] when the event is of another Section than `section`;
    /// - [`ApplyError::UnknownSubscription`] when the event's Subscription is not in `section`.
    ///
    /// On error the Profile is unchanged.
    ///
    /// ```
    /// use optout_relay::*;
    /// use optout_relay::model::EffectStatus;
    ///
    /// let (a, b) = (SubscriptionId::new("111")?, SubscriptionId::new("222")?);
    /// let section = Section::new(SectionId::new("sec-1")?, [Folder::new(FolderId::new("news")?, [a.clone(), b.clone()])])?;
    /// let mut profile = Profile::new(ProfileId::new("p-1")?)
    ///     .with_consent(a.clone(), Channel::Email)
    ///     .with_consent(b.clone(), Channel::Email);
    ///
    /// let event = OptOutEvent::email_unsubscribe(
    ///     EventId::new("evt-1")?, ProfileId::new("p-1")?, SectionId::new("sec-1")?, a.clone(),
    ///     "2026-11-26T09:30:00Z".parse()?,
    /// );
    /// let effect = profile.apply(&event, &section)?;
    /// assert!(effect.changed());
    /// assert!(!profile.is_opted_in(&a, Channel::Email));
    /// assert!(profile.is_opted_in(&b, Channel::Email));
    /// assert_eq!(profile.apply(&event, &section)?.status, EffectStatus::AlreadyApplied);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(
        &mut self,
        event: &OptOutEvent,
        section: &Section,
    ) -> Result<ConsentEffect, ApplyError> {
        if event.profile() != &self.id {
            return Err(ApplyError::ProfileMismatch {
                event_profile: event.profile().clone(),
                profile: self.id.clone(),
            });
        }
        if event.section() != section.id() {
            return Err(ApplyError::SectionMismatch {
                event_section: event.section().clone(),
                catalog_section: section.id().clone(),
            });
        }
        match event.opt_out() {
            OptOutKind::EmailUnsubscribe { subscription }
            | OptOutKind::SmsUnsubscribe { subscription } => {
                self.apply_to_subscription(event, section, subscription)
            }
            OptOutKind::EmailAbuse => Ok(self.apply_to_section(event, section)),
        }
    }

    fn apply_to_subscription(
        &mut self,
        event: &OptOutEvent,
        section: &Section,
        subscription: &SubscriptionId,
    ) -> Result<ConsentEffect, ApplyError> {
        let folder =
            section
                .folder_of(subscription)
                .ok_or_else(|| ApplyError::UnknownSubscription {
                    subscription: subscription.clone(),
                    section: section.id().clone(),
                })?;
        let channel = event.channel();
        let mut revoked = Vec::new();
        let status = match self.consent(subscription, channel) {
            Some(ConsentState::OptedOut {
                event: Some(by), ..
            }) if by == event.id() => EffectStatus::AlreadyApplied,
            Some(ConsentState::OptedOut { .. }) => EffectStatus::AlreadyOptedOut,
            previous => {
                revoked.push(Revocation {
                    subscription: subscription.clone(),
                    was_opted_in: previous.is_some(),
                });
                self.set_consent(subscription.clone(), channel, opted_out_by(event));
                EffectStatus::Changed
            }
        };
        Ok(ConsentEffect {
            event: event.id().clone(),
            scope: OptOutScope::Subscription {
                section: section.id().clone(),
                folder: folder.clone(),
                subscription: subscription.clone(),
            },
            channel,
            revoked,
            status,
        })
    }

    fn apply_to_section(&mut self, event: &OptOutEvent, section: &Section) -> ConsentEffect {
        let channel = Channel::Email;
        let recorded = self.section_opt_outs.get(section.id());
        let already_applied = recorded.is_some_and(|r| &r.event == event.id());
        let had_record = recorded.is_some();
        let mut revoked = Vec::new();
        if !already_applied {
            for subscription in section.subscriptions() {
                let previous = self.consent(&subscription.id, channel);
                if matches!(previous, Some(ConsentState::OptedOut { .. })) {
                    continue;
                }
                revoked.push(Revocation {
                    subscription: subscription.id.clone(),
                    was_opted_in: previous.is_some(),
                });
                self.set_consent(subscription.id.clone(), channel, opted_out_by(event));
            }
            if !had_record {
                self.section_opt_outs.insert(
                    section.id().clone(),
                    SectionOptOut {
                        event: event.id().clone(),
                        at: event.occurred_at(),
                    },
                );
            }
        }
        let status = if already_applied {
            EffectStatus::AlreadyApplied
        } else if had_record && revoked.is_empty() {
            EffectStatus::AlreadyOptedOut
        } else {
            EffectStatus::Changed
        };
        ConsentEffect {
            event: event.id().clone(),
            scope: OptOutScope::Section {
                section: section.id().clone(),
            },
            channel,
            revoked,
            status,
        }
    }
}

fn opted_out_by(event: &OptOutEvent) -> ConsentState {
    ConsentState::OptedOut {
        event: Some(event.id().clone()),
        at: Some(event.occurred_at()),
    }
}
