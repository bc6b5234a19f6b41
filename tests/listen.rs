//! Listen nodes, flows, entry limits, the router and the flow lints.

use optout_relay::explain::ActivityMatch;
use optout_relay::explain::Explanation;
use optout_relay::explain::Rejection;
use optout_relay::explain::SubscriptionMatch;
use optout_relay::explain::Why;
use optout_relay::lint::Diagnostic;
use optout_relay::lint::Severity;
use optout_relay::lint::lint_flows;
use optout_relay::listen::EntryDecision;
use optout_relay::listen::EntryWindow;
use optout_relay::listen::FlowFileError;
use optout_relay::listen::FlowFileProblem;
use optout_relay::listen::FlowSettings;
use optout_relay::listen::FoundKind;
use optout_relay::listen::InMemoryLedger;
use optout_relay::listen::ListenError;
use optout_relay::listen::RouterError;
use optout_relay::listen::Routing;
use optout_relay::listen::WindowUnit;
use optout_relay::model::ActivityId;
use optout_relay::model::OptOutKind;
use optout_relay::webhook::ParamSource;
use optout_relay::*;
use serde_json::json;

fn sub(id: &str) -> SubscriptionId {
    SubscriptionId::new(id).unwrap()
}
fn section(id: &str) -> SectionId {
    SectionId::new(id).unwrap()
}
fn flow_id(id: &str) -> FlowId {
    FlowId::new(id).unwrap()
}
fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}
/// A Webhook node that sends what a receiver needs for every kind `listen` takes, so that it
/// raises no webhook lint of its own.
fn webhook_for(listen: &ListenNode, url: &str) -> WebhookNode {
    let takes = |k| listen.takes_kind(k);
    let mut node = WebhookNode::builder(url);
    if takes(EventKind::EmailUnsubscribe) || takes(EventKind::EmailAbuse) {
        node = node.param("email", ParamSource::Email);
    }
    if takes(EventKind::SmsUnsubscribe) {
        node = node.param("mobile", ParamSource::Mobile);
    }
    if takes(EventKind::EmailUnsubscribe) || takes(EventKind::SmsUnsubscribe) {
        node = if takes(EventKind::EmailAbuse) {
            node.optional_param("subscription", ParamSource::SubscriptionId)
        } else {
            node.param("subscription", ParamSource::SubscriptionId)
        };
    }
    if takes(EventKind::EmailAbuse) {
        node = node.param("section", ParamSource::SectionId);
    }
    if listen.kinds().len() > 1 {
        node = node.param("kind", ParamSource::EventKind);
    }
    node.build().unwrap()
}

/// `sec-1`: folder news (111, 222), folder sms (333). `sec-2`: folder other (999).
fn catalog() -> Catalog {
    Catalog::new([
        Section::new(
            section("sec-1"),
            [
                Folder::new(FolderId::new("news").unwrap(), [sub("111"), sub("222")]),
                Folder::new(FolderId::new("sms").unwrap(), [sub("333")]),
            ],
        )
        .unwrap(),
        Section::new(
            section("sec-2"),
            [Folder::new(FolderId::new("other").unwrap(), [sub("999")])],
        )
        .unwrap(),
    ])
    .unwrap()
}

fn flow(id: &str, listen: ListenNode) -> Flow {
    flow_to(id, "sec-1", listen, &format!("https://example.com/{id}"))
}

fn flow_to(id: &str, in_section: &str, listen: ListenNode, url: &str) -> Flow {
    let webhook = webhook_for(&listen, url);
    Flow::new(flow_id(id), section(in_section), listen, webhook)
}

fn event(id: &str, kind: EventKind, subscription: Option<&str>) -> OptOutEvent {
    let kind = match (kind, subscription) {
        (EventKind::EmailUnsubscribe, Some(s)) => OptOutKind::EmailUnsubscribe {
            subscription: sub(s),
        },
        (EventKind::SmsUnsubscribe, Some(s)) => OptOutKind::SmsUnsubscribe {
            subscription: sub(s),
        },
        (EventKind::EmailAbuse, None) => OptOutKind::EmailAbuse,
        other => panic!("bad test event {other:?}"),
    };
    OptOutEvent::new(
        EventId::new(id).unwrap(),
        ProfileId::new("p-1").unwrap(),
        section("sec-1"),
        kind,
        at("2026-11-26T09:00:00Z"),
    )
}

fn matched(router: &Router, event: &OptOutEvent) -> Vec<String> {
    router
        .matches(event)
        .iter()
        .map(|m| m.flow.id.to_string())
        .collect()
}

fn rejected(router: &Router, flow: &str, event: &OptOutEvent) -> Rejection {
    match router.explain(&flow_id(flow), event).unwrap() {
        Explanation::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn listen_node_validation() {
    assert_eq!(ListenNode::new([]), Err(ListenError::NoEventKind));
    assert_eq!(
        ListenNode::builder()
            .kind(EventKind::EmailAbuse)
            .only_origins([])
            .build(),
        Err(ListenError::EmptySet { field: "origins" })
    );
    let err = serde_json::from_value::<ListenNode>(
        json!({"kinds": ["email_abuse"], "subscriptions": []}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`subscriptions` is empty and would match nothing; leave it out to take any"
    );
    let err = serde_json::from_value::<ListenNode>(json!({"kinds": []})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a listen node must take at least one event kind"
    );
    let node = ListenNode::new([EventKind::SmsUnsubscribe]).unwrap();
    assert_eq!(
        node.origins().iter().copied().collect::<Vec<_>>(),
        [Origin::Communication]
    );
    assert_eq!(
        serde_json::to_value(&node).unwrap(),
        json!({"kinds": ["sms_unsubscribe"]})
    );
    assert_eq!(EntryLimit::at_most(0), Err(ListenError::ZeroEntries));
    assert_eq!(
        EntryWindow::new(0, WindowUnit::Day),
        Err(ListenError::NonPositiveWindow)
    );
    assert_eq!(
        EntryWindow::from_duration(jiff::SignedDuration::ZERO),
        Err(ListenError::NonPositiveWindow)
    );
    assert_eq!(
        EntryLimit::at_most_within(0, EntryWindow::new(1, WindowUnit::Day).unwrap()),
        Err(ListenError::ZeroEntries)
    );
}

#[test]
fn each_criterion_alone() {
    let flows = [
        flow(
            "any-unsub",
            ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        ),
        flow("sms", ListenNode::new([EventKind::SmsUnsubscribe]).unwrap()),
        flow("abuse", ListenNode::new([EventKind::EmailAbuse]).unwrap()),
        flow(
            "sub-111",
            ListenNode::builder()
                .kind(EventKind::EmailUnsubscribe)
                .subscription(sub("111"))
                .build()
                .unwrap(),
        ),
        flow(
            "folder-news",
            ListenNode::builder()
                .kind(EventKind::EmailUnsubscribe)
                .folder(FolderId::new("news").unwrap())
                .build()
                .unwrap(),
        ),
        flow(
            "activity-a",
            ListenNode::builder()
                .kind(EventKind::EmailUnsubscribe)
                .activity(ActivityId::new("a").unwrap())
                .build()
                .unwrap(),
        ),
        flow(
            "inactive",
            ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        )
        .with_active(false),
    ];
    let router = Router::new(flows, &catalog()).unwrap();

    let e111 = event("e1", EventKind::EmailUnsubscribe, Some("111"));
    assert_eq!(
        matched(&router, &e111),
        ["any-unsub", "sub-111", "folder-news"]
    );
    let why = &router.matches(&e111)[1].why;
    assert_eq!(
        *why,
        Why {
            section: section("sec-1"),
            kind: EventKind::EmailUnsubscribe,
            origin: Origin::Communication,
            subscription: SubscriptionMatch::Selected(sub("111")),
            activity: ActivityMatch::Any,
        }
    );
    assert_eq!(
        why.to_string(),
        "Email - Unsubscribe in section sec-1 through communication, subscription 111 selected, any activity"
    );

    let e222 = event("e2", EventKind::EmailUnsubscribe, Some("222"));
    assert_eq!(matched(&router, &e222), ["any-unsub", "folder-news"]);
    assert_eq!(
        rejected(&router, "sub-111", &e222),
        Rejection::Subscription {
            subscription: sub("222")
        }
    );

    let e333 = event("e3", EventKind::EmailUnsubscribe, Some("333"));
    assert_eq!(matched(&router, &e333), ["any-unsub"]);
    assert_eq!(
        rejected(&router, "folder-news", &e333),
        Rejection::Folder {
            subscription: sub("333"),
            folder: Some(FolderId::new("sms").unwrap())
        }
    );
    assert_eq!(
        rejected(&router, "folder-news", &e333).to_string(),
        "subscription 333 is in folder sms, which the flow does not select"
    );
    assert_eq!(
        rejected(&router, "activity-a", &e333),
        Rejection::Activity { activity: None }
    );
    assert_eq!(
        rejected(&router, "sms", &e333),
        Rejection::Kind {
            kind: EventKind::EmailUnsubscribe
        }
    );
    assert_eq!(rejected(&router, "inactive", &e333), Rejection::Inactive);

    let with_a = event("e4", EventKind::EmailUnsubscribe, Some("333"))
        .with_activity(ActivityId::new("a").unwrap());
    assert_eq!(matched(&router, &with_a), ["any-unsub", "activity-a"]);
    assert_eq!(
        router.matches(&with_a)[1].why.activity,
        ActivityMatch::Selected(ActivityId::new("a").unwrap())
    );
    let with_b = event("e5", EventKind::EmailUnsubscribe, Some("333"))
        .with_activity(ActivityId::new("b").unwrap());
    assert_eq!(matched(&router, &with_b), ["any-unsub"]);
    assert_eq!(
        rejected(&router, "activity-a", &with_b),
        Rejection::Activity {
            activity: Some(ActivityId::new("b").unwrap())
        }
    );

    let sms = event("e6", EventKind::SmsUnsubscribe, Some("333"));
    assert_eq!(matched(&router, &sms), ["sms"]);
    let abuse = event("e7", EventKind::EmailAbuse, None);
    assert_eq!(matched(&router, &abuse), ["abuse"]);
    assert!(router.explain(&flow_id("nope"), &abuse).is_none());
    assert_eq!(
        router.explain(&flow_id("abuse"), &abuse).unwrap(),
        Explanation::Matches(Why {
            section: section("sec-1"),
            kind: EventKind::EmailAbuse,
            origin: Origin::Communication,
            subscription: SubscriptionMatch::SectionLevel,
            activity: ActivityMatch::Any,
        })
    );
}

#[test]
fn criteria_combined_and_several_kinds() {
    let combined = ListenNode::builder()
        .kind(EventKind::EmailUnsubscribe)
        .kind(EventKind::SmsUnsubscribe)
        .subscription(sub("111"))
        .subscription(sub("333"))
        .folder(FolderId::new("news").unwrap())
        .activity(ActivityId::new("a").unwrap())
        .origin(Origin::Api)
        .build()
        .unwrap();
    let router = Router::new([flow("combined", combined)], &catalog()).unwrap();
    let a = ActivityId::new("a").unwrap();
    // 111 is selected and in news; both kinds; both origins.
    for kind in [EventKind::EmailUnsubscribe, EventKind::SmsUnsubscribe] {
        for origin in [Origin::Communication, Origin::Api] {
            let e = event("e", kind, Some("111"))
                .with_activity(a.clone())
                .with_origin(origin);
            assert_eq!(matched(&router, &e), ["combined"], "{kind:?} {origin:?}");
        }
    }
    // 333 is selected but not in news: the Folder narrowing rejects it.
    let e = event("e", EventKind::EmailUnsubscribe, Some("333")).with_activity(a.clone());
    assert!(matched(&router, &e).is_empty());
    assert_eq!(
        rejected(&router, "combined", &e),
        Rejection::Folder {
            subscription: sub("333"),
            folder: Some(FolderId::new("sms").unwrap())
        }
    );
    // 222 is in news but not selected.
    let e = event("e", EventKind::EmailUnsubscribe, Some("222")).with_activity(a.clone());
    assert_eq!(
        rejected(&router, "combined", &e),
        Rejection::Subscription {
            subscription: sub("222")
        }
    );
    // File imports are not taken.
    let e = event("e", EventKind::EmailUnsubscribe, Some("111"))
        .with_activity(a)
        .with_origin(Origin::FileImport);
    assert!(matched(&router, &e).is_empty());
    assert_eq!(
        rejected(&router, "combined", &e),
        Rejection::Origin {
            origin: Origin::FileImport
        }
    );
    // Abuse is not taken at all.
    let e = event("e", EventKind::EmailAbuse, None);
    assert_eq!(
        rejected(&router, "combined", &e),
        Rejection::Kind {
            kind: EventKind::EmailAbuse
        }
    );
}

#[test]
fn section_boundary() {
    let router = Router::new(
        [
            flow("s1", ListenNode::new(EventKind::ALL).unwrap()),
            flow_to(
                "s2",
                "sec-2",
                ListenNode::new(EventKind::ALL).unwrap(),
                "https://e.com/",
            ),
        ],
        &catalog(),
    )
    .unwrap();
    let in_s1 = event("e", EventKind::EmailAbuse, None);
    assert_eq!(matched(&router, &in_s1), ["s1"]);
    assert_eq!(
        rejected(&router, "s2", &in_s1),
        Rejection::Section {
            flow: section("sec-2"),
            event: section("sec-1")
        }
    );
    let in_s3 = OptOutEvent::email_abuse(
        EventId::new("e").unwrap(),
        ProfileId::new("p").unwrap(),
        section("sec-3"),
        at("2026-11-26T09:00:00Z"),
    );
    assert!(matched(&router, &in_s3).is_empty());
}

#[test]
fn abuse_ignores_subscription_and_folder_narrowing() {
    let narrowed = ListenNode::builder()
        .kind(EventKind::EmailAbuse)
        .kind(EventKind::EmailUnsubscribe)
        .subscription(sub("111"))
        .folder(FolderId::new("news").unwrap())
        .build()
        .unwrap();
    let router = Router::new([flow("narrowed", narrowed)], &catalog()).unwrap();
    assert_eq!(
        matched(&router, &event("e", EventKind::EmailAbuse, None)),
        ["narrowed"]
    );
    assert_eq!(
        router.matches(&event("e", EventKind::EmailAbuse, None))[0]
            .why
            .subscription,
        SubscriptionMatch::SectionLevel
    );
    // The narrowing still applies to the unsubscribe kind.
    assert!(
        matched(
            &router,
            &event("e", EventKind::EmailUnsubscribe, Some("222"))
        )
        .is_empty()
    );
    // An Activity narrowing still applies to abuse.
    let by_activity = ListenNode::builder()
        .kind(EventKind::EmailAbuse)
        .activity(ActivityId::new("a").unwrap())
        .build()
        .unwrap();
    let router = Router::new([flow("by-activity", by_activity)], &catalog()).unwrap();
    assert!(matched(&router, &event("e", EventKind::EmailAbuse, None)).is_empty());
    let with_a =
        event("e", EventKind::EmailAbuse, None).with_activity(ActivityId::new("a").unwrap());
    assert_eq!(matched(&router, &with_a), ["by-activity"]);
}

#[test]
fn origins_default_and_opt_in() {
    let router = Router::new(
        [
            flow(
                "default",
                ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
            ),
            flow(
                "with-api",
                ListenNode::builder()
                    .kind(EventKind::EmailUnsubscribe)
                    .origin(Origin::Api)
                    .build()
                    .unwrap(),
            ),
            flow(
                "imports-only",
                ListenNode::builder()
                    .kind(EventKind::EmailUnsubscribe)
                    .only_origins([Origin::FileImport])
                    .build()
                    .unwrap(),
            ),
        ],
        &catalog(),
    )
    .unwrap();
    let e = |origin| event("e", EventKind::EmailUnsubscribe, Some("111")).with_origin(origin);
    assert_eq!(
        matched(&router, &e(Origin::Communication)),
        ["default", "with-api"]
    );
    assert_eq!(matched(&router, &e(Origin::Api)), ["with-api"]);
    assert_eq!(matched(&router, &e(Origin::FileImport)), ["imports-only"]);
    assert_eq!(
        rejected(&router, "default", &e(Origin::Api)),
        Rejection::Origin {
            origin: Origin::Api
        }
    );
}

fn entered(routing: &Routing<'_>) -> Vec<(String, EntryDecision)> {
    routing
        .entered
        .iter()
        .map(|(m, d)| (m.flow.id.to_string(), *d))
        .collect()
}
fn refused(routing: &Routing<'_>) -> Vec<(String, EntryDecision)> {
    routing
        .refused
        .iter()
        .map(|r| (r.flow.id.to_string(), r.decision))
        .collect()
}

#[test]
fn unlimited_lets_a_then_b_through_while_a_limit_of_one_drops_b() {
    let listen = ListenNode::new([EventKind::EmailUnsubscribe]).unwrap();
    let router = Router::new(
        [
            flow("unlimited", listen.clone()),
            flow("once", listen).with_settings(FlowSettings::with_entry_limit(
                EntryLimit::at_most(1).unwrap(),
            )),
        ],
        &catalog(),
    )
    .unwrap();
    let mut ledger = InMemoryLedger::new();
    let a = event("evt-a", EventKind::EmailUnsubscribe, Some("111"));
    let b = event("evt-b", EventKind::EmailUnsubscribe, Some("222"));
    let first = router.route(&a, &mut ledger, at("2026-11-26T09:00:00Z"));
    assert_eq!(
        entered(&first),
        [
            ("unlimited".into(), EntryDecision::Entered { entry: 1 }),
            ("once".into(), EntryDecision::Entered { entry: 1 })
        ]
    );
    assert!(first.refused.is_empty());
    let second = router.route(&b, &mut ledger, at("2026-12-03T09:00:00Z"));
    assert_eq!(
        entered(&second),
        [("unlimited".into(), EntryDecision::Entered { entry: 2 })]
    );
    assert_eq!(
        refused(&second),
        [(
            "once".into(),
            EntryDecision::LimitReached {
                limit: EntryLimit::at_most(1).unwrap(),
                entries: 1
            }
        )]
    );
}

#[test]
fn at_most_n_within_a_window() {
    let limit =
        EntryLimit::at_most_within(2, EntryWindow::new(24, WindowUnit::Hour).unwrap()).unwrap();
    let router = Router::new(
        [flow(
            "two-a-day",
            ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        )
        .with_settings(FlowSettings::with_entry_limit(limit))],
        &catalog(),
    )
    .unwrap();
    let mut ledger = InMemoryLedger::new();
    let go = |ledger: &mut InMemoryLedger, id: &str, now: &str| {
        let e = event(id, EventKind::EmailUnsubscribe, Some("111"));
        let routing = router.route(&e, ledger, at(now));
        entered(&routing)
            .into_iter()
            .chain(refused(&routing))
            .map(|(_, d)| d)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        go(&mut ledger, "e1", "2026-11-26T00:00:00Z"),
        [EntryDecision::Entered { entry: 1 }]
    );
    assert_eq!(
        go(&mut ledger, "e2", "2026-11-26T12:00:00Z"),
        [EntryDecision::Entered { entry: 2 }]
    );
    assert_eq!(
        go(&mut ledger, "e3", "2026-11-26T23:59:59Z"),
        [EntryDecision::LimitReached { limit, entries: 2 }]
    );
    // Exactly 24 h after the first entry, it no longer counts: the window is (now - 24h, now].
    assert_eq!(
        go(&mut ledger, "e4", "2026-11-27T00:00:00Z"),
        [EntryDecision::Entered { entry: 3 }]
    );
    assert_eq!(
        go(&mut ledger, "e5", "2026-11-27T11:59:59Z"),
        [EntryDecision::LimitReached { limit, entries: 2 }]
    );
    assert_eq!(
        ledger.entries(&flow_id("two-a-day"), &ProfileId::new("p-1").unwrap()),
        3
    );
    ledger.prune(at("2026-11-26T12:00:00Z"));
    assert_eq!(ledger.len(), 2);
}

#[test]
fn the_same_event_never_enters_twice() {
    let router = Router::new(
        [flow(
            "unlimited",
            ListenNode::new([EventKind::EmailAbuse]).unwrap(),
        )],
        &catalog(),
    )
    .unwrap();
    let mut ledger = InMemoryLedger::new();
    let abuse = event("evt-1", EventKind::EmailAbuse, None);
    let first = router.route(&abuse, &mut ledger, at("2026-11-26T09:00:00Z"));
    assert_eq!(
        entered(&first),
        [("unlimited".into(), EntryDecision::Entered { entry: 1 })]
    );
    for later in [
        "2026-11-26T09:00:00Z",
        "2026-11-27T09:00:00Z",
        "2027-11-26T09:00:00Z",
    ] {
        let again = router.route(&abuse, &mut ledger, at(later));
        assert!(again.entered.is_empty());
        assert_eq!(
            refused(&again),
            [("unlimited".into(), EntryDecision::AlreadyEntered)]
        );
    }
    // Another event of the same Profile still enters.
    let second = event("evt-2", EventKind::EmailAbuse, None);
    let other = router.route(&second, &mut ledger, at("2026-11-28T09:00:00Z"));
    assert_eq!(
        entered(&other),
        [("unlimited".into(), EntryDecision::Entered { entry: 2 })]
    );
    // The ledger survives a serde round trip (a host can persist it).
    let saved = serde_json::to_string(&ledger).unwrap();
    let mut restored: InMemoryLedger = serde_json::from_str(&saved).unwrap();
    let again = router.route(&abuse, &mut restored, at("2026-11-29T09:00:00Z"));
    assert_eq!(
        refused(&again),
        [("unlimited".into(), EntryDecision::AlreadyEntered)]
    );
}

#[test]
fn router_rejects_duplicate_ids_and_unknown_folders() {
    let listen = ListenNode::new([EventKind::EmailAbuse]).unwrap();
    assert_eq!(
        Router::new([flow("f", listen.clone()), flow("f", listen)], &catalog()).unwrap_err(),
        RouterError::DuplicateFlow { flow: flow_id("f") }
    );
    let by_folder = ListenNode::builder()
        .kind(EventKind::EmailUnsubscribe)
        .folder(FolderId::new("other").unwrap())
        .build()
        .unwrap();
    let err = Router::new([flow("f", by_folder.clone())], &catalog()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "flow `f` narrows by folder `other`, which the catalog does not hold in section `sec-1`"
    );
    assert!(matches!(
        Router::new([flow("f", by_folder)], &Catalog::default()),
        Err(RouterError::UnknownFolder { .. })
    ));
}

fn codes(diagnostics: &[Diagnostic]) -> Vec<(&'static str, String)> {
    diagnostics
        .iter()
        .map(|d| (d.code, d.flow.to_string()))
        .collect()
}

#[test]
fn a_correct_flow_has_no_diagnostics() {
    for kind in EventKind::ALL {
        let f = flow("ok", ListenNode::new([kind]).unwrap());
        assert!(f.lint().is_empty(), "{kind:?}");
        assert!(lint_flows([&f]).is_empty());
    }
}

#[test]
fn lint_entry_limit() {
    let limit = EntryLimit::at_most_within(1, "7 days".parse().unwrap()).unwrap();
    let f = flow(
        "limited",
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
    )
    .with_settings(FlowSettings::with_entry_limit(limit));
    let found = f.lint();
    assert_eq!(
        codes(&found),
        [("entry_limit_loses_opt_outs", "limited".into())]
    );
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!(
        found[0].to_string(),
        "warning[entry_limit_loses_opt_outs] flow `limited`: entry limit is at most 1 entry within 7 days: \
         a Profile that opts out of one Subscription and later of another is forwarded only once, and the \
         later opt-out is lost; set settings.entry_limit to \"unlimited\" (a re-delivered copy of one event \
         never enters twice anyway)"
    );
}

#[test]
fn lint_narrowing_on_abuse() {
    let abuse_only = flow(
        "abuse",
        ListenNode::builder()
            .kind(EventKind::EmailAbuse)
            .subscription(sub("111"))
            .build()
            .unwrap(),
    );
    let found = abuse_only.lint();
    assert_eq!(
        codes(&found),
        [("narrowing_ignored_for_abuse", "abuse".into())]
    );
    assert!(
        found[0]
            .message
            .ends_with("remove \"subscriptions\" and \"folders\" from the listen node")
    );
    let mixed = flow(
        "mixed",
        ListenNode::builder()
            .kind(EventKind::EmailAbuse)
            .kind(EventKind::EmailUnsubscribe)
            .folder(FolderId::new("news").unwrap())
            .build()
            .unwrap(),
    );
    let found = mixed.lint();
    assert_eq!(
        codes(&found),
        [("narrowing_ignored_for_abuse", "mixed".into())]
    );
    assert!(
        found[0]
            .message
            .contains("move Email - Abuse to a flow of its own")
    );
    // An Activity narrowing on abuse is meaningful: no diagnostic.
    let by_activity = flow(
        "abuse-a",
        ListenNode::builder()
            .kind(EventKind::EmailAbuse)
            .activity(ActivityId::new("a").unwrap())
            .build()
            .unwrap(),
    );
    assert!(by_activity.lint().is_empty());
}

#[test]
fn lint_inactive_flow() {
    let f = flow("off", ListenNode::new([EventKind::EmailAbuse]).unwrap()).with_active(false);
    let found = f.lint();
    assert_eq!(codes(&found), [("inactive_flow", "off".into())]);
    assert_eq!(found[0].severity, Severity::Note);
}

#[test]
fn lint_double_delivery_lists_a_bounded_number_of_partners() {
    // Twelve flows that all overlap on one endpoint: each lists its first 4 later partners, and
    // the flows with more than 4 later partners (the first seven) say so.
    let unsub = ListenNode::new([EventKind::EmailUnsubscribe]).unwrap();
    let flows: Vec<Flow> = (0..12)
        .map(|i| {
            flow_to(
                &format!("f{i}"),
                "sec-1",
                unsub.clone(),
                "https://crm.example.com/optout",
            )
        })
        .collect();
    let found = lint_flows(&flows);
    let pairs: Vec<(String, String)> = found
        .iter()
        .filter(|d| !d.message.starts_with("more than"))
        .map(|d| {
            (
                d.flow.to_string(),
                d.message.split('`').nth(1).unwrap().to_owned(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for i in 0..12usize {
        for j in (i + 1..12).take(4) {
            expected.push((format!("f{i}"), format!("f{j}")));
            expected.push((format!("f{j}"), format!("f{i}")));
        }
    }
    assert_eq!(pairs, expected);
    assert_eq!(pairs.len(), 76);
    let capped: Vec<&Diagnostic> = found
        .iter()
        .filter(|d| d.message.starts_with("more than"))
        .collect();
    assert_eq!(
        capped.iter().map(|d| d.flow.as_str()).collect::<Vec<_>>(),
        ["f0", "f1", "f2", "f3", "f4", "f5", "f6"]
    );
    assert_eq!(capped[0].code, "double_delivery");
    assert_eq!(capped[0].severity, Severity::Warning);
    assert_eq!(
        capped[0].message,
        "more than 4 later flows can take the same events as this one and send them to the same \
         endpoint https://crm.example.com/optout: only the first 4 are listed; merge the flows or \
         make their listen nodes disjoint"
    );
    // The capped diagnostics come last.
    assert_eq!(found.len(), 83);
    assert!(
        found[..76]
            .iter()
            .all(|d| !d.message.starts_with("more than"))
    );
}

#[test]
fn lint_double_delivery() {
    let same = |id: &str, listen: ListenNode| {
        flow_to(
            id,
            "sec-1",
            listen,
            "https://crm.example.com/optout?from=platform",
        )
    };
    let unsub = ListenNode::new([EventKind::EmailUnsubscribe]).unwrap();
    let a = same("a", unsub.clone());
    // Same endpoint (query aside), overlapping listeners: both flows are flagged, each naming the other.
    let b = flow_to(
        "b",
        "sec-1",
        ListenNode::new([EventKind::EmailUnsubscribe, EventKind::SmsUnsubscribe]).unwrap(),
        "https://crm.example.com/optout",
    );
    let found = lint_flows([&a, &b]);
    assert_eq!(
        codes(&found),
        [
            ("double_delivery", "a".into()),
            ("double_delivery", "b".into())
        ]
    );
    assert_eq!(
        found[0].message,
        "flow `b` can take the same Email - Unsubscribe event and sends it to the same endpoint \
         https://crm.example.com/optout: the receiver gets it twice under two webhook ids; merge the flows \
         or make their listen nodes disjoint"
    );
    // Disjoint listeners: silent.
    let only = |s: &str| {
        ListenNode::builder()
            .kind(EventKind::EmailUnsubscribe)
            .subscription(sub(s))
            .build()
            .unwrap()
    };
    assert!(lint_flows([&same("x", only("111")), &same("y", only("222"))]).is_empty());
    assert!(
        lint_flows([
            &same("x", unsub.clone()),
            &same("y", ListenNode::new([EventKind::SmsUnsubscribe]).unwrap())
        ])
        .is_empty()
    );
    let api_only = ListenNode::builder()
        .kind(EventKind::EmailUnsubscribe)
        .only_origins([Origin::Api])
        .build()
        .unwrap();
    assert!(lint_flows([&same("x", unsub.clone()), &same("y", api_only)]).is_empty());
    // Abuse ignores Subscription narrowing, so two narrowed abuse flows still overlap.
    let abuse = |s: &str| {
        ListenNode::builder()
            .kind(EventKind::EmailAbuse)
            .subscription(sub(s))
            .build()
            .unwrap()
    };
    let found = lint_flows([&same("x", abuse("111")), &same("y", abuse("222"))]);
    assert_eq!(
        found.iter().filter(|d| d.code == "double_delivery").count(),
        2,
        "{found:#?}"
    );
    // Another endpoint, another Section or an inactive flow: silent.
    let elsewhere = flow_to("z", "sec-1", unsub.clone(), "https://crm.example.com/other");
    assert!(lint_flows([&a, &elsewhere]).is_empty());
    let other_section = flow_to(
        "z",
        "sec-2",
        unsub.clone(),
        "https://crm.example.com/optout",
    );
    assert!(lint_flows([&a, &other_section]).is_empty());
    let off = same("z", unsub).with_active(false);
    assert_eq!(
        codes(&lint_flows([&a, &off])),
        [("inactive_flow", "z".into())]
    );
}

#[test]
fn flow_files_round_trip() {
    for name in ["email-unsubscribe", "email-abuse", "sms-unsubscribe"] {
        let path = format!("{}/examples/flows/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        if cfg!(not(feature = "signing")) && text.contains("signing_secrets") {
            // Without the `signing` feature a signed flow is refused, never sent unsigned.
            let err = FlowFile::from_json(&text).unwrap_err();
            assert_eq!(err.path, "flows[0].webhook");
            assert!(
                err.problem
                    .to_string()
                    .contains("without the `signing` feature"),
                "{err}"
            );
            continue;
        }
        let file = FlowFile::from_json(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(file.flows.len(), 1);
        let written = file.to_json().unwrap();
        assert_eq!(FlowFile::from_json(&written).unwrap(), file);
        assert!(
            lint_flows(&file.flows).is_empty(),
            "{path}: {:?}",
            lint_flows(&file.flows)
        );
        Router::new(file.flows, &catalog()).unwrap();
    }
    let limited =
        FlowFile::new([
            flow("f", ListenNode::new([EventKind::EmailUnsubscribe]).unwrap())
                .with_name("Limited")
                .with_settings(FlowSettings::with_entry_limit(
                    EntryLimit::at_most_within(2, EntryWindow::new(30, WindowUnit::Day).unwrap())
                        .unwrap(),
                )),
        ]);
    let value: serde_json::Value = serde_json::from_str(&limited.to_json().unwrap()).unwrap();
    assert_eq!(
        value,
        json!({"version": 1, "flows": [{
            "id": "f", "name": "Limited", "section": "sec-1", "active": true,
            "listen": {"kinds": ["email_unsubscribe"]},
            "settings": {"entry_limit": {"at_most": {"entries": 2, "within": "30 days"}}},
            "webhook": {
                "method": "POST", "url": "https://example.com/f", "encoding": "query",
                "params": [
                    {"name": "email", "source": "email"},
                    {"name": "subscription", "source": "subscription_id"}
                ]
            }
        }]})
    );
    assert_eq!(FlowFile::from_json(&value.to_string()).unwrap(), limited);
    // The friendly duration form is accepted when reading.
    let friendly = value.to_string().replace("PT720H", "720 hours");
    assert_eq!(FlowFile::from_json(&friendly).unwrap(), limited);
}

#[test]
fn malformed_flow_files_name_the_path() {
    let ok = json!({"version": 1, "flows": [{
        "id": "f", "section": "sec-1",
        "listen": {"kinds": ["email_unsubscribe"]},
        "webhook": {"url": "https://example.com/"}
    }]});
    assert!(FlowFile::from_json(&ok.to_string()).is_ok());
    let broken = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut v = ok.clone();
        patch(&mut v);
        FlowFile::from_json(&serde_json::to_string_pretty(&v).unwrap()).unwrap_err()
    };
    let err = broken(&|v| v["flows"][0]["listen"]["kinds"][0] = json!("email_bounce"));
    assert_eq!(
        err.problem,
        FlowFileProblem::UnknownVariant {
            expected: &[
                "Email - Unsubscribe",
                "email_unsubscribe",
                "Email - Abuse",
                "email_abuse",
                "SMS - Unsubscribe",
                "sms_unsubscribe"
            ]
        }
    );
    assert_eq!(
        err.to_string(),
        "flows[0].listen.kinds[0]: unknown variant, expected one of `Email - Unsubscribe`, \
         `email_unsubscribe`, `Email - Abuse`, `email_abuse`, `SMS - Unsubscribe`, \
         `sms_unsubscribe` (line 7, column 24)"
    );

    let err = broken(&|v| v["flows"][0]["section"] = json!(""));
    assert_eq!(
        err,
        FlowFileError {
            path: "flows[0].section".into(),
            problem: FlowFileProblem::Invalid {
                reason: "invalid section id: it is empty".into()
            },
            line: Some(10),
            column: Some(19),
        }
    );

    let err = broken(&|v| {
        v["flows"][0].as_object_mut().unwrap().remove("listen");
    });
    assert_eq!(
        err,
        FlowFileError {
            path: "flows[0]".into(),
            problem: FlowFileProblem::MissingField { field: "listen" },
            line: Some(9),
            column: Some(5),
        }
    );

    let err = broken(&|v| v["flows"][0]["colour"] = json!("red"));
    assert_eq!(
        err,
        FlowFileError {
            path: "flows[0]".into(),
            problem: FlowFileProblem::UnknownField {
                expected: &[
                    "id", "name", "section", "active", "listen", "settings", "webhook"
                ]
            },
            line: Some(4),
            column: Some(14),
        }
    );
    assert_eq!(
        err.to_string(),
        "flows[0]: unknown field, expected one of `id`, `name`, `section`, `active`, `listen`, \
         `settings`, `webhook` (line 4, column 14)"
    );

    let err = broken(&|v| {
        v["flows"][0]["settings"] = json!({"entry_limit": {"at_most": {"entries": 0}}})
    });
    assert_eq!(
        err,
        FlowFileError {
            path: "flows[0].settings.entry_limit.at_most.entries".into(),
            problem: FlowFileProblem::InvalidValue {
                found: FoundKind::Number,
                expected: "a nonzero u32".into()
            },
            line: Some(14),
            column: Some(24),
        }
    );

    let err = broken(&|v| {
        v["flows"][0]["settings"] =
            json!({"entry_limit": {"at_most": {"entries": 1, "within": "-PT1H"}}})
    });
    assert_eq!(
        (err.path.as_str(), err.problem.to_string().as_str()),
        (
            "flows[0].settings.entry_limit.at_most.within",
            "an entry-limit window must be longer than zero"
        )
    );

    let err = broken(&|v| v["flows"][0]["listen"]["activities"] = json!([]));
    assert_eq!(
        (err.path.as_str(), err.problem.to_string().as_str()),
        (
            "flows[0].listen",
            "`activities` is empty and would match nothing; leave it out to take any"
        )
    );

    let err = broken(&|v| v["version"] = json!(2));
    assert_eq!(
        err,
        FlowFileError {
            path: "version".into(),
            problem: FlowFileProblem::Version { expected: 1 },
            line: None,
            column: None,
        }
    );
    assert_eq!(
        err.to_string(),
        "version: unsupported flow-file version, expected 1"
    );

    let err = broken(&|v| {
        let again = v["flows"][0].clone();
        v["flows"].as_array_mut().unwrap().push(again);
    });
    assert_eq!(
        err,
        FlowFileError {
            path: "flows[1].id".into(),
            problem: FlowFileProblem::DuplicateFlowId { first: 0 },
            line: None,
            column: None,
        }
    );
    assert_eq!(
        err.to_string(),
        "flows[1].id: the flow id is already used by flows[0]"
    );

    let err = FlowFile::from_json("{\"version\": 1, \"flows\": [").unwrap_err();
    assert_eq!(
        err,
        FlowFileError {
            path: "flows[0]".into(),
            problem: FlowFileProblem::Eof,
            line: Some(1),
            column: Some(25),
        }
    );
    let err = FlowFile::from_json("{\"version\": 1, \"flows\": []} trailing").unwrap_err();
    assert_eq!(
        err,
        FlowFileError {
            path: ".".into(),
            problem: FlowFileProblem::TrailingCharacters,
            line: Some(1),
            column: Some(29),
        }
    );
    let err = FlowFile::from_json("").unwrap_err();
    assert_eq!(
        err,
        FlowFileError {
            path: ".".into(),
            problem: FlowFileProblem::Eof,
            line: Some(1),
            column: Some(0),
        }
    );
    let err = FlowFile::from_json("{\"version\": 1, \"flows\": [} ").unwrap_err();
    assert_eq!(
        err,
        FlowFileError {
            path: "flows[0]".into(),
            problem: FlowFileProblem::Syntax,
            line: Some(1),
            column: Some(26),
        }
    );
}

/// The whole output of `lint_flows` for a file whose flows share endpoints in several groups,
/// listed out of endpoint order: every diagnostic, in order, with its exact text. It pins the
/// order (each flow's own lints in file order, then `double_delivery` by the file positions of
/// the pair) and which pairs overlap (kinds, Subscriptions against Folders, Activities, origins,
/// Abuse ignoring narrowing; inactive flows and other Sections never pair).
#[test]
fn lint_flows_output_is_pinned() {
    let email = r#"[{"name": "email", "source": "email"}, {"name": "subscription", "source": "subscription_id"}]"#;
    let sms = r#"[{"name": "mobile", "source": "mobile"}, {"name": "subscription", "source": "subscription_id"}]"#;
    let both = r#"[{"name": "email", "source": "email"}, {"name": "mobile", "source": "mobile"}, {"name": "subscription", "source": "subscription_id"}, {"name": "kind", "source": "event_kind"}]"#;
    let abuse =
        r#"[{"name": "email", "source": "email"}, {"name": "section", "source": "section_id"}]"#;
    let crm = "https://crm.example.com/optout";
    let hook = "https://x.example.com/hook";
    let flows = [
        (
            "a",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe"]}"#,
            "https://crm.example.com/optout?from=a",
            email,
            true,
        ),
        (
            "b",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe", "sms_unsubscribe"]}"#,
            hook,
            both,
            true,
        ),
        (
            "c",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe"], "subscriptions": ["111"]}"#,
            crm,
            email,
            true,
        ),
        (
            "d",
            "sec-1",
            r#"{"kinds": ["sms_unsubscribe"]}"#,
            hook,
            sms,
            true,
        ),
        (
            "e",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe"], "subscriptions": ["222"]}"#,
            crm,
            email,
            true,
        ),
        (
            "f",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe"]}"#,
            crm,
            email,
            false,
        ),
        (
            "g",
            "sec-2",
            r#"{"kinds": ["email_unsubscribe"]}"#,
            crm,
            email,
            true,
        ),
        (
            "h",
            "sec-1",
            r#"{"kinds": ["email_abuse"], "subscriptions": ["111"]}"#,
            crm,
            abuse,
            true,
        ),
        (
            "i",
            "sec-1",
            r#"{"kinds": ["email_abuse"]}"#,
            crm,
            abuse,
            true,
        ),
        (
            "j",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe"], "folders": ["news"], "origins": ["communication", "api"]}"#,
            crm,
            email,
            true,
        ),
        (
            "k",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe"], "activities": ["act-1"]}"#,
            crm,
            email,
            true,
        ),
        (
            "l",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe"], "subscriptions": ["111"], "activities": ["act-2"]}"#,
            crm,
            email,
            true,
        ),
        (
            "m",
            "sec-1",
            r#"{"kinds": ["email_unsubscribe"], "origins": ["api"]}"#,
            crm,
            email,
            true,
        ),
        (
            "n",
            "sec-1",
            r#"{"kinds": ["sms_unsubscribe"], "subscriptions": ["333"]}"#,
            hook,
            sms,
            true,
        ),
    ];
    let text = format!(
        r#"{{"version": 1, "flows": [{}]}}"#,
        flows
            .iter()
            .map(|(id, section, listen, url, params, active)| format!(
                r#"{{"id": "{id}", "section": "{section}", "active": {active}, "listen": {listen},
                    "webhook": {{"url": "{url}", "params": {params}}}}}"#
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let file = FlowFile::from_json(&text).unwrap();
    let found: Vec<String> = lint_flows(&file.flows)
        .iter()
        .map(ToString::to_string)
        .collect();
    let twice = |this: &str, other: &str, kind: &str, endpoint: &str| {
        format!(
            "warning[double_delivery] flow `{this}`: flow `{other}` can take the same {kind} event \
             and sends it to the same endpoint {endpoint}: the receiver gets it twice under two \
             webhook ids; merge the flows or make their listen nodes disjoint"
        )
    };
    let mut expected = vec![
        "note[inactive_flow] flow `f`: the flow is inactive and takes no opt-out; set \"active\": \
         true or remove it"
            .to_owned(),
        "warning[narrowing_ignored_for_abuse] flow `h`: Email - Abuse opts the Profile out of the \
         whole Section, so the Subscription/Folder narrowing does not apply to it and every abuse \
         report of the Section enters; remove \"subscriptions\" and \"folders\" from the listen node"
            .to_owned(),
    ];
    let unsub = "Email - Unsubscribe";
    for (x, y, kind, endpoint) in [
        ("a", "c", unsub, crm),
        ("a", "e", unsub, crm),
        ("a", "j", unsub, crm),
        ("a", "k", unsub, crm),
        // `a` also overlaps `l`: a fifth later flow, past MAX_LISTED_OVERLAPS (see below).
        ("b", "d", "SMS - Unsubscribe", hook),
        ("b", "n", "SMS - Unsubscribe", hook),
        ("c", "j", unsub, crm),
        ("c", "k", unsub, crm),
        ("c", "l", unsub, crm),
        ("d", "n", "SMS - Unsubscribe", hook),
        ("e", "j", unsub, crm),
        ("e", "k", unsub, crm),
        ("h", "i", "Email - Abuse", crm),
        ("j", "k", unsub, crm),
        ("j", "l", unsub, crm),
        ("j", "m", unsub, crm),
    ] {
        expected.push(twice(x, y, kind, endpoint));
        expected.push(twice(y, x, kind, endpoint));
    }
    expected.push(
        "warning[double_delivery] flow `a`: more than 4 later flows can take the same events as \
         this one and send them to the same endpoint https://crm.example.com/optout: only the \
         first 4 are listed; merge the flows or make their listen nodes disjoint"
            .to_owned(),
    );
    assert_eq!(found, expected);

    // Flows given directly may repeat an id (a flow file refuses that): pairs are ordered by
    // where each id first appears, so the repeated `a` sorts as the first flow.
    let unsub = ListenNode::new([EventKind::EmailUnsubscribe]).unwrap();
    let a = flow_to("a", "sec-1", unsub.clone(), crm);
    let c = flow_to("c", "sec-1", unsub, crm);
    let found: Vec<(String, String)> = lint_flows([&a, &c, &a])
        .iter()
        .map(|d| {
            let other = d.message.split('`').nth(1).unwrap();
            (d.flow.to_string(), other.to_owned())
        })
        .collect();
    let pair = |x: &str, y: &str| (x.to_owned(), y.to_owned());
    assert_eq!(
        found,
        [
            pair("a", "a"),
            pair("a", "a"),
            pair("a", "c"),
            pair("c", "a"),
            pair("c", "a"),
            pair("a", "c"),
        ]
    );
}

/// Every form the `EntryWindow` docs list: its length in seconds and how it is written back.
#[test]
fn entry_windows_in_every_documented_form() {
    const DAY: i64 = 86_400;
    let cases: &[(&str, i64, &str)] = &[
        ("P7D", 7 * DAY, "7 days"),
        ("P1W", 7 * DAY, "1 week"),
        ("P1M", 30 * DAY, "1 month"),
        ("P1Y", 365 * DAY, "1 year"),
        ("PT36H", 36 * 3_600, "36 hours"),
        ("P1DT12H", 36 * 3_600, "36 hours"),
        ("PT90M", 90 * 60, "90 minutes"),
        ("PT720H", 720 * 3_600, "720 hours"),
        ("7 days", 7 * DAY, "7 days"),
        ("30 days", 30 * DAY, "30 days"),
        ("7d", 7 * DAY, "7 days"),
        ("1 day", DAY, "1 day"),
        ("1 week", 7 * DAY, "1 week"),
        ("2w", 14 * DAY, "2 weeks"),
        ("1 month", 30 * DAY, "1 month"),
        ("3mo", 90 * DAY, "3 months"),
        ("12 months", 360 * DAY, "12 months"),
        ("1 year", 365 * DAY, "1 year"),
        ("1y", 365 * DAY, "1 year"),
        ("2 years", 730 * DAY, "2 years"),
        ("1 year 1 day", 366 * DAY, "366 days"),
        ("36 hours", 36 * 3_600, "36 hours"),
        ("36h", 36 * 3_600, "36 hours"),
        ("48h", 2 * DAY, "48 hours"),
        ("90 minutes", 90 * 60, "90 minutes"),
        ("90m", 90 * 60, "90 minutes"),
        ("1 day, 12 hours", 36 * 3_600, "36 hours"),
        ("1 day 12 hours", 36 * 3_600, "36 hours"),
        ("2 weeks 1 day", 15 * DAY, "15 days"),
        ("1 hour", 3_600, "1 hour"),
        ("45 seconds", 45, "45 seconds"),
    ];
    for &(text, seconds, written) in cases {
        let window: EntryWindow = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (window.duration().as_secs(), window.to_string().as_str()),
            (seconds, written),
            "{text}"
        );
        // Written back, it reads as the same window in the same unit.
        let again: EntryWindow = written.parse().unwrap();
        assert_eq!(
            (again, again.unit(), again.count()),
            (window, window.unit(), window.count())
        );
        // And the flow file takes it.
        let limit: EntryLimit =
            serde_json::from_value(json!({"at_most": {"entries": 1, "within": text}})).unwrap();
        assert_eq!(limit, EntryLimit::at_most_within(1, window).unwrap());
        assert_eq!(
            serde_json::to_value(limit).unwrap(),
            json!({"at_most": {"entries": 1, "within": written}})
        );
    }
    // Each unit's documented length.
    assert_eq!(
        WindowUnit::ALL.map(WindowUnit::seconds),
        [1, 60, 3_600, DAY, 7 * DAY, 30 * DAY, 365 * DAY]
    );
    // One length, however written, is one window.
    assert_eq!(
        EntryWindow::new(1, WindowUnit::Week).unwrap(),
        EntryWindow::new(7, WindowUnit::Day).unwrap()
    );
    assert_ne!(
        EntryWindow::new(12, WindowUnit::Month).unwrap(),
        EntryWindow::new(1, WindowUnit::Year).unwrap()
    );
    // A length is shown in weeks at most unless written in months or years.
    let from = |secs| EntryWindow::from_duration(jiff::SignedDuration::from_secs(secs)).unwrap();
    assert_eq!(from(30 * DAY).to_string(), "30 days");
    assert_eq!(from(28 * DAY).to_string(), "4 weeks");
    assert_eq!(from(3_600 + 1).to_string(), "3601 seconds");
    assert_eq!(
        EntryWindow::from_duration(jiff::SignedDuration::from_millis(1_500)),
        Err(ListenError::WindowFraction)
    );
}

#[test]
fn entry_windows_that_cannot_be_windows_are_refused_by_name() {
    let cases: &[(&str, ListenError)] = &[
        ("0 days", ListenError::NonPositiveWindow),
        ("PT0S", ListenError::NonPositiveWindow),
        ("-P1D", ListenError::NonPositiveWindow),
        ("-1d", ListenError::NonPositiveWindow),
        ("1 day ago", ListenError::NonPositiveWindow),
        ("PT0.5S", ListenError::WindowFraction),
        ("2 hours 1ms", ListenError::WindowFraction),
        ("7 parsecs", ListenError::UnreadableWindow),
        ("", ListenError::UnreadableWindow),
        ("seven days", ListenError::UnreadableWindow),
        ("P", ListenError::UnreadableWindow),
        ("101 years", ListenError::WindowTooLong),
        ("36501 days", ListenError::WindowTooLong),
        ("19998 years", ListenError::WindowTooLong),
        ("P100Y1D", ListenError::WindowTooLong),
    ];
    for (text, error) in cases {
        assert_eq!(text.parse::<EntryWindow>().as_ref(), Err(error), "{text}");
    }
    // In a flow file, the path names the window and the text is not repeated.
    let err = FlowFile::from_json(
        &json!({"version": 1, "flows": [{
            "id": "f", "section": "sec-1",
            "listen": {"kinds": ["email_unsubscribe"]},
            "settings": {"entry_limit": {"at_most": {"entries": 1, "within": "7 parsecs"}}},
            "webhook": {"url": "https://example.com/f"}
        }]})
        .to_string(),
    )
    .unwrap_err();
    assert_eq!(err.path, "flows[0].settings.entry_limit.at_most.within");
    assert_eq!(
        err.problem,
        FlowFileProblem::Invalid {
            reason: ListenError::UnreadableWindow.to_string()
        }
    );
    assert!(!err.to_string().contains("parsecs"), "{err}");
}

/// The longest window, 100 years, is written and read back; anything longer is refused, so that
/// every window written can be read again.
#[test]
fn the_longest_window_reads_back_and_a_longer_one_is_refused() {
    let max = EntryWindow::MAX;
    assert_eq!(
        (max.to_string().as_str(), max.duration().as_secs()),
        ("100 years", 3_153_600_000)
    );
    assert_eq!(max.to_string().parse::<EntryWindow>(), Ok(max));
    assert_eq!(EntryWindow::new(36_500, WindowUnit::Day), Ok(max));
    assert_eq!(EntryWindow::new(100, WindowUnit::Year), Ok(max));
    let day = EntryWindow::new(36_500, WindowUnit::Day).unwrap();
    assert_eq!(day.to_string().parse::<EntryWindow>(), Ok(day));
    for too_long in [
        EntryWindow::new(36_501, WindowUnit::Day),
        EntryWindow::new(101, WindowUnit::Year),
        EntryWindow::new(u32::MAX, WindowUnit::Year),
        EntryWindow::from_duration(jiff::SignedDuration::from_secs(i64::MAX)),
        EntryWindow::from_duration(jiff::SignedDuration::from_secs(3_153_600_001)),
    ] {
        assert_eq!(too_long, Err(ListenError::WindowTooLong));
    }
    assert_eq!(
        ListenError::WindowTooLong.to_string(),
        "an entry-limit window must be at most 100 years; leave `within` out to count every entry ever"
    );
}

#[test]
fn entry_limit_display_counts_in_the_singular_and_plural() {
    let window = |text: &str| text.parse::<EntryWindow>().unwrap();
    let cases = [
        (EntryLimit::Unlimited, "unlimited"),
        (EntryLimit::at_most(1).unwrap(), "at most 1 entry"),
        (EntryLimit::at_most(3).unwrap(), "at most 3 entries"),
        (
            EntryLimit::at_most_within(1, window("P1W")).unwrap(),
            "at most 1 entry within 1 week",
        ),
        (
            EntryLimit::at_most_within(5, window("1 year")).unwrap(),
            "at most 5 entries within 1 year",
        ),
    ];
    for (limit, text) in cases {
        assert_eq!(limit.to_string(), text);
    }
}

/// Each public lint constant is a code some lint reports, and every code reported is one of them.
#[test]
fn every_lint_code_is_a_public_constant_and_fires() {
    use std::collections::BTreeSet;
    let unsubscribe = || ListenNode::new([EventKind::EmailUnsubscribe]).unwrap();
    let abuse_narrowed = ListenNode::builder()
        .kind(EventKind::EmailAbuse)
        .subscription(sub("111"))
        .build()
        .unwrap();
    let flows = [
        flow("limited", unsubscribe()).with_settings(FlowSettings::with_entry_limit(
            EntryLimit::at_most(1).unwrap(),
        )),
        flow("abuse", abuse_narrowed),
        flow_to("twin-a", "sec-1", unsubscribe(), "https://example.com/same"),
        flow_to("twin-b", "sec-1", unsubscribe(), "https://example.com/same"),
        flow("off", unsubscribe()).with_active(false),
    ];
    let mut fired: BTreeSet<&str> = lint_flows(&flows).iter().map(|d| d.code).collect();
    let node = |url: &str, params: &[(&str, ParamSource)]| {
        params
            .iter()
            .fold(WebhookNode::builder(url), |b, (name, source)| {
                b.param(*name, source.clone())
            })
    };
    let id = flow_id("f");
    let email = || ("email", ParamSource::Email);
    let subscription = || ("s", ParamSource::SubscriptionId);
    let profile = || ("p", ParamSource::ProfileId);
    let unsubscribe_kinds = vec![EventKind::EmailUnsubscribe];
    /// An endpoint, its parameters and the kinds its flow takes.
    type Case = (
        &'static str,
        Vec<(&'static str, ParamSource)>,
        Vec<EventKind>,
    );
    let cases: [Case; 6] = [
        // abuse_sends_subscription, abuse_without_section
        (
            "https://e.example/a",
            vec![email(), subscription()],
            vec![EventKind::EmailAbuse],
        ),
        // unsubscribe_without_subscription
        (
            "https://e.example/u",
            vec![email()],
            unsubscribe_kinds.clone(),
        ),
        // identifier_mismatch
        (
            "https://e.example/i",
            vec![email(), subscription()],
            vec![EventKind::SmsUnsubscribe],
        ),
        // no_identifier
        (
            "https://e.example/n",
            vec![subscription()],
            unsubscribe_kinds.clone(),
        ),
        // kind_not_sent
        (
            "https://e.example/k",
            vec![profile(), subscription()],
            vec![EventKind::EmailUnsubscribe, EventKind::SmsUnsubscribe],
        ),
        // plain_http
        (
            "http://e.example/h",
            vec![profile(), subscription()],
            unsubscribe_kinds,
        ),
    ];
    let lints: Vec<Diagnostic> = cases
        .iter()
        .flat_map(|(url, params, kinds)| node(url, params).build().unwrap().lint(&id, kinds))
        .collect();
    fired.extend(lints.iter().map(|d| d.code));
    #[cfg(feature = "signing")]
    fired.extend(
        node("https://e.example/s", &[profile(), subscription()])
            .sign_with("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .build()
            .unwrap()
            .lint(&id, &[EventKind::EmailUnsubscribe])
            .iter()
            .map(|d| d.code),
    );
    #[cfg(not(feature = "signing"))]
    fired.insert(lint::SIGNED_QUERY_ENCODING); // a signing node cannot be built without it
    fired.extend(
        node(
            "https://e.example/t?token=abc",
            &[profile(), subscription()],
        )
        .build()
        .unwrap()
        .lint(&id, &[EventKind::EmailUnsubscribe])
        .iter()
        .map(|d| d.code),
    );
    // The catalog lints: a flow of an unknown Section, and one narrowing by a Folder and a
    // Subscription its Section does not hold.
    let catalog: Catalog = serde_json::from_str(
        r#"[{"id": "sec-1", "folders": [{"id": "news", "subscriptions": [{"id": "123456"}]}]}]"#,
    )
    .unwrap();
    let file = FlowFile::from_json(
        r#"{"version": 1, "flows": [
        {"id": "elsewhere", "section": "sec-9", "listen": {"kinds": ["email_unsubscribe"]},
         "webhook": {"method": "POST", "url": "https://e.example/c"}},
        {"id": "narrow", "section": "sec-1",
         "listen": {"kinds": ["email_unsubscribe"], "folders": ["news", "old"],
                    "subscriptions": ["123456", "1", "2", "3", "4", "5", "6"]},
         "webhook": {"method": "POST", "url": "https://e.example/c"}}]}"#,
    )
    .unwrap();
    let catalog_lints = lint::lint_catalog(&file.flows, &catalog);
    assert_eq!(
        catalog_lints
            .iter()
            .map(|d| (d.code, d.severity, d.flow.as_str(), d.message.as_str()))
            .collect::<Vec<_>>(),
        [
            (
                lint::UNKNOWN_SECTION,
                Severity::Warning,
                "elsewhere",
                "the catalog holds no section `sec-9`: the flow takes only that Section's \
                 opt-outs; fix \"section\" or add the Section to the catalog"
            ),
            (
                lint::UNKNOWN_FOLDER,
                Severity::Error,
                "narrow",
                "the listen node narrows by 1 folder section `sec-1` does not hold (`old`): the \
                 flow could never match and the router refuses the flows; fix \"listen.folders\" \
                 or add it to the catalog"
            ),
            (
                lint::UNKNOWN_SUBSCRIPTION,
                Severity::Warning,
                "narrow",
                "the listen node selects 6 subscriptions section `sec-1` does not hold (`1`, `2`, \
                 `3`, `4`, `5` and 1 more): no opt-out of them can arrive; fix \
                 \"listen.subscriptions\" or add them to the catalog"
            ),
        ]
    );
    fired.extend(catalog_lints.iter().map(|d| d.code));
    let codes: BTreeSet<&str> = lint::CODES.into_iter().collect();
    assert_eq!(codes.len(), 16, "every constant is a different code");
    assert_eq!(fired, codes);
    assert_eq!(
        [
            lint::ENTRY_LIMIT_LOSES_OPT_OUTS,
            lint::NARROWING_IGNORED_FOR_ABUSE,
            lint::DOUBLE_DELIVERY,
            lint::INACTIVE_FLOW,
            lint::ABUSE_SENDS_SUBSCRIPTION,
            lint::ABUSE_WITHOUT_SECTION,
            lint::UNSUBSCRIBE_WITHOUT_SUBSCRIPTION,
            lint::IDENTIFIER_MISMATCH,
            lint::NO_IDENTIFIER,
            lint::KIND_NOT_SENT,
            lint::SIGNED_QUERY_ENCODING,
            lint::PLAIN_HTTP,
            lint::CREDENTIAL_OUTSIDE_AUTH,
            lint::UNKNOWN_SECTION,
            lint::UNKNOWN_FOLDER,
            lint::UNKNOWN_SUBSCRIPTION,
        ],
        [
            "entry_limit_loses_opt_outs",
            "narrowing_ignored_for_abuse",
            "double_delivery",
            "inactive_flow",
            "abuse_sends_subscription",
            "abuse_without_section",
            "unsubscribe_without_subscription",
            "identifier_mismatch",
            "no_identifier",
            "kind_not_sent",
            "signed_query_encoding",
            "plain_http",
            "credential_outside_auth",
            "unknown_section",
            "unknown_folder",
            "unknown_subscription",
        ]
    );
}

#[test]
fn a_flow_builds_its_own_request_and_a_match_builds_it_with_the_routers_catalog() {
    use optout_relay::webhook::{RequestBuildError, WebhookId};

    let (news, weekly) = (
        FolderId::new("news").unwrap(),
        SubscriptionId::new("123456").unwrap(),
    );
    let section = Section::new(
        SectionId::new("sec-1").unwrap(),
        [Folder::new(news, [weekly.clone()])],
    )
    .unwrap();
    let catalog = Catalog::new([section]).unwrap();
    let flow = Flow::new(
        FlowId::new("crm").unwrap(),
        SectionId::new("sec-1").unwrap(),
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        WebhookNode::builder("https://crm.example.com/optout")
            .param("folder", ParamSource::FolderId)
            .param("email", ParamSource::Email)
            .build()
            .unwrap(),
    );
    let unsubscribe = |section: &str| {
        OptOutEvent::email_unsubscribe(
            EventId::new("evt-1").unwrap(),
            ProfileId::new("p-1").unwrap(),
            SectionId::new(section).unwrap(),
            weekly.clone(),
            at("2026-11-26T09:30:00Z"),
        )
    };
    let event = unsubscribe("sec-1");
    let profile = Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(Email::new("a@example.com").unwrap());
    let now = at("2026-11-26T09:30:05Z");

    // The flow's own id makes the webhook-id; its Section comes from the catalog.
    let built = flow.build_request(&catalog, &profile, &event, now).unwrap();
    assert_eq!(
        built.request().uri(),
        "https://crm.example.com/optout?folder=news&email=a%40example.com"
    );
    assert_eq!(
        built.webhook_id(),
        &WebhookId::derive(
            &FlowId::new("crm").unwrap(),
            &EventId::new("evt-1").unwrap()
        )
    );
    // A catalog without the flow's Section cannot give the Folder.
    assert_eq!(
        flow.build_request(&Catalog::default(), &profile, &event, now)
            .unwrap_err(),
        RequestBuildError::SectionNeeded {
            param: "folder".into()
        }
    );
    // An event of another Section is not this flow's.
    let mismatch = flow
        .build_request(&catalog, &profile, &unsubscribe("sec-2"), now)
        .unwrap_err();
    assert_eq!(
        mismatch,
        RequestBuildError::SectionMismatch {
            event_section: SectionId::new("sec-2").unwrap(),
            section: SectionId::new("sec-1").unwrap(),
        }
    );
    assert_eq!(
        mismatch.to_string(),
        "event of section `sec-2` given to a flow of section `sec-1`"
    );

    // A routed match builds the same bytes with one call.
    let router = Router::new([flow.clone()], &catalog).unwrap();
    let matches = router.matches(&event);
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].event(), &event);
    let via_match = matches[0].build_request(&profile, now).unwrap();
    assert_eq!(via_match.request().uri(), built.request().uri());
    assert_eq!(via_match.request().headers(), built.request().headers());
    assert_eq!(via_match.request().body(), built.request().body());
}
