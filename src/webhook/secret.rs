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

/// Whether a query parameter or header of this name likely holds a credential: what masked
/// previews redact and the lint `credential_outside_auth` reports. Case, `-` and `_` do not
/// count. Names such as `token`, `access_token`, `client_secret`, `password`, `x-auth-token`,
/// `authorization`, `signature`, `session_id`, `cookie`, `api_key`, and the short `sig`, `code`,
/// `key`, `pass`, `pw`, `pwd` (Azure SAS and Functions URLs use `sig` and `code`); not names
/// that merely end in `key` without being secret (`idempotency-key`, `partition_key`,
/// `publishable_key`, `public_key`) nor `author`.
///
/// ```
/// use optout_relay::webhook::looks_like_credential;
///
/// assert!(looks_like_credential("X-Auth-Token"));
/// assert!(looks_like_credential("api_key"));
/// assert!(!looks_like_credential("Idempotency-Key"));
/// assert!(!looks_like_credential("source"));
/// ```
pub fn looks_like_credential(name: &str) -> bool {
    const EXACT: [&str; 7] = ["sig", "code", "key", "pass", "pw", "pwd", "cookie"];
    const PARTS: [&str; 7] = [
        "token",
        "secret",
        "passw",
        "credential",
        "signature",
        "session",
        "cookie",
    ];
    const NOT_SECRET_KEYS: [&str; 4] = [
        "idempotencykey",
        "partitionkey",
        "publishablekey",
        "publickey",
    ];
    let name: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    EXACT.contains(&name.as_str())
        || PARTS.iter().any(|part| name.contains(part))
        || (name.contains("auth") && (!name.contains("author") || name.contains("authoriz")))
        || (name.ends_with("key") && !NOT_SECRET_KEYS.contains(&name.as_str()))
}

/// The name, as written, of a static query pair `name=value` (percent-encoded, as in a URL)
/// that holds a credential: a value, and a name that [looks like one](looks_like_credential).
pub(crate) fn credential_name(pair: &str) -> Option<&str> {
    let (name, value) = pair.split_once('=')?;
    let decoded: String = url::form_urlencoded::parse(name.as_bytes())
        .map(|(key, _)| key.into_owned())
        .collect();
    (!value.is_empty() && looks_like_credential(&decoded)).then_some(name)
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
