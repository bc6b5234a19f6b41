//! Routing: events per second through the indexed router with 10 to 100,000 flows, beside a
//! naive scan of every flow in the same run.
//!
//! The mix is what a large host has: many Sections with about ten flows each, twenty
//! Subscriptions per Section, the three event kinds, a quarter of the flows narrowed to two
//! Subscriptions, a tenth narrowed by Activity, some taking API opt-outs too. Events are spread
//! over every Section, so the number of flows an event matches stays about the same whatever the
//! number of flows: what grows is only the number of flows that cannot match.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use optout_relay::model::ActivityId;
use optout_relay::model::OptOutKind;
use optout_relay::webhook::ParamSource;
use optout_relay::*;

const SUBSCRIPTIONS_PER_SECTION: usize = 20;
const EVENTS: usize = 512;

/// A small deterministic generator (SplitMix64), so every run routes the same events.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sections_for(flows: usize) -> usize {
    (flows / 10).max(1)
}

fn flows(n: usize) -> Vec<Flow> {
    let sections = sections_for(n);
    let webhook = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .optional_param("mobile", ParamSource::Mobile)
        .optional_param("subscription", ParamSource::SubscriptionId)
        .param("section", ParamSource::SectionId)
        .build()
        .unwrap();
    let mut rng = Rng(n as u64);
    (0..n)
        .map(|i| {
            let section = i % sections;
            let kinds: &[EventKind] = match i % 4 {
                0 => &[EventKind::EmailUnsubscribe],
                1 => &[EventKind::EmailAbuse],
                2 => &[EventKind::SmsUnsubscribe],
                _ => &[EventKind::EmailUnsubscribe, EventKind::EmailAbuse],
            };
            let mut listen = ListenNode::builder();
            for kind in kinds {
                listen = listen.kind(*kind);
            }
            if i % 4 == 0 {
                for _ in 0..2 {
                    let s = rng.below(SUBSCRIPTIONS_PER_SECTION);
                    listen = listen
                        .subscription(SubscriptionId::new(format!("s{section}-{s}")).unwrap());
                }
            }
            if i % 10 == 7 {
                listen = listen.activity(ActivityId::new(format!("a{}", rng.below(50))).unwrap());
            }
            if i % 5 == 0 {
                listen = listen.origin(Origin::Api);
            }
            Flow::new(
                FlowId::new(format!("flow-{i}")).unwrap(),
                SectionId::new(format!("sec-{section}")).unwrap(),
                listen.build().unwrap(),
                webhook.clone(),
            )
        })
        .collect()
}

fn events(sections: usize) -> Vec<OptOutEvent> {
    let mut rng = Rng(42);
    (0..EVENTS)
        .map(|i| {
            let section = rng.below(sections);
            let subscription = SubscriptionId::new(format!(
                "s{section}-{}",
                rng.below(SUBSCRIPTIONS_PER_SECTION)
            ))
            .unwrap();
            let kind = match rng.below(3) {
                0 => OptOutKind::EmailUnsubscribe { subscription },
                1 => OptOutKind::EmailAbuse,
                _ => OptOutKind::SmsUnsubscribe { subscription },
            };
            let mut event = OptOutEvent::new(
                EventId::new(format!("evt-{i}")).unwrap(),
                ProfileId::new(format!("p-{}", rng.below(1000))).unwrap(),
                SectionId::new(format!("sec-{section}")).unwrap(),
                kind,
                "2026-11-26T09:00:00Z".parse().unwrap(),
            );
            if rng.below(3) == 0 {
                event =
                    event.with_activity(ActivityId::new(format!("a{}", rng.below(50))).unwrap());
            }
            if rng.below(10) == 0 {
                event = event.with_origin(Origin::Api);
            }
            event
        })
        .collect()
}

/// What a user would write without the router: check every flow against the event.
fn naive(flows: &[Flow], event: &OptOutEvent) -> usize {
    flows
        .iter()
        .filter(|flow| {
            let listen = &flow.listen;
            flow.active
                && &flow.section == event.section()
                && listen.takes_kind(event.kind())
                && listen.takes_origin(event.origin())
                && match event.subscription() {
                    Some(s) => listen.subscriptions().is_none_or(|set| set.contains(s)),
                    None => true,
                }
                && listen
                    .activities()
                    .is_none_or(|set| event.activity().is_some_and(|a| set.contains(a)))
        })
        .count()
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(EVENTS as u64));
    for n in [10, 1_000, 10_000, 100_000] {
        let flows = flows(n);
        let events = events(sections_for(n));
        let router = Router::new(flows.clone(), &Catalog::default()).unwrap();
        // The two must agree before their speed is compared.
        let matched: usize = events.iter().map(|e| router.matches(e).len()).sum();
        let scanned: usize = events.iter().map(|e| naive(&flows, e)).sum();
        assert_eq!(matched, scanned, "router and scan disagree at {n} flows");
        eprintln!(
            "routing: {n} flows, {} matches per event on average",
            matched as f64 / EVENTS as f64
        );
        group.bench_with_input(BenchmarkId::new("router", n), &events, |b, events| {
            b.iter(|| {
                events
                    .iter()
                    .map(|e| router.matches(black_box(e)).len())
                    .sum::<usize>()
            })
        });
        if n >= 10_000 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::new("naive_scan", n), &events, |b, events| {
            b.iter(|| {
                events
                    .iter()
                    .map(|e| naive(black_box(&flows), black_box(e)))
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
