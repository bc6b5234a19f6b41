//! The request a bare Webhook node builds, for tests of the node itself: each call wraps the
//! node in a flow with the given id (a flow of the event's Section, or of `section` for
//! `build_request_in`) and asks the flow, the one public way to build a request.
//!
//! Use from a test file: `#[path = "support/node_requests.rs"] mod node_requests;` and
//! `use node_requests::NodeRequests;`.

#![allow(dead_code, unreachable_pub)]

use optout_relay::webhook::{RequestBuildError, WebhookRequest};
use optout_relay::{
    Catalog, Flow, FlowId, ListenNode, OptOutEvent, Profile, Section, SectionId, Timestamp,
    WebhookNode,
};

pub trait NodeRequests {
    /// The node's request in a flow `flow` of the event's Section, without a catalog.
    fn build_request(
        &self,
        flow: &FlowId,
        profile: &Profile,
        event: &OptOutEvent,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError>;

    /// The node's request in a flow `flow` of `section`, with `section` in the catalog.
    fn build_request_in(
        &self,
        section: &Section,
        flow: &FlowId,
        profile: &Profile,
        event: &OptOutEvent,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError>;
}

fn flow(node: &WebhookNode, id: &FlowId, section: &SectionId, event: &OptOutEvent) -> Flow {
    Flow::new(
        id.clone(),
        section.clone(),
        ListenNode::new([event.kind()]).expect("one event kind"),
        node.clone(),
    )
}

impl NodeRequests for WebhookNode {
    fn build_request(
        &self,
        id: &FlowId,
        profile: &Profile,
        event: &OptOutEvent,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError> {
        flow(self, id, event.section(), event).build_request(
            &Catalog::default(),
            profile,
            event,
            now,
        )
    }

    fn build_request_in(
        &self,
        section: &Section,
        id: &FlowId,
        profile: &Profile,
        event: &OptOutEvent,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError> {
        let catalog = Catalog::new([section.clone()]).expect("one Section");
        flow(self, id, section.id(), event).build_request(&catalog, profile, event, now)
    }
}
