//! Lints of flows against the catalog of Sections, Folders and Subscriptions they name.
//!
//! | code | severity | fires when |
//! | --- | --- | --- |
//! | `unknown_section` | warning | the catalog holds no Section with the flow's id |
//! | `unknown_folder` | error | the listen node narrows by a Folder its Section does not hold (the [`Router`](crate::Router) refuses the flows) |
//! | `unknown_subscription` | warning | the listen node selects a Subscription its Section does not hold (no opt-out of it can arrive) |

use std::fmt::Write as _;

use crate::lint::{Diagnostic, Severity, UNKNOWN_FOLDER, UNKNOWN_SECTION, UNKNOWN_SUBSCRIPTION};
use crate::listen::Flow;
use crate::model::Catalog;

/// How many unknown ids one diagnostic names; the rest are counted.
const LISTED_IDS: usize = 5;

/// The diagnostics about `flows` against `catalog`: for each flow in the order given,
/// `unknown_section`, or else `unknown_folder` then `unknown_subscription` (each at most once
/// per flow, naming the first few ids in order and counting the rest).
///
/// ```
/// use optout_relay::{Catalog, FlowFile, lint};
///
/// let flows = FlowFile::from_json(r#"{"version": 1, "flows": [{
///     "id": "crm", "section": "sec-1",
///     "listen": {"kinds": ["email_unsubscribe"], "subscriptions": ["123456", "999"]},
///     "webhook": {"method": "POST", "url": "https://crm.example.com/optout",
///                 "params": [{"name": "email", "source": "email"},
///                            {"name": "subscription", "source": "subscription_id"}]}
/// }]}"#)?;
/// let catalog: Catalog = serde_json::from_str(
///     r#"[{"id": "sec-1", "folders": [{"id": "news", "subscriptions": [{"id": "123456"}]}]}]"#,
/// )?;
/// let found = lint::lint_catalog(&flows.flows, &catalog);
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].code, lint::UNKNOWN_SUBSCRIPTION);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn lint_catalog<'a>(
    flows: impl IntoIterator<Item = &'a Flow>,
    catalog: &Catalog,
) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for flow in flows {
        let diagnostic = |code, severity, message: String| Diagnostic {
            code,
            severity,
            flow: flow.id.clone(),
            message,
        };
        let Some(section) = catalog.section(&flow.section) else {
            found.push(diagnostic(
                UNKNOWN_SECTION,
                Severity::Warning,
                format!(
                    "the catalog holds no section `{}`: the flow takes only that Section's \
                     opt-outs; fix \"section\" or add the Section to the catalog",
                    flow.section
                ),
            ));
            continue;
        };
        let folders = flow.listen.folders().into_iter().flatten();
        let missing: Vec<&str> = folders
            .filter(|f| section.folder(f).is_none())
            .map(|f| f.as_str())
            .collect();
        if !missing.is_empty() {
            let them = if missing.len() == 1 { "it" } else { "them" };
            found.push(diagnostic(
                UNKNOWN_FOLDER,
                Severity::Error,
                format!(
                    "the listen node narrows by {} section `{}` does not hold ({}): the flow \
                     could never match and the router refuses the flows; fix \
                     \"listen.folders\" or add {them} to the catalog",
                    count(missing.len(), "folder"),
                    flow.section,
                    listed(&missing),
                ),
            ));
        }
        let subscriptions = flow.listen.subscriptions().into_iter().flatten();
        let missing: Vec<&str> = subscriptions
            .filter(|s| !section.contains(s))
            .map(|s| s.as_str())
            .collect();
        if !missing.is_empty() {
            let them = if missing.len() == 1 { "it" } else { "them" };
            found.push(diagnostic(
                UNKNOWN_SUBSCRIPTION,
                Severity::Warning,
                format!(
                    "the listen node selects {} section `{}` does not hold ({}): no opt-out of \
                     {them} can arrive; fix \"listen.subscriptions\" or add {them} to the catalog",
                    count(missing.len(), "subscription"),
                    flow.section,
                    listed(&missing),
                ),
            ));
        }
    }
    found
}

/// `1 folder`, `3 folders`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `` `a`, `b` `` and, past [`LISTED_IDS`], `` and 3 more``.
fn listed(ids: &[&str]) -> String {
    let mut out = String::new();
    for (i, id) in ids.iter().take(LISTED_IDS).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "`{id}`");
    }
    if ids.len() > LISTED_IDS {
        let _ = write!(out, " and {} more", ids.len() - LISTED_IDS);
    }
    out
}
