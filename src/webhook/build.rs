//! The pure request builder: (node, flow, Profile, event, now) -> the exact HTTP request.

use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};
use jiff::Timestamp;

use crate::model::{FlowId, OptOutEvent, Profile, Section};
use crate::webhook::encode::encode;
use crate::webhook::error::RequestBuildError;
use crate::webhook::id::WebhookId;
use crate::webhook::node::WebhookNode;
use crate::webhook::params::{Inputs, resolve};
use crate::webhook::problem::{HttpProblem, UriProblem};
use crate::webhook::request::{PreviewData, WebhookRequest};
#[cfg(feature = "signing")]
use crate::webhook::sign;

/// The longest request URL (endpoint and query parameters) built, in bytes. Many servers
/// refuse request lines longer than 8 KiB.
pub const MAX_REQUEST_URL_LEN: usize = 8192;

impl WebhookNode {
    /// Signs `request` (built by this node) anew for an attempt at `now`: sets
    /// `webhook-timestamp` to `now` and recomputes `webhook-signature` over the same id and body.
    /// Receivers accept timestamps within minutes of their clock, so a retry hours later must
    /// carry a fresh signature; the `webhook-id` stays the same. Does nothing when the node does
    /// not sign, the request has no `webhook-id`, or it is already signed for this second.
    pub fn sign_request(&self, request: &mut http::Request<Vec<u8>>, now: Timestamp) {
        if !self.is_signed() {
            return;
        }
        let Some(id) = request
            .headers()
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            return;
        };
        let timestamp = now.as_second();
        let current = request
            .headers()
            .get("webhook-timestamp")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        if current == Some(timestamp) {
            // Signed within this very second already (the first attempt, right after building).
            return;
        }
        #[cfg(feature = "signing")]
        let signature = sign::signature_header(&self.signing, &id, timestamp, request.body());
        let headers = request.headers_mut();
        headers.insert("webhook-timestamp", http::HeaderValue::from(timestamp));
        #[cfg(feature = "signing")]
        if let Ok(value) = http::HeaderValue::from_str(&signature) {
            headers.insert("webhook-signature", value);
        }
        #[cfg(not(feature = "signing"))]
        let _ = id;
    }

    /// Removes what must never be stored from a request this node built: the credentials header
    /// and the signature headers. [`authorize`](Self::authorize) and
    /// [`sign_request`](Self::sign_request) put them back for each attempt.
    pub(crate) fn strip_secrets(&self, request: &mut http::Request<Vec<u8>>) {
        let headers = request.headers_mut();
        if let Some((name, _, _)) = &self.prepared.auth {
            headers.remove(name);
        }
        headers.remove("webhook-timestamp");
        headers.remove("webhook-signature");
    }

    /// Sets this node's credentials header (if it has credentials) on `request`.
    pub(crate) fn authorize(&self, request: &mut http::Request<Vec<u8>>) {
        if let Some((name, value, _)) = &self.prepared.auth {
            request.headers_mut().insert(name.clone(), value.clone());
        }
    }

    /// The request for `event` about `profile` from the flow `flow` (its id gives the
    /// `webhook-id`), with the flow's Section when known: what
    /// [`Flow::build_request`](crate::Flow::build_request) returns.
    pub(crate) fn build(
        &self,
        flow: &FlowId,
        profile: &Profile,
        event: &OptOutEvent,
        section: Option<&Section>,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError> {
        if event.profile() != &profile.id {
            return Err(RequestBuildError::ProfileMismatch {
                event_profile: event.profile().clone(),
                profile: profile.id.clone(),
            });
        }
        let resolved = resolve(
            &self.params,
            &Inputs {
                profile,
                event,
                section,
            },
        )?;
        let id = WebhookId::derive(flow, event.id());

        let mut uri = String::with_capacity(self.url.as_str().len() + 64 * resolved.len());
        let mut body = Vec::new();
        let uri_prefix = encode(
            &self.url,
            self.encoding,
            &self.params,
            &resolved,
            (event.kind(), event.occurred_at()),
            false,
            &mut uri,
            &mut body,
        );
        if uri.len() > MAX_REQUEST_URL_LEN {
            return Err(RequestBuildError::UrlTooLong {
                len: uri.len(),
                max: MAX_REQUEST_URL_LEN,
            });
        }

        // Header order: static headers, credentials, content-type, the Standard Webhooks ones.
        let mut headers = HeaderMap::with_capacity(self.prepared.headers.len() + 5);
        for (name, value) in &self.prepared.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some((name, value, _)) = &self.prepared.auth {
            headers.append(name.clone(), value.clone());
        }
        if let Some(content_type) = self.encoding.content_type() {
            headers.append(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        headers.append(
            HeaderName::from_static("webhook-id"),
            HeaderValue::from_str(id.as_str()).map_err(header_error)?,
        );
        if self.is_signed() {
            let timestamp = now.as_second();
            headers.append(
                HeaderName::from_static("webhook-timestamp"),
                HeaderValue::from(timestamp),
            );
            #[cfg(feature = "signing")]
            headers.append(
                HeaderName::from_static("webhook-signature"),
                HeaderValue::try_from(sign::signature_header(
                    &self.signing,
                    id.as_str(),
                    timestamp,
                    &body,
                ))
                .map_err(header_error)?,
            );
        }

        let mut request = http::Request::new(body);
        *request.method_mut() = self.method.to_http();
        *request.uri_mut() = http::Uri::try_from(uri).map_err(uri_error)?;
        *request.headers_mut() = headers;

        Ok(WebhookRequest {
            request,
            id,
            preview: PreviewData {
                params: Arc::clone(&self.params),
                resolved,
                encoding: self.encoding,
                uri_prefix,
                kind: event.kind(),
                occurred_at: event.occurred_at(),
                auth: self
                    .prepared
                    .auth
                    .as_ref()
                    .map(|(name, _, masked)| (name.clone(), *masked)),
            },
        })
    }
}

fn header_error(_: http::header::InvalidHeaderValue) -> RequestBuildError {
    RequestBuildError::Http {
        reason: HttpProblem::HeaderValue,
    }
}

fn uri_error(error: http::uri::InvalidUri) -> RequestBuildError {
    RequestBuildError::Http {
        reason: HttpProblem::Uri(UriProblem::of(&error)),
    }
}
