//! The in-memory store: for tests and throwaway runs. Everything is lost with the process.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::delivery::{DeadLetterReason, Delivery, DeliveryState};
use crate::listen::{EntryLedger, EntryRequest, InMemoryLedger};
use crate::relay::{Plan, Submitted};
use crate::store::{
    Claim, ClaimToken, Counts, DeliveryStore, ListQuery, MAX_ABANDONED_CLAIMS, StateFilter,
    StoreError, lease_deadline,
};
use crate::webhook::WebhookId;

/// A [`DeliveryStore`] in memory, for tests and throwaway runs: **nothing survives the
/// process**. Use `SqliteStore` (the default) or `PostgresStore` for anything that must not be
/// lost.
///
/// Its clock can be replaced ([`with_clock`](Self::with_clock)), so that due times, leases and
/// entry windows can be tested to the millisecond.
#[derive(Clone)]
pub struct VolatileStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
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
}

struct Row {
    delivery: Delivery,
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
        }
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
        if let Some(row) = self.rows.get_mut(&token.webhook_id) {
            row.lease_until = None;
            change(row);
            if !row.delivery.is_pending() {
                row.finished_at = Some(now);
            }
        }
        self.schedule(&token.webhook_id);
        Ok(())
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
                    delivery: candidate.delivery.clone(),
                    sequence: state.sequence,
                    claims: 0,
                    abandoned: 0,
                    lease_until: None,
                    finished_at: None,
                };
                state.rows.insert(id.clone(), row);
                state.schedule(&id);
            }
            decisions.push(decision);
        }
        Ok(plan.submitted(&decisions))
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        let now = (self.clock)();
        let mut state = self.state();
        // Expired leases: due again, one more abandoned claim.
        while let Some((until, id)) = state.leased.first().cloned() {
            if until > now {
                break;
            }
            state.leased.remove(&(until, id.clone()));
            let Some(row) = state.rows.get_mut(&id) else {
                continue;
            };
            row.lease_until = None;
            row.abandoned += 1;
            if row.abandoned >= MAX_ABANDONED_CLAIMS {
                let claims = row.abandoned;
                state.unschedule(&id);
                if let Some(row) = state.rows.get_mut(&id) {
                    row.delivery
                        .dead_letter(DeadLetterReason::Abandoned { claims }, now);
                    row.finished_at = Some(now);
                }
            } else {
                state.schedule(&id);
            }
        }
        let until = lease_deadline(now, lease);
        let mut claims = Vec::new();
        while claims.len() < max {
            let Some(first) = state.due.first().cloned() else {
                break;
            };
            if first.0 > now {
                break;
            }
            state.due.remove(&first);
            let id = first.2;
            let Some(row) = state.rows.get_mut(&id) else {
                continue;
            };
            row.claims += 1;
            row.lease_until = Some(until);
            claims.push(Claim {
                delivery: row.delivery.clone(),
                token: ClaimToken {
                    webhook_id: id.clone(),
                    claim: row.claims,
                },
            });
            state.leased.insert((until, id));
        }
        Ok(claims)
    }

    async fn record(&self, claim: &ClaimToken, delivery: &Delivery) -> Result<(), StoreError> {
        let now = (self.clock)();
        self.state().end_claim(
            claim,
            |row| {
                row.delivery = delivery.clone();
                row.abandoned = 0;
            },
            now,
        )
    }

    async fn release(&self, claim: &ClaimToken) -> Result<(), StoreError> {
        let now = (self.clock)();
        self.state().end_claim(claim, |_| {}, now)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let state = self.state();
        let due = state.due.first().map(|d| d.0);
        let lease = state.leased.first().map(|l| l.0);
        Ok(match (due, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
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
}
