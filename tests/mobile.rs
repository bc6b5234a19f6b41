//! Mobile numbers: in E.164 form when libphonenumber's metadata (feature `phonenumber`) is
//! certain of them, else exactly as given. A number is never refused for how it is typed.
//!
//! Each test that depends on the metadata comes in a pair: with the feature it expects the
//! normalized form, without it the text as given.

use optout_relay::Mobile;
use optout_relay::Profile;
use optout_relay::ProfileId;
use optout_relay::model::AttributeError;
use optout_relay::model::MobileProblem;
use optout_relay::model::Region;
use optout_relay::model::RegionProblem;

fn read(input: &str, region: Option<&str>) -> Mobile {
    match region {
        Some(code) => Mobile::with_region(input, Region::new(code).unwrap()).unwrap(),
        None => Mobile::new(input).unwrap(),
    }
}

/// Numbers of fifteen countries, in international form and in national form with their
/// region, and the E.164 form the metadata gives each.
const NORMALIZABLE: [(&str, Option<&str>, &str); 34] = [
    // Italy keeps its leading 0, written `(0)` or not.
    ("+39 (0)6 6982 1234", None, "+390669821234"),
    ("+39 06 6982 1234", None, "+390669821234"),
    ("06 6982 1234", Some("IT"), "+390669821234"),
    ("333 123 4567", Some("IT"), "+393331234567"),
    // Sweden's trunk 0 goes, written `(0)` or not.
    ("+46 070 123 45 67", None, "+46701234567"),
    ("+46 (0)70-123 45 67", None, "+46701234567"),
    ("070-123 45 67", Some("SE"), "+46701234567"),
    ("0046 70 123 45 67", Some("SE"), "+46701234567"),
    ("+44 (0)20 7946 0958", None, "+442079460958"),
    ("020 7946 0958", Some("GB"), "+442079460958"),
    ("+1 (415) 555-0132", None, "+14155550132"),
    ("(415) 555-0132", Some("US"), "+14155550132"),
    ("+49 (0)151 23456789", None, "+4915123456789"),
    ("0151 23456789", Some("DE"), "+4915123456789"),
    ("+33 6 12 34 56 78", None, "+33612345678"),
    ("06 12 34 56 78", Some("FR"), "+33612345678"),
    ("+34 612 34 56 78", None, "+34612345678"),
    ("612 34 56 78", Some("ES"), "+34612345678"),
    ("+31 6 12345678", None, "+31612345678"),
    ("06 12345678", Some("NL"), "+31612345678"),
    ("+81 90-1234-5678", None, "+819012345678"),
    ("090-1234-5678", Some("JP"), "+819012345678"),
    ("+61 412 345 678", None, "+61412345678"),
    ("0412 345 678", Some("AU"), "+61412345678"),
    ("+91 98765 43210", None, "+919876543210"),
    ("098765 43210", Some("IN"), "+919876543210"),
    ("+55 11 91234-5678", None, "+5511912345678"),
    ("(11) 91234-5678", Some("BR"), "+5511912345678"),
    ("+7 912 345-67-89", None, "+79123456789"),
    ("8 912 345-67-89", Some("RU"), "+79123456789"),
    ("+27 82 123 4567", None, "+27821234567"),
    ("082 123 4567", Some("ZA"), "+27821234567"),
    ("+48 512 345 678", None, "+48512345678"),
    ("512-345-678", Some("PL"), "+48512345678"),
];

/// Numbers the metadata cannot be certain of: kept exactly as given, with or without it.
const KEPT: [(&str, Option<&str>); 13] = [
    // A national form without its region.
    ("070-123 45 67", None),
    ("0046 70 123 45 67", None),
    ("46701234567", None),
    // A reserved range (UK drama numbers): invalid per the metadata.
    ("+44 7700 900123", None),
    ("+44 7700 900123", Some("GB")),
    // A country code nobody has.
    ("+999 123", None),
    // A number with an extension.
    ("+46 70 123 45 67 ext. 12", None),
    // A national form in another region's numbering.
    ("070-123 45 67", Some("US")),
    // A letter would be read as a keypad digit: an `O` typed for a `0` would make a
    // stranger's valid number, so no text with a letter is rewritten.
    ("+49 151 2345678O", None),
    ("+46 7O 123 45 67", None),
    ("+1 800 FLOWERS", None),
    // `(0)` in Italy, which has no trunk prefix: with the 0 a Lecco landline, without it a
    // mobile. Two valid readings: not certain.
    ("+39 (0)341 123 4567", None),
    ("tel:+46701234567", None),
];

#[cfg(feature = "phonenumber")]
#[test]
fn numbers_of_fifteen_countries_normalize_to_e164() {
    for (input, region, e164) in NORMALIZABLE {
        let mobile = read(input, region);
        assert_eq!(mobile.as_str(), e164, "{input:?} in {region:?}");
        assert_eq!(mobile.e164(), Some(e164), "{input:?} in {region:?}");
        assert_eq!(mobile.as_given(), input);
        assert!(mobile.is_normalized(), "{input:?} in {region:?}");
        assert_eq!(String::from(mobile), e164);
    }
}

#[cfg(not(feature = "phonenumber"))]
#[test]
fn without_metadata_numbers_of_fifteen_countries_are_kept_as_given() {
    for (input, region, _) in NORMALIZABLE {
        let mobile = read(input, region);
        assert_eq!(mobile.as_str(), input, "{input:?} in {region:?}");
        assert_eq!(mobile.e164(), None, "{input:?} in {region:?}");
        assert_eq!(mobile.as_given(), input);
        assert!(!mobile.is_normalized(), "{input:?} in {region:?}");
        assert_eq!(String::from(mobile), input);
    }
}

#[test]
fn numbers_the_metadata_is_not_certain_of_are_kept_as_given() {
    for (input, region) in KEPT {
        let mobile = read(input, region);
        assert_eq!(mobile.as_str(), input, "{input:?} in {region:?}");
        assert_eq!(mobile.as_given(), input);
        assert_eq!(mobile.e164(), None, "{input:?} in {region:?}");
        assert!(!mobile.is_normalized(), "{input:?} in {region:?}");
    }
}

#[test]
fn whitespace_around_a_number_is_not_part_of_it() {
    for input in [
        "+46 70 123 45 67\r",
        " +46 70 123 45 67 \n",
        "\u{feff}+46701234567",
        "\t+46 (0)70-123 45 67\r\n",
    ] {
        let mobile = Mobile::new(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(mobile.as_given(), input);
        #[cfg(feature = "phonenumber")]
        assert_eq!(mobile.as_str(), "+46701234567", "{input:?}");
        #[cfg(not(feature = "phonenumber"))]
        assert_eq!(
            mobile.as_str(),
            input.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'),
            "{input:?}"
        );
    }
    // Kept as given: without the whitespace around it.
    let kept = Mobile::new(" 070-123 45 67\r\n").unwrap();
    assert_eq!(
        (kept.as_str(), kept.as_given(), kept.is_normalized()),
        ("070-123 45 67", " 070-123 45 67\r\n", false)
    );
    // A control character inside a number is still refused.
    assert_eq!(
        Mobile::new("+46 70\r123 45 67"),
        Err(AttributeError::Mobile {
            reason: MobileProblem::ControlCharacter
        })
    );
}

#[test]
fn a_json_number_is_read_as_its_digits() {
    let profile: Profile = serde_json::from_str(r#"{"id": "p-1", "mobile": 46701234567}"#).unwrap();
    let mobile = profile.mobile.unwrap();
    // Without its `+`, a national or international form cannot be told apart: kept as given.
    assert_eq!(
        (mobile.as_str(), mobile.is_normalized(), mobile.problem()),
        ("46701234567", false, None)
    );
}

#[test]
fn short_numbers_show_only_their_last_two_digits() {
    for (input, masked) in [
        ("+6834002", "+***02"),
        ("+123456789", "+***89"),
        ("+12345", "+***"),
    ] {
        assert_eq!(Mobile::new(input).unwrap().masked(), masked, "{input:?}");
    }
}

#[cfg(feature = "phonenumber")]
#[test]
fn two_typings_of_one_number_are_equal_once_normalized() {
    let written = Mobile::new("+39 (0)6 6982 1234").unwrap();
    let plain = Mobile::new("+39 06 6982 1234").unwrap();
    assert_eq!(written, plain);
    assert_eq!(written.as_given(), "+39 (0)6 6982 1234");
    assert_eq!(plain.as_given(), "+39 06 6982 1234");
    let national = Mobile::with_region("06 6982 1234", Region::new("it").unwrap()).unwrap();
    assert_eq!(national, written);
    let set: std::collections::HashSet<Mobile> = [written, plain, national].into();
    assert_eq!(set.len(), 1);
}

#[cfg(not(feature = "phonenumber"))]
#[test]
fn without_metadata_two_typings_of_one_number_stay_two() {
    let written = Mobile::new("+39 (0)6 6982 1234").unwrap();
    let plain = Mobile::new("+39 06 6982 1234").unwrap();
    assert_ne!(written, plain);
    assert_eq!(written.as_str(), "+39 (0)6 6982 1234");
    assert_eq!(plain.as_str(), "+39 06 6982 1234");
    let same = Mobile::new("+39 06 6982 1234").unwrap();
    assert_eq!(same, plain);
}

#[cfg(feature = "phonenumber")]
#[test]
fn json_holds_the_e164_form_and_reads_it_back_normalized() {
    let mobile = Mobile::new("+46 (0)70-123 45 67").unwrap();
    let json = serde_json::to_string(&mobile).unwrap();
    assert_eq!(json, "\"+46701234567\"");
    let read: Mobile = serde_json::from_str(&json).unwrap();
    assert_eq!(read, mobile);
    assert_eq!(read.as_given(), "+46701234567");
    assert_eq!(read.e164(), Some("+46701234567"));
    let profile = Profile::new(ProfileId::new("p-1").unwrap()).with_mobile(mobile);
    let json = serde_json::to_string(&profile).unwrap();
    assert_eq!(json, r#"{"id":"p-1","mobile":"+46701234567"}"#);
    assert_eq!(serde_json::from_str::<Profile>(&json).unwrap(), profile);
}

#[cfg(not(feature = "phonenumber"))]
#[test]
fn without_metadata_json_holds_the_number_as_given() {
    let mobile = Mobile::new("+46 (0)70-123 45 67").unwrap();
    let json = serde_json::to_string(&mobile).unwrap();
    assert_eq!(json, "\"+46 (0)70-123 45 67\"");
    let read: Mobile = serde_json::from_str(&json).unwrap();
    assert_eq!(read, mobile);
    assert_eq!(read.as_given(), "+46 (0)70-123 45 67");
    assert_eq!(read.e164(), None);
}

#[test]
fn json_holds_a_number_kept_as_given_and_reads_it_back_as_given() {
    let mobile = Mobile::new("070-123 45 67").unwrap();
    let json = serde_json::to_string(&mobile).unwrap();
    assert_eq!(json, "\"070-123 45 67\"");
    let read: Mobile = serde_json::from_str(&json).unwrap();
    assert_eq!(read, mobile);
    assert_eq!(read.as_given(), "070-123 45 67");
    assert!(!read.is_normalized());
    let profile = Profile::new(ProfileId::new("p-1").unwrap()).with_mobile(mobile);
    let json = serde_json::to_string(&profile).unwrap();
    assert_eq!(json, r#"{"id":"p-1","mobile":"070-123 45 67"}"#);
    assert_eq!(serde_json::from_str::<Profile>(&json).unwrap(), profile);
    // A JSON value that cannot be a number is read too, kept as given with its problem (and
    // never sent: see tests/webhook.rs).
    let read = serde_json::from_str::<Mobile>("\"call me\"").unwrap();
    assert_eq!(
        (read.as_str(), read.problem(), read.to_string()),
        ("call me", Some(MobileProblem::NoDigit), "***".to_owned())
    );
    assert_eq!(serde_json::to_string(&read).unwrap(), "\"call me\"");
}

#[cfg(feature = "phonenumber")]
#[test]
fn masks_of_normalized_numbers() {
    for (input, masked) in [
        ("+46 (0)70-123 45 67", "+46*******67"),
        ("+1 (415) 555-0132", "+14*******32"),
        ("+49 (0)151 23456789", "+49*********89"),
    ] {
        let mobile = Mobile::new(input).unwrap();
        assert_eq!(mobile.masked(), masked, "{input:?}");
        assert_eq!(mobile.to_string(), masked);
        assert_eq!(format!("{mobile:?}"), format!("Mobile({masked:?})"));
    }
}

#[cfg(not(feature = "phonenumber"))]
#[test]
fn without_metadata_masks_show_the_last_two_digits() {
    for (input, masked) in [
        ("+46 (0)70-123 45 67", "***67"),
        ("+1 (415) 555-0132", "***32"),
        ("+49 (0)151 23456789", "***89"),
    ] {
        let mobile = Mobile::new(input).unwrap();
        assert_eq!(mobile.masked(), masked, "{input:?}");
        assert_eq!(mobile.to_string(), masked);
        assert_eq!(format!("{mobile:?}"), format!("Mobile({masked:?})"));
    }
}

#[test]
fn masks_of_numbers_kept_as_given() {
    for (input, masked) in [
        ("070-123 45 67", "***67"),
        ("+44 7700 900123", "***23"),
        ("+46 70 123 45 67 ext. 12", "***12"),
        ("+999 123", "***23"),
        ("+999 12", "***"),
        ("12345", "***"),
        ("7", "***"),
    ] {
        let mobile = Mobile::new(input).unwrap();
        assert_eq!(mobile.masked(), masked, "{input:?}");
        assert_eq!(mobile.to_string(), masked);
        assert_eq!(format!("{mobile:?}"), format!("Mobile({masked:?})"));
    }
}

#[test]
fn only_what_cannot_be_a_number_is_refused() {
    let too_long = format!("+46 70 123 45 67{}", " ".repeat(49));
    assert_eq!(too_long.len(), 65);
    for (input, reason) in [
        ("", MobileProblem::Empty),
        ("   ", MobileProblem::Empty),
        ("+46 70\n123 45 67", MobileProblem::ControlCharacter),
        ("+46701234567\0", MobileProblem::ControlCharacter),
        (too_long.as_str(), MobileProblem::TooLong),
        ("call me", MobileProblem::NoDigit),
        ("+", MobileProblem::NoDigit),
    ] {
        assert_eq!(
            Mobile::new(input).unwrap_err(),
            AttributeError::Mobile { reason },
            "{input:?}"
        );
        assert_eq!(
            Mobile::with_region(input, Region::new("SE").unwrap()).unwrap_err(),
            AttributeError::Mobile { reason },
            "{input:?}"
        );
    }
    assert_eq!(
        Mobile::new("call me").unwrap_err().to_string(),
        "invalid mobile number: it holds no digit"
    );
    // 64 bytes is fine, and anything with a digit is kept.
    let at_limit = format!("+46 70 123 45 67{}", " ".repeat(48));
    assert_eq!(Mobile::new(&at_limit).unwrap().as_given(), at_limit);
    assert_eq!(Mobile::new("STOP 1").unwrap().as_str(), "STOP 1");
}

#[test]
fn regions_are_two_letters_in_uppercase() {
    let region = Region::new("se").unwrap();
    assert_eq!(region.as_str(), "SE");
    assert_eq!(region.to_string(), "SE");
    assert_eq!(format!("{region:?}"), "Region(\"SE\")");
    assert_eq!("Se".parse::<Region>().unwrap(), region);
    let reason = RegionProblem::NotTwoLetters;
    for input in ["", "S", "SWE", "S1", "é", "S ", "46"] {
        assert_eq!(
            Region::new(input).unwrap_err(),
            AttributeError::Region { reason },
            "{input:?}"
        );
    }
    assert_eq!(
        Region::new("S").unwrap_err().to_string(),
        "invalid region: it is not two ASCII letters (an ISO 3166-1 alpha-2 code such as `SE`)"
    );
}

#[cfg(feature = "phonenumber")]
#[test]
fn a_region_the_metadata_does_not_know_is_refused() {
    assert_eq!(
        Region::new("ZZ").unwrap_err(),
        AttributeError::Region {
            reason: RegionProblem::UnknownRegion
        }
    );
    assert_eq!(
        Region::new("zz").unwrap_err().to_string(),
        "invalid region: it is not a region the phone-number metadata knows"
    );
}

#[cfg(not(feature = "phonenumber"))]
#[test]
fn without_metadata_any_two_letters_are_a_region() {
    assert_eq!(Region::new("zz").unwrap().as_str(), "ZZ");
}
