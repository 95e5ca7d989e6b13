//! The hasher of the in-memory maps and sets that figures, imports and the ingest key by
//! customer id (or other ids that come from outside: files, HTTP batches). foldhash is
//! about as fast as rustc's Fx hash on short ids, and each map gets its own seed drawn from
//! a per-process random one: ids chosen to collide under one build's hash (hash flooding)
//! do not collide under the next map's, so a hostile batch cannot turn lookups quadratic.

pub type FastBuildHasher = foldhash::fast::RandomState;
pub type FastHashMap<K, V> = std::collections::HashMap<K, V, FastBuildHasher>;
pub type FastHashSet<K> = std::collections::HashSet<K, FastBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn ids_that_differ_late_spread_over_the_low_bits() {
        let build = FastBuildHasher::default();
        let mut buckets = std::collections::HashSet::new();
        for n in 0..100_000u32 {
            let id = format!("c{n:08}");
            buckets.insert(build.hash_one(id.as_str()) & 0x1_ffff);
        }
        // 100,000 keys into 131,072 buckets: about 70% land apart when spread at random.
        assert!(buckets.len() > 65_000, "{} distinct buckets", buckets.len());
    }

    #[test]
    fn two_maps_hash_the_same_id_differently() {
        let (a, b) = (FastBuildHasher::default(), FastBuildHasher::default());
        let differ = (0..64)
            .filter(|n| {
                let id = format!("c{n}");
                a.hash_one(id.as_str()) != b.hash_one(id.as_str())
            })
            .count();
        assert!(differ > 60, "{differ} of 64 ids hashed apart");
    }
}
