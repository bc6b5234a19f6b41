//! The async worker: routing, building, sending, retrying, shutdown, and carrying on with what
//! a stopped worker left in the store.
#![cfg(feature = "tokio")]

#[cfg(feature = "reqwest")]
mod support;

use std::sync::Arc;
use std::time::Duration;

use optout_relay::delivery::DeadLetterReason;
use optout_relay::delivery::DeliveryState;
use optout_relay::delivery::Outcomes;
use optout_relay::delivery::SubmitError;
#[cfg(feature = "reqwest")]
use optout_relay::delivery::WorkerBuilder;
use optout_relay::jiff::SignedDuration;
use optout_relay::listen::EntryDecision;
use optout_relay::listen::EntryWindow;
use optout_relay::listen::FlowSettings;
use optout_relay::relay::FlowEntry;
use optout_relay::relay::FlowResult;
use optout_relay::relay::Plan;
use optout_relay::relay::Submitted;
use optout_relay::store::{ListQuery, StateFilter};
use optout_relay::testing::{RecordingClient, ScriptedAnswer};
use optout_relay::transport::TransportErrorKind;
#[cfg(feature = "reqwest")]
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::RequestBuildError;
use optout_relay::webhook::WebhookId;
use optout_relay::*;

fn flows() -> Vec<Flow> {
    let file = FlowFile::from_json(
        r#"{"version": 1, "flows": [
        {"id": "crm", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]},
         "webhook": {"url": "https://crm.example.com/optout", "params": [
            {"name": "email", "source": "email"}, {"name": "subscription", "source": "subscription_id"}]}},
        {"id": "warehouse", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe", "email_abuse"]},
         "webhook": {"url": "https://dw.example.com/optout", "encoding": "json", "params": [
            {"name": "email", "source": "email"}, {"name": "kind", "source": "event_kind"},
            {"name": "subscription", "source": "subscription_id", "optional": true},
            {"name": "section", "source": "section_id"}]}}
    ]}"#,
    )
    .unwrap();
    file.flows
}

fn store() -> Arc<VolatileStore> {
    Arc::new(VolatileStore::new())
}

fn router() -> Arc<Router> {
    Arc::new(Router::new(flows(), &Catalog::default()).unwrap())
}

fn profile() -> Profile {
    Profile::new(ProfileId::new("p-1").unwrap()).with_email(Email::new("a+b@example.com").unwrap())
}

fn unsubscribe(id: &str) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new(id).unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .schedule([SignedDuration::from_millis(20)])
        .jitter_percent(0)
        .max_attempts(3)
        .build()
        .unwrap()
}

async fn next(outcomes: &mut Outcomes) -> Outcome {
    tokio::time::timeout(Duration::from_secs(10), outcomes.recv())
        .await
        .expect("an outcome in time")
        .expect("open")
}

/// The pending deliveries in `store`, as sorted (event, flow) pairs.
async fn pending(store: &VolatileStore) -> Vec<(String, String)> {
    let mut flows: Vec<_> = store
        .list(&ListQuery::new(StateFilter::Pending))
        .await
        .unwrap()
        .iter()
        .map(|d| (d.event().to_string(), d.flow().to_string()))
        .collect();
    flows.sort();
    flows
}

fn entered(submitted: &Submitted) -> Vec<(String, String)> {
    submitted
        .flows
        .iter()
        .map(|e| match &e.result {
            FlowResult::Entered { webhook_id } => (e.flow.to_string(), webhook_id.to_string()),
            other => panic!("{} not entered: {other:?}", e.flow),
        })
        .collect()
}

#[tokio::test]
async fn events_are_routed_built_sent_and_reported() {
    let client = RecordingClient::new();
    let store = store();
    let (worker, mut outcomes) = Worker::builder(router(), Arc::new(client.clone()), store.clone())
        .policy(fast_policy())
        .start();
    let submitted = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    let ids = entered(&submitted);
    assert_eq!(
        ids.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        ["crm", "warehouse"]
    );
    assert_eq!(
        submitted.entered().collect::<Vec<_>>(),
        [ids[0].1.as_str(), ids[1].1.as_str()]
    );
    let mut delivered = Vec::new();
    for _ in 0..2 {
        match next(&mut outcomes).await {
            Outcome::Delivered(d) => delivered.push((
                d.flow().to_string(),
                d.webhook_id().as_str().to_owned(),
                d.attempts().len(),
            )),
            other => panic!("{other:?}"),
        }
    }
    delivered.sort();
    assert_eq!(
        delivered,
        [
            ("crm".into(), ids[0].1.clone(), 1),
            ("warehouse".into(), ids[1].1.clone(), 1)
        ]
    );
    let mut sent: Vec<String> = client
        .requests()
        .iter()
        .map(|r| r.uri().to_string())
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            "https://crm.example.com/optout?email=a%2Bb%40example.com&subscription=123456",
            "https://dw.example.com/optout"
        ]
    );

    // A re-delivered copy of the same event enters nothing again.
    let again = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert!(
        again
            .flows
            .iter()
            .all(|e| e.result == FlowResult::Refused(EntryDecision::AlreadyEntered)),
        "{again:?}"
    );
    assert_eq!(again.flows.len(), 2);
    // A Profile without an Email cannot be built for: reported, not entered.
    let no_email = Profile::new(ProfileId::new("p-1").unwrap());
    let report = worker
        .submit(&unsubscribe("evt-2"), &no_email)
        .await
        .unwrap();
    assert!(
        report.flows.iter().all(|e| matches!(
            e.result,
            FlowResult::NotBuilt(RequestBuildError::MissingValue { .. })
        )),
        "{report:?}"
    );
    assert_eq!(report.flows.len(), 2);
    // ... so it can be submitted again once fixed.
    let fixed = worker
        .submit(&unsubscribe("evt-2"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&fixed).len(), 2);
    // The outcome stream says the same, in flow order, before each submit returned: the two
    // re-delivered copies, the two flows not built for, then the two deliveries' ends.
    let mut reported = Vec::new();
    for _ in 0..6 {
        reported.push(match next(&mut outcomes).await {
            Outcome::Refused {
                event,
                flow,
                decision: EntryDecision::AlreadyEntered,
                ..
            } => format!("{event} {flow}: already entered"),
            Outcome::NotBuilt {
                event,
                flow,
                error: RequestBuildError::MissingValue { .. },
                ..
            } => format!("{event} {flow}: not built"),
            Outcome::Delivered(d) => format!("{} delivered", d.event()),
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(
        reported,
        [
            "evt-1 crm: already entered",
            "evt-1 warehouse: already entered",
            "evt-2 crm: not built",
            "evt-2 warehouse: not built",
            "evt-2 delivered",
            "evt-2 delivered",
        ]
    );
    let stopped = worker.shutdown().await;
    assert_eq!(stopped.abandoned, 0);
    // Nothing pending; four entries (two events in two flows), four deliveries delivered.
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.leased,
            counts.delivered,
            counts.dead_lettered,
            counts.entries
        ),
        (0, 0, 4, 0, 4)
    );
}

#[tokio::test]
async fn a_stop_leaves_deliveries_that_wait_for_room_and_those_in_flight_in_the_store() {
    // A client that never answers keeps the single place in flight busy.
    let hanging = client_fn(|_request: http::Request<Vec<u8>>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(http::Response::new(Vec::new()))
    });
    let store = store();
    let (worker, mut outcomes) = Worker::builder(router(), Arc::new(hanging), store.clone())
        .max_in_flight(1)
        .start();
    let stopper = worker.stopper();
    // Each event enters two flows. One place in flight: the first delivery is attempted, the
    // three others wait in the store for room.
    let first = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&first).len(), 2);
    let second = worker
        .submit(&unsubscribe("evt-2"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&second).len(), 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.leased),
        (4, 1),
        "one attempt in flight"
    );
    stopper.stop();
    // Once stopped, new events are refused at once, and nothing of them is recorded.
    let late = worker
        .submit(&unsubscribe("evt-3"), &profile())
        .await
        .unwrap_err();
    assert_eq!(late, SubmitError::Stopped);
    assert_eq!(
        late.to_string(),
        "the worker has stopped; nothing was recorded"
    );
    let stopped = worker.abort().await;
    // The attempt in flight was abandoned and its claim released.
    assert_eq!(stopped.abandoned, 1);
    assert!(outcomes.try_recv().is_none());
    // Nothing was lost: every entered delivery is pending in the store, none under lease, and
    // nothing of evt-3 was recorded.
    let pair = |event: &str| {
        vec![
            (event.to_owned(), "crm".to_owned()),
            (event.to_owned(), "warehouse".to_owned()),
        ]
    };
    assert_eq!(
        pending(&store).await,
        [pair("evt-1"), pair("evt-2")].concat()
    );
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.leased,
            counts.delivered,
            counts.dead_lettered,
            counts.entries
        ),
        (4, 0, 0, 0, 4)
    );
}

#[tokio::test]
async fn a_503_is_retried_and_a_410_dead_lettered() {
    let client = RecordingClient::new()
        .then(ScriptedAnswer::status(503))
        .then(ScriptedAnswer::status(410));
    let router = Arc::new(Router::new(flows().into_iter().take(1), &Catalog::default()).unwrap());
    let store = store();
    let (worker, mut outcomes) = Worker::builder(router, Arc::new(client.clone()), store.clone())
        .policy(fast_policy())
        .start();
    let _ = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    let outcome = next(&mut outcomes).await;
    let Outcome::DeadLettered(d) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(d.attempts().len(), 2);
    assert!(matches!(
        d.state(),
        DeliveryState::DeadLettered {
            reason: DeadLetterReason::Gone,
            ..
        }
    ));
    let gap = d.attempts()[1]
        .started_at
        .duration_since(d.attempts()[0].started_at);
    assert!(
        gap >= SignedDuration::from_millis(20),
        "retried after {gap:?}"
    );
    // The store holds the dead letter exactly as reported.
    assert_eq!(store.get(d.webhook_id()).await.unwrap().as_ref(), Some(&d));
    let _ = worker
        .submit(&unsubscribe("evt-2"), &profile())
        .await
        .unwrap();
    assert!(matches!(next(&mut outcomes).await, Outcome::Delivered(_)));
    assert_eq!(client.requests().len(), 3);
    let _ = worker.shutdown().await;
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.delivered, counts.dead_lettered),
        (0, 1, 1)
    );
}

#[tokio::test]
async fn shutdown_leaves_pending_deliveries_in_the_store_for_the_next_worker() {
    let slow = RetryPolicy::builder()
        .schedule([SignedDuration::from_hours(1)])
        .jitter_percent(0)
        .build()
        .unwrap();
    let failing =
        RecordingClient::new().otherwise(ScriptedAnswer::error(TransportErrorKind::Connect));
    let store = store();
    let (worker, mut outcomes) =
        Worker::builder(router(), Arc::new(failing.clone()), store.clone())
            .policy(slow.clone())
            .start();
    let submitted = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    let mut ids: Vec<String> = entered(&submitted).into_iter().map(|(_, id)| id).collect();
    ids.sort();
    // Wait until both first attempts have failed.
    while failing.requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped = worker.shutdown().await;
    assert_eq!(stopped.abandoned, 0);
    assert!(outcomes.try_recv().is_none(), "nothing ended");
    let left = store
        .list(&ListQuery::new(StateFilter::Pending))
        .await
        .unwrap();
    assert_eq!(
        left.iter()
            .map(|d| d.webhook_id().as_str())
            .collect::<Vec<_>>(),
        ids
    );
    for d in &left {
        assert_eq!(d.attempts().len(), 1);
        assert!(d.is_pending());
        // Due in an hour, after the failed first attempt.
        let due = d.next_attempt_at().unwrap();
        assert_eq!(
            due,
            d.attempts()[0]
                .started_at
                .checked_add(d.attempts()[0].duration)
                .unwrap()
                .checked_add(SignedDuration::from_hours(1))
                .unwrap()
        );
        // A pending delivery is still plain serde data.
        let saved = serde_json::to_string(d).unwrap();
        assert_eq!(&serde_json::from_str::<Delivery>(&saved).unwrap(), d);
    }
    assert_eq!(store.counts().await.unwrap().leased, 0);

    // A new worker on the same store carries on with them.
    let healthy = RecordingClient::new();
    let (worker, mut outcomes) =
        Worker::builder(router(), Arc::new(healthy.clone()), store.clone())
            .policy(fast_policy())
            .start();
    // A re-delivered event is still recognised: the store holds the entries.
    let again = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert_eq!(
        again.flows.iter().map(|e| &e.result).collect::<Vec<_>>(),
        [&FlowResult::Refused(EntryDecision::AlreadyEntered); 2]
    );
    // Due in an hour: nothing is sent yet; abort leaves them untouched. Only the two refusals
    // were reported.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(healthy.requests().is_empty());
    let stopped = worker.abort().await;
    assert_eq!(stopped.abandoned, 0);
    for flow in ["crm", "warehouse"] {
        match outcomes.try_recv() {
            Some(Outcome::Refused {
                event,
                flow: refused,
                decision: EntryDecision::AlreadyEntered,
                ..
            }) => assert_eq!((event.as_str(), refused.as_str()), ("evt-1", flow)),
            other => panic!("{other:?}"),
        }
    }
    assert!(outcomes.try_recv().is_none());
    assert_eq!(
        store
            .list(&ListQuery::new(StateFilter::Pending))
            .await
            .unwrap(),
        left
    );
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.leased, counts.entries), (2, 0, 2));
}

#[tokio::test]
async fn deliveries_already_in_the_store_are_sent_with_their_webhook_id() {
    let (flow, event) = (FlowId::new("crm").unwrap(), EventId::new("e").unwrap());
    let id = WebhookId::derive(&flow, &event);
    let request = http::Request::post("https://crm.example.com/optout")
        .header("webhook-id", id.as_str())
        .body(Vec::new())
        .unwrap();
    let now = Timestamp::now();
    let delivery = Delivery::new(id.clone(), flow, event, request, now);
    // Admitted before any worker runs (by another process, or a worker that stopped).
    let store = store();
    let plan = Plan {
        event: EventId::new("e").unwrap(),
        profile: ProfileId::new("p-1").unwrap(),
        at: now,
        candidates: vec![relay::Candidate {
            flow: FlowId::new("crm").unwrap(),
            limit: EntryLimit::Unlimited,
            order: optout_relay::listen::DeliveryOrder::Any,
            delivery,
        }],
        not_built: Vec::new(),
    };
    let admitted = store.admit(plan).await.unwrap();
    assert_eq!(admitted.entered().collect::<Vec<_>>(), [id.as_str()]);
    let client = RecordingClient::new();
    let (worker, mut outcomes) =
        Worker::builder(router(), Arc::new(client.clone()), store.clone()).start();
    let Outcome::Delivered(d) = next(&mut outcomes).await else {
        panic!()
    };
    assert_eq!(d.webhook_id(), &id);
    assert_eq!(client.requests().len(), 1);
    assert_eq!(client.requests()[0].headers()["webhook-id"], id.as_str());
    let _ = worker.shutdown().await;
    assert_eq!(store.counts().await.unwrap().delivered, 1);
}

#[tokio::test]
async fn abort_releases_attempts_in_flight() {
    let hanging = client_fn(|_request: http::Request<Vec<u8>>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(http::Response::new(Vec::new()))
    });
    let store = store();
    let (worker, mut outcomes) =
        Worker::builder(router(), Arc::new(hanging), store.clone()).start();
    let submitted = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&submitted).len(), 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.counts().await.unwrap().leased, 2);
    let stopped = worker.abort().await;
    assert_eq!(stopped.abandoned, 2);
    let left = store
        .list(&ListQuery::new(StateFilter::Pending))
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|d| d.attempts().is_empty() && d.is_pending())
    );
    // Released, not abandoned under lease: due again at once for the next worker.
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.leased), (2, 0));
    assert!(outcomes.try_recv().is_none());
}

#[tokio::test]
async fn in_flight_attempts_are_bounded() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, s) = (gate.clone(), seen.clone());
    let client = client_fn(move |_request: http::Request<Vec<u8>>| {
        let (g, s) = (g.clone(), s.clone());
        async move {
            s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _permit = g.acquire().await;
            Ok(http::Response::new(Vec::new()))
        }
    });
    let only_crm = Arc::new(Router::new(flows().into_iter().take(1), &Catalog::default()).unwrap());
    let store = store();
    let (worker, mut outcomes) = Worker::builder(only_crm, Arc::new(client), store.clone())
        .max_in_flight(3)
        .start();
    let worker = Arc::new(worker);
    let submitter = {
        let worker = worker.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                let _ = worker
                    .submit(&unsubscribe(&format!("evt-{i}")), &profile())
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "only 3 attempts in flight"
    );
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.leased), (10, 3));
    gate.add_permits(100);
    for _ in 0..10 {
        assert!(matches!(next(&mut outcomes).await, Outcome::Delivered(_)));
    }
    submitter.await.unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 10);
}

#[tokio::test]
async fn a_bounded_outcome_channel_holds_the_worker_back_until_the_host_reads() {
    let only_crm = Arc::new(Router::new(flows().into_iter().take(1), &Catalog::default()).unwrap());
    let client = RecordingClient::new();
    let store = store();
    let (worker, mut outcomes) = Worker::builder(only_crm, Arc::new(client.clone()), store.clone())
        .max_in_flight(1)
        .outcome_capacity(2)
        .start();
    let worker = Arc::new(worker);
    let submitting = {
        let worker = Arc::clone(&worker);
        tokio::spawn(async move {
            for i in 0..10 {
                let _ = worker
                    .submit(&unsubscribe(&format!("evt-{i}")), &profile())
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Submitting never waits for the worker: the events are in the store.
    assert!(submitting.is_finished());
    // Two outcomes wait, the one place in flight holds the third (recorded as delivered, its
    // outcome not yet taken), and seven deliveries wait in the store: nothing more moves until
    // the host reads.
    assert_eq!(client.requests().len(), 3);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.delivered, counts.pending), (3, 7));
    for _ in 0..10 {
        assert!(matches!(next(&mut outcomes).await, Outcome::Delivered(_)));
    }
    submitting.await.unwrap();
    let worker = Arc::try_unwrap(worker).unwrap();
    assert_eq!(worker.shutdown().await.abandoned, 0);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.delivered, counts.pending), (10, 0));
    assert_eq!(client.requests().len(), 10);
}

#[tokio::test]
async fn entry_limits_are_decided_by_the_store() {
    let mut flow = flows().remove(0);
    flow.settings = FlowSettings::with_entry_limit(EntryLimit::at_most(1).unwrap());
    let router = Arc::new(Router::new([flow], &Catalog::default()).unwrap());
    let client = RecordingClient::new();
    let store = store();
    let (worker, mut outcomes) =
        Worker::builder(router, Arc::new(client.clone()), store.clone()).start();
    let first = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&first).len(), 1);
    let second = worker
        .submit(&unsubscribe("evt-2"), &profile())
        .await
        .unwrap();
    assert_eq!(
        second.flows,
        [FlowEntry {
            flow: FlowId::new("crm").unwrap(),
            result: FlowResult::Refused(EntryDecision::LimitReached {
                limit: EntryLimit::at_most(1).unwrap(),
                entries: 1
            }),
        }]
    );
    // Another Profile enters.
    let other = OptOutEvent::email_unsubscribe(
        EventId::new("evt-3").unwrap(),
        ProfileId::new("p-2").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    );
    let p2 = Profile::new(ProfileId::new("p-2").unwrap())
        .with_email(Email::new("c@example.com").unwrap());
    assert_eq!(entered(&worker.submit(&other, &p2).await.unwrap()).len(), 1);
    // Two deliveries end, and the refusal is in the stream too (in whatever order the
    // attempts and the submits interleave).
    let mut delivered = 0;
    let mut refused = Vec::new();
    for _ in 0..3 {
        match next(&mut outcomes).await {
            Outcome::Delivered(_) => delivered += 1,
            Outcome::Refused {
                event,
                profile,
                flow,
                decision,
                ..
            } => refused.push((event, profile, flow, decision)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delivered, 2);
    assert_eq!(
        refused,
        [(
            EventId::new("evt-2").unwrap(),
            ProfileId::new("p-1").unwrap(),
            FlowId::new("crm").unwrap(),
            EntryDecision::LimitReached {
                limit: EntryLimit::at_most(1).unwrap(),
                entries: 1
            }
        )]
    );
    let _ = worker.shutdown().await;
    assert_eq!(client.requests().len(), 2);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.delivered, counts.entries), (2, 2));
}

/// `submit` never waits on the outcome channel: with room for one outcome and nobody reading,
/// re-delivered copies are submitted at once all the same, and every outcome is read later.
#[tokio::test]
async fn submit_never_waits_on_a_full_outcome_channel() {
    let router = Arc::new(Router::new([flows().remove(0)], &Catalog::default()).unwrap());
    let client = RecordingClient::new();
    let (worker, mut outcomes) = Worker::builder(router, Arc::new(client.clone()), store())
        .outcome_capacity(1)
        .start();
    let first = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&first).len(), 1);
    for _ in 0..5 {
        let again = tokio::time::timeout(
            Duration::from_secs(5),
            worker.submit(&unsubscribe("evt-1"), &profile()),
        )
        .await
        .expect("submit did not wait for the outcome channel")
        .unwrap();
        assert_eq!(
            again.flows[0].result,
            FlowResult::Refused(EntryDecision::AlreadyEntered)
        );
    }
    let (mut delivered, mut refused) = (0, 0);
    for _ in 0..6 {
        match next(&mut outcomes).await {
            Outcome::Delivered(_) => delivered += 1,
            Outcome::Refused {
                decision: EntryDecision::AlreadyEntered,
                ..
            } => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((delivered, refused), (1, 5));
    let _ = worker.shutdown().await;
    assert!(outcomes.try_recv().is_none());
}

/// A clock the test moves by hand, in milliseconds since the Unix epoch.
#[derive(Clone)]
struct HandClock(Arc<std::sync::atomic::AtomicI64>);

impl HandClock {
    fn at(at: Timestamp) -> Self {
        Self(Arc::new(std::sync::atomic::AtomicI64::new(
            at.as_millisecond(),
        )))
    }

    fn set(&self, at: Timestamp) {
        self.0
            .store(at.as_millisecond(), std::sync::atomic::Ordering::SeqCst);
    }

    fn reader(&self) -> impl Fn() -> Timestamp + Send + Sync + 'static {
        let millis = Arc::clone(&self.0);
        move || {
            Timestamp::from_millisecond(millis.load(std::sync::atomic::Ordering::SeqCst)).unwrap()
        }
    }
}

/// `outcome` is the refusal of `event` (of p-1, in flow crm) for `decision`.
fn assert_refused(outcome: Outcome, event: &str, decision: EntryDecision) {
    match outcome {
        Outcome::Refused {
            event: e,
            profile,
            flow,
            decision: d,
            ..
        } => assert_eq!(
            (e.as_str(), profile.as_str(), flow.as_str(), d),
            (event, "p-1", "crm", decision)
        ),
        other => panic!("{other:?}"),
    }
}

/// A windowed entry limit through the worker, at the times of the worker's clock: at most one
/// entry within 7 days. Every decision reaches the outcome stream, refusals included.
async fn windowed_limit_on_the_worker_clock(
    store: Arc<dyn optout_relay::DeliveryStore>,
    clock: HandClock,
    start: Timestamp,
) {
    let window: EntryWindow = "7 days".parse().unwrap();
    let limit = EntryLimit::at_most_within(1, window).unwrap();
    let mut flow = flows().remove(0);
    flow.settings = FlowSettings::with_entry_limit(limit);
    let router = Arc::new(Router::new([flow], &Catalog::default()).unwrap());
    let client = RecordingClient::new();
    let (worker, mut outcomes) = Worker::builder(router, Arc::new(client.clone()), store)
        .clock(clock.reader())
        .start();
    let crm = FlowId::new("crm").unwrap();
    let p1 = ProfileId::new("p-1").unwrap();

    // Day 0: the first opt-out enters, and its delivery is made and sent at the clock's time.
    clock.set(start);
    let first = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&first).len(), 1);
    let Outcome::Delivered(delivery) = next(&mut outcomes).await else {
        panic!("delivered")
    };
    assert_eq!(
        (delivery.created_at(), delivery.attempts()[0].started_at),
        (start, start)
    );

    // One second before the 7 days are over: the limit refuses the next one.
    let almost = start + SignedDuration::from_hours(7 * 24) - SignedDuration::from_secs(1);
    clock.set(almost);
    let second = worker
        .submit(&unsubscribe("evt-2"), &profile())
        .await
        .unwrap();
    let reached = EntryDecision::LimitReached { limit, entries: 1 };
    assert_eq!(
        second.flows,
        [FlowEntry {
            flow: crm.clone(),
            result: FlowResult::Refused(reached),
        }]
    );
    assert_refused(next(&mut outcomes).await, "evt-2", reached);

    // 7 days to the millisecond after the first entry, it is out of the window.
    let week = start + SignedDuration::from_hours(7 * 24);
    clock.set(week);
    let third = worker
        .submit(&unsubscribe("evt-3"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&third)[0].0, "crm");
    let Outcome::Delivered(delivery) = next(&mut outcomes).await else {
        panic!("delivered")
    };
    assert_eq!(
        (delivery.event().as_str(), delivery.created_at()),
        ("evt-3", week)
    );

    // A re-delivered copy, and a Profile without the Email the flow sends.
    let again = worker
        .submit(&unsubscribe("evt-3"), &profile())
        .await
        .unwrap();
    assert_eq!(
        again.flows[0].result,
        FlowResult::Refused(EntryDecision::AlreadyEntered)
    );
    assert_refused(
        next(&mut outcomes).await,
        "evt-3",
        EntryDecision::AlreadyEntered,
    );
    let without_email = Profile::new(p1.clone());
    let not_built = worker
        .submit(&unsubscribe("evt-4"), &without_email)
        .await
        .unwrap();
    let FlowResult::NotBuilt(error) = &not_built.flows[0].result else {
        panic!("{not_built:?}")
    };
    match next(&mut outcomes).await {
        Outcome::NotBuilt {
            event,
            profile,
            flow,
            error: reported,
            ..
        } => {
            assert_eq!(
                (event.as_str(), &profile, &flow, &reported),
                ("evt-4", &p1, &crm, error)
            );
            assert_eq!(
                reported.to_string(),
                "parameter `email` (source email) has no value: the Profile has no Email; mark the \
                 parameter optional to leave it out instead"
            );
        }
        other => panic!("{other:?}"),
    }
    let _ = worker.shutdown().await;
    assert_eq!(client.requests().len(), 2);
    assert!(outcomes.try_recv().is_none(), "nothing else was reported");
}

#[tokio::test]
async fn windowed_limits_follow_the_worker_clock_on_the_volatile_store() {
    let start: Timestamp = "2026-01-05T08:00:00Z".parse().unwrap();
    let clock = HandClock::at(start);
    let store = Arc::new(VolatileStore::with_clock(clock.reader()));
    windowed_limit_on_the_worker_clock(store, clock, start).await;
}

/// The same on SQLite, whose due times follow the system clock: the worker's clock is set in
/// the past, so that everything it makes is due at once.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn windowed_limits_follow_the_worker_clock_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("optout-window-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("relay.db");
    let _ = std::fs::remove_file(&path);
    let store = Arc::new(optout_relay::SqliteStore::open(&path).await.unwrap());
    let start = Timestamp::from_second(Timestamp::now().as_second() - 30 * 86_400).unwrap();
    windowed_limit_on_the_worker_clock(store, HandClock::at(start), start).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The outcome paths against a real receiver on 127.0.0.1: a callback that panics, a host that
/// stops reading the channel. Either way every opt-out is delivered and recorded, and
/// `shutdown()` returns.
#[cfg(feature = "reqwest")]
mod outcome_paths {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use optout_relay::ReqwestClient;
    use support::{Answer, TestServer};

    use super::*;

    const EVENTS: usize = 8;

    /// One flow sending to `server`, a reqwest client allowed to reach 127.0.0.1.
    fn loopback(server: &TestServer) -> (Arc<Router>, Arc<ReqwestClient>) {
        let flow = Flow::new(
            FlowId::new("crm").unwrap(),
            SectionId::new("sec-1").unwrap(),
            ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
            WebhookNode::builder(server.url("/optout"))
                .param("email", ParamSource::Email)
                .build()
                .unwrap(),
        );
        let router = Arc::new(Router::new([flow], &Catalog::default()).unwrap());
        let client = ReqwestClient::builder()
            .destination_policy(DestinationPolicy::default().allow_loopback())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        (router, Arc::new(client))
    }

    fn builder(server: &TestServer, store: &Arc<VolatileStore>) -> WorkerBuilder {
        let (router, client) = loopback(server);
        Worker::builder(router, client, store.clone()).policy(fast_policy())
    }

    /// Submits evt-0..evt-7; returns their webhook ids.
    async fn submit_all(worker: &Worker) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for i in 0..EVENTS {
            let submitted = worker
                .submit(&unsubscribe(&format!("evt-{i}")), &profile())
                .await
                .unwrap();
            for (_, id) in entered(&submitted) {
                assert!(ids.insert(id));
            }
        }
        assert_eq!(ids.len(), EVENTS);
        ids
    }

    /// Waits until `done` holds (or ten seconds have passed).
    async fn until(done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// What the receiver got, by webhook id, and what the store holds delivered.
    async fn delivered_everywhere(
        server: &TestServer,
        store: &VolatileStore,
    ) -> (Vec<String>, Vec<String>) {
        let received: Vec<String> = server
            .received()
            .iter()
            .map(|r| r.header("webhook-id").unwrap().to_owned())
            .collect();
        let mut received = received;
        received.sort();
        let stored = store
            .list(&ListQuery::new(StateFilter::Delivered))
            .await
            .unwrap()
            .iter()
            .map(|d| d.webhook_id().as_str().to_owned())
            .collect();
        (received, stored)
    }

    async fn everything_delivered_once(
        server: &TestServer,
        store: &VolatileStore,
        ids: &BTreeSet<String>,
    ) {
        let ids: Vec<String> = ids.iter().cloned().collect();
        let (received, stored) = delivered_everywhere(server, store).await;
        assert_eq!(received, ids, "each delivered once to the receiver");
        assert_eq!(stored, ids, "each recorded as delivered");
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (
                counts.pending,
                counts.leased,
                counts.delivered,
                counts.dead_lettered,
                counts.entries
            ),
            (0, 0, EVENTS as u64, 0, EVENTS as u64)
        );
    }

    /// A worker whose callback panics whenever `panics(call number)` says so.
    async fn with_a_panicking_callback(panics: fn(usize) -> bool) {
        let server = TestServer::start([], Answer::status(204)).await;
        let store = Arc::new(VolatileStore::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let reported = Arc::new(Mutex::new(Vec::new()));
        let worker = {
            let (calls, reported) = (calls.clone(), reported.clone());
            builder(&server, &store).start_with_callback(move |outcome| {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                let Outcome::Delivered(delivery) = outcome else {
                    panic!("not delivered: {outcome:?}")
                };
                reported
                    .lock()
                    .unwrap()
                    .push(delivery.webhook_id().as_str().to_owned());
                assert!(!panics(call), "the host's callback fails on call {call}");
            })
        };
        let ids = submit_all(&worker).await;
        until(|| calls.load(Ordering::SeqCst) >= EVENTS).await;
        let stopped = tokio::time::timeout(Duration::from_secs(10), worker.shutdown())
            .await
            .expect("shutdown returns");
        assert_eq!(stopped.abandoned, 0);
        // The callback saw every outcome once, including those after it panicked.
        assert_eq!(calls.load(Ordering::SeqCst), EVENTS);
        let mut reported = reported.lock().unwrap().clone();
        reported.sort();
        assert_eq!(reported, ids.iter().cloned().collect::<Vec<_>>());
        everything_delivered_once(&server, &store, &ids).await;
    }

    #[tokio::test]
    async fn a_callback_that_panics_once_loses_nothing_and_shutdown_returns() {
        with_a_panicking_callback(|call| call == 0).await;
    }

    #[tokio::test]
    async fn a_callback_that_always_panics_loses_nothing_and_shutdown_returns() {
        with_a_panicking_callback(|_| true).await;
    }

    #[tokio::test]
    async fn a_host_that_drops_the_outcome_channel_loses_nothing() {
        let server = TestServer::start([], Answer::status(204)).await;
        let store = Arc::new(VolatileStore::new());
        let (worker, outcomes) = builder(&server, &store).start();
        drop(outcomes);
        let ids = submit_all(&worker).await;
        until(|| server.received().len() >= EVENTS).await;
        let stopped = tokio::time::timeout(Duration::from_secs(10), worker.shutdown())
            .await
            .expect("shutdown returns");
        assert_eq!(stopped.abandoned, 0);
        everything_delivered_once(&server, &store, &ids).await;
    }

    #[tokio::test]
    async fn a_host_that_stops_reading_the_outcome_channel_loses_nothing() {
        for capacity in [None, Some(1)] {
            let server = TestServer::start([], Answer::status(204)).await;
            let store = Arc::new(VolatileStore::new());
            let builder = builder(&server, &store);
            let builder = match capacity {
                Some(capacity) => builder.outcome_capacity(capacity),
                None => builder,
            };
            // The host keeps the channel open and never reads it.
            let (worker, mut outcomes) = builder.start();
            let ids = submit_all(&worker).await;
            let recorded = || async { store.counts().await.unwrap().delivered };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while recorded().await < EVENTS as u64 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let stopped = tokio::time::timeout(Duration::from_secs(10), worker.shutdown())
                .await
                .unwrap_or_else(|_| panic!("shutdown returns (capacity {capacity:?})"));
            assert_eq!(stopped.abandoned, 0);
            everything_delivered_once(&server, &store, &ids).await;
            // What the channel still holds is readable after the stop: every outcome when
            // unbounded; with room for one, the one it had room for (the rest are in the store).
            let mut read = Vec::new();
            while let Some(outcome) = outcomes.recv().await {
                let Outcome::Delivered(delivery) = outcome else {
                    panic!("{outcome:?}")
                };
                read.push(delivery.webhook_id().as_str().to_owned());
            }
            assert_eq!(read.len(), capacity.unwrap_or(EVENTS), "{capacity:?}");
            assert!(read.iter().all(|id| ids.contains(id)));
        }
    }
}
