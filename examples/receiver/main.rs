//! The other half: a small external system that receives opt-out webhooks, verifies them,
//! parses them into typed notices, applies them to its own consent store, and answers 2xx only
//! once the opt-out is stored.
//!
//! ```sh
//! # Serve on 127.0.0.1 (an ephemeral port unless --port is given) until stopped:
//! cargo run --example receiver --features reqwest,tokio,signing -- --port 8080
//! # ...and from another terminal, relay the bundled events to it:
//! cargo run --example relay --features reqwest,tokio -- --endpoint http://127.0.0.1:8080
//!
//! # Or all in one: start, let a forger send two requests carrying the webhook-ids of real
//! # events, relay the bundled events to itself, re-deliver one, send a malformed request, check
//! # the consent store, print it, and exit (non-zero if anything is off):
//! cargo run --example receiver --features reqwest,tokio,signing -- --demo
//! ```
//!
//! It reads `examples/flows/relay.json`, the flow file the relay example sends with: each
//! flow's Webhook node gives the endpoint path, the parameter names, the encoding and the
//! signing secrets, so one file describes both ends. Requests are routed by path:
//!
//! | path | flow | encoding | signed |
//! | --- | --- | --- | --- |
//! | `/optout` | email unsubscribes (the article's query-string POST) | query | no |
//! | `/optout/section` | spam complaints | form | no |
//! | `/webhooks/stop` | SMS STOP | JSON envelope | yes |
//!
//! **De-duplication** (`system.rs`): a `webhook-id` is predictable (derived from the flow and the
//! event id) and, unsigned, anyone can send it. So only a verified request of a signed flow with
//! a body encoding is de-duplicated by its id. Every other request is applied each time (an
//! opt-out applied twice changes nothing), and an id that arrives with other contents than before
//! is flagged as a conflict, every version stored: a forged request can add an opt-out, never
//! suppress a genuine one. A verified id de-duplicates on its own path only. The conflict
//! bookkeeping is bounded (a few content fingerprints per id, at most 100,000 ids, the oldest
//! forgotten first): forgetting loses a flag, never an opt-out.
//!
//! Answers: `204` stored; `200` nothing new (a verified `webhook-id` seen before, or an opt-out
//! already stored); `401` a request of a signed flow that fails verification (nothing of it is
//! kept); `400` a request that does not parse (the message names the parameter, never a value);
//! `422` no one this system can key on; `404` an unknown path; `408` a request not sent whole in
//! time; `411` `transfer-encoding`; `413` too large.
//!
//! **Serving** (`server.rs`): it keeps serving. A failing `accept()` (out of descriptors) is
//! logged and retried after a short pause; each request must arrive whole within 10 s; heads
//! are limited to 16 KiB and bodies to 64 KiB, and a `content-length` must be plain digits; at
//! most 256 connections are served at once, each for at most 100 requests and 60 s (the last
//! answer says `connection: close`), so keep-alive clients cannot hold every place.

mod server;
mod system;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use optout_relay::ReqwestClient;
use optout_relay::jiff::SignedDuration;
use optout_relay::model::IdError;
use optout_relay::relay::FlowResult;
use optout_relay::url::Url;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use serde::Deserialize;
use server::{Limits, serve};
use system::{Change, Claims, Summary, System};
use tokio::net::TcpListener;

const FLOWS: &str = include_str!("../flows/relay.json");
const INPUT: &str = include_str!("../relay-input.json");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port = 0u16;
    let mut demo = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a number")?.parse()?,
            "--demo" => demo = true,
            _ => return Err("usage: receiver [--port N] [--demo]".into()),
        }
    }

    let file = FlowFile::from_json(FLOWS)?;
    let system = Arc::new(System::new(&file.flows));
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("receiver listening on http://{addr}");
    for (path, endpoint) in &system.endpoints {
        println!(
            "  {path}: flow {} ({} encoding, {})",
            endpoint.flow,
            endpoint.parser.encoding(),
            endpoint.describe()
        );
    }
    let server = tokio::spawn(serve(listener, system.clone(), Limits::default()));

    if !demo {
        println!("waiting for webhooks (Ctrl-C to stop)");
        server.await?;
        return Err("the server stopped".into());
    }
    run_demo(&file.flows, &format!("http://{addr}")).await?;
    server.abort();
    system.print_store();
    check(&system)
}

/// The demo is also a check: every genuine opt-out stored, the forged one stored and flagged,
/// the bad requests refused.
fn check(system: &System) -> Result<(), Box<dyn std::error::Error>> {
    let expected = Summary {
        stored: 5,
        already_stored: 1,
        conflicts: 1,
        unauthorized: 1,
        bad_requests: 1,
    };
    let summary = system.summary();
    if summary != expected {
        return Err(format!("expected {expected:?}, got {summary:?}").into());
    }
    let email = |who: &str, subscription: &str| {
        SubscriptionId::new(subscription)
            .map(|s| Change::Subscription(who.to_owned(), Channel::Email, s))
    };
    let expected: BTreeSet<Change> = [
        email("ada+news@example.com", "123456")?,
        email("ada+news@example.com", "123457")?,
        Change::Section("bo@example.org".to_owned(), SectionId::new("sec-1")?),
        Change::Subscription(
            "+46701234567".to_owned(),
            Channel::Sms,
            SubscriptionId::new("200001")?,
        ),
        // The forger's: an unsigned endpoint cannot tell it from a genuine one.
        email("someone@example.net", "123457")?,
    ]
    .into();
    let stored = system.stored();
    if stored != expected {
        return Err(format!(
            "the consent store holds {} opt-outs, not the {} expected",
            stored.len(),
            expected.len()
        )
        .into());
    }
    let flagged: BTreeMap<String, usize> = [(evt_1002_id()?, 2)].into();
    if system.conflicts() != flagged {
        return Err(format!("flagged {:?}, expected {flagged:?}", system.conflicts()).into());
    }
    // The unsigned deliveries' ids (evt-1001 to evt-1003) are tracked, evt-1002's with the
    // fingerprints of both contents: the bookkeeping holds no more than that.
    let claims = Claims {
        ids: 3,
        fingerprints: 4,
    };
    if system.claims() != claims {
        return Err(format!("tracking {:?}, expected {claims:?}", system.claims()).into());
    }
    Ok(())
}

/// The `webhook-id` of evt-1002 in the unsubscribe flow: anyone can compute it.
fn evt_1002_id() -> Result<String, IdError> {
    Ok(WebhookId::derive(
        &FlowId::new("crm-unsubscribes")?,
        &EventId::new("evt-1002")?,
    )
    .to_string())
}

#[derive(Deserialize)]
struct Input {
    catalog: Catalog,
    profiles: Vec<Profile>,
    events: Vec<OptOutEvent>,
}

/// The relay example's job, pointed at this receiver: the same flows, the bundled events,
/// the worker and the reqwest transport, after two forged requests carrying the webhook-ids of
/// real events; then a re-delivery and a malformed request.
async fn run_demo(flows: &[Flow], base: &str) -> Result<(), Box<dyn std::error::Error>> {
    let base = Url::parse(base)?;
    let mut retargeted = Vec::new();
    for flow in flows {
        let mut url = flow.webhook.url().clone();
        url.set_scheme(base.scheme())
            .map_err(|()| "cannot use that scheme")?;
        url.set_host(base.host_str())?;
        url.set_port(base.port())
            .map_err(|()| "cannot use that port")?;
        retargeted.push(Flow {
            webhook: flow.webhook.with_url(url)?,
            ..flow.clone()
        });
    }
    let input: Input = serde_json::from_str(INPUT)?;
    let profiles: HashMap<ProfileId, Profile> = input
        .profiles
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let router = Arc::new(Router::new(retargeted.clone(), &input.catalog)?);
    let client = Arc::new(
        ReqwestClient::builder()
            // The demo talks to itself on 127.0.0.1: allow loopback explicitly.
            .destination_policy(DestinationPolicy::default().allow_loopback())
            .timeout(Duration::from_secs(10))
            .build()?,
    );
    let policy = RetryPolicy::builder()
        .schedule([1, 2].map(SignedDuration::from_secs))
        .max_attempts(3)
        .build()?;
    // In memory: the demo's deliveries need not outlive it (SqliteStore keeps them on disk).
    let store = Arc::new(VolatileStore::new());
    let (worker, mut outcomes) = Worker::builder(router, client.clone(), store)
        .policy(policy)
        .seed(7)
        .start();

    // A forger, before the real deliveries, sends requests carrying the webhook-ids of two real
    // events (the ids are predictable): an unsigned unsubscribe for someone else under evt-1002's
    // id, and an SMS STOP under evt-1004's id signed with the wrong secret.
    println!();
    println!("demo: a forger sends two requests carrying the webhook-ids of real events");
    let forged = http::Request::post(format!(
        "{}?email=someone%40example.net&subscription=123457",
        retargeted[0].webhook.url()
    ))
    .header("webhook-id", evt_1002_id()?)
    .body(Vec::new())?;
    let answer = client.send(forged).await?;
    println!(
        "  [forger] unsigned unsubscribe under evt-1002's webhook-id answered {} (an unsigned endpoint cannot tell)",
        answer.status()
    );
    let forger = WebhookNode::builder(retargeted[2].webhook.url().as_str())
        .encoding(WebhookEncoding::JsonEnvelope)
        .param("mobile", ParamSource::Mobile)
        .param("subscription", ParamSource::SubscriptionId)
        .sign_with("whsec_dGhpcyBpcyBhbm90aGVyIGtleSBvZiAyNCBieXRlcw==")
        .build()?;
    let sms = &input.events[3];
    let cy = profiles
        .get(sms.profile())
        .ok_or("event for an unknown profile")?;
    let forger = Flow {
        webhook: forger,
        ..retargeted[2].clone()
    };
    let forged = forger.build_request(&input.catalog, cy, sms, Timestamp::now())?;
    let answer = client.send(forged.into_request()).await?;
    println!(
        "  [forger] SMS STOP under evt-1004's webhook-id, wrong secret, answered {}",
        answer.status()
    );

    println!();
    println!("demo: relaying the relay example's events to this receiver");
    let mut expected = 0;
    for event in &input.events {
        let profile = profiles
            .get(event.profile())
            .ok_or("event for an unknown profile")?;
        let submitted = worker.submit(event, profile).await?;
        expected += submitted
            .flows
            .iter()
            .filter(|f| matches!(f.result, FlowResult::Entered { .. }))
            .count();
    }
    let (mut delivered, mut ended) = (0, 0);
    while ended < expected {
        let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
            .await?
            .ok_or("the worker stopped")?;
        // Flows an event did not enter are reported too; only deliveries are counted here.
        let Some(delivery) = outcome.delivery() else {
            if let (Some(flow), Some(event)) = (outcome.flow(), outcome.event()) {
                println!("  [relay] {flow} for {event}: not entered");
            }
            continue;
        };
        ended += 1;
        let verdict = match outcome {
            Outcome::Delivered(_) => {
                delivered += 1;
                "delivered"
            }
            _ => "NOT delivered",
        };
        println!(
            "  [relay] {} for {}: {verdict}",
            delivery.flow(),
            delivery.event()
        );
    }
    let _stopped = worker.shutdown().await;
    if delivered != expected {
        return Err(format!("{delivered} of {expected} deliveries delivered").into());
    }

    // A re-delivery: the sender never saw the 2xx (a lost response) and sends evt-1001 again,
    // with the same webhook-id.
    println!();
    println!("demo: re-delivering evt-1001 (same webhook-id), a malformed request");
    let first = &input.events[0];
    let profile = profiles
        .get(first.profile())
        .ok_or("event for an unknown profile")?;
    let again = retargeted[0].build_request(&input.catalog, profile, first, Timestamp::now())?;
    let answer = client.send(again.into_request()).await?;
    println!("  [relay] re-delivery answered {}", answer.status());

    // A malformed request: the query-string endpoint without its subscription.
    let malformed = http::Request::post(format!(
        "{}?email=someone%40example.com",
        retargeted[0].webhook.url()
    ))
    .body(Vec::new())?;
    let answer = client.send(malformed).await?;
    println!(
        "  [client] request without a subscription answered {}: {}",
        answer.status(),
        String::from_utf8_lossy(answer.body())
    );
    Ok(())
}
