//! From checked values to a notice: the kind every source agrees on, the scope the kind needs,
//! and something that identifies the Profile.

use jiff::Timestamp;

use crate::model::EventKind;
use crate::receive::error::{ConflictWith, NoticeError, ValueProblem};
use crate::receive::notice::{NoticeScope, OptOutNotice};
use crate::receive::raw::RawValue;
use crate::receive::slots::Slots;
use crate::receive::visit::EnvelopeFields;
use crate::webhook::{Param, ParamSource};

/// The notice the values in `slots` (read with `params`) and the envelope's own fields make,
/// given the parser's fixed kind.
pub(super) fn assemble(
    params: &[Param],
    fixed_kind: Option<EventKind>,
    slots: Slots,
    envelope: Option<EnvelopeFields>,
    webhook_id: Option<String>,
) -> Result<OptOutNotice, NoticeError> {
    let Slots {
        email,
        mobile,
        profile,
        attributes,
        subscription,
        folder,
        section,
        kind: sent_kind,
        channel,
        event,
        activity,
        occurred_at,
        origin,
        ..
    } = slots;
    let name = |index: usize| params[index].name().to_owned();

    // The kind: every source that says it must agree. The fixed kind comes first, so it is
    // only ever the one disagreed with.
    let mut kind: Option<(EventKind, ConflictWith)> =
        fixed_kind.map(|fixed| (fixed, ConflictWith::FixedKind(fixed)));
    let mut agree = |found: EventKind, param: String, said_by: ConflictWith| match &kind {
        None => {
            kind = Some((found, said_by));
            Ok(())
        }
        Some((known, _)) if *known == found => Ok(()),
        Some((_, earlier)) => Err(NoticeError::Conflict {
            param,
            with: earlier.clone(),
        }),
    };
    let mut envelope_time = None;
    if let Some(fields) = envelope {
        if let Some(value) = fields.kind {
            agree(
                envelope_kind(&value)?,
                "type".to_owned(),
                ConflictWith::EnvelopeType,
            )?;
        }
        if let Some(value) = fields.timestamp {
            envelope_time = Some(envelope_timestamp(&value)?);
        }
    }
    if let Some((found, index)) = sent_kind {
        agree(found, name(index), ConflictWith::Param(name(index)))?;
    }
    let Some((kind, _)) = kind else {
        return Err(NoticeError::UnknownKind);
    };
    if let Some((found, index)) = channel {
        if found != kind.channel() {
            return Err(NoticeError::Conflict {
                param: name(index),
                with: ConflictWith::EventKind(kind),
            });
        }
    }
    let occurred_at = match (occurred_at, envelope_time) {
        (Some((at, index)), Some(time)) if at != time => {
            return Err(NoticeError::Conflict {
                param: name(index),
                with: ConflictWith::EnvelopeTimestamp,
            });
        }
        (Some((at, _)), _) => Some(at),
        (None, time) => time,
    };

    // The scope.
    let scope = if kind.is_section_level() {
        match &section {
            Some((section, _)) => NoticeScope::Section(section.clone()),
            None => return Err(missing_for(params, kind, &ParamSource::SectionId)),
        }
    } else {
        match subscription {
            Some((subscription, _)) => NoticeScope::Subscription(subscription),
            None => return Err(missing_for(params, kind, &ParamSource::SubscriptionId)),
        }
    };

    let notice = OptOutNotice {
        webhook_id,
        kind,
        scope,
        email: email.map(|(v, _)| v),
        mobile: mobile.map(|(v, _)| v),
        profile: profile.map(|(v, _)| v),
        attributes: attributes.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        section: section.map(|(v, _)| v),
        folder: folder.map(|(v, _)| v),
        event: event.map(|(v, _)| v),
        activity: activity.map(|(v, _)| v),
        occurred_at,
        origin: origin.map(|(v, _)| v),
    };
    if notice.email.is_none()
        && notice.mobile.is_none()
        && notice.profile.is_none()
        && notice.attributes.is_empty()
    {
        return Err(NoticeError::NoIdentifier);
    }
    Ok(notice)
}

/// The error for a kind that needs a value of `source` that did not arrive: naming the
/// parameter mapped to it, or saying that none is.
fn missing_for(params: &[Param], kind: EventKind, source: &ParamSource) -> NoticeError {
    match params.iter().find(|p| p.source() == source) {
        Some(param) => NoticeError::MissingForKind {
            kind,
            param: param.name().to_owned(),
            param_source: source.clone(),
        },
        None => NoticeError::NotMapped {
            kind,
            param_source: source.clone(),
        },
    }
}

/// The kind the envelope's `type` (`opt_out.<kind>`) names.
fn envelope_kind(value: &RawValue) -> Result<EventKind, NoticeError> {
    let invalid = || NoticeError::InvalidValue {
        param: "type".to_owned(),
        reason: ValueProblem::NotEnvelopeType,
    };
    let RawValue::Text(text) = value else {
        return Err(invalid());
    };
    let name = text.strip_prefix("opt_out.").ok_or_else(invalid)?;
    EventKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == name)
        .ok_or_else(invalid)
}

/// The time the envelope's `timestamp` (RFC 3339) gives.
fn envelope_timestamp(value: &RawValue) -> Result<Timestamp, NoticeError> {
    let invalid = || NoticeError::InvalidValue {
        param: "timestamp".to_owned(),
        reason: ValueProblem::NotTimestamp,
    };
    let RawValue::Text(text) = value else {
        return Err(invalid());
    };
    text.parse().map_err(|_| invalid())
}
