//! The JSON form of a Webhook node, and the checks that turn it into one.

use serde::{Deserialize, Serialize};

use crate::webhook::auth::Auth;
use crate::webhook::endpoint::{check_static_query, parse_url, validate_url};
use crate::webhook::error::WebhookConfigError;
use crate::webhook::header::{self, Header};
use crate::webhook::method::{WebhookEncoding, WebhookMethod};
use crate::webhook::node::{Prepared, WebhookNode};
use crate::webhook::params::{Param, check_params};
use crate::webhook::secret::Secret;
use crate::webhook::sign::{MAX_SIGNING_SECRETS, SigningSecret};

/// The JSON form of a [`WebhookNode`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) struct NodeSpec {
    #[serde(default)]
    pub(crate) method: WebhookMethod,
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) encoding: WebhookEncoding,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) headers: Vec<Header>,
    #[serde(default, skip_serializing_if = "Auth::is_none")]
    pub(crate) auth: Auth,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) signing_secrets: Vec<Secret>,
}

impl TryFrom<NodeSpec> for WebhookNode {
    type Error = WebhookConfigError;

    fn try_from(spec: NodeSpec) -> Result<Self, Self::Error> {
        let url = parse_url(&spec.url)?;
        validate_url(&url)?;

        check_params(&spec.params)?;
        check_static_query(&url, &spec.params)?;

        let headers = header::prepare(&spec.headers)?;
        let auth = spec.auth.prepare(&spec.headers)?;

        if !spec.method.takes_body() && spec.encoding.has_body() {
            return Err(WebhookConfigError::BodyOnBodylessMethod {
                method: spec.method,
                encoding: spec.encoding,
            });
        }

        if spec.signing_secrets.len() > MAX_SIGNING_SECRETS {
            return Err(WebhookConfigError::TooManySigningSecrets {
                count: spec.signing_secrets.len(),
                max: MAX_SIGNING_SECRETS,
            });
        }
        let signing = spec
            .signing_secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| SigningSecret::for_node(index, secret))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Self {
            method: spec.method,
            url,
            params: spec.params.into(),
            headers: spec.headers,
            encoding: spec.encoding,
            auth: spec.auth,
            signing,
            prepared: Prepared { headers, auth },
        })
    }
}

impl From<WebhookNode> for NodeSpec {
    fn from(node: WebhookNode) -> Self {
        Self {
            method: node.method,
            url: node.url.into(),
            encoding: node.encoding,
            params: node.params.to_vec(),
            headers: node.headers,
            auth: node.auth,
            signing_secrets: node.signing.iter().map(SigningSecret::secret).collect(),
        }
    }
}

impl Serialize for WebhookNode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        NodeSpec::from(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WebhookNode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = NodeSpec::deserialize(deserializer)?;
        Self::try_from(spec).map_err(serde::de::Error::custom)
    }
}
