//! Flow files with many flows on one endpoint: reading the file, linting it and building the
//! router, at 1,000 and 10,000 flows.
//!
//! Every flow is in one Section and sends to one endpoint, the worst case for `double_delivery`,
//! which compares the flows of an endpoint. Each flow takes Email - Unsubscribe for a
//! Subscription of its own, so no two overlap and the lints are the same at any size (none):
//! what grows is only the number of flows to tell apart. Flows that all overlap are timed at the
//! same sizes: each lists its first `MAX_LISTED_OVERLAPS` (4) later partners and says when there
//! are more, so that output grows linearly too.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use optout_relay::lint::lint_flows;
use optout_relay::model::ActivityId;
use optout_relay::webhook::ParamSource;
use optout_relay::*;

/// `n` flows whose listeners narrow crosswise: in thirds, each third takes any Activity, any
/// Subscription or any Folder, and narrows the other two to values of its own. No two overlap,
/// yet every flow shares "any" with a third of the others in every dimension.
fn crosswise(n: usize) -> Vec<Flow> {
    let webhook = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .build()
        .unwrap();
    (0..n)
        .map(|i| {
            let mut listen = ListenNode::builder().kind(EventKind::EmailUnsubscribe);
            if i % 3 != 0 {
                listen = listen.activity(ActivityId::new(format!("a{i}")).unwrap());
            }
            if i % 3 != 1 {
                listen = listen.subscription(SubscriptionId::new(format!("s{i}")).unwrap());
            }
            if i % 3 != 2 {
                listen = listen.folder(FolderId::new(format!("f{i}")).unwrap());
            }
            Flow::new(
                FlowId::new(format!("flow-{i}")).unwrap(),
                SectionId::new("sec-1").unwrap(),
                listen.build().unwrap(),
                webhook.clone(),
            )
        })
        .collect()
}

/// `n` active flows in `sec-1`, all sending to `https://crm.example.com/optout`; narrowed to a
/// Subscription each, or all taking every Email - Unsubscribe.
fn flows(n: usize, narrowed: bool) -> Vec<Flow> {
    let webhook = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .build()
        .unwrap();
    (0..n)
        .map(|i| {
            let mut listen = ListenNode::builder().kind(EventKind::EmailUnsubscribe);
            if narrowed {
                listen = listen.subscription(SubscriptionId::new(format!("s{i}")).unwrap());
            }
            Flow::new(
                FlowId::new(format!("flow-{i}")).unwrap(),
                SectionId::new("sec-1").unwrap(),
                listen.build().unwrap(),
                webhook.clone(),
            )
        })
        .collect()
}

fn one_endpoint(c: &mut Criterion) {
    // Every input is made before anything is timed, so that each size meets the same heap.
    let sizes = [1_000, 10_000];
    let narrowed: Vec<(usize, String, FlowFile)> = sizes
        .iter()
        .map(|&n| {
            let text = FlowFile::new(flows(n, true)).to_json().unwrap();
            let file = FlowFile::from_json(&text).unwrap();
            assert_eq!(file.flows.len(), n);
            assert_eq!(lint_flows(&file.flows), []);
            (n, text, file)
        })
        .collect();
    let overlapping: Vec<(usize, Vec<Flow>)> = sizes
        .iter()
        .map(|&n| {
            let flows = flows(n, false);
            // Each flow lists its first 4 later partners; the first n - 5 also say there are more.
            let listed = 2 * (4 * (n - 4) + (0..4).sum::<usize>());
            assert_eq!(lint_flows(&flows).len(), listed + n - 5);
            (n, flows)
        })
        .collect();
    let crossing: Vec<(usize, Vec<Flow>)> = sizes
        .iter()
        .map(|&n| {
            let flows = crosswise(n);
            assert_eq!(lint_flows(&flows), []);
            (n, flows)
        })
        .collect();
    let mut group = c.benchmark_group("one_endpoint");
    group.sample_size(10);
    for (n, text, file) in &narrowed {
        group.bench_with_input(BenchmarkId::new("from_json", n), text, |b, text| {
            b.iter(|| FlowFile::from_json(black_box(text)).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("lint_flows", n), file, |b, file| {
            b.iter_with_large_drop(|| lint_flows(black_box(&file.flows)))
        });
        group.bench_with_input(BenchmarkId::new("router", n), file, |b, file| {
            b.iter(|| Router::new(black_box(file.flows.clone()), &Catalog::default()).unwrap())
        });
    }
    for (n, flows) in &overlapping {
        group.bench_with_input(
            BenchmarkId::new("lint_flows_all_overlapping", n),
            flows,
            |b, flows| b.iter_with_large_drop(|| lint_flows(black_box(flows))),
        );
    }
    for (n, flows) in &crossing {
        group.bench_with_input(
            BenchmarkId::new("lint_flows_crosswise", n),
            flows,
            |b, flows| b.iter_with_large_drop(|| lint_flows(black_box(flows))),
        );
    }
    group.finish();
}

criterion_group!(benches, one_endpoint);
criterion_main!(benches);
