//! Diagnostics about flow definitions: the article's traps and configuration mistakes, each with
//! a stable code (like clippy's lint names), a severity, the flow, and how to fix it.
//!
//! Every code is a constant of this module, so that a host matches on
//! `diagnostic.code == lint::ENTRY_LIMIT_LOSES_OPT_OUTS` rather than on a string it typed;
//! [`CODES`] lists them all. The flow lints ([`Flow::lint`](crate::Flow::lint),
//! [`lint_flows`]) and the Webhook node lints
//! ([`WebhookNode::lint`](crate::WebhookNode::lint)) say when each one fires.
//!
//! | constant | code | from |
//! | --- | --- | --- |
//! | [`ENTRY_LIMIT_LOSES_OPT_OUTS`] | `entry_limit_loses_opt_outs` | flow |
//! | [`NARROWING_IGNORED_FOR_ABUSE`] | `narrowing_ignored_for_abuse` | flow |
//! | [`DOUBLE_DELIVERY`] | `double_delivery` | flows together |
//! | [`INACTIVE_FLOW`] | `inactive_flow` | flow |
//! | [`ABUSE_SENDS_SUBSCRIPTION`] | `abuse_sends_subscription` | Webhook node |
//! | [`ABUSE_WITHOUT_SECTION`] | `abuse_without_section` | Webhook node |
//! | [`UNSUBSCRIBE_WITHOUT_SUBSCRIPTION`] | `unsubscribe_without_subscription` | Webhook node |
//! | [`IDENTIFIER_MISMATCH`] | `identifier_mismatch` | Webhook node |
//! | [`NO_IDENTIFIER`] | `no_identifier` | Webhook node |
//! | [`KIND_NOT_SENT`] | `kind_not_sent` | Webhook node |
//! | [`SIGNED_QUERY_ENCODING`] | `signed_query_encoding` | Webhook node |
//! | [`PLAIN_HTTP`] | `plain_http` | Webhook node |
//! | [`CREDENTIAL_OUTSIDE_AUTH`] | `credential_outside_auth` | Webhook node |
//! | [`UNKNOWN_SECTION`] | `unknown_section` | catalog |
//! | [`UNKNOWN_FOLDER`] | `unknown_folder` | catalog |
//! | [`UNKNOWN_SUBSCRIPTION`] | `unknown_subscription` | catalog |
//!
//! The catalog lints ([`lint_catalog`]) check the flows against the Sections, Folders and
//! Subscriptions they name.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::FlowId;

pub use crate::listen::catalog_lint::lint_catalog;
pub use crate::listen::lint::{MAX_LISTED_OVERLAPS, lint_flows};

/// An entry limit other than unlimited on an opt-out listener: a Profile that opts out of one
/// Subscription and later of another is forwarded once, and the later opt-out is lost.
pub const ENTRY_LIMIT_LOSES_OPT_OUTS: &str = "entry_limit_loses_opt_outs";
/// Subscription or Folder narrowing on an Email - Abuse listener, which is section-level.
pub const NARROWING_IGNORED_FOR_ABUSE: &str = "narrowing_ignored_for_abuse";
/// Two active flows can take the same event and send it to the same endpoint.
pub const DOUBLE_DELIVERY: &str = "double_delivery";
/// The flow is inactive and takes nothing.
pub const INACTIVE_FLOW: &str = "inactive_flow";
/// An Email - Abuse flow sends a Subscription or Folder id, which a section-level opt-out has
/// none of.
pub const ABUSE_SENDS_SUBSCRIPTION: &str = "abuse_sends_subscription";
/// An Email - Abuse flow sends no `section_id`.
pub const ABUSE_WITHOUT_SECTION: &str = "abuse_without_section";
/// An Unsubscribe flow sends no `subscription_id`.
pub const UNSUBSCRIBE_WITHOUT_SUBSCRIPTION: &str = "unsubscribe_without_subscription";
/// An SMS flow identifies the Profile by Email only, or an email flow by Mobile only.
pub const IDENTIFIER_MISMATCH: &str = "identifier_mismatch";
/// Nothing the flow sends identifies the Profile.
pub const NO_IDENTIFIER: &str = "no_identifier";
/// A flow of several event kinds sends nothing that tells them apart.
pub const KIND_NOT_SENT: &str = "kind_not_sent";
/// A signing flow sends its parameters in the query string, outside what the signature covers.
pub const SIGNED_QUERY_ENCODING: &str = "signed_query_encoding";
/// The endpoint is plain `http://` to a host other than the local machine.
pub const PLAIN_HTTP: &str = "plain_http";
/// A static query parameter or header whose name looks like a credential: it is stored with
/// every delivery, where `auth` never is.
pub const CREDENTIAL_OUTSIDE_AUTH: &str = "credential_outside_auth";
/// The catalog holds no Section with the flow's id.
pub const UNKNOWN_SECTION: &str = "unknown_section";
/// The listen node narrows by a Folder its Section does not hold: the flow could never match,
/// and the [`Router`](crate::Router) refuses the flows.
pub const UNKNOWN_FOLDER: &str = "unknown_folder";
/// The listen node selects a Subscription its Section does not hold.
pub const UNKNOWN_SUBSCRIPTION: &str = "unknown_subscription";

/// Every lint code: flow lints first, then the Webhook node's in the order it reports them, then
/// the catalog's.
pub const CODES: [&str; 16] = [
    ENTRY_LIMIT_LOSES_OPT_OUTS,
    NARROWING_IGNORED_FOR_ABUSE,
    DOUBLE_DELIVERY,
    INACTIVE_FLOW,
    ABUSE_SENDS_SUBSCRIPTION,
    ABUSE_WITHOUT_SECTION,
    UNSUBSCRIBE_WITHOUT_SUBSCRIPTION,
    IDENTIFIER_MISMATCH,
    NO_IDENTIFIER,
    KIND_NOT_SENT,
    SIGNED_QUERY_ENCODING,
    PLAIN_HTTP,
    CREDENTIAL_OUTSIDE_AUTH,
    UNKNOWN_SECTION,
    UNKNOWN_FOLDER,
    UNKNOWN_SUBSCRIPTION,
];

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing is lost.
    Note,
    /// Likely a mistake: opt-outs may be lost, duplicated or exposed.
    Warning,
    /// The flow cannot work as configured.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// One finding about a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Diagnostic {
    /// A stable, machine-readable code such as `entry_limit_loses_opt_outs`: one of the
    /// constants of [`crate::lint`] (all listed in [`CODES`]).
    pub code: &'static str,
    /// How serious it is.
    pub severity: Severity,
    /// The flow it is about.
    pub flow: FlowId,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] flow `{}`: {}",
            self.severity, self.code, self.flow, self.message
        )
    }
}
