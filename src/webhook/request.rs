//! A built request: the exact `http::Request`, its webhook id, and what previews need.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;

use crate::model::EventKind;
use crate::webhook::encode::form;
use crate::webhook::id::WebhookId;
use crate::webhook::method::WebhookEncoding;
use crate::webhook::params::{Param, Resolved};
use crate::webhook::secret::credential_name;

/// A built request: the exact [`http::Request`] to send, its webhook id, and what a preview
/// needs to show it with personal data and secrets masked.
///
/// `Debug` shows the method, the masked URL and the webhook id only. Take the request with
/// [`WebhookRequest::request`], [`WebhookRequest::into_request`] or `From`; mind that the
/// `http::Request`'s own `Debug` prints the URL and body whole.
#[derive(Clone)]
#[must_use = "a built request does nothing until it is sent"]
pub struct WebhookRequest {
    pub(crate) request: http::Request<Vec<u8>>,
    pub(crate) id: WebhookId,
    /// What a masked preview needs to render the request again with personal data masked; kept
    /// small so that building pays nothing for previews that are never asked for.
    pub(crate) preview: PreviewData,
}

/// The parts of a build that a preview re-renders.
#[derive(Clone)]
pub(crate) struct PreviewData {
    pub(crate) params: Arc<[Param]>,
    pub(crate) resolved: Vec<Resolved>,
    pub(crate) encoding: WebhookEncoding,
    /// The length of the URI before the query-encoded parameters.
    pub(crate) uri_prefix: usize,
    pub(crate) kind: EventKind,
    pub(crate) occurred_at: Timestamp,
    /// The credentials header and the value masked previews show.
    pub(crate) auth: Option<(http::HeaderName, &'static str)>,
}

impl WebhookRequest {
    /// The request to send.
    pub fn request(&self) -> &http::Request<Vec<u8>> {
        &self.request
    }

    /// The request to send, by value.
    pub fn into_request(self) -> http::Request<Vec<u8>> {
        self.request
    }

    /// The `webhook-id` header's value.
    pub fn webhook_id(&self) -> &WebhookId {
        &self.id
    }

    /// The request URI; when `masked`, with personal data masked and the values of static
    /// query parameters whose names look like credentials (`token`, `api_key`...) redacted.
    pub(crate) fn uri(&self, masked: bool) -> String {
        let real = self.request.uri().to_string();
        if !masked {
            return real;
        }
        let data = &self.preview;
        let query_params = data.encoding == WebhookEncoding::Query && !data.resolved.is_empty();
        let prefix = if query_params {
            real.get(..data.uri_prefix).unwrap_or_default()
        } else {
            &real
        };
        let mut uri = redact_static_credentials(prefix);
        if query_params {
            form(&data.params, &data.resolved, true, &mut uri);
        }
        uri
    }
}

/// `uri` (the endpoint URL and its static query) with the value of each query parameter whose
/// name looks like a credential replaced by `[redacted]`; everything else byte for byte.
fn redact_static_credentials(uri: &str) -> String {
    let Some((base, query)) = uri.split_once('?') else {
        return uri.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match credential_name(pair) {
            Some(name) => format!("{name}=[redacted]"),
            None => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

impl fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("method", self.request.method())
            .field("uri", &self.uri(true))
            .field("webhook_id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<WebhookRequest> for http::Request<Vec<u8>> {
    fn from(request: WebhookRequest) -> Self {
        request.request
    }
}
