//! The external system: endpoints by path, each with its parser and (for signed flows) its
//! verifier, and an in-memory consent store.
//!
//! De-duplication follows one rule: **a `webhook-id` suppresses a request only once it is
//! authenticated together with the content it names.** A request of a signed flow whose
//! parameters travel in the body (which the signature covers) is verified first; a repeat of a
//! verified `webhook-id` is answered `200` without being applied again. Anything else (an
//! unsigned endpoint, or a signed flow with the `query` encoding, whose parameters no signature
//! covers) is never skipped by its id: anyone can send any id, and the ids are predictable. It
//! is applied every time (applying an opt-out again changes nothing), answered `200` when it
//! changed nothing, and a `webhook-id` that arrives with different content than before is a
//! conflict: every version is stored, and the id is flagged for review.
//!
//! A verified id de-duplicates on its own path only: the signature does not cover the path, so a
//! signed request replayed to another endpoint must not suppress that endpoint's own.
//!
//! The conflict bookkeeping is bounded, since anyone can fill it: per id a few fingerprints of
//! the contents seen ([`ClaimLimits::versions`]) and a count, for at most [`ClaimLimits::ids`]
//! ids, the oldest forgotten first. Forgetting only loses a flag, never an opt-out: an
//! unauthenticated request is applied whatever the bookkeeping says.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use optout_relay::receive::{NoticeParser, NoticeScope, OptOutNotice, Verifier};
use optout_relay::webhook::WebhookEncoding;
use optout_relay::*;

/// One endpoint: the flow it belongs to, its parser and, for signed flows, its verifier.
pub struct Endpoint {
    pub flow: FlowId,
    pub parser: NoticeParser,
    pub verifier: Option<Verifier>,
}

impl Endpoint {
    /// Whether a verified `webhook-id` vouches for the content: the flow signs, and its
    /// parameters travel in the body, which the signature covers (not in the URL).
    pub fn id_covers_content(&self) -> bool {
        self.verifier.is_some() && self.parser.encoding() != WebhookEncoding::Query
    }

    /// How the endpoint is described at start-up.
    pub fn describe(&self) -> &'static str {
        match (&self.verifier, self.id_covers_content()) {
            (None, _) => "unsigned: every request is applied, repeats change nothing",
            (Some(_), true) => "signed: verified, then de-duplicated by webhook-id",
            (Some(_), false) => "signed, but the query is not covered: applied like unsigned",
        }
    }
}

/// The external system: endpoints by path, and its consent store.
pub struct System {
    pub endpoints: BTreeMap<String, Endpoint>,
    store: Mutex<Store>,
}

/// One change to the consent store, per person (the email address or the mobile number, or a
/// Profile id when neither was sent).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// Opted out of one Subscription on a channel.
    Subscription(String, Channel, SubscriptionId),
    /// Opted out of email for every Subscription of a Section (a spam complaint).
    Section(String, SectionId),
}

/// The consent store of the external system.
struct Store {
    /// Every opt-out stored.
    applied: BTreeSet<Change>,
    /// The masked form of each person, for printing.
    masked: HashMap<String, String>,
    /// The endpoint paths and `webhook-id`s of verified requests whose signature covers the
    /// content, once applied: a repeat on the same path is a re-delivery.
    verified: HashSet<(String, String)>,
    /// The `webhook-id`s unauthenticated requests claimed. Never used to skip a request: only to
    /// flag an id claimed by different contents.
    claims: ClaimBook,
    summary: Summary,
}

/// How much the conflict bookkeeping may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// The most `webhook-id`s tracked; past it the oldest is forgotten (its flag with it).
    pub ids: usize,
    /// The most content fingerprints kept per id. Past it, contents other than those kept are
    /// counted as one more version each (a repeat of a later version cannot be told apart).
    pub versions: usize,
}

impl Default for ClaimLimits {
    fn default() -> Self {
        Self {
            ids: 100_000,
            versions: 4,
        }
    }
}

/// What the conflict bookkeeping holds, for checking its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// The `webhook-id`s tracked.
    pub ids: usize,
    /// The content fingerprints kept, over all ids.
    pub fingerprints: usize,
}

/// The ids unauthenticated requests claimed, in the order first seen, each with fingerprints of
/// the contents it came with: constant work per request, and bounded by [`ClaimLimits`].
struct ClaimBook {
    limits: ClaimLimits,
    /// Keys the fingerprints (random per process: no one can aim at a collision).
    hasher: RandomState,
    by_id: HashMap<Arc<str>, Claim>,
    /// The ids of `by_id`, oldest first.
    order: VecDeque<Arc<str>>,
}

struct Claim {
    /// Fingerprints of the first few contents (at most [`ClaimLimits::versions`]).
    fingerprints: Vec<u64>,
    /// How many different contents claimed the id.
    versions: usize,
}

impl ClaimBook {
    fn new(limits: ClaimLimits) -> Self {
        Self {
            limits,
            hasher: RandomState::new(),
            by_id: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records that `id` came with `contents`; the number of versions when the id came before
    /// with other contents (a conflict).
    fn claim(&mut self, id: &str, contents: &BTreeSet<Change>) -> Option<usize> {
        let fingerprint = self.hasher.hash_one(contents);
        if let Some(claim) = self.by_id.get_mut(id) {
            if claim.fingerprints.contains(&fingerprint) {
                return None;
            }
            if claim.fingerprints.len() < self.limits.versions {
                claim.fingerprints.push(fingerprint);
            }
            claim.versions += 1;
            return Some(claim.versions);
        }
        if self.by_id.len() >= self.limits.ids.max(1) {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
        let id: Arc<str> = id.into();
        self.order.push_back(Arc::clone(&id));
        let fingerprints = if self.limits.versions == 0 {
            Vec::new()
        } else {
            vec![fingerprint]
        };
        self.by_id.insert(
            id,
            Claim {
                fingerprints,
                versions: 1,
            },
        );
        None
    }

    /// The tracked ids claimed by different contents, with how many.
    fn conflicts(&self) -> BTreeMap<String, usize> {
        self.by_id
            .iter()
            .filter(|(_, claim)| claim.versions > 1)
            .map(|(id, claim)| (id.to_string(), claim.versions))
            .collect()
    }
}

/// What the system answered, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Requests that stored something new (`204`).
    pub stored: usize,
    /// Requests answered `200` without a change: a verified `webhook-id` seen before, or an
    /// unauthenticated request whose opt-out was already stored.
    pub already_stored: usize,
    /// Unauthenticated requests that claimed a `webhook-id` seen before with other contents
    /// (stored all the same, and flagged), as far as the bounded bookkeeping remembers.
    pub conflicts: usize,
    /// Requests of a signed flow that failed verification (`401`).
    pub unauthorized: usize,
    /// Requests that did not parse (`400`), or named no one this store can key on (`422`).
    pub bad_requests: usize,
}

impl System {
    pub fn new(flows: &[Flow]) -> Self {
        Self::with_claim_limits(flows, ClaimLimits::default())
    }

    /// A system whose conflict bookkeeping holds at most `limits`.
    pub fn with_claim_limits(flows: &[Flow], limits: ClaimLimits) -> Self {
        let endpoints = flows
            .iter()
            .map(|flow| {
                (
                    flow.webhook.url().path().to_owned(),
                    Endpoint {
                        flow: flow.id.clone(),
                        parser: NoticeParser::from_flow(flow),
                        verifier: Verifier::from_node(&flow.webhook),
                    },
                )
            })
            .collect();
        Self {
            endpoints,
            store: Mutex::new(Store {
                applied: BTreeSet::new(),
                masked: HashMap::new(),
                verified: HashSet::new(),
                claims: ClaimBook::new(limits),
                summary: Summary::default(),
            }),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Verifies (signed flows), parses, de-duplicates (verified ids only) and stores; answers
    /// 2xx only once the opt-out is stored. The message never holds personal data unmasked.
    pub fn handle(&self, request: &http::Request<Vec<u8>>) -> (u16, String) {
        let path = request.uri().path();
        let Some(endpoint) = self.endpoints.get(path) else {
            return (404, "no such endpoint".to_owned());
        };
        let mut store = self.store();
        let verified = match &endpoint.verifier {
            Some(verifier) => match verifier.verify_request(request, Timestamp::now()) {
                Ok(verified) => Some(verified),
                Err(error) => {
                    // Nothing is recorded of a request that fails verification: its id poisons
                    // nothing.
                    store.summary.unauthorized += 1;
                    return (401, error.to_string());
                }
            },
            None => None,
        };
        let notice = match endpoint.parser.parse(request) {
            Ok(notice) => notice,
            Err(error) => {
                store.summary.bad_requests += 1;
                return (400, error.to_string());
            }
        };
        // The id de-duplicates only when the signature covers it together with the content.
        let trusted_id = verified
            .filter(|_| endpoint.id_covers_content())
            .map(|v| (path.to_owned(), v.id().to_owned()));
        if let Some(key) = &trusted_id {
            if store.verified.contains(key) {
                store.summary.already_stored += 1;
                return (200, format!("duplicate {}: already stored", key.1));
            }
        }
        let (changes, masked) = changes(&notice);
        if changes.is_empty() {
            // Only custom attributes identify the person: nothing this store can key on. Not a
            // 2xx: the sender must not count it as stored.
            store.summary.bad_requests += 1;
            return (
                422,
                "no email, mobile or profile id: nothing this system can store".to_owned(),
            );
        }
        let mut flagged = None;
        if let (None, Some(id)) = (&trusted_id, &notice.webhook_id) {
            if store.claims.claim(id, &changes).is_some() {
                store.summary.conflicts += 1;
                flagged = Some(id.clone());
            }
        }
        let mut added = 0;
        for change in changes {
            added += usize::from(store.applied.insert(change));
        }
        store.masked.extend(masked.iter().cloned());
        if let Some(key) = trusted_id {
            store.verified.insert(key);
        }
        let what = describe(&notice, &masked);
        let flag = flagged.map_or(String::new(), |id| {
            format!(" (conflict: {id} came before with other contents; flagged for review)")
        });
        if added == 0 {
            store.summary.already_stored += 1;
            (200, format!("already stored: {what}{flag}"))
        } else {
            store.summary.stored += 1;
            (204, format!("stored: {what}{flag}"))
        }
    }

    /// Every opt-out stored.
    pub fn stored(&self) -> BTreeSet<Change> {
        self.store().applied.clone()
    }

    /// The tracked `webhook-id`s flagged as conflicts, with how many contents claimed each.
    pub fn conflicts(&self) -> BTreeMap<String, usize> {
        self.store().claims.conflicts()
    }

    /// What the conflict bookkeeping holds.
    pub fn claims(&self) -> Claims {
        let store = self.store();
        Claims {
            ids: store.claims.by_id.len(),
            fingerprints: store
                .claims
                .by_id
                .values()
                .map(|c| c.fingerprints.len())
                .sum(),
        }
    }

    pub fn summary(&self) -> Summary {
        self.store().summary
    }

    /// Prints the consent store, masked, and the summary.
    pub fn print_store(&self) {
        let store = self.store();
        println!();
        println!("consent store (personal data masked):");
        let mut people: BTreeMap<&str, Vec<String>> = BTreeMap::new(); // by person, not mask
        for change in &store.applied {
            let (person, what) = match change {
                Change::Section(person, section) => (
                    person,
                    format!("email: every Subscription of section {section} (spam complaint)"),
                ),
                Change::Subscription(person, channel, subscription) => (
                    person,
                    format!("{}: Subscription {subscription}", channel.as_str()),
                ),
            };
            people.entry(person).or_default().push(what);
        }
        for (person, parts) in people {
            let name = store.masked.get(person).map_or("?", String::as_str);
            println!("  {name}: opted out of {}", parts.join("; "));
        }
        for (id, versions) in &store.claims.conflicts() {
            println!("  flagged: {id} arrived with {versions} different contents (all stored)");
        }
        let s = store.summary;
        println!(
            "summary: {} stored, {} already stored, {} conflicts flagged, {} unauthorized, {} bad requests",
            s.stored, s.already_stored, s.conflicts, s.unauthorized, s.bad_requests
        );
    }
}

/// The changes a notice asks for, and the masked form of each person it names.
fn changes(notice: &OptOutNotice) -> (BTreeSet<Change>, Vec<(String, String)>) {
    let mut people = Vec::new();
    if let Some(email) = &notice.email {
        people.push((email.as_str().to_owned(), email.masked()));
    }
    if let Some(mobile) = &notice.mobile {
        people.push((mobile.as_str().to_owned(), mobile.masked()));
    }
    if people.is_empty() {
        // Identified by Profile id or a custom attribute only: keep it under that id.
        if let Some(profile) = &notice.profile {
            people.push((format!("profile:{profile}"), format!("profile {profile}")));
        }
    }
    let mut changes = BTreeSet::new();
    for (person, _) in &people {
        match &notice.scope {
            NoticeScope::Section(section) => {
                changes.insert(Change::Section(person.clone(), section.clone()));
            }
            NoticeScope::Subscription(subscription) => {
                changes.insert(Change::Subscription(
                    person.clone(),
                    notice.channel(),
                    subscription.clone(),
                ));
            }
            _ => {}
        }
    }
    (changes, people)
}

/// What a notice does, masked.
fn describe(notice: &OptOutNotice, people: &[(String, String)]) -> String {
    let scope = match &notice.scope {
        NoticeScope::Section(section) => format!("everything in section {section}"),
        NoticeScope::Subscription(subscription) => format!("subscription {subscription}"),
        _ => "?".to_owned(),
    };
    let who: Vec<&str> = people.iter().map(|(_, masked)| masked.as_str()).collect();
    format!("{} from {scope} for {}", notice.kind, who.join(", "))
}
