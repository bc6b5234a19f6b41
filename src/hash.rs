//! Small non-cryptographic hashes shared by several modules: the SplitMix64 finalizer
//! ([`mix`]) and FNV-1a with a 128-bit state ([`Fnv1a128`]). They need no dependency, so they
//! give the same results with every feature set, in every process and every version.

/// The SplitMix64 finalizer: a bijection of `u64` with full avalanche. The webhook id's
/// finalizer, and the worker's jitter source over a SplitMix64 counter.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a with a 128-bit state (<http://www.isthe.com/chongo/tech/comp/fnv/>).
pub(crate) struct Fnv1a128(u128);

impl Fnv1a128 {
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    /// A hash of nothing yet.
    pub(crate) fn new() -> Self {
        Self(Self::OFFSET_BASIS)
    }

    /// Hashes `bytes` after what was written before.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u128::from(byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// The plain FNV-1a-128 state.
    pub(crate) fn finish(&self) -> u128 {
        self.0
    }

    /// The state with every bit spread over the whole result (FNV alone leaves hashes of
    /// similar inputs looking alike): with `hi`/`lo` the high and low 64 bits,
    /// `lo = mix(lo ^ rotate_left(hi, 32))`, then `hi = mix(hi ^ lo)`.
    pub(crate) fn finish_mixed(&self) -> u128 {
        let hash = self.finish();
        let hi = (hash >> 64) as u64;
        let lo = hash as u64;
        let lo = mix(lo ^ hi.rotate_left(32));
        let hi = mix(hi ^ lo);
        (u128::from(hi) << 64) | u128::from(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::{Fnv1a128, mix};

    fn fnv(bytes: &[u8]) -> u128 {
        let mut hash = Fnv1a128::new();
        hash.write(bytes);
        hash.finish()
    }

    #[test]
    fn fnv1a_128_known_answers() {
        assert_eq!(fnv(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
        assert_eq!(fnv(b"foobar"), 0x343e1662793c64bf6f0d3597ba446f18);
    }

    #[test]
    fn mix_is_the_splitmix64_finalizer() {
        // SplitMix64 seeded with 0: the first output is mix(0x9e3779b97f4a7c15).
        assert_eq!(mix(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix(0), 0);
    }
}
