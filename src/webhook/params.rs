//! Profile-data parameters: a name the receiver understands and the source of its value.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::error::{EmailProblem, MobileProblem};
use crate::model::{AttributeValue, Email, OptOutEvent, Profile, Section};
use crate::webhook::error::{RequestBuildError, WebhookConfigError};
use crate::webhook::problem::{MissingValueReason, ParamNameProblem};
use crate::webhook::source::ParamSource;

/// The longest parameter name accepted, in bytes.
pub const MAX_PARAM_NAME_LEN: usize = 128;

/// The most Profile-data parameters a node may send (and a receiver's parser may read).
pub const MAX_PARAMS: usize = 64;

/// One Profile-data parameter: the name the receiver understands, the source of its value, and
/// whether it may be left out when the source has no value.
///
/// JSON: `{"name": "email", "source": "email"}`, with `"optional": true` to leave the parameter
/// out (rather than fail) when its source has no value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Param {
    #[serde(deserialize_with = "deserialize_name")]
    name: String,
    source: ParamSource,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    optional: bool,
}

impl Param {
    /// A required parameter.
    ///
    /// # Errors
    ///
    /// [`WebhookConfigError::InvalidParamName`] when the name is empty, longer than
    /// [`MAX_PARAM_NAME_LEN`] bytes or holds a control character.
    pub fn new(name: impl Into<String>, source: ParamSource) -> Result<Self, WebhookConfigError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Self {
            name,
            source,
            optional: false,
        })
    }

    /// An optional parameter: left out when its source has no value.
    ///
    /// # Errors
    ///
    /// As [`Param::new`].
    pub fn optional(
        name: impl Into<String>,
        source: ParamSource,
    ) -> Result<Self, WebhookConfigError> {
        Ok(Self {
            optional: true,
            ..Self::new(name, source)?
        })
    }

    /// The parameter name the receiver reads.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source of its value.
    pub fn source(&self) -> &ParamSource {
        &self.source
    }

    /// Whether it is left out when the source has no value.
    pub fn is_optional(&self) -> bool {
        self.optional
    }

    /// Checks the name (used when a node is read from JSON).
    pub(crate) fn validate(&self) -> Result<(), WebhookConfigError> {
        validate_name(&self.name)
    }
}

fn validate_name(name: &str) -> Result<(), WebhookConfigError> {
    let reason = if name.is_empty() {
        ParamNameProblem::Empty
    } else if name.len() > MAX_PARAM_NAME_LEN {
        ParamNameProblem::TooLong
    } else if name.chars().any(char::is_control) {
        ParamNameProblem::ControlCharacter
    } else {
        return Ok(());
    };
    Err(WebhookConfigError::InvalidParamName { reason })
}

/// Checks a list of parameters, as a Webhook node and a receiver's parser both need it: at most
/// [`MAX_PARAMS`], every name valid, no two sharing a name.
///
/// # Errors
///
/// [`WebhookConfigError::TooManyParams`] past the limit; else, for the first parameter at fault,
/// [`WebhookConfigError::InvalidParamName`] or [`WebhookConfigError::DuplicateParam`] (named by
/// position: a name is not repeated).
pub(crate) fn check_params(params: &[Param]) -> Result<(), WebhookConfigError> {
    if params.len() > MAX_PARAMS {
        return Err(WebhookConfigError::TooManyParams {
            count: params.len(),
            max: MAX_PARAMS,
        });
    }
    for (index, param) in params.iter().enumerate() {
        param.validate()?;
        if let Some(first) = params[..index]
            .iter()
            .position(|p| p.name() == param.name())
        {
            return Err(WebhookConfigError::DuplicateParam { index, first });
        }
    }
    Ok(())
}

/// A parameter name read from JSON is checked there, so that a flow-file error points at it.
fn deserialize_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    validate_name(&name).map_err(serde::de::Error::custom)?;
    Ok(name)
}

/// A resolved parameter value. Ids, Email and Mobile are shared with the event and the Profile,
/// names of kinds are static: resolving them copies nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// Text written for this request.
    Text(String),
    /// Text shared with the Profile or the event.
    Shared(Arc<str>),
    /// A fixed name, such as an event kind.
    Static(&'static str),
    /// A JSON number or boolean from a custom attribute.
    Json(serde_json::Value),
}

/// The text form masked custom attributes show.
const MASKED: &str = "[masked]";

impl Value {
    /// The text sent in a query string or form.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Text(text) => Cow::Borrowed(text),
            Self::Shared(text) => Cow::Borrowed(text),
            Self::Static(text) => Cow::Borrowed(text),
            Self::Json(value) => Cow::Owned(value.to_string()),
        }
    }

    /// The text a masked preview shows for a value of `source`: Email and Mobile masked as their
    /// `Display` does, custom attributes as `[masked]`, everything else as sent.
    pub(crate) fn masked_text(&self, source: &ParamSource) -> Cow<'_, str> {
        match (source, self) {
            (ParamSource::Email, _) => Cow::Owned(Email::lenient(self.text()).masked()),
            // Masked from the text: the number is not read again.
            (ParamSource::Mobile, _) => Cow::Owned(crate::model::mask_number(&self.text())),
            (ParamSource::ProfileId, _) => Cow::Owned(crate::model::mask_prefix(&self.text(), 1)),
            (ParamSource::Attribute(_), _) => Cow::Borrowed(MASKED),
            _ => self.text(),
        }
    }

    /// Writes the value as JSON: text as a string, numbers and booleans as they are; masked, a
    /// string as [`Value::masked_text`] gives it.
    pub(crate) fn write_json(&self, source: &ParamSource, masked: bool, out: &mut Vec<u8>) {
        // Writing a string or a number into a Vec cannot fail.
        let _ = match (self, masked && source.is_personal()) {
            (_, true) => serde_json::to_writer(&mut *out, self.masked_text(source).as_ref()),
            (Self::Json(value), false) => serde_json::to_writer(&mut *out, value),
            (_, false) => serde_json::to_writer(&mut *out, self.text().as_ref()),
        };
    }
}

/// A parameter with its value, ready to encode: the position of its [`Param`] in the node's
/// list, and the value.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) param: usize,
    pub(crate) value: Value,
}

/// What a source needs to resolve.
pub(crate) struct Inputs<'a> {
    pub(crate) profile: &'a Profile,
    pub(crate) event: &'a OptOutEvent,
    pub(crate) section: Option<&'a Section>,
}

/// Resolves every parameter in order; optional ones without a value are left out.
pub(crate) fn resolve(
    params: &[Param],
    inputs: &Inputs<'_>,
) -> Result<Vec<Resolved>, RequestBuildError> {
    let mut resolved = Vec::with_capacity(params.len());
    for (index, param) in params.iter().enumerate() {
        match resolve_one(&param.source, inputs) {
            Ok(value) => resolved.push(Resolved {
                param: index,
                value,
            }),
            Err(Absent::NotAddress(_) | Absent::NotNumber(_)) if param.optional => {}
            Err(Absent::NotNumber(problem)) => {
                return Err(RequestBuildError::MobileNotNumber {
                    param: param.name.clone(),
                    problem,
                });
            }
            Err(Absent::NotAddress(problem)) => {
                return Err(RequestBuildError::EmailNotAddress {
                    param: param.name.clone(),
                    problem,
                });
            }
            Err(Absent::Section) => {
                return Err(RequestBuildError::SectionNeeded {
                    param: param.name.clone(),
                });
            }
            Err(Absent::Value(_)) if param.optional => {}
            Err(Absent::Value(reason)) => {
                return Err(RequestBuildError::MissingValue {
                    param: param.name.clone(),
                    param_source: param.source.clone(),
                    reason,
                });
            }
        }
    }
    Ok(resolved)
}

enum Absent {
    /// No value for this Profile or event.
    Value(MissingValueReason),
    /// The Profile's Email is kept as given: it is not an address, and is not sent.
    NotAddress(EmailProblem),
    /// The Profile's Mobile is kept as given: it cannot be a number, and is not sent.
    NotNumber(MobileProblem),
    /// The source needs the Section's catalog, which was not given.
    Section,
}

fn resolve_one(source: &ParamSource, inputs: &Inputs<'_>) -> Result<Value, Absent> {
    let Inputs {
        profile,
        event,
        section,
    } = inputs;
    Ok(match source {
        ParamSource::Email => {
            let email = profile
                .email
                .as_ref()
                .ok_or(Absent::Value(MissingValueReason::NoEmail))?;
            if let Some(problem) = email.problem() {
                return Err(Absent::NotAddress(problem));
            }
            Value::Shared(email.shared())
        }
        ParamSource::Mobile => {
            let mobile = profile
                .mobile
                .as_ref()
                .ok_or(Absent::Value(MissingValueReason::NoMobile))?;
            if let Some(problem) = mobile.problem() {
                return Err(Absent::NotNumber(problem));
            }
            Value::Shared(mobile.shared())
        }
        ParamSource::Attribute(name) => match profile.attribute(name.as_str()) {
            None => return Err(Absent::Value(MissingValueReason::NoAttribute)),
            Some(AttributeValue::Text(text)) => Value::Text(text.clone()),
            Some(AttributeValue::Number(number)) => {
                Value::Json(serde_json::Value::Number(number.clone()))
            }
            Some(AttributeValue::Bool(flag)) => Value::Json(serde_json::Value::Bool(*flag)),
        },
        ParamSource::ProfileId => Value::Shared(profile.id.shared()),
        ParamSource::SubscriptionId => Value::Shared(
            event
                .subscription()
                .ok_or(Absent::Value(MissingValueReason::NoSubscription))?
                .shared(),
        ),
        ParamSource::FolderId => {
            let section = section.ok_or(Absent::Section)?;
            let subscription = event
                .subscription()
                .ok_or(Absent::Value(MissingValueReason::NoFolder))?;
            Value::Shared(
                section
                    .folder_of(subscription)
                    .ok_or(Absent::Value(MissingValueReason::NotInCatalog))?
                    .shared(),
            )
        }
        ParamSource::SectionId => Value::Shared(event.section().shared()),
        ParamSource::EventKind => Value::Static(event.kind().as_str()),
        ParamSource::Channel => Value::Static(event.channel().as_str()),
        ParamSource::EventId => Value::Shared(event.id().shared()),
        ParamSource::ActivityId => Value::Shared(
            event
                .activity()
                .ok_or(Absent::Value(MissingValueReason::NoActivity))?
                .shared(),
        ),
        ParamSource::OccurredAt => Value::Text(event.occurred_at().to_string()),
        ParamSource::Origin => Value::Static(event.origin().as_str()),
    })
}
