//! A small scriptable HTTP/1.1 server on 127.0.0.1 for the integration tests: it records every
//! request byte-exact and answers from a script (a status, a delay, a connection closed
//! mid-response), then with a default answer.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    /// The request target, exactly as sent (path and query).
    pub target: String,
    /// Header names lower-cased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A status, extra headers and a body.
    Status(u16, Vec<(String, String)>, Vec<u8>),
    /// Wait, then answer.
    Delay(Duration, Box<Answer>),
    /// Send the status line and half the headers, then close the connection.
    CloseMidResponse,
}

impl Answer {
    pub fn status(code: u16) -> Self {
        Self::Status(code, Vec::new(), Vec::new())
    }
    pub fn with_header(code: u16, name: &str, value: &str) -> Self {
        Self::Status(code, vec![(name.into(), value.into())], Vec::new())
    }
}

/// Decides the answer to each request.
pub type Responder = Box<dyn FnMut(&Received) -> Answer + Send>;

struct State {
    respond: Responder,
    received: Vec<Received>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("received", &self.received.len())
            .finish_non_exhaustive()
    }
}

/// The server; stops when dropped.
#[derive(Debug, Clone)]
pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl TestServer {
    /// Starts a server on 127.0.0.1 with a free port answering `fallback` once `script` is used.
    pub async fn start(script: impl IntoIterator<Item = Answer>, fallback: Answer) -> Self {
        let mut script: VecDeque<Answer> = script.into_iter().collect();
        Self::start_with(Box::new(move |_| {
            script.pop_front().unwrap_or_else(|| fallback.clone())
        }))
        .await
    }

    /// Starts a server on 127.0.0.1 answering each request as `respond` decides.
    pub async fn start_with(respond: Responder) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            respond,
            received: Vec::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Self {
            addr,
            state,
            task: Arc::new(task),
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        // Read one request: headers up to CRLFCRLF, then Content-Length bytes.
        let header_end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_owned();
        let target = request_line.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body_start = header_end + 4;
        while buffer.len() < body_start + length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        let body = buffer[body_start..body_start + length].to_vec();
        buffer.drain(..body_start + length);
        let answer = {
            let mut state = state.lock().unwrap();
            let received = Received {
                method,
                target,
                headers,
                body,
            };
            let answer = (state.respond)(&received);
            state.received.push(received);
            answer
        };
        if !answer_with(&mut stream, answer).await? {
            return Ok(());
        }
    }
}

/// Writes the answer; returns whether the connection stays open.
async fn answer_with(stream: &mut TcpStream, answer: Answer) -> std::io::Result<bool> {
    let mut answer = answer;
    while let Answer::Delay(wait, inner) = answer {
        tokio::time::sleep(wait).await;
        answer = *inner;
    }
    match answer {
        Answer::Status(code, headers, body) => {
            let mut text = format!(
                "HTTP/1.1 {code} Status\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                text.push_str(&format!("{name}: {value}\r\n"));
            }
            text.push_str("\r\n");
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(&body);
            stream.write_all(&bytes).await?;
            Ok(true)
        }
        Answer::CloseMidResponse => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ncontent-ty")
                .await?;
            stream.shutdown().await?;
            Ok(false)
        }
        Answer::Delay(..) => unreachable!("delays are unwrapped above"),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
