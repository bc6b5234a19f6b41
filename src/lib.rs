//! # optout-relay
//!
//! Relay every opt-out (unsubscribe, spam complaint, SMS STOP) from a marketing platform to the
//! external systems that must honour it, in real time, with nothing lost.
//!
//! A host loads its flows (a Listen node: which events enter; a Webhook node: what is sent where),
//! starts a [`Worker`] over a transport and a delivery store, and submits each opt-out with the
//! Profile it is about. Once [`Worker::submit`] returns, the entry and the request are in the
//! store; the worker sends it, retries by the [`RetryPolicy`], and reports each end on a stream.
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use optout_relay::{Catalog, FlowFile, OptOutEvent, Outcome, Profile, Router, Worker};
//! use optout_relay::{VolatileStore, client_fn, http};
//!
//! // The flows and the Sections they belong to, as JSON files (or built in code).
//! let flows = FlowFile::from_json(r#"{"version": 1, "flows": [{
//!     "id": "crm-unsubscribes", "section": "sec-1",
//!     "listen": {"kinds": ["email_unsubscribe"]},
//!     "webhook": {"method": "POST", "url": "https://crm.example.com/optout", "encoding": "query",
//!                 "params": [{"name": "email", "source": "email"},
//!                            {"name": "subscription", "source": "subscription_id"}]}
//! }]}"#)?;
//! let catalog: Catalog = serde_json::from_str(r#"[{"id": "sec-1", "folders": [
//!     {"id": "news", "subscriptions": [{"id": "123456"}]}]}]"#)?;
//! let router = Router::new(flows.flows, &catalog)?;
//!
//! // The transport: any `HttpClient` (`ReqwestClient` with feature `reqwest`); here a closure.
//! let client = client_fn(|request: http::Request<Vec<u8>>| async move {
//!     assert_eq!(request.uri(), "https://crm.example.com/optout?email=a%2Bb%40example.com&subscription=123456");
//!     Ok(http::Response::new(Vec::new()))
//! });
//! // The store: in memory here; `SqliteStore` (default feature) or `PostgresStore` survive a crash.
//! let (worker, mut outcomes) = Worker::builder(router, client, VolatileStore::new()).start();
//!
//! // An opt-out and its Profile, as the platform sends them.
//! let event: OptOutEvent = serde_json::from_str(r#"{"id": "evt-1", "profile": "p-1",
//!     "section": "sec-1", "kind": "email_unsubscribe", "subscription": "123456",
//!     "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"}"#)?;
//! let profile: Profile = serde_json::from_str(r#"{"id": "p-1", "email": "a+b@example.com"}"#)?;
//!
//! let submitted = worker.submit(&event, &profile).await?; // stored once this returns
//! assert_eq!(submitted.entered().count(), 1);
//! assert!(matches!(outcomes.recv().await, Some(Outcome::Delivered(_))));
//! worker.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What is where
//!
//! The crate root holds what a host needs: the model ([`Profile`], [`OptOutEvent`],
//! [`Section`] and their ids), the flows ([`FlowFile`], [`Flow`], [`ListenNode`],
//! [`WebhookNode`], [`Router`]), the transport ([`HttpClient`], [`client_fn`], `ReqwestClient`
//! with feature `reqwest`), the store ([`DeliveryStore`]; `SqliteStore`, feature `sqlite`, the
//! default; `PostgresStore`, feature `postgres`) and the [`Worker`] (feature `tokio`). The rest
//! is in named modules:
//!
//! - [`model`]: consent effects ([`Profile::apply`]), attributes, limits and the model's errors;
//! - [`listen`]: the Listen node's parts, entry limits and windows, routing results, flow-file
//!   errors; [`explain`]: why an event did or did not enter a flow;
//! - [`webhook`]: the Webhook node's parts (parameters, headers, authentication, signing
//!   secrets), the built [`webhook::WebhookRequest`] and its masked dry-run preview;
//! - [`lint`]: the traps of a flow file, with their codes;
//! - [`delivery`]: the retry policy, a delivery's record and the worker's builder and outcomes;
//! - [`relay`]: the pure core the stores and the worker share (plan, entry decisions, attempts);
//! - [`health`]: endpoint health (state, circuit breaker, per-endpoint limits, held deliveries);
//!   `metrics` (feature `metrics`): the worker's counters, latency histogram and per-endpoint
//!   gauges through the `metrics` crate facade;
//! - [`store`], [`transport`]: the stores' and transports' options, the destination policy;
//! - [`receive`]: the receiving side (verify a Standard Webhooks signature, parse a notice);
//! - `testing` (feature `test-util`): a recording, scripted `HttpClient` for hosts' tests.
//!
//! Operators get a binary besides (feature `cli`: `cargo install --path . --features cli`):
//! `optout-relay lint`, `preview` and `send` check a flow file, show the exact (masked) request a
//! flow makes for an event and send one test request; `status`, `pending`, `dead`, `replay`,
//! `pause`, `resume` and `purge` inspect and repair a SQLite or PostgreSQL delivery store.
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
//! [`Profile::apply`] applies them to a Profile's consent; the README has the example.

#![cfg_attr(docsrs, feature(doc_cfg))]
// Docs built with fewer features keep their links to items behind the missing features as text;
// CI checks every link in the all-features build.
#![cfg_attr(
    not(all(feature = "tokio", feature = "signing")),
    allow(rustdoc::broken_intra_doc_links)
)]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod delivery;
pub mod explain;
mod hash;
pub mod health;
pub mod lint;
pub mod listen;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod model;
pub mod receive;
pub mod relay;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod transport;
pub mod webhook;

// The core a host needs, one path each; everything else is in the modules above.
pub use delivery::policy::RetryPolicy;
pub use delivery::record::Delivery;
#[cfg(feature = "tokio")]
pub use delivery::worker::{Outcome, Worker};
pub use listen::flow::{EntryLimit, Flow, FlowFile};
pub use listen::node::ListenNode;
pub use listen::router::Router;
pub use model::catalog::{Catalog, Folder, Section, Subscription};
pub use model::email::Email;
pub use model::event::OptOutEvent;
pub use model::ids::{EventId, FlowId, FolderId, ProfileId, SectionId, SubscriptionId};
pub use model::kind::{Channel, EventKind, Origin};
pub use model::mobile::Mobile;
pub use model::profile::Profile;
pub use store::delivery_store::DeliveryStore;
#[cfg(feature = "postgres")]
pub use store::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::sqlite::SqliteStore;
pub use store::volatile::VolatileStore;
pub use transport::client::{HttpClient, client_fn};
pub use transport::destination::DestinationPolicy;
pub use transport::error::TransportError;
#[cfg(feature = "reqwest")]
pub use transport::reqwest::ReqwestClient;
pub use webhook::node::WebhookNode;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use http;
pub use jiff;
pub use jiff::Timestamp;
pub use url;
