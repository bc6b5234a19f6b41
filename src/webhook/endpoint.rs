//! The endpoint URL: read from text exactly as written, and checked for what HTTP can send.

use url::Url;

use crate::webhook::error::WebhookConfigError;
use crate::webhook::params::Param;
use crate::webhook::problem::{UriProblem, UrlCharacterKind};

/// The longest endpoint URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Parses an endpoint URL written as text, refusing control characters and whitespace first:
/// the WHATWG parser removes tabs and newlines anywhere, trims leading and trailing C0 controls
/// and spaces, and percent-encodes the rest, so what is called would differ from what is written.
pub(crate) fn parse_url(text: &str) -> Result<Url, WebhookConfigError> {
    if let Some((position, c)) = text
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        return Err(WebhookConfigError::UrlCharacter {
            position,
            found: if c.is_control() {
                UrlCharacterKind::Control
            } else {
                UrlCharacterKind::Whitespace
            },
        });
    }
    Url::parse(text).map_err(|source| WebhookConfigError::InvalidUrl { source })
}

/// Refuses a parameter named like a static query parameter of `url`, as a receiver decodes the
/// names (percent-decoded, `+` a space). Checked whatever the encoding: with `query` both are
/// in one query string, with a body a receiver that merges query and body parameters sees both.
pub(crate) fn check_static_query(url: &Url, params: &[Param]) -> Result<(), WebhookConfigError> {
    if url.query().is_none() {
        return Ok(());
    }
    let statics: Vec<_> = url.query_pairs().map(|(name, _)| name).collect();
    match params
        .iter()
        .position(|p| statics.iter().any(|name| name == p.name()))
    {
        Some(index) => Err(WebhookConfigError::ParamConflictsWithStaticQuery { index }),
        None => Ok(()),
    }
}

/// Checks an endpoint URL: `http` or `https`, no credentials, no fragment, not too long, and a
/// valid HTTP request URI.
pub(crate) fn validate_url(url: &Url) -> Result<(), WebhookConfigError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookConfigError::UnsupportedScheme {
            scheme: url.scheme().chars().take(32).collect(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookConfigError::CredentialsInUrl);
    }
    if url.fragment().is_some() {
        return Err(WebhookConfigError::FragmentInUrl);
    }
    if url.as_str().len() > MAX_URL_LEN {
        return Err(WebhookConfigError::UrlTooLong {
            len: url.as_str().len(),
            max: MAX_URL_LEN,
        });
    }
    if let Err(error) = http::Uri::try_from(url.as_str()) {
        return Err(WebhookConfigError::UrlNotHttp {
            reason: UriProblem::of(&error),
        });
    }
    Ok(())
}
