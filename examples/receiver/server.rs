//! The receiver's HTTP/1.1 serving on raw tokio: it keeps serving whatever its clients do.
//!
//! - An error from `accept()` (out of descriptors, `EMFILE`; out of memory) is logged (the error
//!   only: no address, nothing personal) and the loop pauses briefly, longer while the errors
//!   last (up to a second), then accepts again. A connection aborted before it was accepted is
//!   skipped at once.
//! - At most [`Limits::max_connections`] connections are served at once; more wait in the
//!   kernel's backlog until one ends.
//! - Each request must arrive whole (head and body) within [`Limits::request_timeout`] of the
//!   connection's start or of the previous answer: a client that sends half a request and
//!   stalls, or trickles it byte by byte, is answered `408` and closed; an idle keep-alive
//!   connection is closed. Each answer must be written within [`Limits::write_timeout`].
//! - A connection serves at most [`Limits::max_requests_per_connection`] requests, and none
//!   after [`Limits::connection_lifetime`] from its start: the first answer at or past either
//!   bound says `connection: close` and the connection is closed. No client keeps a place for
//!   good by sending a request now and then: a connection lasts at most its lifetime plus one
//!   request timeout and one write timeout.
//! - The head may hold [`Limits::max_head`] bytes and the body [`Limits::max_body`]
//!   (`content-length` only; `transfer-encoding` is refused with `411`): `413` otherwise, before
//!   the body is read. A `content-length` must be ASCII digits (no sign, not empty): `400`
//!   otherwise.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::system::System;

/// What one client may take of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client has to send one whole request.
    pub request_timeout: Duration,
    /// How long a client has to take one answer.
    pub write_timeout: Duration,
    /// The longest request head, in bytes.
    pub max_head: usize,
    /// The longest request body, in bytes.
    pub max_body: usize,
    /// The most connections served at once.
    pub max_connections: usize,
    /// How long after its start a connection is kept open for another request.
    pub connection_lifetime: Duration,
    /// The most requests served on one connection.
    pub max_requests_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_head: 16 * 1024,
            max_body: 64 * 1024,
            max_connections: 256,
            connection_lifetime: Duration::from_secs(60),
            max_requests_per_connection: 100,
        }
    }
}

/// The shortest and the longest pause after a failed `accept()`.
const ACCEPT_PAUSE: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// A log line of the receiver: what it did, never a personal value.
pub fn log(line: &str) {
    println!("  [receiver] {line}");
}

/// Serves `listener` until the task is dropped: never returns on its own.
pub async fn serve(listener: TcpListener, system: Arc<System>, limits: Limits) {
    let room = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut pause = ACCEPT_PAUSE.0;
    loop {
        // The semaphore is never closed; should it be, serving unbounded beats stopping.
        let permit = Arc::clone(&room).acquire_owned().await.ok();
        match listener.accept().await {
            Ok((stream, _peer)) => {
                pause = ACCEPT_PAUSE.0;
                tokio::spawn(connection(stream, Arc::clone(&system), limits, permit));
            }
            Err(error) => {
                use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
                if matches!(
                    error.kind(),
                    ConnectionAborted | ConnectionReset | Interrupted
                ) {
                    // That one connection is gone; the next may be fine.
                    continue;
                }
                log(&format!(
                    "accept failed ({error}); accepting again in {} ms",
                    pause.as_millis()
                ));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(ACCEPT_PAUSE.1);
            }
        }
    }
}

/// Serves one connection: requests one after another until the client closes, a request is
/// refused, the client is too slow, or the connection has served its share.
async fn connection(
    mut stream: TcpStream,
    system: Arc<System>,
    limits: Limits,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let end_of_life = Instant::now() + limits.connection_lifetime;
    let mut served = 0usize;
    let mut buffer = Vec::new();
    loop {
        let read = tokio::time::timeout(
            limits.request_timeout,
            read_request(&mut stream, &mut buffer, &limits),
        )
        .await;
        let (status, message, keep_open) = match read {
            Ok(Ok(Some(request))) => {
                let (status, message) = system.handle(&request);
                log(&format!(
                    "{} {} -> {status} {message}",
                    request.method(),
                    request.uri().path()
                ));
                // Past either bound, this answer is the last: the client learns it from
                // `connection: close` rather than from a close it might race a request with.
                served += 1;
                let more =
                    served < limits.max_requests_per_connection && Instant::now() < end_of_life;
                (status, message, more)
            }
            Ok(Ok(None)) => return,
            Ok(Err(Refused(status, message))) => {
                log(&format!("-> {status} {message}"));
                (status, message.to_owned(), false)
            }
            Err(_elapsed) if buffer.is_empty() => return, // idle: close quietly
            Err(_elapsed) => {
                let message = "the request did not arrive in time";
                log(&format!("-> 408 {message}"));
                (408, message.to_owned(), false)
            }
        };
        // A 204 has no body (the message is in the log line).
        let body = if status == 204 { "" } else { message.as_str() };
        let reply = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n{body}",
            reason(status),
            body.len(),
            if keep_open {
                ""
            } else {
                "connection: close\r\n"
            },
        );
        let written =
            tokio::time::timeout(limits.write_timeout, stream.write_all(reply.as_bytes())).await;
        if !matches!(written, Ok(Ok(()))) || !keep_open {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        _ => "Error",
    }
}

/// A request refused before it could be read whole.
struct Refused(u16, &'static str);

/// Reads one HTTP/1.1 request from `stream`, after what `buffer` already holds (bytes of the
/// next request read with the previous one stay there). `None` when the client closed.
async fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    limits: &Limits,
) -> Result<Option<http::Request<Vec<u8>>>, Refused> {
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > limits.max_head {
            return Err(Refused(413, "request head too large"));
        }
        if !read_more(stream, buffer).await {
            return Ok(None);
        }
    };
    if end > limits.max_head {
        return Err(Refused(413, "request head too large"));
    }
    let head = std::str::from_utf8(&buffer[..end]).map_err(|_| Refused(400, "head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let mut builder = http::Request::builder().method(method).uri(target);
    let mut length = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(Refused(400, "malformed header line"))?;
        // Optional whitespace around a value is spaces and tabs only (RFC 9110, 5.6.3).
        let (name, value) = (name.trim(), value.trim_matches([' ', '\t']));
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refused(
                411,
                "transfer-encoding is not supported: send content-length",
            ));
        }
        if name.eq_ignore_ascii_case("content-length") {
            // `1*DIGIT` (RFC 9110, 8.6): no sign, no space, not empty. Too many digits for a
            // number here is too large a body.
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Refused(400, "bad content-length"));
            }
            let parsed: usize = value.parse().map_err(|_| Refused(413, "body too large"))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(Refused(400, "conflicting content-length"));
            }
            length = Some(parsed);
        }
        builder = builder.header(name, value);
    }
    let length = length.unwrap_or(0);
    if length > limits.max_body {
        return Err(Refused(413, "body too large"));
    }
    let start = end + 4;
    while buffer.len() < start + length {
        if !read_more(stream, buffer).await {
            return Ok(None);
        }
    }
    let body = buffer[start..start + length].to_vec();
    buffer.drain(..start + length);
    builder
        .body(body)
        .map(Some)
        .map_err(|_| Refused(400, "malformed request"))
}

/// Reads what is there into `buffer`; false once the client has closed (or the read failed).
async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
    }
}
