//! The Webhook node: where and how a flow sends an opt-out.
//!
//! (Skeleton: method and endpoint only. Parameters, encodings, headers, auth, signing and the
//! request builder come with the webhook work.)

use serde::{Deserialize, Serialize};
use url::Url;

/// The HTTP method of a Webhook node. POST is the recommended default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    /// GET.
    Get,
    /// POST (the default, and the article's recommendation).
    #[default]
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// PATCH.
    Patch,
}

/// The Webhook node of a flow: where and how the opt-out is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct WebhookNode {
    #[serde(default)]
    method: WebhookMethod,
    url: Url,
}

impl WebhookNode {
    /// A Webhook node sending with `method` to `url`.
    pub fn new(method: WebhookMethod, url: Url) -> Self {
        Self { method, url }
    }

    /// The HTTP method.
    pub fn method(&self) -> WebhookMethod {
        self.method
    }

    /// The endpoint URL, with its static query parameters.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Webhook-side diagnostics for a flow taking `kinds`. (None yet in this skeleton.)
    pub fn lint(&self, flow: &crate::FlowId, kinds: &[crate::EventKind]) -> Vec<crate::Diagnostic> {
        let _ = (flow, kinds);
        Vec::new()
    }
}
