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
//! Every entry and delivery is kept in the SQLite delivery store (a file in a temporary
//! directory, or `--store PATH` to keep it and open it with the `sqlite3` shell) from the
//! moment `submit` returns.
//!
//! Pointed at a real endpoint instead (its base replaces each flow's scheme, host and port; add
//! the `rustls` feature for https):
//!
//! ```sh
//! cargo run --example relay --features reqwest,tokio,rustls -- --endpoint https://receiver.example.net
//! ```
//!
//! The crash demonstration: a child relay is killed with SIGKILL mid-way, started again on the
//! same file, and nothing it acknowledged is lost:
//!
//! ```sh
//! cargo run --example relay --features reqwest,tokio -- --crash-demo
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use optout_relay::ReqwestClient;
use optout_relay::delivery::AttemptOutcome;
use optout_relay::delivery::DeliveryState;
use optout_relay::jiff::SignedDuration;
use optout_relay::lint::lint_flows;
use optout_relay::listen::EntryDecision;
use optout_relay::relay::FlowResult;
use optout_relay::url::Url;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::SigningSecret;
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
    let usage = "usage: relay [--endpoint URL] [--store PATH] | relay --crash-demo";
    let mut args = std::env::args().skip(1);
    let (mut endpoint, mut store_path) = (None, None);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--endpoint", Some(url)) => endpoint = Some(Url::parse(&url)?),
            ("--store", Some(path)) => store_path = Some(PathBuf::from(path)),
            ("--crash-demo", None) => return crash_demo().await,
            ("--crash-child", Some(store)) => {
                let receiver = args.next().ok_or(usage)?;
                return crash_child(&store, &receiver).await;
            }
            _ => return Err(usage.into()),
        }
    }
    // The delivery store: the given file, or a fresh one in a temporary directory.
    let scratch = match &store_path {
        Some(_) => None,
        None => Some(Scratch::new("relay")?),
    };
    let path = match (&store_path, &scratch) {
        (Some(path), _) => path.clone(),
        (None, Some(scratch)) => scratch.0.join("relay.db"),
        (None, None) => unreachable!("a scratch directory is made when no store is given"),
    };
    let store = Arc::new(SqliteStore::open(&path).await?);
    println!("store: {} (SQLite, WAL, synchronous FULL)", path.display());

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
    let (worker, mut outcomes) = Worker::builder(router, Arc::new(client), store.clone())
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
    // The stream reports every decision: each delivery's end, and each flow an event matched
    // but did not enter (as submit's answer did above).
    while delivered + dead < expected {
        let outcome = tokio::time::timeout(Duration::from_secs(60), outcomes.recv())
            .await?
            .ok_or("the worker stopped")?;
        let Some(delivery) = outcome.delivery() else {
            match &outcome {
                Outcome::Refused {
                    event,
                    flow,
                    decision,
                    ..
                } => println!("  {flow} for {event}: not entered ({decision:?})"),
                Outcome::NotBuilt {
                    event, flow, error, ..
                } => println!("  {flow} for {event}: not built ({error})"),
                other => println!("  {other:?}"),
            }
            continue;
        };
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
    let _ = worker.shutdown().await;
    let counts = store.counts().await?;
    let pending = usize::try_from(counts.pending)?;
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
    drop(scratch);
    if lost != 0 {
        return Err(format!("{lost} deliveries lost").into());
    }
    Ok(())
}

/// A temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "optout-relay-{name}-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CRASH_EVENTS: usize = 200;

/// The crash demonstration: a child relay (this program, `--crash-child`) submits
/// `CRASH_EVENTS` opt-outs to a receiver here that takes 100 ms per request, and prints each
/// acknowledgement; it is killed with SIGKILL after 150 of them, started again on the same
/// file, and left to finish. Every acknowledged opt-out must reach the receiver.
async fn crash_demo() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = Scratch::new("crash-demo")?;
    let store = scratch.0.join("relay.db");
    let received: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let counts = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                while let Ok(Some(request)) = read_request(&mut stream).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let id = request.header("webhook-id").unwrap_or("-").to_owned();
                    *counts.lock().expect("counts lock").entry(id).or_default() += 1;
                    let reply = "HTTP/1.1 204 X\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    println!("crash demo: receiver on {addr}, store {}", store.display());
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let (first, finished) = run_crash_child(&store, addr, Some(150), &acked).await?;
    let delivered_before = received.lock().expect("counts lock").len();
    println!(
        "  child 1: killed with SIGKILL after {first} acknowledged opt-outs ({delivered_before} had reached the receiver){}",
        if finished { " (it had finished!)" } else { "" }
    );
    let (second, finished) = run_crash_child(&store, addr, None, &acked).await?;
    println!("  child 2: same file, {second} more acknowledged, finished: {finished}");
    let received = received.lock().expect("counts lock").clone();
    let acked = acked.lock().expect("acked lock").clone();
    let lost = acked
        .iter()
        .filter(|id| !received.contains_key(*id))
        .count();
    let duplicates: u32 = received.values().map(|n| n - 1).sum();
    println!(
        "crash demo: {} acknowledged, {} received, lost = {lost}, {duplicates} received twice (same webhook-id, de-duplicated by the receiver)",
        acked.len(),
        received.len()
    );
    if lost != 0 || !finished {
        return Err(format!("crash demo failed: lost = {lost}").into());
    }
    Ok(())
}

/// Runs the child relay until it has printed `kill_after` acknowledgements (then SIGKILLs it)
/// or until it finishes. Returns the acknowledgements it printed and whether it finished.
async fn run_crash_child(
    store: &std::path::Path,
    receiver: std::net::SocketAddr,
    kill_after: Option<usize>,
    acked: &Arc<Mutex<HashSet<String>>>,
) -> Result<(usize, bool), Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--crash-child")
        .arg(store)
        .arg(receiver.to_string())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let (lines, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let (mut count, mut finished) = (0, false);
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline.into(), incoming.recv()).await {
        if let Some(id) = line.strip_prefix("ack ") {
            acked.lock().expect("acked lock").insert(id.to_owned());
            count += 1;
            if kill_after == Some(count) {
                // SIGKILL: no destructor runs, nothing is flushed, nothing shuts down.
                child.kill()?;
                break;
            }
        } else if line == "done" {
            finished = true;
        }
    }
    child.wait()?;
    Ok((count, finished))
}

/// The child relay of the crash demonstration.
async fn crash_child(store: &str, receiver: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteStore::open(store).await?);
    let flow = Flow::new(
        FlowId::new("crm")?,
        SectionId::new("sec-1")?,
        ListenNode::new([EventKind::EmailUnsubscribe])?,
        WebhookNode::builder(format!("http://{receiver}/optout"))
            .param("email", ParamSource::Email)
            .param("subscription", ParamSource::SubscriptionId)
            .build()?,
    );
    let loopback = DestinationPolicy::default().allow_loopback();
    let client = ReqwestClient::builder()
        .destination_policy(loopback.clone())
        .build()?;
    let router = Arc::new(Router::new([flow], &Catalog::default())?);
    let (worker, _outcomes) = Worker::builder(router, Arc::new(client), store.clone())
        .max_in_flight(16)
        .lease(Duration::from_secs(2))
        .start();
    let mut out = std::io::stdout().lock();
    for i in 0..CRASH_EVENTS {
        let profile = ProfileId::new(format!("p-{i}"))?;
        let event = OptOutEvent::email_unsubscribe(
            EventId::new(format!("crash-{i}"))?,
            profile.clone(),
            SectionId::new("sec-1")?,
            SubscriptionId::new("123456")?,
            Timestamp::now(),
        );
        let profile = Profile::new(profile).with_email(Email::new(format!("p{i}@example.com"))?);
        let submitted = worker.submit(&event, &profile).await?;
        for id in submitted.entered() {
            writeln!(out, "ack {id}")?;
        }
        out.flush()?;
    }
    while store.counts().await?.pending > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = worker.shutdown().await;
    writeln!(out, "done")?;
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
                .ok()
                .or_else(|| normalized_mobile(&v));
            match masked {
                Some(m) => acc
                    .replace(
                        &optout_relay::url::form_urlencoded::byte_serialize(v.as_bytes())
                            .collect::<String>(),
                        &m,
                    )
                    .replace(&v, &m),
                None => acc,
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

/// A mobile number in a form the metadata is certain of, masked. A Mobile kept as given could
/// be any text with a digit (an id, a time): those are left alone.
fn normalized_mobile(text: &str) -> Option<String> {
    Mobile::new(text)
        .ok()
        .filter(Mobile::is_normalized)
        .map(|m| m.masked())
}

fn mask_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Ok(e) = Email::new(s.clone()) {
                *s = e.masked();
            } else if let Some(m) = normalized_mobile(s) {
                *s = m;
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
