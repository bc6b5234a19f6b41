//! The Listen side's errors: an invalid Listen node or entry limit ([`ListenError`]), a
//! [`Router`](crate::Router) that cannot be built ([`RouterError`]), and a flow file that cannot
//! be read ([`FlowFileError`]).

use crate::model::ids::{FlowId, FolderId, SectionId};

/// A Listen node or flow definition is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// A Listen node takes no event kind.
    #[error("a listen node must take at least one event kind")]
    NoEventKind,
    /// A narrowing set (`subscriptions`, `folders`, `activities`, `origins`) is present but
    /// empty, which would match nothing. Leave it out to take any.
    #[error("`{field}` is empty and would match nothing; leave it out to take any")]
    EmptySet {
        /// The field: `subscriptions`, `folders`, `activities` or `origins`.
        field: &'static str,
    },
    /// An entry limit of zero entries, which would let nothing in.
    #[error("an entry limit must allow at least 1 entry")]
    ZeroEntries,
    /// An entry-limit time window that is zero or negative.
    #[error("an entry-limit window must be longer than zero")]
    NonPositiveWindow,
    /// An entry-limit window longer than [`EntryWindow::MAX`](crate::listen::EntryWindow::MAX), 100
    /// years: leave the window out to count every entry ever.
    #[error(
        "an entry-limit window must be at most 100 years; leave `within` out to count every entry ever"
    )]
    WindowTooLong,
    /// An entry-limit window with a fraction of a second.
    #[error("an entry-limit window must be a whole number of seconds")]
    WindowFraction,
    /// An entry-limit window that is neither an ISO 8601 duration nor a friendly one (the text
    /// is not repeated).
    #[error(
        "an entry-limit window must be written like \"7 days\", \"1 week\", \"1 month\", \"1 year\", \"36 hours\" or in ISO 8601 (\"P7D\", \"P1W\", \"P1M\", \"P1Y\", \"PT36H\")"
    )]
    UnreadableWindow,
}

/// A [`Router`](crate::Router) could not be built from the flows given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// Two flows share an id.
    #[error("flow id `{flow}` is used by more than one flow")]
    DuplicateFlow {
        /// The repeated id.
        flow: FlowId,
    },
    /// A flow narrows by a Folder that the catalog does not hold in the flow's Section, so the
    /// flow could never match: every opt-out it was meant to take would be lost.
    #[error(
        "flow `{flow}` narrows by folder `{folder}`, which the catalog does not hold in section `{section}`"
    )]
    UnknownFolder {
        /// The flow.
        flow: FlowId,
        /// The Folder.
        folder: FolderId,
        /// The flow's Section.
        section: SectionId,
    },
}

/// A flow file could not be read. Names the JSON path of the problem (such as
/// `flows[2].listen.kinds[0]`), what is wrong, and where it is in the text.
///
/// It is built from what went wrong and where, never from a parser's message, and repeats no
/// value from the file: not a string, not a number, not an unknown key or variant name, not a
/// flow id. Its text is bounded (well under 1 KiB) however large the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}{}", Position(*line, *column))]
pub struct FlowFileError {
    /// The JSON path to the offending value, `.` for the whole document. An unknown field is
    /// reported at the object holding it; map keys are cut at 64 characters.
    pub path: String,
    /// What was wrong and what was expected.
    pub problem: FlowFileProblem,
    /// 1-based line of the problem, `None` when not known.
    pub line: Option<usize>,
    /// 1-based column of the problem, `None` when not known (0 is before the line's first
    /// character, as at the end of an empty text).
    pub column: Option<usize>,
}

/// Where a [`FlowFileError`] is, as its text ends: ` (line 3, column 5)`, ` (line 3)`, or
/// nothing when not known.
struct Position(Option<usize>, Option<usize>);

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, " (line {line}, column {column})"),
            (Some(line), None) => write!(f, " (line {line})"),
            (None, _) => Ok(()),
        }
    }
}

/// The kind of a value found in a flow file where another was expected
/// ([`FlowFileProblem::InvalidType`], [`FlowFileProblem::InvalidValue`]): the value itself is
/// never kept. `Display` is the kind as the error shows it, such as `a string`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FoundKind {
    /// `a boolean`.
    Boolean,
    /// `a number` (integer or floating point).
    Number,
    /// `a string` (or a character).
    String,
    /// `bytes`.
    Bytes,
    /// `null`.
    Null,
    /// `an array`.
    Array,
    /// `an object`.
    Object,
    /// `an optional value`.
    OptionalValue,
    /// `a newtype struct`.
    NewtypeStruct,
    /// `an enum`.
    Enum,
    /// `a unit variant`.
    UnitVariant,
    /// `a newtype variant`.
    NewtypeVariant,
    /// `a tuple variant`.
    TupleVariant,
    /// `a struct variant`.
    StructVariant,
    /// `an object with no key`, where an enum written as an object needs its one key.
    ObjectWithNoKey,
    /// `an object with more than one key`, where an enum written as an object takes one key.
    ObjectWithManyKeys,
    /// `another value`.
    Other,
}

impl FoundKind {
    /// The kind as the error shows it, such as `a string`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Bytes => "bytes",
            Self::Null => "null",
            Self::Array => "an array",
            Self::Object => "an object",
            Self::OptionalValue => "an optional value",
            Self::NewtypeStruct => "a newtype struct",
            Self::Enum => "an enum",
            Self::UnitVariant => "a unit variant",
            Self::NewtypeVariant => "a newtype variant",
            Self::TupleVariant => "a tuple variant",
            Self::StructVariant => "a struct variant",
            Self::ObjectWithNoKey => "an object with no key",
            Self::ObjectWithManyKeys => "an object with more than one key",
            Self::Other => "another value",
        }
    }
}

impl std::fmt::Display for FoundKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong in a flow file ([`FlowFileError::problem`]). No variant holds a value from the
/// file: a value found is named by its kind only ([`FoundKind`]: `a string`, `a number`...),
/// and what was expected comes from the format.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowFileProblem {
    /// The text is not valid JSON.
    Syntax,
    /// The text ends inside a JSON value.
    Eof,
    /// More text follows the JSON document.
    TrailingCharacters,
    /// A value of the wrong type.
    InvalidType {
        /// The kind of value found, such as [`FoundKind::String`].
        found: FoundKind,
        /// What the format expects there, such as `"struct Flow"` or `"a sequence"`.
        expected: String,
    },
    /// A value of the right type that the format does not accept.
    InvalidValue {
        /// The kind of value found, such as [`FoundKind::Number`].
        found: FoundKind,
        /// What the format expects there, such as `"a nonzero u32"`.
        expected: String,
    },
    /// An array (or object) with the wrong number of elements.
    InvalidLength {
        /// How many there were.
        len: usize,
        /// What the format expects.
        expected: String,
    },
    /// A name that is none of the enum's variants (the name is not repeated: it may be a
    /// secret written in the wrong place).
    UnknownVariant {
        /// The variants accepted.
        expected: &'static [&'static str],
    },
    /// A key the object does not take (the key is not repeated, and the path names the object).
    UnknownField {
        /// The keys the object takes.
        expected: &'static [&'static str],
    },
    /// A required key is absent.
    MissingField {
        /// The key.
        field: &'static str,
    },
    /// A key appears twice in one object.
    DuplicateField {
        /// The key.
        field: &'static str,
    },
    /// A value the crate rejects, such as an empty id, an invalid parameter or header name, a
    /// URL with credentials or an empty `origins`: the reason, which never repeats the value.
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// The file's `version` is not one this crate reads (the number found is not repeated, as
    /// no value of the file is).
    Version {
        /// The version read, [`FLOW_FILE_VERSION`](crate::listen::FLOW_FILE_VERSION).
        expected: u32,
    },
    /// Two flows share an id (the id is not repeated).
    DuplicateFlowId {
        /// The index of the earlier flow with that id, in `flows`.
        first: usize,
    },
}

/// serde's way of listing names: `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``.
fn one_of(f: &mut std::fmt::Formatter<'_>, names: &[&str]) -> std::fmt::Result {
    match names {
        [] => f.write_str("nothing"),
        [one] => write!(f, "`{one}`"),
        [a, b] => write!(f, "`{a}` or `{b}`"),
        _ => {
            f.write_str("one of ")?;
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "`{name}`")?;
            }
            Ok(())
        }
    }
}

impl std::fmt::Display for FlowFileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syntax => f.write_str("the text is not valid JSON"),
            Self::Eof => f.write_str("the text ends inside a JSON value"),
            Self::TrailingCharacters => f.write_str("more text follows the JSON document"),
            Self::InvalidType { found, expected } => {
                write!(f, "invalid type: {found}, expected {expected}")
            }
            Self::InvalidValue { found, expected } => {
                write!(f, "invalid value: {found}, expected {expected}")
            }
            Self::InvalidLength { len, expected } => {
                write!(f, "invalid length {len}, expected {expected}")
            }
            Self::UnknownVariant { expected } => {
                f.write_str("unknown variant, expected ")?;
                one_of(f, expected)
            }
            Self::UnknownField { expected } => {
                f.write_str("unknown field, expected ")?;
                one_of(f, expected)
            }
            Self::MissingField { field } => write!(f, "missing field `{field}`"),
            Self::DuplicateField { field } => write!(f, "duplicate field `{field}`"),
            Self::Invalid { reason } => f.write_str(reason),
            Self::Version { expected } => {
                write!(f, "unsupported flow-file version, expected {expected}")
            }
            Self::DuplicateFlowId { first } => {
                write!(f, "the flow id is already used by flows[{first}]")
            }
        }
    }
}
