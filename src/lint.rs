//! Diagnostics about flow definitions: the article's traps and configuration mistakes, each with
//! a stable code (like clippy's lint names), a severity, the flow, and how to fix it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::FlowId;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing is lost.
    Note,
    /// Likely a mistake: opt-outs may be lost, duplicated or exposed.
    Warning,
    /// The flow cannot work as configured.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// One finding about a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Diagnostic {
    /// A stable, machine-readable code such as `entry_limit_loses_opt_outs`.
    pub code: &'static str,
    /// How serious it is.
    pub severity: Severity,
    /// The flow it is about.
    pub flow: FlowId,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] flow `{}`: {}",
            self.severity, self.code, self.flow, self.message
        )
    }
}
