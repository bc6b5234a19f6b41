//! The worker's source of jitter: a SplitMix64 counter, seeded from entropy unless the host
//! fixes the seed ([`WorkerBuilder::seed`](super::WorkerBuilder::seed)).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The random numbers that pick each retry's jitter ([`Delivery::record`]).
///
/// [`Delivery::record`]: crate::delivery::Delivery::record
#[derive(Debug)]
pub(super) struct Jitter {
    /// SplitMix64 state.
    state: AtomicU64,
}

impl Jitter {
    /// A source starting from `seed`: the same seed gives the same numbers.
    pub(super) fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// The next number.
    pub(super) fn next(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let state = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        crate::hash::mix(state)
    }
}

/// A seed from entropy, without a dependency: the standard library's per-process random hash
/// keys (which also differ between calls in one process), the process id and the time. Workers
/// in different processes, or started one after another in one process, retry on different
/// schedules, so that their retries do not arrive at a receiver all at once.
pub(crate) fn entropy_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(since_epoch) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        hasher.write_u128(since_epoch.as_nanos());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_from_entropy_differ() {
        let seeds: std::collections::HashSet<u64> = (0..16).map(|_| entropy_seed()).collect();
        assert_eq!(seeds.len(), 16, "{seeds:?}");
    }

    #[test]
    fn a_fixed_seed_gives_the_same_numbers() {
        let (a, b) = (Jitter::new(7), Jitter::new(7));
        let first: Vec<u64> = (0..8).map(|_| a.next()).collect();
        let second: Vec<u64> = (0..8).map(|_| b.next()).collect();
        assert_eq!(first, second);
        let other = Jitter::new(8);
        assert_ne!(first, (0..8).map(|_| other.next()).collect::<Vec<_>>());
    }
}
