//! The bytes of the parameters: the query string, the form body, the JSON bodies.

use jiff::Timestamp;
use url::form_urlencoded;

use crate::model::EventKind;
use crate::webhook::method::WebhookEncoding;
use crate::webhook::params::{Param, Resolved};

/// Writes the request URI into `uri` and the body into `body` for these parameters, masked or
/// not; returns the length of the URI before the query-encoded parameters.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode(
    url: &url::Url,
    encoding: WebhookEncoding,
    params: &[Param],
    resolved: &[Resolved],
    event: (EventKind, Timestamp),
    masked: bool,
    uri: &mut String,
    body: &mut Vec<u8>,
) -> usize {
    uri.push_str(url.as_str());
    if encoding == WebhookEncoding::Query && !resolved.is_empty() {
        match url.query() {
            None => uri.push('?'),
            Some(q) if q.is_empty() || q.ends_with('&') => {}
            Some(_) => uri.push('&'),
        }
        let prefix = uri.len();
        form(params, resolved, masked, uri);
        return prefix;
    }
    encode_body(encoding, params, resolved, event, masked, body);
    uri.len()
}

/// Writes the body for these parameters (none for `query`), masked or not.
pub(crate) fn encode_body(
    encoding: WebhookEncoding,
    params: &[Param],
    resolved: &[Resolved],
    (kind, occurred_at): (EventKind, Timestamp),
    masked: bool,
    body: &mut Vec<u8>,
) {
    match encoding {
        WebhookEncoding::Query => {}
        WebhookEncoding::Form => {
            let mut text = String::with_capacity(64 * resolved.len());
            form(params, resolved, masked, &mut text);
            *body = text.into_bytes();
        }
        WebhookEncoding::Json => {
            body.reserve(64 * resolved.len());
            json_object(params, resolved, masked, body);
        }
        WebhookEncoding::JsonEnvelope => {
            body.reserve(96 + 64 * resolved.len());
            body.extend_from_slice(b"{\"type\":\"opt_out.");
            body.extend_from_slice(kind.as_str().as_bytes());
            body.extend_from_slice(b"\",\"timestamp\":\"");
            body.extend_from_slice(occurred_at.to_string().as_bytes());
            body.extend_from_slice(b"\",\"data\":");
            json_object(params, resolved, masked, body);
            body.push(b'}');
        }
    }
}

/// Appends `name=value&...` to `out`, each name and value through
/// `form_urlencoded::byte_serialize`.
pub(crate) fn form(params: &[Param], resolved: &[Resolved], masked: bool, out: &mut String) {
    for (i, param) in resolved.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        let spec = &params[param.param];
        out.extend(form_urlencoded::byte_serialize(spec.name().as_bytes()));
        out.push('=');
        let value = if masked && spec.source().is_personal() {
            param.value.masked_text(spec.source())
        } else {
            param.value.text()
        };
        out.extend(form_urlencoded::byte_serialize(value.as_bytes()));
    }
}

/// Appends a flat JSON object of the parameters, in their configured order, to `out`.
fn json_object(params: &[Param], resolved: &[Resolved], masked: bool, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, param) in resolved.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let spec = &params[param.param];
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, spec.name());
        out.push(b':');
        param.value.write_json(spec.source(), masked, out);
    }
    out.push(b'}');
}
