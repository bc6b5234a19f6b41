//! The article's three opt-outs applied to one Profile, printing each consent change.
//!
//! Run with `cargo run --example article`.

use optout_relay::model::ConsentState;
use optout_relay::model::EffectStatus;
use optout_relay::model::OptOutScope;
use optout_relay::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A Section with two Folders, as the platform's Audience shows it.
    let section: Section = serde_json::from_str(
        r#"{
            "id": "sec-1",
            "name": "Brand",
            "folders": [
                {"id": "news", "name": "Newsletters", "subscriptions": [
                    {"id": "123456", "name": "Weekly digest"},
                    {"id": "123457", "name": "Product news"}
                ]},
                {"id": "sms", "name": "SMS programmes", "subscriptions": [
                    {"id": "200001", "name": "Flash sales by SMS"}
                ]}
            ]
        }"#,
    )?;

    let mut profile = Profile::new(ProfileId::new("p-1")?)
        .with_email(Email::new("a+b@example.com")?)
        .with_mobile(Mobile::new("+46 70 123 45 67")?);
    for subscription in section.subscriptions() {
        for channel in Channel::ALL {
            profile.set_consent(subscription.id.clone(), channel, ConsentState::OptedIn);
        }
    }
    println!(
        "profile {} ({}, {})",
        profile.id,
        profile
            .email
            .as_ref()
            .map_or_else(String::new, Email::masked),
        profile
            .mobile
            .as_ref()
            .map_or_else(String::new, Mobile::masked)
    );
    print_consent(&profile, &section);

    let events: Vec<OptOutEvent> = serde_json::from_str(
        r#"[
            {"id": "evt-1", "profile": "p-1", "section": "sec-1", "kind": "email_unsubscribe",
             "subscription": "123456", "activity": "weekly-2026-47",
             "occurred_at": "2026-11-20T08:00:00Z", "origin": "communication"},
            {"id": "evt-2", "profile": "p-1", "section": "sec-1", "kind": "sms_unsubscribe",
             "subscription": "200001", "occurred_at": "2026-11-22T12:15:00Z", "origin": "communication"},
            {"id": "evt-3", "profile": "p-1", "section": "sec-1", "kind": "email_abuse",
             "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"},
            {"id": "evt-3", "profile": "p-1", "section": "sec-1", "kind": "email_abuse",
             "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"}
        ]"#,
    )?;

    for event in &events {
        let effect = profile.apply(event, &section)?;
        let scope = match &effect.scope {
            OptOutScope::Subscription {
                subscription,
                folder,
                ..
            } => {
                format!("subscription {subscription} (folder {folder})")
            }
            OptOutScope::Section { section } => format!("every subscription of section {section}"),
            _ => String::from("unknown scope"),
        };
        println!();
        println!(
            "{} {} at {}: {} consent, {}",
            event.id(),
            event.kind(),
            event.occurred_at(),
            effect.channel,
            scope
        );
        match effect.status {
            EffectStatus::Changed => {
                for revocation in &effect.revoked {
                    println!("  revoked {} {}", effect.channel, revocation.subscription);
                }
            }
            EffectStatus::AlreadyApplied => {
                println!("  already applied: nothing changed (a re-delivered copy)")
            }
            EffectStatus::AlreadyOptedOut => println!("  already opted out: nothing changed"),
            _ => println!("  nothing changed"),
        }
        print_consent(&profile, &section);
    }
    println!();
    println!(
        "section-level opt-outs: {}",
        serde_json::to_string(&profile.section_opt_outs)?
    );
    Ok(())
}

fn print_consent(profile: &Profile, section: &Section) {
    for subscription in section.subscriptions() {
        let state = |channel| match profile.consent(&subscription.id, channel) {
            Some(ConsentState::OptedIn) => "in",
            Some(ConsentState::OptedOut { .. }) => "OUT",
            None => "-",
        };
        println!(
            "  {:<8} {:<20} email {:<3} sms {:<3}",
            subscription.id,
            subscription.name.as_deref().unwrap_or(""),
            state(Channel::Email),
            state(Channel::Sms)
        );
    }
}
