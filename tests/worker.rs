//! The async worker: routing, building, sending, retrying, shutdown and resume.
#![cfg(feature = "tokio")]

use std::sync::Arc;
use std::time::Duration;

use optout_relay::jiff::SignedDuration;
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

fn entered(submitted: &Submitted) -> Vec<(String, String)> {
    submitted
        .flows
        .iter()
        .map(|e| match &e.result {
            FlowResult::Entered { webhook_id } => (e.flow.to_string(), webhook_id.clone()),
            other => panic!("{} not entered: {other:?}", e.flow),
        })
        .collect()
}

#[tokio::test]
async fn events_are_routed_built_sent_and_reported() {
    let client = RecordingClient::new();
    let (worker, mut outcomes) = Worker::builder(router(), Arc::new(client.clone()))
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
    let mut delivered = Vec::new();
    for _ in 0..2 {
        match next(&mut outcomes).await {
            Outcome::Delivered(d) => delivered.push((
                d.flow().to_string(),
                d.webhook_id().to_owned(),
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
    // ... so it can be submitted again once fixed.
    let fixed = worker
        .submit(&unsubscribe("evt-2"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&fixed).len(), 2);
    for _ in 0..2 {
        assert!(matches!(next(&mut outcomes).await, Outcome::Delivered(_)));
    }
    let stopped = worker.shutdown().await;
    assert!(stopped.pending.is_empty());
    assert_eq!(stopped.ledger.len(), 4);
}

#[tokio::test]
async fn a_stop_hands_back_deliveries_that_wait_for_room_and_those_in_flight() {
    // A client that never answers keeps the single sender busy.
    let hanging = client_fn(|_request: http::Request<Vec<u8>>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(http::Response::new(Vec::new()))
    });
    let (worker, mut outcomes) = Worker::builder(router(), Arc::new(hanging))
        .max_in_flight(1)
        .start();
    let worker = Arc::new(worker);
    let stopper = worker.stopper();
    // Each event enters two flows. One place in flight and one in the ready queue: the first
    // event fits, the second waits for room.
    let first = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&first).len(), 2);
    let submitting = {
        let worker = Arc::clone(&worker);
        tokio::spawn(async move { worker.submit(&unsubscribe("evt-2"), &profile()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!submitting.is_finished(), "submit waits for room");
    stopper.stop();
    let refused = submitting.await.unwrap().unwrap_err();
    let flows = |pending: &[Delivery]| -> Vec<(String, String)> {
        let mut flows: Vec<_> = pending
            .iter()
            .map(|d| (d.event().to_string(), d.flow().to_string()))
            .collect();
        flows.sort();
        flows
    };
    let pair = |event: &str| {
        vec![
            (event.to_owned(), "crm".to_owned()),
            (event.to_owned(), "warehouse".to_owned()),
        ]
    };
    assert_eq!(flows(&refused.pending), pair("evt-2"));
    // Once stopped, new events are handed back at once, with the deliveries made for them.
    let late = worker
        .submit(&unsubscribe("evt-3"), &profile())
        .await
        .unwrap_err();
    assert_eq!(flows(&late.pending), pair("evt-3"));
    assert_eq!(
        late.to_string(),
        "the worker has stopped (2 deliveries handed back)"
    );
    let worker = Arc::try_unwrap(worker).unwrap();
    let stopped = worker.abort().await;
    // The attempt in flight and the delivery in the ready queue are handed back too.
    assert_eq!(flows(&stopped.pending), pair("evt-1"));
    assert!(outcomes.try_recv().is_none());
    // Nothing was lost: every entered delivery is in one of the three hand-backs.
    assert_eq!(stopped.ledger.len(), 6);
}

#[tokio::test]
async fn a_503_is_retried_and_a_410_dead_lettered() {
    let client = RecordingClient::new()
        .then(ScriptedAnswer::status(503))
        .then(ScriptedAnswer::status(410));
    let router = Arc::new(Router::new(flows().into_iter().take(1), &Catalog::default()).unwrap());
    let (worker, mut outcomes) = Worker::builder(router, Arc::new(client.clone()))
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
    let _ = worker
        .submit(&unsubscribe("evt-2"), &profile())
        .await
        .unwrap();
    assert!(matches!(next(&mut outcomes).await, Outcome::Delivered(_)));
    assert_eq!(client.requests().len(), 3);
    let _ = worker.shutdown().await;
}

#[tokio::test]
async fn shutdown_hands_back_pending_deliveries_that_resume_elsewhere() {
    let slow = RetryPolicy::builder()
        .schedule([SignedDuration::from_hours(1)])
        .jitter_percent(0)
        .build()
        .unwrap();
    let failing =
        RecordingClient::new().otherwise(ScriptedAnswer::error(TransportErrorKind::Connect));
    let (worker, mut outcomes) = Worker::builder(router(), Arc::new(failing.clone()))
        .policy(slow.clone())
        .start();
    let submitted = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    let ids: Vec<String> = entered(&submitted).into_iter().map(|(_, id)| id).collect();
    // Wait until both first attempts have failed.
    while failing.requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped = worker.shutdown().await;
    assert!(outcomes.try_recv().is_none(), "nothing ended");
    assert_eq!(stopped.pending.len(), 2);
    for d in &stopped.pending {
        assert!(ids.contains(&d.webhook_id().to_owned()));
        assert_eq!(d.attempts().len(), 1);
        assert!(d.is_pending());
    }
    // The pending state survives serialization and a new worker finishes it.
    let saved = serde_json::to_string(&stopped.pending).unwrap();
    let restored: Vec<Delivery> = serde_json::from_str(&saved).unwrap();
    let now_due: Vec<Delivery> = restored;
    let healthy = RecordingClient::new();
    let (worker, mut outcomes) = Worker::builder(router(), Arc::new(healthy.clone()))
        .policy(fast_policy())
        .ledger(stopped.ledger)
        .resume(now_due)
        .start();
    // Due in an hour: nothing is sent yet; abort hands them back untouched.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(healthy.requests().is_empty());
    let stopped = worker.abort().await;
    assert_eq!(stopped.pending.len(), 2);
    assert!(outcomes.try_recv().is_none());
    // A re-delivered event is still recognised by the handed-back ledger.
    let mut ledger = stopped.ledger;
    let flow = FlowId::new("crm").unwrap();
    let request = EntryRequest {
        flow: &flow,
        profile: &ProfileId::new("p-1").unwrap(),
        event: &EventId::new("evt-1").unwrap(),
    };
    assert_eq!(
        ledger.try_enter(request, EntryLimit::Unlimited, Timestamp::now()),
        EntryDecision::AlreadyEntered
    );
}

#[tokio::test]
async fn resumed_deliveries_that_are_due_are_sent_with_the_same_webhook_id() {
    let request = http::Request::post("https://crm.example.com/optout")
        .header("webhook-id", "msg_x")
        .body(Vec::new())
        .unwrap();
    let delivery = Delivery::new(
        "msg_x",
        FlowId::new("crm").unwrap(),
        EventId::new("e").unwrap(),
        request,
        Timestamp::now(),
    );
    let client = RecordingClient::new();
    let (worker, mut outcomes) = Worker::builder(router(), Arc::new(client.clone()))
        .resume([delivery])
        .start();
    let Outcome::Delivered(d) = next(&mut outcomes).await else {
        panic!()
    };
    assert_eq!(d.webhook_id(), "msg_x");
    assert_eq!(client.requests()[0].headers()["webhook-id"], "msg_x");
    let _ = worker.shutdown().await;
}

#[tokio::test]
async fn abort_hands_back_attempts_in_flight() {
    let hanging = client_fn(|_request: http::Request<Vec<u8>>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(http::Response::new(Vec::new()))
    });
    let (worker, mut outcomes) = Worker::builder(router(), Arc::new(hanging)).start();
    let submitted = worker
        .submit(&unsubscribe("evt-1"), &profile())
        .await
        .unwrap();
    assert_eq!(entered(&submitted).len(), 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped = worker.abort().await;
    assert_eq!(stopped.pending.len(), 2);
    assert!(
        stopped
            .pending
            .iter()
            .all(|d| d.attempts().is_empty() && d.is_pending())
    );
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
    let (worker, mut outcomes) = Worker::builder(only_crm, Arc::new(client))
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
    let (worker, mut outcomes) = Worker::builder(only_crm, Arc::new(RecordingClient::new()))
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
    // Two outcomes wait, one sender holds the third, one delivery waits in the ready queue,
    // and the submitter waits for room: nothing more moves until the host reads.
    assert!(!submitting.is_finished());
    for _ in 0..10 {
        assert!(matches!(next(&mut outcomes).await, Outcome::Delivered(_)));
    }
    submitting.await.unwrap();
    let worker = Arc::try_unwrap(worker).unwrap();
    assert!(worker.shutdown().await.pending.is_empty());
}
