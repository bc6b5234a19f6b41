//! A delivery's request as plain serde data, and back.

use serde::{Deserialize, Serialize};

use crate::delivery::error::{DeliveryError, StoredRequestProblem};

/// A request kept as plain data: method, URI, headers and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) struct StoredRequest {
    method: String,
    uri: String,
    headers: Vec<(String, Bytes)>,
    body: Bytes,
}

/// Bytes kept as text when they are UTF-8, else as a list of numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Bytes {
    Text(String),
    Raw(Vec<u8>),
}

impl Bytes {
    fn new(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::Text(text.to_owned()),
            Err(_) => Self::Raw(bytes.to_vec()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Raw(bytes) => bytes,
        }
    }
}

pub(super) fn store(request: &http::Request<Vec<u8>>) -> StoredRequest {
    StoredRequest {
        method: request.method().as_str().to_owned(),
        uri: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), Bytes::new(value.as_bytes())))
            .collect(),
        body: Bytes::new(request.body()),
    }
}

pub(super) fn restore(stored: &StoredRequest) -> Result<http::Request<Vec<u8>>, DeliveryError> {
    let mut builder = http::Request::builder()
        .method(stored.method.as_str())
        .uri(stored.uri.as_str());
    for (name, value) in &stored.headers {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    builder
        .body(stored.body.as_bytes().to_vec())
        .map_err(|e| DeliveryError::InvalidRequest {
            problem: StoredRequestProblem::of(&e),
        })
}
