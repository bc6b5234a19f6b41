//! The parts of reading an enum that hold no proxy: an enum written as a string (a unit variant
//! only) and the seeds that read a tuple or struct variant's value.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, Unexpected, VariantAccess,
    Visitor,
};

use serde::de::Error as _;

use super::track::Failed;

/// An enum written as a string: a unit variant.
pub(super) struct StrEnum<'v> {
    pub(super) variant: &'v str,
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
pub(super) struct UnitOnly;

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

/// A tuple variant's value.
pub(super) struct Tuple<V> {
    pub(super) len: usize,
    pub(super) visitor: V,
}

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Tuple<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        deserializer.deserialize_tuple(self.len, self.visitor)
    }
}

/// A struct variant's value.
pub(super) struct Struct<V> {
    pub(super) fields: &'static [&'static str],
    pub(super) visitor: V,
}

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Struct<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        deserializer.deserialize_struct("", self.fields, self.visitor)
    }
}
