//! `Retry-After` header values: delta-seconds or an HTTP-date.

use jiff::{SignedDuration, Timestamp};

use crate::error::RetryAfterError;

/// The longest `Retry-After` value accepted, in bytes.
const MAX_LEN: usize = 64;

/// Reads a `Retry-After` value received at `now` as the time to retry at.
///
/// Both forms of RFC 9110 are accepted: delta-seconds (`120`) and an HTTP-date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`, or any RFC 2822 date). A date in the past means "now". The
/// result is not clamped: the retry policy does that.
///
/// # Errors
///
/// [`RetryAfterError`] for an empty, over-long or malformed value.
///
/// ```
/// use optout_relay::{parse_retry_after, Timestamp};
///
/// let now: Timestamp = "2026-11-26T09:00:00Z".parse()?;
/// assert_eq!(parse_retry_after("120", now)?, "2026-11-26T09:02:00Z".parse::<Timestamp>()?);
/// assert_eq!(parse_retry_after("Thu, 26 Nov 2026 09:00:30 GMT", now)?, "2026-11-26T09:00:30Z".parse::<Timestamp>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_retry_after(value: &str, now: Timestamp) -> Result<Timestamp, RetryAfterError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(RetryAfterError::Empty);
    }
    if value.len() > MAX_LEN {
        return Err(RetryAfterError::TooLong { len: value.len() });
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Delta-seconds; values beyond any sane wait saturate.
        let seconds = value
            .parse::<i64>()
            .unwrap_or(i64::MAX)
            .min(10 * 365 * 86_400);
        return Ok(now
            .checked_add(SignedDuration::from_secs(seconds))
            .unwrap_or(Timestamp::MAX));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER
        .parse_timestamp(value)
        .map_err(|_| RetryAfterError::Malformed)?;
    Ok(at.max(now))
}
