//! The other half: a small external system that receives opt-out webhooks, verifies them,
//! parses them into typed notices, de-duplicates them by `webhook-id`, and applies them to its
//! own consent store, answering 2xx only once the opt-out is stored.
//!
//! ```sh
//! # Serve on 127.0.0.1 (an ephemeral port unless --port is given) until stopped:
//! cargo run --example receiver --features reqwest,tokio -- --port 8080
//! # ...and from another terminal, relay the bundled events to it:
//! cargo run --example relay --features reqwest,tokio -- --endpoint http://127.0.0.1:8080
//!
//! # Or all in one: start, relay the bundled events to itself, re-deliver one, try a forged
//! # and a malformed request, print the consent store, and exit:
//! cargo run --example receiver --features reqwest,tokio -- --demo
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
//! Answers: `204` stored; `200` a duplicate `webhook-id` (already stored, nothing done);
//! `401` a request of a signed flow that fails verification; `400` a request that does not parse
//! (the message names the parameter, never a value); `404` an unknown path; `413` too large.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use optout_relay::jiff::SignedDuration;
use optout_relay::receive::{NoticeParser, NoticeScope, OptOutNotice, Verifier};
use optout_relay::transport::ReqwestClient;
use optout_relay::url::Url;
use optout_relay::*;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FLOWS: &str = include_str!("flows/relay.json");
const INPUT: &str = include_str!("relay-input.json");
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

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
            if endpoint.verifier.is_some() {
                "signed"
            } else {
                "unsigned"
            }
        );
    }
    let server = tokio::spawn(serve(listener, system.clone()));

    if !demo {
        println!("waiting for webhooks (Ctrl-C to stop)");
        server.await?;
        return Ok(());
    }
    run_demo(&file.flows, &format!("http://{addr}")).await?;
    server.abort();
    let summary = system.print_store();
    // The demo is also a check: every opt-out stored once, the bad requests refused.
    let expected = Summary {
        stored: 4,
        duplicates: 1,
        unauthorized: 1,
        bad_requests: 1,
    };
    if summary != expected {
        return Err(format!("expected {expected:?}, got {summary:?}").into());
    }
    Ok(())
}

/// One endpoint: the flow it belongs to, its parser and, for signed flows, its verifier.
struct Endpoint {
    flow: FlowId,
    parser: NoticeParser,
    verifier: Option<Verifier>,
}

/// The external system: endpoints by path, and its consent store.
struct System {
    endpoints: BTreeMap<String, Endpoint>,
    store: Mutex<Store>,
}

/// The consent store of the external system, keyed by what identifies a person here: the
/// email address or the mobile number.
#[derive(Default)]
struct Store {
    /// Per person, the (channel, Subscription) pairs opted out of.
    opted_out: BTreeMap<String, BTreeSet<(Channel, SubscriptionId)>>,
    /// Per person, the Sections opted out of entirely (email, from a spam complaint).
    section_opt_outs: BTreeMap<String, BTreeSet<SectionId>>,
    /// Every `webhook-id` applied, for de-duplication.
    seen: HashSet<String>,
    /// The masked form of each key, for printing.
    masked: HashMap<String, String>,
    summary: Summary,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Summary {
    stored: usize,
    duplicates: usize,
    unauthorized: usize,
    bad_requests: usize,
}

impl System {
    fn new(flows: &[Flow]) -> Self {
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
            store: Mutex::new(Store::default()),
        }
    }

    /// Verifies, parses, de-duplicates and stores; answers only once stored.
    fn handle(&self, request: &http::Request<Vec<u8>>) -> (u16, String) {
        let Some(endpoint) = self.endpoints.get(request.uri().path()) else {
            return (404, "no such endpoint".to_owned());
        };
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(verifier) = &endpoint.verifier {
            if let Err(error) = verifier.verify_request(request, Timestamp::now()) {
                store.summary.unauthorized += 1;
                return (401, error.to_string());
            }
        }
        let notice = match endpoint.parser.parse(request) {
            Ok(notice) => notice,
            Err(error) => {
                store.summary.bad_requests += 1;
                return (400, error.to_string());
            }
        };
        if let Some(id) = &notice.webhook_id {
            if store.seen.contains(id) {
                store.summary.duplicates += 1;
                return (200, format!("duplicate {id}: already applied"));
            }
        }
        let what = store.apply(&notice);
        if let Some(id) = &notice.webhook_id {
            store.seen.insert(id.clone());
        }
        store.summary.stored += 1;
        (204, what)
    }

    fn print_store(&self) -> Summary {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        println!();
        println!("consent store (personal data masked):");
        let people: BTreeSet<&String> = store
            .opted_out
            .keys()
            .chain(store.section_opt_outs.keys())
            .collect();
        for person in people {
            let name = store.masked.get(person).map_or("?", String::as_str);
            let mut parts = Vec::new();
            for section in store.section_opt_outs.get(person).into_iter().flatten() {
                parts.push(format!(
                    "email: every Subscription of section {section} (spam complaint)"
                ));
            }
            for (channel, subscription) in store.opted_out.get(person).into_iter().flatten() {
                parts.push(format!("{}: Subscription {subscription}", channel.as_str()));
            }
            println!("  {name}: opted out of {}", parts.join("; "));
        }
        let s = store.summary;
        println!(
            "summary: {} stored, {} duplicates ignored, {} unauthorized, {} bad requests",
            s.stored, s.duplicates, s.unauthorized, s.bad_requests
        );
        s
    }
}

impl Store {
    /// Applies the opt-out to every identifier the notice carries; returns what was done
    /// (masked).
    fn apply(&mut self, notice: &OptOutNotice) -> String {
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
        let mut who = Vec::new();
        for (key, masked) in people {
            match &notice.scope {
                NoticeScope::Section(section) => {
                    self.section_opt_outs
                        .entry(key.clone())
                        .or_default()
                        .insert(section.clone());
                }
                NoticeScope::Subscription(subscription) => {
                    self.opted_out
                        .entry(key.clone())
                        .or_default()
                        .insert((notice.channel(), subscription.clone()));
                }
                _ => {}
            }
            who.push(masked.clone());
            self.masked.insert(key, masked);
        }
        let scope = match &notice.scope {
            NoticeScope::Section(section) => format!("everything in section {section}"),
            NoticeScope::Subscription(subscription) => format!("subscription {subscription}"),
            _ => "?".to_owned(),
        };
        format!("{} from {scope} for {}", notice.kind, who.join(", "))
    }
}

async fn serve(listener: TcpListener, system: Arc<System>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let system = system.clone();
        tokio::spawn(async move {
            loop {
                let (status, message, keep_open) = match read_request(&mut stream).await {
                    Ok(Some(request)) => {
                        let (status, message) = system.handle(&request);
                        println!(
                            "  [receiver] {} {} -> {status} {message}",
                            request.method(),
                            request.uri().path()
                        );
                        (status, message, true)
                    }
                    Ok(None) => return,
                    Err(Refused(status, message)) => {
                        println!("  [receiver] -> {status} {message}");
                        (status, message.to_owned(), false)
                    }
                };
                let reply = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{message}",
                    reason(status),
                    message.len()
                );
                if stream.write_all(reply.as_bytes()).await.is_err() || !keep_open {
                    return;
                }
            }
        });
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Content Too Large",
        _ => "Error",
    }
}

/// A request refused before it could be read whole.
struct Refused(u16, &'static str);

/// Reads one HTTP/1.1 request (head up to 16 KiB, a `content-length` body up to 64 KiB).
async fn read_request(stream: &mut TcpStream) -> Result<Option<http::Request<Vec<u8>>>, Refused> {
    let mut buffer = Vec::new();
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Err(Refused(413, "request head too large"));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = std::str::from_utf8(&buffer[..end]).map_err(|_| Refused(400, "head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let mut builder = http::Request::builder().method(method).uri(target);
    let mut length = 0usize;
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| Refused(400, "bad content-length"))?;
        }
        builder = builder.header(name, value);
    }
    if length > MAX_BODY {
        return Err(Refused(413, "body too large"));
    }
    let mut body = buffer[end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(length);
    builder
        .body(body)
        .map(Some)
        .map_err(|_| Refused(400, "malformed request"))
}

#[derive(Deserialize)]
struct Input {
    catalog: Catalog,
    profiles: Vec<Profile>,
    events: Vec<OptOutEvent>,
}

/// The relay example's job, pointed at this receiver: the same flows, the bundled events,
/// the worker and the reqwest transport. Then a re-delivery, a forged and a malformed request.
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
    for _ in 0..expected {
        let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
            .await?
            .ok_or("the worker stopped")?;
        let delivery = outcome.delivery();
        let verdict = match outcome {
            Outcome::Delivered(_) => "delivered",
            _ => "NOT delivered",
        };
        println!(
            "  [relay] {} for {}: {verdict}",
            delivery.flow(),
            delivery.event()
        );
    }
    let _stopped = worker.shutdown().await;

    // A re-delivery: the sender never saw the 2xx (a lost response) and sends evt-1001 again,
    // with the same webhook-id.
    println!();
    println!(
        "demo: re-delivering evt-1001 (same webhook-id), a forged SMS STOP, a malformed request"
    );
    let first = &input.events[0];
    let profile = profiles
        .get(first.profile())
        .ok_or("event for an unknown profile")?;
    let again =
        retargeted[0]
            .webhook
            .build_request(&retargeted[0].id, profile, first, Timestamp::now())?;
    let answer = client.send(again.into_request()).await?;
    println!("  [relay] re-delivery answered {}", answer.status());

    // A forged SMS STOP: right shape, signed with the wrong secret.
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
    let forged = forger.build_request(&retargeted[2].id, cy, sms, Timestamp::now())?;
    let answer = client.send(forged.into_request()).await?;
    println!("  [forger] forged SMS STOP answered {}", answer.status());

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
