//! The store commands: `status`, `pending`, `dead`, `replay`, `pause`, `resume`, `purge`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use optout_relay::delivery::DeliveryState;
use optout_relay::health::{Endpoint, EndpointState};
use optout_relay::store::{ListQuery, StateFilter};
use optout_relay::webhook::WebhookId;
use optout_relay::{Delivery, DeliveryStore, FlowId, PostgresStore, SqliteStore};

use crate::Failure;
use crate::StoreArgs;
use crate::flows::plural;
use crate::out::{Out, Progress, shown, state_colour, when};

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
async fn open(text: &str) -> Result<(StoreUrl, Box<dyn DeliveryStore>), Failure> {
    let url: StoreUrl = text
        .parse()
        .map_err(|e| Failure::Usage(format!("--store: {e}")))?;
    let store = open_url(&url).await?;
    Ok((url, store))
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
                return Err(Failure::Usage(format!(
                    "{url}: no such file; give the path of the relay's SQLite store"
                )));
            }
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .map_err(|e| Failure::Usage(format!("{url}: not a SQLite database: {e}")))?;
            let found: Result<bool, sqlx::Error> = sqlx::query_scalar(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = $1",
            )
            .bind(DELIVERIES)
            .fetch_one(&mut conn)
            .await;
            let _ = conn.close().await;
            found.map_err(|e| Failure::Usage(format!("{url}: not a SQLite database: {e}")))?
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

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this flow's deliveries.
    #[arg(long, value_name = "ID")]
    flow: Option<FlowId>,
    /// The most deliveries to list (1 to 10000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=10000))]
    limit: u16,
    /// The page after this webhook id (the last one of the previous page).
    #[arg(long, value_name = "WEBHOOK_ID")]
    after: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The dead letters' webhook ids.
    // Read as text and parsed by the command, so that an error never repeats what was given.
    #[arg(
        value_name = "WEBHOOK_ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    ids: Vec<String>,
    /// Every dead letter (of --flow, when given).
    #[arg(long)]
    all: bool,
    /// With --all: only this flow's dead letters.
    #[arg(long, value_name = "ID", requires = "all")]
    flow: Option<FlowId>,
    /// With --all: a progress line on standard error every this many replays (a terminal
    /// shows a running count instead).
    #[arg(long, value_name = "N", default_value_t = 1000, hide = true)]
    progress_every: u64,
    /// With --all: how many dead letters each page lists.
    #[arg(long, value_name = "N", default_value_t = 500, hide = true,
          value_parser = clap::value_parser!(u16).range(1..=10000))]
    page: u16,
}

#[derive(Debug, Args)]
pub(crate) struct EndpointArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The endpoint, as `status` lists it: scheme://host[:port]/path.
    // Read as text and parsed by the command, so that an error never repeats it (a URL may
    // carry an Email in its query).
    #[arg(value_name = "ENDPOINT")]
    endpoint: String,
    /// Also an endpoint the store holds nothing pending and no health for (such as one with
    /// dead letters only, before they are replayed); without it, such an endpoint is refused,
    /// since it may be a typo.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Delete what ended more than this long ago: a number and a unit, s, m, h, d (24 h) or
    /// w, such as 30d.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    older_than: SignedDuration,
}

/// `30d`, `12h`, `90m`, `45s`, `2w`.
fn parse_age(text: &str) -> Result<SignedDuration, String> {
    let expected = "an age is a whole number and a unit (s, m, h, d or w), such as 30d";
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| expected.to_owned())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(expected.to_owned()),
    };
    if number == 0 {
        return Err("the age must be more than zero".to_owned());
    }
    number
        .checked_mul(seconds)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(SignedDuration::from_secs)
        .ok_or_else(|| "the age is at most 100 years".to_owned())
}

pub(crate) async fn status(args: StoreArgs, mut out: Out) -> Result<(), Failure> {
    let (url, store) = open(&args.store).await?;
    let counts = store.counts().await?;
    let endpoints = store.endpoints().await?;
    out.line(format!("store {url}"));
    out.line("");
    let rows = vec![
        vec!["pending".to_owned(), counts.pending.to_string()],
        vec!["  in flight".to_owned(), counts.leased.to_string()],
        vec!["delivered".to_owned(), counts.delivered.to_string()],
        vec!["dead-lettered".to_owned(), counts.dead_lettered.to_string()],
        vec!["entries".to_owned(), counts.entries.to_string()],
    ];
    out.table(&["state", "deliveries"], &[false, true], &rows, |_, _| None);
    out.line("");
    if endpoints.is_empty() {
        out.line("no endpoints yet");
    } else {
        let rows: Vec<Vec<String>> = endpoints
            .iter()
            .map(|e| {
                vec![
                    e.endpoint.to_string(),
                    e.state.as_str().to_owned(),
                    e.pending.to_string(),
                    e.in_flight.to_string(),
                    detail(&e.state),
                ]
            })
            .collect();
        out.table(
            &["endpoint", "state", "pending", "in flight", "detail"],
            &[false, false, true, true, false],
            &rows,
            |column, cell| {
                if column == 1 {
                    state_colour(cell)
                } else {
                    None
                }
            },
        );
    }
    let endpoints: Vec<_> = endpoints
        .iter()
        .map(|e| {
            json!({
                "endpoint": e.endpoint.as_str(),
                "state": e.state.as_str(),
                "detail": detail(&e.state),
                "pending": e.pending,
                "in_flight": e.in_flight,
            })
        })
        .collect();
    out.finish(&json!({
        "store": url.to_string(),
        "counts": counts,
        "endpoints": endpoints,
    }));
    Ok(())
}

/// An endpoint state's detail: when its circuit closes, or since when and why it is paused.
fn detail(state: &EndpointState) -> String {
    match state {
        EndpointState::Degraded { until } => format!("circuit open until {}", when(*until)),
        EndpointState::Paused { reason, since } => format!("since {}: {reason}", when(*since)),
        _ => "-".to_owned(),
    }
}

pub(crate) async fn list(args: ListArgs, mut out: Out, dead: bool) -> Result<(), Failure> {
    let (_, store) = open(&args.store.store).await?;
    let state = if dead {
        StateFilter::DeadLettered
    } else {
        StateFilter::Pending
    };
    let mut query = ListQuery::new(state).limit(usize::from(args.limit));
    if let Some(flow) = &args.flow {
        query = query.flow(flow.clone());
    }
    if let Some(after) = &args.after {
        query = query.after(after.clone());
    }
    let page = store.list(&query).await?;
    // A pending delivery of an endpoint that is paused is held: its due time means nothing
    // until the endpoint is resumed.
    let paused: Vec<Endpoint> = if dead || page.is_empty() {
        Vec::new()
    } else {
        store
            .endpoints()
            .await?
            .into_iter()
            .filter(|e| matches!(e.state, EndpointState::Paused { .. }))
            .map(|e| e.endpoint)
            .collect()
    };
    let held = |delivery: &Delivery| paused.contains(&delivery.endpoint());
    let full = page.len() == usize::from(args.limit);
    let next = if full {
        page.last().map(|d| d.webhook_id().as_str().to_owned())
    } else {
        None
    };
    if page.is_empty() {
        out.line(if dead {
            "no dead letters"
        } else {
            "no pending deliveries"
        });
    } else {
        let header: &[&str] = if dead {
            &[
                "webhook id",
                "flow",
                "event",
                "endpoint",
                "attempts",
                "dead since",
                "reason",
            ]
        } else {
            &[
                "webhook id",
                "flow",
                "event",
                "endpoint",
                "attempts",
                "next attempt",
            ]
        };
        let rows: Vec<Vec<String>> = page.iter().map(|d| row(d, dead, held(d))).collect();
        let mut right = vec![false; header.len()];
        right[4] = true;
        out.table(header, &right, &rows, |_, _| None);
    }
    if let Some(after) = &next {
        let command = if dead { "dead" } else { "pending" };
        out.line(format!(
            "\nmore: optout-relay {command} --after {after} (with the same --store)"
        ));
    }
    let items: Vec<_> = page.iter().map(|d| item(d, held(d))).collect();
    out.finish(&json!({ "deliveries": items, "next_after": next }));
    Ok(())
}

/// One delivery as a table row (no request: it holds personal data); `held`: its endpoint is
/// paused.
fn row(delivery: &Delivery, dead: bool, held: bool) -> Vec<String> {
    let mut cells = vec![
        delivery.webhook_id().as_str().to_owned(),
        delivery.flow().to_string(),
        delivery.event().to_string(),
        delivery.endpoint().to_string(),
        delivery.attempt_count().to_string(),
    ];
    match (delivery.state(), dead) {
        (DeliveryState::DeadLettered { at, reason }, true) => {
            cells.push(when(*at));
            cells.push(reason.to_string());
        }
        (DeliveryState::Pending { .. }, false) if held => {
            cells.push("held: its endpoint is paused".to_owned());
        }
        (DeliveryState::Pending { next_attempt_at }, false) => {
            cells.push(when(*next_attempt_at));
        }
        (_, true) => cells.extend(["-".to_owned(), "-".to_owned()]),
        (_, false) => cells.push("-".to_owned()),
    }
    cells
}

/// One delivery for JSON: ids, endpoint, state, attempts, the last answer's status and whether
/// it is held (its endpoint is paused); never the request or a response body (they may hold
/// personal data).
fn item(delivery: &Delivery, held: bool) -> serde_json::Value {
    let last_status = delivery.attempts().last().and_then(|a| match &a.outcome {
        optout_relay::delivery::AttemptOutcome::Response { status, .. } => Some(*status),
        _ => None,
    });
    json!({
        "webhook_id": delivery.webhook_id().as_str(),
        "flow": delivery.flow(),
        "event": delivery.event(),
        "endpoint": delivery.endpoint().as_str(),
        "created_at": delivery.created_at(),
        "attempts": delivery.attempt_count(),
        "last_status": last_status,
        "state": delivery.state(),
        "held": held,
    })
}

/// A webhook id as it may be shown (see [`shown`]): anything but a short, plain id is named by
/// its place on the command line.
fn shown_id(id: &str, position: usize) -> String {
    shown(id).map_or_else(
        || format!("the webhook id given #{}", position + 1),
        str::to_owned,
    )
}

/// What `replay` did, as the JSON document gives it.
fn replay_report(replayed: &[String], missing: &[String]) -> serde_json::Value {
    json!({
        "replayed": replayed.len(),
        "webhook_ids": replayed,
        "not_dead_letters": missing,
    })
}

pub(crate) async fn replay(args: ReplayArgs, mut out: Out) -> Result<(), Failure> {
    let (_, store) = open(&args.store.store).await?;
    let mut replayed: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let done = if args.all {
        replay_all(&args, &*store, &mut replayed).await
    } else {
        replay_ids(&args.ids, &*store, &mut out, &mut replayed, &mut missing).await
    };
    if let Err(failure) = done {
        // What was replayed before the store failed is said, so that nothing is replayed twice
        // by mistake or thought replayed when it was not.
        out.line(format!(
            "the store failed after {} was replayed",
            plural(replayed.len(), "dead letter")
        ));
        out.finish(&replay_report(&replayed, &missing));
        return Err(failure);
    }
    if args.all {
        out.line(format!(
            "replayed {}; each is due now with the retry policy's whole allowance",
            plural(replayed.len(), "dead letter")
        ));
    }
    out.finish(&replay_report(&replayed, &missing));
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::Check(format!(
            "{} not replayed: not a dead letter in this store",
            plural(missing.len(), "webhook id")
        )))
    }
}

/// Replays the ids given, one line each as it goes.
async fn replay_ids(
    ids: &[String],
    store: &dyn DeliveryStore,
    out: &mut Out,
    replayed: &mut Vec<String>,
    missing: &mut Vec<String>,
) -> Result<(), Failure> {
    let mut parsed = Vec::with_capacity(ids.len());
    for (position, text) in ids.iter().enumerate() {
        let id: WebhookId = text.parse().map_err(|e| {
            Failure::Usage(format!(
                "{} is not a webhook id: {e}",
                shown_id(text, position)
            ))
        })?;
        parsed.push((position, id));
    }
    for (position, id) in parsed {
        let shown = shown_id(id.as_str(), position);
        if store.replay(&id).await? {
            out.line(format!("replayed {shown}"));
            replayed.push(shown);
        } else {
            out.line(format!("{shown}: not a dead letter in this store"));
            missing.push(shown);
        }
    }
    Ok(())
}

/// Replays every dead letter (of `--flow`), a page at a time, with progress on standard error.
async fn replay_all(
    args: &ReplayArgs,
    store: &dyn DeliveryStore,
    replayed: &mut Vec<String>,
) -> Result<(), Failure> {
    let mut progress = Progress::new("replayed", args.progress_every);
    let page_size = usize::from(args.page);
    let mut after: Option<String> = None;
    loop {
        let mut query = ListQuery::new(StateFilter::DeadLettered).limit(page_size);
        if let Some(flow) = &args.flow {
            query = query.flow(flow.clone());
        }
        if let Some(after) = &after {
            query = query.after(after.clone());
        }
        let page = store.list(&query).await?;
        for delivery in &page {
            // One that a worker or another operator took back meanwhile is not a dead letter
            // any more, and is left alone.
            if store.replay(delivery.webhook_id()).await? {
                replayed.push(delivery.webhook_id().as_str().to_owned());
                progress.step();
            }
        }
        match page.last() {
            Some(last) if page.len() == page_size => {
                after = Some(last.webhook_id().as_str().to_owned());
            }
            _ => break,
        }
    }
    progress.finish();
    Ok(())
}

pub(crate) async fn pause(args: EndpointArgs, mut out: Out, resume: bool) -> Result<(), Failure> {
    let endpoint: Endpoint = args
        .endpoint
        .parse()
        .map_err(|e| Failure::Usage(format!("ENDPOINT: {e}")))?;
    let endpoint = &endpoint;
    let (_, store) = open(&args.store.store).await?;
    let known = store.endpoints().await?;
    if !args.force && !known.iter().any(|e| &e.endpoint == endpoint) {
        return Err(Failure::Usage(format!(
            "the store holds nothing pending and no health for {endpoint} (`optout-relay \
             status` lists the endpoints it holds); check the endpoint, or give --force to \
             {} it all the same",
            if resume { "resume" } else { "pause" }
        )));
    }
    let change = if resume {
        store.resume(endpoint).await?
    } else {
        store.pause(endpoint).await?
    };
    let (verb, text) = match (&change, resume) {
        (Some(change), false) => (
            "paused",
            format!(
                "paused {endpoint} (was {}): nothing more is sent to it and its deliveries are \
                 held until `optout-relay resume`",
                change.from.as_str()
            ),
        ),
        (Some(change), true) => (
            "resumed",
            format!(
                "resumed {endpoint} (was {}): its held deliveries are due now, in admission order",
                change.from.as_str()
            ),
        ),
        (None, false) => (
            "unchanged",
            format!("{endpoint} was already paused by an operator"),
        ),
        (None, true) => ("unchanged", format!("{endpoint} is healthy already")),
    };
    out.line(text);
    out.finish(&json!({
        "endpoint": endpoint.as_str(),
        "result": verb,
        "from": change.as_ref().map(|c| c.from.as_str()),
        "to": change.as_ref().map(|c| c.to.as_str()),
    }));
    Ok(())
}

pub(crate) async fn purge(args: PurgeArgs, mut out: Out) -> Result<(), Failure> {
    let (_, store) = open(&args.store.store).await?;
    let before = Timestamp::now()
        .checked_sub(args.older_than)
        .map_err(|e| Failure::Usage(format!("--older-than: {e}")))?;
    let purged = store.purge(before).await?;
    let noun = if purged == 1 {
        "delivery"
    } else {
        "deliveries"
    };
    out.line(format!(
        "purged {purged} {noun} that ended before {}",
        when(before)
    ));
    out.finish(&json!({ "purged": purged, "before": before }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::parse_age;

    #[test]
    fn ages_are_a_whole_number_and_a_unit() {
        let day = 86_400;
        for (text, seconds) in [
            ("45s", 45),
            ("90m", 90 * 60),
            ("12h", 12 * 3600),
            ("30d", 30 * day),
            ("2w", 14 * day),
        ] {
            assert_eq!(
                parse_age(text),
                Ok(SignedDuration::from_secs(seconds)),
                "{text}"
            );
        }
        let unreadable = "an age is a whole number and a unit (s, m, h, d or w), such as 30d";
        for text in ["30 days", "30", "d", "1y", "-1d", "1.5h", ""] {
            assert_eq!(parse_age(text), Err(unreadable.to_owned()), "{text}");
        }
        assert_eq!(
            parse_age("0d"),
            Err("the age must be more than zero".to_owned())
        );
        assert_eq!(
            parse_age("36501d"),
            Err("the age is at most 100 years".to_owned())
        );
    }
}
