//! Opening the store a command names: `sqlite:PATH` (an existing file) or a PostgreSQL URL,
//! checked for the relay's tables before anything is written, and shown without its password.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use optout_relay::{DeliveryStore, PostgresStore, SqliteStore};

use crate::Failure;

/// Where the store is: `sqlite:PATH` or a PostgreSQL URL.
#[derive(Debug, Clone)]
pub(crate) enum StoreUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl FromStr for StoreUrl {
    type Err = String;

    /// The value is not repeated in the error: a PostgreSQL URL may hold a password.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("`sqlite:` needs the file's path, such as sqlite:relay.db".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(text.to_owned()));
        }
        Err("a store is `sqlite:PATH` or `postgres://USER@HOST/DB`".into())
    }
}

impl fmt::Display for StoreUrl {
    /// The store as it can be shown: a PostgreSQL URL's password, before the `@` or in the
    /// query (`password`, `sslpassword`), is replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    let pairs: Vec<(String, String)> = parsed
                        .query_pairs()
                        .map(|(key, value)| {
                            let secret = key.to_ascii_lowercase().contains("password");
                            let value = if secret { "***".into() } else { value };
                            (key.into_owned(), value.into_owned())
                        })
                        .collect();
                    if !pairs.is_empty() {
                        parsed.query_pairs_mut().clear().extend_pairs(pairs);
                    }
                    f.write_str(parsed.as_str())
                }
                Err(_) => f.write_str("postgres://[unreadable URL]"),
            },
        }
    }
}

/// Opens the store `text` names; a SQLite file must exist (a typo must not create an empty
/// store).
pub(crate) async fn open(text: &str) -> Result<(StoreUrl, Box<dyn DeliveryStore>), Failure> {
    let url: StoreUrl = text
        .parse()
        .map_err(|e| Failure::Usage(format!("--store: {e}")))?;
    let store = open_url(&url).await?;
    Ok((url, store))
}

/// Why a SQLite file could not be checked: not a database, or not readable, is the input's
/// fault (exit 2); anything else (busy, locked, an I/O error) is the store's (exit 3).
fn sqlite_failure(url: &StoreUrl, error: &sqlx::Error) -> Failure {
    // SQLite's primary result codes: SQLITE_PERM, SQLITE_CANTOPEN, SQLITE_NOTADB.
    const PERM: i64 = 3;
    const CANTOPEN: i64 = 14;
    const NOTADB: i64 = 26;
    let code = match error {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i64>().ok()),
        _ => None,
    };
    match code.map(|c| c & 0xff) {
        Some(NOTADB) => Failure::Usage(format!("{url}: not a SQLite database: {error}")),
        Some(PERM | CANTOPEN) => Failure::Usage(format!("{url}: cannot open it: {error}")),
        _ => Failure::Runtime(format!("{url}: cannot read it: {error}")),
    }
}

/// Whether the database at `url` holds the relay's tables, checked without writing to it: a
/// store command pointed at another database by mistake must not create tables there.
async fn check_relay_tables(url: &StoreUrl) -> Result<(), Failure> {
    use sqlx::Connection as _;
    const DELIVERIES: &str = "optout_relay_deliveries";
    let not_a_store = || {
        Failure::Usage(format!(
            "{url}: holds no optout-relay store (no table {DELIVERIES}); give the store the relay \
             writes to"
        ))
    };
    let found = match url {
        StoreUrl::Sqlite(path) => {
            if !path.is_file() {
                let what = if path.is_dir() {
                    "is a directory"
                } else if path.exists() {
                    "not a regular file"
                } else {
                    "no such file"
                };
                return Err(Failure::Usage(format!(
                    "{url}: {what}; give the path of the relay's SQLite store"
                )));
            }
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .map_err(|e| sqlite_failure(url, &e))?;
            let found: Result<bool, sqlx::Error> = sqlx::query_scalar(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = $1",
            )
            .bind(DELIVERIES)
            .fetch_one(&mut conn)
            .await;
            let _ = conn.close().await;
            found.map_err(|e| sqlite_failure(url, &e))?
        }
        StoreUrl::Postgres(text) => {
            let mut conn = sqlx::PgConnection::connect(text)
                .await
                .map_err(|e| Failure::Runtime(format!("{url}: cannot connect: {e}")))?;
            let found: Result<bool, sqlx::Error> =
                sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(DELIVERIES)
                    .fetch_one(&mut conn)
                    .await;
            let _ = conn.close().await;
            found.map_err(|e| Failure::Runtime(format!("{url}: cannot read the tables: {e}")))?
        }
    };
    if found { Ok(()) } else { Err(not_a_store()) }
}

async fn open_url(url: &StoreUrl) -> Result<Box<dyn DeliveryStore>, Failure> {
    check_relay_tables(url).await?;
    match url {
        StoreUrl::Sqlite(path) => {
            Ok(Box::new(SqliteStore::open(path).await.map_err(|e| {
                Failure::Runtime(format!("{url}: cannot open the store: {e}"))
            })?))
        }
        StoreUrl::Postgres(text) => Ok(Box::new(
            PostgresStore::builder(text.clone())
                .max_connections(2)
                .listen(false)
                .open()
                .await
                .map_err(|e| Failure::Runtime(format!("{url}: cannot open the store: {e}")))?,
        )),
    }
}
