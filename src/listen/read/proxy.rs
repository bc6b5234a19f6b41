//! The proxy itself: a deserializer, visitor, seed and accesses that wrap serde_json's and hand
//! the code they call the error type [`Failed`], so that every problem is recorded by kind and
//! path before a stand-in error with a fixed text goes on through serde_json.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

use serde::de::Error as _;

use super::track::{Chain, Failed, Track, captured_key};
use super::variant::{StrEnum, Struct, Tuple};
use crate::listen::error::{FlowFileError, FlowFileProblem, FoundKind};

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
