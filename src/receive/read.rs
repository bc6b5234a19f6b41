//! Reading a request's parameters where its encoding puts them (query string, form body, JSON
//! object or JSON envelope), after checking its `content-type`.

use http::HeaderMap;

use crate::receive::error::{BodyProblem, NoticeError};
use crate::receive::raw::{Entries, form_entries};
use crate::receive::visit::{EnvelopeBody, EnvelopeFields, MaybeEntries};
use crate::webhook::WebhookEncoding;

/// The parameters of a request, and the envelope's own fields when there is an envelope.
pub(super) struct Raw {
    pub(super) entries: Entries,
    pub(super) envelope: Option<EnvelopeFields>,
}

impl Raw {
    fn flat(entries: Entries) -> Self {
        Self {
            entries,
            envelope: None,
        }
    }
}

/// Reads the parameters of a request with `encoding`.
pub(super) fn read(
    encoding: WebhookEncoding,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Raw, NoticeError> {
    let malformed = |reason| NoticeError::MalformedBody { encoding, reason };
    match encoding {
        WebhookEncoding::Form => {
            check_content_type(encoding, headers)?;
            Ok(Raw::flat(form_entries(body)))
        }
        WebhookEncoding::Json => {
            check_content_type(encoding, headers)?;
            let object = serde_json::from_slice::<MaybeEntries>(body)
                .map_err(|e| malformed(json_problem(&e)))?;
            match object {
                MaybeEntries::Object(entries) => Ok(Raw::flat(entries)),
                MaybeEntries::Other => Err(malformed(BodyProblem::NotObject)),
            }
        }
        WebhookEncoding::JsonEnvelope => {
            check_content_type(encoding, headers)?;
            let envelope = serde_json::from_slice::<EnvelopeBody>(body)
                .map_err(|e| malformed(json_problem(&e)))?;
            let envelope = match envelope {
                EnvelopeBody::Object(envelope) => envelope,
                EnvelopeBody::Other => return Err(malformed(BodyProblem::NotObject)),
            };
            if envelope.repeated {
                // Two `type`s or two `data`s: ambiguous, refused whole.
                return Err(malformed(BodyProblem::EnvelopeRepeats));
            }
            let entries = match envelope.data {
                None => return Err(malformed(BodyProblem::NoData)),
                Some(MaybeEntries::Other) => return Err(malformed(BodyProblem::DataNotObject)),
                Some(MaybeEntries::Object(entries)) => entries,
            };
            Ok(Raw {
                entries,
                envelope: Some(envelope.fields),
            })
        }
        WebhookEncoding::Query => Ok(Raw::flat(form_entries(
            uri.query().unwrap_or_default().as_bytes(),
        ))),
    }
}

fn check_content_type(encoding: WebhookEncoding, headers: &HeaderMap) -> Result<(), NoticeError> {
    let Some(expected) = encoding.content_type() else {
        return Ok(());
    };
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(()); // tolerated: the encoding says what the body is
    };
    let found = match value.to_str() {
        Ok(text) => text,
        Err(_) => {
            return Err(NoticeError::ContentType {
                encoding,
                expected,
                found: "[not visible ASCII]".to_owned(),
            });
        }
    };
    let media = found
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let fits = media == expected || (expected == "application/json" && media.ends_with("+json"));
    if fits {
        Ok(())
    } else {
        Err(NoticeError::ContentType {
            encoding,
            expected,
            found: media
                .chars()
                .take(64)
                .flat_map(char::escape_debug)
                .collect(),
        })
    }
}

/// A JSON error without serde's message, which may quote the input.
fn json_problem(error: &serde_json::Error) -> BodyProblem {
    let (line, column) = (error.line(), error.column());
    match error.classify() {
        serde_json::error::Category::Eof => BodyProblem::JsonEndsEarly { line, column },
        _ => BodyProblem::NotJson { line, column },
    }
}

/// The request's `webhook-id`, if it has a usable one.
pub(super) fn webhook_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("webhook-id")?.to_str().ok()?.trim();
    (!value.is_empty() && value.len() <= 256).then(|| value.to_owned())
}
