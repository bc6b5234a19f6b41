//! The HTTP method of a Webhook node and where its parameters go.

use std::fmt;

use serde::{Deserialize, Serialize};

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

impl WebhookMethod {
    /// The method's name: `GET`, `POST`, `PUT`, `DELETE` or `PATCH`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
        }
    }

    /// Whether a request of this method may carry a body (GET and DELETE do not).
    pub fn takes_body(self) -> bool {
        !matches!(self, Self::Get | Self::Delete)
    }

    /// The method as an [`http::Method`].
    pub fn to_http(self) -> http::Method {
        match self {
            Self::Get => http::Method::GET,
            Self::Post => http::Method::POST,
            Self::Put => http::Method::PUT,
            Self::Delete => http::Method::DELETE,
            Self::Patch => http::Method::PATCH,
        }
    }
}

impl fmt::Display for WebhookMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the parameters go.
///
/// See the [module docs](crate::webhook#encodings) for the exact bytes of each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookEncoding {
    /// Every parameter in the query string after the static ones, empty body, for every method:
    /// the platform's behaviour, byte-compatible. The default.
    #[default]
    Query,
    /// An `application/x-www-form-urlencoded` body.
    Form,
    /// A flat JSON object of the parameters (`application/json`).
    Json,
    /// A Standard Webhooks envelope (`application/json`):
    /// `{"type": "opt_out.<kind>", "timestamp": "<occurred_at>", "data": {<parameters>}}`.
    JsonEnvelope,
}

impl WebhookEncoding {
    /// The wire name: `query`, `form`, `json` or `json_envelope`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Form => "form",
            Self::Json => "json",
            Self::JsonEnvelope => "json_envelope",
        }
    }

    /// Whether the parameters go in a body.
    pub fn has_body(self) -> bool {
        !matches!(self, Self::Query)
    }

    /// The `content-type` of the body, if there is one.
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            Self::Query => None,
            Self::Form => Some("application/x-www-form-urlencoded"),
            Self::Json | Self::JsonEnvelope => Some("application/json"),
        }
    }
}

impl fmt::Display for WebhookEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
