//! The cost of reading Profiles as platforms hold them: Email checked against RFC 5321/5322
//! (with RFC 6531), Mobile normalized with libphonenumber's metadata (feature `phonenumber`).
//!
//! Beside the crate, in the same run, the baseline reads the same JSON into plain strings
//! (serde alone, no check, no normalization): the difference is what the checks cost.
//!
//! Numbers of many countries in turn cost milliseconds each: the metadata's compiled patterns
//! live in a cache of 100 (phonenumber 0.3), fewer than ten countries need, so they are
//! compiled again and again; numbers of one country stay in it.
//!
//! `cargo bench --bench profile`

use criterion::{Criterion, criterion_group, criterion_main};
use optout_relay::{Mobile, Profile};
use serde::Deserialize;

/// Numbers of ten countries, international forms as people type them.
const NUMBERS: [&str; 10] = [
    "+39 (0)6 6982 1234",
    "+46 070 123 45 67",
    "+44 (0)20 7946 0958",
    "+1 (415) 555-0132",
    "+49 (0)151 23456789",
    "+33 6 12 34 56 78",
    "+34 612 34 56 78",
    "+81 90-1234-5678",
    "+61 412 345 678",
    "+91 98765 43210",
];

/// Ten numbers of one country (Sweden), as most of a platform's audience is.
const ONE_COUNTRY: [&str; 10] = [
    "+46 70 123 45 67",
    "+46 70-234 56 78",
    "+46 (0)73 345 67 89",
    "+46 76 456 78 90",
    "+46 72 567 89 01",
    "+46 070 678 90 12",
    "+46 79 789 01 23",
    "+46 70 890 12 34",
    "+46 73 901 23 45",
    "+46 76 012 34 56",
];

/// The baseline's Profile: the same fields as plain strings.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Plain {
    id: String,
    email: String,
    mobile: String,
}

fn profiles() -> Vec<String> {
    NUMBERS
        .iter()
        .enumerate()
        .map(|(i, mobile)| {
            serde_json::json!({
                "id": format!("p-{i}"),
                "email": format!("\"o'neil & co={i}\"@example.com"),
                "mobile": mobile,
            })
            .to_string()
        })
        .collect()
}

fn profile(c: &mut Criterion) {
    // Loads the metadata once, outside the measurements (about 60 ms, the first time).
    let _ = Mobile::new(NUMBERS[0]);
    let json = profiles();
    let mut group = c.benchmark_group("profile");
    group.bench_function("read_10/crate", |b| {
        b.iter(|| {
            json.iter()
                .map(|text| serde_json::from_str::<Profile>(text).unwrap())
                .filter(|p| p.mobile.as_ref().is_some_and(Mobile::is_normalized))
                .count()
        })
    });
    group.bench_function("read_10/baseline", |b| {
        b.iter(|| {
            json.iter()
                .map(|text| serde_json::from_str::<Plain>(text).unwrap())
                .filter(|p| !p.mobile.is_empty())
                .count()
        })
    });
    for (name, numbers) in [
        ("mobile_10/crate", NUMBERS),
        ("mobile_10_one_country/crate", ONE_COUNTRY),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                numbers
                    .iter()
                    .map(|n| Mobile::new(n).unwrap())
                    .filter(Mobile::is_normalized)
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, profile);
criterion_main!(benches);
