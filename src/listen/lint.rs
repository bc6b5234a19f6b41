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
use crate::model::{ActivityId, EventKind, FlowId, FolderId, Origin, SubscriptionId};

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
///
/// The order is fixed: every flow's own diagnostics in the order the flows are given, then the
/// `double_delivery` pairs ordered by where their flows' ids first appear, each pair as two
/// diagnostics (one per flow, the earlier first).
///
/// Pairs are found through an index rather than by testing every two flows of an endpoint: the
/// time grows with the number of flows, plus for each flow the flows that share a value with it
/// (or take any) in whichever of kinds, origins, Activities, Subscriptions and Folders narrows it
/// most, plus the sorting of the pairs found. Ten thousand flows on one endpoint, each narrowed
/// to its own Subscription, lint in milliseconds. Flows that all overlap give one pair for every
/// two of them, and so n × (n − 1) diagnostics.
pub fn lint_flows<'a>(flows: impl IntoIterator<Item = &'a Flow>) -> Vec<Diagnostic> {
    let flows: Vec<&Flow> = flows.into_iter().collect();
    let mut found: Vec<Diagnostic> = flows.iter().flat_map(|f| f.lint()).collect();
    let mut by_endpoint: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (index, flow) in flows.iter().enumerate().filter(|(_, f)| f.active) {
        by_endpoint
            .entry((flow.section.as_str(), endpoint(flow)))
            .or_default()
            .push(index);
    }
    let mut pairs = Vec::new();
    for group in by_endpoint.values() {
        overlapping_pairs(&flows, group, &mut pairs);
    }
    if pairs.is_empty() {
        return found;
    }
    // Where each id first appears (an id given twice sorts where it first appears); the
    // positions break ties between repeated ids, as the order within a group does.
    let mut first: HashMap<&FlowId, usize> = HashMap::with_capacity(flows.len());
    for (index, flow) in flows.iter().enumerate() {
        first.entry(&flow.id).or_insert(index);
    }
    pairs.sort_unstable_by_key(|&(a, b, _)| (first[&flows[a].id], first[&flows[b].id], a, b));
    for (a, b, kind) in pairs {
        let (a, b) = (flows[a], flows[b]);
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

/// One value a listener narrows by, in one of the [`DIMENSIONS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Kind(EventKind),
    Origin(Origin),
    Activity(&'a ActivityId),
    Subscription(&'a SubscriptionId),
    Folder(&'a FolderId),
}

/// Kinds, origins, Activities, Subscriptions and Folders.
const DIMENSIONS: usize = 5;

/// The numbers of the kinds and origins, fixed (the ids are numbered as they are met, after
/// them).
const FIXED: usize = EventKind::ALL.len() + Origin::ALL.len();

/// The listeners of one endpoint's flows (its members, numbered from 0), indexed by the values
/// they narrow by.
#[derive(Default)]
struct Index<'a> {
    /// A number for each id met (kinds and origins have [`FIXED`] ones).
    numbers: HashMap<Key<'a>, usize>,
    /// How many numbers are given.
    count: usize,
    /// Each member's values, by number, every dimension in turn.
    values: Vec<usize>,
    /// For each member and dimension, its values in `values`, or `None` where it takes any
    /// value (does not narrow).
    spans: Vec<[Option<std::ops::Range<usize>>; DIMENSIONS]>,
    /// The members taking any value, for each dimension.
    any: [Vec<usize>; DIMENSIONS],
    /// The members holding each value, value after value: those of value `v` are
    /// `members[starts[v]..starts[v + 1]]`.
    members: Vec<usize>,
    starts: Vec<usize>,
}

impl<'a> Index<'a> {
    fn new(listeners: impl ExactSizeIterator<Item = &'a ListenNode>) -> Self {
        let mut index = Self {
            numbers: HashMap::with_capacity(listeners.len()),
            count: FIXED,
            spans: Vec::with_capacity(listeners.len()),
            ..Self::default()
        };
        for (member, listen) in listeners.enumerate() {
            // A Section-level kind is taken whatever the Subscription or Folder.
            let section_level = listen.kinds().iter().any(|k| k.is_section_level());
            let spans = [
                index.add(
                    member,
                    0,
                    Some(listen.kinds().iter().map(|&k| Key::Kind(k))),
                ),
                index.add(
                    member,
                    1,
                    Some(listen.origins().iter().map(|&o| Key::Origin(o))),
                ),
                index.add(
                    member,
                    2,
                    listen.activities().map(|set| set.iter().map(Key::Activity)),
                ),
                index.add(
                    member,
                    3,
                    listen
                        .subscriptions()
                        .filter(|_| !section_level)
                        .map(|set| set.iter().map(Key::Subscription)),
                ),
                index.add(
                    member,
                    4,
                    listen
                        .folders()
                        .filter(|_| !section_level)
                        .map(|set| set.iter().map(Key::Folder)),
                ),
            ];
            index.spans.push(spans);
        }
        // The members of each value, by counting: how many hold each, where each one's start.
        let mut starts = vec![0; index.count + 1];
        for &value in &index.values {
            starts[value + 1] += 1;
        }
        for value in 0..index.count {
            starts[value + 1] += starts[value];
        }
        let mut next = starts.clone();
        index.members = vec![0; index.values.len()];
        for (member, spans) in index.spans.iter().enumerate() {
            for span in spans.iter().flatten() {
                for &value in &index.values[span.clone()] {
                    index.members[next[value]] = member;
                    next[value] += 1;
                }
            }
        }
        index.starts = starts;
        index
    }

    /// Records the values of `member` in `dimension` (`None`: any value).
    fn add(
        &mut self,
        member: usize,
        dimension: usize,
        keys: Option<impl Iterator<Item = Key<'a>>>,
    ) -> Option<std::ops::Range<usize>> {
        let Some(keys) = keys else {
            self.any[dimension].push(member);
            return None;
        };
        let start = self.values.len();
        for key in keys {
            let number = match key {
                Key::Kind(kind) => kind as usize,
                Key::Origin(origin) => EventKind::ALL.len() + origin as usize,
                _ => *self.numbers.entry(key).or_insert_with(|| {
                    self.count += 1;
                    self.count - 1
                }),
            };
            self.values.push(number);
        }
        Some(start..self.values.len())
    }

    /// The members holding `value`.
    fn holding(&self, value: usize) -> &[usize] {
        &self.members[self.starts[value]..self.starts[value + 1]]
    }
}

/// Adds to `out` every pair of the `group`'s flows (indices into `flows`, in order) whose
/// listeners [`overlap`], the earlier flow first.
///
/// Two listeners overlap only if, in every dimension, they share a value or one of them takes
/// any. So each flow looks for its partners in one dimension only, the one with the fewest
/// candidates: the flows sharing one of its values there, and those taking any. Only those
/// candidates are tested, each pair once.
fn overlapping_pairs(flows: &[&Flow], group: &[usize], out: &mut Vec<(usize, usize, EventKind)>) {
    let index = Index::new(group.iter().map(|&i| &flows[i].listen));
    // The last member each one was a candidate of, so that a candidate is tested once.
    let mut seen = vec![usize::MAX; group.len()];
    let mut test = |member: usize, other: usize| {
        if other <= member || seen[other] == member {
            return;
        }
        seen[other] = member;
        let (a, b) = (group[member], group[other]);
        if let Some(kind) = overlap(&flows[a].listen, &flows[b].listen) {
            out.push((a, b, kind));
        }
    };
    for (member, spans) in index.spans.iter().enumerate() {
        let cost = |dimension: usize| match &spans[dimension] {
            None => group.len(),
            Some(span) => {
                index.any[dimension].len()
                    + index.values[span.clone()]
                        .iter()
                        .map(|&v| index.holding(v).len())
                        .sum::<usize>()
            }
        };
        let best = (0..DIMENSIONS).min_by_key(|&d| cost(d)).unwrap_or_default();
        match &spans[best] {
            None => (member + 1..group.len()).for_each(|other| test(member, other)),
            Some(span) => {
                for &other in &index.any[best] {
                    test(member, other);
                }
                for &value in &index.values[span.clone()] {
                    for &other in index.holding(value) {
                        test(member, other);
                    }
                }
            }
        }
    }
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
