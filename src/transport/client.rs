//! The HTTP-client trait and a closure adapter.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::transport::destination::DestinationPolicy;
use crate::transport::error::TransportError;

/// An HTTP client: sends one request and returns the response, whatever its status.
///
/// Implement it over the HTTP library the host already uses. `&self`, `Send + Sync`, so one
/// client serves many concurrent deliveries; the [`Worker`](crate::Worker) takes it by value
/// or as an `Arc` (an `Arc` of a client is a client).
///
/// ```
/// use optout_relay::{HttpClient, TransportError};
/// use optout_relay::http::{Request, Response};
///
/// struct AlwaysAccepted;
///
/// #[async_trait::async_trait]
/// impl HttpClient for AlwaysAccepted {
///     async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
///         assert_eq!(request.method(), "POST");
///         Ok(Response::builder().status(204).body(Vec::new()).expect("a valid response"))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let request = Request::post("https://crm.example.com/optout").body(Vec::new())?;
/// assert_eq!(AlwaysAccepted.send(request).await?.status(), 204);
/// // The strict destination policy unless the client says otherwise.
/// assert!(AlwaysAccepted.destination_policy().check_host("127.0.0.1").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
        &crate::transport::destination::STRICT
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
