//! Lints over flow definitions: the article's traps and configuration mistakes.
//!
//! | code | severity | fires when |
//! | --- | --- | --- |
//! | `entry_limit_loses_opt_outs` | warning | an entry limit other than unlimited: a Profile that opts out of Subscription A and later of B is forwarded once, the second opt-out is lost |
//! | `narrowing_ignored_for_abuse` | warning | a Subscription or Folder narrowing on a listener of Email - Abuse, which is section-level |
//! | `double_delivery` | warning | two active flows can take the same event and send it to the same endpoint |
//! | `inactive_flow` | note | the flow is inactive and takes nothing |
//!
//! The Webhook node adds its own lints (see [`crate::webhook`]); every code is a constant of
//! [`crate::lint`].

use std::collections::HashMap;

use crate::lint::{
    DOUBLE_DELIVERY, Diagnostic, ENTRY_LIMIT_LOSES_OPT_OUTS, INACTIVE_FLOW,
    NARROWING_IGNORED_FOR_ABUSE, Severity,
};
use crate::listen::{EntryLimit, Flow, ListenNode};
use crate::model::{ActivityId, EventKind, FlowId, FolderId, Origin, SubscriptionId};

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
/// For each flow, the first [`MAX_LISTED_OVERLAPS`] later flows it overlaps are listed as pairs;
/// a flow that overlaps more later flows gets one more `double_delivery` diagnostic saying so
/// (after the pairs, in the order the flows are given). So the output has at most a few
/// diagnostics per flow, however many flows overlap.
///
/// Pairs are found through an index rather than by testing every two flows of an endpoint. The
/// flows are grouped by the dimensions they narrow in (kinds, origins, Activities,
/// Subscriptions, Folders); for each flow and group, only the flows sharing one of its values in
/// the common dimension where that is rarest are tested, in order, until one more partner than
/// is listed is found. Ten thousand flows on one endpoint lint in milliseconds, whether each is
/// narrowed to its own Subscription, all of them overlap, or they narrow crosswise (each taking
/// any value in a different dimension); `benches/lint.rs` measures the three.
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
    let mut capped = Vec::new();
    for group in by_endpoint.values() {
        overlapping_pairs(&flows, group, &mut pairs, &mut capped);
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
    // Each pair's sort key is looked up once, not at every comparison.
    let mut keyed: Vec<(usize, usize, usize, usize, EventKind)> = pairs
        .into_iter()
        .map(|(a, b, kind)| (first[&flows[a].id], first[&flows[b].id], a, b, kind))
        .collect();
    keyed.sort_unstable_by_key(|&(first_a, first_b, a, b, _)| (first_a, first_b, a, b));
    for (_, _, a, b, kind) in keyed {
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
    capped.sort_unstable();
    for flow in capped.into_iter().map(|i| flows[i]) {
        found.push(Diagnostic {
            code: DOUBLE_DELIVERY,
            severity: Severity::Warning,
            flow: flow.id.clone(),
            message: format!(
                "more than {MAX_LISTED_OVERLAPS} later flows can take the same events as this one \
                 and send them to the same endpoint {}: only the first {MAX_LISTED_OVERLAPS} are \
                 listed; merge the flows or make their listen nodes disjoint",
                endpoint(flow),
            ),
        });
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
/// they narrow by, class by class: a member's class is the set of dimensions it narrows in.
///
/// Two listeners can overlap only if they share a value in every dimension both narrow in. So
/// for one member and one class, the candidates are the class's members holding one of the
/// member's values in whichever dimension both narrow in has the fewest of them; no member that
/// takes any value in that dimension needs testing (it is in another class, where another
/// common dimension is chosen).
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
    /// The classes met: for each, the dimensions its members narrow in (bit `d`).
    classes: Vec<u8>,
    /// Each member's class, an index into `classes`.
    class: Vec<usize>,
    /// The members of each class holding each value, in order: those of class `c` holding
    /// value `v` are `members[starts[c * count + v]..starts[c * count + v + 1]]`.
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
        for listen in listeners {
            // A Section-level kind is taken whatever the Subscription or Folder.
            let section_level = listen.kinds().iter().any(|k| k.is_section_level());
            let spans = [
                index.add(Some(listen.kinds().iter().map(|&k| Key::Kind(k)))),
                index.add(Some(listen.origins().iter().map(|&o| Key::Origin(o)))),
                index.add(listen.activities().map(|set| set.iter().map(Key::Activity))),
                index.add(
                    listen
                        .subscriptions()
                        .filter(|_| !section_level)
                        .map(|set| set.iter().map(Key::Subscription)),
                ),
                index.add(
                    listen
                        .folders()
                        .filter(|_| !section_level)
                        .map(|set| set.iter().map(Key::Folder)),
                ),
            ];
            index.spans.push(spans);
        }
        // Each member's class: the dimensions it narrows in.
        let mut class_of_mask = [usize::MAX; 1 << DIMENSIONS];
        index.class = Vec::with_capacity(index.spans.len());
        for spans in &index.spans {
            let mask = spans
                .iter()
                .enumerate()
                .filter(|(_, span)| span.is_some())
                .fold(0u8, |mask, (d, _)| mask | 1 << d);
            let slot = &mut class_of_mask[usize::from(mask)];
            if *slot == usize::MAX {
                *slot = index.classes.len();
                index.classes.push(mask);
            }
            index.class.push(*slot);
        }
        // The members of each (class, value), by counting: how many hold each, where each
        // one's start.
        let key = |class: usize, value: usize| class * index.count + value;
        let mut starts = vec![0; index.classes.len() * index.count + 1];
        for (member, spans) in index.spans.iter().enumerate() {
            for span in spans.iter().flatten() {
                for &value in &index.values[span.clone()] {
                    starts[key(index.class[member], value) + 1] += 1;
                }
            }
        }
        for slot in 1..starts.len() {
            starts[slot] += starts[slot - 1];
        }
        let mut next = starts.clone();
        index.members = vec![0; index.values.len()];
        for (member, spans) in index.spans.iter().enumerate() {
            for span in spans.iter().flatten() {
                for &value in &index.values[span.clone()] {
                    let slot = key(index.class[member], value);
                    index.members[next[slot]] = member;
                    next[slot] += 1;
                }
            }
        }
        index.starts = starts;
        index
    }

    /// Records a member's values in one dimension (`None`: it takes any value).
    fn add(
        &mut self,
        keys: Option<impl Iterator<Item = Key<'a>>>,
    ) -> Option<std::ops::Range<usize>> {
        let keys = keys?;
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

    /// The members of `class` holding `value`, in order.
    fn holding(&self, class: usize, value: usize) -> &[usize] {
        let slot = class * self.count + value;
        &self.members[self.starts[slot]..self.starts[slot + 1]]
    }
}

/// How many later flows of one endpoint `double_delivery` lists for one flow; a flow that
/// overlaps more gets one more diagnostic saying so. This keeps the output, and the work, linear
/// in the number of flows however many of them overlap.
pub const MAX_LISTED_OVERLAPS: usize = 4;

/// Adds to `out` the pairs of the `group`'s flows (indices into `flows`, in order) whose
/// listeners [`overlap`], the earlier flow first: for each flow, the first
/// [`MAX_LISTED_OVERLAPS`] later flows it overlaps, in order. Adds to `capped` the flows that
/// overlap more later flows than that.
///
/// The candidates come from the [`Index`], one list per value and class, each in order; they
/// are merged in order from the flow's own position on, and the search stops once one more
/// partner than is listed is found.
fn overlapping_pairs(
    flows: &[&Flow],
    group: &[usize],
    out: &mut Vec<(usize, usize, EventKind)>,
    capped: &mut Vec<usize>,
) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let index = Index::new(group.iter().map(|&i| &flows[i].listen));
    let mut lists: Vec<&[usize]> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(usize, usize)>> = BinaryHeap::new();
    for (member, spans) in index.spans.iter().enumerate() {
        let own = index.classes[index.class[member]];
        // The candidate lists, each in order (cut below to the members after this one): for
        // each class, the members sharing a value in the dimension both narrow in where this
        // member's values are held least.
        lists.clear();
        for (class, &mask) in index.classes.iter().enumerate() {
            let values_in = |d: usize| spans[d].clone().map_or(&[][..], |s| &index.values[s]);
            let cost = |d: usize| {
                values_in(d)
                    .iter()
                    .map(|&v| index.holding(class, v).len())
                    .sum::<usize>()
            };
            // Every listener narrows its kinds, so there is always a common dimension.
            let Some(best) = (0..DIMENSIONS)
                .filter(|d| own & mask & (1 << d) != 0)
                .min_by_key(|&d| cost(d))
            else {
                continue;
            };
            lists.extend(values_in(best).iter().map(|&v| index.holding(class, v)));
        }
        heap.clear();
        for (list, members) in lists.iter_mut().enumerate() {
            *members = &members[members.partition_point(|&m| m <= member)..];
            if let Some(&first) = members.first() {
                heap.push(Reverse((first, list)));
            }
        }
        let mut found = 0;
        let mut last = None;
        while let Some(Reverse((other, list))) = heap.pop() {
            let members = &mut lists[list];
            *members = &members[1..];
            if let Some(&next) = members.first() {
                heap.push(Reverse((next, list)));
            }
            if last == Some(other) {
                continue;
            }
            last = Some(other);
            let (a, b) = (group[member], group[other]);
            if let Some(kind) = overlap(&flows[a].listen, &flows[b].listen) {
                if found == MAX_LISTED_OVERLAPS {
                    capped.push(a);
                    break;
                }
                found += 1;
                out.push((a, b, kind));
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
