//! The indexed router agrees with a naive check of every flow, on randomized flows and events.

use std::collections::BTreeSet;

use optout_relay::explain::Explanation;
use optout_relay::lint::MAX_LISTED_OVERLAPS;
use optout_relay::lint::lint_flows;
use optout_relay::listen::InMemoryLedger;
use optout_relay::model::ActivityId;
use optout_relay::model::OptOutKind;
use optout_relay::webhook::WebhookMethod;
use optout_relay::*;
use proptest::prelude::*;

const SUBSCRIPTIONS: [&str; 6] = ["s1", "s2", "s3", "s4", "s5", "s6"];
const ACTIVITIES: [&str; 3] = ["a1", "a2", "a3"];

/// sec-1: f1 (s1, s2), f2 (s3); sec-2: f3 (s4, s5). s6 is in no Folder.
fn catalog() -> Catalog {
    let sub = |s: &str| SubscriptionId::new(s).unwrap();
    let folder = |f: &str, subs: &[&str]| {
        Folder::new(FolderId::new(f).unwrap(), subs.iter().map(|s| sub(s)))
    };
    Catalog::new([
        Section::new(
            SectionId::new("sec-1").unwrap(),
            [folder("f1", &["s1", "s2"]), folder("f2", &["s3"])],
        )
        .unwrap(),
        Section::new(
            SectionId::new("sec-2").unwrap(),
            [folder("f3", &["s4", "s5"])],
        )
        .unwrap(),
    ])
    .unwrap()
}

fn subset<T: Clone + std::fmt::Debug + 'static>(all: Vec<T>) -> impl Strategy<Value = Vec<T>> {
    let n = all.len();
    proptest::collection::vec(any::<bool>(), n).prop_map(move |mask| {
        all.iter()
            .zip(mask)
            .filter(|(_, keep)| *keep)
            .map(|(v, _)| v.clone())
            .collect()
    })
}

fn optional_subset<T: Clone + std::fmt::Debug + 'static>(
    all: Vec<T>,
) -> impl Strategy<Value = Option<Vec<T>>> {
    prop_oneof![
        Just(None),
        subset(all).prop_filter_map("non-empty", |v| (!v.is_empty()).then_some(Some(v)))
    ]
}

fn flow_strategy(index: usize) -> impl Strategy<Value = Flow> {
    let sections = prop_oneof![Just("sec-1"), Just("sec-2")];
    (
        sections,
        subset(EventKind::ALL.to_vec()).prop_filter("a kind", |k| !k.is_empty()),
        optional_subset(SUBSCRIPTIONS.to_vec()),
        any::<bool>(),
        optional_subset(ACTIVITIES.to_vec()),
        subset(Origin::ALL.to_vec()).prop_filter("an origin", |o| !o.is_empty()),
        proptest::bool::weighted(0.9),
    )
        .prop_flat_map(
            move |(section, kinds, subs, by_folder, activities, origins, active)| {
                let folders: Vec<&'static str> = if section == "sec-1" {
                    vec!["f1", "f2"]
                } else {
                    vec!["f3"]
                };
                let folders = if by_folder {
                    optional_subset(folders).boxed()
                } else {
                    Just(None).boxed()
                };
                folders.prop_map(move |folders| {
                    let mut b = ListenNode::builder().only_origins(origins.clone());
                    for k in &kinds {
                        b = b.kind(*k);
                    }
                    for s in subs.iter().flatten() {
                        b = b.subscription(SubscriptionId::new(*s).unwrap());
                    }
                    for f in folders.iter().flatten() {
                        b = b.folder(FolderId::new(*f).unwrap());
                    }
                    for a in activities.iter().flatten() {
                        b = b.activity(ActivityId::new(*a).unwrap());
                    }
                    Flow::new(
                        FlowId::new(format!("flow-{index}")).unwrap(),
                        SectionId::new(section).unwrap(),
                        b.build().unwrap(),
                        WebhookNode::new(
                            WebhookMethod::Post,
                            "https://example.com/".parse().unwrap(),
                        )
                        .unwrap(),
                    )
                    .with_active(active)
                })
            },
        )
}

fn flows_strategy() -> impl Strategy<Value = Vec<Flow>> {
    (0usize..40).prop_flat_map(|n| (0..n).map(flow_strategy).collect::<Vec<_>>())
}

fn event_strategy() -> impl Strategy<Value = OptOutEvent> {
    (
        prop_oneof![Just("sec-1"), Just("sec-2"), Just("sec-3")],
        prop::sample::select(EventKind::ALL.to_vec()),
        prop::sample::select(SUBSCRIPTIONS.to_vec()),
        proptest::option::of(prop::sample::select(ACTIVITIES.to_vec())),
        prop::sample::select(Origin::ALL.to_vec()),
    )
        .prop_map(|(section, kind, subscription, activity, origin)| {
            let subscription = SubscriptionId::new(subscription).unwrap();
            let kind = match kind {
                EventKind::EmailUnsubscribe => OptOutKind::EmailUnsubscribe { subscription },
                EventKind::SmsUnsubscribe => OptOutKind::SmsUnsubscribe { subscription },
                _ => OptOutKind::EmailAbuse,
            };
            let mut event = OptOutEvent::new(
                EventId::new("e").unwrap(),
                ProfileId::new("p").unwrap(),
                SectionId::new(section).unwrap(),
                kind,
                "2026-11-26T09:00:00Z".parse().unwrap(),
            )
            .with_origin(origin);
            if let Some(a) = activity {
                event = event.with_activity(ActivityId::new(a).unwrap());
            }
            event
        })
}

/// The definition, written out without any index: does `flow` take `event`?
fn naive_takes(flow: &Flow, event: &OptOutEvent, catalog: &Catalog) -> bool {
    let listen = &flow.listen;
    if !flow.active || &flow.section != event.section() || !listen.takes_kind(event.kind()) {
        return false;
    }
    if !listen.takes_origin(event.origin()) {
        return false;
    }
    if let Some(subscription) = event.subscription() {
        if listen
            .subscriptions()
            .is_some_and(|set| !set.contains(subscription))
        {
            return false;
        }
        if let Some(folders) = listen.folders() {
            let folder = catalog
                .section(&flow.section)
                .and_then(|s| s.folder_of(subscription));
            if !folder.is_some_and(|f| folders.contains(f)) {
                return false;
            }
        }
    }
    if let Some(activities) = listen.activities() {
        if !event.activity().is_some_and(|a| activities.contains(a)) {
            return false;
        }
    }
    true
}

/// Whether two optional narrowings can both hold for one value: either takes any, or they share
/// one.
fn can_share<T: Ord>(a: Option<&BTreeSet<T>>, b: Option<&BTreeSet<T>>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.intersection(y).next().is_some(),
        _ => true,
    }
}

/// The definition of `double_delivery`, written out over every two flows in order: both
/// active, same Section and endpoint, and the first kind (in `EventKind::ALL` order) that both
/// take for one event; for each flow, only the first `MAX_LISTED_OVERLAPS` later flows it
/// overlaps. Gives (flow, the other flow, kind) twice per pair, each flow first once, and the
/// flows that overlap more later flows than are listed.
fn naive_double_delivery(flows: &[Flow]) -> (Vec<(String, String, EventKind)>, Vec<String>) {
    let endpoint = |f: &Flow| {
        let url = f.webhook.url();
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap(),
            url.path()
        )
    };
    let mut out = Vec::new();
    let mut capped = Vec::new();
    for (i, a) in flows.iter().enumerate() {
        let mut listed = 0;
        for b in &flows[i + 1..] {
            if !a.active || !b.active || a.section != b.section || endpoint(a) != endpoint(b) {
                continue;
            }
            let (x, y) = (&a.listen, &b.listen);
            let kind = EventKind::ALL.into_iter().find(|&kind| {
                x.takes_kind(kind)
                    && y.takes_kind(kind)
                    && Origin::ALL
                        .iter()
                        .any(|&o| x.takes_origin(o) && y.takes_origin(o))
                    && can_share(x.activities(), y.activities())
                    && (kind == EventKind::EmailAbuse
                        || (can_share(x.subscriptions(), y.subscriptions())
                            && can_share(x.folders(), y.folders())))
            });
            if let Some(kind) = kind {
                if listed == MAX_LISTED_OVERLAPS {
                    capped.push(a.id.to_string());
                    break;
                }
                listed += 1;
                out.push((a.id.to_string(), b.id.to_string(), kind));
                out.push((b.id.to_string(), a.id.to_string(), kind));
            }
        }
    }
    (out, capped)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The indexed pair search of `lint_flows` finds exactly the pairs of a check of every two
    /// flows, in the same order, with the same kind.
    #[test]
    fn double_delivery_agrees_with_every_pair(mut flows in flows_strategy()) {
        // Three endpoints: two differ by path, one only by a static query (the same endpoint).
        for (i, flow) in flows.iter_mut().enumerate() {
            let url = ["https://example.com/", "https://example.com/other", "https://example.com/?from=x"][i % 3];
            flow.webhook = flow.webhook.with_url(url.parse().unwrap()).unwrap();
        }
        let lints = lint_flows(&flows);
        let capped: Vec<String> = lints
            .iter()
            .filter(|d| d.code == "double_delivery" && d.message.starts_with("more than"))
            .map(|d| d.flow.to_string())
            .collect();
        let found: Vec<(String, String, EventKind)> = lints
            .iter()
            .filter(|d| d.code == "double_delivery" && !d.message.starts_with("more than"))
            .map(|d| {
                let other = d.message.split('`').nth(1).unwrap().to_owned();
                let kind = EventKind::ALL
                    .into_iter()
                    .find(|k| d.message.contains(&format!("the same {k} event")))
                    .unwrap();
                (d.flow.to_string(), other, kind)
            })
            .collect();
        let (naive, naive_capped) = naive_double_delivery(&flows);
        prop_assert_eq!(found, naive);
        prop_assert_eq!(capped, naive_capped);
    }

    #[test]
    fn router_agrees_with_a_naive_scan(flows in flows_strategy(), events in proptest::collection::vec(event_strategy(), 1..20)) {
        let catalog = catalog();
        let router = Router::new(flows.clone(), &catalog).unwrap();
        for event in &events {
            let indexed: Vec<&FlowId> = router.matches(event).iter().map(|m| &m.flow.id).collect();
            let naive: Vec<&FlowId> = flows.iter().filter(|f| naive_takes(f, event, &catalog)).map(|f| &f.id).collect();
            prop_assert_eq!(&indexed, &naive);
            // Each match says why, exactly as explain does from the flow's definition.
            for found in router.matches(event) {
                prop_assert_eq!(
                    router.explain(&found.flow.id, event),
                    Some(Explanation::Matches(found.why.clone()))
                );
            }
            // explain agrees too, flow by flow.
            for flow in &flows {
                let explained = matches!(router.explain(&flow.id, event), Some(Explanation::Matches(_)));
                prop_assert_eq!(explained, naive.contains(&&flow.id), "explain disagrees for {}", flow.id);
            }
            // Routing with an unlimited ledger enters exactly the matches, once.
            let mut ledger = InMemoryLedger::new();
            let now: Timestamp = "2026-11-26T09:00:01Z".parse().unwrap();
            let routing = router.route(event, &mut ledger, now);
            let entered: BTreeSet<&FlowId> = routing.entered.iter().map(|(m, _)| &m.flow.id).collect();
            prop_assert_eq!(entered.len(), naive.len());
            prop_assert!(routing.refused.is_empty());
            let again = router.route(event, &mut ledger, now);
            prop_assert!(again.entered.is_empty());
            prop_assert_eq!(again.refused.len(), naive.len());
        }
    }
}
