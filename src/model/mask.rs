//! Masking of values that may be personal, for `Debug` and `Display` output.

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
