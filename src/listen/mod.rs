//! The Listen side of a flow: which opt-outs enter which flow.
//!
//! - [`ListenNode`]: the event kinds a flow takes, optional narrowing by Subscriptions, Folders
//!   and Activities, and the origins it accepts.
//! - [`Flow`] and [`FlowSettings`]: a Listen node and a Webhook node in one Section, with an
//!   [`EntryLimit`] counted within an [`EntryWindow`]; [`FlowFile`] reads and writes flows as JSON.
//! - [`EntryLedger`]: entry bookkeeping behind one method, with [`InMemoryLedger`].
//! - [`Router`]: built once from many flows, routes each event to the flows it enters, with why,
//!   and [`explain`](Router::explain)s a rejection.
//! - [`lint_flows`]: the article's traps as diagnostics.

mod flow;
mod ledger;
pub mod lint;
mod node;
mod read;
mod router;
mod window;

pub use flow::{EntryLimit, FLOW_FILE_VERSION, Flow, FlowFile, FlowSettings};
pub use ledger::{EntryDecision, EntryLedger, EntryRequest, InMemoryLedger};
pub use lint::lint_flows;
pub use node::{ListenNode, ListenNodeBuilder};
pub use router::{
    ActivityMatch, Explanation, Match, Refusal, Rejection, Router, Routing, SubscriptionMatch, Why,
};
pub use window::{EntryWindow, WindowUnit};
