//! Events, Profiles, Sections and Catalogs from JSON, then `Profile::apply` when they fit.
//!
//! Input: up to three JSON documents separated by 0xFF bytes (never part of UTF-8): an
//! `OptOutEvent`, a `Profile` and a `Section` (also tried as a `Catalog`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use optout_relay::{Catalog, OptOutEvent, Profile, Section};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF);
    let event = parts.next().unwrap_or_default();
    let profile = parts.next().unwrap_or_default();
    let section = parts.next().unwrap_or_default();

    let event = serde_json::from_slice::<OptOutEvent>(event);
    let profile = serde_json::from_slice::<Profile>(profile);
    let parsed_section = serde_json::from_slice::<Section>(section);
    if let Ok(catalog) = serde_json::from_slice::<Catalog>(section) {
        let _ = format!("{catalog:?}");
        let json = serde_json::to_string(&catalog).expect("a catalog serializes");
        let again: Catalog = serde_json::from_str(&json).expect("a written catalog reads back");
        assert_eq!(again, catalog, "catalog round trip");
    }
    if let Ok(event) = &event {
        let json = serde_json::to_string(event).expect("an event serializes");
        let again: OptOutEvent = serde_json::from_str(&json).expect("a written event reads back");
        assert_eq!(&again, event, "event round trip");
    }
    if let Ok(profile) = &profile {
        let _ = format!("{profile:?}");
        let json = serde_json::to_string(profile).expect("a profile serializes");
        let again: Profile = serde_json::from_str(&json).expect("a written profile reads back");
        assert_eq!(&again, profile, "profile round trip");
    }
    if let Ok(section) = &parsed_section {
        let json = serde_json::to_string(section).expect("a section serializes");
        let again: Section = serde_json::from_str(&json).expect("a written section reads back");
        assert_eq!(&again, section, "section round trip");
    }
    if let (Ok(event), Ok(mut profile), Ok(section)) = (event, profile, parsed_section) {
        let before = profile.clone();
        match profile.apply(&event, &section) {
            Ok(effect) => {
                let _ = format!("{effect:?}");
            }
            Err(error) => {
                let _ = error.to_string();
                assert_eq!(profile, before, "a refused opt-out changes nothing");
            }
        }
    }
});
