//! Reading a flow file: a proxy around serde_json's deserializer that records WHAT went wrong
//! and WHERE, so that a [`FlowFileError`] is built from the kind of problem, the JSON path and
//! the position, never from a message text (which may quote the file: a token, a password, an
//! Email written in the wrong place).
//!
//! The proxy wraps every deserializer, visitor, seed and access it hands on. The code it calls
//! (derived or written by hand) sees an error type of its own, [`Failed`]: when that code says
//! `unknown_variant(value, EXPECTED)`, `unknown_field`, `invalid_type(unexpected, expected)`,
//! `missing_field` or `custom`, the value is dropped there and the problem kept as a
//! [`FlowFileProblem`] (the found value as a category only: "a string", "a number"...). The
//! problem is recorded with the path where it arose, and a stand-in error with a fixed text
//! travels down through serde_json, which adds the line and column. Errors serde_json raises by
//! itself (malformed JSON) are classified with [`serde_json::Error::classify`].
//!
//! serde_json would itself raise "invalid type" errors quoting the string it found when a value
//! has the wrong type for the hint it was given (`deserialize_struct` on a string). The proxy
//! never gives it such a hint: values are read with `deserialize_any` (enums included, with the
//! proxy's own enum access), and the wrapped visitor, which has the proxy's error type, reports
//! the mismatch.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};

use serde::de::Error as _;

use crate::listen::error::{FlowFileError, FlowFileProblem, FoundKind};

/// The longest map key kept for a path, in characters (longer ones are cut, with `…`).
const MAX_KEY_CHARS: usize = 64;
/// The longest path reported, in bytes (longer ones are cut, with `…`).
const MAX_PATH_BYTES: usize = 256;
/// The longest text kept for an expected value or a reason, in bytes.
const MAX_TEXT_BYTES: usize = 256;
/// The text of the stand-in error that travels through serde_json.
const STAND_IN: &str = "flow-file problem";

/// Reads `T` from `text` through the proxy, and checks that nothing follows it.
pub(crate) fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> Result<T, FlowFileError> {
    let track = Track::default();
    let mut json = serde_json::Deserializer::from_str(text);
    let mut stash = None;
    let read = T::deserialize(De {
        inner: &mut json,
        at: &Chain::Root,
        track: &track,
        stash: &mut stash,
        key: None,
    });
    let value = read.map_err(|failed| {
        let error = track.lower_stashed(&Chain::Root, failed, &mut stash);
        track.error(error, false)
    })?;
    json.end().map_err(|error| track.error(error, true))?;
    Ok(value)
}

/// Where in the document a value is: a linked list on the stack, from the value to the root.
enum Chain<'a> {
    Root,
    Key { parent: &'a Chain<'a>, key: &'a str },
    Index { parent: &'a Chain<'a>, index: usize },
}

impl Chain<'_> {
    /// The path as the error shows it (`flows[0].listen.kinds[0]`, `.` for the root), at most
    /// [`MAX_PATH_BYTES`] long.
    fn render(&self) -> String {
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
struct Track {
    first: RefCell<Option<(String, Option<FlowFileProblem>)>>,
}

impl Track {
    fn record(&self, at: &Chain<'_>, problem: Option<FlowFileProblem>) {
        let mut first = self.first.borrow_mut();
        if first.is_none() {
            *first = Some((at.render(), problem));
        }
    }

    /// An error of the deserializer below, kept in `stash` while [`Failed::Below`] goes up
    /// through code that only knows the proxy's error type.
    fn lift<E>(&self, at: &Chain<'_>, error: E, stash: &mut Option<E>) -> Failed {
        self.record(at, None);
        *stash = Some(error);
        Failed::Below
    }

    /// A [`Failed`] for the deserializer below: a problem is recorded and replaced by a stand-in
    /// with a fixed text.
    fn lower<E: de::Error>(&self, at: &Chain<'_>, failed: Failed) -> E {
        if let Failed::Problem(problem) = failed {
            self.record(at, Some(problem));
        }
        E::custom(STAND_IN)
    }

    /// As [`Track::lower`], giving back the error from below that [`Failed::Below`] stands for.
    fn lower_stashed<E: de::Error>(
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
    fn error(&self, error: serde_json::Error, trailing: bool) -> FlowFileError {
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
enum Failed {
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
fn category(unexpected: &Unexpected<'_>) -> FoundKind {
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
fn bounded(text: impl fmt::Display, max: usize) -> String {
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
fn captured_key(key: &str) -> String {
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

/// The proxy deserializer. In value position every type hint but a few becomes
/// `deserialize_any` (see the module docs); in key position (`key` is `Some`), hints are
/// forwarded as they are and the key's text is captured for the path.
struct De<'a, D, E> {
    inner: D,
    at: &'a Chain<'a>,
    track: &'a Track,
    stash: &'a mut Option<E>,
    key: Option<&'a mut Option<String>>,
}

macro_rules! hinted {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Failed> {
            let (at, track, stash) = (self.at, self.track, self.stash);
            let in_key = self.key.is_some();
            let visitor = Wrap { inner: visitor, at, track, key: self.key };
            let read = if in_key {
                self.inner.$method($($arg,)* visitor)
            } else {
                self.inner.deserialize_any(visitor)
            };
            read.map_err(|error| track.lift(at, error, stash))
        }
    )*};
}

/// Methods whose hint is passed on as it is (no value of the file is read under another type).
macro_rules! forwarded {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Failed> {
            let (at, track, stash) = (self.at, self.track, self.stash);
            let visitor = Wrap { inner: visitor, at, track, key: self.key };
            self.inner.$method($($arg,)* visitor).map_err(|error| track.lift(at, error, stash))
        }
    )*};
}

impl<'de, D: Deserializer<'de, Error = E>, E: de::Error> Deserializer<'de> for De<'_, D, E> {
    type Error = Failed;

    hinted! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_identifier();
    }

    forwarded! {
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_newtype_struct(name: &'static str);
        deserialize_ignored_any();
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failed> {
        let (at, track, stash) = (self.at, self.track, self.stash);
        let visitor = EnumVisitor {
            inner: visitor,
            at,
            track,
        };
        (self.inner.deserialize_any(visitor)).map_err(|error| track.lift(at, error, stash))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The proxy visitor: hands the wrapped visitor the proxy's error type and accesses.
struct Wrap<'a, V> {
    inner: V,
    at: &'a Chain<'a>,
    track: &'a Track,
    key: Option<&'a mut Option<String>>,
}

macro_rules! plain {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            let (at, track) = (self.at, self.track);
            self.inner.$method(v).map_err(|failed| track.lower(at, failed))
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    plain! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        if let Some(key) = self.key {
            *key = Some(captured_key(v));
        }
        let (at, track) = (self.at, self.track);
        self.inner
            .visit_str(v)
            .map_err(|failed| track.lower(at, failed))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        if let Some(key) = self.key {
            *key = Some(captured_key(v));
        }
        let (at, track) = (self.at, self.track);
        (self.inner.visit_borrowed_str(v)).map_err(|failed| track.lower(at, failed))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        if let Some(key) = self.key {
            *key = Some(captured_key(&v));
        }
        let (at, track) = (self.at, self.track);
        self.inner
            .visit_string(v)
            .map_err(|failed| track.lower(at, failed))
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        let (at, track) = (self.at, self.track);
        self.inner
            .visit_unit()
            .map_err(|failed| track.lower(at, failed))
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        let (at, track) = (self.at, self.track);
        self.inner
            .visit_none()
            .map_err(|failed| track.lower(at, failed))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        let (at, track) = (self.at, self.track);
        let mut stash = None;
        let read = self.inner.visit_some(De {
            inner: deserializer,
            at,
            track,
            stash: &mut stash,
            key: None,
        });
        read.map_err(|failed| track.lower_stashed(at, failed, &mut stash))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        let (at, track) = (self.at, self.track);
        let mut stash = None;
        let read = self.inner.visit_newtype_struct(De {
            inner: deserializer,
            at,
            track,
            stash: &mut stash,
            key: None,
        });
        read.map_err(|failed| track.lower_stashed(at, failed, &mut stash))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let (at, track) = (self.at, self.track);
        let mut stash = None;
        let read = self.inner.visit_seq(Seq {
            inner: seq,
            at,
            track,
            stash: &mut stash,
            index: 0,
        });
        read.map_err(|failed| track.lower_stashed(at, failed, &mut stash))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let (at, track) = (self.at, self.track);
        let mut stash = None;
        let read = self.inner.visit_map(Map {
            inner: map,
            at,
            track,
            stash: &mut stash,
            key: None,
        });
        read.map_err(|failed| track.lower_stashed(at, failed, &mut stash))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, _data: A) -> Result<V::Value, A::Error> {
        // serde_json calls this only for `deserialize_enum`, which the proxy never forwards.
        let problem = Failed::invalid_type(Unexpected::Enum, &self.inner);
        Err(self.track.lower(self.at, problem))
    }
}

/// A sequence: each element's path is its index.
struct Seq<'a, A, E> {
    inner: A,
    at: &'a Chain<'a>,
    track: &'a Track,
    stash: &'a mut Option<E>,
    index: usize,
}

impl<'de, A: SeqAccess<'de, Error = E>, E> SeqAccess<'de> for Seq<'_, A, E> {
    type Error = Failed;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Failed> {
        let at = Chain::Index {
            parent: self.at,
            index: self.index,
        };
        self.index += 1;
        let track = self.track;
        let seed = Seed {
            inner: seed,
            at: &at,
            track,
            key: None,
        };
        let read = self.inner.next_element_seed(seed);
        read.map_err(|error| track.lift(&at, error, self.stash))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A map (a JSON object): the key is read at the map's path, its value at the key's path.
struct Map<'a, A, E> {
    inner: A,
    at: &'a Chain<'a>,
    track: &'a Track,
    stash: &'a mut Option<E>,
    /// The last key read, as captured for the path.
    key: Option<String>,
}

impl<'de, A: MapAccess<'de, Error = E>, E> MapAccess<'de> for Map<'_, A, E> {
    type Error = Failed;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Failed> {
        let (at, track) = (self.at, self.track);
        self.key = None;
        let seed = Seed {
            inner: seed,
            at,
            track,
            key: Some(&mut self.key),
        };
        let read = self.inner.next_key_seed(seed);
        read.map_err(|error| track.lift(at, error, self.stash))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Failed> {
        let key = self.key.take().unwrap_or_default();
        let at = Chain::Key {
            parent: self.at,
            key: &key,
        };
        let track = self.track;
        let seed = Seed {
            inner: seed,
            at: &at,
            track,
            key: None,
        };
        let read = self.inner.next_value_seed(seed);
        read.map_err(|error| track.lift(&at, error, self.stash))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// The proxy seed: hands the wrapped seed the proxy deserializer.
struct Seed<'a, T> {
    inner: T,
    at: &'a Chain<'a>,
    track: &'a Track,
    key: Option<&'a mut Option<String>>,
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T::Value, D::Error> {
        let (at, track) = (self.at, self.track);
        let mut stash = None;
        let read = self.inner.deserialize(De {
            inner: deserializer,
            at,
            track,
            stash: &mut stash,
            key: self.key,
        });
        read.map_err(|failed| track.lower_stashed(at, failed, &mut stash))
    }
}

/// Reads an enum from `deserialize_any`: a string is a unit variant, an object with one key a
/// variant with a value; anything else is the wrong type, reported by the proxy.
struct EnumVisitor<'a, V> {
    inner: V,
    at: &'a Chain<'a>,
    track: &'a Track,
}

impl<V> EnumVisitor<'_, V> {
    fn wrong_type<'de, E: de::Error>(self, found: Unexpected<'_>) -> E
    where
        V: Visitor<'de>,
    {
        let problem = Failed::invalid_type(found, &self.inner);
        self.track.lower(self.at, problem)
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for EnumVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        let (at, track) = (self.at, self.track);
        let access = StrEnum { variant: v };
        self.inner
            .visit_enum(access)
            .map_err(|failed| track.lower(at, failed))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let (at, track) = (self.at, self.track);
        let mut stash = None;
        let access = MapEnum(Map {
            inner: map,
            at,
            track,
            stash: &mut stash,
            key: None,
        });
        let read = self.inner.visit_enum(access);
        read.map_err(|failed| track.lower_stashed(at, failed, &mut stash))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V::Value, E> {
        Err(self.wrong_type(Unexpected::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        Err(self.wrong_type(Unexpected::Signed(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        Err(self.wrong_type(Unexpected::Unsigned(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        Err(self.wrong_type(Unexpected::Float(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        Err(self.wrong_type(Unexpected::Unit))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<V::Value, A::Error> {
        Err(self.wrong_type(Unexpected::Seq))
    }
}

/// An enum written as a string: a unit variant.
struct StrEnum<'v> {
    variant: &'v str,
}

impl<'de> EnumAccess<'de> for StrEnum<'_> {
    type Error = Failed;
    type Variant = UnitOnly;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, UnitOnly), Failed> {
        let name: de::value::StrDeserializer<'_, Failed> = self.variant.into_deserializer();
        Ok((seed.deserialize(name)?, UnitOnly))
    }
}

/// The variant of an enum written as a string: it has no value.
struct UnitOnly;

impl<'de> VariantAccess<'de> for UnitOnly {
    type Error = Failed;

    fn unit_variant(self) -> Result<(), Failed> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Failed> {
        Err(Failed::invalid_type(
            Unexpected::Str(""),
            &"an object holding the variant and its value",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Failed> {
        Err(Failed::invalid_type(Unexpected::Str(""), &visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failed> {
        Err(Failed::invalid_type(Unexpected::Str(""), &visitor))
    }
}

/// An enum written as an object: its one key is the variant, the key's value the variant's.
struct MapEnum<'a, A, E>(Map<'a, A, E>);

const ONE_KEY: &str = "an object with one key, the variant";

impl<'de, A: MapAccess<'de, Error = E>, E> EnumAccess<'de> for MapEnum<'_, A, E> {
    type Error = Failed;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(
        mut self,
        seed: S,
    ) -> Result<(S::Value, Self), Failed> {
        match self.0.next_key_seed(seed)? {
            Some(variant) => Ok((variant, self)),
            None => Err(Failed::Problem(FlowFileProblem::InvalidValue {
                found: FoundKind::ObjectWithNoKey,
                expected: ONE_KEY.to_owned(),
            })),
        }
    }
}

impl<'de, A: MapAccess<'de, Error = E>, E> MapEnum<'_, A, E> {
    /// Nothing may follow the variant.
    fn end(mut self) -> Result<(), Failed> {
        match self.0.next_key_seed(PhantomData::<de::IgnoredAny>)? {
            None => Ok(()),
            Some(_) => Err(Failed::Problem(FlowFileProblem::InvalidValue {
                found: FoundKind::ObjectWithManyKeys,
                expected: ONE_KEY.to_owned(),
            })),
        }
    }
}

impl<'de, A: MapAccess<'de, Error = E>, E> VariantAccess<'de> for MapEnum<'_, A, E> {
    type Error = Failed;

    fn unit_variant(mut self) -> Result<(), Failed> {
        self.0.next_value_seed(PhantomData::<()>)?;
        self.end()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        mut self,
        seed: T,
    ) -> Result<T::Value, Failed> {
        let value = self.0.next_value_seed(seed)?;
        self.end()?;
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(
        mut self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Failed> {
        let value = self.0.next_value_seed(Tuple { len, visitor })?;
        self.end()?;
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        mut self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failed> {
        let value = self.0.next_value_seed(Struct { fields, visitor })?;
        self.end()?;
        Ok(value)
    }
}

/// A tuple variant's value.
struct Tuple<V> {
    len: usize,
    visitor: V,
}

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Tuple<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        deserializer.deserialize_tuple(self.len, self.visitor)
    }
}

/// A struct variant's value.
struct Struct<V> {
    fields: &'static [&'static str],
    visitor: V,
}

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Struct<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        deserializer.deserialize_struct("", self.fields, self.visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{FlowFileProblem, FoundKind, bounded, from_str};

    #[derive(Debug, serde::Deserialize)]
    struct Keyed {
        #[allow(dead_code, reason = "only read")]
        map: BTreeMap<String, u32>,
    }

    #[test]
    fn user_map_keys_are_cut_in_paths() {
        let key = format!("{}\n{}", "k".repeat(40), "k".repeat(10_000));
        let text = format!(
            "{{\"map\": {{\"ok\": 1, {}: \"alice\"}}}}",
            serde_json::json!(key)
        );
        let error = from_str::<Keyed>(&text).unwrap_err();
        assert_eq!(
            error.path,
            format!("map.{}\\n{}…", "k".repeat(40), "k".repeat(23))
        );
        assert_eq!(
            error.problem,
            FlowFileProblem::InvalidType {
                found: FoundKind::String,
                expected: "u32".into()
            }
        );
        // The closing quote of the string found.
        assert_eq!((error.line, error.column), (Some(1), Some(10_071)));
    }

    #[test]
    fn found_values_are_named_by_kind() {
        for (text, found) in [
            ("\"alice\"", FoundKind::String),
            ("-1", FoundKind::Number),
            ("1.5", FoundKind::Number),
            ("true", FoundKind::Boolean),
            ("null", FoundKind::Null),
            ("[\"alice\"]", FoundKind::Array),
            ("{\"alice\": 1}", FoundKind::Object),
        ] {
            let error = from_str::<String>(text).err();
            if found == FoundKind::String {
                assert!(error.is_none());
                continue;
            }
            assert_eq!(
                error.unwrap().problem,
                FlowFileProblem::InvalidType {
                    found,
                    expected: "a string".into()
                },
                "{text}"
            );
        }
        assert_eq!(
            from_str::<u8>("300").unwrap_err().problem,
            FlowFileProblem::InvalidValue {
                found: FoundKind::Number,
                expected: "u8".into()
            }
        );
    }

    #[test]
    fn texts_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcd", 3), "abc…");
        assert_eq!(bounded("aé", 2), "a…");
        assert_eq!(bounded(format_args!("{}", "x".repeat(1 << 20)), 4), "xxxx…");
    }
}
