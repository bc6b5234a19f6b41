//! Lints over flow definitions: the article's traps and configuration mistakes.
//!
//! | code | severity | fires when |
//! | --- | --- | --- |
//! | `entry_limit_loses_opt_outs` | warning | an entry limit other than unlimited: a Profile that opts out of Subscription A and later of B is forwarded once, the second opt-out is lost |
//! | `narrowing_ignored_for_abuse` | warning | a Subscription or Folder narrowing on a listener of Email - Abuse, which is section-level |
//! | `double_delivery` | warning | two active flows can take the same event and send it to the same endpoint |
//! | `inactive_flow` | note | the flow is inactive and takes nothing |
//!
//! The Webhook node adds its own lints (see [`crate::webhook`]).

use std::collections::HashMap;

use crate::lint::{Diagnostic, Severity};
use crate::listen::{EntryLimit, Flow, ListenNode};
use crate::model::EventKind;

/// Lint code: an entry limit other than unlimited on an opt-out listener.
pub const ENTRY_LIMIT_LOSES_OPT_OUTS: &str = "entry_limit_loses_opt_outs";
/// Lint code: Subscription or Folder narrowing on an Email - Abuse listener.
pub const NARROWING_IGNORED_FOR_ABUSE: &str = "narrowing_ignored_for_abuse";
/// Lint code: two active flows send the same event to the same endpoint.
pub const DOUBLE_DELIVERY: &str = "double_delivery";
/// Lint code: an inactive flow.
pub const INACTIVE_FLOW: &str = "inactive_flow";

impl Flow {
    /// The diagnostics about this one flow (every lint but `double_delivery`, which needs the
    /// other flows: see [`lint_flows`]).
    pub fn lint(&self) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        let diagnostic = |code, severity, message: String| Diagnostic {
            code,
            severity,
            flow: self.id.clone(),
            message,
        };
        if !self.active {
            found.push(diagnostic(
                INACTIVE_FLOW,
                Severity::Note,
                "the flow is inactive and takes no opt-out; set \"active\": true or remove it"
                    .into(),
            ));
        }
        if let limit @ EntryLimit::AtMost { .. } = self.settings.entry_limit {
            found.push(diagnostic(
                ENTRY_LIMIT_LOSES_OPT_OUTS,
                Severity::Warning,
                format!(
                    "entry limit is {limit}: a Profile that opts out of one Subscription and later of \
                     another is forwarded only once, and the later opt-out is lost; set \
                     settings.entry_limit to \"unlimited\" (a re-delivered copy of one event never \
                     enters twice anyway)"
                ),
            ));
        }
        let listen = &self.listen;
        if listen.takes_kind(EventKind::EmailAbuse) && listen.narrows_subscriptions() {
            let others = listen.kinds().iter().any(|k| !k.is_section_level());
            let fix = if others {
                "it still narrows the other kinds; move Email - Abuse to a flow of its own to make that plain"
            } else {
                "remove \"subscriptions\" and \"folders\" from the listen node"
            };
            found.push(diagnostic(
                NARROWING_IGNORED_FOR_ABUSE,
                Severity::Warning,
                format!(
                    "Email - Abuse opts the Profile out of the whole Section, so the Subscription/Folder \
                     narrowing does not apply to it and every abuse report of the Section enters; {fix}"
                ),
            ));
        }
        found.extend(self.webhook.lint(
            &self.id,
            &listen.kinds().iter().copied().collect::<Vec<_>>(),
        ));
        found
    }
}

/// The diagnostics about a set of flows: each flow's own ([`Flow::lint`]) and `double_delivery`
/// for every pair of active flows that can take the same event and send it to the same endpoint
/// (the same scheme, host, port and path; static query parameters and method aside).
///
/// Overlap is judged without a catalog: a flow narrowed by Folders and another narrowed by
/// Subscriptions are taken to overlap, since a Folder may hold the Subscription.
pub fn lint_flows<'a>(flows: impl IntoIterator<Item = &'a Flow>) -> Vec<Diagnostic> {
    let flows: Vec<&Flow> = flows.into_iter().collect();
    let mut found: Vec<Diagnostic> = flows.iter().flat_map(|f| f.lint()).collect();
    let mut by_endpoint: HashMap<(&str, &str), Vec<&Flow>> = HashMap::new();
    for flow in flows.iter().filter(|f| f.active) {
        by_endpoint
            .entry((flow.section.as_str(), endpoint(flow)))
            .or_default()
            .push(flow);
    }
    let mut pairs = Vec::new();
    for group in by_endpoint.values() {
        for (i, a) in group.iter().enumerate() {
            for b in &group[i + 1..] {
                if let Some(kind) = overlap(&a.listen, &b.listen) {
                    pairs.push((*a, *b, kind));
                }
            }
        }
    }
    let position = |flow: &Flow| {
        flows
            .iter()
            .position(|f| f.id == flow.id)
            .unwrap_or(usize::MAX)
    };
    pairs.sort_by_key(|(a, b, _)| (position(a), position(b)));
    for (a, b, kind) in pairs {
        for (this, other) in [(a, b), (b, a)] {
            found.push(Diagnostic {
                code: DOUBLE_DELIVERY,
                severity: Severity::Warning,
                flow: this.id.clone(),
                message: format!(
                    "flow `{}` can take the same {kind} event and sends it to the same endpoint {}: the \
                     receiver gets it twice under two webhook ids; merge the flows or make their \
                     listen nodes disjoint",
                    other.id,
                    endpoint(this),
                ),
            });
        }
    }
    found
}

/// The endpoint a flow sends to: its URL up to the path, without query and fragment.
fn endpoint(flow: &Flow) -> &str {
    &flow.webhook.url()[..url::Position::AfterPath]
}

/// An event kind both listeners can take for one and the same event, if any.
fn overlap(a: &ListenNode, b: &ListenNode) -> Option<EventKind> {
    if a.origins().is_disjoint(b.origins()) {
        return None;
    }
    if let (Some(x), Some(y)) = (a.activities(), b.activities()) {
        if x.is_disjoint(y) {
            return None;
        }
    }
    a.kinds().intersection(b.kinds()).copied().find(|kind| {
        kind.is_section_level() || {
            let subscriptions_disjoint = matches!(
                (a.subscriptions(), b.subscriptions()),
                (Some(x), Some(y)) if x.is_disjoint(y)
            );
            let folders_disjoint = matches!(
                (a.folders(), b.folders()),
                (Some(x), Some(y)) if x.is_disjoint(y)
            );
            !subscriptions_disjoint && !folders_disjoint
        }
    })
}
