//! The store commands: `status`, `pending`, `dead`, `replay`, `pause`, `resume`, `purge`.

use clap::Args;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use optout_relay::delivery::DeliveryState;
use optout_relay::health::{Endpoint, EndpointState};
use optout_relay::store::{ListQuery, StateFilter};
use optout_relay::webhook::WebhookId;
use optout_relay::{Delivery, DeliveryStore, FlowId};

use crate::Failure;
use crate::StoreArgs;
use crate::flows::plural;
use crate::open::open;
use crate::out::{Out, Progress, shown, state_colour, when};

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this flow's deliveries.
    #[arg(long, value_name = "ID")]
    flow: Option<FlowId>,
    /// The most deliveries to list (1 to 10000).
    #[arg(long, default_value_t = DEFAULT_LIMIT, value_parser = clap::value_parser!(u16).range(1..=10000))]
    limit: u16,
    /// The page after this webhook id (the last one of the previous page).
    #[arg(long, value_name = "WEBHOOK_ID")]
    after: Option<String>,
}

/// How many deliveries `pending` and `dead` list when not told.
const DEFAULT_LIMIT: u16 = 50;

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
        // The next page of the same listing: the same flow and page size.
        let command = if dead { "dead" } else { "pending" };
        let mut more = format!("optout-relay {command} --after {after}");
        let mut same = vec!["--store"];
        if let Some(flow) = &args.flow {
            match shown(flow.as_str()) {
                Some(flow) => more.push_str(&format!(" --flow {flow}")),
                None => same.push("--flow"),
            }
        }
        if args.limit != DEFAULT_LIMIT {
            more.push_str(&format!(" --limit {}", args.limit));
        }
        out.line(format!(
            "\nmore: {more} (with the same {})",
            same.join(" and ")
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

/// What `replay` did, as the JSON document gives it: the ids replayed (ids the store holds, as
/// `dead` lists them), and each id given that is not a dead letter, by its place among the ids
/// given (from 1) and the id when it may be shown (see [`shown`]).
fn replay_report(replayed: &[String], missing: &[serde_json::Value]) -> serde_json::Value {
    json!({
        "replayed": replayed.len(),
        "webhook_ids": replayed,
        "not_dead_letters": missing,
    })
}

pub(crate) async fn replay(args: ReplayArgs, mut out: Out) -> Result<(), Failure> {
    let (_, store) = open(&args.store.store).await?;
    let mut replayed: Vec<String> = Vec::new();
    let mut missing: Vec<serde_json::Value> = Vec::new();
    let done = if args.all {
        let json = out.format == crate::out::Format::Json;
        replay_all(&args, &*store, json, &mut replayed).await
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
    missing: &mut Vec<serde_json::Value>,
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
        if store.replay(&id).await? {
            // An id of a dead letter the store held, which `dead` lists whole.
            out.line(format!("replayed {id}"));
            replayed.push(id.as_str().to_owned());
        } else {
            out.line(format!(
                "{}: not a dead letter in this store",
                shown_id(id.as_str(), position)
            ));
            missing.push(json!({"given": position + 1, "webhook_id": shown(id.as_str())}));
        }
    }
    Ok(())
}

/// Replays every dead letter (of `--flow`), a page at a time, with progress on standard error
/// (none with `json`: standard error then holds only an error, as one JSON object).
async fn replay_all(
    args: &ReplayArgs,
    store: &dyn DeliveryStore,
    json: bool,
    replayed: &mut Vec<String>,
) -> Result<(), Failure> {
    let mut progress = Progress::new("replayed", args.progress_every, json);
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
