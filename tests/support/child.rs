//! Child processes for the multi-process tests: the test binary itself, run again for one
//! `#[ignore]`d `child_*` test, which does its part only when the parent set its role.

#![allow(dead_code, unreachable_pub)]

use std::io::Read as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The role a child plays (the parent sets it; a `child_*` test without it does nothing).
pub const ROLE_ENV: &str = "OPTOUT_RELAY_PG_CHILD_ROLE";
/// The database URL the child connects to.
pub const CHILD_URL_ENV: &str = "OPTOUT_RELAY_PG_CHILD_URL";
/// The child's index among its siblings.
pub const CHILD_INDEX_ENV: &str = "OPTOUT_RELAY_PG_CHILD_INDEX";

/// A child process of this test binary, its output read as it comes.
pub struct ChildProcess {
    pub name: String,
    pub child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

pub fn spawn_child(test: &str, name: String, envs: &[(&str, String)]) -> ChildProcess {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = child.stdout.take().map(|p| read(Box::new(p)));
    let stderr = child.stderr.take().map(|p| read(Box::new(p)));
    ChildProcess {
        name,
        child,
        stdout,
        stderr,
    }
}

impl ChildProcess {
    /// SIGKILL (`Child::kill` on Unix), and reap it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }

    /// Waits for the child to exit (killing it after `timeout`); its status and output.
    pub async fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                eprintln!("{} did not exit within {timeout:?}: killed", self.name);
                self.kill();
                break self.child.wait().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let out = self
            .stdout
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        (
            status,
            format!("--- {} stdout ---\n{out}--- stderr ---\n{err}", self.name),
        )
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // A failing parent leaves no child running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The child's part, when this process is a child in `role`.
pub fn child_env(role: &str) -> Option<(String, usize)> {
    if std::env::var(ROLE_ENV).ok()? != role {
        return None;
    }
    let url = std::env::var(CHILD_URL_ENV).expect("the database URL");
    let index = std::env::var(CHILD_INDEX_ENV)
        .expect("the child's index")
        .parse()
        .unwrap();
    Some((url, index))
}
