//! A host bringing its own transport: an [`HttpClient`] over `ureq` (a blocking client, run on
//! tokio's blocking pool), driving the same worker as the reqwest transport.
//!
//! ```sh
//! cargo run --example ureq_transport --features tokio
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use optout_relay::http::{Request, Response};
use optout_relay::transport::TransportErrorKind;
use optout_relay::*;

/// The host's transport: ureq, configured as every serious sender is (no redirects followed, a
/// 3xx or 5xx is a response for the retry policy to judge, a bounded attempt and body).
///
/// It reports its destination policy through [`HttpClient::destination_policy`], so the worker
/// refuses a forbidden literal or `localhost` before the request reaches ureq. ureq resolves
/// host names itself, with no hook in its stable API to vet the answers: a host that lets its
/// users write endpoints should prefer `ReqwestClient`, which vets every resolved address.
struct UreqClient {
    agent: ureq::Agent,
    policy: DestinationPolicy,
}

impl UreqClient {
    fn new(policy: DestinationPolicy) -> Self {
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            policy,
        }
    }
}

fn kind_of(error: &ureq::Error) -> TransportErrorKind {
    match error {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound => TransportErrorKind::Dns,
        ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Io(_) => TransportErrorKind::Body,
        _ => TransportErrorKind::Other,
    }
}

#[async_trait::async_trait]
impl HttpClient for UreqClient {
    fn destination_policy(&self) -> &DestinationPolicy {
        &self.policy
    }

    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        let agent = self.agent.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            let response = agent
                .run(request)
                .map_err(|e| TransportError::new(kind_of(&e), e.to_string()))?;
            let (parts, mut body) = response.into_parts();
            let bytes = body
                .with_config()
                .limit(64 * 1024)
                .read_to_vec()
                .map_err(|e| TransportError::new(TransportErrorKind::Body, e.to_string()))?;
            Ok(Response::from_parts(parts, bytes))
        });
        attempt.await.map_err(|e| {
            TransportError::new(
                TransportErrorKind::Other,
                format!("the blocking task failed: {e}"),
            )
        })?
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A receiver on 127.0.0.1 that prints each request line and answers 204.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = receive(stream);
        }
    });

    let file = FlowFile::from_json(include_str!("flows/email-unsubscribe.json"))?;
    let mut flows = Vec::new();
    for flow in file.flows {
        let url = format!("http://{addr}{}", flow.webhook.url().path()).parse()?;
        let webhook = flow.webhook.with_url(url)?;
        flows.push(Flow { webhook, ..flow });
    }
    let router = Arc::new(Router::new(flows, &Catalog::default())?);
    // In memory for the demo; SqliteStore (the default feature) keeps deliveries on disk.
    let store = Arc::new(VolatileStore::new());
    let (worker, mut outcomes) = Worker::builder(
        router,
        Arc::new(UreqClient::new(
            DestinationPolicy::default().allow_loopback(),
        )),
        store.clone(),
    )
    .start();

    let profile =
        Profile::new(ProfileId::new("p-ada")?).with_email(Email::new("ada+news@example.com")?);
    for (id, subscription) in [("evt-1", "123456"), ("evt-2", "123457")] {
        let event = OptOutEvent::email_unsubscribe(
            EventId::new(id)?,
            profile.id.clone(),
            SectionId::new("sec-1")?,
            SubscriptionId::new(subscription)?,
            Timestamp::now(),
        );
        let submitted = worker.submit(&event, &profile.clone()).await?;
        println!("{id}: entered {} flow(s)", submitted.flows.len());
    }
    for _ in 0..2 {
        let outcome = outcomes.recv().await.ok_or("the worker stopped")?;
        let delivery = outcome.delivery().ok_or("each event enters the one flow")?;
        let delivered = matches!(outcome, Outcome::Delivered(_));
        println!(
            "{} for {}: delivered = {delivered}",
            delivery.webhook_id(),
            delivery.event()
        );
    }
    let _stopped = worker.shutdown().await;
    println!(
        "pending in the store after shutdown: {}",
        store.counts().await?.pending
    );
    Ok(())
}

/// Reads one request, prints its request line with the query masked, answers 204.
fn receive(mut stream: std::net::TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut length = 0;
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
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request_line = line.trim().split('?').next().unwrap_or_default().to_owned();
    println!("receiver: {request_line}?[query masked]");
    stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
}
