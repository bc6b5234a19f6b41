//! Endpoint health: the pure decisions to the millisecond, every store holding an endpoint's
//! deliveries instead of dead-lettering them, per-endpoint limits and per-Profile order in the
//! claims, and an endpoint down for a simulated week losing nothing (virtual time through the
//! store and the pure core).

#[path = "support/stores.rs"]
mod stores;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

#[cfg(feature = "sqlite")]
use stores::Scratch;
use stores::{StoreUnderTest, stores_with};

use optout_relay::DeliveryStore;
use optout_relay::VolatileStore;
use optout_relay::delivery::{DeadLetterReason, DeliveryState, Step};
use optout_relay::health::{
    self, AttemptClass, Breaker, Endpoint, EndpointHealth, EndpointPolicy, EndpointState, Limits,
    PauseReason,
};
use optout_relay::jiff::SignedDuration;
use optout_relay::listen::{DeliveryOrder, FlowSettings};
use optout_relay::relay::{self, FlowResult};
use optout_relay::webhook::{ParamSource, WebhookId};
use optout_relay::*;

const A: &str = "https://a.example.com/optout";
const B: &str = "https://b.example.com/optout";

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn ms(n: i64) -> SignedDuration {
    SignedDuration::from_millis(n)
}

fn at(offset: SignedDuration) -> Timestamp {
    t0() + offset
}

const LEASE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The pure core, to the millisecond.

#[test]
fn the_circuit_opens_at_the_threshold_waits_its_cool_down_to_the_millisecond_then_probes_once() {
    let policy = EndpointPolicy::default();
    let mut health = EndpointHealth::default();
    // Nine failures: not yet the minimum of ten attempts.
    for s in 0..9 {
        assert_eq!(
            health.observe(AttemptClass::Failed, at(ms(s * 1000)), &policy),
            None
        );
    }
    assert_eq!(health.state(), EndpointState::Healthy);
    assert_eq!(health.grant(3, 0, Limits::NONE, at(ms(9_000)), LEASE), 3);
    // The tenth opens it, for the 30 s cool-down.
    let change = health.observe(AttemptClass::Failed, at(ms(9_000)), &policy);
    let until = at(ms(39_000));
    assert_eq!(
        change,
        Some((EndpointState::Healthy, EndpointState::Degraded { until }))
    );
    assert_eq!(health.grant(5, 0, Limits::NONE, at(ms(38_999)), LEASE), 0);
    assert_eq!(
        health.ready_at(at(ms(0)), 0, Limits::NONE, at(ms(38_999))),
        Some(until)
    );
    assert_eq!(health.grant(5, 0, Limits::NONE, until, LEASE), 1);
    // One probe at a time, until its lease ends.
    assert_eq!(health.grant(5, 0, Limits::NONE, at(ms(40_000)), LEASE), 0);
    assert_eq!(health.grant(5, 0, Limits::NONE, at(ms(98_999)), LEASE), 0);
    assert_eq!(health.grant(5, 0, Limits::NONE, at(ms(99_000)), LEASE), 1);
    // A failed probe opens it again for twice as long: 60 s, then 120 s, ... up to 600 s.
    let mut failed_at = at(ms(100_000));
    let mut expected = 60_000;
    for _ in 0..6 {
        let until = failed_at + ms(expected);
        let before = health.state();
        assert_eq!(
            health.observe(AttemptClass::Failed, failed_at, &policy),
            Some((before, EndpointState::Degraded { until }))
        );
        assert_eq!(health.grant(1, 0, Limits::NONE, until - ms(1), LEASE), 0);
        assert_eq!(health.grant(1, 0, Limits::NONE, until, LEASE), 1);
        failed_at = until + ms(1);
        expected = (expected * 2).min(600_000);
    }
    // A successful probe closes it.
    let before = health.state();
    assert_eq!(
        health.observe(AttemptClass::Succeeded, failed_at, &policy),
        Some((before, EndpointState::Healthy))
    );
    assert_eq!(health.grant(7, 0, Limits::NONE, failed_at, LEASE), 7);
}

#[test]
fn a_success_counted_late_takes_its_place_in_the_window_and_never_changes_the_state() {
    let policy = EndpointPolicy::default();
    let mut health = EndpointHealth::default();
    for s in 1..=9 {
        health.observe(AttemptClass::Failed, at(ms(s * 1000)), &policy);
    }
    // Two successes made at t0 and t0+5 s, counted after the failures: 9 of 11 failed.
    health.absorb_success(t0(), at(ms(9_000)), &policy);
    health.absorb_success(at(ms(5_000)), at(ms(9_000)), &policy);
    assert_eq!(health.window(at(ms(9_000)), &policy), (11, 9));
    assert_eq!(health.last_success(), Some(at(ms(5_000))));
    assert_eq!(health.state(), EndpointState::Healthy);
    // In place: when t0 leaves the window (at t0+60 s), the 10 others stay.
    assert_eq!(health.window(at(ms(60_000)), &policy), (10, 9));
    // One that has left the window by now is not counted; the last success stays the latest.
    health.absorb_success(at(ms(-51_000)), at(ms(9_000)), &policy);
    assert_eq!(health.window(at(ms(9_000)), &policy), (11, 9));
    assert_eq!(health.last_success(), Some(at(ms(5_000))));
    // While the circuit is open, a late success is dropped: a probe decides the recovery.
    health.observe(AttemptClass::Failed, at(ms(10_000)), &policy);
    let open = health.state();
    assert!(matches!(open, EndpointState::Degraded { .. }));
    health.absorb_success(at(ms(10_001)), at(ms(10_001)), &policy);
    assert_eq!(health.state(), open);
    assert_eq!(health.window(at(ms(10_001)), &policy), (12, 10));
}

#[test]
fn the_ratio_counts_only_attempts_within_the_window_to_the_millisecond() {
    let policy = EndpointPolicy::default();
    // Nine failures at t0; the tenth one millisecond before the first leaves the window opens
    // the circuit.
    let mut health = EndpointHealth::default();
    for _ in 0..9 {
        health.observe(AttemptClass::Failed, t0(), &policy);
    }
    health.observe(AttemptClass::Failed, at(ms(59_999)), &policy);
    assert_eq!(
        health.state(),
        EndpointState::Degraded {
            until: at(ms(89_999))
        }
    );
    // The tenth exactly when they leave it: one attempt in the window, still healthy.
    let mut health = EndpointHealth::default();
    for _ in 0..9 {
        health.observe(AttemptClass::Failed, t0(), &policy);
    }
    health.observe(AttemptClass::Failed, at(ms(60_000)), &policy);
    assert_eq!(health.state(), EndpointState::Healthy);
    assert_eq!(health.window(at(ms(60_000)), &policy), (1, 1));
    // 50 % failed opens it, 40 % does not.
    for (failures, open) in [(5, true), (4, false)] {
        let mut health = EndpointHealth::default();
        for i in 0..10 {
            let class = if i < 10 - failures {
                AttemptClass::Succeeded
            } else {
                AttemptClass::Failed
            };
            health.observe(class, at(ms(i)), &policy);
        }
        assert_eq!(
            !health.state().is_healthy(),
            open,
            "{failures} of 10 failed"
        );
    }
}

#[test]
fn failing_for_the_configured_time_pauses_and_a_paused_endpoint_is_probed_at_its_interval() {
    let policy = EndpointPolicy::default().breaker(None);
    let mut health = EndpointHealth::default();
    health.observe(AttemptClass::Failed, t0(), &policy);
    let day = ms(24 * 3_600_000);
    assert_eq!(
        health.observe(AttemptClass::Failed, at(day - ms(1)), &policy),
        None
    );
    let paused = EndpointState::Paused {
        reason: PauseReason::Failing,
        since: at(day),
    };
    assert_eq!(
        health.observe(AttemptClass::Failed, at(day), &policy),
        Some((EndpointState::Healthy, paused))
    );
    // Probed every 10 min: none before, one at.
    let probe = at(day + ms(600_000));
    assert_eq!(health.grant(9, 0, Limits::NONE, probe - ms(1), LEASE), 0);
    assert_eq!(
        health.ready_at(at(ms(0)), 0, Limits::NONE, probe - ms(1)),
        Some(probe)
    );
    assert_eq!(health.grant(9, 0, Limits::NONE, probe, LEASE), 1);
    // A failed probe: the next one 10 min after it.
    let failed = probe + ms(250);
    assert_eq!(health.observe(AttemptClass::Failed, failed, &policy), None);
    assert_eq!(
        health.grant(9, 0, Limits::NONE, failed + ms(599_999), LEASE),
        0
    );
    assert_eq!(
        health.grant(9, 0, Limits::NONE, failed + ms(600_000), LEASE),
        1
    );
    // A successful probe resumes it.
    assert_eq!(
        health.observe(AttemptClass::Succeeded, failed + ms(600_100), &policy),
        Some((paused, EndpointState::Healthy))
    );
    // Without probes, only an operator resumes it.
    let policy = EndpointPolicy::default().breaker(None).probe_paused(None);
    let mut health = EndpointHealth::default();
    health.observe(AttemptClass::Failed, t0(), &policy);
    health.observe(AttemptClass::Failed, at(day), &policy);
    assert_eq!(
        health.ready_at(at(day), 0, Limits::NONE, at(day * 30)),
        None
    );
    assert_eq!(health.grant(1, 0, Limits::NONE, at(day * 30), LEASE), 0);
}

#[test]
fn gone_pauses_until_an_operator_resumes_and_an_operator_pause_holds_everything() {
    let policy = EndpointPolicy::default();
    let mut health = EndpointHealth::default();
    let gone = EndpointState::Paused {
        reason: PauseReason::Gone,
        since: t0(),
    };
    assert_eq!(
        health.observe(AttemptClass::Gone, t0(), &policy),
        Some((EndpointState::Healthy, gone))
    );
    // Never probed; a success of an attempt that was in flight does not resume it either.
    assert_eq!(
        health.grant(1, 0, Limits::NONE, at(ms(86_400_000)), LEASE),
        0
    );
    assert_eq!(
        health.observe(AttemptClass::Succeeded, at(ms(5)), &policy),
        None
    );
    assert_eq!(health.resume(), Some((gone, EndpointState::Healthy)));
    let endpoint: Endpoint = A.parse().unwrap();
    let change = health::pause(&endpoint, &mut health, at(ms(10))).unwrap();
    assert_eq!(change.to.as_str(), "paused");
    assert_eq!(
        health.grant(1, 0, Limits::NONE, at(ms(86_400_000)), LEASE),
        0
    );
    // 410 does not override an operator's pause.
    assert_eq!(
        health.observe(AttemptClass::Gone, at(ms(20)), &policy),
        None
    );
    // With health off, 410 pauses nothing.
    let mut off = EndpointHealth::default();
    assert_eq!(
        off.observe(AttemptClass::Gone, t0(), &EndpointPolicy::off()),
        None
    );
}

#[test]
fn the_limits_grant_what_is_left_in_flight_and_in_the_bucket_to_the_millisecond() {
    let mut health = EndpointHealth::default();
    let limits = Limits {
        max_in_flight: Some(4),
        per_second: Some(10),
    };
    // In flight: 3 of 4 out, one more.
    assert_eq!(health.grant(10, 3, limits, t0(), LEASE), 1);
    // The bucket starts full (10), one was taken: 9 left.
    assert_eq!(health.grant(10, 0, limits, t0(), LEASE), 4);
    assert_eq!(health.grant(10, 0, limits, t0(), LEASE), 4);
    assert_eq!(health.grant(10, 0, limits, t0(), LEASE), 1);
    assert_eq!(health.grant(10, 0, limits, t0(), LEASE), 0);
    // One token every 100 ms.
    assert_eq!(health.ready_at(t0(), 0, limits, t0()), Some(at(ms(100))));
    assert_eq!(health.grant(10, 0, limits, at(ms(99)), LEASE), 0);
    assert_eq!(health.grant(10, 0, limits, at(ms(100)), LEASE), 1);
    // At the in-flight limit it waits for an attempt to end, not for a time.
    assert_eq!(health.ready_at(t0(), 4, limits, at(ms(5_000))), None);
}

fn delivery_to(url: &str, event: &str) -> Delivery {
    let request = http::Request::post(url).body(b"{}".to_vec()).unwrap();
    let (flow, event) = (FlowId::new("f").unwrap(), EventId::new(event).unwrap());
    let id = WebhookId::derive(&flow, &event);
    Delivery::new(id, flow, event, request, t0())
}

fn answer(status: u16) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .body(Vec::new())
        .unwrap()
}

#[test]
fn a_delivery_that_runs_out_of_attempts_is_held_when_its_endpoint_never_answered_and_dead_lettered_when_it_did()
 {
    let retry = RetryPolicy::builder().max_attempts(1).build().unwrap();
    let policy = EndpointPolicy::default();
    let endpoint: Endpoint = A.parse().unwrap();
    // The endpoint never answered with a success since the delivery began: held, paused.
    let mut health = EndpointHealth::default();
    let mut delivery = delivery_to(A, "e1");
    let step = delivery.record(Ok(&answer(503)), t0(), at(ms(40)), &retry, 0);
    assert!(matches!(step, Step::DeadLetter { .. }));
    let settled = health::settle(&mut delivery, &endpoint, &mut health, &policy, at(ms(50)));
    assert!(settled.held);
    let paused = EndpointState::Paused {
        reason: PauseReason::Failing,
        since: at(ms(50)),
    };
    assert_eq!(settled.change.unwrap().to, paused);
    assert_eq!(
        delivery.state(),
        &DeliveryState::Pending {
            next_attempt_at: at(ms(50))
        }
    );
    assert_eq!(delivery.allowance_start(), at(ms(50)));
    // It answered another delivery successfully meanwhile: this one is refused by the
    // receiver, not an endpoint down; dead-lettered as the retry policy says.
    let mut health = EndpointHealth::default();
    health.observe(AttemptClass::Succeeded, at(ms(10)), &policy);
    let mut delivery = delivery_to(A, "e2");
    let _ = delivery.record(Ok(&answer(503)), at(ms(20)), at(ms(40)), &retry, 0);
    let settled = health::settle(&mut delivery, &endpoint, &mut health, &policy, at(ms(50)));
    assert!(!settled.held);
    assert_eq!(settled.change, None);
    assert_eq!(
        delivery.state(),
        &DeliveryState::DeadLettered {
            at: at(ms(40)),
            reason: DeadLetterReason::AttemptsExhausted { attempts: 1 }
        }
    );
}

// ---------------------------------------------------------------------------------------------
// The stores.

fn flow(id: &str, url: &str, order: DeliveryOrder) -> Flow {
    Flow::new(
        FlowId::new(id).unwrap(),
        SectionId::new("sec-1").unwrap(),
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        WebhookNode::builder(url)
            .param("email", ParamSource::Email)
            .param("event", ParamSource::EventId)
            .build()
            .unwrap(),
    )
    .with_settings(FlowSettings::default().with_order(order))
}

fn router(flows: impl IntoIterator<Item = Flow>) -> Router {
    Router::new(flows, &Catalog::default()).unwrap()
}

fn event(id: &str, profile: &str) -> (OptOutEvent, Profile) {
    let event = OptOutEvent::email_unsubscribe(
        EventId::new(id).unwrap(),
        ProfileId::new(profile).unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        t0(),
    );
    let profile = Profile::new(ProfileId::new(profile).unwrap())
        .with_email(Email::new(format!("{profile}@example.com")).unwrap());
    (event, profile)
}

async fn admit(
    store: &dyn DeliveryStore,
    router: &Router,
    id: &str,
    profile: &str,
    now: Timestamp,
) -> Vec<WebhookId> {
    let (event, profile) = event(id, profile);
    let submitted = store
        .admit(relay::plan(router, &event, &profile, now))
        .await
        .unwrap();
    submitted
        .flows
        .iter()
        .filter_map(|f| match &f.result {
            FlowResult::Entered { webhook_id } => Some(webhook_id.clone()),
            _ => None,
        })
        .collect()
}

/// Every store, keeping endpoint health by `policy`.
async fn stores(name: &str, policy: EndpointPolicy) -> Vec<StoreUnderTest> {
    stores_with(name, policy).await
}

/// Records `status` as the answer to a claim, at the store's own time scale (the system clock).
async fn answer_claim(
    store: &dyn DeliveryStore,
    claim: &optout_relay::store::Claim,
    status: u16,
) -> optout_relay::store::Recorded {
    let now = Timestamp::now();
    let mut delivery = claim.delivery.clone();
    let _ = delivery.record(Ok(&answer(status)), now, now, &RetryPolicy::default(), 0);
    store.record(&claim.token, &delivery).await.unwrap()
}

fn claimed_ids(claims: &[optout_relay::store::Claim]) -> Vec<String> {
    claims.iter().map(|c| c.token.webhook_id.clone()).collect()
}

#[tokio::test]
async fn gone_holds_the_endpoints_deliveries_while_another_endpoint_flows_and_resume_releases_them_in_order()
 {
    let router = router([
        flow("a", A, DeliveryOrder::Any),
        flow("b", B, DeliveryOrder::Any),
    ]);
    for (name, store, _scratch) in stores("gone", EndpointPolicy::default()).await {
        let first = admit(&*store, &router, "e1", "p-1", Timestamp::now()).await;
        let claims = store.claim(1, LEASE).await.unwrap();
        assert_eq!(claimed_ids(&claims), [first[0].as_str()], "{name}");
        let recorded = answer_claim(&*store, &claims[0], 410).await;
        assert!(recorded.held, "{name}");
        let change = recorded.change.expect("a change");
        let endpoint: Endpoint = A.parse().unwrap();
        assert_eq!(change.endpoint, endpoint, "{name}");
        assert_eq!(change.from, EndpointState::Healthy, "{name}");
        assert!(
            matches!(
                change.to,
                EndpointState::Paused {
                    reason: PauseReason::Gone,
                    ..
                }
            ),
            "{name}"
        );
        let held = store.get(&first[0]).await.unwrap().unwrap();
        assert!(held.is_pending(), "{name}: held, not dead-lettered");
        assert_eq!(store.counts().await.unwrap().dead_lettered, 0, "{name}");
        // More events: A's deliveries wait, B's flow.
        let second = admit(&*store, &router, "e2", "p-2", Timestamp::now()).await;
        let third = admit(&*store, &router, "e3", "p-3", Timestamp::now()).await;
        let claims = store.claim(10, LEASE).await.unwrap();
        assert_eq!(
            claimed_ids(&claims),
            [first[1].as_str(), second[1].as_str(), third[1].as_str()],
            "{name}: B only"
        );
        for claim in &claims {
            assert_eq!(
                answer_claim(&*store, claim, 204).await,
                Default::default(),
                "{name}"
            );
        }
        assert!(store.claim(10, LEASE).await.unwrap().is_empty(), "{name}");
        let statuses = store.endpoints().await.unwrap();
        assert_eq!(statuses.len(), 2, "{name}");
        assert_eq!(
            (
                statuses[0].endpoint.as_str(),
                statuses[0].state.as_str(),
                statuses[0].pending
            ),
            (A, "paused", 3),
            "{name}"
        );
        assert_eq!(
            (
                statuses[1].endpoint.as_str(),
                statuses[1].state.as_str(),
                statuses[1].pending
            ),
            (B, "healthy", 0),
            "{name}"
        );
        // The operator resumes: all three, in the order they were admitted.
        let resumed = store.resume(&endpoint).await.unwrap().expect("a change");
        assert_eq!(resumed.to, EndpointState::Healthy, "{name}");
        assert_eq!(
            store.resume(&endpoint).await.unwrap(),
            None,
            "{name}: already healthy"
        );
        let claims = store.claim(10, LEASE).await.unwrap();
        assert_eq!(
            claimed_ids(&claims),
            [first[0].as_str(), second[0].as_str(), third[0].as_str()],
            "{name}"
        );
        for claim in &claims {
            answer_claim(&*store, claim, 204).await;
        }
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (counts.pending, counts.delivered, counts.dead_lettered),
            (0, 6, 0),
            "{name}"
        );
    }
}

/// Records `statuses[i]` as the answer to `claims[i]`, all at once: each record is sent before
/// the store's writer runs, so a store that groups its writes gets them in one group, in order.
async fn answer_claims_together(
    store: &Arc<dyn DeliveryStore>,
    claims: &[optout_relay::store::Claim],
    statuses: &[u16],
) -> Vec<Result<optout_relay::store::Recorded, optout_relay::store::StoreError>> {
    let tasks: Vec<_> = claims
        .iter()
        .zip(statuses)
        .map(|(claim, &status)| {
            let (store, claim) = (Arc::clone(store), claim.clone());
            tokio::spawn(async move {
                let now = Timestamp::now();
                let mut delivery = claim.delivery.clone();
                let _ = delivery.record(Ok(&answer(status)), now, now, &RetryPolicy::default(), 0);
                store.record(&claim.token, &delivery).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// What a record did, without its times: (held, the change's states).
fn decided(
    recorded: &optout_relay::store::Recorded,
) -> (bool, Option<(&'static str, &'static str)>) {
    (
        recorded.held,
        recorded
            .change
            .as_ref()
            .map(|change| (change.from.as_str(), change.to.as_str())),
    )
}

/// Where a delivery stands, without its times: (state, attempts, due within the second).
fn standing(delivery: &Delivery) -> (&'static str, u32, bool) {
    let state = match delivery.state() {
        DeliveryState::Pending { .. } => "pending",
        DeliveryState::Delivered { .. } => "delivered",
        DeliveryState::DeadLettered { .. } => "dead_lettered",
        other => panic!("a state this test does not know: {other:?}"),
    };
    let soon = Timestamp::now() + SignedDuration::from_secs(1);
    let due = delivery.next_attempt_at().is_some_and(|at| at <= soon);
    (state, delivery.attempt_count(), due)
}

#[tokio::test]
async fn records_that_share_a_group_commit_settle_exactly_as_one_by_one() {
    let router = router([flow("a", A, DeliveryOrder::Any)]);
    // Ten failures open the circuit, a success closes it and releases the ten (due at once,
    // their retries' waits dropped), and the failure after the success is not released.
    let mut statuses = vec![503; 10];
    statuses.extend([204, 503]);
    let mut reference = None;
    for (name, store, _scratch) in stores("together", EndpointPolicy::default()).await {
        let mut ids = Vec::new();
        for i in 0..statuses.len() {
            ids.extend(
                admit(
                    &*store,
                    &router,
                    &format!("e{i}"),
                    &format!("p-{i}"),
                    Timestamp::now(),
                )
                .await,
            );
        }
        let claims = store.claim(100, LEASE).await.unwrap();
        assert_eq!(
            claimed_ids(&claims),
            ids.iter()
                .map(|id| id.as_str().to_owned())
                .collect::<Vec<_>>(),
            "{name}"
        );
        let results = if name == "volatile" {
            // The reference: one by one.
            let mut results = Vec::new();
            for (claim, &status) in claims.iter().zip(&statuses) {
                results.push(Ok(answer_claim(&*store, claim, status).await));
            }
            results
        } else {
            answer_claims_together(&store, &claims, &statuses).await
        };
        let decisions: Vec<_> = results
            .iter()
            .map(|r| decided(r.as_ref().unwrap()))
            .collect();
        assert_eq!(
            decisions[9],
            (false, Some(("healthy", "degraded"))),
            "{name}"
        );
        assert_eq!(
            decisions[10],
            (false, Some(("degraded", "healthy"))),
            "{name}"
        );
        let mut stands = Vec::new();
        for id in &ids {
            stands.push(standing(&store.get(id).await.unwrap().unwrap()));
        }
        assert_eq!(stands[0], ("pending", 1, true), "{name}: released");
        assert_eq!(stands[10], ("delivered", 1, false), "{name}");
        assert_eq!(
            stands[11],
            ("pending", 1, false),
            "{name}: recorded after the release"
        );
        let states: Vec<_> = store
            .endpoints()
            .await
            .unwrap()
            .iter()
            .map(|status| (status.state.as_str(), status.pending, status.in_flight))
            .collect();
        match &reference {
            None => reference = Some((decisions, stands, states)),
            Some(expected) => assert_eq!(&(decisions, stands, states), expected, "{name}"),
        }
    }
}

#[tokio::test]
async fn a_lost_claim_in_a_group_commit_fails_alone_and_is_not_counted() {
    let router = router([flow("a", A, DeliveryOrder::Any)]);
    for (name, store, _scratch) in stores("lost", EndpointPolicy::default()).await {
        for i in 0..3 {
            admit(
                &*store,
                &router,
                &format!("e{i}"),
                &format!("p-{i}"),
                Timestamp::now(),
            )
            .await;
        }
        let claims = store.claim(3, LEASE).await.unwrap();
        assert_eq!(claims.len(), 3, "{name}");
        store.release(&claims[1].token).await.unwrap();
        let results = answer_claims_together(&store, &claims, &[204, 204, 204]).await;
        assert_eq!(results[0].as_ref().unwrap(), &Default::default(), "{name}");
        assert_eq!(
            results[1].as_ref().unwrap_err().kind(),
            optout_relay::store::StoreErrorKind::LeaseLost,
            "{name}"
        );
        assert_eq!(results[2].as_ref().unwrap(), &Default::default(), "{name}");
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.delivered), (1, 2), "{name}");
    }
}

#[tokio::test]
async fn with_health_off_gone_dead_letters_as_before() {
    let router = router([flow("a", A, DeliveryOrder::Any)]);
    for (name, store, _scratch) in stores("off", EndpointPolicy::off()).await {
        admit(&*store, &router, "e1", "p-1", Timestamp::now()).await;
        let claims = store.claim(1, LEASE).await.unwrap();
        assert_eq!(
            answer_claim(&*store, &claims[0], 410).await,
            Default::default(),
            "{name}"
        );
        assert_eq!(store.counts().await.unwrap().dead_lettered, 1, "{name}");
    }
}

#[tokio::test]
async fn an_operator_pause_holds_new_work_and_the_in_flight_limit_never_blocks_another_endpoint() {
    let router = router([
        flow("a", A, DeliveryOrder::Any),
        flow("b", B, DeliveryOrder::Any),
    ]);
    let endpoint_a: Endpoint = A.parse().unwrap();
    let policy = EndpointPolicy::default().endpoint_limits(
        endpoint_a.clone(),
        Limits {
            max_in_flight: Some(2),
            per_second: None,
        },
    );
    for (name, store, _scratch) in stores("limits", policy).await {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for i in 0..5 {
            let ids = admit(
                &*store,
                &router,
                &format!("e{i}"),
                &format!("p-{i}"),
                Timestamp::now(),
            )
            .await;
            a.push(ids[0].as_str().to_owned());
            b.push(ids[1].as_str().to_owned());
        }
        // A's first two (its limit), and every one of B's, in one claim.
        let claims = store.claim(100, LEASE).await.unwrap();
        let mut expected = vec![a[0].clone(), a[1].clone()];
        expected.extend(b.iter().cloned());
        let mut got = claimed_ids(&claims);
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{name}");
        assert!(
            store.claim(100, LEASE).await.unwrap().is_empty(),
            "{name}: A is at its limit"
        );
        // One of A's ends: one more may go.
        answer_claim(
            &*store,
            &claims
                .iter()
                .find(|c| c.token.webhook_id == a[0])
                .unwrap()
                .clone(),
            204,
        )
        .await;
        assert_eq!(
            claimed_ids(&store.claim(100, LEASE).await.unwrap()),
            [a[2].clone()],
            "{name}"
        );
        // Paused by the operator: nothing more of A goes, whatever its limit.
        let change = store.pause(&endpoint_a).await.unwrap().expect("a change");
        assert!(
            matches!(
                change.to,
                EndpointState::Paused {
                    reason: PauseReason::Operator,
                    ..
                }
            ),
            "{name}"
        );
        assert_eq!(
            store.pause(&endpoint_a).await.unwrap(),
            None,
            "{name}: paused already"
        );
        for claim in claims.iter().filter(|c| c.token.webhook_id == a[1]) {
            answer_claim(&*store, claim, 204).await;
        }
        assert!(
            store.claim(100, LEASE).await.unwrap().is_empty(),
            "{name}: paused"
        );
        let status = store.endpoints().await.unwrap();
        assert_eq!(
            (status[0].pending, status[0].in_flight),
            (3, 1),
            "{name}: a[2] in flight, a[3], a[4] held"
        );
    }
}

#[tokio::test]
async fn per_profile_order_lets_one_delivery_of_a_profile_go_at_a_time_and_never_holds_another_profile()
 {
    let router = router([flow("a", A, DeliveryOrder::PerProfile)]);
    for (name, store, _scratch) in stores("order", EndpointPolicy::default()).await {
        let p1 = [
            admit(&*store, &router, "e1", "p-1", Timestamp::now()).await,
            admit(&*store, &router, "e2", "p-1", Timestamp::now()).await,
        ];
        let p2 = [
            admit(&*store, &router, "e3", "p-2", Timestamp::now()).await,
            admit(&*store, &router, "e4", "p-2", Timestamp::now()).await,
        ];
        let p3 = admit(&*store, &router, "e5", "p-3", Timestamp::now()).await;
        // The first of each Profile.
        let claims = store.claim(10, LEASE).await.unwrap();
        assert_eq!(
            claimed_ids(&claims),
            [p1[0][0].as_str(), p2[0][0].as_str(), p3[0].as_str()],
            "{name}"
        );
        // p-1's first waits for a retry (in 5 s): its second waits with it. p-2's first is
        // refused by the receiver (400, dead-lettered): its second goes. p-3's is delivered.
        let now = Timestamp::now();
        let mut retried = claims[0].delivery.clone();
        let _ = retried.record(Ok(&answer(503)), now, now, &RetryPolicy::default(), 0);
        store.record(&claims[0].token, &retried).await.unwrap();
        answer_claim(&*store, &claims[1], 400).await;
        answer_claim(&*store, &claims[2], 204).await;
        let claims = store.claim(10, LEASE).await.unwrap();
        assert_eq!(claimed_ids(&claims), [p2[1][0].as_str()], "{name}");
        assert!(store.claim(10, LEASE).await.unwrap().is_empty(), "{name}");
        // The next due is p-1's retry, not its second (which waits for it).
        let due = store.next_due().await.unwrap().unwrap();
        let retry_at = retried.next_attempt_at().unwrap();
        assert_eq!(due.as_millisecond(), retry_at.as_millisecond(), "{name}");
        assert!(
            retry_at > now + SignedDuration::from_secs(3),
            "{name}: {retry_at}"
        );
        assert!(
            store
                .get(&p1[1][0])
                .await
                .unwrap()
                .unwrap()
                .attempts()
                .is_empty(),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A week of downtime in virtual time: the store's clock and every attempt's time are virtual.

#[tokio::test]
async fn an_endpoint_down_for_a_simulated_week_loses_nothing_dead_letters_nothing_and_keeps_each_profiles_order()
 {
    let clock = Arc::new(Mutex::new(t0()));
    let read = Arc::clone(&clock);
    let store = VolatileStore::with_clock(move || *read.lock().unwrap())
        .with_endpoint_policy(EndpointPolicy::default());
    let now = || *clock.lock().unwrap();
    let router = router([flow("a", A, DeliveryOrder::PerProfile)]);
    let week = SignedDuration::from_hours(7 * 24);
    let retry = RetryPolicy::default();
    // The store keeps health by the defaults (breaker 50 % of 10 in 60 s, paused after 24 h).
    assert_eq!(
        EndpointPolicy::default().breaker_thresholds(),
        Some(&Breaker::default())
    );
    // 60 events of 6 Profiles, one a second through the first minute of the outage.
    let mut admitted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut changes = Vec::new();
    let (mut attempts, mut delivered_order): (usize, BTreeMap<String, Vec<String>>) =
        (0, BTreeMap::new());
    let mut next_event = 0;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100_000, "the simulation does not end");
        let t = now();
        while next_event < 60 && at(SignedDuration::from_secs(next_event)) <= t {
            let profile = format!("p-{}", next_event % 6);
            let ids = admit(&store, &router, &format!("e{next_event:02}"), &profile, t).await;
            admitted
                .entry(profile)
                .or_default()
                .push(ids[0].as_str().to_owned());
            next_event += 1;
        }
        for claim in store.claim(100, LEASE).await.unwrap() {
            attempts += 1;
            let up = t >= at(week);
            let mut delivery = claim.delivery.clone();
            let status = if up { 204 } else { 503 };
            let _ = delivery.record(Ok(&answer(status)), t, t, &retry, 0);
            let recorded = store.record(&claim.token, &delivery).await.unwrap();
            changes.extend(recorded.change);
            if up {
                let profile = delivered_order.entry(String::new()).or_default();
                profile.push(claim.token.webhook_id.clone());
            }
        }
        let counts = store.counts().await.unwrap();
        assert_eq!(counts.dead_lettered, 0, "dead-lettered at {t}");
        if next_event == 60 && counts.pending == 0 {
            break;
        }
        let next_admit = (next_event < 60).then(|| at(SignedDuration::from_secs(next_event)));
        let due = store.next_due().await.unwrap();
        let next = [due, next_admit]
            .into_iter()
            .flatten()
            .min()
            .expect("something is due");
        *clock.lock().unwrap() = next.max(t + ms(1));
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.delivered, counts.dead_lettered, counts.pending),
        (60, 0, 0)
    );
    // Each Profile's deliveries arrived in the order they were admitted.
    let arrived = &delivered_order[""];
    assert_eq!(arrived.len(), 60, "each delivered once");
    for (profile, ids) in &admitted {
        let order: Vec<&String> = arrived.iter().filter(|id| ids.contains(id)).collect();
        assert_eq!(order, ids.iter().collect::<Vec<_>>(), "{profile}");
    }
    // The endpoint went degraded, paused after a day of failing, and healthy when a probe
    // succeeded after the week.
    let states: Vec<&str> = changes.iter().map(|c| c.to.as_str()).collect();
    assert_eq!(states.first(), Some(&"degraded"));
    let paused = changes
        .iter()
        .find(|c| c.to.as_str() == "paused")
        .expect("paused");
    assert_eq!(
        paused.to,
        EndpointState::Paused {
            reason: PauseReason::Failing,
            since: paused.at
        }
    );
    assert!(paused.at >= at(SignedDuration::from_hours(24)));
    let last = changes.last().unwrap();
    assert_eq!(last.to, EndpointState::Healthy);
    assert!(last.at >= at(week) && last.at <= at(week) + SignedDuration::from_mins(10));
    eprintln!(
        "a week down: 60 deliveries, {attempts} attempts in all ({} state changes), delivered {} after the endpoint came back, 0 dead-lettered",
        changes.len(),
        counts.delivered
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_sqlite_file_at_schema_version_1_is_brought_to_version_2_and_its_pending_work_flows() {
    let scratch = Scratch::new("v1");
    let path = scratch.0.join("relay.db");
    let router = router([
        flow("a", A, DeliveryOrder::Any),
        flow("b", B, DeliveryOrder::Any),
    ]);
    let mut ids = {
        let store = SqliteStore::open(&path).await.unwrap();
        admit(&store, &router, "e1", "p-1", Timestamp::now()).await
    };
    // Back to what version 1 wrote: no endpoint columns, no endpoints' table.
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        path.display()
    ))
    .await
    .unwrap();
    sqlx::raw_sql(
        "DROP INDEX optout_relay_deliveries_endpoint_due; \
         DROP INDEX optout_relay_deliveries_profile_order; \
         DROP TABLE optout_relay_endpoints; \
         ALTER TABLE optout_relay_deliveries DROP COLUMN endpoint; \
         ALTER TABLE optout_relay_deliveries DROP COLUMN ordered; \
         UPDATE optout_relay_schema SET version = 1",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    let store = SqliteStore::builder(&path)
        .endpoint_policy(EndpointPolicy::default())
        .open()
        .await
        .unwrap();
    let statuses: Vec<_> = store
        .endpoints()
        .await
        .unwrap()
        .iter()
        .map(|s| (s.endpoint.as_str().to_owned(), s.state.as_str(), s.pending))
        .collect();
    assert_eq!(
        statuses,
        [(A.to_owned(), "healthy", 1), (B.to_owned(), "healthy", 1)]
    );
    let mut claimed = claimed_ids(&store.claim(10, LEASE).await.unwrap());
    claimed.sort();
    ids.sort();
    assert_eq!(
        claimed,
        ids.iter()
            .map(|id| id.as_str().to_owned())
            .collect::<Vec<_>>()
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn two_stores_on_one_sqlite_file_see_each_others_endpoint_decisions() {
    // Each store's writer keeps a copy of the endpoints' health; a decision made through the
    // other store (as another process would) must reach it before its next claim.
    let scratch = Scratch::new("two");
    let path = scratch.0.join("relay.db");
    let open = || {
        SqliteStore::builder(&path)
            .endpoint_policy(EndpointPolicy::default())
            .open()
    };
    let (first, second) = (open().await.unwrap(), open().await.unwrap());
    let router = router([flow("a", A, DeliveryOrder::Any)]);
    let endpoint: Endpoint = A.parse().unwrap();
    let ids = admit(&first, &router, "e1", "p-1", Timestamp::now()).await;
    // The first store's writer has read its copy (healthy); the second pauses the endpoint.
    assert_eq!(
        first.endpoints().await.unwrap()[0].state.as_str(),
        "healthy"
    );
    second.pause(&endpoint).await.unwrap().expect("a change");
    assert!(first.claim(10, LEASE).await.unwrap().is_empty());
    admit(&first, &router, "e2", "p-2", Timestamp::now()).await;
    assert!(first.claim(10, LEASE).await.unwrap().is_empty());
    // The second resumes it: the first claims both.
    second.resume(&endpoint).await.unwrap().expect("a change");
    let claims = first.claim(10, LEASE).await.unwrap();
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[0].token.webhook_id, ids[0].as_str());
    // A 410 through the first pauses it for the second.
    let recorded = answer_claim(&first, &claims[0], 410).await;
    assert!(recorded.held);
    assert!(second.claim(10, LEASE).await.unwrap().is_empty());
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_store_with_health_on_claims_what_one_without_it_admitted_to_the_same_file() {
    let scratch = Scratch::new("mixed");
    let path = scratch.0.join("relay.db");
    let off = SqliteStore::open(&path).await.unwrap();
    let on = SqliteStore::builder(&path)
        .endpoint_policy(EndpointPolicy::default())
        .open()
        .await
        .unwrap();
    // Another endpoint paused: the claims go endpoint by endpoint, from the endpoints' rows.
    on.pause(&B.parse().unwrap())
        .await
        .unwrap()
        .expect("paused");
    let ids = admit(
        &off,
        &router([flow("a", A, DeliveryOrder::Any)]),
        "e1",
        "p-1",
        Timestamp::now(),
    )
    .await;
    assert_eq!(
        claimed_ids(&on.claim(10, LEASE).await.unwrap()),
        [ids[0].as_str()]
    );
}

#[tokio::test]
async fn a_paused_endpoint_stays_paused_when_a_lost_claim_sends_a_group_commit_one_by_one() {
    let router = router([flow("a", A, DeliveryOrder::Any)]);
    let endpoint: Endpoint = A.parse().unwrap();
    for (name, store, _scratch) in stores("paused-lost", EndpointPolicy::default()).await {
        for i in 0..3 {
            admit(
                &*store,
                &router,
                &format!("e{i}"),
                &format!("p-{i}"),
                Timestamp::now(),
            )
            .await;
        }
        let claims = store.claim(3, LEASE).await.unwrap();
        assert_eq!(claims.len(), 3, "{name}");
        store.pause(&endpoint).await.unwrap().expect("paused");
        store.release(&claims[1].token).await.unwrap();
        let results = answer_claims_together(&store, &claims, &[204, 204, 204]).await;
        assert!(results[1].is_err(), "{name}");
        assert_eq!(results[0].as_ref().unwrap(), &Default::default(), "{name}");
        assert_eq!(results[2].as_ref().unwrap(), &Default::default(), "{name}");
        let statuses = store.endpoints().await.unwrap();
        assert_eq!(
            (statuses[0].state.as_str(), statuses[0].pending),
            ("paused", 1),
            "{name}"
        );
        // Nothing of it is claimed while it is paused.
        assert!(store.claim(10, LEASE).await.unwrap().is_empty(), "{name}");
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn pause_and_resume_read_the_row_on_a_store_without_endpoint_health() {
    let scratch = Scratch::new("off-pause");
    let path = scratch.0.join("relay.db");
    let (first, second) = (
        SqliteStore::open(&path).await.unwrap(),
        SqliteStore::open(&path).await.unwrap(),
    );
    let endpoint: Endpoint = A.parse().unwrap();
    assert!(first.pause(&endpoint).await.unwrap().is_some());
    assert_eq!(first.pause(&endpoint).await.unwrap(), None);
    // The other store sees the pause, resumes it, and the first sees that.
    assert_eq!(second.pause(&endpoint).await.unwrap(), None);
    assert!(second.resume(&endpoint).await.unwrap().is_some());
    assert_eq!(first.resume(&endpoint).await.unwrap(), None);
    assert!(first.pause(&endpoint).await.unwrap().is_some());
    assert_eq!(first.endpoints().await.unwrap()[0].state.as_str(), "paused");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_replayed_delivery_whose_endpoint_has_no_row_is_claimed_by_a_store_with_health_on() {
    let scratch = Scratch::new("replay-row");
    let path = scratch.0.join("relay.db");
    let ids = {
        let store = SqliteStore::open(&path).await.unwrap();
        let ids = admit(
            &store,
            &router([flow("a", A, DeliveryOrder::Any)]),
            "e1",
            "p-1",
            Timestamp::now(),
        )
        .await;
        let claims = store.claim(1, LEASE).await.unwrap();
        answer_claim(&store, &claims[0], 400).await;
        assert_eq!(store.counts().await.unwrap().dead_lettered, 1);
        ids
    };
    // A file whose endpoint has no row (as an earlier version wrote it).
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        path.display()
    ))
    .await
    .unwrap();
    sqlx::query("DELETE FROM optout_relay_endpoints")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let store = SqliteStore::builder(&path)
        .endpoint_policy(EndpointPolicy::default())
        .open()
        .await
        .unwrap();
    // Another endpoint paused: the claims go endpoint by endpoint, from the endpoints' rows.
    store
        .pause(&B.parse().unwrap())
        .await
        .unwrap()
        .expect("paused");
    assert!(store.replay(&ids[0]).await.unwrap());
    assert_eq!(
        claimed_ids(&store.claim(10, LEASE).await.unwrap()),
        [ids[0].as_str()]
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn successes_not_yet_written_count_after_another_store_wrote_the_file() {
    let scratch = Scratch::new("waiting");
    let path = scratch.0.join("relay.db");
    let open = || {
        SqliteStore::builder(&path)
            .endpoint_policy(EndpointPolicy::default())
            .open()
    };
    let (first, second) = (open().await.unwrap(), open().await.unwrap());
    let router = router([flow("a", A, DeliveryOrder::Any)]);
    for i in 0..30 {
        admit(
            &first,
            &router,
            &format!("e{i}"),
            &format!("p-{i}"),
            Timestamp::now(),
        )
        .await;
    }
    let claims = first.claim(30, LEASE).await.unwrap();
    assert_eq!(claims.len(), 30);
    // 20 successes: the first writes the row, the others wait in the first store's copy.
    for claim in &claims[..20] {
        assert_eq!(answer_claim(&first, claim, 204).await, Default::default());
    }
    // The other store writes the file: the first reads the rows again, its waiting successes
    // counted in them.
    second
        .pause(&B.parse().unwrap())
        .await
        .unwrap()
        .expect("paused");
    // 10 failures: 10 of 30 failed, under 50 %: still healthy. (Were the waiting successes
    // lost, 10 of 11 would open the circuit.)
    for claim in &claims[20..] {
        assert_eq!(answer_claim(&first, claim, 503).await.change, None);
    }
    let statuses = first.endpoints().await.unwrap();
    assert_eq!(statuses[0].endpoint.as_str(), A);
    assert_eq!(statuses[0].state.as_str(), "healthy");
}
