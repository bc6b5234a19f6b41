//! The destination policy (SSRF guard): address classes, IPv4 inside IPv6, explicit allowances,
//! and its use by the worker and the reqwest transport.

#[cfg(feature = "tokio")]
use optout_relay::delivery::DeadLetterReason;
#[cfg(feature = "tokio")]
use optout_relay::delivery::DeliveryState;
#[cfg(feature = "tokio")]
use optout_relay::testing::RecordingClient;
use optout_relay::transport::BlockReason;
use optout_relay::transport::Cidr;
#[cfg(feature = "tokio")]
use optout_relay::transport::TransportErrorKind;
use optout_relay::transport::{IPV4_SPECIAL_PURPOSE, IPV6_SPECIAL_PURPOSE};
#[cfg(all(feature = "reqwest", feature = "tokio"))]
use optout_relay::webhook::WebhookId;
use optout_relay::*;

fn ip(text: &str) -> std::net::IpAddr {
    text.parse().unwrap()
}

#[test]
fn non_global_addresses_are_refused_by_default() {
    let strict = DestinationPolicy::default();
    let cases = [
        ("127.0.0.1", BlockReason::Loopback),
        ("127.255.0.9", BlockReason::Loopback),
        ("::1", BlockReason::Loopback),
        ("10.1.2.3", BlockReason::Private),
        ("172.16.0.1", BlockReason::Private),
        ("172.31.255.255", BlockReason::Private),
        ("192.168.1.1", BlockReason::Private),
        ("169.254.169.254", BlockReason::LinkLocal),
        ("fe80::1", BlockReason::LinkLocal),
        ("100.64.0.1", BlockReason::SharedAddressSpace),
        ("100.127.255.254", BlockReason::SharedAddressSpace),
        ("fc00::1", BlockReason::UniqueLocal),
        ("fd12:3456::1", BlockReason::UniqueLocal),
        ("224.0.0.1", BlockReason::Multicast),
        ("ff02::1", BlockReason::Multicast),
        ("0.0.0.0", BlockReason::Unspecified),
        ("::", BlockReason::Unspecified),
        ("255.255.255.255", BlockReason::Reserved),
        ("192.0.2.1", BlockReason::Documentation),
        ("198.18.0.1", BlockReason::Benchmarking),
        ("2001:db8::1", BlockReason::Documentation),
        // IPv4-mapped is never globally reachable; its reason is the IPv4 address's when that
        // one is refused too.
        ("::ffff:169.254.169.254", BlockReason::LinkLocal),
        ("::ffff:127.0.0.1", BlockReason::Loopback),
        ("::ffff:8.8.8.8", BlockReason::Translation),
        // NAT64 and 6to4 are judged by the IPv4 address inside.
        ("64:ff9b::a9fe:a9fe", BlockReason::LinkLocal),
        ("2002:c0a8:0101::1", BlockReason::Private),
        // Ranges the first version missed.
        ("::ffff:0:7f00:1", BlockReason::Translation),
        ("64:ff9b:1::a9fe:a9fe", BlockReason::Translation),
        ("fec0::1", BlockReason::SiteLocal),
        (
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            BlockReason::Translation,
        ),
        ("::10.0.0.1", BlockReason::Reserved),
        ("::8.8.8.8", BlockReason::Reserved),
        ("5f00::1", BlockReason::Reserved),
        ("3fff::1", BlockReason::Documentation),
        ("100::1", BlockReason::Reserved),
        ("1fff:ffff::1", BlockReason::Reserved),
        ("4000::1", BlockReason::Reserved),
    ];
    for (address, reason) in cases {
        assert_eq!(strict.check_ip(ip(address)), Err(reason), "{address}");
    }
    for address in [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.0.1.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700::1111",
        "2001:200::1",
        "2001:db7::1",
        "2001:db9::1",
        "3fff:1000::1",
        "3ffe::1",
        "64:ff9b::808:808",
        "2002:0808:0808::1",
    ] {
        assert_eq!(strict.check_ip(ip(address)), Ok(()), "{address}");
    }
    assert_eq!(
        BlockReason::LinkLocal.to_string(),
        "a link-local address (such as a cloud metadata service)"
    );
}

/// The first and last address of every entry of the IANA special-purpose registries (and of the
/// multicast, site-local and IPv4-translated ranges the policy adds), with the decision each
/// must get: the most specific entry decides.
#[test]
fn every_special_purpose_entry_is_decided_as_the_registry_says() {
    use BlockReason as R;
    let strict = DestinationPolicy::default();
    let cases: &[(&str, Result<(), BlockReason>)] = &[
        ("0.0.0.0", Err(R::Unspecified)),
        ("0.255.255.255", Err(R::Unspecified)),
        ("10.0.0.0", Err(R::Private)),
        ("10.255.255.255", Err(R::Private)),
        ("100.64.0.0", Err(R::SharedAddressSpace)),
        ("100.127.255.255", Err(R::SharedAddressSpace)),
        ("127.0.0.0", Err(R::Loopback)),
        ("127.255.255.255", Err(R::Loopback)),
        ("169.254.0.0", Err(R::LinkLocal)),
        ("169.254.255.255", Err(R::LinkLocal)),
        ("172.16.0.0", Err(R::Private)),
        ("172.31.255.255", Err(R::Private)),
        ("192.0.0.0", Err(R::Translation)),
        ("192.0.0.255", Err(R::Reserved)),
        ("192.0.0.7", Err(R::Translation)),
        ("192.0.0.8", Err(R::Reserved)),
        ("192.0.0.9", Ok(())),
        ("192.0.0.10", Ok(())),
        ("192.0.0.170", Err(R::Translation)),
        ("192.0.0.171", Err(R::Translation)),
        ("192.0.2.0", Err(R::Documentation)),
        ("192.0.2.255", Err(R::Documentation)),
        ("192.31.196.0", Ok(())),
        ("192.31.196.255", Ok(())),
        ("192.52.193.0", Ok(())),
        ("192.52.193.255", Ok(())),
        ("192.88.99.0", Err(R::Reserved)),
        ("192.88.99.255", Err(R::Reserved)),
        ("192.88.99.2", Err(R::Translation)),
        ("192.168.0.0", Err(R::Private)),
        ("192.168.255.255", Err(R::Private)),
        ("192.175.48.0", Ok(())),
        ("192.175.48.255", Ok(())),
        ("198.18.0.0", Err(R::Benchmarking)),
        ("198.19.255.255", Err(R::Benchmarking)),
        ("198.51.100.0", Err(R::Documentation)),
        ("198.51.100.255", Err(R::Documentation)),
        ("203.0.113.0", Err(R::Documentation)),
        ("203.0.113.255", Err(R::Documentation)),
        ("224.0.0.0", Err(R::Multicast)),
        ("239.255.255.255", Err(R::Multicast)),
        ("240.0.0.0", Err(R::Reserved)),
        ("255.255.255.255", Err(R::Reserved)),
        ("::1", Err(R::Loopback)),
        ("::", Err(R::Unspecified)),
        ("::ffff:0:0", Err(R::Unspecified)),
        ("::ffff:ffff:ffff", Err(R::Reserved)),
        ("::ffff:0:0:0", Err(R::Translation)),
        ("::ffff:0:ffff:ffff", Err(R::Translation)),
        ("64:ff9b::", Err(R::Unspecified)),
        ("64:ff9b::ffff:ffff", Err(R::Reserved)),
        ("64:ff9b:1::", Err(R::Translation)),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Err(R::Translation)),
        ("100::", Err(R::Reserved)),
        ("100::ffff:ffff:ffff:ffff", Err(R::Reserved)),
        ("100:0:0:1::", Err(R::Reserved)),
        ("100::1:ffff:ffff:ffff:ffff", Err(R::Reserved)),
        ("2001::", Err(R::Translation)),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Err(R::Reserved)),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Err(R::Translation)),
        ("2001:1::1", Ok(())),
        ("2001:1::2", Ok(())),
        ("2001:1::3", Ok(())),
        ("2001:2::", Err(R::Benchmarking)),
        ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Err(R::Benchmarking)),
        ("2001:3::", Ok(())),
        ("2001:3:ffff:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ("2001:4:112::", Ok(())),
        ("2001:4:112:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ("2001:10::", Err(R::Reserved)),
        ("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", Err(R::Reserved)),
        ("2001:20::", Ok(())),
        ("2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ("2001:30::", Ok(())),
        ("2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ("2001:db8::", Err(R::Documentation)),
        (
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            Err(R::Documentation),
        ),
        ("2002::", Err(R::Unspecified)),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(R::Reserved)),
        ("2620:4f:8000::", Ok(())),
        ("2620:4f:8000:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ("3fff::", Err(R::Documentation)),
        (
            "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
            Err(R::Documentation),
        ),
        ("5f00::", Err(R::Reserved)),
        ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(R::Reserved)),
        ("fc00::", Err(R::UniqueLocal)),
        (
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            Err(R::UniqueLocal),
        ),
        ("fe80::", Err(R::LinkLocal)),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(R::LinkLocal)),
        ("fec0::", Err(R::SiteLocal)),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(R::SiteLocal)),
        ("ff00::", Err(R::Multicast)),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Err(R::Multicast)),
    ];
    for (address, expected) in cases {
        assert_eq!(strict.check_ip(ip(address)), *expected, "{address}");
    }
    // Every table entry reads as a range, and each one has its two ends above.
    assert_eq!(IPV4_SPECIAL_PURPOSE.len(), 27);
    assert_eq!(IPV6_SPECIAL_PURPOSE.len(), 28);
    for entry in IPV4_SPECIAL_PURPOSE.iter().chain(IPV6_SPECIAL_PURPOSE) {
        let range = Cidr::parse(entry.range).unwrap_or_else(|e| panic!("{e}"));
        let first = entry.range.split('/').next().unwrap();
        assert!(range.contains(ip(first)), "{}", entry.range);
        assert!(
            cases.iter().any(|(a, _)| ip(a) == ip(first)),
            "{} has no case",
            entry.range
        );
    }
}

/// Hosts are read as the URL standard reads them: every IPv4 number form is an address.
#[test]
fn hosts_are_parsed_as_the_url_standard_does() {
    let strict = DestinationPolicy::default();
    for host in [
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "0",
        "127.0.0.1.",
        "127.000.000.001",
        "0x7f.1",
        "%31%32%37.0.0.1",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:127.0.0.1]",
    ] {
        let expected = if host == "0" {
            BlockReason::Unspecified
        } else {
            BlockReason::Loopback
        };
        assert_eq!(strict.check_host(host), Err(expected), "{host}");
        // A request URI with that host (where `http` accepts it) is judged the same.
        if let Ok(uri) = format!("http://{host}:8080/optout").parse::<http::Uri>() {
            assert_eq!(strict.check_uri(&uri), Err(expected), "{host}");
        } else {
            assert!(host.starts_with('%'), "{host}");
        }
    }
    assert_eq!(
        strict.check_host("0xa9.0xfe.0xa9.0xfe"),
        Err(BlockReason::LinkLocal)
    );
    assert_eq!(strict.check_host("2852039166"), Err(BlockReason::LinkLocal));
    // What the standard cannot read as a host is refused, not passed on as a name.
    for host in [
        "1.2.3.256",
        "0x100000000",
        "",
        "[::1",
        "a b.example",
        "exa%00mple.com",
    ] {
        assert_eq!(
            strict.check_host(host),
            Err(BlockReason::InvalidHost),
            "{host:?}"
        );
    }
    assert_eq!(
        strict.check_uri(&http::Uri::from_static("/relative/only")),
        Err(BlockReason::InvalidHost)
    );
    // A name is judged when it resolves; an allowed literal passes.
    assert_eq!(strict.check_host("crm.example.com"), Ok(()));
    assert_eq!(strict.check_host("93.184.216.34"), Ok(()));
    let dev = DestinationPolicy::default().allow_loopback();
    assert_eq!(dev.check_host("127.1"), Ok(()));
    assert_eq!(dev.check_host("0x7f000001"), Ok(()));
    assert_eq!(dev.check_host("10.1"), Err(BlockReason::Private));
}

#[test]
fn explicit_allowances() {
    let dev = DestinationPolicy::default().allow_loopback();
    assert_eq!(dev.check_ip(ip("127.0.0.1")), Ok(()));
    // A translator's loopback is not this machine's: allowing loopback does not allow it.
    assert_eq!(
        dev.check_ip(ip("64:ff9b::7f00:1")),
        Err(BlockReason::Translation)
    );
    assert_eq!(
        dev.check_ip(ip("2002:7f00:1::")),
        Err(BlockReason::Translation)
    );
    assert_eq!(dev.check_ip(ip("::1")), Ok(()));
    assert_eq!(dev.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
    assert_eq!(dev.check_ip(ip("10.0.0.1")), Err(BlockReason::Private));
    let office = DestinationPolicy::default().allow(Cidr::parse("10.1.0.0/16").unwrap());
    assert_eq!(office.check_ip(ip("10.1.200.3")), Ok(()));
    assert_eq!(office.check_ip(ip("10.2.0.1")), Err(BlockReason::Private));
    let one = DestinationPolicy::default().allow(Cidr::parse("fd00::5").unwrap());
    assert_eq!(one.check_ip(ip("fd00::5")), Ok(()));
    assert_eq!(one.check_ip(ip("fd00::6")), Err(BlockReason::UniqueLocal));
    assert_eq!(
        Cidr::parse("0.0.0.0/0").map(|c| c.contains(ip("8.8.8.8"))),
        Ok(true)
    );
    assert_eq!(
        Cidr::parse("10.0.0.0/33").unwrap_err().to_string(),
        "invalid CIDR range `10.0.0.0/33`: the prefix length is out of range"
    );
    assert_eq!(
        Cidr::parse("ten/8").unwrap_err().reason,
        "the address is not an IP address"
    );
    // The policy is configuration: it round-trips through JSON.
    let text = serde_json::to_string(&office).unwrap();
    assert_eq!(text, r#"{"loopback":false,"allow":["10.1.0.0/16"]}"#);
    assert_eq!(
        serde_json::from_str::<DestinationPolicy>(&text).unwrap(),
        office
    );
}

#[test]
fn host_names() {
    let strict = DestinationPolicy::default();
    assert_eq!(strict.check_host("localhost"), Err(BlockReason::Localhost));
    assert_eq!(strict.check_host("LOCALHOST."), Err(BlockReason::Localhost));
    assert_eq!(
        strict.check_host("api.localhost"),
        Err(BlockReason::Localhost)
    );
    assert_eq!(strict.check_host("[::1]"), Err(BlockReason::Loopback));
    assert_eq!(
        strict.check_host("169.254.169.254"),
        Err(BlockReason::LinkLocal)
    );
    // Other names are judged by what they resolve to, when the request is sent.
    assert_eq!(strict.check_host("crm.example.com"), Ok(()));
    assert_eq!(
        DestinationPolicy::default()
            .allow_loopback()
            .check_host("localhost"),
        Ok(())
    );
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_worker_dead_letters_a_refused_destination_without_sending() {
    use std::sync::Arc;
    let flow: Flow = serde_json::from_value(serde_json::json!({
        "id": "metadata", "section": "sec-1", "listen": {"kinds": ["email_abuse"]},
        "webhook": {"url": "http://169.254.169.254/latest/meta-data/", "params": [
            {"name": "email", "source": "email"}, {"name": "section", "source": "section_id"}]}
    }))
    .unwrap();
    let router = Arc::new(Router::new([flow], &Catalog::default()).unwrap());
    let client = RecordingClient::new();
    let store = Arc::new(VolatileStore::new());
    let (worker, mut outcomes) =
        Worker::builder(router, Arc::new(client.clone()), store.clone()).start();
    let profile =
        Profile::new(ProfileId::new("p").unwrap()).with_email(Email::new("a@example.com").unwrap());
    let event = OptOutEvent::email_abuse(
        EventId::new("e").unwrap(),
        ProfileId::new("p").unwrap(),
        SectionId::new("sec-1").unwrap(),
        Timestamp::now(),
    );
    let _ = worker.submit(&event, &profile).await.unwrap();
    let Some(Outcome::DeadLettered(d)) = outcomes.recv().await else {
        panic!("not dead-lettered")
    };
    assert!(
        matches!(
            d.state(),
            DeliveryState::DeadLettered {
                reason: DeadLetterReason::NotRetryable {
                    kind: TransportErrorKind::Blocked
                },
                ..
            }
        ),
        "{:?}",
        d.state()
    );
    assert_eq!(d.attempts().len(), 1);
    assert!(client.requests().is_empty(), "nothing was sent");
    let _ = worker.shutdown().await;
    assert_eq!(store.counts().await.unwrap().dead_lettered, 1);
}

#[cfg(all(feature = "reqwest", feature = "tokio"))]
#[tokio::test]
async fn the_reqwest_transport_refuses_before_connecting() {
    use optout_relay::ReqwestClient;
    // A listener on loopback that must never see a connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let strict = ReqwestClient::new().unwrap();
    let mut urls = vec![
        format!("http://localhost:{port}/optout"),
        format!("http://[::ffff:127.0.0.1]:{port}/optout"),
    ];
    urls.extend(loopback_spellings(port));
    for url in urls {
        let request = http::Request::post(url.as_str()).body(Vec::new()).unwrap();
        let error = strict.send(request).await.unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Blocked, "{url}: {error}");
        assert!(!error.is_retryable());
    }
    assert!(listener.accept().is_err(), "no connection was made");
    // A resolve override to a refused address is refused when the client is built.
    let error = ReqwestClient::builder()
        .resolve("metadata.test", "169.254.169.254:80".parse().unwrap())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Blocked);
    assert_eq!(
        error.message(),
        "blocked by the destination policy: `metadata.test` is set to resolve to a link-local address (such as a cloud metadata service)"
    );
}

/// The loopback address 127.0.0.1 as the URL standard also reads it, on `port`.
#[cfg(all(feature = "reqwest", feature = "tokio"))]
fn loopback_spellings(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "0",
        "127.0.0.1.",
        "127.000.000.001",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/optout"))
    .collect()
}

/// Deliveries already in a store (written by another process, or deserialized) whose URI spells
/// a loopback address as the URL standard reads it: a default worker with the default reqwest
/// transport dead-letters every one as blocked, and the listener on 127.0.0.1 sees no connection.
#[cfg(all(feature = "reqwest", feature = "tokio"))]
#[tokio::test]
async fn stored_deliveries_to_loopback_spellings_are_dead_lettered_unsent() {
    use optout_relay::ReqwestClient;
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let flow: Flow = serde_json::from_value(serde_json::json!({
        "id": "crm", "section": "sec-1", "listen": {"kinds": ["email_abuse"]},
        "webhook": {"url": "https://crm.example.com/optout", "params": [
            {"name": "section", "source": "section_id"}]}
    }))
    .unwrap();
    let router = Arc::new(Router::new([flow], &Catalog::default()).unwrap());
    let urls = loopback_spellings(port);
    // The default reqwest transport, and a transport that vets nothing itself (the worker's own
    // check must refuse).
    let recording = RecordingClient::new();
    let clients: [Arc<dyn HttpClient>; 2] = [
        Arc::new(ReqwestClient::new().unwrap()),
        Arc::new(recording.clone()),
    ];
    for client in clients {
        let store = Arc::new(VolatileStore::new());
        admit_raw(&store, &urls).await;
        let (worker, mut outcomes) = Worker::builder(router.clone(), client, store.clone()).start();
        for _ in &urls {
            let Some(Outcome::DeadLettered(d)) = outcomes.recv().await else {
                panic!("not dead-lettered")
            };
            assert!(
                matches!(
                    d.state(),
                    DeliveryState::DeadLettered {
                        reason: DeadLetterReason::NotRetryable {
                            kind: TransportErrorKind::Blocked
                        },
                        ..
                    }
                ),
                "{:?}",
                d.state()
            );
        }
        let _ = worker.shutdown().await;
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.dead_lettered, counts.delivered), (8, 0));
    }
    assert!(recording.requests().is_empty());
    assert_eq!(
        listener.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "no connection was made"
    );
}

/// One owner: the worker vets with the client's own policy. A client that allows loopback gets
/// its loopback deliveries sent; the default client's are refused before it sees them.
#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_worker_uses_the_clients_destination_policy() {
    use std::sync::Arc;
    let flow: Flow = serde_json::from_value(serde_json::json!({
        "id": "local", "section": "sec-1", "listen": {"kinds": ["email_abuse"]},
        "webhook": {"url": "http://127.0.0.1:9/optout", "params": [
            {"name": "section", "source": "section_id"}]}
    }))
    .unwrap();
    let router = Arc::new(Router::new([flow], &Catalog::default()).unwrap());
    let profile = Profile::new(ProfileId::new("p").unwrap());
    let event = OptOutEvent::email_abuse(
        EventId::new("e").unwrap(),
        ProfileId::new("p").unwrap(),
        SectionId::new("sec-1").unwrap(),
        Timestamp::now(),
    );
    for (client, delivered) in [
        (RecordingClient::new(), false),
        (
            RecordingClient::new()
                .with_destination_policy(DestinationPolicy::default().allow_loopback()),
            true,
        ),
    ] {
        let store = Arc::new(VolatileStore::new());
        let (worker, mut outcomes) =
            Worker::builder(router.clone(), Arc::new(client.clone()), store).start();
        let submitted = worker.submit(&event, &profile).await.unwrap();
        assert_eq!(submitted.entered().count(), 1);
        let outcome = outcomes.recv().await.unwrap();
        assert_eq!(matches!(outcome, Outcome::Delivered(_)), delivered);
        assert_eq!(client.requests().len(), usize::from(delivered));
        let _ = worker.shutdown().await;
    }
}

/// Admits one delivery per URL, as another process (or a deserialized `Delivery`) would.
#[cfg(all(feature = "reqwest", feature = "tokio"))]
async fn admit_raw(store: &VolatileStore, urls: &[String]) {
    let now = Timestamp::now();
    for (i, url) in urls.iter().enumerate() {
        let (flow, event) = (
            FlowId::new("crm").unwrap(),
            EventId::new(format!("e{i}")).unwrap(),
        );
        let webhook_id = WebhookId::derive(&flow, &event);
        let request = http::Request::post(url.as_str())
            .header("webhook-id", webhook_id.as_str())
            .body(Vec::new())
            .unwrap();
        let delivery = Delivery::new(webhook_id, flow, event, request, now);
        let delivery: Delivery =
            serde_json::from_str(&serde_json::to_string(&delivery).unwrap()).unwrap();
        let plan = relay::Plan {
            event: EventId::new(format!("e{i}")).unwrap(),
            profile: ProfileId::new(format!("p{i}")).unwrap(),
            at: now,
            candidates: vec![relay::Candidate {
                flow: FlowId::new("crm").unwrap(),
                limit: EntryLimit::Unlimited,
                order: optout_relay::listen::DeliveryOrder::Any,
                delivery,
            }],
            not_built: Vec::new(),
        };
        let admitted = store.admit(plan).await.unwrap();
        assert_eq!(admitted.entered().count(), 1);
    }
}
