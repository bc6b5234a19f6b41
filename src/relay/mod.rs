//! The pure relay core: what every path (the worker, a host's own queue consumer, a serverless
//! function) calls, so that each gets exactly the same rules.
//!
//! ```text
//! plan (pure)  ──► Plan { candidates, not_built } ──► DeliveryStore::admit (one transaction,
//!                                                      entry decisions by decide_entry)
//! prepare_attempt (pure): credentials, signature at now, destination vetted ──► HttpClient::send
//! Delivery::record (pure) ──► the store, fenced by the claim
//! ```
//!
//! - [`plan`] routes an event through the flows and builds every request **before** anything is
//!   recorded: a Profile missing a value a flow needs enters nothing (it is in
//!   [`Plan::not_built`], and the event can be submitted again once the data is fixed).
//! - [`decide_entry`] is the one entry-limit rule, applied by every store inside its admit
//!   transaction to what it holds for the (flow, Profile), so that concurrent submitters never
//!   exceed a limit.
//! - [`prepare_attempt`] turns a stored delivery into the request to send at `now`: the flow's
//!   credentials, a Standard Webhooks signature made within that second, and the destination
//!   vetted by the [`DestinationPolicy`].
//!
//! Requests are stored without their credentials and signature ([`Plan`]'s deliveries are
//! already stripped): signing secrets and auth tokens never reach a store.

use jiff::Timestamp;

use crate::delivery::Delivery;
use crate::listen::{DeliveryOrder, EntryDecision, EntryLimit, Router};
use crate::model::{EventId, FlowId, OptOutEvent, Profile, ProfileId};
use crate::transport::{DestinationPolicy, TransportError, TransportErrorKind};
use crate::webhook::{RequestBuildError, WebhookId};

pub use crate::listen::entry::{EntryHistory, decide_entry, window_start};

/// One flow an event matched and whose request was built: it enters the flow if the flow's
/// entry limit lets it ([`decide_entry`]), and then its delivery is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The flow.
    pub flow: FlowId,
    /// The flow's entry limit.
    pub limit: EntryLimit,
    /// The order the flow's deliveries are sent in.
    pub order: DeliveryOrder,
    /// The delivery to store if the event enters: due at once, its request without credentials
    /// or signature.
    pub delivery: Delivery,
}

/// One flow an event matched whose request could not be built: nothing is recorded for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotBuilt {
    /// The flow.
    pub flow: FlowId,
    /// Why the request could not be built.
    pub error: RequestBuildError,
}

/// What [`plan`] decided for one event, before anything is recorded: the flows it may enter,
/// each with its built delivery, and the flows whose request could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a plan records nothing until a store admits it"]
pub struct Plan {
    /// The event.
    pub event: EventId,
    /// Its Profile.
    pub profile: ProfileId,
    /// When the plan was made: the entries' time, and the deliveries' creation time.
    pub at: Timestamp,
    /// The flows the event may enter, in flow order.
    pub candidates: Vec<Candidate>,
    /// The flows whose request could not be built, in flow order.
    pub not_built: Vec<NotBuilt>,
}

/// Plans `event` of `profile` at `now`: routes it through `router`'s flows and builds the
/// request of every flow it matches. Pure; records nothing.
///
/// Each [`Candidate`]'s delivery holds the request as it will be stored: without the flow's
/// credentials header and without the signature headers (see [`prepare_attempt`]).
///
/// ```
/// use optout_relay::*;
/// use optout_relay::webhook::ParamSource;
///
/// let flow = Flow::new(
///     FlowId::new("crm")?,
///     SectionId::new("sec-1")?,
///     ListenNode::new([EventKind::EmailUnsubscribe])?,
///     WebhookNode::builder("https://crm.example.com/optout")
///         .param("email", ParamSource::Email)
///         .bearer("s3cr3t-token")
///         .build()?,
/// );
/// let router = Router::new([flow], &Catalog::default())?;
/// let event = OptOutEvent::email_unsubscribe(
///     EventId::new("evt-1")?, ProfileId::new("p-1")?, SectionId::new("sec-1")?,
///     SubscriptionId::new("123456")?, "2026-11-26T09:30:00Z".parse()?,
/// );
/// let with_email = Profile::new(ProfileId::new("p-1")?).with_email(Email::new("a@example.com")?);
/// let plan = relay::plan(&router, &event, &with_email, "2026-11-26T09:30:01Z".parse()?);
/// assert_eq!(plan.candidates.len(), 1);
/// // Stored without its credentials: they are added per attempt.
/// assert!(plan.candidates[0].delivery.request().headers().get("authorization").is_none());
///
/// // A Profile without the Email the flow sends enters nothing, and can be planned again.
/// let without = Profile::new(ProfileId::new("p-1")?);
/// let plan = relay::plan(&router, &event, &without, "2026-11-26T09:30:01Z".parse()?);
/// assert!(plan.candidates.is_empty());
/// assert_eq!(plan.not_built[0].flow, FlowId::new("crm")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan(router: &Router, event: &OptOutEvent, profile: &Profile, now: Timestamp) -> Plan {
    let mut candidates = Vec::new();
    let mut not_built = Vec::new();
    for found in router.matches(event) {
        let flow = found.flow;
        match found.build_request(profile, now) {
            Ok(built) => {
                let webhook_id = built.webhook_id().clone();
                let mut request = built.into_request();
                flow.webhook.strip_secrets(&mut request);
                candidates.push(Candidate {
                    flow: flow.id.clone(),
                    limit: flow.settings.entry_limit,
                    order: flow.settings.order,
                    delivery: Delivery::new(
                        webhook_id,
                        flow.id.clone(),
                        event.id().clone(),
                        request,
                        now,
                    ),
                });
            }
            Err(error) => not_built.push(NotBuilt {
                flow: flow.id.clone(),
                error,
            }),
        }
    }
    Plan {
        event: event.id().clone(),
        profile: event.profile().clone(),
        at: now,
        candidates,
        not_built,
    }
}

/// What became of one event in one flow it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowResult {
    /// The event entered the flow; its delivery, with this webhook id, is stored.
    Entered {
        /// The delivery's webhook id.
        webhook_id: WebhookId,
    },
    /// The flow's entry limit refused the event, or this event already entered (a re-delivered
    /// copy, whose delivery is already stored): no new delivery.
    Refused(EntryDecision),
    /// The request could not be built (for example the Profile has no Email and the flow needs
    /// it). Nothing was recorded, so the event can be submitted again once the data is fixed.
    NotBuilt(RequestBuildError),
}

/// One flow's result for an admitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEntry {
    /// The flow.
    pub flow: FlowId,
    /// What happened.
    pub result: FlowResult,
}

/// What a store did with one [`Plan`]: one entry per flow the event matched (none when it
/// matched no flow), in flow order. Every delivery of an `Entered` flow is durable once this is
/// returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Submitted {
    /// The event.
    pub event: EventId,
    /// Per matching flow: those entered or refused, in flow order, then those whose request
    /// could not be built, in flow order.
    pub flows: Vec<FlowEntry>,
}

impl Submitted {
    /// The webhook ids of the deliveries this admission stored.
    pub fn entered(&self) -> impl Iterator<Item = &WebhookId> {
        self.flows.iter().filter_map(|f| match &f.result {
            FlowResult::Entered { webhook_id } => Some(webhook_id),
            _ => None,
        })
    }
}

impl Plan {
    /// The result of admitting this plan, given the entry decision of each candidate (in
    /// [`candidates`](Self::candidates) order; see [`decide_entry`]). A store assembles its
    /// answer with this once its transaction has committed.
    pub fn submitted(&self, decisions: &[EntryDecision]) -> Submitted {
        let mut flows = Vec::with_capacity(self.candidates.len() + self.not_built.len());
        for (candidate, decision) in self.candidates.iter().zip(decisions) {
            flows.push(FlowEntry {
                flow: candidate.flow.clone(),
                result: match decision {
                    EntryDecision::Entered { .. } => FlowResult::Entered {
                        webhook_id: candidate.delivery.webhook_id().clone(),
                    },
                    refused => FlowResult::Refused(*refused),
                },
            });
        }
        flows.extend(self.not_built.iter().map(|n| FlowEntry {
            flow: n.flow.clone(),
            result: FlowResult::NotBuilt(n.error.clone()),
        }));
        Submitted {
            event: self.event.clone(),
            flows,
        }
    }
}

/// Prepares the attempt of a stored delivery at `now`: the request with the flow's credentials
/// and a Standard Webhooks signature made for `now` (when the flow signs), after vetting its
/// destination with `destinations`. Pure.
///
/// # Errors
///
/// A [`TransportError`] to record as the attempt's result (never retried):
/// [`TransportErrorKind::Blocked`] when the destination policy refuses the request's host;
/// [`TransportErrorKind::InvalidRequest`] when no flow of `router` has the delivery's flow id
/// (its credentials and signing secrets are unknown; load the flow and replay the delivery).
pub fn prepare_attempt(
    router: &Router,
    delivery: &Delivery,
    destinations: &DestinationPolicy,
    now: Timestamp,
) -> Result<http::Request<Vec<u8>>, TransportError> {
    let mut request = delivery.request().clone();
    if let Err(reason) = destinations.check_uri(request.uri()) {
        return Err(TransportError::new(
            TransportErrorKind::Blocked,
            format!("refused by the destination policy: the destination is {reason}"),
        ));
    }
    let Some(flow) = router.flow(delivery.flow()) else {
        return Err(TransportError::new(
            TransportErrorKind::InvalidRequest,
            "the flow that made this delivery is not loaded, so its credentials and signing \
             secrets are unknown: load the flow and replay the delivery",
        ));
    };
    flow.webhook.authorize(&mut request);
    flow.webhook.sign_request(&mut request, now);
    Ok(request)
}
