//! `parse_retry_after` with any text and any `now`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optout_relay::Timestamp;
use optout_relay::delivery::parse_retry_after;

fuzz_target!(|input: (&str, i64, i32)| {
    let (value, seconds, nanos) = input;
    let now = Timestamp::new(
        seconds.rem_euclid(Timestamp::MAX.as_second()),
        nanos.rem_euclid(1_000_000_000),
    )
    .unwrap_or(Timestamp::UNIX_EPOCH);
    match parse_retry_after(value, now) {
        Ok(at) => assert!(at >= now, "a retry is never due before now"),
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
