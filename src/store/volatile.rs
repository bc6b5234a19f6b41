//! The in-memory store: for tests and throwaway runs. Everything is lost with the process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::delivery::{DeadLetterReason, Delivery, DeliveryState};
use crate::health::{
    self, Endpoint, EndpointChange, EndpointHealth, EndpointPolicy, EndpointStatus,
};
use crate::listen::{DeliveryOrder, EntryLedger, EntryRequest, InMemoryLedger};
use crate::model::{FlowId, ProfileId};
use crate::relay::{Plan, Submitted};
use crate::store::{
    Claim, ClaimToken, Counts, DeliveryStore, ListQuery, MAX_ABANDONED_CLAIMS, Recorded,
    StateFilter, StoreError, lease_deadline,
};
use crate::webhook::WebhookId;

/// A [`DeliveryStore`] in memory, for tests and throwaway runs: **nothing survives the
/// process**. Use `SqliteStore` (the default) or `PostgresStore` for anything that must not be
/// lost.
///
/// Its clock can be replaced ([`with_clock`](Self::with_clock)), so that due times, leases,
/// entry windows and endpoint health can be tested to the millisecond. Endpoint health is off
/// unless [`with_endpoint_policy`](Self::with_endpoint_policy) turns it on.
#[derive(Clone)]
pub struct VolatileStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    policy: Arc<EndpointPolicy>,
}

impl std::fmt::Debug for VolatileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("VolatileStore")
            .field("deliveries", &state.rows.len())
            .field("entries", &state.ledger.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    ledger: InMemoryLedger,
    rows: HashMap<String, Row>,
    /// Pending deliveries not under lease, by (due time, admission order, id).
    due: BTreeSet<(Timestamp, u64, String)>,
    /// Claimed deliveries, by (lease deadline, id).
    leased: BTreeSet<(Timestamp, String)>,
    sequence: u64,
    /// Each endpoint's health.
    endpoints: BTreeMap<Endpoint, EndpointHealth>,
    /// Each endpoint's claimed deliveries.
    in_flight: HashMap<Endpoint, usize>,
    /// The pending deliveries of each (flow, Profile) of a flow sent in per-Profile order, by
    /// admission order.
    ordered: HashMap<(FlowId, ProfileId), BTreeSet<u64>>,
}

struct Row {
    delivery: Delivery,
    endpoint: Endpoint,
    /// The (flow, Profile) of a delivery sent in per-Profile order.
    ordered: Option<(FlowId, ProfileId)>,
    sequence: u64,
    claims: u64,
    abandoned: u32,
    lease_until: Option<Timestamp>,
    finished_at: Option<Timestamp>,
}

impl Default for VolatileStore {
    fn default() -> Self {
        Self::new()
    }
}

impl VolatileStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Timestamp::now)
    }

    /// An empty store whose clock is `clock`.
    pub fn with_clock(clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            clock: Arc::new(clock),
            policy: Arc::new(EndpointPolicy::off()),
        }
    }

    /// This store with endpoint health kept by `policy` ([`EndpointPolicy::off`] turns it
    /// off).
    #[must_use]
    pub fn with_endpoint_policy(mut self, policy: EndpointPolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn schedule(&mut self, id: &str) {
        if let Some(row) = self.rows.get(id) {
            if let Some(due) = row.delivery.next_attempt_at() {
                self.due.insert((due, row.sequence, id.to_owned()));
            }
        }
    }

    fn unschedule(&mut self, id: &str) {
        if let Some(row) = self.rows.get(id) {
            if let Some(due) = row.delivery.next_attempt_at() {
                self.due.remove(&(due, row.sequence, id.to_owned()));
            }
            if let Some(until) = row.lease_until {
                self.leased.remove(&(until, id.to_owned()));
            }
        }
    }

    /// Ends the lease of a row (its claim ended or expired): one fewer in flight.
    fn end_lease(&mut self, id: &str) {
        if let Some(row) = self.rows.get_mut(id) {
            if row.lease_until.take().is_some() {
                if let Some(n) = self.in_flight.get_mut(&row.endpoint) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }

    /// Forgets a row that is no longer pending in its (flow, Profile)'s order.
    fn unorder(&mut self, id: &str) {
        if let Some(row) = self.rows.get(id) {
            if row.delivery.is_pending() {
                return;
            }
            if let Some(key) = &row.ordered {
                if let Some(pending) = self.ordered.get_mut(key) {
                    pending.remove(&row.sequence);
                    if pending.is_empty() {
                        self.ordered.remove(key);
                    }
                }
            }
        }
    }

    /// Puts a row that is pending (again) back in its (flow, Profile)'s order.
    fn reorder(&mut self, id: &str) {
        if let Some(row) = self.rows.get(id) {
            if let (true, Some(key)) = (row.delivery.is_pending(), &row.ordered) {
                self.ordered
                    .entry(key.clone())
                    .or_default()
                    .insert(row.sequence);
            }
        }
    }

    /// Whether a row waits for an earlier pending delivery of its (flow, Profile).
    fn waits_for_earlier(&self, row: &Row) -> bool {
        row.ordered.as_ref().is_some_and(|key| {
            self.ordered
                .get(key)
                .and_then(|pending| pending.first())
                .is_some_and(|first| *first < row.sequence)
        })
    }

    /// Ends the claim `token` and applies `change` to the delivery.
    fn end_claim(
        &mut self,
        token: &ClaimToken,
        change: impl FnOnce(&mut Row),
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let held = self.rows.get(&token.webhook_id).is_some_and(|row| {
            row.claims == token.claim && row.delivery.is_pending() && row.lease_until.is_some()
        });
        if !held {
            return Err(StoreError::lease_lost(&token.webhook_id));
        }
        self.unschedule(&token.webhook_id);
        self.end_lease(&token.webhook_id);
        if let Some(row) = self.rows.get_mut(&token.webhook_id) {
            change(row);
            if !row.delivery.is_pending() {
                row.finished_at = Some(now);
            }
        }
        self.unorder(&token.webhook_id);
        self.schedule(&token.webhook_id);
        Ok(())
    }

    /// Makes every pending delivery of `endpoint` that is not in flight due at `now`, with a
    /// fresh allowance.
    fn release(&mut self, endpoint: &Endpoint, now: Timestamp) {
        let ids: Vec<String> = self
            .rows
            .iter()
            .filter(|(_, row)| {
                &row.endpoint == endpoint && row.delivery.is_pending() && row.lease_until.is_none()
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.unschedule(&id);
            if let Some(row) = self.rows.get_mut(&id) {
                row.delivery.hold(now);
            }
            self.schedule(&id);
        }
    }

    /// Expired leases: due again, one more abandoned claim.
    fn expire_leases(&mut self, now: Timestamp) {
        while let Some((until, id)) = self.leased.first().cloned() {
            if until > now {
                break;
            }
            self.leased.remove(&(until, id.clone()));
            self.end_lease(&id);
            let Some(row) = self.rows.get_mut(&id) else {
                continue;
            };
            row.abandoned += 1;
            if row.abandoned >= MAX_ABANDONED_CLAIMS {
                let claims = row.abandoned;
                self.unschedule(&id);
                if let Some(row) = self.rows.get_mut(&id) {
                    row.delivery
                        .dead_letter(DeadLetterReason::Abandoned { claims }, now);
                    row.finished_at = Some(now);
                }
                self.unorder(&id);
            } else {
                self.schedule(&id);
            }
        }
    }
}

#[async_trait]
impl DeliveryStore for VolatileStore {
    async fn admit(&self, plan: Plan) -> Result<Submitted, StoreError> {
        let mut state = self.state();
        let mut decisions = Vec::with_capacity(plan.candidates.len());
        for candidate in &plan.candidates {
            let request = EntryRequest {
                flow: &candidate.flow,
                profile: &plan.profile,
                event: &plan.event,
            };
            let decision = state.ledger.try_enter(request, candidate.limit, plan.at);
            if decision.entered()
                && !state
                    .rows
                    .contains_key(candidate.delivery.webhook_id().as_str())
            {
                state.sequence += 1;
                let id = candidate.delivery.webhook_id().as_str().to_owned();
                let row = Row {
                    endpoint: candidate.delivery.endpoint(),
                    ordered: (candidate.order == DeliveryOrder::PerProfile)
                        .then(|| (candidate.flow.clone(), plan.profile.clone())),
                    delivery: candidate.delivery.clone(),
                    sequence: state.sequence,
                    claims: 0,
                    abandoned: 0,
                    lease_until: None,
                    finished_at: None,
                };
                state.rows.insert(id.clone(), row);
                state.reorder(&id);
                state.schedule(&id);
            }
            decisions.push(decision);
        }
        Ok(plan.submitted(&decisions))
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        let now = (self.clock)();
        let mut state = self.state();
        state.expire_leases(now);
        let until = lease_deadline(now, lease);
        let mut picked = Vec::new();
        {
            let State {
                due,
                rows,
                endpoints,
                in_flight,
                ordered,
                ..
            } = &mut *state;
            // The in-flight counts as this claim goes (each endpoint's limit across the claim).
            let mut taken: HashMap<&Endpoint, usize> = HashMap::new();
            for (at, _, id) in due.iter() {
                if picked.len() >= max || *at > now {
                    break;
                }
                let Some(row) = rows.get(id) else { continue };
                // Per-Profile order: only the earliest pending delivery of its (flow, Profile).
                let waits = row.ordered.as_ref().is_some_and(|key| {
                    ordered
                        .get(key)
                        .and_then(|pending| pending.first())
                        .is_some_and(|first| *first < row.sequence)
                });
                if waits {
                    continue;
                }
                let flying = in_flight.get(&row.endpoint).copied().unwrap_or(0)
                    + taken.get(&row.endpoint).copied().unwrap_or(0);
                let health = endpoints.entry(row.endpoint.clone()).or_default();
                let limits = self.policy.limits_of(&row.endpoint);
                if health.grant(1, flying, limits, now, lease) == 1 {
                    *taken.entry(&row.endpoint).or_default() += 1;
                    picked.push(id.clone());
                }
            }
        }
        let mut claims = Vec::with_capacity(picked.len());
        for id in picked {
            state.unschedule(&id);
            let Some(row) = state.rows.get_mut(&id) else {
                continue;
            };
            row.claims += 1;
            row.lease_until = Some(until);
            let endpoint = row.endpoint.clone();
            claims.push(Claim {
                delivery: row.delivery.clone(),
                token: ClaimToken {
                    webhook_id: id.clone(),
                    claim: row.claims,
                },
            });
            *state.in_flight.entry(endpoint).or_default() += 1;
            state.leased.insert((until, id));
        }
        Ok(claims)
    }

    async fn record(
        &self,
        claim: &ClaimToken,
        delivery: &Delivery,
    ) -> Result<Recorded, StoreError> {
        let now = (self.clock)();
        let mut state = self.state();
        let mut recorded = Recorded::default();
        let mut release = None;
        let policy = &self.policy;
        let mut settled = delivery.clone();
        if policy.is_enabled() {
            let endpoint = settled.endpoint();
            let health = state.endpoints.entry(endpoint.clone()).or_default();
            let settlement = health::settle(&mut settled, &endpoint, health, policy, now);
            recorded.held = settlement.held;
            recorded.change = settlement.change;
            if settlement.release {
                release = Some(endpoint);
            }
        }
        state.end_claim(
            claim,
            |row| {
                row.delivery = settled;
                row.abandoned = 0;
            },
            now,
        )?;
        state.reorder(&claim.webhook_id);
        if let Some(endpoint) = release {
            state.release(&endpoint, now);
        }
        Ok(recorded)
    }

    async fn release(&self, claim: &ClaimToken) -> Result<(), StoreError> {
        let now = (self.clock)();
        self.state().end_claim(claim, |_| {}, now)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let now = (self.clock)();
        let state = self.state();
        let mut earliest = state.leased.first().map(|l| l.0);
        let mut seen: HashMap<&Endpoint, ()> = HashMap::new();
        for (at, _, id) in &state.due {
            let Some(row) = state.rows.get(id) else {
                continue;
            };
            if seen.contains_key(&row.endpoint) || state.waits_for_earlier(row) {
                continue;
            }
            seen.insert(&row.endpoint, ());
            let ready = match state.endpoints.get(&row.endpoint) {
                Some(health) => health.ready_at(
                    *at,
                    state.in_flight.get(&row.endpoint).copied().unwrap_or(0),
                    self.policy.limits_of(&row.endpoint),
                    now,
                ),
                None => Some(*at),
            };
            if let Some(ready) = ready {
                earliest = Some(earliest.map_or(ready, |e: Timestamp| e.min(ready)));
            }
        }
        Ok(earliest)
    }

    async fn get(&self, webhook_id: &WebhookId) -> Result<Option<Delivery>, StoreError> {
        let webhook_id = webhook_id.as_str();
        Ok(self
            .state()
            .rows
            .get(webhook_id)
            .map(|row| row.delivery.clone()))
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Delivery>, StoreError> {
        let state = self.state();
        let mut found: Vec<&Delivery> = state
            .rows
            .values()
            .map(|row| &row.delivery)
            .filter(|d| {
                let in_state = match d.state() {
                    DeliveryState::Pending { .. } => StateFilter::Pending,
                    DeliveryState::Delivered { .. } => StateFilter::Delivered,
                    DeliveryState::DeadLettered { .. } => StateFilter::DeadLettered,
                };
                in_state == query.state
                    && query.flow.as_ref().is_none_or(|f| f == d.flow())
                    && query
                        .after
                        .as_deref()
                        .is_none_or(|after| d.webhook_id().as_str() > after)
            })
            .collect();
        found.sort_by(|a, b| a.webhook_id().cmp(b.webhook_id()));
        Ok(found.into_iter().take(query.limit).cloned().collect())
    }

    async fn replay(&self, webhook_id: &WebhookId) -> Result<bool, StoreError> {
        let webhook_id = webhook_id.as_str();
        let now = (self.clock)();
        let mut state = self.state();
        let Some(row) = state.rows.get_mut(webhook_id) else {
            return Ok(false);
        };
        if !matches!(row.delivery.state(), DeliveryState::DeadLettered { .. }) {
            return Ok(false);
        }
        row.delivery.replay(now);
        row.finished_at = None;
        row.abandoned = 0;
        state.reorder(webhook_id);
        state.schedule(webhook_id);
        Ok(true)
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut state = self.state();
        let old = state.rows.len();
        state
            .rows
            .retain(|_, row| row.finished_at.is_none_or(|at| at >= before));
        Ok((old - state.rows.len()) as u64)
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let now = (self.clock)();
        let state = self.state();
        let mut counts = Counts {
            entries: state.ledger.len() as u64,
            ..Counts::default()
        };
        for row in state.rows.values() {
            match row.delivery.state() {
                DeliveryState::Pending { .. } => {
                    counts.pending += 1;
                    if row.lease_until.is_some_and(|until| until > now) {
                        counts.leased += 1;
                    }
                }
                DeliveryState::Delivered { .. } => counts.delivered += 1,
                DeliveryState::DeadLettered { .. } => counts.dead_lettered += 1,
            }
        }
        Ok(counts)
    }

    async fn endpoints(&self) -> Result<Vec<EndpointStatus>, StoreError> {
        let now = (self.clock)();
        let state = self.state();
        let mut found: BTreeMap<Endpoint, EndpointStatus> = BTreeMap::new();
        for (endpoint, health) in &state.endpoints {
            found.insert(endpoint.clone(), status(endpoint, health));
        }
        for row in state.rows.values().filter(|row| row.delivery.is_pending()) {
            let entry = found
                .entry(row.endpoint.clone())
                .or_insert_with(|| status(&row.endpoint, &EndpointHealth::default()));
            entry.pending += 1;
            if row.lease_until.is_some_and(|until| until > now) {
                entry.in_flight += 1;
            }
        }
        Ok(found.into_values().collect())
    }

    async fn pause(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError> {
        let now = (self.clock)();
        let mut state = self.state();
        let health = state.endpoints.entry(endpoint.clone()).or_default();
        Ok(health::pause(endpoint, health, now))
    }

    async fn resume(&self, endpoint: &Endpoint) -> Result<Option<EndpointChange>, StoreError> {
        let now = (self.clock)();
        let mut state = self.state();
        let health = state.endpoints.entry(endpoint.clone()).or_default();
        let change = health::resume(endpoint, health, now);
        if change.is_some() {
            state.release(endpoint, now);
        }
        Ok(change)
    }
}

fn status(endpoint: &Endpoint, health: &EndpointHealth) -> EndpointStatus {
    EndpointStatus {
        endpoint: endpoint.clone(),
        state: health.state(),
        pending: 0,
        in_flight: 0,
    }
}
