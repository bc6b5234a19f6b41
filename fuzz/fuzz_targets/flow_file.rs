//! Flow files: `FlowFile::from_json`, then `lint_flows` and `Router::new` on success.
//!
//! Input: the flow file's text, optionally followed by a 0xFF byte (never part of UTF-8) and a
//! catalog's JSON for the router.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optout_relay::Catalog;
use optout_relay::FlowFile;
use optout_relay::Router;
use optout_relay::lint::lint_flows;

fuzz_target!(|data: &[u8]| {
    let (file, catalog) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(file) else {
        return;
    };
    match FlowFile::from_json(text) {
        Ok(file) => {
            for diagnostic in lint_flows(&file.flows) {
                let _ = diagnostic.to_string();
            }
            let catalog = catalog
                .and_then(|c| serde_json::from_slice::<Catalog>(c).ok())
                .unwrap_or_default();
            if let Ok(router) = Router::new(file.flows.clone(), &catalog) {
                let _ = format!("{router:?}");
            }
            let _ = format!("{file:?}");
            // What was read writes back and reads back the same.
            let json = file.to_json().expect("a flow file serializes");
            let again = FlowFile::from_json(&json).expect("a written flow file reads back");
            assert_eq!(again, file, "flow file round trip");
        }
        Err(error) => {
            assert!(!error.path.is_empty(), "an error names a path");
            assert!(
                !error.problem.to_string().is_empty(),
                "an error has a message"
            );
            let _ = error.to_string();
        }
    }
});
