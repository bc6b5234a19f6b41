//! The [`HttpClient`] over `reqwest` (feature `reqwest`; HTTPS with feature `rustls`).

use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;

use crate::transport::{
    BlockReason, DestinationPolicy, HttpClient, TransportError, TransportErrorKind,
};

/// A refusal by the destination policy: raised by the resolver and the client, found again by
/// walking an error's sources.
#[derive(Debug)]
struct Refused {
    reason: BlockReason,
    resolved: bool,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.resolved {
            write!(
                f,
                "blocked by the destination policy: the name resolves to {}",
                self.reason
            )
        } else {
            write!(
                f,
                "blocked by the destination policy: the destination is {}",
                self.reason
            )
        }
    }
}

impl std::error::Error for Refused {}

/// A failed name lookup, found again by walking an error's sources.
#[derive(Debug)]
struct LookupFailed(std::io::Error);

impl std::fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the name could not be resolved: {}", self.0)
    }
}

impl std::error::Error for LookupFailed {}

/// Resolves host names and keeps only the addresses the destination policy allows, so that the
/// client connects only to vetted addresses.
#[derive(Debug)]
struct PolicyResolver {
    policy: DestinationPolicy,
}

/// The resolved addresses the policy allows; the reason of the first one when none is allowed.
fn vet(
    policy: &DestinationPolicy,
    resolved: Vec<std::net::SocketAddr>,
) -> Result<Vec<std::net::SocketAddr>, BlockReason> {
    let first_refusal = resolved.first().and_then(|a| policy.check_ip(a.ip()).err());
    let allowed: Vec<std::net::SocketAddr> = resolved
        .into_iter()
        .filter(|a| policy.check_ip(a.ip()).is_ok())
        .collect();
    if allowed.is_empty() {
        return Err(first_refusal.unwrap_or(BlockReason::NoAllowedAddress));
    }
    Ok(allowed)
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if let Err(reason) = policy.check_host(&host) {
                return Err(Box::new(Refused {
                    reason,
                    resolved: false,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(LookupFailed(e)) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            let allowed = vet(&policy, resolved).map_err(|reason| {
                Box::new(Refused {
                    reason,
                    resolved: true,
                }) as Box<dyn std::error::Error + Send + Sync>
            })?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The default time one attempt may take, from connecting to the end of the response body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default number of response-body bytes read; the rest is not read.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// An [`HttpClient`] over `reqwest` that never follows redirects (a 3xx is returned as a
/// response, and the retry policy treats it as a failure), bounds each attempt with a timeout,
/// reads at most a bounded number of response-body bytes, uses no proxy, and connects only to
/// addresses its [`DestinationPolicy`] allows (checked for IP literals, and for every address a
/// host name resolves to).
///
/// Error messages never include the request URL (its query may carry an email address).
///
/// ```no_run
/// use optout_relay::ReqwestClient;
/// use std::time::Duration;
///
/// let client = ReqwestClient::builder().timeout(Duration::from_secs(10)).build()?;
/// # Ok::<(), optout_relay::TransportError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: reqwest::Client,
    body_limit: usize,
    policy: DestinationPolicy,
}

/// Builds a [`ReqwestClient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ReqwestClientBuilder {
    timeout: Duration,
    connect_timeout: Option<Duration>,
    body_limit: usize,
    resolve: Vec<(String, std::net::SocketAddr)>,
    policy: DestinationPolicy,
}

impl ReqwestClientBuilder {
    /// The time one attempt may take, from connecting to the end of the response body
    /// (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time connecting may take (default: bounded by the whole timeout only).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How many response-body bytes are read (default [`DEFAULT_BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The destination policy (default: the strict [`DestinationPolicy::default`], which refuses
    /// loopback, private, link-local and other non-global addresses, as literals and as what a
    /// host name resolves to).
    pub fn destination_policy(mut self, policy: DestinationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Resolves `domain` to `address` instead of asking DNS (the address is checked against the
    /// destination policy when the client is built).
    pub fn resolve(mut self, domain: impl Into<String>, address: std::net::SocketAddr) -> Self {
        self.resolve.push((domain.into(), address));
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] of kind [`TransportErrorKind::Other`] when `reqwest` cannot set up
    /// its client (for example when no TLS backend can be initialised), of kind
    /// [`TransportErrorKind::Blocked`] when a [`resolve`](Self::resolve) override names an
    /// address the destination policy refuses.
    pub fn build(self) -> Result<ReqwestClient, TransportError> {
        for (domain, address) in &self.resolve {
            if let Err(reason) = self.policy.check_ip(address.ip()) {
                return Err(TransportError::new(
                    TransportErrorKind::Blocked,
                    format!(
                        "blocked by the destination policy: `{domain}` is set to resolve to {reason}"
                    ),
                ));
            }
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(PolicyResolver {
                policy: self.policy.clone(),
            })
            .timeout(self.timeout);
        if let Some(timeout) = self.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        for (domain, address) in &self.resolve {
            builder = builder.resolve(domain, *address);
        }
        let client = builder
            .build()
            .map_err(|e| TransportError::new(TransportErrorKind::Other, describe(&e)))?;
        Ok(ReqwestClient {
            client,
            body_limit: self.body_limit,
            policy: self.policy,
        })
    }
}

impl ReqwestClient {
    /// A builder with the defaults: 30 s per attempt, 64 KiB of body read, no redirects.
    pub fn builder() -> ReqwestClientBuilder {
        ReqwestClientBuilder {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: None,
            body_limit: DEFAULT_BODY_LIMIT,
            resolve: Vec::new(),
            policy: DestinationPolicy::default(),
        }
    }

    /// A client with the defaults.
    ///
    /// # Errors
    ///
    /// See [`ReqwestClientBuilder::build`].
    pub fn new() -> Result<Self, TransportError> {
        Self::builder().build()
    }
}

/// The error and its sources as one message, without the URL.
fn describe(error: &reqwest::Error) -> String {
    let mut message = String::new();
    let mut source: Option<&dyn std::error::Error> = error.source();
    message.push_str(if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "could not read the body"
    } else if error.is_builder() {
        "invalid request"
    } else {
        "request failed"
    });
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Every error in `error`'s source chain, the error itself first; an `io::Error` that wraps
/// another error is followed into it (its `source()` skips the wrapped error itself).
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut found = Vec::new();
    let mut next = Some(error);
    // A chain is short; the bound guards against a cycle.
    while let Some(cause) = next.take() {
        if found.len() == 64 {
            break;
        }
        found.push(cause);
        next = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => cause.source(),
            },
            None => cause.source(),
        };
    }
    found
}

/// What failed, from the types in the error's source chain (never from its text).
fn kind_of(error: &reqwest::Error) -> TransportErrorKind {
    use std::io::ErrorKind as Io;
    let chain = causes(error);
    for cause in &chain {
        if cause.is::<Refused>() {
            return TransportErrorKind::Blocked;
        }
        if cause.is::<LookupFailed>() {
            return TransportErrorKind::Dns;
        }
        #[cfg(feature = "rustls")]
        if cause.is::<rustls::Error>() {
            return TransportErrorKind::Tls;
        }
    }
    if error.is_timeout() {
        return TransportErrorKind::Timeout;
    }
    if error.is_builder() {
        return TransportErrorKind::InvalidRequest;
    }
    for cause in &chain {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == Io::TimedOut {
                return TransportErrorKind::Timeout;
            }
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_timeout() {
                return TransportErrorKind::Timeout;
            }
            if hyper.is_incomplete_message() || hyper.is_body_write_aborted() {
                return TransportErrorKind::Body;
            }
        }
    }
    if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_body() || error.is_decode() {
        TransportErrorKind::Body
    } else {
        TransportErrorKind::Other
    }
}

fn transport_error(error: &reqwest::Error) -> TransportError {
    TransportError::new(kind_of(error), describe(error))
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let request = reqwest::Request::try_from(request).map_err(|e| {
            TransportError::new(
                TransportErrorKind::InvalidRequest,
                describe(&e.without_url()),
            )
        })?;
        // Judge the host reqwest will connect to, read by the same URL parser; IP literals never
        // reach the resolver.
        if let Err(reason) = self.policy.check_url(request.url()) {
            let refused = Refused {
                reason,
                resolved: false,
            };
            return Err(TransportError::new(
                TransportErrorKind::Blocked,
                refused.to_string(),
            ));
        }
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| transport_error(&e.without_url()))?;
        let mut builder = http::Response::builder()
            .status(response.status())
            .version(response.version());
        if let Some(headers) = builder.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        let mut body = Vec::new();
        while body.len() < self.body_limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.body_limit - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => return Err(transport_error(&e.without_url())),
            }
        }
        builder.body(body).map_err(|e| {
            TransportError::new(TransportErrorKind::Other, format!("invalid response: {e}"))
        })
    }

    fn destination_policy(&self) -> &DestinationPolicy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<std::net::SocketAddr> {
        list.iter()
            .map(|a| a.parse().expect("a socket address"))
            .collect()
    }

    #[test]
    fn resolved_addresses_are_vetted_one_by_one() {
        let strict = DestinationPolicy::default();
        // A name that resolves to a public and a private address: only the public one is used.
        assert_eq!(
            vet(&strict, addrs(&["10.0.0.7:0", "93.184.216.34:0"])),
            Ok(addrs(&["93.184.216.34:0"]))
        );
        // Only refused addresses: the first one's reason.
        assert_eq!(
            vet(&strict, addrs(&["169.254.169.254:0", "127.0.0.1:0"])),
            Err(BlockReason::LinkLocal)
        );
        assert_eq!(
            vet(&strict, addrs(&["[::ffff:127.0.0.1]:0"])),
            Err(BlockReason::Loopback)
        );
        assert_eq!(vet(&strict, Vec::new()), Err(BlockReason::NoAllowedAddress));
        let dev = DestinationPolicy::default().allow_loopback();
        assert_eq!(
            vet(&dev, addrs(&["127.0.0.1:0"])),
            Ok(addrs(&["127.0.0.1:0"]))
        );
    }
}
