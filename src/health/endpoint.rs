//! [`Endpoint`]: the destination a delivery goes to, as endpoint health knows it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The most bytes an endpoint key holds; a longer key is refused when read from text.
pub const MAX_ENDPOINT_LEN: usize = 2_048;

/// One endpoint: the scheme, host, port and path a delivery's request goes to, without the
/// query string, the fragment or any user information.
///
/// It is what endpoint health (state, circuit breaker, limits) is kept by: the deliveries of
/// every flow that sends to the same URL share one endpoint, whatever their query parameters.
/// A flow's profile-data parameters go into the query string or the body, never into the path,
/// so a key never holds personal data, and it is what metrics label an endpoint with.
///
/// ```
/// use optout_relay::health::Endpoint;
///
/// let uri: http::Uri = "https://crm.example.com:8443/hooks/optout?email=a%40example.com".parse()?;
/// let endpoint = Endpoint::of(&uri);
/// assert_eq!(endpoint.as_str(), "https://crm.example.com:8443/hooks/optout");
/// // Read back from text (an operator's command): the query string is dropped there too.
/// let typed: Endpoint = "https://crm.example.com:8443/hooks/optout?x=1".parse()?;
/// assert_eq!(typed, endpoint);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Endpoint(String);

impl Endpoint {
    /// The endpoint of a request's URI. A URI without a scheme or host (which the crate never
    /// sends) keys as its path alone.
    pub fn of(uri: &http::Uri) -> Self {
        let mut key = String::with_capacity(64);
        if let Some(scheme) = uri.scheme_str() {
            key.push_str(&scheme.to_ascii_lowercase());
            key.push_str("://");
        }
        if let Some(host) = uri.host() {
            key.push_str(&host.to_ascii_lowercase());
        }
        if let Some(port) = uri.port_u16() {
            key.push(':');
            key.push_str(&port.to_string());
        }
        key.push_str(uri.path());
        Self(key)
    }

    /// The key: `scheme://host[:port]/path`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key read back from a store, as written.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn from_stored(key: String) -> Self {
        Self(key)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text that is not an endpoint's URL. The text itself is not repeated (it may hold a query
/// string with personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Not an absolute URL with a scheme and a host.
    #[error("an endpoint is an absolute URL such as https://crm.example.com/optout")]
    NotAbsoluteUrl,
    /// Longer than [`MAX_ENDPOINT_LEN`] bytes.
    #[error("an endpoint is at most {MAX_ENDPOINT_LEN} bytes long")]
    TooLong,
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > MAX_ENDPOINT_LEN {
            return Err(EndpointError::TooLong);
        }
        let uri: http::Uri = text.parse().map_err(|_| EndpointError::NotAbsoluteUrl)?;
        if uri.scheme().is_none() || uri.host().is_none_or(str::is_empty) {
            return Err(EndpointError::NotAbsoluteUrl);
        }
        Ok(Self::of(&uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_drops_query_user_and_case_of_the_host() {
        let uri: http::Uri = "HTTP://user:pw@CRM.Example.com/a/B?q=1#f".parse().unwrap();
        assert_eq!(Endpoint::of(&uri).as_str(), "http://crm.example.com/a/B");
        let uri: http::Uri = "http://127.0.0.1:9000/".parse().unwrap();
        assert_eq!(Endpoint::of(&uri).as_str(), "http://127.0.0.1:9000/");
    }

    #[test]
    fn text_that_is_not_an_absolute_url_is_refused_without_being_repeated() {
        for text in ["", "/optout", "crm.example.com", "not a url"] {
            let error = text.parse::<Endpoint>().unwrap_err();
            assert_eq!(error, EndpointError::NotAbsoluteUrl, "{text}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(
            long.parse::<Endpoint>().unwrap_err(),
            EndpointError::TooLong
        );
    }
}
