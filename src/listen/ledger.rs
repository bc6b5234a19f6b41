//! Entry bookkeeping: who entered which flow, when, with which event.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::listen::EntryLimit;
use crate::listen::entry::{EntryDecision, EntryHistory, decide_entry};
use crate::model::{EventId, FlowId, ProfileId};

/// One would-be entry of a Profile into a flow, caused by one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRequest<'a> {
    /// The flow.
    pub flow: &'a FlowId,
    /// The Profile.
    pub profile: &'a ProfileId,
    /// The event; a re-delivered copy carries the same id.
    pub event: &'a EventId,
}

/// Entry bookkeeping for flows, behind one method, for routing with
/// [`Router::route`](crate::Router::route).
///
/// To relay opt-outs, do not keep entries in a ledger of their own: an entry recorded apart from
/// its delivery can survive a crash that loses the delivery, and the event is then refused as
/// already entered for ever. A [`DeliveryStore`](crate::DeliveryStore) records each entry in
/// the same transaction as its delivery, with the same rule
/// ([`relay::decide_entry`](crate::relay::decide_entry)).
///
/// [`try_enter`](Self::try_enter) must decide and record in one step: a re-delivered copy of an
/// event already entered is [`EntryDecision::AlreadyEntered`] whatever the limit; otherwise the
/// entry is refused with [`EntryDecision::LimitReached`] when the limit is reached (entries
/// recorded at times `t` with `now - within < t` count for a windowed limit, later ones too:
/// they were recorded concurrently), and recorded at `now` when it is entered. Refused entries
/// are not recorded. Time is passed in, never read from a clock.
///
/// ```
/// use optout_relay::{EntryLimit, EventId, FlowId, ProfileId};
/// use optout_relay::listen::{EntryDecision, EntryLedger, EntryRequest, InMemoryLedger};
///
/// // Any ledger: the same rule decides.
/// fn enter(ledger: &mut dyn EntryLedger, event: &EventId) -> EntryDecision {
///     let (flow, profile) = (FlowId::new("crm").unwrap(), ProfileId::new("p-1").unwrap());
///     let request = EntryRequest { flow: &flow, profile: &profile, event };
///     let once = EntryLimit::at_most(1).unwrap();
///     ledger.try_enter(request, once, "2026-11-26T09:30:00Z".parse().unwrap())
/// }
///
/// let mut ledger = InMemoryLedger::new();
/// let (first, second) = (EventId::new("evt-1")?, EventId::new("evt-2")?);
/// assert_eq!(enter(&mut ledger, &first), EntryDecision::Entered { entry: 1 });
/// assert_eq!(enter(&mut ledger, &first), EntryDecision::AlreadyEntered);
/// assert!(matches!(enter(&mut ledger, &second), EntryDecision::LimitReached { entries: 1, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait EntryLedger {
    /// Decides whether `request` may enter under `limit` at `now`, and records it if so.
    fn try_enter(
        &mut self,
        request: EntryRequest<'_>,
        limit: EntryLimit,
        now: Timestamp,
    ) -> EntryDecision;
}

impl<L: EntryLedger + ?Sized> EntryLedger for &mut L {
    fn try_enter(
        &mut self,
        request: EntryRequest<'_>,
        limit: EntryLimit,
        now: Timestamp,
    ) -> EntryDecision {
        (**self).try_enter(request, limit, now)
    }
}

/// One recorded entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Recorded {
    event: EventId,
    at: Timestamp,
}

/// The entries of one flow: per Profile, oldest first, and every event id for de-duplication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "HashMap<ProfileId, Vec<Recorded>>",
    into = "HashMap<ProfileId, Vec<Recorded>>"
)]
struct FlowEntries {
    profiles: HashMap<ProfileId, Vec<Recorded>>,
    events: HashSet<EventId>,
}

impl From<HashMap<ProfileId, Vec<Recorded>>> for FlowEntries {
    fn from(profiles: HashMap<ProfileId, Vec<Recorded>>) -> Self {
        let events = profiles
            .values()
            .flatten()
            .map(|r| r.event.clone())
            .collect();
        Self { profiles, events }
    }
}

impl From<FlowEntries> for HashMap<ProfileId, Vec<Recorded>> {
    fn from(entries: FlowEntries) -> Self {
        entries.profiles
    }
}

/// The in-memory [`EntryLedger`]: every entry of every Profile into every flow.
///
/// A re-delivered copy of an event is recognised in constant time; a windowed limit counts the
/// entries of that one Profile. Memory grows with the number of entries;
/// [`prune`](Self::prune) forgets entries older than a cut-off (after which a re-delivered copy
/// of a forgotten event is no longer recognised, and forgotten entries no longer count against a
/// limit). Serializable, so that a host can persist it.
///
/// ```
/// use optout_relay::*;
/// use optout_relay::listen::{EntryDecision, EntryLedger, EntryRequest, InMemoryLedger};
///
/// let mut ledger = InMemoryLedger::new();
/// let (flow, profile, event) = (FlowId::new("f")?, ProfileId::new("p")?, EventId::new("e")?);
/// let request = EntryRequest { flow: &flow, profile: &profile, event: &event };
/// let now: Timestamp = "2026-11-26T09:00:00Z".parse()?;
/// assert_eq!(ledger.try_enter(request, EntryLimit::Unlimited, now), EntryDecision::Entered { entry: 1 });
/// assert_eq!(ledger.try_enter(request, EntryLimit::Unlimited, now), EntryDecision::AlreadyEntered);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InMemoryLedger {
    flows: HashMap<FlowId, FlowEntries>,
}

impl InMemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of entries recorded.
    pub fn len(&self) -> usize {
        self.flows.values().map(|f| f.events.len()).sum()
    }

    /// Whether no entry is recorded.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The number of entries of `profile` into `flow`.
    pub fn entries(&self, flow: &FlowId, profile: &ProfileId) -> usize {
        self.flows
            .get(flow)
            .and_then(|f| f.profiles.get(profile))
            .map_or(0, Vec::len)
    }

    /// Forgets every entry recorded before `before`.
    pub fn prune(&mut self, before: Timestamp) {
        for flow in self.flows.values_mut() {
            let FlowEntries { profiles, events } = flow;
            for entries in profiles.values_mut() {
                entries.retain(|e| {
                    let keep = e.at >= before;
                    if !keep {
                        events.remove(&e.event);
                    }
                    keep
                });
            }
            profiles.retain(|_, entries| !entries.is_empty());
        }
        self.flows.retain(|_, flow| !flow.profiles.is_empty());
    }
}

impl InMemoryLedger {
    /// What the ledger holds about `request`'s (flow, Profile, event), counted for `limit` at
    /// `now`: the input of [`relay::decide_entry`](crate::relay::decide_entry).
    pub fn history(
        &self,
        request: EntryRequest<'_>,
        limit: EntryLimit,
        now: Timestamp,
    ) -> EntryHistory {
        let Some(flow) = self.flows.get(request.flow) else {
            return EntryHistory::default();
        };
        let entries = flow
            .profiles
            .get(request.profile)
            .map_or(&[][..], Vec::as_slice);
        let counted = match crate::listen::entry::window_start(limit, now) {
            None => entries.len(),
            Some(start) => entries.iter().filter(|e| e.at > start).count(),
        };
        EntryHistory {
            already_entered: flow.events.contains(request.event),
            counted: u32::try_from(counted).unwrap_or(u32::MAX),
            total: u32::try_from(entries.len()).unwrap_or(u32::MAX),
        }
    }
}

impl EntryLedger for InMemoryLedger {
    fn try_enter(
        &mut self,
        request: EntryRequest<'_>,
        limit: EntryLimit,
        now: Timestamp,
    ) -> EntryDecision {
        let decision = decide_entry(limit, &self.history(request, limit, now));
        if decision.entered() {
            let flow = self.flows.entry(request.flow.clone()).or_default();
            flow.profiles
                .entry(request.profile.clone())
                .or_default()
                .push(Recorded {
                    event: request.event.clone(),
                    at: now,
                });
            flow.events.insert(request.event.clone());
        }
        decision
    }
}
