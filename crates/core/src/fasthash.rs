//! A fast, non-cryptographic hasher (the Fx hash of rustc) for the in-memory maps that
//! figures over millions of rows key by customer id. Not for maps keyed by input an
//! attacker shapes to collide on purpose where that matters; a slow figure is the worst case.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply mixes upward only: the low bits of the state depend on the low
        // bits of the input alone, and ids that differ only past their first bytes
        // (`c00012345`, `c00012346`) would crowd a few buckets, since tables index by the
        // low bits. One xor-shift-multiply (as murmur3's finaliser) spreads the top down.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuildHasher>;
pub type FxHashSet<K> = std::collections::HashSet<K, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn ids_that_differ_late_spread_over_the_low_bits() {
        let build = FxBuildHasher::default();
        let mut buckets = std::collections::HashSet::new();
        for n in 0..100_000u32 {
            let id = format!("c{n:08}");
            buckets.insert(build.hash_one(id.as_str()) & 0x1_ffff);
        }
        // 100,000 keys into 131,072 buckets: about 70% land apart when spread at random.
        assert!(buckets.len() > 65_000, "{} distinct buckets", buckets.len());
    }
}
