//! Fixtures the store tests share: a Profile with an email, its Email - Unsubscribe, the plan of
//! one for a router, expected counts, a response with a status.

#![allow(dead_code, unreachable_pub)]

use optout_relay::relay::{self, Plan};
use optout_relay::store::Counts;
use optout_relay::*;

/// A Profile `id` with the email `{id}@example.com`.
pub fn profile(id: &str) -> Profile {
    Profile::new(ProfileId::new(id).unwrap())
        .with_email(Email::new(format!("{id}@example.com")).unwrap())
}

/// An Email - Unsubscribe `id` of `profile`, from Subscription 123456 of Section sec-1.
pub fn event(id: &str, profile: &str) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new(id).unwrap(),
        ProfileId::new(profile).unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    )
}

/// The plan of event `event_id` of `profile_id` through `router`, now.
pub fn plan(router: &Router, event_id: &str, profile_id: &str) -> Plan {
    relay::plan(
        router,
        &event(event_id, profile_id),
        &profile(profile_id),
        Timestamp::now(),
    )
}

/// Counts with these numbers.
pub fn counts(
    pending: u64,
    leased: u64,
    delivered: u64,
    dead_lettered: u64,
    entries: u64,
) -> Counts {
    let mut counts = Counts::default();
    counts.pending = pending;
    counts.leased = leased;
    counts.delivered = delivered;
    counts.dead_lettered = dead_lettered;
    counts.entries = entries;
    counts
}

/// An empty response with `status`.
pub fn response(status: u16) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .body(Vec::new())
        .unwrap()
}
