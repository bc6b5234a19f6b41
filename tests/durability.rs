//! Nothing acknowledged is lost across a crash: a child process relays 1,000 opt-outs through
//! the worker and the SQLite store to a receiver on 127.0.0.1 that is slow or answers
//! `503 Retry-After`, is killed with SIGKILL at random points in several rounds, and is started
//! again on the same file. In the end every event whose `submit` returned `Ok` has been accepted
//! by the receiver, and every repeat carried the same `webhook-id`.
//!
//! The child is this test binary itself, run again with `--ignored --exact relay_child` and its
//! role in environment variables.

#![cfg(all(feature = "sqlite", feature = "reqwest"))]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use optout_relay::ReqwestClient;
use optout_relay::jiff::SignedDuration;
use optout_relay::listen::FlowSettings;
use optout_relay::relay;
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const EVENTS: usize = 1_000;

/// How the receiver answers.
const HEALTHY: u8 = 0;
const SLOW: u8 = 1;
const DOWN: u8 = 2;

/// A receiver on 127.0.0.1 that counts the requests it accepted per `webhook-id`.
struct Receiver {
    addr: std::net::SocketAddr,
    mode: Arc<AtomicU8>,
    accepted: Arc<Mutex<HashMap<String, u32>>>,
    refused: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(HEALTHY));
        let accepted = Arc::new(Mutex::new(HashMap::new()));
        let refused = Arc::new(Mutex::new(0));
        let (m, a, r) = (mode.clone(), accepted.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (mode, accepted, refused) = (m.clone(), a.clone(), r.clone());
                tokio::spawn(async move {
                    while let Some(id) = read_webhook_id(&mut stream).await {
                        let reply: &[u8] = match mode.load(Ordering::SeqCst) {
                            DOWN => {
                                *refused.lock().unwrap() += 1;
                                b"HTTP/1.1 503 X\r\ncontent-length: 0\r\nretry-after: 1\r\n\r\n"
                            }
                            slow => {
                                if slow == SLOW {
                                    tokio::time::sleep(Duration::from_millis(300)).await;
                                }
                                *accepted.lock().unwrap().entry(id).or_default() += 1;
                                b"HTTP/1.1 204 X\r\ncontent-length: 0\r\n\r\n"
                            }
                        };
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            mode,
            accepted,
            refused,
        }
    }
}

/// Reads one request and returns its `webhook-id` (empty if none).
async fn read_webhook_id(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer.len() - end - 4;
    while body < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body += n;
    }
    Some(header("webhook-id").unwrap_or_default())
}

/// A small random number from the clock and the process (no dependency needed).
fn random_below(bound: u64, salt: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut x = u64::from(nanos) ^ (u64::from(std::process::id()) << 32) ^ salt;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % bound
}

fn flow_router(receiver: &str) -> Router {
    let flow = Flow::new(
        FlowId::new("crm").unwrap(),
        SectionId::new("sec-1").unwrap(),
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        WebhookNode::builder(format!("http://{receiver}/optout"))
            .param("email", ParamSource::Email)
            .param("subscription", ParamSource::SubscriptionId)
            .build()
            .unwrap(),
    );
    Router::new([flow], &Catalog::default()).unwrap()
}

fn event(i: usize) -> (OptOutEvent, Profile) {
    let profile = ProfileId::new(format!("p-{i}")).unwrap();
    let event = OptOutEvent::email_unsubscribe(
        EventId::new(format!("evt-{i}")).unwrap(),
        profile.clone(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    );
    let profile =
        Profile::new(profile).with_email(Email::new(format!("person{i}@example.com")).unwrap());
    (event, profile)
}

/// The child: submits every event (printing `ack <webhook-id>` once `submit` returned `Ok`
/// with the event entered), relays, and exits once nothing is pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of a_sigkill_at_random_points_loses_nothing_acknowledged"]
async fn relay_child() {
    let (Ok(store), Ok(receiver)) = (
        std::env::var("OPTOUT_RELAY_CHILD_STORE"),
        std::env::var("OPTOUT_RELAY_CHILD_RECEIVER"),
    ) else {
        return;
    };
    // Endpoint health on (its claims, its records, the writer's copy of the endpoints' health),
    // without the circuit breaker, whose cool-downs would outlast the rounds.
    let store = Arc::new(
        SqliteStore::builder(&store)
            .endpoint_policy(optout_relay::health::EndpointPolicy::default().breaker(None))
            .open()
            .await
            .unwrap(),
    );
    let loopback = DestinationPolicy::default().allow_loopback();
    let client = ReqwestClient::builder()
        .destination_policy(loopback.clone())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let policy = RetryPolicy::builder()
        .schedule([100, 200, 400].map(SignedDuration::from_millis))
        // As many as a policy allows: the receiver is down for whole rounds.
        .max_attempts(optout_relay::delivery::MAX_ATTEMPTS)
        .build()
        .unwrap();
    let (worker, _outcomes) = Worker::builder(
        Arc::new(flow_router(&receiver)),
        Arc::new(client),
        store.clone(),
    )
    .policy(policy)
    .seed(0)
    .lease(Duration::from_secs(2))
    .poll_interval(Duration::from_millis(100))
    .max_in_flight(32)
    .start();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for i in 0..EVENTS {
        let (event, profile) = event(i);
        let submitted = worker.submit(&event, &profile).await.unwrap();
        for id in submitted.entered() {
            writeln!(out, "@@ack {id}").unwrap();
        }
        out.flush().unwrap();
    }
    drop(out);
    loop {
        if store.counts().await.unwrap().pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = worker.shutdown().await;
    println!("@@done");
}

/// Runs one child until it is killed after `kill_after` (or until it finishes), collecting the
/// webhook ids it acknowledged. Returns whether it finished by itself.
fn run_child(
    store: &std::path::Path,
    receiver: &str,
    kill_after: Option<Duration>,
    kill_at_acks: Option<usize>,
    acked: &Arc<Mutex<HashSet<String>>>,
) -> bool {
    let start = acked.lock().unwrap().len();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "relay_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OPTOUT_RELAY_CHILD_STORE", store)
        .env("OPTOUT_RELAY_CHILD_RECEIVER", receiver)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let sink = acked.clone();
    let done = Arc::new(Mutex::new(false));
    let finished = done.clone();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            // A line cut short by the kill is no acknowledgement. (The test harness may print
            // its own words before ours on a line.)
            let marked = line.find("@@").map(|at| &line[at..]);
            if let Some(id) = marked
                .and_then(|l| l.strip_prefix("@@ack "))
                .and_then(|l| l.strip_suffix('\n'))
            {
                sink.lock().unwrap().insert(id.to_owned());
            } else if marked == Some("@@done\n") {
                *finished.lock().unwrap() = true;
            }
            line.clear();
        }
    });
    let deadline = Instant::now() + kill_after.unwrap_or(Duration::from_secs(120));
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            reader.join().unwrap();
            assert!(status.success(), "the child failed: {status}");
            return *done.lock().unwrap();
        }
        let acks = acked.lock().unwrap().len() - start;
        if Instant::now() >= deadline || kill_at_acks.is_some_and(|n| acks >= n) {
            // SIGKILL on Unix: no destructor, no flush, no shutdown.
            child.kill().unwrap();
            child.wait().unwrap();
            reader.join().unwrap();
            assert!(
                kill_after.is_some(),
                "the last round did not finish within 120 s"
            );
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_at_random_points_loses_nothing_acknowledged() {
    let receiver = Receiver::start().await;
    let dir = std::env::temp_dir().join(format!("optout-relay-sigkill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("relay.db");
    let address = receiver.addr.to_string();
    let acked = Arc::new(Mutex::new(HashSet::new()));

    // Rounds killed mid-way: the first while it is still submitting (after a random number of
    // acknowledgements), the others at random times while it relays; the receiver slow, then
    // down (503 + Retry-After), then slow, then down.
    let mut kills = Vec::new();
    for (round, mode) in [SLOW, DOWN, SLOW, DOWN].into_iter().enumerate() {
        receiver.mode.store(mode, Ordering::SeqCst);
        let after = Duration::from_millis(400 + random_below(1_200, round as u64));
        let at_acks = (round == 0).then(|| 100 + random_below(700, 99) as usize);
        let before = acked.lock().unwrap().len();
        let (s, a, k) = (store.clone(), address.clone(), acked.clone());
        let finished =
            tokio::task::spawn_blocking(move || run_child(&s, &a, Some(after), at_acks, &k))
                .await
                .unwrap();
        let now = acked.lock().unwrap().len();
        kills.push((round, mode, after, now - before, finished));
    }
    // The last round: the receiver healthy; the child finishes by itself.
    receiver.mode.store(HEALTHY, Ordering::SeqCst);
    let (s, a, k) = (store.clone(), address.clone(), acked.clone());
    let finished = tokio::task::spawn_blocking(move || run_child(&s, &a, None, None, &k))
        .await
        .unwrap();
    assert!(finished, "the last child did not report done");

    let acked = acked.lock().unwrap().clone();
    let accepted = receiver.accepted.lock().unwrap().clone();
    let expected: HashSet<String> = (0..EVENTS)
        .map(|i| {
            WebhookId::derive(&FlowId::new("crm").unwrap(), event(i).0.id())
                .as_str()
                .to_owned()
        })
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !accepted.contains_key(*id))
        .collect();
    let duplicates: u32 = accepted.values().map(|n| n - 1).sum();
    for (round, mode, after, new_acks, finished) in &kills {
        eprintln!(
            "round {round}: receiver {}, SIGKILL after {after:?}, {new_acks} new acknowledgements, finished by itself: {finished}",
            ["healthy", "slow", "down"][*mode as usize]
        );
    }
    eprintln!(
        "sigkill: {} acknowledged, {} accepted, {} lost, {duplicates} duplicates (same webhook-id), {} answered 503",
        acked.len(),
        accepted.len(),
        lost.len(),
        receiver.refused.lock().unwrap()
    );
    assert!(lost.is_empty(), "lost after SIGKILL: {lost:?}");
    // Every event entered in some round (a few may have committed just before a kill, before
    // the child printed their acknowledgement: a later round finds them already entered), every
    // one was accepted, and the receiver saw no other id: repeats carry the same webhook-id.
    assert!(acked.iter().all(|id| expected.contains(id)));
    assert!(accepted.keys().all(|id| expected.contains(id)));
    assert_eq!(accepted.len(), EVENTS);
    assert!(
        kills.iter().all(|k| !k.4),
        "a killed round finished before its kill"
    );
    let reopened = SqliteStore::open(&store).await.unwrap();
    let counts = reopened.counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.delivered, counts.dead_lettered),
        (0, EVENTS as u64, 0)
    );
    drop(reopened);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child of the concurrency test: waits for the start time, admits its event through its own
/// SQLite store on the shared file, and prints the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of two_processes_admitting_at_once_never_exceed_a_limit"]
async fn admit_child() {
    let (Ok(store), Ok(event_id), Ok(start), Ok(limit)) = (
        std::env::var("OPTOUT_RELAY_ADMIT_STORE"),
        std::env::var("OPTOUT_RELAY_ADMIT_EVENT"),
        std::env::var("OPTOUT_RELAY_ADMIT_START"),
        std::env::var("OPTOUT_RELAY_ADMIT_LIMIT"),
    ) else {
        return;
    };
    let store = SqliteStore::open(&store).await.unwrap();
    let limit = match limit.as_str() {
        "1" => EntryLimit::at_most(1).unwrap(),
        _ => EntryLimit::Unlimited,
    };
    let flow = flow_router("127.0.0.1:9").flows()[0]
        .clone()
        .with_settings(FlowSettings::with_entry_limit(limit));
    let router = Router::new([flow], &Catalog::default()).unwrap();
    let profile_index = if limit == EntryLimit::Unlimited { 0 } else { 1 };
    let (_, profile) = event(profile_index);
    let event = OptOutEvent::email_unsubscribe(
        EventId::new(event_id).unwrap(),
        profile.id.clone(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    );
    let plan = relay::plan(&router, &event, &profile, Timestamp::now());
    let start: i64 = start.parse().unwrap();
    let wait = start - Timestamp::now().as_millisecond();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let submitted = store.admit(plan).await.unwrap();
    println!("@@result {:?}", submitted.flows[0].result);
}

fn run_admit_children(store: &std::path::Path, events: [&str; 2], limit: &str) -> Vec<String> {
    let start = Timestamp::now().as_millisecond() + 1_500;
    let children: Vec<_> = events
        .iter()
        .map(|event| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "admit_child",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("OPTOUT_RELAY_ADMIT_STORE", store)
                .env("OPTOUT_RELAY_ADMIT_EVENT", event)
                .env("OPTOUT_RELAY_ADMIT_START", start.to_string())
                .env("OPTOUT_RELAY_ADMIT_LIMIT", limit)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut results: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            let text = String::from_utf8(output.stdout).unwrap();
            let at = text
                .find("@@result ")
                .expect("the child printed its result");
            text[at + 9..].lines().next().unwrap().to_owned()
        })
        .collect();
    results.sort();
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_admitting_at_once_never_exceed_a_limit() {
    let dir = std::env::temp_dir().join(format!("optout-relay-admit2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("relay.db");
    // Created first, so that both children open an existing file.
    drop(SqliteStore::open(&path).await.unwrap());

    // The same event from two processes at once: one entry, one delivery.
    let same = run_admit_children(&path, ["evt-same", "evt-same"], "unlimited");
    let id = WebhookId::derive(
        &FlowId::new("crm").unwrap(),
        &EventId::new("evt-same").unwrap(),
    );
    assert_eq!(
        same,
        [
            format!("Entered {{ webhook_id: WebhookId(\"{id}\") }}"),
            "Refused(AlreadyEntered)".to_owned()
        ]
    );
    // A limit of one entry: A and B of the same (other) Profile at once, exactly one enters.
    let limited = SqliteStore::open(&path).await.unwrap();
    let before = limited.counts().await.unwrap();
    let ab = run_admit_children(&path, ["evt-a", "evt-b"], "1");
    assert_eq!(
        ab.iter().filter(|r| r.starts_with("Entered")).count(),
        1,
        "{ab:?}"
    );
    assert_eq!(
        ab.iter()
            .filter(|r| r.starts_with("Refused(LimitReached"))
            .count(),
        1,
        "{ab:?}"
    );
    let after = limited.counts().await.unwrap();
    assert_eq!(after.entries - before.entries, 1);
    assert_eq!(after.pending - before.pending, 1);
    drop(limited);
    let _ = std::fs::remove_dir_all(&dir);
}
