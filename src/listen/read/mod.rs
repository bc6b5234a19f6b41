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

mod proxy;
mod track;
mod variant;

pub(crate) use proxy::from_str;

/// Reads one of the crate's JSON documents (an [`OptOutEvent`](crate::OptOutEvent), a
/// [`Profile`](crate::Profile), a [`Catalog`](crate::Catalog)) the way
/// [`FlowFile::from_json`](crate::FlowFile::from_json) reads a flow file: an error names the
/// JSON path, what is wrong and where, and never repeats a value of the text (an Email, a
/// Mobile, a token written in the wrong place).
///
/// ```
/// use optout_relay::Profile;
/// use optout_relay::listen::read_json;
///
/// let profile: Profile = read_json(r#"{"id": "p-1", "email": "ada@example.com"}"#)?;
/// assert_eq!(profile.id.as_str(), "p-1");
///
/// let text = r#"{"id": "p-1", "email": {"address": "ada@example.com"}}"#;
/// let error = read_json::<Profile>(text).unwrap_err();
/// assert_eq!(error.path, "email");
/// assert_eq!(error.to_string(), "email: invalid type: an object, expected a string (line 1, column 24)");
/// assert!(!error.to_string().contains("ada"), "{error}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// A [`FlowFileError`](crate::listen::FlowFileError), as for a flow file (its `Version` and
/// `DuplicateFlowId` problems are a flow file's only).
pub fn read_json<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, crate::listen::FlowFileError> {
    from_str(text)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::proxy::from_str;
    use super::track::bounded;
    use crate::listen::error::{FlowFileProblem, FoundKind};

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
