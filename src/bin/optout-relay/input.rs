//! Reading the files a command is given: flows, catalog, event, Profile. Every error names the
//! file, the JSON path and what to fix, and repeats no value of the file.

use std::fmt;
use std::path::{Path, PathBuf};

use optout_relay::listen::{FlowFileError, read_json};
use optout_relay::{Catalog, FlowFile, OptOutEvent, Profile, Router};

use crate::Failure;

/// What a file holds, for the error that names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Holds {
    Flows,
    Catalog,
    Event,
    Profile,
}

impl fmt::Display for Holds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flows => "a flow file ({\"version\": 1, \"flows\": [...]})",
            Self::Catalog => "a catalog (a JSON array of Sections)",
            Self::Event => "an opt-out event (a JSON object)",
            Self::Profile => "a Profile (a JSON object)",
        })
    }
}

/// A file that could not be read or is not what it should hold.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    /// The file could not be read.
    #[error("{}: cannot read it: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The file is larger than any file a command reads (such as a log given by mistake, or
    /// `/dev/zero`).
    #[error("{}: larger than {} MiB; give the flow, catalog, event or Profile file itself", file.display(), MAX_FILE >> 20)]
    TooLarge { file: PathBuf },
    /// The file is not UTF-8 text (JSON is).
    #[error("{}: not UTF-8 text (byte {at} is not); give the JSON file itself", file.display())]
    NotText { file: PathBuf, at: usize },
    /// The file is not valid: the JSON path, the problem and where.
    #[error("{}: {error}\n  the file should hold {holds}", file.display())]
    Json {
        file: PathBuf,
        holds: Holds,
        error: FlowFileError,
    },
    /// The flows cannot be routed with this catalog.
    #[error("{}: {error}", file.display())]
    Router {
        file: PathBuf,
        error: optout_relay::listen::RouterError,
    },
}

/// The largest file a command reads: far above any flow file or catalog, and a bound on the
/// memory a wrong path can take.
const MAX_FILE: u64 = 64 << 20;

fn read(file: &Path) -> Result<String, Failure> {
    use std::io::Read as _;
    let failed = |error| {
        Failure::Input(Box::new(InputError::Read {
            file: file.to_owned(),
            error,
        }))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|opened| opened.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(failed)?;
    // The size first: a large file is refused as large whatever it holds.
    if bytes.len() as u64 > MAX_FILE {
        return Err(Failure::Input(Box::new(InputError::TooLarge {
            file: file.to_owned(),
        })));
    }
    String::from_utf8(bytes).map_err(|error| {
        Failure::Input(Box::new(InputError::NotText {
            file: file.to_owned(),
            at: error.utf8_error().valid_up_to(),
        }))
    })
}

fn json<T: serde::de::DeserializeOwned>(file: &Path, holds: Holds) -> Result<T, Failure> {
    read_json(&read(file)?).map_err(|error| {
        Failure::Input(Box::new(InputError::Json {
            file: file.to_owned(),
            holds,
            error,
        }))
    })
}

pub(crate) fn flows(file: &Path) -> Result<FlowFile, Failure> {
    FlowFile::from_json(&read(file)?).map_err(|error| {
        Failure::Input(Box::new(InputError::Json {
            file: file.to_owned(),
            holds: Holds::Flows,
            error,
        }))
    })
}

pub(crate) fn catalog(file: Option<&Path>) -> Result<Catalog, Failure> {
    file.map_or(Ok(Catalog::default()), |file| json(file, Holds::Catalog))
}

pub(crate) fn event(file: &Path) -> Result<OptOutEvent, Failure> {
    json(file, Holds::Event)
}

pub(crate) fn profile(file: &Path) -> Result<Profile, Failure> {
    json(file, Holds::Profile)
}

/// The router of `flows` with `catalog`.
pub(crate) fn router(file: &Path, flows: FlowFile, catalog: &Catalog) -> Result<Router, Failure> {
    Router::new(flows.flows, catalog).map_err(|error| {
        Failure::Input(Box::new(InputError::Router {
            file: file.to_owned(),
            error,
        }))
    })
}
