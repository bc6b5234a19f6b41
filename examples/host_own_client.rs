//! The smallest host that brings its own HTTP client: route one opt-out through the flows and
//! send each flow's exact request with `ureq`. No retries and no store here: for those, run the
//! worker (`examples/host_worker.rs`).
//!
//! ```sh
//! cargo run --example host_own_client
//! ```
//!
//! `relay` is the host program; `main` only starts a receiver on 127.0.0.1 for it to send to.

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use optout_relay::{Catalog, FlowFile, OptOutEvent, Profile, Router, Timestamp};

/// The host program: the flows, the catalog, one opt-out and its Profile in; requests out.
fn relay(flows: &str, catalog: &str, event: &str, profile: &str) -> Result<(), Box<dyn Error>> {
    let catalog: Catalog = serde_json::from_str(catalog)?;
    let router = Router::new(FlowFile::from_json(flows)?.flows, &catalog)?;
    let event: OptOutEvent = serde_json::from_str(event)?;
    let profile: Profile = serde_json::from_str(profile)?;
    for matched in router.matches(&event) {
        let built = matched.build_request(&profile, Timestamp::now())?;
        let response = ureq::run(built.into_request())?; // the host's own HTTP client
        println!("flow {}: answered {}", matched.flow.id, response.status());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let flows = FLOWS.replace("{receiver}", &listener.local_addr()?.to_string());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream);
        }
    });
    relay(&flows, CATALOG, EVENT, PROFILE)
}

const FLOWS: &str = r#"{"version": 1, "flows": [{
    "id": "crm-unsubscribes", "section": "sec-1",
    "listen": {"kinds": ["email_unsubscribe"]},
    "webhook": {"method": "POST", "url": "http://{receiver}/optout", "encoding": "query",
                "params": [{"name": "email", "source": "email"},
                           {"name": "subscription", "source": "subscription_id"}]}
}]}"#;
const CATALOG: &str =
    r#"[{"id": "sec-1", "folders": [{"id": "news", "subscriptions": [{"id": "123456"}]}]}]"#;
const EVENT: &str = r#"{"id": "evt-1", "profile": "p-1", "section": "sec-1",
    "kind": "email_unsubscribe", "subscription": "123456",
    "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"}"#;
const PROFILE: &str = r#"{"id": "p-1", "email": "ada@example.com"}"#;

/// The external system: prints the request line and answers `204 No Content`.
fn answer(mut stream: std::net::TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let (mut line, mut length) = (String::new(), 0);
    reader.read_line(&mut line)?;
    println!("receiver: {}", line.trim_end());
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    reader.take(length).read_to_end(&mut Vec::new())?;
    stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
}
