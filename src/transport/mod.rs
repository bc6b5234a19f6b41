//! The HTTP-client trait the host plugs its transport into and a closure adapter (a recording,
//! scripted client for tests is in `testing`, feature `test-util`).
//!
//! The crate's currency is `http::Request<Vec<u8>>` in and `http::Response<Vec<u8>>` out. A
//! response with any status (including 4xx and 5xx) is a response, not an error: the retry policy
//! decides what it means. A [`TransportError`] is for when no response arrived.

pub mod destination;
pub use destination::{
    BlockReason, Cidr, CidrError, DestinationPolicy, IPV4_SPECIAL_PURPOSE, IPV6_SPECIAL_PURPOSE,
    SpecialPurpose, Treatment,
};

#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "reqwest")]
pub use self::reqwest::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT, ReqwestClient, ReqwestClientBuilder};

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What failed when no response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made (refused, reset, unreachable). Retried.
    Connect,
    /// No complete response within the time allowed. Retried.
    Timeout,
    /// The host name could not be resolved. Retried (DNS failures are often temporary).
    Dns,
    /// The TLS handshake failed. Retried (the receiver may be renewing its certificate).
    Tls,
    /// The response body could not be read (for example the connection closed mid-response).
    /// Retried.
    Body,
    /// The destination is not allowed by the host's destination policy. Never retried.
    Blocked,
    /// The request itself cannot be sent (for example an invalid URL for this transport). Never
    /// retried.
    InvalidRequest,
    /// Anything else. Retried.
    Other,
}

impl TransportErrorKind {
    /// Whether an attempt that failed this way is worth retrying.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Blocked | Self::InvalidRequest)
    }

    /// The wire name, such as `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Body => "body",
            Self::Blocked => "blocked",
            Self::InvalidRequest => "invalid_request",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// No response arrived: what failed, and a message for people.
///
/// The message must not hold personal data: adapters describe the failure (such as "connection
/// refused"), never the request's URL, which may carry an email address in its query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind} error: {message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

impl TransportError {
    /// A transport error of `kind`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What failed.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the attempt is worth retrying.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// An HTTP client: sends one request and returns the response, whatever its status.
///
/// Implement it over the HTTP library the host already uses. `&self`, `Send + Sync`, so one
/// client serves many concurrent deliveries; store it as `Arc<dyn HttpClient>`.
///
/// ```
/// use optout_relay::{HttpClient, TransportError};
/// use optout_relay::http::{Request, Response};
///
/// struct AlwaysAccepted;
///
/// #[async_trait::async_trait]
/// impl HttpClient for AlwaysAccepted {
///     async fn send(&self, _request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
///         Ok(Response::builder().status(204).body(Vec::new()).expect("a valid response"))
///     }
/// }
/// ```
#[async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends `request` and returns the response, or what failed when none arrived.
    ///
    /// Implementations must not follow redirects (a 3xx is returned as a response) and should
    /// bound the time one attempt takes.
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;

    /// The destination policy this client enforces: the one owner of the SSRF guard.
    ///
    /// The worker (and [`prepare_attempt`](crate::relay::prepare_attempt) when the host passes
    /// it this policy) vets every request's host with it before calling [`send`](Self::send),
    /// so a refused literal or `localhost` never reaches the client. A client that resolves host
    /// names must vet what they resolve to with the same policy (as the reqwest transport,
    /// `ReqwestClient`, does). The default is the strict
    /// [`DestinationPolicy::default`]; a client configured otherwise returns its own.
    fn destination_policy(&self) -> &DestinationPolicy {
        &destination::STRICT
    }
}

#[async_trait]
impl<C: HttpClient + ?Sized> HttpClient for Arc<C> {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        (**self).send(request).await
    }

    fn destination_policy(&self) -> &DestinationPolicy {
        (**self).destination_policy()
    }
}

#[async_trait]
impl<C: HttpClient + ?Sized> HttpClient for &C {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        (**self).send(request).await
    }

    fn destination_policy(&self) -> &DestinationPolicy {
        (**self).destination_policy()
    }
}

/// An [`HttpClient`] made from a closure; see [`client_fn`].
#[derive(Clone)]
pub struct ClientFn<F> {
    f: F,
    policy: DestinationPolicy,
}

impl<F> ClientFn<F> {
    /// The destination policy this client reports (default: the strict one); see
    /// [`HttpClient::destination_policy`].
    #[must_use]
    pub fn with_destination_policy(mut self, policy: DestinationPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl<F> fmt::Debug for ClientFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFn").finish_non_exhaustive()
    }
}

/// Makes an [`HttpClient`] from an async closure.
///
/// ```
/// use optout_relay::{client_fn, HttpClient};
/// use optout_relay::http::{Request, Response};
///
/// let client = client_fn(|request: Request<Vec<u8>>| async move {
///     assert_eq!(request.method(), "POST");
///     Ok(Response::builder().status(200).body(b"ok".to_vec()).expect("a valid response"))
/// });
/// # let _: &dyn HttpClient = &client;
/// ```
pub fn client_fn<F, Fut>(f: F) -> ClientFn<F>
where
    F: Fn(http::Request<Vec<u8>>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send,
{
    ClientFn {
        f,
        policy: DestinationPolicy::default(),
    }
}

#[async_trait]
impl<F, Fut> HttpClient for ClientFn<F>
where
    F: Fn(http::Request<Vec<u8>>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send,
{
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        (self.f)(request).await
    }

    fn destination_policy(&self) -> &DestinationPolicy {
        &self.policy
    }
}
