//! The receiver example (`examples/receiver/`), its serving and its consent store compiled into
//! this test: de-duplication that no unauthenticated request can poison, and a server that keeps
//! serving through stalled clients, oversized requests and a failing `accept()`.
#![cfg(feature = "signing")]

#[allow(dead_code)]
#[path = "../examples/receiver/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../examples/receiver/system.rs"]
mod system;

#[path = "support/node_requests.rs"]
mod node_requests;
use node_requests::NodeRequests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use optout_relay::webhook::ParamSource;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookId;
use optout_relay::*;
use server::{Limits, serve};
use system::{Change, ClaimLimits, Claims, Summary, System};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FLOWS: &str = include_str!("../examples/flows/relay.json");

fn flows() -> Vec<Flow> {
    FlowFile::from_json(FLOWS).unwrap().flows
}

/// The flow of the example's flow file with this id.
fn flow(id: &str) -> Flow {
    flows().into_iter().find(|f| f.id.as_str() == id).unwrap()
}

fn ada() -> Profile {
    Profile::new(ProfileId::new("p-ada").unwrap())
        .with_email(Email::new("ada+news@example.com").unwrap())
}

fn cy() -> Profile {
    Profile::new(ProfileId::new("p-cy").unwrap())
        .with_mobile(Mobile::new("+46 70 123 45 67").unwrap())
}

/// Cy's Mobile masked: normalized by the metadata, or, without it, kept as given.
#[cfg(feature = "phonenumber")]
const CY_MASKED: &str = "+46*******67";
#[cfg(not(feature = "phonenumber"))]
const CY_MASKED: &str = "***67";

fn unsubscribe(event: &str, profile: &Profile, subscription: &str) -> OptOutEvent {
    OptOutEvent::email_unsubscribe(
        EventId::new(event).unwrap(),
        profile.id.clone(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new(subscription).unwrap(),
        "2026-11-25T17:45:00Z".parse().unwrap(),
    )
}

fn sms_stop() -> OptOutEvent {
    OptOutEvent::sms_unsubscribe(
        EventId::new("evt-1004").unwrap(),
        ProfileId::new("p-cy").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("200001").unwrap(),
        "2026-11-26T10:02:00Z".parse().unwrap(),
    )
}

/// The request the relay sends for `event` in `flow`, signed now when the flow signs.
fn genuine(flow: &Flow, profile: &Profile, event: &OptOutEvent) -> http::Request<Vec<u8>> {
    flow.webhook
        .build_request(&flow.id, profile, event, Timestamp::now())
        .unwrap()
        .into_request()
}

fn webhook_id(flow: &str, event: &str) -> String {
    WebhookId::derive(&FlowId::new(flow).unwrap(), &EventId::new(event).unwrap()).to_string()
}

/// A request nobody signed, carrying `id` as its `webhook-id`.
fn unsigned(uri: &str, id: &str, body: &[u8]) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::post(uri).header("webhook-id", id);
    if !body.is_empty() {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    }
    builder.body(body.to_vec()).unwrap()
}

fn email(who: &str, subscription: &str) -> Change {
    Change::Subscription(
        who.to_owned(),
        Channel::Email,
        SubscriptionId::new(subscription).unwrap(),
    )
}

fn answer(status: u16, message: &str) -> (u16, String) {
    (status, message.to_owned())
}

#[test]
fn forged_unsigned_requests_carrying_genuine_ids_do_not_suppress_the_genuine_opt_outs() {
    let system = System::new(&flows());
    let crm = flow("crm-unsubscribes");
    let spam = flow("crm-spam-complaints");
    let bo = Profile::new(ProfileId::new("p-bo").unwrap())
        .with_email(Email::new("bo@example.org").unwrap());
    let complaint = OptOutEvent::email_abuse(
        EventId::new("evt-1003").unwrap(),
        bo.id.clone(),
        SectionId::new("sec-1").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    );
    let (id_1, id_2, id_3) = (
        webhook_id("crm-unsubscribes", "evt-1001"),
        webhook_id("crm-unsubscribes", "evt-1002"),
        webhook_id("crm-spam-complaints", "evt-1003"),
    );

    // First the forger: anyone can compute the ids of real events, and these endpoints are
    // unsigned. What it sends is stored (nothing tells it apart), and suppresses nothing.
    let forged = [
        unsigned(
            "https://crm.example.com/optout?email=someone%40example.net&subscription=123457",
            &id_1,
            b"",
        ),
        unsigned(
            "https://crm.example.com/optout?email=other%40example.net&subscription=123456",
            &id_2,
            b"",
        ),
        unsigned(
            "https://crm.example.com/optout/section",
            &id_3,
            b"email=someone%40example.net&section=sec-1&event=evt-1003",
        ),
    ];
    let answers: Vec<_> = forged.iter().map(|r| system.handle(r)).collect();
    assert_eq!(
        answers,
        [
            answer(
                204,
                "stored: Email - Unsubscribe from subscription 123457 for s***@e***.net"
            ),
            answer(
                204,
                "stored: Email - Unsubscribe from subscription 123456 for o***@e***.net"
            ),
            answer(
                204,
                "stored: Email - Abuse from everything in section sec-1 for s***@e***.net"
            ),
        ]
    );

    // Then the genuine deliveries: each is stored, and its id flagged as a conflict.
    let deliveries = [
        genuine(&crm, &ada(), &unsubscribe("evt-1001", &ada(), "123456")),
        genuine(&crm, &ada(), &unsubscribe("evt-1002", &ada(), "123457")),
        genuine(&spam, &bo, &complaint),
    ];
    assert_eq!(deliveries[0].headers()["webhook-id"], id_1.as_str());
    let answers: Vec<_> = deliveries.iter().map(|r| system.handle(r)).collect();
    let conflict =
        |id: &str| format!(" (conflict: {id} came before with other contents; flagged for review)");
    assert_eq!(
        answers,
        [
            answer(
                204,
                &format!(
                    "stored: Email - Unsubscribe from subscription 123456 for a***@e***.com{}",
                    conflict(&id_1)
                )
            ),
            answer(
                204,
                &format!(
                    "stored: Email - Unsubscribe from subscription 123457 for a***@e***.com{}",
                    conflict(&id_2)
                )
            ),
            answer(
                204,
                &format!(
                    "stored: Email - Abuse from everything in section sec-1 for ***@e***.org{}",
                    conflict(&id_3)
                )
            ),
        ]
    );
    let genuine_opt_outs = [
        email("ada+news@example.com", "123456"),
        email("ada+news@example.com", "123457"),
        Change::Section("bo@example.org".into(), SectionId::new("sec-1").unwrap()),
    ];
    let forged_opt_outs = [
        email("someone@example.net", "123457"),
        email("other@example.net", "123456"),
        Change::Section(
            "someone@example.net".into(),
            SectionId::new("sec-1").unwrap(),
        ),
    ];
    let everything: BTreeSet<Change> = genuine_opt_outs
        .iter()
        .chain(&forged_opt_outs)
        .cloned()
        .collect();
    assert_eq!(system.stored(), everything);

    // A re-delivery of a genuine request (a lost answer) changes nothing and says so.
    assert_eq!(
        system.handle(&genuine(
            &crm,
            &ada(),
            &unsubscribe("evt-1001", &ada(), "123456")
        )),
        answer(
            200,
            "already stored: Email - Unsubscribe from subscription 123456 for a***@e***.com"
        )
    );
    assert_eq!(system.stored(), everything);
    assert_eq!(
        system.conflicts(),
        BTreeMap::from([(id_1, 2), (id_2, 2), (id_3, 2)])
    );
    assert_eq!(
        system.summary(),
        Summary {
            stored: 6,
            already_stored: 1,
            conflicts: 3,
            unauthorized: 0,
            bad_requests: 0,
        }
    );
}

#[test]
fn a_forged_copy_of_the_genuine_contents_leaves_the_opt_out_stored() {
    let system = System::new(&flows());
    let crm = flow("crm-unsubscribes");
    let id = webhook_id("crm-unsubscribes", "evt-1001");
    // The forger guessed the contents too: that stores the very opt-out the genuine one asks.
    let copy = unsigned(
        "https://crm.example.com/optout?email=ada%2Bnews%40example.com&subscription=123456",
        &id,
        b"",
    );
    assert_eq!(
        system.handle(&copy),
        answer(
            204,
            "stored: Email - Unsubscribe from subscription 123456 for a***@e***.com"
        )
    );
    assert_eq!(
        system.handle(&genuine(
            &crm,
            &ada(),
            &unsubscribe("evt-1001", &ada(), "123456")
        )),
        answer(
            200,
            "already stored: Email - Unsubscribe from subscription 123456 for a***@e***.com"
        )
    );
    assert_eq!(
        system.stored(),
        BTreeSet::from([email("ada+news@example.com", "123456")])
    );
    assert_eq!(system.conflicts(), BTreeMap::new());
}

#[test]
fn on_a_signed_endpoint_forged_requests_are_401_and_poison_no_id() {
    let system = System::new(&flows());
    let stop = flow("sms-gateway-stop");
    let real = genuine(&stop, &cy(), &sms_stop());
    let id = webhook_id("sms-gateway-stop", "evt-1004");
    assert_eq!(real.headers()["webhook-id"], id.as_str());

    // Unsigned, carrying the genuine id and body.
    let mut no_signature = real.clone();
    no_signature.headers_mut().remove("webhook-signature");
    // Signed with another secret.
    let other = WebhookNode::builder(stop.webhook.url().as_str())
        .encoding(WebhookEncoding::JsonEnvelope)
        .param("mobile", ParamSource::Mobile)
        .param("subscription", ParamSource::SubscriptionId)
        .param("occurred_at", ParamSource::OccurredAt)
        .sign_with("whsec_dGhpcyBpcyBhbm90aGVyIGtleSBvZiAyNCBieXRlcw==")
        .build()
        .unwrap();
    let wrong_secret = genuine(
        &Flow {
            webhook: other,
            ..stop.clone()
        },
        &cy(),
        &sms_stop(),
    );
    assert_eq!(wrong_secret.headers()["webhook-id"], id.as_str());
    // The genuine headers over another body.
    let mut tampered = real.clone();
    *tampered.body_mut() = String::from_utf8(real.body().clone())
        .unwrap()
        .replace("200001", "200002")
        .into_bytes();

    let answers: Vec<_> = [no_signature, wrong_secret, tampered]
        .iter()
        .map(|r| system.handle(r))
        .collect();
    let no_match =
        "no signature matches: the body, id or timestamp was changed, or the secret differs";
    assert_eq!(
        answers,
        [
            answer(401, "the `webhook-signature` header is missing"),
            answer(401, no_match),
            answer(401, no_match),
        ]
    );
    assert_eq!(system.stored(), BTreeSet::new());

    // The genuine delivery is stored; its re-delivery (signed anew, same id) is a duplicate.
    assert_eq!(
        system.handle(&real),
        answer(
            204,
            &format!("stored: SMS - Unsubscribe from subscription 200001 for {CY_MASKED}")
        )
    );
    assert_eq!(
        system.handle(&genuine(&stop, &cy(), &sms_stop())),
        answer(200, &format!("duplicate {id}: already stored"))
    );
    assert_eq!(
        system.stored(),
        BTreeSet::from([Change::Subscription(
            "+46701234567".into(),
            Channel::Sms,
            SubscriptionId::new("200001").unwrap()
        )])
    );
    assert_eq!(
        system.summary(),
        Summary {
            stored: 1,
            already_stored: 1,
            conflicts: 0,
            unauthorized: 3,
            bad_requests: 0,
        }
    );
}

#[test]
fn a_signed_query_flow_is_not_de_duplicated_by_its_id_because_the_url_is_not_signed() {
    let mut signed_query = flow("crm-unsubscribes");
    signed_query.webhook = WebhookNode::builder("https://crm.example.com/optout")
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .sign_with("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .build()
        .unwrap();
    let system = System::new(std::slice::from_ref(&signed_query));
    let real = genuine(
        &signed_query,
        &ada(),
        &unsubscribe("evt-1001", &ada(), "123456"),
    );
    // The genuine headers (id, timestamp, signature over the empty body) on another query:
    // it verifies, since no signature covers the URL.
    let mut moved = http::Request::post(
        "https://crm.example.com/optout?email=someone%40example.net&subscription=123457",
    )
    .body(Vec::new())
    .unwrap();
    *moved.headers_mut() = real.headers().clone();
    assert_eq!(
        system.handle(&moved),
        answer(
            204,
            "stored: Email - Unsubscribe from subscription 123457 for s***@e***.net"
        )
    );
    let id = webhook_id("crm-unsubscribes", "evt-1001");
    assert_eq!(
        system.handle(&real),
        answer(
            204,
            &format!(
                "stored: Email - Unsubscribe from subscription 123456 for a***@e***.com (conflict: {id} came before with other contents; flagged for review)"
            )
        )
    );
    assert_eq!(
        system.stored(),
        BTreeSet::from([
            email("ada+news@example.com", "123456"),
            email("someone@example.net", "123457")
        ])
    );
}

#[test]
fn conflict_bookkeeping_stays_within_its_bounds_and_never_costs_an_opt_out() {
    assert_eq!(
        ClaimLimits::default(),
        ClaimLimits {
            ids: 100_000,
            versions: 4
        }
    );
    let system = System::with_claim_limits(
        &flows(),
        ClaimLimits {
            ids: 1_000,
            versions: 4,
        },
    );
    let crm = flow("crm-unsubscribes");
    let (id_1, id_2) = (
        webhook_id("crm-unsubscribes", "evt-1001"),
        webhook_id("crm-unsubscribes", "evt-1002"),
    );
    let claim = |id: &str, who: &str| {
        unsigned(
            &format!(
                "https://crm.example.com/optout?email={who}%40example.net&subscription=123457"
            ),
            id,
            b"",
        )
    };
    // A forger claims evt-1002's id first...
    assert_eq!(system.handle(&claim(&id_2, "someone")).0, 204);
    // ...then floods evt-1001's id with 20,000 different contents: all stored (nothing tells
    // them apart from genuine ones), a few versions kept, each later one counted.
    for i in 0..20_000 {
        assert_eq!(system.handle(&claim(&id_1, &format!("u{i}"))).0, 204);
    }
    assert_eq!(
        system.claims(),
        Claims {
            ids: 2,
            fingerprints: 1 + 4
        }
    );
    // The genuine delivery of evt-1001 is stored and flagged.
    let conflict =
        |id: &str| format!(" (conflict: {id} came before with other contents; flagged for review)");
    assert_eq!(
        system.handle(&genuine(
            &crm,
            &ada(),
            &unsubscribe("evt-1001", &ada(), "123456")
        )),
        answer(
            204,
            &format!(
                "stored: Email - Unsubscribe from subscription 123456 for a***@e***.com{}",
                conflict(&id_1)
            )
        )
    );
    assert_eq!(system.conflicts(), BTreeMap::from([(id_1.clone(), 20_001)]));

    // 20,000 distinct ids: only the latest 1,000 are tracked, the oldest evicted first.
    for i in 0..20_000 {
        let status = system.handle(&claim(&format!("msg_{i}"), "kim")).0;
        assert_eq!(status, if i == 0 { 204 } else { 200 });
    }
    assert_eq!(
        system.claims(),
        Claims {
            ids: 1_000,
            fingerprints: 1_000
        }
    );
    assert_eq!(system.conflicts(), BTreeMap::new());
    // evt-1002's forged claim was evicted: its genuine delivery is stored all the same, only no
    // longer flagged.
    assert_eq!(
        system.handle(&genuine(
            &crm,
            &ada(),
            &unsubscribe("evt-1002", &ada(), "123457")
        )),
        answer(
            204,
            "stored: Email - Unsubscribe from subscription 123457 for a***@e***.com"
        )
    );
    // An id still tracked is still flagged.
    assert_eq!(
        system.handle(&claim("msg_19999", "lee")),
        answer(
            204,
            &format!(
                "stored: Email - Unsubscribe from subscription 123457 for l***@e***.net{}",
                conflict("msg_19999")
            )
        )
    );
    assert_eq!(
        system.claims(),
        Claims {
            ids: 1_000,
            fingerprints: 1_001
        }
    );
    let stored = system.stored();
    assert!(stored.contains(&email("ada+news@example.com", "123456")));
    assert!(stored.contains(&email("ada+news@example.com", "123457")));
    assert_eq!(stored.len(), 1 + 20_000 + 1 + 1 + 1 + 1);
    assert_eq!(
        system.summary(),
        Summary {
            stored: 1 + 20_000 + 1 + 1 + 1 + 1,
            already_stored: 19_999,
            conflicts: 19_999 + 1 + 1,
            unauthorized: 0,
            bad_requests: 0,
        }
    );
}

#[test]
fn a_signed_request_replayed_to_another_path_does_not_suppress_that_paths_own() {
    let stop = flow("sms-gateway-stop");
    // A second endpoint under the same secret that reads the same body otherwise (its
    // `mobile` parameter is a Profile id).
    let by_profile = Flow {
        id: FlowId::new("sms-gateway-stop-by-profile").unwrap(),
        webhook: WebhookNode::builder("https://sms-gateway.example.com/webhooks/stop-by-profile")
            .encoding(WebhookEncoding::JsonEnvelope)
            .param("mobile", ParamSource::ProfileId)
            .param("subscription", ParamSource::SubscriptionId)
            .sign_with("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .build()
            .unwrap(),
        ..stop.clone()
    };
    let system = System::new(&[stop.clone(), by_profile]);
    let real = genuine(&stop, &cy(), &sms_stop());
    let id = webhook_id("sms-gateway-stop", "evt-1004");
    // Someone who saw the genuine request replays it to the other path first: it verifies there
    // (the signature does not cover the path) and is stored as that endpoint reads it.
    let mut replayed = real.clone();
    *replayed.uri_mut() = "https://sms-gateway.example.com/webhooks/stop-by-profile"
        .parse()
        .unwrap();
    assert_eq!(
        system.handle(&replayed),
        answer(
            204,
            "stored: SMS - Unsubscribe from subscription 200001 for profile +46701234567"
        )
    );
    // The genuine request on its own path is still applied: its id was verified on another.
    assert_eq!(
        system.handle(&real),
        answer(
            204,
            &format!("stored: SMS - Unsubscribe from subscription 200001 for {CY_MASKED}")
        )
    );
    // A re-delivery on the same path is a duplicate.
    assert_eq!(
        system.handle(&genuine(&stop, &cy(), &sms_stop())),
        answer(200, &format!("duplicate {id}: already stored"))
    );
    let sms = |who: &str| {
        Change::Subscription(
            who.to_owned(),
            Channel::Sms,
            SubscriptionId::new("200001").unwrap(),
        )
    };
    assert_eq!(
        system.stored(),
        BTreeSet::from([sms("+46701234567"), sms("profile:+46701234567")])
    );
}

// ---------------------------------------------------------------------------------------------
// Serving

/// Starts the example's server on 127.0.0.1 with `limits`.
async fn start(limits: Limits) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let system = Arc::new(System::new(&flows()));
    (addr, tokio::spawn(serve(listener, system, limits)))
}

const REQUEST: &str = "POST /optout?email=kim%40example.com&subscription=123456 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n";
const STORED: &str =
    "HTTP/1.1 204 No Content\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n";
const ALREADY: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 78\r\n\r\nalready stored: Email - Unsubscribe from subscription 123456 for k***@e***.com";
const TOO_SLOW: &str = "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 34\r\nconnection: close\r\n\r\nthe request did not arrive in time";

/// Reads one answer (head, then `content-length` bytes).
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "{bytes:?}");
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes.clone()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8(body).unwrap()
}

/// Reads until the server closes; returns what came and when it closed.
async fn read_to_close(stream: &mut TcpStream) -> (String, Instant) {
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes))
        .await
        .expect("closed in time")
        .unwrap();
    (String::from_utf8(bytes).unwrap(), Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_trickling_requests_are_cut_off_while_other_clients_are_served() {
    let timeout = Duration::from_secs(2);
    let (addr, _server) = start(Limits {
        request_timeout: timeout,
        ..Limits::default()
    })
    .await;
    let started = Instant::now();
    // Half a head, then nothing.
    let mut half_head = TcpStream::connect(addr).await.unwrap();
    half_head
        .write_all(b"POST /optout?email=kim%40example.com HTTP/1.1\r\nhost: 127")
        .await
        .unwrap();
    // A whole head announcing 100 bytes of body, and 10 of them.
    let mut half_body = TcpStream::connect(addr).await.unwrap();
    half_body
        .write_all(b"POST /optout/section HTTP/1.1\r\ncontent-length: 100\r\n\r\nemail=kim")
        .await
        .unwrap();
    // A head sent one byte every 100 ms: never idle, never done.
    let trickle = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = stream.split();
        let writing = async {
            for byte in b"POST /optout?email=".iter().cycle() {
                if write.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let mut bytes = Vec::new();
        let reading = async {
            let _ = read.read_to_end(&mut bytes).await;
            Instant::now()
        };
        let closed = tokio::select! {
            closed = reading => closed,
            () = writing => Instant::now(),
        };
        (String::from_utf8(bytes).unwrap(), closed)
    });

    // Meanwhile another client is served, twice on one connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut client).await, STORED);
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut client).await, ALREADY);
    let served = Instant::now();
    assert!(served < started + timeout, "served while the others stall");

    // The stalled ones are answered 408 and closed once their time is up, not before.
    for stalled in [&mut half_head, &mut half_body] {
        let (bytes, closed) = read_to_close(stalled).await;
        assert_eq!(bytes, TOO_SLOW);
        assert!(closed >= started + timeout, "{:?}", closed - started);
    }
    let (bytes, closed) = trickle.await.unwrap();
    assert_eq!(bytes, TOO_SLOW);
    assert!(closed >= started + timeout, "{:?}", closed - started);
    assert!(
        closed < started + timeout * 5,
        "cut off though it kept sending: {:?}",
        closed - started
    );

    // The server is still serving.
    let mut late = TcpStream::connect(addr).await.unwrap();
    late.write_all(REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut late).await, ALREADY);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_quietly() {
    let (addr, _server) = start(Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut client).await, STORED);
    let (bytes, _) = read_to_close(&mut client).await;
    assert_eq!(bytes, "");
}

#[tokio::test]
async fn oversized_and_chunked_requests_are_refused_before_their_body_is_read() {
    let (addr, _server) = start(Limits::default()).await;
    let cases = [
        (
            "POST /optout/section HTTP/1.1\r\ncontent-length: 65537\r\n\r\n".to_owned(),
            "HTTP/1.1 413 Content Too Large\r\ncontent-type: text/plain\r\ncontent-length: 14\r\nconnection: close\r\n\r\nbody too large",
        ),
        (
            "POST /optout/section HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n".to_owned(),
            "HTTP/1.1 411 Length Required\r\ncontent-type: text/plain\r\ncontent-length: 55\r\nconnection: close\r\n\r\ntransfer-encoding is not supported: send content-length",
        ),
        (
            // One byte more than the limit, and no end of head: the server has read every
            // byte when it refuses (unread bytes would make its close a reset).
            format!(
                "POST /optout HTTP/1.1\r\nx-padding: {}",
                "a".repeat(16 * 1024 + 1 - 34)
            ),
            "HTTP/1.1 413 Content Too Large\r\ncontent-type: text/plain\r\ncontent-length: 22\r\nconnection: close\r\n\r\nrequest head too large",
        ),
    ];
    for (request, expected) in cases {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(request.as_bytes()).await.unwrap();
        let (bytes, _) = read_to_close(&mut client).await;
        assert_eq!(bytes, expected);
    }
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_for_room() {
    let timeout = Duration::from_millis(800);
    let (addr, _server) = start(Limits {
        request_timeout: timeout,
        max_connections: 1,
        ..Limits::default()
    })
    .await;
    let started = Instant::now();
    // The one place is taken by a client that sends nothing...
    let mut idle = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so the next is served only once the server has closed it.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut client).await, STORED);
    assert!(Instant::now() >= started + timeout);
    let (bytes, _) = read_to_close(&mut idle).await;
    assert_eq!(bytes, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_clients_cannot_hold_every_connection_past_the_lifetime_bound() {
    let lifetime = Duration::from_secs(1);
    let (addr, _server) = start(Limits {
        max_connections: 2,
        connection_lifetime: lifetime,
        ..Limits::default()
    })
    .await;
    let started = Instant::now();
    // Two clients take both places and send a request every 50 ms, never idle for long.
    let squat = || async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut answers = 0;
        loop {
            stream.write_all(REQUEST.as_bytes()).await.unwrap();
            let answer = read_answer(&mut stream).await;
            answers += 1;
            if answer.contains("\r\nconnection: close\r\n") {
                let (rest, _) = read_to_close(&mut stream).await;
                assert_eq!(rest, "");
                return (answers, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let squatters = [tokio::spawn(squat()), tokio::spawn(squat())];
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third client is served once the first squatter's lifetime is up.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    let served = tokio::time::timeout(lifetime * 3, read_answer(&mut client))
        .await
        .expect("served within the lifetime bound");
    assert_eq!(served, ALREADY);
    let elapsed = started.elapsed();
    assert!(elapsed >= lifetime, "{elapsed:?}");
    assert!(
        elapsed < lifetime + Duration::from_millis(700),
        "{elapsed:?}"
    );
    for squatter in squatters {
        let (answers, closed) = squatter.await.unwrap();
        assert!(answers > 5, "{answers}");
        assert!(closed >= started + lifetime && closed < started + lifetime * 2);
    }
}

#[tokio::test]
async fn a_connection_serves_a_bounded_number_of_requests() {
    let (addr, _server) = start(Limits {
        max_requests_per_connection: 3,
        ..Limits::default()
    })
    .await;
    assert_eq!(Limits::default().max_requests_per_connection, 100);
    assert_eq!(
        Limits::default().connection_lifetime,
        Duration::from_secs(60)
    );
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut client).await, STORED);
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut client).await, ALREADY);
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    let (bytes, _) = read_to_close(&mut client).await;
    assert_eq!(
        bytes,
        ALREADY.replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n")
    );
}

#[tokio::test]
async fn a_content_length_of_anything_but_ascii_digits_is_refused() {
    let (addr, _server) = start(Limits::default()).await;
    let bad = "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 18\r\nconnection: close\r\n\r\nbad content-length";
    for value in ["+0", "", "-0", "0x0", "1_0", "0\u{a0}", "\u{2003}0", "٠"] {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(
                format!("POST /optout/section HTTP/1.1\r\ncontent-length: {value}\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let (bytes, _) = read_to_close(&mut client).await;
        assert_eq!(bytes, bad, "content-length: {value:?}");
    }
    // More digits than a length can hold: too large, refused before any body is read.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(
            b"POST /optout/section HTTP/1.1\r\ncontent-length: 99999999999999999999999\r\n\r\n",
        )
        .await
        .unwrap();
    let (bytes, _) = read_to_close(&mut client).await;
    assert_eq!(
        bytes,
        "HTTP/1.1 413 Content Too Large\r\ncontent-type: text/plain\r\ncontent-length: 14\r\nconnection: close\r\n\r\nbody too large"
    );
    // Digits, with optional whitespace (spaces, tabs) around them, are fine; a leading zero too.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"POST /optout?email=kim%40example.com&subscription=123456 HTTP/1.1\r\ncontent-length: \t00 \r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut client).await, STORED);
}

// ---------------------------------------------------------------------------------------------
// accept() failing: the server runs in a child process (this test binary again) whose
// descriptor limit is lowered with `ulimit -n`, so that it runs out while the parent keeps
// connecting.

#[cfg(unix)]
const CHILD: &str = "OPTOUT_RELAY_RECEIVER_TEST_CHILD";

/// The child's half of `accept_errors_are_logged_and_the_server_keeps_serving`.
#[cfg(unix)]
#[test]
#[ignore = "the server half of accept_errors_are_logged_and_the_server_keeps_serving"]
fn serve_with_few_descriptors() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        let system = Arc::new(System::new(&flows()));
        let limits = Limits {
            request_timeout: Duration::from_secs(1),
            ..Limits::default()
        };
        // Killed by the parent; gone after a minute whatever happens.
        let _ =
            tokio::time::timeout(Duration::from_secs(60), serve(listener, system, limits)).await;
    });
}

/// Kills the child (by its own handle) when the test ends, however it ends.
#[cfg(unix)]
struct Reaper(std::process::Child);

#[cfg(unix)]
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
#[test]
fn accept_errors_are_logged_and_the_server_keeps_serving() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let exe = std::env::current_exe().unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 32 && exec "$0" "$@""#)
        .arg(&exe)
        .args([
            "serve_with_few_descriptors",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaper(child);
    let stdout = child.0.stdout.take().unwrap();
    let (lines, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let next_line = |what: &str| -> String {
        loop {
            let line = receive
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line {what} from the child"));
            if line.contains(what) {
                return line;
            }
        }
    };
    // The harness may print "test serve_with_few_descriptors ... " on the same line.
    let line = next_line("listening on ");
    let addr: SocketAddr = line[line.find("listening on ").unwrap() + 13..]
        .parse()
        .unwrap();

    // More idle connections than the child has descriptors: the kernel completes them, and the
    // child's accept() fails once it is out.
    let idle: Vec<std::net::TcpStream> = (0..64)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    assert_eq!(
        next_line("accept failed"),
        "  [receiver] accept failed (Too many open files (os error 24)); accepting again in 10 ms"
    );

    // It still serves: once the idle connections have timed out, a new client is answered.
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    client.write_all(REQUEST.as_bytes()).unwrap();
    let mut answer = vec![0u8; STORED.len()];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(String::from_utf8(answer).unwrap(), STORED);
    assert_eq!(
        next_line("POST /optout"),
        "  [receiver] POST /optout -> 204 stored: Email - Unsubscribe from subscription 123456 for k***@e***.com"
    );
    // Every idle connection was closed by the server, and the server is still running.
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(stream.read(&mut [0u8; 16]).unwrap(), 0);
    }
    assert!(child.0.try_wait().unwrap().is_none(), "the server exited");
}
