//! The Webhook node: where and how a flow sends an opt-out, and the pure function that turns
//! (node, flow, Profile, event, now) into the exact [`http::Request<Vec<u8>>`].
//!
//! - [`WebhookNode`]: method, endpoint URL (static query parameters kept), Profile-data
//!   parameters ([`Param`], [`ParamSource`]), static [`Header`]s, [`Auth`], [`WebhookEncoding`]
//!   and Standard Webhooks signing secrets; validated when built ([`WebhookNode::builder`]) and
//!   when read from JSON. Errors: [`WebhookConfigError`].
//! - [`Flow::build_request`](crate::Flow::build_request): pure; no I/O, no clock, no randomness. Returns a
//!   [`WebhookRequest`] (the `http::Request`, its [`WebhookId`], and previews). Errors:
//!   [`RequestBuildError`], which names the parameter and the source
//!   that has no value.
//! - [`WebhookRequest::preview`]: a dry-run `curl` command and summary, masked by default.
//! - [`WebhookNode::lint`]: the mistakes that lose or expose opt-outs (see [Lints](#lints)).
//!
//! # JSON
//!
//! The node's JSON form is the `"webhook"` section of a flow file. Keys are snake_case, unknown
//! keys are rejected, and the node is validated as it is read. Only `url` is required; `method`
//! defaults to `POST` and `encoding` to `query`.
//!
//! ```
//! use optout_relay::WebhookNode;
//!
//! # #[cfg(feature = "signing")] {
//! let node: WebhookNode = serde_json::from_str(r#"{
//!   "method": "POST",
//!   "url": "https://crm.example.com/optout?source=platform",
//!   "encoding": "json_envelope",
//!   "params": [
//!     {"name": "email", "source": "email"},
//!     {"name": "subscription", "source": "subscription_id", "optional": true},
//!     {"name": "section", "source": "section_id"},
//!     {"name": "crm_id", "source": {"attribute": "crm_id"}, "optional": true}
//!   ],
//!   "headers": [{"name": "x-tenant", "value": "acme"}],
//!   "auth": {"bearer": {"token": "s3cr3t-token"}},
//!   "signing_secrets": ["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]
//! }"#)?;
//! assert_eq!(node.params().len(), 4);
//! assert!(!format!("{node:?}").contains("s3cr3t")); // secrets print as [redacted]
//! # }
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! | key | value |
//! | --- | --- |
//! | `method` | `GET`, `POST` (default), `PUT`, `DELETE`, `PATCH` |
//! | `url` | `http` or `https`, at most [`MAX_URL_LEN`] bytes, no credentials, no `#fragment`, no control character or whitespace anywhere (write a space as `%20`); static query parameters are kept byte for byte and in order, and none may share a name with a parameter of `params` |
//! | `encoding` | `query` (default), `form`, `json`, `json_envelope` |
//! | `params` | ordered `{"name", "source", "optional"?}`, at most [`MAX_PARAMS`], names unique, non-empty, at most [`MAX_PARAM_NAME_LEN`] bytes, no control characters; sources in [`ParamSource`] |
//! | `headers` | ordered `{"name", "value"}`, at most [`MAX_HEADERS`], values visible ASCII (no CR or LF), at most [`MAX_HEADER_VALUE_LEN`] bytes; not `host`, `content-length`, `content-type`, `transfer-encoding`, `connection`, `authorization`, `webhook-id`, `webhook-timestamp` or `webhook-signature`; a name that looks like a credential is redacted in masked previews (`credential_outside_auth`) |
//! | `auth` | absent, `"none"`, `{"bearer": {"token"}}`, `{"basic": {"username", "password"}}`, `{"header": {"name", "value"}}` |
//! | `signing_secrets` | at most [`MAX_SIGNING_SECRETS`] `whsec_` + base64 of 24 to 64 bytes; several sign at once during key rotation |
//!
//! Credentials belong in `auth`, never in the URL (`https://user:pass@host` is rejected): `auth`
//! values are redacted in `Debug`, `Display` and masked previews. Secrets do serialize back as
//! plain strings (so that the JSON form round-trips): keep flow files holding secrets private,
//! or fill the secrets in when loading.
//!
//! # Encodings
//!
//! | encoding | parameters go | body | `content-type` |
//! | --- | --- | --- | --- |
//! | `query` | the query string, after the static ones, for every method | empty | none |
//! | `form` | the body | `name=value&...` | `application/x-www-form-urlencoded` |
//! | `json` | the body | `{"name":"value",...}` | `application/json` |
//! | `json_envelope` | the body | `{"type":"opt_out.<kind>","timestamp":"<occurred_at>","data":{...}}` | `application/json` |
//!
//! `query` is the platform's behaviour. Names and values are encoded with
//! [`url::form_urlencoded::byte_serialize`]: the bytes `A`-`Z`, `a`-`z`, `0`-`9`, `*`, `-`, `.`
//! and `_` are kept; a space becomes `+`; every other byte of the UTF-8 value becomes `%XX`
//! (upper-case hex). So `a+b@example.com` is sent as `a%2Bb%40example.com` and any receiver that
//! parses the query the usual way (`application/x-www-form-urlencoded`, where `+` means space)
//! reads `a+b@example.com` back. Pairs are joined with `&` and appended to the endpoint's query
//! (with `?` when it has none, with nothing after a trailing `?` or `&`, otherwise with `&`).
//! The static query is kept exactly as the [`url`] crate parsed it. `form` bodies use the same
//! bytes. JSON keeps the parameters' order; texts are JSON strings, custom attributes that are
//! numbers or booleans stay JSON numbers and booleans; `occurred_at` is RFC 3339.
//!
//! GET and DELETE with a body encoding are a configuration error
//! ([`WebhookConfigError::BodyOnBodylessMethod`]),
//! never silently turned into a query. A parameter whose source has no value for this Profile
//! or event is a [`RequestBuildError::MissingValue`]
//! unless it is `optional`, in which case it is left out (not sent empty).
//!
//! # Headers, in order
//!
//! 1. the static headers, names lower-cased;
//! 2. the credentials of `auth` (`authorization`, or the API-key header);
//! 3. `content-type`, for body encodings;
//! 4. `webhook-id`, always: [`WebhookId`], derived from the flow and the event id, the same on
//!    every retry and re-delivery, so receivers can de-duplicate verified requests (it is
//!    predictable: unsigned, it proves nothing; see
//!    [`receive`](crate::receive#de-duplicating-on-the-webhook-id));
//! 5. with signing secrets: `webhook-timestamp` (`now` in unix seconds) and `webhook-signature`
//!    (`v1,<base64>` per secret, space-separated; see [`SigningSecret::sign`] with the
//!    `signing` feature).
//!
//! `host` and `content-length` are left to the transport, which derives them from the URL and
//! the body.
//!
//! # Signing and the query encoding
//!
//! A Standard Webhooks signature covers `{id}.{timestamp}.{body}`. With `query` encoding the body
//! is empty, so the signature protects the id and the timestamp but none of the parameters:
//! anyone on the path could change `email=` without breaking it. Such a node still works (the
//! platform never signed at all), but the lint `signed_query_encoding` flags it: sign a body
//! encoding (`form`, `json`, `json_envelope`) instead. Without the `signing` feature, a node with
//! signing secrets fails to build
//! ([`WebhookConfigError::SigningUnavailable`])
//! rather than send unsigned requests.
//!
//! # Lints
//!
//! [`WebhookNode::lint`] checks the node against the event kinds its flow listens for, and reports
//! in this order:
//!
//! | code | severity | when |
//! | --- | --- | --- |
//! | `abuse_sends_subscription` | error (warning if the parameter is optional) | the flow takes Email - Abuse and a parameter sends the `subscription_id` or `folder_id`, which a section-level opt-out has none of; it must send the Section. An optional one in a flow that also takes Unsubscribe events is not flagged |
//! | `abuse_without_section` | warning | the flow takes Email - Abuse and no parameter sends `section_id` |
//! | `unsubscribe_without_subscription` | warning | the flow takes an Unsubscribe event and no parameter sends `subscription_id` |
//! | `identifier_mismatch` | warning | an SMS flow identifies the Profile by Email only, or an email flow by Mobile only |
//! | `no_identifier` | error | no parameter sends `email`, `mobile`, `profile_id` or a custom attribute |
//! | `kind_not_sent` | warning | the flow takes several event kinds and nothing tells them apart (no `event_kind` parameter, not `json_envelope`) |
//! | `signed_query_encoding` | warning | the node signs but sends its parameters in the query string, outside what the signature covers |
//! | `plain_http` | warning | the endpoint is `http://` to a host other than `localhost`, `127.0.0.0/8` or `::1` |
//! | `credential_outside_auth` | warning | a static query parameter of the URL or a static header has a name that looks like a credential (`token`, `api_key`, `x-auth-token`, `client_secret`...): it is stored with every delivery; `auth` is never stored. Masked previews redact its value |
//!
//! Each code is a constant of [`crate::lint`] (`lint::ABUSE_SENDS_SUBSCRIPTION`, ...). A body
//! encoding with GET or DELETE is not a lint but a configuration error.

mod auth;
mod base64_encode;
mod build;
mod builder;
mod encode;
mod endpoint;
mod error;
mod header;
mod id;
mod lint;
mod method;
pub(crate) mod node;
mod params;
mod preview;
mod problem;
mod request;
mod secret;
mod sign;
mod source;
mod spec;

pub use auth::{Auth, MAX_BASIC_CREDENTIAL_LEN};
pub use build::MAX_REQUEST_URL_LEN;
pub use builder::WebhookNodeBuilder;
pub use endpoint::MAX_URL_LEN;
pub use error::{RequestBuildError, WebhookConfigError, WebhookIdError};
pub use header::{Header, MAX_HEADER_VALUE_LEN, MAX_HEADERS};
pub use id::{MAX_WEBHOOK_ID_LEN, WebhookId};
pub use method::{WebhookEncoding, WebhookMethod};
// The crate-internal path of the node the crate root exports.
pub(crate) use node::WebhookNode;
pub(crate) use params::check_params;
pub use params::{MAX_PARAM_NAME_LEN, MAX_PARAMS, Param};
pub use preview::Preview;
pub use problem::{
    AuthProblem, HeaderNameProblem, HeaderValueProblem, HttpProblem, MissingValueReason,
    ParamNameProblem, ReservedHeaderHint, SigningSecretProblem, UriProblem, UrlCharacterKind,
};
pub use request::WebhookRequest;
pub use secret::{Secret, looks_like_credential};
pub use sign::{
    MAX_SECRET_BYTES, MAX_SIGNING_SECRETS, MIN_SECRET_BYTES, SECRET_PREFIX, SigningSecret,
};
pub use source::ParamSource;
