//! Static headers: each name and value checked once, when the header is made, and kept in the
//! parsed `http` form that every request clones.

use std::fmt;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::webhook::error::WebhookConfigError;
use crate::webhook::problem::{HeaderNameProblem, HeaderValueProblem, ReservedHeaderHint};

/// The most static headers a node may send.
pub const MAX_HEADERS: usize = 32;
/// The longest static header value, bearer token or auth header value accepted, in bytes.
pub const MAX_HEADER_VALUE_LEN: usize = 4096;

/// A static header: sent with every request, shown in previews (it is not treated as a secret;
/// put API keys in [`Auth::Header`](crate::webhook::Auth::Header)).
///
/// JSON: `{"name": "x-tenant", "value": "acme"}`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Header {
    name: String,
    value: String,
    /// `name`, lower-cased and parsed, or why it is not a header name.
    http_name: Result<HeaderName, HeaderNameProblem>,
    /// `value`, checked and parsed, or what is wrong with it.
    http_value: Result<HeaderValue, HeaderValueProblem>,
}

impl Header {
    /// A static header. It is checked now and its problems reported when the node is built.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        let http_name = parse_name(&name);
        Self::with_name(name, http_name, value.into())
    }

    fn with_name(
        name: String,
        http_name: Result<HeaderName, HeaderNameProblem>,
        value: String,
    ) -> Self {
        Self {
            http_name,
            http_value: parse_value(&value),
            name,
            value,
        }
    }

    /// The header name, as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name)
            .field("value", &self.value)
            .finish()
    }
}

/// Checks a node's static headers, in order, and gives their parsed forms: the count, then for
/// each header its name, whether the crate reserves it, whether an earlier header has it, and
/// its value.
pub(crate) fn prepare(
    headers: &[Header],
) -> Result<Vec<(HeaderName, HeaderValue)>, WebhookConfigError> {
    if headers.len() > MAX_HEADERS {
        return Err(WebhookConfigError::TooManyHeaders {
            count: headers.len(),
            max: MAX_HEADERS,
        });
    }
    let mut prepared: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(headers.len());
    for (index, header) in headers.iter().enumerate() {
        let name = header
            .http_name
            .as_ref()
            .map_err(|&reason| WebhookConfigError::InvalidHeaderName { reason })?;
        check_not_reserved(name)?;
        if let Some(first) = prepared.iter().position(|(earlier, _)| earlier == name) {
            return Err(WebhookConfigError::DuplicateHeader {
                index: Some(index),
                first,
            });
        }
        let value = header.http_value.as_ref().map_err(|&reason| {
            WebhookConfigError::InvalidHeaderValue {
                index: Some(index),
                reason,
            }
        })?;
        prepared.push((name.clone(), value.clone()));
    }
    Ok(prepared)
}

/// Parses a header name (any case), lower-cased.
pub(crate) fn parse_name(name: &str) -> Result<HeaderName, HeaderNameProblem> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| name_problem(name))
}

/// Why `http` refuses a header name.
fn name_problem(name: &str) -> HeaderNameProblem {
    /// The characters of an HTTP token (RFC 9110) besides letters and digits.
    const TOKEN: &[u8] = b"!#$%&'*+-.^_`|~";
    if name.is_empty() {
        HeaderNameProblem::Empty
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || TOKEN.contains(&b))
    {
        HeaderNameProblem::NotToken
    } else {
        HeaderNameProblem::TooLong
    }
}

/// Checks a header value (at most [`MAX_HEADER_VALUE_LEN`] bytes of visible ASCII, spaces and
/// tabs, not starting or ending with whitespace) and parses it.
pub(crate) fn parse_value(value: &str) -> Result<HeaderValue, HeaderValueProblem> {
    if value.len() > MAX_HEADER_VALUE_LEN {
        Err(HeaderValueProblem::TooLong)
    } else if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        Err(HeaderValueProblem::LineBreak)
    } else if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        Err(HeaderValueProblem::NotVisibleAscii)
    } else if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        Err(HeaderValueProblem::SurroundingWhitespace)
    } else {
        HeaderValue::from_str(value).map_err(|_| HeaderValueProblem::NotVisibleAscii)
    }
}

/// Refuses the headers the crate sets (or leaves to the transport), saying what to do instead.
pub(crate) fn check_not_reserved(name: &HeaderName) -> Result<(), WebhookConfigError> {
    const RESERVED: [(&str, ReservedHeaderHint); 9] = [
        ("host", ReservedHeaderHint::Transport),
        ("content-length", ReservedHeaderHint::Transport),
        ("transfer-encoding", ReservedHeaderHint::Transport),
        ("connection", ReservedHeaderHint::Transport),
        ("content-type", ReservedHeaderHint::Encoding),
        ("authorization", ReservedHeaderHint::Auth),
        ("webhook-id", ReservedHeaderHint::Signing),
        ("webhook-timestamp", ReservedHeaderHint::Signing),
        ("webhook-signature", ReservedHeaderHint::Signing),
    ];
    match RESERVED.iter().find(|(reserved, _)| name == reserved) {
        Some(&(name, hint)) => Err(WebhookConfigError::ReservedHeader { name, hint }),
        None => Ok(()),
    }
}

/// A header name read from JSON is checked there, so that a flow-file error points at it.
pub(crate) fn deserialize_name<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    deserialize_parsed_name(deserializer).map(|(name, _)| name)
}

/// A header name read from JSON, as written and parsed.
fn deserialize_parsed_name<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<(String, HeaderName), D::Error> {
    let name = String::deserialize(deserializer)?;
    let parsed = parse_name(&name).map_err(|reason| {
        serde::de::Error::custom(WebhookConfigError::InvalidHeaderName { reason })
    })?;
    Ok((name, parsed))
}

/// The JSON form of a [`Header`] as read.
#[derive(Deserialize)]
#[serde(rename = "Header", rename_all = "snake_case", deny_unknown_fields)]
struct HeaderSpec {
    #[serde(deserialize_with = "deserialize_parsed_name")]
    name: (String, HeaderName),
    value: String,
}

/// The JSON form of a [`Header`] as written.
#[derive(Serialize)]
#[serde(rename = "Header", rename_all = "snake_case")]
struct HeaderRef<'a> {
    name: &'a str,
    value: &'a str,
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let HeaderSpec {
            name: (name, parsed),
            value,
        } = HeaderSpec::deserialize(deserializer)?;
        Ok(Self::with_name(name, Ok(parsed), value))
    }
}

impl Serialize for Header {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        HeaderRef {
            name: &self.name,
            value: &self.value,
        }
        .serialize(serializer)
    }
}
