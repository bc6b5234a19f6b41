//! Test doubles for hosts' own tests (feature `test-util`): [`RecordingClient`], an
//! [`HttpClient`] that records every request and answers from a script.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::transport::{DestinationPolicy, HttpClient, TransportError, TransportErrorKind};

/// One scripted answer of a [`RecordingClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptedAnswer {
    /// Answer with this status, headers and body.
    Response {
        /// The status code.
        status: u16,
        /// Response headers, in order.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// Fail with this transport error.
    Error(TransportError),
}

impl ScriptedAnswer {
    /// A response with `status` and an empty body.
    pub fn status(status: u16) -> Self {
        Self::Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response with `status` and a `Retry-After` header.
    pub fn retry_after(status: u16, value: impl Into<String>) -> Self {
        Self::Response {
            status,
            headers: vec![("retry-after".into(), value.into())],
            body: Vec::new(),
        }
    }

    /// A transport error of `kind`.
    pub fn error(kind: TransportErrorKind) -> Self {
        Self::Error(TransportError::new(kind, format!("scripted {kind} error")))
    }

    fn answer(&self) -> Result<http::Response<Vec<u8>>, TransportError> {
        match self {
            Self::Error(error) => Err(error.clone()),
            Self::Response {
                status,
                headers,
                body,
            } => {
                let mut builder = http::Response::builder().status(*status);
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                builder.body(body.clone()).map_err(|e| {
                    TransportError::new(
                        TransportErrorKind::Other,
                        format!("invalid scripted response: {e}"),
                    )
                })
            }
        }
    }
}

#[derive(Default)]
struct Recorded {
    script: VecDeque<ScriptedAnswer>,
    requests: Vec<http::Request<Vec<u8>>>,
}

/// An [`HttpClient`] for tests: records every request and answers from a script, in order; once
/// the script is used up it answers with the fallback (by default `200 OK`, empty body).
///
/// Clones share the same record and script.
///
/// ```
/// use optout_relay::HttpClient;
/// use optout_relay::testing::{RecordingClient, ScriptedAnswer};
/// use optout_relay::http::Request;
///
/// # futures_executor_block_on(async {
/// let client = RecordingClient::new().then(ScriptedAnswer::status(503));
/// let request = || Request::post("https://example.com/").body(Vec::new()).unwrap();
/// assert_eq!(client.send(request()).await.unwrap().status(), 503);
/// assert_eq!(client.send(request()).await.unwrap().status(), 200);
/// assert_eq!(client.requests().len(), 2);
/// # });
/// # fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
///
/// `Debug` shows how many requests were recorded and answers remain scripted, never the
/// requests themselves (they hold personal data and credentials): use
/// [`RecordingClient::requests`].
#[derive(Clone)]
pub struct RecordingClient {
    inner: Arc<Mutex<Recorded>>,
    fallback: ScriptedAnswer,
    policy: DestinationPolicy,
}

impl fmt::Debug for RecordingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recorded = self.lock();
        f.debug_struct("RecordingClient")
            .field("requests", &recorded.requests.len())
            .field("scripted", &recorded.script.len())
            .field("fallback", &self.fallback)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Default for RecordingClient {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingClient {
    /// A client that answers `200 OK` to everything.
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            fallback: ScriptedAnswer::status(200),
            policy: DestinationPolicy::default(),
        }
    }

    /// The destination policy this client reports (default: the strict one); see
    /// [`HttpClient::destination_policy`].
    #[must_use]
    pub fn with_destination_policy(mut self, policy: DestinationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Adds `answer` to the end of the script.
    #[must_use]
    pub fn then(self, answer: ScriptedAnswer) -> Self {
        self.lock().script.push_back(answer);
        self
    }

    /// Sets the answer given once the script is used up.
    #[must_use]
    pub fn otherwise(mut self, answer: ScriptedAnswer) -> Self {
        self.fallback = answer;
        self
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<http::Request<Vec<u8>>> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl HttpClient for RecordingClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let answer = {
            let mut recorded = self.lock();
            recorded.requests.push(request);
            recorded.script.pop_front()
        };
        answer.as_ref().unwrap_or(&self.fallback).answer()
    }

    fn destination_policy(&self) -> &DestinationPolicy {
        &self.policy
    }
}
