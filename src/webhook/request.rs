//! A built request: the exact `http::Request`, its webhook id, and what previews need.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;

use crate::model::EventKind;
use crate::webhook::encode::form;
use crate::webhook::id::WebhookId;
use crate::webhook::method::WebhookEncoding;
use crate::webhook::params::{Param, Resolved};

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

    /// The request URI, with personal data masked when `masked`.
    pub(crate) fn uri(&self, masked: bool) -> String {
        let real = self.request.uri().to_string();
        let data = &self.preview;
        if !masked || data.encoding != WebhookEncoding::Query || data.resolved.is_empty() {
            return real;
        }
        let mut uri = real.get(..data.uri_prefix).unwrap_or_default().to_owned();
        form(&data.params, &data.resolved, true, &mut uri);
        uri
    }
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
