//! The destination policy (SSRF guard): address classes, IPv4 inside IPv6, explicit allowances,
//! and its use by the worker and the reqwest transport.

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
        ("192.0.2.1", BlockReason::Reserved),
        ("198.18.0.1", BlockReason::Reserved),
        ("2001:db8::1", BlockReason::Reserved),
        // IPv4 inside IPv6 is judged by the IPv4 address.
        ("::ffff:169.254.169.254", BlockReason::LinkLocal),
        ("::ffff:127.0.0.1", BlockReason::Loopback),
        ("::10.0.0.1", BlockReason::Private),
        ("64:ff9b::a9fe:a9fe", BlockReason::LinkLocal),
        ("2002:c0a8:0101::1", BlockReason::Private),
    ];
    for (address, reason) in cases {
        assert_eq!(strict.check_ip(ip(address)), Err(reason), "{address}");
    }
    for address in [
        "93.184.216.34",
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "2002:0808:0808::1",
    ] {
        assert_eq!(strict.check_ip(ip(address)), Ok(()), "{address}");
    }
    assert_eq!(
        BlockReason::LinkLocal.to_string(),
        "a link-local address (such as a cloud metadata service)"
    );
}

#[test]
fn explicit_allowances() {
    let dev = DestinationPolicy::default().allow_loopback();
    assert_eq!(dev.check_ip(ip("127.0.0.1")), Ok(()));
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
    use optout_relay::transport::ReqwestClient;
    // A listener on loopback that must never see a connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let strict = ReqwestClient::new().unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/optout"),
        format!("http://localhost:{port}/optout"),
        format!("http://[::ffff:127.0.0.1]:{port}/optout"),
    ] {
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
