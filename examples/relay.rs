//! The crate's main job, end to end: opt-outs in, webhooks out, nothing lost.
//!
//! ```sh
//! cargo run --example relay --features reqwest,tokio
//! ```
//!
//! 1. Starts an embedded receiver on 127.0.0.1 that plays the external system (it answers its
//!    first SMS request `503` with `Retry-After: 1`, to show a retry, and checks signatures).
//! 2. Loads `examples/flows/relay.json` (the article's query-string POST for email
//!    unsubscribes, a form flow for spam complaints, a signed JSON flow for SMS STOP), lints it,
//!    and points every flow at the receiver.
//! 3. Feeds the bundled events of `examples/relay-input.json` (an A-then-B unsubscribe of one
//!    Profile, a spam complaint, an SMS STOP, a re-delivered duplicate, an API opt-out that the
//!    flows do not take) through the worker and the reqwest transport.
//! 4. Prints what the receiver got and each delivery's outcome.
//!
//! Pointed at a real endpoint instead (its base replaces each flow's scheme, host and port; add
//! the `rustls` feature for https):
//!
//! ```sh
//! cargo run --example relay --features reqwest,tokio,rustls -- --endpoint https://receiver.example.net
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use optout_relay::jiff::SignedDuration;
use optout_relay::transport::ReqwestClient;
use optout_relay::url::Url;
use optout_relay::*;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Deserialize)]
struct Input {
    catalog: Catalog,
    profiles: Vec<Profile>,
    events: Vec<OptOutEvent>,
}

const FLOWS: &str = include_str!("flows/relay.json");
const INPUT: &str = include_str!("relay-input.json");
const SIGNING_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = match (args.next().as_deref(), args.next()) {
        (Some("--endpoint"), Some(url)) => Some(Url::parse(&url)?),
        (None, _) => None,
        _ => return Err("usage: relay [--endpoint URL]".into()),
    };

    // The external system: our own receiver on 127.0.0.1, unless a real endpoint was given.
    let receiver = match &endpoint {
        Some(_) => None,
        None => Some(Receiver::start().await?),
    };
    let base = match (&endpoint, &receiver) {
        (Some(url), _) => url.clone(),
        (None, Some(receiver)) => Url::parse(&format!("http://{}", receiver.addr))?,
        (None, None) => unreachable!("a receiver is started when no endpoint is given"),
    };
    println!("receiver: {base}");

    // Flows: load, lint, point at the receiver.
    let file = FlowFile::from_json(FLOWS)?;
    let diagnostics = lint_flows(&file.flows);
    println!(
        "flows: {} loaded, {} lint findings",
        file.flows.len(),
        diagnostics.len()
    );
    for diagnostic in &diagnostics {
        println!("  {diagnostic}");
    }
    let mut flows = Vec::new();
    for flow in file.flows {
        let mut url = flow.webhook.url().clone();
        url.set_scheme(base.scheme())
            .map_err(|()| "cannot use that scheme")?;
        url.set_host(base.host_str())?;
        url.set_port(base.port())
            .map_err(|()| "cannot use that port")?;
        let webhook = flow.webhook.with_url(url)?;
        flows.push(Flow { webhook, ..flow });
    }

    let input: Input = serde_json::from_str(INPUT)?;
    let router = Arc::new(Router::new(flows, &input.catalog)?);
    let profiles: HashMap<ProfileId, Profile> = input
        .profiles
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();

    // A compressed schedule so that the demo runs in seconds: 1 s, 2 s, 4 s (+-20 %).
    let policy = RetryPolicy::builder()
        .schedule([1, 2, 4].map(SignedDuration::from_secs))
        .max_attempts(4)
        .build()?;
    let client = ReqwestClient::builder()
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .timeout(Duration::from_secs(10))
        .build()?;
    let (worker, mut outcomes) = Worker::builder(router, Arc::new(client))
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .policy(policy)
        .seed(7)
        .start();

    println!();
    println!("events:");
    let mut expected = 0;
    for event in input.events {
        let profile = profiles
            .get(event.profile())
            .cloned()
            .ok_or("event for an unknown profile")?;
        let label = format!(
            "{} {} ({} via {})",
            event.id(),
            event.kind(),
            event.profile(),
            event.origin()
        );
        let submitted = worker.submit(&event, &profile).await?;
        if submitted.flows.is_empty() {
            println!("  {label}: enters no flow");
        }
        for entry in &submitted.flows {
            let what = match &entry.result {
                FlowResult::Entered { webhook_id } => {
                    expected += 1;
                    format!("entered, webhook-id {webhook_id}")
                }
                FlowResult::Refused(EntryDecision::AlreadyEntered) => {
                    "not entered: a re-delivered copy of an event already sent".to_owned()
                }
                FlowResult::Refused(decision) => format!("not entered: {decision:?}"),
                FlowResult::NotBuilt(error) => format!("not built: {error}"),
                other => format!("{other:?}"),
            };
            println!("  {label} -> flow {}: {what}", entry.flow);
        }
    }

    println!();
    println!("outcomes:");
    let (mut delivered, mut dead) = (0, 0);
    for _ in 0..expected {
        let outcome = tokio::time::timeout(Duration::from_secs(60), outcomes.recv())
            .await?
            .ok_or("the worker stopped")?;
        let delivery = outcome.delivery();
        let statuses: Vec<String> = delivery
            .attempts()
            .iter()
            .map(|a| match &a.outcome {
                AttemptOutcome::Response { status, .. } => status.to_string(),
                AttemptOutcome::Error { kind, .. } => kind.to_string(),
                _ => "?".to_owned(),
            })
            .collect();
        let verdict = match &outcome {
            Outcome::Delivered(_) => {
                delivered += 1;
                "delivered".to_owned()
            }
            Outcome::DeadLettered(d) => {
                dead += 1;
                match d.state() {
                    DeliveryState::DeadLettered { reason, .. } => {
                        format!("dead-lettered: {reason}")
                    }
                    other => format!("{other:?}"),
                }
            }
            _ => "?".to_owned(),
        };
        println!(
            "  {} {} for {}: {verdict} after {} attempt(s) [{}]",
            delivery.flow(),
            delivery.webhook_id(),
            delivery.event(),
            statuses.len(),
            statuses.join(", ")
        );
    }
    let stopped = worker.shutdown().await;
    let pending = stopped.pending.len();
    let lost = expected - delivered - dead - pending;
    println!();
    println!(
        "summary: {expected} deliveries, {delivered} delivered, {dead} dead-lettered, {pending} pending, {lost} lost"
    );

    if let Some(receiver) = receiver {
        println!();
        println!(
            "the receiver got ({} requests; personal data masked here):",
            receiver.log().len()
        );
        for line in receiver.log() {
            println!("  {line}");
        }
    }
    Ok(())
}

/// A tiny external system: HTTP/1.1 on 127.0.0.1, answering 2xx once it has "stored" an
/// opt-out, except the first SMS request, answered 503 with `Retry-After: 1`.
struct Receiver {
    addr: std::net::SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let sms_seen = Arc::new(Mutex::new(false));
        let shared = log.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, sms_seen) = (shared.clone(), sms_seen.clone());
                tokio::spawn(async move {
                    while let Ok(Some(request)) = read_request(&mut stream).await {
                        let (status, extra) = answer(&request, &sms_seen);
                        log.lock()
                            .expect("log lock")
                            .push(describe(&request, status));
                        let reply =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}\r\n");
                        if stream.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self { addr, log })
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn answer(request: &Request, sms_seen: &Mutex<bool>) -> (u16, &'static str) {
    if request.target.starts_with("/webhooks/stop") {
        // Check the Standard Webhooks signature of the signed flow.
        let secret = SigningSecret::new(SIGNING_SECRET).expect("a valid secret");
        let (Some(id), Some(ts), Some(signature)) = (
            request.header("webhook-id"),
            request
                .header("webhook-timestamp")
                .and_then(|t| t.parse().ok()),
            request.header("webhook-signature"),
        ) else {
            return (400, "");
        };
        if !secret.verify(id, ts, &request.body, signature) {
            return (401, "");
        }
        let mut seen = sms_seen.lock().expect("flag lock");
        if !*seen {
            *seen = true;
            return (503, "retry-after: 1\r\n");
        }
    }
    (204, "")
}

/// One log line per request, with email and mobile values masked.
fn describe(request: &Request, status: u16) -> String {
    let target = mask(&request.target);
    let body = mask(&String::from_utf8_lossy(&request.body));
    let id = request.header("webhook-id").unwrap_or("-");
    let signed = if request.header("webhook-signature").is_some() {
        ", signed"
    } else {
        ""
    };
    let body = if body.is_empty() {
        String::new()
    } else {
        format!(" body {body}")
    };
    format!(
        "{} {target}{body} (webhook-id {id}{signed}) -> {status}",
        request.method
    )
}

/// Masks anything that looks like an email address or a mobile number.
fn mask(text: &str) -> String {
    let decoded: String = optout_relay::url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .fold(text.to_owned(), |acc, (_, v)| {
            let masked = Email::new(v.clone())
                .map(|e| e.masked())
                .or_else(|_| Mobile::new(&v).map(|m| m.masked()));
            match masked {
                Ok(m) => acc
                    .replace(
                        &optout_relay::url::form_urlencoded::byte_serialize(v.as_bytes())
                            .collect::<String>(),
                        &m,
                    )
                    .replace(&v, &m),
                Err(_) => acc,
            }
        });
    // JSON bodies: mask string values too.
    match serde_json::from_str::<serde_json::Value>(&decoded) {
        Ok(mut value) => {
            mask_json(&mut value);
            value.to_string()
        }
        Err(_) => decoded,
    }
}

fn mask_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Ok(e) = Email::new(s.clone()) {
                *s = e.masked();
            } else if let Ok(m) = Mobile::new(&*s) {
                *s = m.masked();
            }
        }
        serde_json::Value::Object(map) => map.values_mut().for_each(mask_json),
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}
