//! Builds a Webhook node step by step.

use crate::webhook::auth::Auth;
use crate::webhook::error::WebhookConfigError;
use crate::webhook::header::Header;
use crate::webhook::method::{WebhookEncoding, WebhookMethod};
use crate::webhook::node::WebhookNode;
use crate::webhook::params::Param;
use crate::webhook::secret::Secret;
use crate::webhook::source::ParamSource;
use crate::webhook::spec::NodeSpec;

impl WebhookNode {
    /// A builder for a node sending to `url` (parsed and checked at
    /// [`WebhookNodeBuilder::build`]), by POST with `query` encoding unless told otherwise.
    ///
    /// The text is taken exactly as written: a control character or whitespace anywhere in it
    /// (a CR or LF, a tab, a leading or trailing space) is an error, never silently dropped.
    ///
    /// ```
    /// use optout_relay::webhook::ParamSource;
    /// use optout_relay::webhook::WebhookEncoding;
    /// use optout_relay::webhook::WebhookMethod;
    /// use optout_relay::WebhookNode;
    ///
    /// let node = WebhookNode::builder("https://crm.example.com/optout?source=platform")
    ///     .method(WebhookMethod::Post)
    ///     .param("email", ParamSource::Email)
    ///     .param("subscription", ParamSource::SubscriptionId)
    ///     .header("x-tenant", "acme")
    ///     .encoding(WebhookEncoding::Json)
    ///     .build()?;
    /// assert_eq!(node.url().as_str(), "https://crm.example.com/optout?source=platform");
    /// # Ok::<(), optout_relay::webhook::WebhookConfigError>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> WebhookNodeBuilder {
        WebhookNodeBuilder {
            spec: NodeSpec {
                method: WebhookMethod::default(),
                url: url.into(),
                encoding: WebhookEncoding::default(),
                params: Vec::new(),
                headers: Vec::new(),
                auth: Auth::None,
                signing_secrets: Vec::new(),
            },
            error: None,
        }
    }
}

/// Builds a [`WebhookNode`] step by step. Like the `http` crate's builders, it keeps the first
/// error and reports it at [`WebhookNodeBuilder::build`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct WebhookNodeBuilder {
    spec: NodeSpec,
    error: Option<WebhookConfigError>,
}

impl WebhookNodeBuilder {
    /// Sets the HTTP method (POST by default).
    pub fn method(mut self, method: WebhookMethod) -> Self {
        self.spec.method = method;
        self
    }

    /// Adds a required parameter, sent after the ones added before.
    pub fn param(self, name: impl Into<String>, source: ParamSource) -> Self {
        self.push_param(Param::new(name, source))
    }

    /// Adds an optional parameter: left out when its source has no value.
    pub fn optional_param(self, name: impl Into<String>, source: ParamSource) -> Self {
        self.push_param(Param::optional(name, source))
    }

    fn push_param(mut self, param: Result<Param, WebhookConfigError>) -> Self {
        match param {
            Ok(param) => self.spec.params.push(param),
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
        self
    }

    /// Adds a static header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.headers.push(Header::new(name, value));
        self
    }

    /// Sets where the parameters go (`query` by default).
    pub fn encoding(mut self, encoding: WebhookEncoding) -> Self {
        self.spec.encoding = encoding;
        self
    }

    /// Sets the authentication.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.spec.auth = auth;
        self
    }

    /// Authenticates with `authorization: Bearer <token>`.
    pub fn bearer(self, token: impl Into<Secret>) -> Self {
        self.auth(Auth::Bearer {
            token: token.into(),
        })
    }

    /// Authenticates with `authorization: Basic ...`.
    pub fn basic(self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.auth(Auth::Basic {
            username: username.into(),
            password: password.into(),
        })
    }

    /// Adds a Standard Webhooks signing secret (`whsec_` + base64 of 24 to 64 bytes). Several
    /// secrets (during key rotation) give several signatures.
    pub fn sign_with(mut self, secret: impl Into<Secret>) -> Self {
        self.spec.signing_secrets.push(secret.into());
        self
    }

    /// Validates everything and builds the node.
    ///
    /// # Errors
    ///
    /// The first [`WebhookConfigError`] met: the URL, a parameter, a header, the auth, a
    /// signing secret, or a body encoding with GET or DELETE.
    pub fn build(self) -> Result<WebhookNode, WebhookConfigError> {
        match self.error {
            Some(error) => Err(error),
            None => WebhookNode::try_from(self.spec),
        }
    }
}
