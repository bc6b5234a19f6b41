//! Helpers for texts that may be personal (Emails, Mobiles, ids): trimming what surrounds a
//! value and masking it for `Debug` and `Display` output.

/// Masks all but the first `keep` characters of `value`: `"example"` with 1 kept is `"e***"`.
pub(crate) fn mask_prefix(value: &str, keep: usize) -> String {
    // A value of at most twice `keep` characters keeps none: `p` must not print as `p***`.
    let keep = if value.chars().count() > 2 * keep {
        keep
    } else {
        0
    };
    let mut masked: String = value.chars().take(keep).collect();
    masked.push_str("***");
    masked
}

/// `value` without the whitespace (and byte-order mark) around it.
pub(crate) fn trim_around(value: &str) -> &str {
    value.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}
