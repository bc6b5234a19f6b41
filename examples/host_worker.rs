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

use std::path::Path;

use optout_relay::{DestinationPolicy, FlowFile, OptOutEvent, Profile};
use optout_relay::{ReqwestClient, Router, SqliteStore, Worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The host program: the flows and catalog (JSON), a store file and the opt-outs in.
async fn relay(flows: &str, catalog: &str, db: &Path, input: &[Input]) -> Result<(), Error> {
    let catalog = serde_json::from_str(catalog)?;
    let router = Router::new(FlowFile::from_json(flows)?.flows, &catalog)?;
    let loopback = DestinationPolicy::default().allow_loopback(); // the demo's receiver
    let client = ReqwestClient::builder().destination_policy(loopback);
    let store = SqliteStore::open(db).await?;
    let (worker, mut outcomes) = Worker::builder(router, client.build()?, store).start();
    let mut entered = 0;
    for (event, profile) in input {
        entered += worker.submit(event, profile).await?.entered().count(); // stored on return
    }
    while entered > 0 {
        let outcome = outcomes.recv().await.ok_or("the worker stopped")?;
        if let Some(delivery) = outcome.delivery() {
            entered -= 1; // delivered or dead-lettered; refusals are reported on the stream too
            println!("{} {:?}", delivery.webhook_id(), delivery.state());
        }
    }
    let _ = worker.shutdown().await; // anything still pending stays in the store
    Ok(())
}

type Input = (OptOutEvent, Profile);
type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
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

// The demo's input; `{receiver}` in the flows becomes the receiver's address.
const FLOWS: &str = include_str!("host/flows.json");
const CATALOG: &str = include_str!("host/catalog.json");
const EVENT: &str = include_str!("host/event.json");
const PROFILE: &str = include_str!("host/profile.json");
