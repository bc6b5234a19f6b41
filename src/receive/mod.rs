//! The receiving side: verify and parse an incoming opt-out webhook into typed data, with the
//! same definitions the sender uses.
//!
//! The external system that gets the webhooks needs two things, both pure (no clock, no I/O):
//!
//! - [`Verifier`] (feature `signing`, on by default): Standard Webhooks verification of
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature` against one or more secrets (key
//!   rotation), with a timestamp tolerance (5 minutes either way by default) and `now` passed
//!   in. Errors: [`VerifyError`], which never says which secret came close.
//! - [`NoticeParser`]: turns an `http::Request` (query, form, JSON or JSON envelope) into an
//!   [`OptOutNotice`]: the kind, the scope (one Subscription, or the whole Section for a spam
//!   complaint), the identifying values, ids and time, and the `webhook-id`. Built from the
//!   sender's own Webhook node ([`NoticeParser::from_node`], [`NoticeParser::from_flow`]), so
//!   that one flow file describes both ends, or from a mapping for another sender
//!   ([`NoticeParser::builder`]), such as the platform's own query-string webhook. Errors:
//!   [`NoticeError`], naming the parameter and never repeating its value.
//!
//! A receiver then: verifies (when the flow signs), parses, applies the opt-out to its own
//! consent store (an Email - Abuse opts out of email for every Subscription of the Section) and
//! answers `2xx` only once the opt-out is stored: the sender retries anything else.
//! `examples/receiver/` is such a system.
//!
//! With the `query` encoding the parameters travel in the URL, which a signature does not
//! cover: query parameters are unauthenticated even when the request verifies.
//!
//! # De-duplicating on the `webhook-id`
//!
//! The `webhook-id` is the same on every retry and re-delivery of an event, and it is
//! predictable: derived from the flow id and the event id ([`WebhookId`](crate::webhook::WebhookId)), not
//! secret. It identifies a delivery only once a signature vouches for it:
//!
//! - De-duplicate on it only after the [`Verifier`] has verified the request, and only when the
//!   signature covers the content: a body encoding (`form`, `json`, `json_envelope`). A request
//!   that fails verification is refused, and nothing of it is remembered: it cannot poison the
//!   id.
//! - Never let an unauthenticated id suppress a request: that of an unsigned endpoint, or of the
//!   `query` encoding (whose parameters are in the URL, which no signature covers). Anyone can
//!   send any id, so a forged request sent first would make the genuine delivery look like a
//!   duplicate, and its opt-out would never be stored while the sender counts it delivered.
//!   Apply such a request every time instead: an opt-out applied again changes nothing, so a
//!   re-delivery is harmless. If you keep the ids, an id that arrives with other contents than
//!   before is a conflict: store every version and flag the id.
//!
//! An unsigned endpoint cannot tell a forged opt-out from a genuine one (anyone who can reach it
//! can opt anyone out); what it can promise is that no request, forged or not, keeps a genuine
//! opt-out from being stored.
//!
//! ```
//! use optout_relay::*;
//! use optout_relay::receive::{NoticeParser, NoticeScope};
//!
//! // The sender's node, as in the flow file both ends share.
//! let node: WebhookNode = serde_json::from_str(r#"{
//!   "url": "https://crm.example.com/optout", "encoding": "json_envelope",
//!   "params": [{"name": "email", "source": "email"},
//!              {"name": "section", "source": "section_id"}]
//! }"#)?;
//! let profile = Profile::new(ProfileId::new("p-1")?).with_email(Email::new("a+b@example.com")?);
//! let event = OptOutEvent::email_abuse(
//!     EventId::new("evt-2")?, ProfileId::new("p-1")?, SectionId::new("sec-1")?,
//!     "2026-11-26T09:30:00Z".parse()?,
//! );
//! let listen = ListenNode::new([EventKind::EmailAbuse])?;
//! let flow = Flow::new(FlowId::new("crm")?, SectionId::new("sec-1")?, listen, node);
//! let sent = flow.build_request(&Catalog::default(), &profile, &event, "2026-11-26T09:30:05Z".parse()?)?;
//!
//! // The receiving end.
//! let notice = NoticeParser::from_node(&flow.webhook).parse(sent.request())?;
//! assert_eq!(notice.kind, EventKind::EmailAbuse);
//! assert_eq!(notice.scope, NoticeScope::Section(SectionId::new("sec-1")?));
//! assert_eq!(notice.email.as_ref().map(Email::as_str), Some("a+b@example.com"));
//! assert_eq!(notice.occurred_at, Some("2026-11-26T09:30:00Z".parse()?));
//! assert_eq!(notice.webhook_id.as_deref(), Some(sent.webhook_id().as_str()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod assemble;
mod error;
mod notice;
mod parser;
mod raw;
mod read;
mod slots;
#[cfg(feature = "signing")]
mod verify;
mod visit;

pub use error::{BodyProblem, ConflictWith, HeaderProblem, NoticeError, ValueProblem, VerifyError};
pub use notice::{NoticeScope, OptOutNotice};
pub use parser::{NoticeParser, NoticeParserBuilder};
#[cfg(feature = "signing")]
pub use verify::{DEFAULT_TOLERANCE, MAX_SIGNATURES, VerifiedWebhook, Verifier};
