//! The domain model: ids, catalog, profiles, events, consent effects and their JSON shapes.

use optout_relay::model::ActivityId;
use optout_relay::model::ApplyError;
use optout_relay::model::AttributeName;
use optout_relay::model::CatalogError;
use optout_relay::model::ConsentEffect;
use optout_relay::model::ConsentState;
use optout_relay::model::EffectStatus;
use optout_relay::model::IdError;
use optout_relay::model::IdKind;
use optout_relay::model::IdProblem;
use optout_relay::model::NameKind;
use optout_relay::model::OptOutScope;
use optout_relay::model::ProfileError;
use optout_relay::model::Revocation;
use optout_relay::model::SectionOptOut;
use optout_relay::model::UnknownName;
use optout_relay::*;
use serde_json::json;

fn sub(id: &str) -> SubscriptionId {
    SubscriptionId::new(id).unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Section `sec-1` with two Folders (news: 111, 222; sms: 333) and Section `sec-2` (other: 999).
fn catalog() -> Catalog {
    let sec1 = Section::new(
        SectionId::new("sec-1").unwrap(),
        [
            Folder::new(FolderId::new("news").unwrap(), [sub("111"), sub("222")]),
            Folder::new(FolderId::new("sms").unwrap(), [sub("333")]),
        ],
    )
    .unwrap();
    let sec2 = Section::new(
        SectionId::new("sec-2").unwrap(),
        [Folder::new(FolderId::new("other").unwrap(), [sub("999")])],
    )
    .unwrap();
    Catalog::new([sec1, sec2]).unwrap()
}

fn profile() -> Profile {
    let mut p = Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(Email::new("a+b@example.com").unwrap())
        .with_mobile(Mobile::new("+46701234567").unwrap());
    for s in ["111", "222", "333", "999"] {
        p = p
            .with_consent(sub(s), Channel::Email)
            .with_consent(sub(s), Channel::Sms);
    }
    p
}

fn unsubscribe(id: &str, s: &str) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new(id).unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        sub(s),
        at("2026-11-26T09:30:00Z"),
    )
}

fn abuse(id: &str) -> OptOutEvent {
    OptOutEvent::email_abuse(
        EventId::new(id).unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        at("2026-11-26T10:00:00Z"),
    )
}

fn opted_out(event: &str, when: &str) -> ConsentState {
    ConsentState::OptedOut {
        event: Some(EventId::new(event).unwrap()),
        at: Some(at(when)),
    }
}

#[test]
fn ids_accept_platform_values_and_reject_bad_ones() {
    assert_eq!(SubscriptionId::new("123456").unwrap().as_str(), "123456");
    assert_eq!(
        SubscriptionId::from_audience_url("https://app.example.com/audience/subscription/123456")
            .unwrap()
            .as_str(),
        "123456"
    );
    assert_eq!(
        SubscriptionId::from_audience_url("https://app.example.com/subscription/42/edit?x=1#y")
            .unwrap()
            .as_str(),
        "42"
    );
    assert_eq!(
        SubscriptionId::from_audience_url("https://app.example.com/audience/123456"),
        Err(IdError {
            kind: IdKind::Subscription,
            problem: IdProblem::NotInUrl
        })
    );
    assert_eq!(
        SubscriptionId::from_audience_url("https://app.example.com/subscription/"),
        Err(IdError {
            kind: IdKind::Subscription,
            problem: IdProblem::NotInUrl
        })
    );

    assert_eq!(
        SectionId::new(""),
        Err(IdError {
            kind: IdKind::Section,
            problem: IdProblem::Empty
        })
    );
    assert_eq!(
        FolderId::new("x".repeat(129)),
        Err(IdError {
            kind: IdKind::Folder,
            problem: IdProblem::TooLong { len: 129, max: 128 }
        })
    );
    assert!(FolderId::new("x".repeat(128)).is_ok());
    assert_eq!(
        EventId::new("evt\n1"),
        Err(IdError {
            kind: IdKind::Event,
            problem: IdProblem::ControlCharacter { position: 3 }
        })
    );
    assert_eq!(
        ProfileId::new("p\u{0}"),
        Err(IdError {
            kind: IdKind::Profile,
            problem: IdProblem::ControlCharacter { position: 1 }
        })
    );
    assert_eq!(
        ActivityId::new("a\u{7f}").unwrap_err().to_string(),
        "invalid activity id: it holds a control character at byte 1"
    );
    assert_eq!(
        IdError {
            kind: IdKind::Folder,
            problem: IdProblem::TooLong { len: 129, max: 128 }
        }
        .to_string(),
        "invalid folder id: it is 129 bytes long, the limit is 128"
    );
    // Serde goes through the same validation.
    let err = serde_json::from_str::<SubscriptionId>("\"\"").unwrap_err();
    assert_eq!(err.to_string(), "invalid subscription id: it is empty");
    assert_eq!(serde_json::to_string(&sub("123456")).unwrap(), "\"123456\"");
}

#[test]
fn catalog_lookups() {
    let catalog = catalog();
    let sec1 = catalog.section(&SectionId::new("sec-1").unwrap()).unwrap();
    assert_eq!(sec1.folder_of(&sub("333")).unwrap().as_str(), "sms");
    assert_eq!(sec1.folder_of(&sub("999")), None);
    assert!(sec1.contains(&sub("111")));
    assert!(!sec1.contains(&sub("999")));
    assert_eq!(
        sec1.subscriptions()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["111", "222", "333"]
    );
    assert_eq!(sec1.subscription_count(), 3);
    let loc = catalog.locate(&sub("999")).unwrap();
    assert_eq!(
        (loc.section.as_str(), loc.folder.as_str()),
        ("sec-2", "other")
    );
    assert_eq!(catalog.locate(&sub("404")), None);
}

#[test]
fn catalog_rejects_duplicates() {
    let news = FolderId::new("news").unwrap();
    let sec = SectionId::new("sec-1").unwrap();
    assert_eq!(
        Section::new(
            sec.clone(),
            [
                Folder::new(news.clone(), [sub("1")]),
                Folder::new(news.clone(), [sub("2")])
            ]
        ),
        Err(CatalogError::DuplicateFolder {
            section: sec.clone(),
            folder: news.clone()
        })
    );
    assert_eq!(
        Section::new(
            sec.clone(),
            [
                Folder::new(news.clone(), [sub("1")]),
                Folder::new(FolderId::new("b").unwrap(), [sub("1")])
            ]
        ),
        Err(CatalogError::DuplicateSubscription {
            section: sec.clone(),
            subscription: sub("1")
        })
    );
    let a = Section::new(sec.clone(), [Folder::new(news.clone(), [sub("1")])]).unwrap();
    let b = Section::new(
        SectionId::new("sec-2").unwrap(),
        [Folder::new(news.clone(), [sub("1")])],
    )
    .unwrap();
    assert_eq!(
        Catalog::new([a.clone(), b]),
        Err(CatalogError::DuplicateSubscription {
            section: SectionId::new("sec-2").unwrap(),
            subscription: sub("1")
        })
    );
    assert_eq!(
        Catalog::new([a.clone(), a]),
        Err(CatalogError::DuplicateSection { section: sec })
    );
    // The same validation runs when a catalog is read from JSON.
    let err = serde_json::from_value::<Section>(json!({
        "id": "sec-1",
        "folders": [{"id": "f", "subscriptions": [{"id": "1"}, {"id": "1"}]}]
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "subscription `1` appears twice (in section `sec-1`)"
    );
}

#[test]
fn email_unsubscribe_from_a_leaves_b_subscribed() {
    let catalog = catalog();
    let sec1 = catalog.section(&SectionId::new("sec-1").unwrap()).unwrap();
    let mut p = profile();
    let effect = p.apply(&unsubscribe("evt-1", "111"), sec1).unwrap();
    assert_eq!(
        effect,
        ConsentEffect {
            event: EventId::new("evt-1").unwrap(),
            scope: OptOutScope::Subscription {
                section: SectionId::new("sec-1").unwrap(),
                folder: FolderId::new("news").unwrap(),
                subscription: sub("111"),
            },
            channel: Channel::Email,
            revoked: vec![Revocation {
                subscription: sub("111"),
                was_opted_in: true
            }],
            status: EffectStatus::Changed,
        }
    );
    assert_eq!(
        p.consent(&sub("111"), Channel::Email),
        Some(&opted_out("evt-1", "2026-11-26T09:30:00Z"))
    );
    assert!(p.is_opted_in(&sub("111"), Channel::Sms));
    for s in ["222", "333", "999"] {
        assert!(p.is_opted_in(&sub(s), Channel::Email), "{s}");
    }
    assert!(p.section_opt_outs.is_empty());

    // Later, B: a second, separate opt-out.
    let effect = p.apply(&unsubscribe("evt-2", "222"), sec1).unwrap();
    assert_eq!(
        effect.revoked,
        vec![Revocation {
            subscription: sub("222"),
            was_opted_in: true
        }]
    );
    assert!(!p.is_opted_in(&sub("222"), Channel::Email));
    assert!(p.is_opted_in(&sub("333"), Channel::Email));
}

#[test]
fn same_event_twice_changes_nothing_and_says_so() {
    let catalog = catalog();
    let sec1 = catalog.section(&SectionId::new("sec-1").unwrap()).unwrap();
    let mut p = profile();
    let event = unsubscribe("evt-1", "111");
    assert_eq!(p.apply(&event, sec1).unwrap().status, EffectStatus::Changed);
    let before = p.clone();
    let again = p.apply(&event, sec1).unwrap();
    assert_eq!(again.status, EffectStatus::AlreadyApplied);
    assert!(again.revoked.is_empty());
    assert!(!again.changed());
    assert_eq!(p, before);

    // Another event for the same opt-out: no change either, the first record is kept.
    let other = p.apply(&unsubscribe("evt-9", "111"), sec1).unwrap();
    assert_eq!(other.status, EffectStatus::AlreadyOptedOut);
    assert_eq!(p, before);

    // Abuse twice.
    let event = abuse("evt-3");
    assert_eq!(p.apply(&event, sec1).unwrap().status, EffectStatus::Changed);
    let before = p.clone();
    let again = p.apply(&event, sec1).unwrap();
    assert_eq!(
        (again.status, again.revoked.len()),
        (EffectStatus::AlreadyApplied, 0)
    );
    assert_eq!(p, before);
    let second_report = p.apply(&abuse("evt-4"), sec1).unwrap();
    assert_eq!(
        (second_report.status, second_report.revoked.len()),
        (EffectStatus::AlreadyOptedOut, 0)
    );
    assert_eq!(p, before);
}

#[test]
fn sms_unsubscribe_revokes_only_sms_for_that_subscription() {
    let catalog = catalog();
    let sec1 = catalog.section(&SectionId::new("sec-1").unwrap()).unwrap();
    let mut p = profile();
    let event = OptOutEvent::sms_unsubscribe(
        EventId::new("evt-5").unwrap(),
        ProfileId::new("p-1").unwrap(),
        SectionId::new("sec-1").unwrap(),
        sub("333"),
        at("2026-11-26T11:00:00Z"),
    );
    let effect = p.apply(&event, sec1).unwrap();
    assert_eq!(effect.channel, Channel::Sms);
    assert_eq!(
        effect.revoked,
        vec![Revocation {
            subscription: sub("333"),
            was_opted_in: true
        }]
    );
    assert_eq!(
        p.consent(&sub("333"), Channel::Sms),
        Some(&opted_out("evt-5", "2026-11-26T11:00:00Z"))
    );
    assert!(p.is_opted_in(&sub("333"), Channel::Email));
    for s in ["111", "222", "999"] {
        assert!(p.is_opted_in(&sub(s), Channel::Sms), "{s}");
    }
}

#[test]
fn abuse_revokes_all_email_in_the_section_only() {
    let catalog = catalog();
    let sec1 = catalog.section(&SectionId::new("sec-1").unwrap()).unwrap();
    let mut p = profile();
    // 222 already opted out earlier; 444 is in no consent record at all.
    p.set_consent(
        sub("222"),
        Channel::Email,
        opted_out("evt-0", "2026-01-01T00:00:00Z"),
    );
    let sec1 = &Section::new(
        sec1.id().clone(),
        sec1.folders()
            .iter()
            .cloned()
            .chain([Folder::new(FolderId::new("new").unwrap(), [sub("444")])]),
    )
    .unwrap();
    let effect = p.apply(&abuse("evt-3"), sec1).unwrap();
    assert_eq!(
        effect,
        ConsentEffect {
            event: EventId::new("evt-3").unwrap(),
            scope: OptOutScope::Section {
                section: SectionId::new("sec-1").unwrap()
            },
            channel: Channel::Email,
            revoked: vec![
                Revocation {
                    subscription: sub("111"),
                    was_opted_in: true
                },
                Revocation {
                    subscription: sub("333"),
                    was_opted_in: true
                },
                Revocation {
                    subscription: sub("444"),
                    was_opted_in: false
                },
            ],
            status: EffectStatus::Changed,
        }
    );
    let when = "2026-11-26T10:00:00Z";
    for s in ["111", "333", "444"] {
        assert_eq!(
            p.consent(&sub(s), Channel::Email),
            Some(&opted_out("evt-3", when)),
            "{s}"
        );
    }
    // The earlier opt-out keeps its own record.
    assert_eq!(
        p.consent(&sub("222"), Channel::Email),
        Some(&opted_out("evt-0", "2026-01-01T00:00:00Z"))
    );
    // Another Section is untouched, and SMS consent everywhere is untouched.
    assert!(p.is_opted_in(&sub("999"), Channel::Email));
    for s in ["111", "222", "333", "999"] {
        assert!(p.is_opted_in(&sub(s), Channel::Sms), "{s}");
    }
    // One section-level record.
    assert_eq!(p.section_opt_outs.len(), 1);
    assert_eq!(
        p.section_opt_outs[&SectionId::new("sec-1").unwrap()],
        SectionOptOut {
            event: EventId::new("evt-3").unwrap(),
            at: at(when)
        }
    );
}

#[test]
fn events_that_do_not_fit_the_catalog_are_typed_errors() {
    let catalog = catalog();
    let sec1 = catalog.section(&SectionId::new("sec-1").unwrap()).unwrap();
    let sec2 = catalog.section(&SectionId::new("sec-2").unwrap()).unwrap();
    let mut p = profile();
    let before = p.clone();
    assert_eq!(
        p.apply(&unsubscribe("evt-1", "999"), sec1),
        Err(ApplyError::UnknownSubscription {
            subscription: sub("999"),
            section: SectionId::new("sec-1").unwrap()
        })
    );
    assert_eq!(
        p.apply(&abuse("evt-3"), sec2),
        Err(ApplyError::SectionMismatch {
            event_section: SectionId::new("sec-1").unwrap(),
            catalog_section: SectionId::new("sec-2").unwrap(),
        })
    );
    let mut other = Profile::new(ProfileId::new("p-2").unwrap());
    let mismatch = other.apply(&abuse("evt-3"), sec1).unwrap_err();
    assert_eq!(
        mismatch,
        ApplyError::ProfileMismatch {
            event_profile: ProfileId::new("p-1").unwrap(),
            profile: ProfileId::new("p-2").unwrap(),
        }
    );
    // A Profile id may be personal: both are shown masked.
    assert_eq!(
        mismatch.to_string(),
        "event for profile `p***` applied to profile `p***`"
    );
    assert_eq!(
        format!("{mismatch:?}"),
        r#"ProfileMismatch { event_profile: ProfileId("p***"), profile: ProfileId("p***") }"#
    );
    assert_eq!(ProfileId::new("ada@example.com").unwrap().masked(), "a***");
    assert_eq!(p, before);
}

#[test]
fn event_json_shape_round_trips() {
    let event = unsubscribe("evt-1", "123456")
        .with_activity(ActivityId::new("newsletter-2026-11").unwrap());
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(
        value,
        json!({
            "id": "evt-1",
            "profile": "p-1",
            "section": "sec-1",
            "kind": "email_unsubscribe",
            "subscription": "123456",
            "activity": "newsletter-2026-11",
            "occurred_at": "2026-11-26T09:30:00Z",
            "origin": "communication"
        })
    );
    assert_eq!(serde_json::from_value::<OptOutEvent>(value).unwrap(), event);

    let abuse = abuse("evt-3").with_origin(Origin::Api);
    let text = serde_json::to_string(&abuse).unwrap();
    assert_eq!(
        text,
        r#"{"id":"evt-3","profile":"p-1","section":"sec-1","kind":"email_abuse","occurred_at":"2026-11-26T10:00:00Z","origin":"api"}"#
    );
    assert_eq!(serde_json::from_str::<OptOutEvent>(&text).unwrap(), abuse);

    // The platform's names are accepted as aliases.
    let sms: OptOutEvent = serde_json::from_value(json!({
        "id": "e", "profile": "p", "section": "s", "kind": "SMS - Unsubscribe",
        "subscription": "1", "occurred_at": "2026-11-26T10:00:00+01:00", "origin": "file_import"
    }))
    .unwrap();
    assert_eq!(sms.kind(), EventKind::SmsUnsubscribe);
    assert_eq!(sms.occurred_at(), at("2026-11-26T09:00:00Z"));
    assert_eq!(sms.origin(), Origin::FileImport);
}

#[test]
fn malformed_events_are_rejected_with_the_reason() {
    let base = json!({
        "id": "e", "profile": "p", "section": "s", "kind": "email_unsubscribe",
        "occurred_at": "2026-11-26T10:00:00Z", "origin": "communication"
    });
    let err = serde_json::from_value::<OptOutEvent>(base.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "an event of kind Email - Unsubscribe needs the field `subscription`"
    );

    let mut abuse = base.clone();
    abuse["kind"] = json!("email_abuse");
    abuse["subscription"] = json!("1");
    let err = serde_json::from_value::<OptOutEvent>(abuse).unwrap_err();
    assert_eq!(
        err.to_string(),
        "an event of kind Email - Abuse does not take the field `subscription`"
    );

    let mut bad_kind = base.clone();
    bad_kind["kind"] = json!("email_bounce");
    assert!(
        serde_json::from_value::<OptOutEvent>(bad_kind)
            .unwrap_err()
            .to_string()
            .starts_with("unknown variant `email_bounce`")
    );

    let mut bad_time = base.clone();
    bad_time["subscription"] = json!("1");
    bad_time["occurred_at"] = json!("yesterday");
    assert!(serde_json::from_value::<OptOutEvent>(bad_time).is_err());

    let mut unknown = base;
    unknown["subscription"] = json!("1");
    unknown["colour"] = json!("red");
    assert!(
        serde_json::from_value::<OptOutEvent>(unknown)
            .unwrap_err()
            .to_string()
            .starts_with("unknown field `colour`")
    );
}

#[test]
fn profile_json_shape_round_trips_and_debug_is_masked() {
    let mut p = Profile::new(ProfileId::new("p-1").unwrap())
        .with_email(Email::new("a+b@example.com").unwrap())
        .with_mobile(Mobile::new("+46701234567").unwrap())
        .with_attribute(AttributeName::new("first_name").unwrap(), "Ada")
        .with_attribute(AttributeName::new("score").unwrap(), 42)
        .with_consent(sub("111"), Channel::Email);
    let catalog = catalog();
    let sec1 = catalog.section(&SectionId::new("sec-1").unwrap()).unwrap();
    assert!(p.apply(&abuse("evt-3"), sec1).unwrap().changed());
    let value = serde_json::to_value(&p).unwrap();
    assert_eq!(
        value,
        json!({
            "id": "p-1",
            "email": "a+b@example.com",
            "mobile": "+46701234567",
            "attributes": {"first_name": "Ada", "score": 42},
            "consent": {
                "111": {"email": {"status": "opted_out", "event": "evt-3", "at": "2026-11-26T10:00:00Z"}},
                "222": {"email": {"status": "opted_out", "event": "evt-3", "at": "2026-11-26T10:00:00Z"}},
                "333": {"email": {"status": "opted_out", "event": "evt-3", "at": "2026-11-26T10:00:00Z"}}
            },
            "section_opt_outs": {"sec-1": {"event": "evt-3", "at": "2026-11-26T10:00:00Z"}}
        })
    );
    assert_eq!(serde_json::from_value::<Profile>(value).unwrap(), p);

    let debug = format!("{p:?}");
    for secret in ["a+b@example.com", "+46701234567", "Ada", "42"] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    assert!(debug.contains("a***@e***.com"));
    assert!(debug.contains("Text([masked, 3 chars])"));

    let section_json = serde_json::to_value(sec1).unwrap();
    assert_eq!(
        section_json,
        json!({"id": "sec-1", "folders": [
            {"id": "news", "subscriptions": [{"id": "111"}, {"id": "222"}]},
            {"id": "sms", "subscriptions": [{"id": "333"}]}
        ]})
    );
    assert_eq!(
        &serde_json::from_value::<Section>(section_json).unwrap(),
        sec1
    );
    let catalog_json = serde_json::to_string(&catalog).unwrap();
    assert_eq!(
        serde_json::from_str::<Catalog>(&catalog_json).unwrap(),
        catalog
    );
}

/// A key given twice in a Profile's `attributes`, `consent` or `section_opt_outs` is an error
/// naming the map and the entry's position, never the key or the value (serde's maps would keep
/// the last silently: opted in, then opted out, read as opted out).
#[test]
fn profile_json_refuses_repeated_keys() {
    let read = |text: &str| serde_json::from_str::<Profile>(text).map_err(|e| e.to_string());
    let repeated = |field, key, position| ProfileError::DuplicateKey {
        field,
        key,
        position,
    };
    assert_eq!(
        repeated("consent", "Subscription id", 1).to_string(),
        "`consent` entry #1 repeats the Subscription id of an earlier entry: each may appear once"
    );
    let consent = r#"{"id": "p-1", "consent": {
        "123": {"email": {"status": "opted_in"}},
        "123": {"email": {"status": "opted_out"}}}}"#;
    assert_eq!(
        read(consent),
        Err(format!(
            "{} at line 3 column 13",
            repeated("consent", "Subscription id", 1)
        ))
    );
    let attributes =
        r#"{"id": "p-1", "attributes": {"Email": "x", "crm": "secret-canary", "crm": "b"}}"#;
    let err = read(attributes).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{} at line 1 column 72",
            repeated("attributes", "attribute name", 2)
        )
    );
    assert!(
        !err.contains("secret-canary") && !err.contains("crm"),
        "{err}"
    );
    let sections = r#"{"id": "p-1", "section_opt_outs": {
        "sec-1": {"event": "e-1", "at": "2026-11-26T09:30:00Z"},
        "sec-1": {"event": "e-2", "at": "2026-11-26T09:31:00Z"}}}"#;
    assert_eq!(
        read(sections),
        Err(format!(
            "{} at line 3 column 15",
            repeated("section_opt_outs", "Section id", 1)
        ))
    );
    // A channel given twice for one Subscription: serde's own error for a repeated field.
    let channel = r#"{"id": "p-1", "consent": {"123": {"email": {"status": "opted_in"}, "email": {"status": "opted_out"}}}}"#;
    assert_eq!(
        read(channel),
        Err("duplicate field `email` at line 1 column 74".to_owned())
    );
    // Distinct keys read as before, in order, and write back the same.
    let text = r#"{"id": "p-1", "attributes": {"crm": "a", "vip": true}, "consent": {
        "123": {"email": {"status": "opted_in"}},
        "456": {"email": {"status": "opted_out"}, "sms": {"status": "opted_in"}}}}"#;
    let profile: Profile = serde_json::from_str(text).unwrap();
    let mut expected = Profile::new(ProfileId::new("p-1").unwrap())
        .with_attribute(AttributeName::new("crm").unwrap(), "a")
        .with_attribute(AttributeName::new("vip").unwrap(), true)
        .with_consent(sub("123"), Channel::Email)
        .with_consent(sub("456"), Channel::Sms);
    expected.set_consent(
        sub("456"),
        Channel::Email,
        ConsentState::OptedOut {
            event: None,
            at: None,
        },
    );
    assert_eq!(profile, expected);
    let written = serde_json::to_string(&profile).unwrap();
    assert_eq!(serde_json::from_str::<Profile>(&written).unwrap(), profile);
}

#[test]
fn event_kinds_read_their_wire_and_platform_names() {
    for kind in EventKind::ALL {
        assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
        assert_eq!(kind.to_string().parse::<EventKind>(), Ok(kind));
        assert_eq!(kind.platform_name().parse::<EventKind>(), Ok(kind));
        // The same names as JSON.
        let json: EventKind = serde_json::from_value(json!(kind.to_string())).unwrap();
        assert_eq!(json, kind);
    }
    let refused = UnknownName::new(NameKind::EventKind);
    for text in [
        "",
        "email",
        "Email_Unsubscribe",
        "email_unsubscribe ",
        "email - unsubscribe",
        "Email-Unsubscribe",
    ] {
        assert_eq!(text.parse::<EventKind>(), Err(refused), "{text:?}");
    }
    assert_eq!(
        refused.to_string(),
        "unknown event kind, expected one of `email_unsubscribe`, `email_abuse`, \
         `sms_unsubscribe`, `Email - Unsubscribe`, `Email - Abuse`, `SMS - Unsubscribe`"
    );
}

#[test]
fn channels_and_origins_read_their_wire_names() {
    for channel in Channel::ALL {
        assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
        let json: Channel = serde_json::from_value(json!(channel.as_str())).unwrap();
        assert_eq!(json, channel);
    }
    let refused = UnknownName::new(NameKind::Channel);
    // `Display` (`Email`, `SMS`) is for people; JSON does not take it either.
    for text in ["", "Email", "SMS", "mail", " sms", "push"] {
        assert_eq!(text.parse::<Channel>(), Err(refused), "{text:?}");
        assert!(serde_json::from_value::<Channel>(json!(text)).is_err());
    }
    assert_eq!(
        refused.to_string(),
        "unknown channel, expected one of `email`, `sms`"
    );

    for origin in Origin::ALL {
        assert_eq!(origin.as_str().parse::<Origin>(), Ok(origin));
        assert_eq!(origin.to_string().parse::<Origin>(), Ok(origin));
        let json: Origin = serde_json::from_value(json!(origin.as_str())).unwrap();
        assert_eq!(json, origin);
    }
    let refused = UnknownName::new(NameKind::Origin);
    for text in ["", "API", "file-import", "fileImport", "communication\n"] {
        assert_eq!(text.parse::<Origin>(), Err(refused), "{text:?}");
    }
    assert_eq!(
        refused.to_string(),
        "unknown origin, expected one of `communication`, `api`, `file_import`"
    );
}

#[test]
fn an_unknown_name_is_not_repeated() {
    let secret = format!("alice@example.com{}", "x".repeat(100_000));
    for error in [
        secret.parse::<EventKind>().unwrap_err(),
        secret.parse::<Channel>().unwrap_err(),
        secret.parse::<Origin>().unwrap_err(),
    ] {
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains("alice"), "{shown}");
            assert!(shown.len() < 200, "{shown}");
        }
    }
}
