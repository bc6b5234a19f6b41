//! `optout-relay`: the operator's command line. Checks a flow file, previews and test-sends the
//! request a flow makes for an event, and inspects and repairs a delivery store.
//!
//! Install with `cargo install --path . --features cli`; `optout-relay --help` lists the
//! commands, and the README shows each at work.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod flows;
mod input;
mod open;
mod out;
mod send;
mod store;

use out::{Format, Out};

const EXIT_CODES: &str = "\
Exit status:
  0  done (and nothing to report)
  1  the check failed: lint errors (or warnings with --deny-warnings), a test send that was
     not accepted, a replay of an id that is not a dead letter
  2  bad usage or input: an unknown option, an unreadable file, an invalid value
  3  the store failed, or the transport or runtime could not be set up";

/// The operator's command line for optout-relay: check flows, preview and test-send their
/// requests, inspect the delivery store and replay dead letters.
#[derive(Debug, Parser)]
#[command(name = "optout-relay", version, after_help = EXIT_CODES)]
struct Cli {
    /// `text` for people (aligned tables; colour only on a terminal, never with NO_COLOR set),
    /// `json` for scripts (one document on standard output).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every lint of a flow file: code, severity, flow, and how to fix it.
    Lint(flows::LintArgs),
    /// Which flows an event enters and why (or why not), and each flow's exact request as a
    /// curl command (personal data and secrets masked unless --unmasked).
    Preview(flows::PreviewArgs),
    /// Sends one flow's request for an event through the real transport, and shows the
    /// response and what the retry policy would do with it.
    Send(send::SendArgs),
    /// How many deliveries the store holds in each state, and each endpoint's state.
    Status(StoreArgs),
    /// Pending deliveries, a page at a time.
    Pending(store::ListArgs),
    /// Dead-lettered deliveries with the reason, a page at a time.
    Dead(store::ListArgs),
    /// Makes dead letters pending again, due now, with the retry policy's whole allowance.
    Replay(store::ReplayArgs),
    /// Stops sending to an endpoint: its deliveries are held (neither retried nor given up).
    Pause(store::EndpointArgs),
    /// Makes an endpoint healthy again and its held deliveries due now, in admission order.
    Resume(store::EndpointArgs),
    /// Deletes delivered and dead-lettered deliveries that ended long enough ago (they hold
    /// personal data); entries are kept.
    Purge(store::PurgeArgs),
}

/// The store a command works on.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The delivery store: `sqlite:PATH` (an existing file) or `postgres://USER@HOST/DB`
    /// (`postgresql://` too).
    // Read as text and checked by the command, so that no error repeats it (a URL may hold a
    // password, and clap's own errors quote the value).
    #[arg(
        long,
        env = "OPTOUT_RELAY_STORE",
        hide_env_values = true,
        value_name = "STORE"
    )]
    pub(crate) store: String,
}

/// Why a command failed, and so its exit status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The check the command made failed; what it found is already printed (exit 1).
    #[error("{0}")]
    Check(String),
    /// A file or value given is not valid (exit 2).
    #[error(transparent)]
    Input(Box<input::InputError>),
    /// A value given on the command line is not valid (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The store failed (exit 3).
    #[error("the store failed: {0}")]
    Store(#[from] optout_relay::store::StoreError),
    /// Something else the command needs failed (exit 3).
    #[error("{0}")]
    Runtime(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::Check(_) => 1,
            Self::Input(_) | Self::Usage(_) => 2,
            Self::Store(_) | Self::Runtime(_) => 3,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Check(_) => "check",
            Self::Input(_) => "input",
            Self::Usage(_) => "usage",
            Self::Store(_) => "store",
            Self::Runtime(_) => "runtime",
        }
    }
}

/// A path given on the command line.
pub(crate) type FilePath = PathBuf;

fn run(cli: Cli) -> Result<(), Failure> {
    let out = Out::new(cli.format);
    match cli.command {
        Command::Lint(args) => flows::lint(&args, out),
        Command::Preview(args) => flows::preview(&args, out),
        Command::Send(args) => block_on(send::send(args, out)),
        Command::Status(args) => block_on(store::status(args, out)),
        Command::Pending(args) => block_on(store::list(args, out, false)),
        Command::Dead(args) => block_on(store::list(args, out, true)),
        Command::Replay(args) => block_on(store::replay(args, out)),
        Command::Pause(args) => block_on(store::pause(args, out, false)),
        Command::Resume(args) => block_on(store::pause(args, out, true)),
        Command::Purge(args) => block_on(store::purge(args, out)),
    }
}

fn block_on<F: Future<Output = Result<(), Failure>>>(work: F) -> Result<(), Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?
        .block_on(work)
}

/// Whether the raw arguments ask for JSON (for errors found before they could be parsed).
fn wants_json(args: &[std::ffi::OsString]) -> bool {
    args.windows(2)
        .any(|pair| pair[0] == "--format" && pair[1] == "json")
        || args.iter().any(|a| a == "--format=json")
}

/// clap's error in words that never repeat a value given: clap quotes an unexpected argument or
/// an invalid value whole, and that may be a store URL with its password or a URL with an
/// Email in its query.
fn usage_message(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        Some(ContextValue::Strings(list)) => Some(list.join(", ")),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg).unwrap_or_else(|| "an argument".to_owned());
    let hint = "see `optout-relay --help`, or `optout-relay COMMAND --help`";
    match error.kind() {
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            let name = arg.split('=').next().unwrap_or_default();
            format!("unexpected option `{name}`; {hint}")
        }
        ErrorKind::UnknownArgument => {
            format!("unexpected argument (not repeated here: it may hold a secret); {hint}")
        }
        ErrorKind::InvalidSubcommand => format!("unknown command; {hint}"),
        // An option given last, with no value after it.
        ErrorKind::InvalidValue if matches!(error.get(ContextKind::InvalidValue), Some(ContextValue::String(v)) if v.is_empty()) =>
        {
            format!("`{arg}` needs a value; {hint}")
        }
        ErrorKind::InvalidValue => match context(ContextKind::ValidValue) {
            Some(valid) if !valid.is_empty() => {
                format!("invalid value for `{arg}`: expected one of {valid}")
            }
            _ => format!("invalid value for `{arg}`; {hint}"),
        },
        ErrorKind::ValueValidation => match std::error::Error::source(error) {
            Some(reason) => format!("invalid value for `{arg}`: {reason}"),
            None => format!("invalid value for `{arg}`; {hint}"),
        },
        // clap's context for these holds argument names (`--flow <ID>`), never a value given.
        ErrorKind::MissingRequiredArgument => {
            let missing = match error.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(list)) => list.clone(),
                Some(ContextValue::String(one)) => vec![one.clone()],
                _ => Vec::new(),
            };
            let mut names: Vec<String> = missing.iter().map(|name| format!("`{name}`")).collect();
            if missing.iter().any(|name| name.starts_with("--store")) {
                names.push("(or OPTOUT_RELAY_STORE set)".to_owned());
            }
            if names.is_empty() {
                format!("a required argument is missing; {hint}")
            } else {
                format!("missing {}; {hint}", names.join(" "))
            }
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            format!("a command is needed; {hint}")
        }
        ErrorKind::ArgumentConflict => match context(ContextKind::PriorArg) {
            // clap reports an option given twice as a conflict with itself.
            Some(prior) if prior == arg => format!("`{arg}` is given more than once; {hint}"),
            Some(prior) => format!("`{arg}` cannot be used with `{prior}`; {hint}"),
            None => format!("`{arg}` cannot be used with the arguments given; {hint}"),
        },
        ErrorKind::NoEquals => format!("`{arg}` needs its value after `=`; {hint}"),
        ErrorKind::TooManyValues => {
            format!("`{arg}` is given more values than it takes (a flag takes none); {hint}")
        }
        ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            format!("`{arg}` is given the wrong number of values; {hint}")
        }
        _ => match error.get(ContextKind::InvalidArg) {
            Some(_) => format!("`{arg}` cannot be read as given; {hint}"),
            None => format!("the command line cannot be read; {hint}"),
        },
    }
}

/// Writes `failure` to standard error, as JSON when asked. A closed standard error (`2>&1 |
/// head`) is not a reason to panic: the exit status still says what happened.
fn report(failure: &Failure, json: bool) {
    use std::io::Write as _;
    let text = if json {
        serde_json::json!({
            "error": {"kind": failure.kind(), "message": failure.to_string()}
        })
        .to_string()
    } else if let Failure::Check(_) = failure {
        // What the check found is on standard output already; this says why the status is 1.
        failure.to_string()
    } else {
        format!("error: {failure}")
    };
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = error.print();
                return ExitCode::SUCCESS;
            }
            let json = wants_json(&args);
            // No command at all: the help, on standard error, and the usage status.
            if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand && !json {
                let _ = error.print();
                return ExitCode::from(2);
            }
            let failure = Failure::Usage(usage_message(&error));
            report(&failure, json);
            return ExitCode::from(failure.code());
        }
    };
    let json = cli.format == Format::Json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            report(&failure, json);
            ExitCode::from(failure.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Failure;

    #[test]
    fn each_failure_has_its_exit_status() {
        let store = optout_relay::store::StoreError::new(
            optout_relay::store::StoreErrorKind::Unavailable,
            "down",
        );
        let codes: Vec<(&str, u8)> = [
            Failure::Check("lint failed".into()),
            Failure::Usage("bad".into()),
            Failure::Store(store),
            Failure::Runtime("no transport".into()),
        ]
        .iter()
        .map(|f| (f.kind(), f.code()))
        .collect();
        assert_eq!(
            codes,
            [("check", 1), ("usage", 2), ("store", 3), ("runtime", 3)]
        );
    }
}
