//! The smallest durable host: the worker with the reqwest transport and the SQLite store. Each
//! opt-out is in the store once `submit` returns; the worker sends it and retries by the default
//! policy (up to 72 hours).
//!
//! ```sh
//! cargo run --example host_worker --features reqwest
//! ```
//!
//! `relay` is the host program; `main` only starts a receiver on 127.0.0.1 for it to send to,
//! and gives it a store file in a temporary directory.

use std::error::Error;
use std::path::Path;

use optout_relay::{Catalog, DestinationPolicy, FlowFile, OptOutEvent, Outcome, Profile};
use optout_relay::{ReqwestClient, Router, SqliteStore, Worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The host program: the flows, the catalog, a store file and the opt-outs in; requests out.
async fn relay(
    flows: &str,
    catalog: &str,
    store: &Path,
    opt_outs: &[(OptOutEvent, Profile)],
) -> Result<(), Box<dyn Error>> {
    let catalog: Catalog = serde_json::from_str(catalog)?;
    let router = Router::new(FlowFile::from_json(flows)?.flows, &catalog)?;
    let loopback = DestinationPolicy::default().allow_loopback(); // the demo's receiver
    let client = ReqwestClient::builder()
        .destination_policy(loopback)
        .build()?;
    let (worker, mut outcomes) =
        Worker::builder(router, client, SqliteStore::open(store).await?).start();
    for (event, profile) in opt_outs {
        worker.submit(event, profile).await?; // stored once this returns
    }
    for _ in opt_outs {
        if let Some(Outcome::Delivered(delivery)) = outcomes.recv().await {
            println!(
                "delivered {} for flow {}",
                delivery.webhook_id(),
                delivery.flow()
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let flows = FLOWS.replace("{receiver}", &listener.local_addr()?.to_string());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0; 16 * 1024];
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buffer[..read]);
                println!("receiver: {}", head.lines().next().unwrap_or(""));
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    let dir = std::env::temp_dir().join(format!("optout-relay-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let opt_outs = [(serde_json::from_str(EVENT)?, serde_json::from_str(PROFILE)?)];
    let result = relay(&flows, CATALOG, &dir.join("relay.db"), &opt_outs).await;
    std::fs::remove_dir_all(&dir)?;
    result
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
