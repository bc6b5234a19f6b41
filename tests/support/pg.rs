//! A private PostgreSQL for the integration tests, shared by every test of one test binary, with
//! one fresh database per test.
//!
//! - With `OPTOUT_RELAY_TEST_PG_URL` set (`postgres://user:password@host/db`, or
//!   `postgres:///db?host=/socket/dir&user=postgres`), that server is used: each test gets a
//!   database of its own (`CREATE DATABASE`, so the role needs `CREATEDB`), dropped when the
//!   test's [`TestDb`] is dropped.
//! - Otherwise the newest `/usr/lib/postgresql/*/bin` (or `initdb` and `pg_ctl` on the `PATH`)
//!   runs a throwaway cluster in a temporary directory: Unix socket only (no TCP port), `fsync`
//!   off. As root it runs as the `postgres` OS user (`runuser`). It is started once per test
//!   binary and stopped (`pg_ctl stop -m immediate`), and its directory removed, when the test
//!   binary exits, however it exits (a watchdog process waits for it to end).
//!
//! A missing PostgreSQL or one that does not start is a panic that says how to fix it, never a
//! silently skipped test.
//!
//! Use from a test file (feature `postgres`): `#[path = "support/pg.rs"] mod pg;`, then
//! `let db = pg::database().await;` and `PostgresStore::open(&db.url)`.

#![cfg(feature = "postgres")]
#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use optout_relay::url::Url;
use sqlx::Connection as _;

/// The environment variable naming an existing server to test against.
pub const URL_ENV: &str = "OPTOUT_RELAY_TEST_PG_URL";

const HOW_TO_FIX: &str = "install PostgreSQL (`apt-get install -y postgresql`: the tests run \
     /usr/lib/postgresql/<version>/bin/initdb and pg_ctl themselves), or set \
     OPTOUT_RELAY_TEST_PG_URL=postgres://user:password@host/db to a server where that role may \
     CREATE DATABASE";

/// The server every test of this binary shares.
#[derive(Debug)]
pub struct PgServer {
    /// A URL of the server's maintenance database, for `CREATE DATABASE`.
    pub admin_url: String,
    /// Whether the server is an external one (`OPTOUT_RELAY_TEST_PG_URL`).
    pub external: bool,
    /// The cluster's directory (local servers only): `data/`, `log`, the socket.
    pub dir: Option<PathBuf>,
    /// The process that stops a local server once this process has ended.
    watchdog: Option<Mutex<Child>>,
}

/// One test's own database on the shared server.
#[derive(Debug)]
pub struct TestDb {
    /// The database's URL, for `PostgresStore::open` (and for child processes).
    pub url: String,
    /// The database's name.
    pub name: String,
    admin_url: String,
    external: bool,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // A local server's databases go with its directory; an external server's are dropped.
        if !self.external {
            return;
        }
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("pg: could not drop test database {}", self.name);
        }
    }
}

/// The shared server, started on first use.
///
/// # Panics
///
/// When no server can be had; the message says how to fix it.
pub fn server() -> &'static PgServer {
    static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
    match SERVER.get_or_init(start_server) {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

/// A fresh, empty database of its own for the calling test.
///
/// # Panics
///
/// When no server can be had or the database cannot be created.
pub async fn database() -> TestDb {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let server = server();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let name = format!(
        "optout_relay_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut last_error = String::new();
    // Concurrent CREATE DATABASE from one template can collide; try again after a pause.
    for attempt in 0..8u64 {
        match create_database(&server.admin_url, &name).await {
            Ok(()) => {
                return TestDb {
                    url: database_url(&server.admin_url, &name),
                    name,
                    admin_url: server.admin_url.clone(),
                    external: server.external,
                };
            }
            Err(error) => {
                last_error = error.to_string();
                tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
            }
        }
    }
    panic!(
        "pg: cannot create the test database {name} on {}: {last_error}\n{}\nTo fix: {HOW_TO_FIX}",
        redact(&server.admin_url),
        server.log_tail(),
    );
}

async fn create_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// `url` with its database replaced by `name`.
fn database_url(url: &str, name: &str) -> String {
    let mut url = Url::parse(url).expect("a PostgreSQL URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "dbname")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_path(&format!("/{name}"));
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(unreadable URL)".to_owned(),
    }
}

impl PgServer {
    /// The last lines of a local server's log (empty for an external server).
    pub fn log_tail(&self) -> String {
        match &self.dir {
            Some(dir) => log_tail(dir),
            None => String::new(),
        }
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    format!("--- server log ({}) ---\n{tail}", dir.join("log").display())
}

fn start_server() -> Result<PgServer, String> {
    if let Ok(url) = std::env::var(URL_ENV) {
        if !url.trim().is_empty() {
            return Ok(PgServer {
                admin_url: url,
                external: true,
                dir: None,
                watchdog: None,
            });
        }
    }
    start_local()
}

/// The newest `/usr/lib/postgresql/<version>/bin`, else the `PATH` directory holding `initdb`.
fn find_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version: Vec<u32> = name
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map_or_else(
        |_| {
            Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        },
        |m| m.uid() == 0,
    )
}

/// A command running `program` as the `postgres` OS user when this process is root (initdb and
/// the server refuse to run as root), as this process's user otherwise.
fn command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Runs `command` with its output in `dir/name.out`; returns its output on failure.
fn run(mut command: Command, dir: &Path, name: &str) -> Result<(), String> {
    let out_path = dir.join(format!("{name}.out"));
    let out = std::fs::File::create(&out_path).map_err(|e| format!("{name}: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("{name}: {e}"))?;
    let status = command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("{name} cannot be run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        let output = std::fs::read_to_string(&out_path).unwrap_or_default();
        Err(format!("{name} failed ({status}):\n{output}"))
    }
}

fn start_local() -> Result<PgServer, String> {
    let Some(bin) = find_binaries() else {
        return Err(format!(
            "pg: no PostgreSQL server binaries found (looked for /usr/lib/postgresql/*/bin/initdb \
             and initdb on the PATH).\nTo fix: {HOW_TO_FIX}"
        ));
    };
    let as_postgres = is_root();
    // A short base: the socket path (`<dir>/.s.PGSQL.5432`) must stay under 108 bytes, and the
    // `postgres` user must be able to reach it.
    let base = if as_postgres || std::env::temp_dir().as_os_str().len() > 60 {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = base.join(format!("optout-relay-pg-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("pg: cannot create {}: {e}", dir.display()))?;
    let fail = |what: String| {
        let message = format!(
            "pg: the test PostgreSQL ({}) did not start: {what}\n{}\n\nTo fix: {HOW_TO_FIX}",
            bin.display(),
            log_tail(&dir)
        );
        stop_local(&bin, &dir, as_postgres);
        message
    };
    if as_postgres {
        let mut chown = Command::new("chown");
        chown.arg("postgres:postgres").arg(&dir);
        run(chown, &dir, "chown").map_err(|e| {
            fail(format!(
                "running as root, the cluster must belong to the `postgres` OS user \
                 (`useradd postgres`, which `apt-get install postgresql` creates): {e}"
            ))
        })?;
    }
    // Stop the server and remove its directory when this process ends, however it ends.
    let watchdog = spawn_watchdog(&bin, &dir, as_postgres);

    let data = dir.join("data");
    let mut initdb = command(as_postgres, &bin.join("initdb"));
    initdb.arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]);
    run(initdb, &dir, "initdb").map_err(&fail)?;

    let options = format!(
        "-k {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let mut pg_ctl = command(as_postgres, &bin.join("pg_ctl"));
    pg_ctl
        .arg("-D")
        .arg(&data)
        .arg("-o")
        .arg(&options)
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-w", "-t", "60", "start"]);
    // pg_ctl writes the log file as the server's user: it must be able to create it.
    run(pg_ctl, &dir, "pg_ctl").map_err(&fail)?;

    let mut url = Url::parse("postgres:///postgres").expect("a URL");
    url.query_pairs_mut()
        .append_pair("host", &dir.to_string_lossy())
        .append_pair("user", "postgres");
    Ok(PgServer {
        admin_url: url.to_string(),
        external: false,
        dir: Some(dir),
        watchdog: watchdog.map(Mutex::new),
    })
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

fn stop_command(bin: &Path, dir: &Path, as_postgres: bool) -> String {
    let pg_ctl = shell_quote(&bin.join("pg_ctl"));
    let data = shell_quote(&dir.join("data"));
    let run_as = if as_postgres {
        "runuser -u postgres -- "
    } else {
        ""
    };
    format!(
        "if [ -f {data}/postmaster.pid ]; then {run_as}{pg_ctl} -D {data} stop -m immediate -w; fi; \
         rm -rf {}",
        shell_quote(dir)
    )
}

fn stop_local(bin: &Path, dir: &Path, as_postgres: bool) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(stop_command(bin, dir, as_postgres))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A `sh` that waits for this process to end, then stops the server and removes its directory.
fn spawn_watchdog(bin: &Path, dir: &Path, as_postgres: bool) -> Option<Child> {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 0.2; done; {}",
        std::process::id(),
        stop_command(bin, dir, as_postgres)
    );
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => Some(child),
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "pg: no watchdog ({error}): stop the server in {} by hand",
                dir.display()
            );
            None
        }
    }
}
