//! How a request authenticates to the receiver: bearer token, basic auth or an API-key header.

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::webhook::base64_encode;
use crate::webhook::error::WebhookConfigError;
use crate::webhook::header::{self, Header, MAX_HEADER_VALUE_LEN};
use crate::webhook::problem::AuthProblem;
use crate::webhook::secret::Secret;

/// The longest basic-auth user name or password accepted, in bytes.
pub const MAX_BASIC_CREDENTIAL_LEN: usize = 1024;

/// How the request authenticates to the receiver. Secrets are redacted in `Debug`, `Display`
/// and masked previews.
///
/// JSON: absent or `"none"`; `{"bearer": {"token": "..."}}`;
/// `{"basic": {"username": "...", "password": "..."}}`;
/// `{"header": {"name": "x-api-key", "value": "..."}}`.
///
/// Never put credentials in the URL (`https://user:pass@host/` is rejected): URLs end up in
/// logs, proxies and previews.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// `authorization: Bearer <token>`.
    Bearer {
        /// The token: visible ASCII, no spaces.
        token: Secret,
    },
    /// `authorization: Basic base64(<username>:<password>)` (RFC 7617, UTF-8).
    Basic {
        /// The user name (no `:`), not secret.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A custom header holding an API key, such as `x-api-key: <value>`.
    Header {
        /// The header name.
        #[serde(deserialize_with = "header::deserialize_name")]
        name: String,
        /// The header value: visible ASCII and spaces.
        value: Secret,
    },
}

/// The credentials header of a node: its name, its value (marked sensitive) and the value
/// masked previews show.
pub(crate) type AuthHeader = (HeaderName, HeaderValue, &'static str);

impl Auth {
    /// Whether this is [`Auth::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The scheme's name in error messages: `bearer`, `basic` or `header`.
    fn scheme(&self) -> &'static str {
        match self {
            Self::Bearer { .. } => "bearer",
            Self::Basic { .. } => "basic",
            Self::None | Self::Header { .. } => "header",
        }
    }

    /// The header value as masked previews show it.
    fn masked_value(&self) -> &'static str {
        match self {
            Self::Bearer { .. } => "Bearer [redacted]",
            Self::Basic { .. } => "Basic [redacted]",
            Self::None | Self::Header { .. } => "[redacted]",
        }
    }

    /// Checks the credentials against the node's (already checked) static `headers` and gives
    /// the header carrying them, if any, parsed once.
    pub(crate) fn prepare(
        &self,
        headers: &[Header],
    ) -> Result<Option<AuthHeader>, WebhookConfigError> {
        let invalid = |reason| WebhookConfigError::InvalidAuth {
            scheme: self.scheme(),
            reason,
        };
        let (name, value) = match self {
            Self::None => return Ok(None),
            Self::Bearer { token } => {
                let token = token.expose();
                if token.is_empty() {
                    return Err(invalid(AuthProblem::EmptyToken));
                } else if token.len() > MAX_HEADER_VALUE_LEN {
                    return Err(invalid(AuthProblem::TokenTooLong));
                } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid(AuthProblem::TokenNotVisibleAscii));
                }
                let value = HeaderValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| invalid(AuthProblem::ValueNotVisibleAscii))?;
                (http::header::AUTHORIZATION, value)
            }
            Self::Basic { username, password } => {
                let password = password.expose();
                if username.contains(':') {
                    return Err(invalid(AuthProblem::ColonInUserName));
                } else if username.len() > MAX_BASIC_CREDENTIAL_LEN
                    || password.len() > MAX_BASIC_CREDENTIAL_LEN
                {
                    return Err(invalid(AuthProblem::CredentialTooLong));
                } else if username.chars().any(char::is_control)
                    || password.chars().any(char::is_control)
                {
                    return Err(invalid(AuthProblem::CredentialControlCharacter));
                }
                let pair = format!("{username}:{password}");
                let encoded = base64_encode::encode(pair.as_bytes());
                let value = HeaderValue::try_from(format!("Basic {encoded}"))
                    .map_err(|_| invalid(AuthProblem::ValueNotVisibleAscii))?;
                (http::header::AUTHORIZATION, value)
            }
            Self::Header { name, value } => {
                let parsed = header::parse_name(name)
                    .map_err(|reason| WebhookConfigError::InvalidHeaderName { reason })?;
                header::check_not_reserved(&parsed)?;
                if let Some(first) = headers
                    .iter()
                    .position(|h| h.name().eq_ignore_ascii_case(name))
                {
                    return Err(WebhookConfigError::DuplicateHeader { index: None, first });
                }
                let value = header::parse_value(value.expose()).map_err(|reason| {
                    WebhookConfigError::InvalidHeaderValue {
                        index: None,
                        reason,
                    }
                })?;
                (parsed, value)
            }
        };
        let mut value = value;
        value.set_sensitive(true);
        Ok(Some((name, value, self.masked_value())))
    }
}
