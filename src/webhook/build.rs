//! The pure request builder: (node, flow, Profile, event, now) -> the exact HTTP request.

use std::fmt;

use jiff::Timestamp;
use url::form_urlencoded;

use crate::error::RequestBuildError;
use crate::model::{FlowId, OptOutEvent, Profile, Section};
use crate::webhook::WebhookNode;
use crate::webhook::node::WebhookEncoding;
use crate::webhook::params::{Inputs, Resolved, resolve};
use crate::webhook::preview::Preview;
use crate::webhook::sign::WebhookId;

/// The longest request URL (endpoint and query parameters) built, in bytes. Many servers
/// refuse request lines longer than 8 KiB.
pub const MAX_REQUEST_URL_LEN: usize = 8192;

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
    pub(crate) masked_uri: String,
    pub(crate) masked_body: Vec<u8>,
    /// Every header, in order, with credential values masked.
    pub(crate) masked_headers: Vec<(String, String)>,
    pub(crate) params: Vec<Resolved>,
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

    /// A dry-run preview with personal data (Email, Mobile, custom attributes) and secrets
    /// (auth credentials) masked.
    pub fn preview(&self) -> Preview<'_> {
        Preview::new(self, true)
    }

    /// A dry-run preview showing everything: the exact request, personal data and secrets
    /// included. Do not log it.
    pub fn preview_unmasked(&self) -> Preview<'_> {
        Preview::new(self, false)
    }
}

impl fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("method", self.request.method())
            .field("uri", &self.masked_uri)
            .field("webhook_id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<WebhookRequest> for http::Request<Vec<u8>> {
    fn from(request: WebhookRequest) -> Self {
        request.request
    }
}

impl WebhookNode {
    /// Builds the exact request this node sends for `event` of `profile` in `flow`, at `now`.
    ///
    /// Pure: no I/O, no clock, no randomness; the same inputs give the same bytes. `now` is only
    /// used for `webhook-timestamp` when the node signs. `flow` and the event's id give the
    /// [`WebhookId`]. A `folder_id` parameter needs the Section's catalog: use
    /// [`WebhookNode::build_request_in`].
    ///
    /// ```
    /// use optout_relay::*;
    ///
    /// let node = WebhookNode::builder("https://crm.example.com/optout?source=platform")
    ///     .param("email", ParamSource::Email)
    ///     .param("subscription", ParamSource::SubscriptionId)
    ///     .build()?;
    /// let profile = Profile::new(ProfileId::new("p-1")?).with_email(Email::new("a+b@example.com")?);
    /// let event = OptOutEvent::email_unsubscribe(
    ///     EventId::new("evt-1")?,
    ///     ProfileId::new("p-1")?,
    ///     SectionId::new("sec-1")?,
    ///     SubscriptionId::new("123456")?,
    ///     "2026-11-26T09:30:00Z".parse()?,
    /// );
    /// let built = node.build_request(
    ///     &FlowId::new("crm")?, &profile, &event, "2026-11-26T09:30:05Z".parse()?,
    /// )?;
    /// assert_eq!(
    ///     built.request().uri(),
    ///     "https://crm.example.com/optout?source=platform&email=a%2Bb%40example.com&subscription=123456"
    /// );
    /// assert!(built.request().body().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RequestBuildError::MissingValue`] when a required parameter's source has no value (the
    /// Profile has no Email; `subscription_id` on an Email - Abuse event), naming the parameter
    /// and the source; [`RequestBuildError::ProfileMismatch`] when the event is another
    /// Profile's; [`RequestBuildError::SectionNeeded`] for a `folder_id` parameter;
    /// [`RequestBuildError::UrlTooLong`] when the query grows past [`MAX_REQUEST_URL_LEN`].
    pub fn build_request(
        &self,
        flow: &FlowId,
        profile: &Profile,
        event: &OptOutEvent,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError> {
        self.build(flow, profile, event, None, now)
    }

    /// As [`WebhookNode::build_request`], with the event's Section catalog, which `folder_id`
    /// parameters need.
    ///
    /// # Errors
    ///
    /// As [`WebhookNode::build_request`], and [`RequestBuildError::SectionMismatch`] when the
    /// event belongs to another Section.
    pub fn build_request_in(
        &self,
        section: &Section,
        flow: &FlowId,
        profile: &Profile,
        event: &OptOutEvent,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError> {
        if section.id() != event.section() {
            return Err(RequestBuildError::SectionMismatch {
                event_section: event.section().clone(),
                section: section.id().clone(),
            });
        }
        self.build(flow, profile, event, Some(section), now)
    }

    /// Signs `request` (built by this node) anew for an attempt at `now`: sets
    /// `webhook-timestamp` to `now` and recomputes `webhook-signature` over the same id and body.
    /// Receivers accept timestamps within minutes of their clock, so a retry hours later must
    /// carry a fresh signature; the `webhook-id` stays the same. Does nothing when the node does
    /// not sign or the request has no `webhook-id`.
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
        #[cfg(feature = "signing")]
        let signature =
            crate::webhook::sign::signature_header(&self.signing, &id, timestamp, request.body());
        let headers = request.headers_mut();
        headers.insert("webhook-timestamp", http::HeaderValue::from(timestamp));
        #[cfg(feature = "signing")]
        if let Ok(value) = http::HeaderValue::from_str(&signature) {
            headers.insert("webhook-signature", value);
        }
        #[cfg(not(feature = "signing"))]
        let _ = id;
    }

    fn build(
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
        let params = resolve(
            &self.params,
            &Inputs {
                profile,
                event,
                section,
            },
        )?;
        let id = WebhookId::derive(flow, event.id());

        let (uri, body) = self.encode(&params, event, false);
        let (masked_uri, masked_body) = self.encode(&params, event, true);
        if uri.len() > MAX_REQUEST_URL_LEN {
            return Err(RequestBuildError::UrlTooLong {
                len: uri.len(),
                max: MAX_REQUEST_URL_LEN,
            });
        }

        // Header order: static headers, credentials, content-type, the Standard Webhooks ones.
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut masked_headers: Vec<(String, String)> = Vec::new();
        for header in &self.headers {
            let pair = (
                header.name().to_ascii_lowercase(),
                header.value().to_owned(),
            );
            headers.push(pair.clone());
            masked_headers.push(pair);
        }
        if let Some((name, value)) = self.auth.header() {
            masked_headers.push((name.clone(), self.auth.masked_value().to_owned()));
            headers.push((name, value));
        }
        let mut webhook_headers = Vec::new();
        if let Some(content_type) = self.encoding.content_type() {
            webhook_headers.push(("content-type".to_owned(), content_type.to_owned()));
        }
        webhook_headers.push(("webhook-id".to_owned(), id.as_str().to_owned()));
        if self.is_signed() {
            let timestamp = now.as_second();
            webhook_headers.push(("webhook-timestamp".to_owned(), timestamp.to_string()));
            #[cfg(feature = "signing")]
            webhook_headers.push((
                "webhook-signature".to_owned(),
                crate::webhook::sign::signature_header(
                    &self.signing,
                    id.as_str(),
                    timestamp,
                    &body,
                ),
            ));
        }
        headers.extend(webhook_headers.iter().cloned());
        masked_headers.extend(webhook_headers);

        let mut builder = http::Request::builder()
            .method(self.method.to_http())
            .uri(uri.as_str());
        for (name, value) in &headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(body)
            .map_err(|error| RequestBuildError::Http {
                reason: error.to_string(),
            })?;

        Ok(WebhookRequest {
            request,
            id,
            masked_uri,
            masked_body,
            masked_headers,
            params,
        })
    }

    /// The request URL and body for these parameters, masked or not.
    fn encode(&self, params: &[Resolved], event: &OptOutEvent, masked: bool) -> (String, Vec<u8>) {
        let base = self.url.as_str();
        match self.encoding {
            WebhookEncoding::Query => {
                let query = form(params, masked);
                let uri = if query.is_empty() {
                    base.to_owned()
                } else {
                    let separator = match self.url.query() {
                        None => "?",
                        Some(q) if q.is_empty() || q.ends_with('&') => "",
                        Some(_) => "&",
                    };
                    format!("{base}{separator}{query}")
                };
                (uri, Vec::new())
            }
            WebhookEncoding::Form => (base.to_owned(), form(params, masked).into_bytes()),
            WebhookEncoding::Json => (base.to_owned(), json_object(params, masked).into_bytes()),
            WebhookEncoding::JsonEnvelope => {
                let body = format!(
                    "{{\"type\":{},\"timestamp\":{},\"data\":{}}}",
                    json_string(&format!("opt_out.{}", event.kind().as_str())),
                    json_string(&event.occurred_at().to_string()),
                    json_object(params, masked)
                );
                (base.to_owned(), body.into_bytes())
            }
        }
    }
}

/// `name=value&...`, each name and value through `form_urlencoded::byte_serialize`.
fn form(params: &[Resolved], masked: bool) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for param in params {
        serializer.append_pair(&param.name, &param.value.text(masked));
    }
    serializer.finish()
}

/// A flat JSON object of the parameters, in their configured order.
fn json_object(params: &[Resolved], masked: bool) -> String {
    let mut out = String::from("{");
    for (i, param) in params.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(&param.name));
        out.push(':');
        out.push_str(&param.value.json(masked).to_string());
    }
    out.push('}');
    out
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}
