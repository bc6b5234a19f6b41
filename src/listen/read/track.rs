//! What the flow-file proxy keeps of a problem: where it is ([`Chain`], rendered as a JSON
//! path), the first one met ([`Track`]), the error type the proxied code sees ([`Failed`]), and
//! the bounded texts it is built from (never a value of the file).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, Expected, Unexpected};

use crate::listen::error::{FlowFileError, FlowFileProblem, FoundKind};

/// The longest map key kept for a path, in characters (longer ones are cut, with `…`).
pub(super) const MAX_KEY_CHARS: usize = 64;
/// The longest path reported, in bytes (longer ones are cut, with `…`).
pub(super) const MAX_PATH_BYTES: usize = 256;
/// The longest text kept for an expected value or a reason, in bytes.
pub(super) const MAX_TEXT_BYTES: usize = 256;
/// The text of the stand-in error that travels through serde_json.
pub(super) const STAND_IN: &str = "flow-file problem";

/// Where in the document a value is: a linked list on the stack, from the value to the root.
pub(super) enum Chain<'a> {
    Root,
    Key { parent: &'a Chain<'a>, key: &'a str },
    Index { parent: &'a Chain<'a>, index: usize },
}

impl Chain<'_> {
    /// The path as the error shows it (`flows[0].listen.kinds[0]`, `.` for the root), at most
    /// [`MAX_PATH_BYTES`] long.
    pub(super) fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut chain = self;
        loop {
            match chain {
                Chain::Root => break,
                Chain::Key { parent, .. } | Chain::Index { parent, .. } => {
                    segments.push(chain);
                    chain = parent;
                }
            }
        }
        let mut path = String::new();
        for segment in segments.iter().rev() {
            match segment {
                Chain::Key { key, .. } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Chain::Index { index, .. } => path.push_str(&format!("[{index}]")),
                Chain::Root => {}
            }
            if path.len() > MAX_PATH_BYTES {
                break;
            }
        }
        if path.is_empty() {
            return ".".to_owned();
        }
        bounded(&path, MAX_PATH_BYTES)
    }
}

/// The first problem met and where: the innermost proxy that sees an error records it.
#[derive(Default)]
pub(super) struct Track {
    first: RefCell<Option<(String, Option<FlowFileProblem>)>>,
}

impl Track {
    pub(super) fn record(&self, at: &Chain<'_>, problem: Option<FlowFileProblem>) {
        let mut first = self.first.borrow_mut();
        if first.is_none() {
            *first = Some((at.render(), problem));
        }
    }

    /// An error of the deserializer below, kept in `stash` while [`Failed::Below`] goes up
    /// through code that only knows the proxy's error type.
    pub(super) fn lift<E>(&self, at: &Chain<'_>, error: E, stash: &mut Option<E>) -> Failed {
        self.record(at, None);
        *stash = Some(error);
        Failed::Below
    }

    /// A [`Failed`] for the deserializer below: a problem is recorded and replaced by a stand-in
    /// with a fixed text.
    pub(super) fn lower<E: de::Error>(&self, at: &Chain<'_>, failed: Failed) -> E {
        if let Failed::Problem(problem) = failed {
            self.record(at, Some(problem));
        }
        E::custom(STAND_IN)
    }

    /// As [`Track::lower`], giving back the error from below that [`Failed::Below`] stands for.
    pub(super) fn lower_stashed<E: de::Error>(
        &self,
        at: &Chain<'_>,
        failed: Failed,
        stash: &mut Option<E>,
    ) -> E {
        match (failed, stash.take()) {
            (Failed::Below, Some(error)) => error,
            (failed, _) => self.lower(at, failed),
        }
    }

    /// The error for serde_json's `error`: the recorded problem for a data error, the category
    /// for malformed JSON; `trailing` when it came from the check for text after the document.
    pub(super) fn error(&self, error: serde_json::Error, trailing: bool) -> FlowFileError {
        let (path, recorded) = self
            .first
            .borrow_mut()
            .take()
            .unwrap_or_else(|| (".".to_owned(), None));
        let problem = match error.classify() {
            serde_json::error::Category::Eof => FlowFileProblem::Eof,
            _ if trailing => FlowFileProblem::TrailingCharacters,
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                FlowFileProblem::Syntax
            }
            serde_json::error::Category::Data => recorded.unwrap_or(FlowFileProblem::Invalid {
                reason: "the value does not fit the flow-file format".to_owned(),
            }),
        };
        FlowFileError {
            path: if trailing { ".".to_owned() } else { path },
            problem,
            // serde_json says line 0 when it knows no position; column 0 is before the line's
            // first character (the end of an empty text).
            line: (error.line() > 0).then_some(error.line()),
            column: (error.line() > 0).then_some(error.column()),
        }
    }
}

/// The error type the proxied code sees.
#[derive(Debug)]
pub(super) enum Failed {
    /// What went wrong, without the value.
    Problem(FlowFileProblem),
    /// An error of the deserializer below, kept by the proxy that met it.
    Below,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(STAND_IN)
    }
}

impl std::error::Error for Failed {}

impl de::Error for Failed {
    fn custom<T: fmt::Display>(reason: T) -> Self {
        Self::Problem(FlowFileProblem::Invalid {
            reason: bounded(reason, MAX_TEXT_BYTES),
        })
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::Problem(FlowFileProblem::InvalidType {
            found: category(&unexpected),
            expected: bounded(format_args!("{expected}"), MAX_TEXT_BYTES),
        })
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::Problem(FlowFileProblem::InvalidValue {
            found: category(&unexpected),
            expected: bounded(format_args!("{expected}"), MAX_TEXT_BYTES),
        })
    }

    fn invalid_length(len: usize, expected: &dyn Expected) -> Self {
        Self::Problem(FlowFileProblem::InvalidLength {
            len,
            expected: bounded(format_args!("{expected}"), MAX_TEXT_BYTES),
        })
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Self::Problem(FlowFileProblem::UnknownVariant { expected })
    }

    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        Self::Problem(FlowFileProblem::UnknownField { expected })
    }

    fn missing_field(field: &'static str) -> Self {
        Self::Problem(FlowFileProblem::MissingField { field })
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::Problem(FlowFileProblem::DuplicateField { field })
    }
}

/// What kind of value was found, never the value.
pub(super) fn category(unexpected: &Unexpected<'_>) -> FoundKind {
    match unexpected {
        Unexpected::Bool(_) => FoundKind::Boolean,
        Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => FoundKind::Number,
        Unexpected::Char(_) | Unexpected::Str(_) => FoundKind::String,
        Unexpected::Bytes(_) => FoundKind::Bytes,
        Unexpected::Unit => FoundKind::Null,
        Unexpected::Seq => FoundKind::Array,
        Unexpected::Map => FoundKind::Object,
        Unexpected::Option => FoundKind::OptionalValue,
        Unexpected::NewtypeStruct => FoundKind::NewtypeStruct,
        Unexpected::Enum => FoundKind::Enum,
        Unexpected::UnitVariant => FoundKind::UnitVariant,
        Unexpected::NewtypeVariant => FoundKind::NewtypeVariant,
        Unexpected::TupleVariant => FoundKind::TupleVariant,
        Unexpected::StructVariant => FoundKind::StructVariant,
        Unexpected::Other(_) => FoundKind::Other,
    }
}

/// `text` formatted, cut after `max` bytes (with `…`): formatting stops there, however long
/// the text would be.
pub(super) fn bounded(text: impl fmt::Display, max: usize) -> String {
    struct Limit {
        out: String,
        max: usize,
        cut: bool,
    }
    impl fmt::Write for Limit {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.max - self.out.len();
            if s.len() <= room {
                self.out.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.out.push_str(&s[..end]);
            self.cut = true;
            Err(fmt::Error)
        }
    }
    let mut limit = Limit {
        out: String::new(),
        max,
        cut: false,
    };
    // An error here only means the limit was reached.
    let _ = fmt::write(&mut limit, format_args!("{text}"));
    if limit.cut {
        limit.out.push('…');
    }
    limit.out
}

/// A map key kept for a path: control characters escaped, cut at [`MAX_KEY_CHARS`].
pub(super) fn captured_key(key: &str) -> String {
    let mut out: String = key
        .chars()
        .take(MAX_KEY_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if key.chars().nth(MAX_KEY_CHARS).is_some() {
        out.push('…');
    }
    out
}
