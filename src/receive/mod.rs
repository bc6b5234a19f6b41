//! The receiving side: verify and parse an incoming opt-out webhook into typed data, with the
//! same definitions the sender uses.
//!
//! The external system that gets the webhooks needs two things, both pure (no clock, no I/O):
//!
//! - [`Verifier`] (feature `signing`, on by default): Standard Webhooks verification of
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature` against one or more secrets (key
//!   rotation), with a timestamp tolerance (5 minutes either way by default) and `now` passed
//!   in. Errors: [`VerifyError`](crate::VerifyError), which never says which secret came close.
//! - [`NoticeParser`]: turns an `http::Request` (query, form, JSON or JSON envelope) into an
//!   [`OptOutNotice`]: the kind, the scope (one Subscription, or the whole Section for a spam
//!   complaint), the identifying values, ids and time, and the `webhook-id`. Built from the
//!   sender's own Webhook node ([`NoticeParser::from_node`], [`NoticeParser::from_flow`]), so
//!   that one flow file describes both ends, or from a mapping for another sender
//!   ([`NoticeParser::builder`]), such as the platform's own query-string webhook. Errors:
//!   [`NoticeError`](crate::NoticeError), naming the parameter and never repeating its value.
//!
//! A receiver then: verifies (when the flow signs), parses, de-duplicates on the `webhook-id`,
//! applies the opt-out to its own consent store (an Email - Abuse opts out of email for every
//! Subscription of the Section) and answers `2xx` only once the opt-out is stored: the sender
//! retries anything else. `examples/receiver.rs` is such a system.
//!
//! With the `query` encoding the parameters travel in the URL, which a signature does not
//! cover: query parameters are unauthenticated even when the request verifies.
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
//! let sent = node.build_request(&FlowId::new("crm")?, &profile, &event, "2026-11-26T09:30:05Z".parse()?)?;
//!
//! // The receiving end.
//! let notice = NoticeParser::from_node(&node).parse(sent.request())?;
//! assert_eq!(notice.kind, EventKind::EmailAbuse);
//! assert_eq!(notice.scope, NoticeScope::Section(SectionId::new("sec-1")?));
//! assert_eq!(notice.email.as_ref().map(Email::as_str), Some("a+b@example.com"));
//! assert_eq!(notice.occurred_at, Some("2026-11-26T09:30:00Z".parse()?));
//! assert_eq!(notice.webhook_id.as_deref(), Some(sent.webhook_id().as_str()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod parse;
#[cfg(feature = "signing")]
mod verify;

pub use parse::{NoticeParser, NoticeParserBuilder, NoticeScope, OptOutNotice};
#[cfg(feature = "signing")]
pub use verify::{
    DEFAULT_TOLERANCE, MAX_SIGNATURES, MAX_WEBHOOK_ID_LEN, VerifiedWebhook, Verifier,
};
