//! A request's parameters as they arrived, before any is checked: names and raw values in
//! order, and the decoding of query strings and form bodies into them.

/// A parameter's value as it arrived.
#[derive(Debug, Clone)]
pub(super) enum RawValue {
    /// A query or form value, or a JSON string.
    Text(String),
    /// A JSON number or boolean.
    Scalar(serde_json::Value),
    /// A JSON array or object.
    Composite,
    /// A query or form value that is not UTF-8 once percent-decoded.
    NotUtf8,
}

impl RawValue {
    /// The value of a JSON value; `None` for `null`, which counts as absent.
    pub(super) fn from_json(value: serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(Self::Text(text)),
            scalar @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                Some(Self::Scalar(scalar))
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => Some(Self::Composite),
        }
    }
}

/// Every (name, value) pair, in order; `None` values (JSON `null`) count as absent.
pub(super) type Entries = Vec<(String, Option<RawValue>)>;

/// `application/x-www-form-urlencoded` pairs: `+` is a space, `%XX` a byte (a `%` not followed
/// by two hex digits is kept), names and values must be UTF-8 (a name that is not is skipped:
/// it cannot be one of ours).
pub(super) fn form_entries(input: &[u8]) -> Entries {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let name = String::from_utf8(percent_decode(name)).ok()?;
            let value = match String::from_utf8(percent_decode(value)) {
                Ok(text) => RawValue::Text(text),
                Err(_) => RawValue::NotUtf8,
            };
            Some((name, Some(value)))
        })
        .collect()
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |at: usize| input.get(at).and_then(|&b| (b as char).to_digit(16));
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    // Two hex digits make one byte: hi * 16 + lo < 256.
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}
