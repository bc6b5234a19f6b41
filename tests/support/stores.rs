//! Every store under test, fresh, for the tests that run one scenario on each: the in-memory
//! store and (feature `sqlite`) SQLite in a scratch file.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use optout_relay::health::EndpointPolicy;
use optout_relay::{DeliveryStore, Timestamp, VolatileStore};

/// A store under test: its name, the store, and the scratch directory it lives in (if any).
pub type StoreUnderTest = (&'static str, Arc<dyn DeliveryStore>, Option<Scratch>);

/// Every store, keeping endpoint health by `policy`; `name` tells the scratch directories apart.
pub async fn stores_with(name: &str, policy: EndpointPolicy) -> Vec<StoreUnderTest> {
    #[allow(unused_mut)]
    let mut stores: Vec<StoreUnderTest> = vec![(
        "volatile",
        Arc::new(VolatileStore::new().with_endpoint_policy(policy.clone())),
        None,
    )];
    #[cfg(feature = "sqlite")]
    {
        let scratch = Scratch::new(name);
        let store = optout_relay::SqliteStore::builder(scratch.0.join("relay.db"))
            .endpoint_policy(policy)
            .open()
            .await
            .unwrap();
        stores.push(("sqlite", Arc::new(store), Some(scratch)));
    }
    let _ = name;
    stores
}

/// A temporary directory, removed on drop.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "optout-relay-test-{name}-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
