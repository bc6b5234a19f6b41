//! The Webhook node: its configuration, checked, and what every request clones from it.

use url::Url;

use crate::webhook::auth::{Auth, AuthHeader};
use crate::webhook::endpoint::{check_static_query, validate_url};
use crate::webhook::error::WebhookConfigError;
use crate::webhook::header::Header;
use crate::webhook::method::{WebhookEncoding, WebhookMethod};
use crate::webhook::params::Param;
use crate::webhook::sign::SigningSecret;

/// The Webhook node of a flow: where and how the opt-out is sent.
///
/// Build one with [`WebhookNode::builder`] or read it from JSON (it is validated either way);
/// turn a Profile and an event into the exact request with [`Flow::build_request`](crate::Flow::build_request); check
/// it with [`WebhookNode::lint`]. The [module docs](crate::webhook) give the JSON shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookNode {
    pub(crate) method: WebhookMethod,
    pub(crate) url: Url,
    pub(crate) params: std::sync::Arc<[Param]>,
    pub(crate) headers: Vec<Header>,
    pub(crate) encoding: WebhookEncoding,
    pub(crate) auth: Auth,
    pub(crate) signing: Vec<SigningSecret>,
    /// The static headers and the credentials, parsed once for every request built.
    pub(crate) prepared: Prepared,
}

/// Header names and values checked once, when the node is built, and cloned into each request
/// (a clone shares the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// The static headers, names lower-cased, in order.
    pub(crate) headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The credentials header, its value marked sensitive, and the value masked previews show.
    pub(crate) auth: Option<AuthHeader>,
}

impl WebhookNode {
    /// A node sending with `method` to `url`, no parameters, `query` encoding, no auth, not
    /// signed. Add the rest with [`WebhookNode::builder`].
    ///
    /// # Errors
    ///
    /// The URL errors of [`WebhookConfigError`] (scheme, credentials, fragment, length).
    pub fn new(method: WebhookMethod, url: Url) -> Result<Self, WebhookConfigError> {
        validate_url(&url)?;
        Ok(Self {
            method,
            url,
            params: std::sync::Arc::from([]),
            headers: Vec::new(),
            encoding: WebhookEncoding::Query,
            auth: Auth::None,
            signing: Vec::new(),
            prepared: Prepared {
                headers: Vec::new(),
                auth: None,
            },
        })
    }

    /// The same node sending to another endpoint (a staging receiver, a local test server),
    /// with everything else unchanged.
    ///
    /// # Errors
    ///
    /// The URL errors of [`WebhookConfigError`], as for [`WebhookNode::new`], and
    /// [`WebhookConfigError::ParamConflictsWithStaticQuery`] when the new URL has a static query
    /// parameter named like one of the node's parameters.
    pub fn with_url(&self, url: Url) -> Result<Self, WebhookConfigError> {
        validate_url(&url)?;
        check_static_query(&url, &self.params)?;
        Ok(Self {
            url,
            ..self.clone()
        })
    }

    /// The HTTP method.
    pub fn method(&self) -> WebhookMethod {
        self.method
    }

    /// The endpoint URL, with its static query parameters.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The Profile-data parameters, in the order they are sent.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The static headers, in the order they are sent.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Where the parameters go.
    pub fn encoding(&self) -> WebhookEncoding {
        self.encoding
    }

    /// How the request authenticates.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Whether requests carry a Standard Webhooks signature.
    pub fn is_signed(&self) -> bool {
        !self.signing.is_empty()
    }

    /// How many signing secrets sign each request (more than one during key rotation).
    pub fn signing_secret_count(&self) -> usize {
        self.signing.len()
    }
}
