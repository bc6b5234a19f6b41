//! `Retry-After` header values: delta-seconds or an HTTP-date.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::delivery::error::RetryAfterError;

/// The longest `Retry-After` value accepted, in bytes.
const MAX_LEN: usize = 64;

/// Reads a `Retry-After` value received at `now` as the time to retry at.
///
/// Both forms of RFC 9110 (§10.2.3) are accepted: delta-seconds (`120`) and an HTTP-date in
/// any of its three forms (§5.6.7), read with the `httpdate` crate:
///
/// - IMF-fixdate, `Thu, 26 Nov 2026 09:10:00 GMT`;
/// - the obsolete RFC 850 form, `Thursday, 26-Nov-26 09:10:00 GMT`, its two-digit year read as
///   RFC 9110 says: the year with those digits that is not more than 50 years after `now`;
/// - the obsolete asctime form, `Thu Nov 26 09:10:00 2026`.
///
/// Any other RFC 2822 date (such as one with a numeric offset, `+0100`) is accepted too.
///
/// A date in the past means "now". A date later than a [`Timestamp`] can hold (the last hours of
/// year 9999, or a year of more than four digits) reads as [`Timestamp::MAX`]; delta-seconds
/// saturate at 10 years. The result is not clamped otherwise: the retry policy caps the wait at
/// its `retry_after_max` ([`Delivery::record`](crate::Delivery::record)).
///
/// # Errors
///
/// [`RetryAfterError`] for an empty, over-long or malformed value (including a date whose
/// weekday does not match it).
///
/// ```
/// use optout_relay::delivery::parse_retry_after;
/// use optout_relay::Timestamp;
///
/// let now: Timestamp = "2026-11-26T09:00:00Z".parse()?;
/// let later: Timestamp = "2026-11-26T09:10:00Z".parse()?;
/// assert_eq!(parse_retry_after("600", now)?, later);
/// assert_eq!(parse_retry_after("Thu, 26 Nov 2026 09:10:00 GMT", now)?, later);
/// assert_eq!(parse_retry_after("Thursday, 26-Nov-26 09:10:00 GMT", now)?, later);
/// assert_eq!(parse_retry_after("Thu Nov 26 09:10:00 2026", now)?, later);
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now)?, now);
/// assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now)?, Timestamp::MAX);
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
    let at = http_date(value, now)
        .or_else(|| rfc2822_date(value))
        .ok_or(RetryAfterError::Malformed)?;
    Ok(at.max(now))
}

/// An HTTP-date in any of its three forms, checked by `httpdate` (fields, ranges, weekday).
fn http_date(value: &str, now: Timestamp) -> Option<Timestamp> {
    let imf;
    let value = match rfc850_as_imf_fixdate(value, now) {
        Some(rewritten) => {
            imf = rewritten;
            imf.as_str()
        }
        None => value,
    };
    match httpdate::parse_http_date(value) {
        // `httpdate` reads years 1970 to 9999; the last hours of 9999 are past `Timestamp::MAX`.
        Ok(time) => Some(Timestamp::try_from(time).unwrap_or(Timestamp::MAX)),
        Err(_) => beyond_years_read(value),
    }
}

/// An RFC 850 date (`Sunday, 06-Nov-94 08:49:37 GMT`) rewritten as an IMF-fixdate with its
/// two-digit year resolved as RFC 9110 §5.6.7 requires: a year that would be more than 50 years
/// in the future is the most recent past year with those digits. (`httpdate` itself reads 00-69
/// as 2000-2069 whatever the date.)
fn rfc850_as_imf_fixdate(value: &str, now: Timestamp) -> Option<String> {
    const WEEKDAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let (weekday, rest) = value.split_once(", ")?;
    if !WEEKDAYS.contains(&weekday) {
        return None;
    }
    let (date, time) = rest.split_once(' ')?;
    let mut fields = date.split('-');
    let (day, month, year) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || year.len() != 2 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: i32 = year.parse().ok()?;
    // The year ending in `digits` in `now - 49 ..= now + 50`.
    let first = i32::from(TimeZone::UTC.to_datetime(now).year()) - 49;
    let year = first + (digits - first).rem_euclid(100);
    Some(format!("{}, {day} {month} {year:04} {time}", &weekday[..3]))
}

/// A date in the IMF-fixdate or asctime form with a year `httpdate` does not read: before
/// 1970 (in the past: [`Timestamp::MIN`]) or of more than four digits (later than any
/// [`Timestamp`]: [`Timestamp::MAX`]). The rest of the date is checked by `httpdate` with the
/// year moved into its range by a multiple of 400 years, which keeps every date on its weekday.
fn beyond_years_read(value: &str) -> Option<Timestamp> {
    let mut parts: Vec<&str> = value.split(' ').collect();
    // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`; asctime: `Sun Nov  6 08:49:37 1994`.
    let at = match parts.first() {
        Some(weekday) if weekday.ends_with(',') => 3,
        Some(_) => parts.len() - 1,
        None => return None,
    };
    let year = *parts.get(at)?;
    if year.len() < 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = year.trim_start_matches('0');
    let past = significant.len() <= 4;
    if past && significant.parse::<u16>().is_ok_and(|year| year >= 1970) {
        // A year `httpdate` reads: something else is wrong.
        return None;
    }
    let cycle = year.bytes().fold(0u32, |rest, digit| {
        (rest * 10 + u32::from(digit - b'0')) % 400
    });
    let moved = (2000 + cycle).to_string();
    parts[at] = &moved;
    httpdate::parse_http_date(&parts.join(" ")).ok()?;
    Some(if past { Timestamp::MIN } else { Timestamp::MAX })
}

/// Any RFC 2822 date, such as one with a numeric offset: not an HTTP-date, but unambiguous.
fn rfc2822_date(value: &str) -> Option<Timestamp> {
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    PARSER.parse_timestamp(value).ok()
}
