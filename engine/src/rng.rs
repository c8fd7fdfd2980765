//! Per-entity random streams.
//!
//! One master seed per run; every entity (a flow, a node, a pod, a link)
//! draws from its own [`Stream`], derived from `(seed, domain, id)` with the
//! SplitMix64 finaliser. The derivation is a fixed arithmetic function, so a
//! stream's numbers never change between Rust releases or platforms (unlike
//! `std::hash::DefaultHasher`), and adding an entity never perturbs the
//! numbers another entity draws. The generator is xoshiro256++ (Blackman &
//! Vigna 2019): 32 bytes of state, fast, and statistically sound for
//! simulation.
//!
//! [`Stream`] implements `rand`'s `TryRng` (hence `Rng`), so `rand`'s
//! distributions can draw from it too.

use std::convert::Infallible;

/// The SplitMix64 finaliser: a bijective 64-bit mixer.
#[inline]
pub const fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Identifies a kind of entity, so that flow 3 and node 3 get unrelated
/// streams. Values are part of the reproducibility contract: never reuse or
/// renumber one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain(pub u64);

/// A xoshiro256++ random stream.
#[derive(Clone, Debug)]
pub struct Stream {
    s: [u64; 4],
}

impl Stream {
    /// The stream of entity `id` of kind `domain` under master `seed`.
    pub fn new(seed: u64, domain: Domain, id: u64) -> Stream {
        // Chain the mixer over the three inputs, then expand with SplitMix64
        // into the four state words (the seeding xoshiro's authors advise).
        let mut x = mix64(mix64(mix64(seed) ^ domain.0) ^ id);
        let mut s = [0u64; 4];
        for w in &mut s {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *w = mix64(x);
        }
        if s == [0; 4] {
            s[0] = 1; // the all-zero state is the one fixed point
        }
        Stream { s }
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform double in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform double in `(0, 1]`: safe to take the logarithm of.
    #[inline]
    pub fn next_f64_nonzero(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)`, unbiased (Lemire's method). `n > 0`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let mut m = (self.next_u64() as u128) * (n as u128);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = (self.next_u64() as u128) * (n as u128);
            }
        }
        (m >> 64) as u64
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

/// The position of `index` in a pseudo-random permutation of `0..n` chosen
/// by `key`: a bijection, computed in O(1) memory and expected O(1) time
/// (a 4-round Feistel network on the next power of two, cycle-walking back
/// into range). Used where each of many entities needs its own ordering of
/// a large set without storing it.
pub fn permute(index: u64, n: u64, key: u64) -> u64 {
    assert!(index < n, "permute: index {index} out of 0..{n}");
    if n <= 1 {
        return 0;
    }
    let bits = 64 - (n - 1).leading_zeros();
    let half = bits.div_ceil(2);
    let mask = (1u64 << half) - 1;
    let mut x = index;
    loop {
        let (mut l, mut r) = (x >> half, x & mask);
        for round in 0..4u64 {
            let f = mix64(r ^ key.wrapping_add(round.wrapping_mul(0xA24B_AED4_963E_E407))) & mask;
            (l, r) = (r, l ^ f);
        }
        x = (l << half) | r;
        if x < n {
            return x;
        }
    }
}

impl rand::rand_core::TryRng for Stream {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next_u64() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // SplitMix64 from seed 0: first outputs of the reference generator
        // (Vigna, splitmix64.c) are mix64(0), mix64(golden), ...
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn streams_are_stable_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut s = Stream::new(42, Domain(1), 7);
                move |_| s.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut s = Stream::new(42, Domain(1), 7);
                move |_| s.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let mut other = Stream::new(42, Domain(2), 7);
        assert_ne!(a[0], other.next_u64());
        let mut other_id = Stream::new(42, Domain(1), 8);
        assert_ne!(a[0], other_id.next_u64());
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut s = Stream::new(1, Domain(0), 0);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[s.below(10) as usize] += 1;
        }
        // Chi-square with 9 degrees of freedom; 27.88 is the 0.001 critical value.
        let chi2: f64 = counts.iter().map(|&c| (c as f64 - 10_000.0).powi(2) / 10_000.0).sum();
        assert!(chi2 < 27.88, "chi2 = {chi2}, counts = {counts:?}");
    }

    #[test]
    fn permute_is_a_bijection_and_depends_on_key() {
        for n in [1u64, 2, 3, 10, 1000, 1025] {
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let p = permute(i, n, 77);
                assert!(p < n);
                assert!(!seen[p as usize], "n={n}: {p} hit twice");
                seen[p as usize] = true;
            }
        }
        let a: Vec<u64> = (0..100).map(|i| permute(i, 100, 1)).collect();
        let b: Vec<u64> = (0..100).map(|i| permute(i, 100, 2)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn unit_floats_stay_in_range() {
        let mut s = Stream::new(3, Domain(0), 0);
        for _ in 0..10_000 {
            let x = s.next_f64();
            assert!((0.0..1.0).contains(&x));
            let y = s.next_f64_nonzero();
            assert!(y > 0.0 && y <= 1.0);
        }
    }
}
