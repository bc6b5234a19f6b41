//! The Listen side of a flow: which opt-outs enter which flow.
//!
//! - [`ListenNode`]: the event kinds a flow takes, optional narrowing by Subscriptions, Folders
//!   and Activities, and the origins it accepts.
//! - [`Flow`] and [`FlowSettings`]: a Listen node and a Webhook node in one Section, with an
//!   [`EntryLimit`] counted within an [`EntryWindow`]; [`FlowFile`](crate::FlowFile) reads and writes flows as JSON.
//! - [`EntryLedger`]: entry bookkeeping behind one method, with [`InMemoryLedger`].
//! - [`Router`]: built once from many flows, routes each event to the flows it enters, with why,
//!   and [`explain`](Router::explain)s a rejection.
//! - [`lint_flows`](crate::lint::lint_flows): the article's traps as diagnostics.

pub(crate) mod catalog_lint;
pub(crate) mod entry;
pub(crate) mod error;
pub(crate) mod flow;
mod ledger;
pub(crate) mod lint;
pub(crate) mod node;
mod read;
mod request;
pub(crate) mod router;
mod window;

pub use entry::EntryDecision;
pub use error::{FlowFileError, FlowFileProblem, FoundKind, ListenError, RouterError};
pub use flow::{DeliveryOrder, FLOW_FILE_VERSION, FlowSettings};
pub use ledger::{EntryLedger, EntryRequest, InMemoryLedger};
pub use node::ListenNodeBuilder;
pub use read::read_json;
pub use router::{Match, Refusal, Routing};
pub use window::{EntryWindow, WindowUnit};

// Crate-internal paths of the items the crate root exports.
pub(crate) use flow::{EntryLimit, Flow};
pub(crate) use node::ListenNode;
pub(crate) use router::Router;
