//! The bounds of a retry policy's settings (checked by [`RetryPolicy`](super::RetryPolicy)'s
//! builder and when a policy is read from JSON).

use jiff::SignedDuration;

/// The shortest retry delay a policy accepts, and the floor of every delay after jitter: 10 ms.
///
/// Not a recommended delay (the [`DEFAULT_SCHEDULE`](super::DEFAULT_SCHEDULE) starts at 5 s)
/// but the bound below which a failing receiver would be hammered in a loop: with at most
/// [`MAX_ATTEMPTS`] attempts, a delivery makes at most 100 attempts a second and 100 in all.
/// Tests and local set-ups use delays of tens of milliseconds; below that, a delay is lost in
/// timer and store latency.
pub const MIN_DELAY: SignedDuration = SignedDuration::from_millis(10);

/// The longest retry delay a policy accepts, and the longest `retry_after_max`: 24 h.
///
/// The longest delay of the [`DEFAULT_SCHEDULE`](super::DEFAULT_SCHEDULE) (and of Svix's) is
/// 10 h; a day between attempts is already more than any receiver's outage worth waiting out
/// attempt by attempt.
pub const MAX_DELAY: SignedDuration = SignedDuration::from_hours(24);

/// The most attempts a policy allows per delivery (and per replay of it): 100.
///
/// Webhook senders make 5 to 20 (Svix 8; the default is 8); AWS SNS allows at most 100 retries
/// for HTTP endpoints. More than this only loads a receiver that keeps failing: widen the delays
/// instead, or replay the dead letter once the receiver is fixed.
pub const MAX_ATTEMPTS: u32 = 100;

/// The longest `max_age` a policy accepts: 30 days.
///
/// Opt-outs have legal deadlines (10 business days for CAN-SPAM, a month for a GDPR request):
/// a delivery still failing after 30 days has missed them all and needs a person, who can
/// replay it. Stripe and Svix give up after about 3 days (the default).
pub const MAX_AGE: SignedDuration = SignedDuration::from_hours(30 * 24);

/// The highest jitter, in percent of each delay: 100 ("full jitter", a delay anywhere from
/// [`MIN_DELAY`] to twice the scheduled one).
pub const MAX_JITTER_PERCENT: u8 = 100;

/// The most bytes of each response body an attempt record can keep: 64 KiB (the default is
/// 512 bytes). Enough for any error page worth reading; more only grows every stored record.
/// With at most 17 attempts kept per delivery
/// ([`KEPT_FIRST_ATTEMPTS`](crate::delivery::KEPT_FIRST_ATTEMPTS) and
/// [`KEPT_LATEST_ATTEMPTS`](crate::delivery::KEPT_LATEST_ATTEMPTS)), a delivery's record holds
/// at most about 1.1 MiB of response bodies.
pub const MAX_RESPONSE_BODY_LIMIT: usize = 64 * 1024;
