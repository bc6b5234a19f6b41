//! Reading a JSON body with serde without ever failing on a valid JSON value: a flat object's
//! entries in order ([`MaybeEntries`]) and an envelope's own fields ([`EnvelopeBody`]). Repeats
//! are kept so that they can be checked, and serde's messages (which may quote the input) never
//! reach an error.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::receive::raw::{Entries, RawValue};

/// A JSON value that should be an object: its entries in order (repeats kept), or the fact that
/// it is something else.
pub(super) enum MaybeEntries {
    Object(Entries),
    Other,
}

/// A JSON value that should be an envelope object, or the fact that it is something else.
pub(super) enum EnvelopeBody {
    Object(Envelope),
    Other,
}

/// An envelope: its own fields, its `data`, and whether one of them came twice.
pub(super) struct Envelope {
    pub(super) fields: EnvelopeFields,
    pub(super) data: Option<MaybeEntries>,
    /// `type`, `timestamp` or `data` appears more than once.
    pub(super) repeated: bool,
}

/// The envelope's own fields.
#[derive(Default)]
pub(super) struct EnvelopeFields {
    /// `type`.
    pub(super) kind: Option<RawValue>,
    /// `timestamp`.
    pub(super) timestamp: Option<RawValue>,
}

impl<'de> serde::Deserialize<'de> for MaybeEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntriesVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for EnvelopeBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EnvelopeVisitor)
    }
}

/// The value a visitor gives for anything but an object.
trait OtherValue {
    fn other() -> Self;
}

impl OtherValue for MaybeEntries {
    fn other() -> Self {
        Self::Other
    }
}

impl OtherValue for EnvelopeBody {
    fn other() -> Self {
        Self::Other
    }
}

/// The visitor methods of every value but an object, each giving [`OtherValue::other`] (a
/// sequence is read to its end first).
macro_rules! not_an_object {
    ($de:lifetime) => {
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        not_an_object!(
            visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str
        );

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Self::Value::other())
        }

        fn visit_seq<A: SeqAccess<$de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Self::Value::other())
        }
    };
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok(Self::Value::other())
        })*
    };
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = MaybeEntries;

    not_an_object!('de);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value::<serde_json::Value>()?;
            entries.push((name, RawValue::from_json(value)));
        }
        Ok(MaybeEntries::Object(entries))
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = EnvelopeBody;

    not_an_object!('de);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = EnvelopeFields::default();
        let mut data = None;
        let mut repeated = false;
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "type" | "timestamp" => {
                    let value = RawValue::from_json(map.next_value::<serde_json::Value>()?);
                    let slot = if name == "type" {
                        &mut fields.kind
                    } else {
                        &mut fields.timestamp
                    };
                    repeated |= slot.is_some();
                    *slot = value;
                }
                "data" => {
                    repeated |= data.is_some();
                    data = Some(map.next_value::<MaybeEntries>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(EnvelopeBody::Object(Envelope {
            fields,
            data,
            repeated,
        }))
    }
}
