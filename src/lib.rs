//! # optout-relay
//!
//! Relay every opt-out (unsubscribe, spam complaint, SMS STOP) from a marketing platform to the
//! external systems that must honour it, in real time, with nothing lost.
//!
//! The crate models what a marketing-automation platform's "Listen node -> Webhook node" flow
//! does, as a library a host embeds:
//!
//! - a pure domain model ([`Section`], [`Folder`], [`Subscription`], [`Profile`],
//!   [`OptOutEvent`]) with the exact consent effect of each opt-out ([`Profile::apply`]);
//! - a Listen-node matcher: [`Flow`]s with a [`ListenNode`] and an [`EntryLimit`], an indexed
//!   [`Router`] whose cost does not grow with the number of flows that cannot match, an
//!   [`EntryLedger`] that never lets a re-delivered copy of an event enter twice, and
//!   [`lint_flows`] for the platform's traps;
//! - the Webhook node ([`WebhookNode`]) and a pure request builder
//!   ([`WebhookNode::build_request`]) that turns a Profile and an event into the exact
//!   `http::Request<Vec<u8>>`: query (byte-compatible with the platform), form or JSON encoding,
//!   a stable `webhook-id`, optional Standard Webhooks signatures (feature `signing`, on by
//!   default), masked dry-run previews and lints ([`webhook`]);
//! - the receiving side ([`receive`]): Standard Webhooks verification with key rotation and a
//!   timestamp tolerance (`Verifier`, feature `signing`), and a parser that turns an incoming
//!   request into a typed [`OptOutNotice`] from the same Webhook node the sender used
//!   ([`NoticeParser`]);
//! - delivery: the [`HttpClient`] trait hosts plug their transport into ([`client_fn`],
//!   [`RecordingClient`] for tests, `ReqwestClient` with feature `reqwest`), a pure retry
//!   planner ([`RetryPolicy`], [`Delivery::record`]) whose state is plain serde data, and a
//!   [`DestinationPolicy`] (SSRF guard);
//! - durability: the pure [`relay`] core ([`relay::plan`] builds every request before anything
//!   is recorded, [`relay::prepare_attempt`] signs and vets each attempt), a [`DeliveryStore`]
//!   that admits entries and deliveries in one transaction and leases work with fencing tokens
//!   (`SqliteStore`, the default, feature `sqlite`; `PostgresStore` for many processes, feature
//!   `postgres`; [`VolatileStore`] for tests), and an async `Worker` (feature `tokio`) whose
//!   `submit` returns only once the store has committed.
//!
//! Everything left of the transport is pure: no clock, no randomness, no network; time and
//! random numbers are passed in, so every decision is testable to the millisecond. The worker
//! and the reqwest transport are the thin impure shell around it.
//!
//! ## The three opt-outs and what they revoke
//!
//! | event | revokes |
//! | --- | --- |
//! | Email - Unsubscribe | email consent for the one Subscription the email was sent to |
//! | SMS - Unsubscribe | SMS consent for the one Subscription the SMS was sent to |
//! | Email - Abuse | email consent for every Subscription of the Section, recorded once as a section-level opt-out; SMS consent stays |
//!
//! ## Example
//!
//! ```
//! use optout_relay::*;
//!
//! let (weekly, offers) = (SubscriptionId::new("123456")?, SubscriptionId::new("654321")?);
//! let section = Section::new(
//!     SectionId::new("sec-1")?,
//!     [Folder::new(FolderId::new("news")?, [weekly.clone(), offers.clone()])],
//! )?;
//! let mut profile = Profile::new(ProfileId::new("p-1")?)
//!     .with_email(Email::new("a+b@example.com")?)
//!     .with_consent(weekly.clone(), Channel::Email)
//!     .with_consent(offers.clone(), Channel::Email)
//!     .with_consent(weekly.clone(), Channel::Sms);
//!
//! // A spam report opts the Profile out of email for the whole Section, once.
//! let abuse: OptOutEvent = serde_json::from_str(r#"{
//!     "id": "evt-2", "profile": "p-1", "section": "sec-1", "kind": "email_abuse",
//!     "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"
//! }"#)?;
//! let effect = profile.apply(&abuse, &section)?;
//! assert_eq!(effect.scope, OptOutScope::Section { section: SectionId::new("sec-1")? });
//! assert_eq!(effect.revoked.len(), 2);
//! assert!(!profile.is_opted_in(&offers, Channel::Email));
//! assert!(profile.is_opted_in(&weekly, Channel::Sms)); // SMS consent is untouched
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod delivery;
pub mod error;
pub mod lint;
pub mod listen;
pub mod model;
pub mod receive;
pub mod relay;
pub mod store;
pub mod transport;
pub mod webhook;

pub use delivery::{
    Attempt, AttemptOutcome, DEFAULT_SCHEDULE, DeadLetterReason, Delivery, DeliveryError,
    DeliveryState, PolicyError, RetryAfterError, RetryPolicy, RetryPolicyBuilder, StatusClass,
    Step, parse_retry_after,
};
#[cfg(feature = "tokio")]
pub use delivery::{Outcome, Outcomes, Stopped, Stopper, SubmitError, Worker, WorkerBuilder};
pub use error::{
    ApplyError, AttributeError, CatalogError, EmailProblem, EventError, FlowFileError,
    FlowFileProblem, IdError, IdProblem, ListenError, MobileProblem, NoticeError, ProfileError,
    RequestBuildError, RouterError, VerifyError, WebhookConfigError,
};
pub use lint::{Diagnostic, Severity};
pub use listen::{
    ActivityMatch, EntryDecision, EntryLedger, EntryLimit, EntryRequest, EntryWindow, Explanation,
    FLOW_FILE_VERSION, Flow, FlowFile, FlowSettings, InMemoryLedger, ListenNode, ListenNodeBuilder,
    Match, Refusal, Rejection, Router, Routing, SubscriptionMatch, Why, WindowUnit, lint_flows,
};
pub use model::*;
pub use receive::{NoticeParser, NoticeParserBuilder, NoticeScope, OptOutNotice};
#[cfg(feature = "signing")]
pub use receive::{VerifiedWebhook, Verifier};
pub use relay::{FlowEntry, FlowResult, Plan, Submitted};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{DeliveryStore, StoreError, StoreErrorKind, VolatileStore};
#[cfg(feature = "reqwest")]
pub use transport::ReqwestClient;
pub use transport::{
    BlockReason, Cidr, CidrError, ClientFn, DestinationPolicy, HttpClient, RecordingClient,
    ScriptedAnswer, TransportError, TransportErrorKind, client_fn,
};
pub use webhook::{
    Auth, Header, Param, ParamSource, Preview, Secret, SigningSecret, WebhookEncoding, WebhookId,
    WebhookMethod, WebhookNode, WebhookNodeBuilder, WebhookRequest,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use http;
pub use jiff;
pub use jiff::Timestamp;
pub use url;
