//! One value per source, each with the parameter that carried it: a parameter sent twice must
//! carry the same value, and two parameters of the same source must agree.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::model::{
    ActivityId, AttributeName, AttributeValue, Channel, Email, EventId, EventKind, FolderId,
    Mobile, Origin, ProfileId, SectionId, SubscriptionId,
};
use crate::receive::error::{ConflictWith, NoticeError, ValueProblem};
use crate::receive::raw::RawValue;
use crate::webhook::{Param, ParamSource};

/// A value and the index of the parameter that carried it.
pub(super) type Slot<T> = Option<(T, usize)>;

/// The values of a request, one slot per source.
pub(super) struct Slots {
    /// Which parameters arrived (by index).
    pub(super) seen: Vec<bool>,
    pub(super) email: Slot<Email>,
    pub(super) mobile: Slot<Mobile>,
    pub(super) profile: Slot<ProfileId>,
    pub(super) attributes: BTreeMap<AttributeName, (AttributeValue, usize)>,
    pub(super) subscription: Slot<SubscriptionId>,
    pub(super) folder: Slot<FolderId>,
    pub(super) section: Slot<SectionId>,
    pub(super) kind: Slot<EventKind>,
    pub(super) channel: Slot<Channel>,
    pub(super) event: Slot<EventId>,
    pub(super) activity: Slot<ActivityId>,
    pub(super) occurred_at: Slot<Timestamp>,
    pub(super) origin: Slot<Origin>,
}

/// Stores `value` from parameter `index` in `slot`; the same value again is fine, another one
/// is a conflict naming both parameters (or a repeat of one).
fn fill<T: PartialEq>(
    slot: &mut Slot<T>,
    value: T,
    index: usize,
    params: &[Param],
) -> Result<(), NoticeError> {
    match slot {
        None => {
            *slot = Some((value, index));
            Ok(())
        }
        Some((known, _)) if *known == value => Ok(()),
        Some((_, earlier)) if *earlier == index => Err(NoticeError::Repeated {
            param: params[index].name().to_owned(),
        }),
        Some((_, earlier)) => Err(NoticeError::Conflict {
            param: params[index].name().to_owned(),
            with: ConflictWith::Param(params[*earlier].name().to_owned()),
        }),
    }
}

impl Slots {
    pub(super) fn new(params: usize) -> Self {
        Self {
            seen: vec![false; params],
            email: None,
            mobile: None,
            profile: None,
            attributes: BTreeMap::new(),
            subscription: None,
            folder: None,
            section: None,
            kind: None,
            channel: None,
            event: None,
            activity: None,
            occurred_at: None,
            origin: None,
        }
    }

    /// Checks the value of parameter `index` with the model's type of its source, and stores it.
    pub(super) fn put(
        &mut self,
        params: &[Param],
        index: usize,
        raw: RawValue,
    ) -> Result<(), NoticeError> {
        if let Some(seen) = self.seen.get_mut(index) {
            *seen = true;
        }
        let param = &params[index];
        let invalid = |reason: ValueProblem| NoticeError::InvalidValue {
            param: param.name().to_owned(),
            reason,
        };
        let source = param.source();
        if let ParamSource::Attribute(attribute) = source {
            let value = match raw {
                RawValue::Text(text) => AttributeValue::Text(text),
                RawValue::Scalar(serde_json::Value::Bool(flag)) => AttributeValue::Bool(flag),
                RawValue::Scalar(serde_json::Value::Number(number)) => {
                    AttributeValue::Number(number)
                }
                RawValue::NotUtf8 => return Err(invalid(ValueProblem::NotUtf8)),
                _ => return Err(invalid(ValueProblem::NotAttributeValue)),
            };
            let mut slot = self.attributes.remove(attribute);
            let result = fill(&mut slot, value, index, params);
            if let Some(filled) = slot {
                self.attributes.insert(attribute.clone(), filled);
            }
            return result;
        }
        let text = match raw {
            RawValue::Text(text) => text,
            RawValue::NotUtf8 => return Err(invalid(ValueProblem::NotUtf8)),
            RawValue::Scalar(_) | RawValue::Composite => {
                return Err(invalid(ValueProblem::NotString));
            }
        };
        let id_error = |e| invalid(ValueProblem::Id(e));
        let attribute_error = |e| invalid(ValueProblem::Attribute(e));
        match source {
            ParamSource::Email => {
                let value = Email::new(text).map_err(attribute_error)?;
                fill(&mut self.email, value, index, params)
            }
            ParamSource::Mobile => {
                let value = Mobile::new(&text).map_err(attribute_error)?;
                fill(&mut self.mobile, value, index, params)
            }
            ParamSource::ProfileId => {
                let value = ProfileId::new(text).map_err(id_error)?;
                fill(&mut self.profile, value, index, params)
            }
            ParamSource::SubscriptionId => {
                let value = SubscriptionId::new(text).map_err(id_error)?;
                fill(&mut self.subscription, value, index, params)
            }
            ParamSource::FolderId => {
                let value = FolderId::new(text).map_err(id_error)?;
                fill(&mut self.folder, value, index, params)
            }
            ParamSource::SectionId => {
                let value = SectionId::new(text).map_err(id_error)?;
                fill(&mut self.section, value, index, params)
            }
            ParamSource::EventId => {
                let value = EventId::new(text).map_err(id_error)?;
                fill(&mut self.event, value, index, params)
            }
            ParamSource::ActivityId => {
                let value = ActivityId::new(text).map_err(id_error)?;
                fill(&mut self.activity, value, index, params)
            }
            ParamSource::EventKind => {
                let value = EventKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == text || k.platform_name() == text)
                    .ok_or_else(|| invalid(ValueProblem::NotEventKind))?;
                fill(&mut self.kind, value, index, params)
            }
            ParamSource::Channel => {
                let value = Channel::ALL
                    .into_iter()
                    .find(|c| c.as_str() == text)
                    .ok_or_else(|| invalid(ValueProblem::NotChannel))?;
                fill(&mut self.channel, value, index, params)
            }
            ParamSource::OccurredAt => {
                let value = text
                    .parse::<Timestamp>()
                    .map_err(|_| invalid(ValueProblem::NotTimestamp))?;
                fill(&mut self.occurred_at, value, index, params)
            }
            ParamSource::Origin => {
                let value = Origin::ALL
                    .into_iter()
                    .find(|o| o.as_str() == text)
                    .ok_or_else(|| invalid(ValueProblem::NotOrigin))?;
                fill(&mut self.origin, value, index, params)
            }
            // Handled above.
            ParamSource::Attribute(_) => Ok(()),
        }
    }
}
