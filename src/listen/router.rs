//! The router: which flows an opt-out event enters, indexed so that the cost of routing does not
//! grow with the number of flows that cannot match.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::listen::error::RouterError;
use crate::listen::{EntryDecision, EntryLedger, EntryRequest, Flow};
use crate::model::{
    ActivityId, Catalog, EventKind, FlowId, FolderId, OptOutEvent, Origin, Profile, SectionId,
    SubscriptionId,
};
use crate::webhook::{RequestBuildError, WebhookRequest};

/// How the event's Subscription met the flow's narrowing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "subscription", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubscriptionMatch {
    /// The flow takes any Subscription.
    Any,
    /// The flow narrows by Subscription or Folder, and this Subscription is selected.
    Selected(SubscriptionId),
    /// Email - Abuse covers the whole Section: Subscription and Folder narrowing do not apply.
    SectionLevel,
}

/// How the event's Activity met the flow's narrowing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "activity", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActivityMatch {
    /// The flow takes any Activity.
    Any,
    /// The flow narrows by Activity, and this Activity is selected.
    Selected(ActivityId),
}

/// Why an event matched a flow: every criterion, and how it was met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Why {
    /// The flow's (and the event's) Section.
    pub section: SectionId,
    /// The event kind, which the flow takes.
    pub kind: EventKind,
    /// The event's origin, which the flow takes.
    pub origin: Origin,
    /// How the Subscription narrowing was met.
    pub subscription: SubscriptionMatch,
    /// How the Activity narrowing was met.
    pub activity: ActivityMatch,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in section {} through {}",
            self.kind, self.section, self.origin
        )?;
        match &self.subscription {
            SubscriptionMatch::Any => f.write_str(", any subscription")?,
            SubscriptionMatch::Selected(s) => write!(f, ", subscription {s} selected")?,
            SubscriptionMatch::SectionLevel => {
                f.write_str(", section-level (narrowing does not apply)")?
            }
        }
        match &self.activity {
            ActivityMatch::Any => f.write_str(", any activity"),
            ActivityMatch::Selected(a) => write!(f, ", activity {a} selected"),
        }
    }
}

/// The criterion that kept an event out of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rejected_by", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rejection {
    /// The flow is inactive.
    Inactive,
    /// The event is of another Section.
    Section {
        /// The flow's Section.
        flow: SectionId,
        /// The event's Section.
        event: SectionId,
    },
    /// The flow does not take this event kind.
    Kind {
        /// The event's kind.
        kind: EventKind,
    },
    /// The flow does not take this origin.
    Origin {
        /// The event's origin.
        origin: Origin,
    },
    /// The event's Subscription is not among the flow's Subscriptions.
    Subscription {
        /// The event's Subscription.
        subscription: SubscriptionId,
    },
    /// The event's Subscription is in a Folder the flow does not select (`None`: the catalog
    /// does not know the Subscription).
    Folder {
        /// The event's Subscription.
        subscription: SubscriptionId,
        /// Its Folder, if the catalog knows it.
        folder: Option<FolderId>,
    },
    /// The event's Activity is not among the flow's Activities (`None`: the event has none).
    Activity {
        /// The event's Activity.
        activity: Option<ActivityId>,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inactive => f.write_str("the flow is inactive"),
            Self::Section { flow, event } => {
                write!(
                    f,
                    "the event is of section {event}, the flow of section {flow}"
                )
            }
            Self::Kind { kind } => write!(f, "the flow does not take {kind}"),
            Self::Origin { origin } => {
                write!(f, "the flow does not take opt-outs through {origin}")
            }
            Self::Subscription { subscription } => {
                write!(
                    f,
                    "subscription {subscription} is not among the flow's subscriptions"
                )
            }
            Self::Folder {
                subscription,
                folder: Some(folder),
            } => {
                write!(
                    f,
                    "subscription {subscription} is in folder {folder}, which the flow does not select"
                )
            }
            Self::Folder {
                subscription,
                folder: None,
            } => {
                write!(
                    f,
                    "subscription {subscription} is in no folder the catalog knows"
                )
            }
            Self::Activity {
                activity: Some(activity),
            } => {
                write!(f, "activity {activity} is not among the flow's activities")
            }
            Self::Activity { activity: None } => {
                f.write_str("the event has no activity and the flow narrows by activity")
            }
        }
    }
}

/// Whether one event enters one flow, and why (see [`Router::explain`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[must_use]
pub enum Explanation {
    /// Every criterion is met.
    Matches(Why),
    /// The first criterion, in the order active, Section, kind, origin, Subscription, Folder,
    /// Activity, that is not met.
    Rejected(Rejection),
}

/// One flow an event matched, with what it needs to build the flow's request
/// ([`Match::build_request`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Match<'a> {
    /// The flow.
    pub flow: &'a Flow,
    /// Why it matched.
    pub why: Why,
    /// The event matched.
    event: &'a OptOutEvent,
    /// The router's catalog, which holds the flow's Section when the router was given it.
    catalog: &'a Catalog,
}

impl fmt::Debug for Match<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Match")
            .field("flow", &self.flow.id)
            .field("why", &self.why)
            .field("event", self.event.id())
            .finish_non_exhaustive()
    }
}

impl<'a> Match<'a> {
    /// The event matched.
    pub fn event(&self) -> &'a OptOutEvent {
        self.event
    }

    /// The exact request the matched flow sends for the event about `profile`:
    /// [`Flow::build_request`] with the router's catalog. Pure; `now` is only used for
    /// `webhook-timestamp` when the flow signs.
    ///
    /// ```
    /// use optout_relay::{Catalog, FlowFile, OptOutEvent, Profile, Router};
    ///
    /// let flows = FlowFile::from_json(r#"{"version": 1, "flows": [{
    ///     "id": "crm", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]},
    ///     "webhook": {"method": "POST", "url": "https://crm.example.com/optout",
    ///                 "params": [{"name": "email", "source": "email"}]}
    /// }]}"#)?;
    /// let router = Router::new(flows.flows, &Catalog::default())?;
    /// let event: OptOutEvent = serde_json::from_str(r#"{"id": "evt-1", "profile": "p-1",
    ///     "section": "sec-1", "kind": "email_unsubscribe", "subscription": "123456",
    ///     "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"}"#)?;
    /// let profile: Profile = serde_json::from_str(r#"{"id": "p-1", "email": "a@example.com"}"#)?;
    ///
    /// for matched in router.matches(&event) {
    ///     let built = matched.build_request(&profile, "2026-11-26T09:30:05Z".parse()?)?;
    ///     assert_eq!(built.request().uri(), "https://crm.example.com/optout?email=a%40example.com");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Flow::build_request`].
    pub fn build_request(
        &self,
        profile: &Profile,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError> {
        self.flow
            .build_request(self.catalog, profile, self.event, now)
    }
}

/// One flow an event matched but did not enter: its entry limit refused it, or this event had
/// already entered (a re-delivered copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<'a> {
    /// The flow.
    pub flow: &'a Flow,
    /// Why it matched.
    pub why: Why,
    /// What the ledger decided.
    pub decision: EntryDecision,
}

/// The result of routing one event: the flows it entered, and the flows it matched but did not
/// enter. Nothing is dropped silently: every matching flow is in one list or the other.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Routing<'a> {
    /// The flows entered, in flow order, each with its entry decision.
    pub entered: Vec<(Match<'a>, EntryDecision)>,
    /// The flows matched but not entered, in flow order.
    pub refused: Vec<Refusal<'a>>,
}

/// Flow indices by Activity: flows taking any Activity, and flows narrowed to each Activity.
#[derive(Debug, Default)]
struct ActivityIndex {
    any: Vec<u32>,
    by_activity: HashMap<ActivityId, Vec<u32>>,
}

impl ActivityIndex {
    fn insert(&mut self, flow: u32, activities: Option<&BTreeSet<ActivityId>>) {
        match activities {
            None => self.any.push(flow),
            Some(set) => {
                for activity in set {
                    self.by_activity
                        .entry(activity.clone())
                        .or_default()
                        .push(flow);
                }
            }
        }
    }

    /// Adds the flows taking `activity`, noting how each was found.
    fn collect(&self, activity: Option<&ActivityId>, by_subscription: bool, out: &mut Vec<Hit>) {
        let hit = |by_activity| {
            move |&position: &u32| Hit {
                position,
                by_subscription,
                by_activity,
            }
        };
        out.extend(self.any.iter().map(hit(false)));
        if let Some(flows) = activity.and_then(|a| self.by_activity.get(a)) {
            out.extend(flows.iter().map(hit(true)));
        }
    }
}

/// A flow found in the index, and through which narrowing: enough to say why it matched
/// without reading the flow.
#[derive(Debug, Clone, Copy)]
struct Hit {
    position: u32,
    by_subscription: bool,
    by_activity: bool,
}

/// Flow indices for one (Section, event kind, origin).
#[derive(Debug, Default)]
struct Bucket {
    /// Flows taking any Subscription (and every flow, for the section-level Email - Abuse).
    any_subscription: ActivityIndex,
    /// Flows narrowed by Subscription or Folder, under each Subscription they select.
    by_subscription: HashMap<SubscriptionId, ActivityIndex>,
}

const ORIGINS: usize = 3;
const KINDS: usize = 3;

fn kind_slot(kind: EventKind) -> usize {
    match kind {
        EventKind::EmailUnsubscribe => 0,
        EventKind::EmailAbuse => 1,
        EventKind::SmsUnsubscribe => 2,
    }
}

fn origin_slot(origin: Origin) -> usize {
    match origin {
        Origin::Communication => 0,
        Origin::Api => 1,
        Origin::FileImport => 2,
    }
}

/// Routes opt-out events to the flows they enter.
///
/// Built once from any number of flows and the account's [`Catalog`] (needed to resolve Folder
/// narrowing; pass `&Catalog::default()` when no flow narrows by Folder). Active flows are
/// indexed by Section, event kind, origin, Subscription and Activity, so routing one event costs
/// a few hash lookups plus the flows it actually matches, whatever the number of flows that
/// cannot match.
///
/// ```
/// use optout_relay::*;
/// use optout_relay::listen::EntryDecision;
/// use optout_relay::listen::InMemoryLedger;
/// use optout_relay::webhook::ParamSource;
///
/// let flow = Flow::new(
///     FlowId::new("unsubscribes")?,
///     SectionId::new("sec-1")?,
///     ListenNode::new([EventKind::EmailUnsubscribe])?,
///     WebhookNode::builder("https://crm.example.com/optout")
///         .param("email", ParamSource::Email)
///         .param("subscription", ParamSource::SubscriptionId)
///         .build()?,
/// );
/// let router = Router::new([flow], &Catalog::default())?;
/// let event = OptOutEvent::email_unsubscribe(
///     EventId::new("evt-1")?, ProfileId::new("p-1")?, SectionId::new("sec-1")?,
///     SubscriptionId::new("123456")?, "2026-11-26T09:30:00Z".parse()?,
/// );
/// let mut ledger = InMemoryLedger::new();
/// let now = "2026-11-26T09:30:01Z".parse()?;
/// let routing = router.route(&event, &mut ledger, now);
/// assert_eq!(routing.entered.len(), 1);
/// // A re-delivered copy of the same event does not enter again, and says so.
/// let again = router.route(&event, &mut ledger, now);
/// assert_eq!(again.refused[0].decision, EntryDecision::AlreadyEntered);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Router {
    flows: Vec<Flow>,
    /// Subscriptions selected by each flow that narrows by Subscription or Folder (the
    /// intersection of both narrowings), by flow index.
    selected: Vec<Option<BTreeSet<SubscriptionId>>>,
    index: HashMap<SectionId, [Bucket; KINDS * ORIGINS]>,
    catalog: Catalog,
    /// Flow id -> position in `flows`.
    positions: HashMap<FlowId, usize>,
}

impl Router {
    /// Indexes `flows`.
    ///
    /// # Errors
    ///
    /// [`RouterError::DuplicateFlow`] when two flows share an id;
    /// [`RouterError::UnknownFolder`] when a flow narrows by a Folder the catalog does not hold
    /// in the flow's Section (such a flow could never match).
    pub fn new(
        flows: impl IntoIterator<Item = Flow>,
        catalog: &Catalog,
    ) -> Result<Self, RouterError> {
        let flows: Vec<Flow> = flows.into_iter().collect();
        let mut positions = HashMap::with_capacity(flows.len());
        for (position, flow) in flows.iter().enumerate() {
            if positions.insert(flow.id.clone(), position).is_some() {
                return Err(RouterError::DuplicateFlow {
                    flow: flow.id.clone(),
                });
            }
        }
        let mut selected = Vec::with_capacity(flows.len());
        for flow in &flows {
            selected.push(selected_subscriptions(flow, catalog)?);
        }
        let mut index: HashMap<SectionId, [Bucket; KINDS * ORIGINS]> = HashMap::new();
        for (position, flow) in flows.iter().enumerate() {
            if !flow.active {
                continue;
            }
            let Ok(position) = u32::try_from(position) else {
                break;
            };
            let buckets = index.entry(flow.section.clone()).or_default();
            let activities = flow.listen.activities();
            for &kind in flow.listen.kinds() {
                for &origin in flow.listen.origins() {
                    let bucket = &mut buckets[kind_slot(kind) * ORIGINS + origin_slot(origin)];
                    match &selected[position as usize] {
                        Some(subscriptions) if !kind.is_section_level() => {
                            for subscription in subscriptions {
                                bucket
                                    .by_subscription
                                    .entry(subscription.clone())
                                    .or_default()
                                    .insert(position, activities);
                            }
                        }
                        _ => bucket.any_subscription.insert(position, activities),
                    }
                }
            }
        }
        Ok(Self {
            flows,
            selected,
            index,
            catalog: catalog.clone(),
            positions,
        })
    }

    /// The flows, in the order given.
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// The catalog the router was built with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The flow with this id.
    pub fn flow(&self, id: &FlowId) -> Option<&Flow> {
        self.positions
            .get(id)
            .map(|&position| &self.flows[position])
    }

    /// Every flow whose Listen node takes `event`, in flow order, with why. Entry limits are not
    /// consulted (see [`route`](Self::route)).
    pub fn matches<'a>(&'a self, event: &'a OptOutEvent) -> Vec<Match<'a>> {
        let mut hits = Vec::new();
        if let Some(buckets) = self.index.get(event.section()) {
            let bucket = &buckets[kind_slot(event.kind()) * ORIGINS + origin_slot(event.origin())];
            let activity = event.activity();
            bucket.any_subscription.collect(activity, false, &mut hits);
            if let Some(by_activity) = event
                .subscription()
                .and_then(|s| bucket.by_subscription.get(s))
            {
                by_activity.collect(activity, true, &mut hits);
            }
        }
        hits.sort_unstable_by_key(|hit| hit.position);
        hits.into_iter()
            .map(|hit| Match {
                flow: &self.flows[hit.position as usize],
                event,
                catalog: &self.catalog,
                why: Why {
                    section: event.section().clone(),
                    kind: event.kind(),
                    origin: event.origin(),
                    subscription: match event.subscription() {
                        None => SubscriptionMatch::SectionLevel,
                        Some(s) if hit.by_subscription => SubscriptionMatch::Selected(s.clone()),
                        Some(_) => SubscriptionMatch::Any,
                    },
                    activity: match event.activity() {
                        Some(a) if hit.by_activity => ActivityMatch::Selected(a.clone()),
                        _ => ActivityMatch::Any,
                    },
                },
            })
            .collect()
    }

    /// Routes `event`: every flow it matches, entered or refused by the flow's entry limit
    /// through `ledger` at `now`.
    ///
    /// This records entries in `ledger` before any request is built. To relay an opt-out, use
    /// [`relay::plan`](crate::relay::plan) and a [`DeliveryStore`](crate::DeliveryStore)
    /// instead: they build every request first and record an entry only together with its
    /// delivery, so a Profile missing a value enters nothing.
    pub fn route<'a, L: EntryLedger + ?Sized>(
        &'a self,
        event: &'a OptOutEvent,
        ledger: &mut L,
        now: Timestamp,
    ) -> Routing<'a> {
        let mut routing = Routing::default();
        for found in self.matches(event) {
            let request = EntryRequest {
                flow: &found.flow.id,
                profile: event.profile(),
                event: event.id(),
            };
            let decision = ledger.try_enter(request, found.flow.settings.entry_limit, now);
            if decision.entered() {
                routing.entered.push((found, decision));
            } else {
                routing.refused.push(Refusal {
                    flow: found.flow,
                    why: found.why,
                    decision,
                });
            }
        }
        routing
    }

    /// Whether `event` matches the flow `flow`, and if not, the first criterion that rejects it.
    /// `None` when no flow has that id. Entry limits are not consulted.
    pub fn explain(&self, flow: &FlowId, event: &OptOutEvent) -> Option<Explanation> {
        let position = *self.positions.get(flow)?;
        let flow = &self.flows[position];
        Some(explain(
            flow,
            self.selected[position].as_ref(),
            &self.catalog,
            event,
        ))
    }
}

/// The Subscriptions a flow selects when it narrows by Subscription and/or Folder.
fn selected_subscriptions(
    flow: &Flow,
    catalog: &Catalog,
) -> Result<Option<BTreeSet<SubscriptionId>>, RouterError> {
    let by_folder = match flow.listen.folders() {
        None => None,
        Some(folders) => {
            let mut subscriptions = BTreeSet::new();
            for folder in folders {
                let found = catalog
                    .section(&flow.section)
                    .and_then(|s| s.folder(folder));
                let Some(found) = found else {
                    return Err(RouterError::UnknownFolder {
                        flow: flow.id.clone(),
                        folder: folder.clone(),
                        section: flow.section.clone(),
                    });
                };
                subscriptions.extend(found.subscriptions.iter().map(|s| s.id.clone()));
            }
            Some(subscriptions)
        }
    };
    Ok(match (flow.listen.subscriptions(), by_folder) {
        (None, by_folder) => by_folder,
        (Some(subscriptions), None) => Some(subscriptions.clone()),
        (Some(subscriptions), Some(by_folder)) => {
            Some(subscriptions.intersection(&by_folder).cloned().collect())
        }
    })
}

fn why(flow: &Flow, event: &OptOutEvent) -> Why {
    let subscription = match event.subscription() {
        None => SubscriptionMatch::SectionLevel,
        Some(s) if flow.listen.narrows_subscriptions() => SubscriptionMatch::Selected(s.clone()),
        Some(_) => SubscriptionMatch::Any,
    };
    let activity = match (flow.listen.activities(), event.activity()) {
        (Some(_), Some(a)) => ActivityMatch::Selected(a.clone()),
        _ => ActivityMatch::Any,
    };
    Why {
        section: flow.section.clone(),
        kind: event.kind(),
        origin: event.origin(),
        subscription,
        activity,
    }
}

/// The unindexed check of one flow, criterion by criterion.
fn explain(
    flow: &Flow,
    selected: Option<&BTreeSet<SubscriptionId>>,
    catalog: &Catalog,
    event: &OptOutEvent,
) -> Explanation {
    let listen = &flow.listen;
    let rejection = if !flow.active {
        Some(Rejection::Inactive)
    } else if &flow.section != event.section() {
        Some(Rejection::Section {
            flow: flow.section.clone(),
            event: event.section().clone(),
        })
    } else if !listen.takes_kind(event.kind()) {
        Some(Rejection::Kind { kind: event.kind() })
    } else if !listen.takes_origin(event.origin()) {
        Some(Rejection::Origin {
            origin: event.origin(),
        })
    } else if let Some(subscription) = event
        .subscription()
        .filter(|s| !selected.is_none_or(|set| set.contains(*s)))
    {
        // Tell apart the Subscription narrowing and the Folder narrowing.
        if listen
            .subscriptions()
            .is_some_and(|set| !set.contains(subscription))
        {
            Some(Rejection::Subscription {
                subscription: subscription.clone(),
            })
        } else {
            Some(Rejection::Folder {
                subscription: subscription.clone(),
                folder: catalog
                    .section(&flow.section)
                    .and_then(|s| s.folder_of(subscription))
                    .cloned(),
            })
        }
    } else if listen
        .activities()
        .is_some_and(|set| event.activity().is_none_or(|a| !set.contains(a)))
    {
        Some(Rejection::Activity {
            activity: event.activity().cloned(),
        })
    } else {
        None
    };
    match rejection {
        Some(rejection) => Explanation::Rejected(rejection),
        None => Explanation::Matches(why(flow, event)),
    }
}
