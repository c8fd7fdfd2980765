//! Hash maps and sets of the models: `std`'s tables with foldhash's fixed
//! hasher instead of SipHash with a random key. The keys are emu's own
//! (addresses, ids, names), not an adversary's, so HashDoS resistance buys
//! nothing, and a probe per packet (pod by IP, endpoint by pod) is on the
//! hot path. Iteration order never reaches an output either way.

/// A hash map with foldhash's fixed hasher; make one with `default()` or
/// [`with_capacity`].
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// A hash set with foldhash's fixed hasher.
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::FixedState>;

/// An empty [`HashMap`] with room for `n` entries.
pub fn with_capacity<K, V>(n: usize) -> HashMap<K, V> {
    HashMap::with_capacity_and_hasher(n, Default::default())
}
