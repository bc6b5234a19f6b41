//! A secret string, redacted wherever it is printed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string (a bearer token, a password, an API key, a signing secret).
///
/// `Debug` and `Display` print `[redacted]`; [`Secret::expose`] gives the value. It serializes
/// as the plain string, so that a node's JSON form round-trips: keep flow files that hold secrets
/// as private as the secrets themselves, or fill the secrets in when loading.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// Whether a query parameter or header of this name likely holds a credential (`token`,
/// `api_key`, `x-auth-token`, `client_secret`, `password`, `signature`...): what masked previews
/// hide and the `credential_outside_auth` lint reports. Case, `-` and `_` do not count.
pub(crate) fn looks_like_credential(name: &str) -> bool {
    let name: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    name.ends_with("key")
        || [
            "token",
            "secret",
            "passw",
            "pwd",
            "auth",
            "credential",
            "signature",
            "session",
        ]
        .iter()
        .any(|part| name.contains(part))
}

#[cfg(test)]
mod tests {
    use super::looks_like_credential;

    #[test]
    fn credential_names_are_told_by_their_words() {
        for name in [
            "token",
            "api_key",
            "apiKey",
            "X-API-KEY",
            "access_token",
            "client_secret",
            "password",
            "passwd",
            "pwd",
            "x-auth-token",
            "Authorization",
            "credentials",
            "signature",
            "sessionid",
            "key",
        ] {
            assert!(looks_like_credential(name), "{name}");
        }
        for name in [
            "source", "tenant", "x-tenant", "list", "email", "campaign", "keyword",
        ] {
            assert!(!looks_like_credential(name), "{name}");
        }
    }
}
