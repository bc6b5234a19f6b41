//! `lint` and `preview`: what a flow file does, without sending anything.

use clap::Args;
use jiff::Timestamp;
use serde_json::{Value, json};

use optout_relay::EntryLimit;
use optout_relay::explain::Explanation;
use optout_relay::lint::{self, Diagnostic, Severity};
use optout_relay::webhook::{Preview, RequestBuildError, WebhookRequest};
use optout_relay::{FlowId, OptOutEvent, Profile, Router};

use crate::out::{Out, severity_colour, shown};
use crate::{Failure, FilePath, input};

#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// The flow file.
    #[arg(value_name = "FLOWS.json")]
    flows: FilePath,
    /// The catalog of Sections, Folders and Subscriptions the flows name: also checks that
    /// they exist.
    #[arg(long, value_name = "CATALOG.json")]
    catalog: Option<FilePath>,
    /// Exit with status 1 on warnings too (errors always do).
    #[arg(long)]
    deny_warnings: bool,
}

/// The event, Profile and flows a preview or a test send works on.
#[derive(Debug, Args)]
pub(crate) struct EventArgs {
    /// The flow file.
    #[arg(value_name = "FLOWS.json")]
    pub(crate) flows: FilePath,
    /// The opt-out event, as the platform sends it.
    #[arg(long, value_name = "EVENT.json")]
    pub(crate) event: FilePath,
    /// The Profile the event is about.
    #[arg(long, value_name = "PROFILE.json")]
    pub(crate) profile: FilePath,
    /// The catalog of Sections, Folders and Subscriptions (for flows narrowed by Folder).
    #[arg(long, value_name = "CATALOG.json")]
    pub(crate) catalog: Option<FilePath>,
    /// Show personal data (Email, Mobile, attributes) and secrets whole. Do not paste the
    /// output anywhere public.
    #[arg(long)]
    pub(crate) unmasked: bool,
    /// The time the request is built at (RFC 3339, such as 2026-11-26T09:30:05Z); it is what
    /// a signature signs. Default: now.
    // Read as text and parsed by the command, so that an error never repeats it.
    #[arg(long, value_name = "TIME")]
    pub(crate) at: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PreviewArgs {
    #[command(flatten)]
    pub(crate) input: EventArgs,
    /// Only this flow.
    #[arg(long, value_name = "ID")]
    flow: Option<FlowId>,
}

/// What `preview` and `send` load.
pub(crate) struct Loaded {
    pub(crate) router: Router,
    pub(crate) event: OptOutEvent,
    pub(crate) profile: Profile,
    pub(crate) at: Timestamp,
}

pub(crate) fn load(args: &EventArgs) -> Result<Loaded, Failure> {
    let flows = input::flows(&args.flows)?;
    let catalog = input::catalog(args.catalog.as_deref())?;
    let router = input::router(&args.flows, flows, &catalog)?;
    Ok(Loaded {
        router,
        event: input::event(&args.event)?,
        profile: input::profile(&args.profile)?,
        at: match &args.at {
            None => Timestamp::now(),
            Some(text) => text.parse().map_err(|_| {
                Failure::Usage("--at: not an RFC 3339 time such as 2026-11-26T09:30:05Z".to_owned())
            })?,
        },
    })
}

impl Loaded {
    /// The request `flow` makes for the event about the Profile at the time given; `None` when
    /// the event does not match the flow.
    pub(crate) fn build(&self, flow: &FlowId) -> Option<Result<WebhookRequest, RequestBuildError>> {
        self.router
            .matches(&self.event)
            .into_iter()
            .find(|m| &m.flow.id == flow)
            .map(|m| m.build_request(&self.profile, self.at))
    }
}

/// `request`'s dry-run preview, masked unless `unmasked`.
pub(crate) fn preview_of(request: &WebhookRequest, unmasked: bool) -> Preview<'_> {
    if unmasked {
        request.preview_unmasked()
    } else {
        request.preview()
    }
}

/// The flow `id` of `router`, or a usage error naming the file.
pub(crate) fn known_flow<'a>(
    router: &'a Router,
    id: &FlowId,
    file: &FilePath,
) -> Result<&'a optout_relay::Flow, Failure> {
    router.flow(id).ok_or_else(|| {
        Failure::Usage(format!(
            "{}: no flow has the id {}; the file's flows are: {}",
            file.display(),
            shown(id.as_str()).map_or("given".to_owned(), |id| format!("`{id}`")),
            router
                .flows()
                .iter()
                .map(|f| format!("`{}`", f.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

pub(crate) fn lint(args: &LintArgs, mut out: Out) -> Result<(), Failure> {
    let file = input::flows(&args.flows)?;
    let mut found: Vec<Diagnostic> = lint::lint_flows(&file.flows);
    if let Some(path) = &args.catalog {
        let catalog = input::catalog(Some(path))?;
        found.extend(lint::lint_catalog(&file.flows, &catalog));
    }
    let count = |severity| found.iter().filter(|d| d.severity == severity).count();
    let (errors, warnings, notes) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Note),
    );
    let name = args.flows.display().to_string();
    for diagnostic in &found {
        let severity = diagnostic.severity.to_string();
        let head = match severity_colour(&severity) {
            Some(colour) => out.paint(&severity, colour),
            None => severity,
        };
        out.line(format!(
            "{head}[{}] flow {}",
            diagnostic.code, diagnostic.flow
        ));
        out.line(format!("  {}", diagnostic.message));
    }
    let flows = plural(file.flows.len(), "flow");
    if found.is_empty() {
        out.line(format!("{name}: no findings in {flows}"));
    } else {
        let parts: Vec<String> = [(errors, "error"), (warnings, "warning"), (notes, "note")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, noun)| plural(n, noun))
            .collect();
        out.line(format!("\n{name}: {} in {flows}", parts.join(", ")));
    }
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    out.finish(&json!({
        "file": name,
        "flows": file.flows.len(),
        "errors": errors,
        "warnings": warnings,
        "notes": notes,
        "diagnostics": found,
        "passed": !failed,
    }));
    if failed {
        let why = if errors > 0 {
            plural(errors, "error")
        } else {
            format!("{} (--deny-warnings)", plural(warnings, "warning"))
        };
        return Err(Failure::Check(format!("lint failed: {why}")));
    }
    Ok(())
}

pub(crate) fn preview(args: &PreviewArgs, mut out: Out) -> Result<(), Failure> {
    let loaded = load(&args.input)?;
    let (router, event) = (&loaded.router, &loaded.event);
    let flows: Vec<&optout_relay::Flow> = match &args.flow {
        Some(id) => vec![known_flow(router, id, &args.input.flows)?],
        None => router.flows().iter().collect(),
    };
    let masked = !args.input.unmasked;
    out.line(describe_event(event, args.input.unmasked));
    let mut listed = Vec::new();
    for flow in flows {
        out.line("");
        let Some(explanation) = router.explain(&flow.id, event) else {
            continue;
        };
        let mut entry = json!({"flow": flow.id});
        match explanation {
            Explanation::Rejected(rejection) => {
                out.line(format!("{}: does not enter", flow.id));
                out.line(format!("  why not: {rejection}"));
                entry["enters"] = json!(false);
                entry["rejected"] = json!(rejection);
            }
            Explanation::Matches(why) => {
                entry["why"] = json!(why);
                match loaded.build(&flow.id) {
                    Some(Ok(request)) => {
                        out.line(format!("{}: enters", flow.id));
                        out.line(format!("  why: {why}"));
                        if let limit @ EntryLimit::AtMost { .. } = flow.settings.entry_limit {
                            out.line(format!(
                                "  entry limit: {limit}, counted by the store (not here)"
                            ));
                            entry["entry_limit"] = json!(limit.to_string());
                        }
                        let preview = preview_of(&request, args.input.unmasked);
                        let curl = preview.curl();
                        for line in curl.lines() {
                            out.line(format!("  {line}"));
                        }
                        entry["enters"] = json!(true);
                        entry["curl"] = json!(curl);
                        entry["summary"] = json!(preview.summary());
                    }
                    Some(Err(error)) => {
                        out.line(format!(
                            "{}: does not enter: its request cannot be built",
                            flow.id
                        ));
                        out.line(format!("  why: {why}"));
                        out.line(format!("  error: {error}"));
                        entry["enters"] = json!(false);
                        entry["error"] = json!(error.to_string());
                    }
                    None => continue,
                }
            }
        }
        listed.push(entry);
    }
    out.finish(&json!({
        "event": event.id(),
        "masked": masked,
        "flows": Value::Array(listed),
    }));
    Ok(())
}

/// `event evt-1: Email - Unsubscribe of profile p*** in section sec-1, subscription 123456,
/// through communication, at ...`. The Profile id is masked unless `unmasked`: some hosts use
/// the Email or Mobile as the id.
pub(crate) fn describe_event(event: &OptOutEvent, unmasked: bool) -> String {
    let profile = if unmasked {
        event.profile().to_string()
    } else {
        event.profile().masked()
    };
    let mut text = format!(
        "event {}: {} of profile {profile} in section {}",
        event.id(),
        event.kind(),
        event.section()
    );
    if let Some(subscription) = event.subscription() {
        text.push_str(&format!(", subscription {subscription}"));
    }
    if let Some(activity) = event.activity() {
        text.push_str(&format!(", activity {activity}"));
    }
    text.push_str(&format!(
        ", through {}, at {}",
        event.origin(),
        event.occurred_at()
    ));
    text
}

/// `1 flow`, `3 flows`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
