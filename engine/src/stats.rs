//! Statistics: latency histograms (HdrHistogram's buckets, 3 significant
//! digits) and running tallies.

/// A latency histogram over nanoseconds with 3 significant digits: any
/// recorded value is reported within 0.1% of its true value. Its buckets,
/// quantiles, minimum and maximum are HdrHistogram's (lowest discernible
/// value 1, 3 significant digits: 2,048 sub-buckets, each power of two
/// above the first 2,048 values split in 1,024; the `hdrhistogram` crate's
/// answers, checked against it in the tests). It is emu's own so that a
/// hint can name the counter a value will land on ([`Latency::prefetch`]):
/// at 65,000 nodes recording a request's latency is a miss to memory. It
/// grows as larger values arrive, so it stays small when latencies are
/// small, and counts in `u32` (a single bucket would need 4 billion
/// samples to overflow; it saturates, as HdrHistogram's does).
#[derive(Clone, Debug)]
pub struct Latency {
    /// Counts per bucket index (`index_of`), as far as the largest seen.
    counts: Vec<u32>,
    /// Values recorded.
    total: u64,
    /// The largest value recorded (0 when none).
    max: u64,
    /// The smallest non-zero value recorded (`u64::MAX` when none).
    min_nz: u64,
    sum_ns: u128,
}

/// Sub-buckets of the first bucket: 2^11, the power of two that holds
/// 2 x 10^3 (3 significant digits).
const HDR_SUB_BITS: u32 = 11;
/// Each later bucket uses its upper half: 2^10 sub-buckets.
const HDR_HALF_BITS: u32 = HDR_SUB_BITS - 1;
const HDR_HALF: usize = 1 << HDR_HALF_BITS;

/// The bucket of `v`: how many powers of two it is above the first
/// bucket's range.
#[inline]
fn bucket_of(v: u64) -> u32 {
    (64 - HDR_SUB_BITS) - (v | ((1 << HDR_SUB_BITS) - 1)).leading_zeros()
}

/// The counter index of `v`.
#[inline]
fn index_of(v: u64) -> usize {
    let b = bucket_of(v);
    ((b as usize + 1) << HDR_HALF_BITS) + (v >> b) as usize - HDR_HALF
}

/// The lowest value of counter `i`.
fn value_of(i: usize) -> u64 {
    let (b, sub) = match (i >> HDR_HALF_BITS).checked_sub(1) {
        Some(b) => (b as u32, (i & (HDR_HALF - 1)) + HDR_HALF),
        None => (0, i & (HDR_HALF - 1)),
    };
    (sub as u64) << b
}

/// The lowest value counted with `v`.
fn lowest_equivalent(v: u64) -> u64 {
    let b = bucket_of(v);
    (v >> b) << b
}

/// The highest value counted with `v`.
fn highest_equivalent(v: u64) -> u64 {
    if v == u64::MAX {
        return u64::MAX;
    }
    lowest_equivalent(v).saturating_add(1 << bucket_of(v)) - 1
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        Latency { counts: Vec::new(), total: 0, max: 0, min_nz: u64::MAX, sum_ns: 0 }
    }

    /// Records one latency [ns].
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let i = index_of(ns);
        if i >= self.counts.len() {
            self.grow(i);
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
        self.max = self.max.max(ns);
        if ns != 0 {
            self.min_nz = self.min_nz.min(ns);
        }
        self.sum_ns += ns as u128;
    }

    /// Makes room for counter `i`: up to the end of its bucket, and no
    /// more (a bucket is added at most once, as the largest value grows).
    #[cold]
    fn grow(&mut self, i: usize) {
        let len = (i / HDR_HALF + 1) * HDR_HALF;
        self.counts.reserve_exact(len - self.counts.len());
        self.counts.resize(len, 0);
    }

    /// Starts loading the counter that `ns` would be recorded on (a hint).
    #[inline]
    pub fn prefetch(&self, ns: u64) {
        if let Some(c) = self.counts.get(index_of(ns)) {
            crate::prefetch::prefetch_line(c);
        }
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Exact mean [ns] (from the running sum, not from buckets); 0 when empty.
    pub fn mean_ns(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0..=1) [ns]: the highest value counted
    /// with the one at rank `ceil(q x count)` (at least 1); at `q` 0 the
    /// lowest counted with the smallest. 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let q = q.min(1.0);
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= rank {
                let v = value_of(i);
                return if q == 0.0 { lowest_equivalent(v) } else { highest_equivalent(v) };
            }
        }
        0
    }

    /// [`Latency::quantile_ns`] at each of `qs` (ascending), in one pass
    /// over the counts rather than one each.
    pub fn quantiles_ns<const N: usize>(&self, qs: [f64; N]) -> [u64; N] {
        debug_assert!(qs.is_sorted(), "quantiles in ascending order");
        let mut out = [0; N];
        if self.total == 0 {
            return out;
        }
        let ranks = qs.map(|q| ((q.min(1.0) * self.total as f64).ceil() as u64).max(1));
        let (mut k, mut seen) = (0, 0u64);
        let Some(&(mut next)) = ranks.first() else { return out };
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen < next {
                continue;
            }
            let v = value_of(i);
            while k < N && seen >= ranks[k] {
                out[k] = if qs[k].min(1.0) == 0.0 { lowest_equivalent(v) } else { highest_equivalent(v) };
                k += 1;
            }
            match ranks.get(k) {
                Some(&r) => next = r,
                None => break,
            }
        }
        out
    }

    /// Largest recorded value (the highest counted with it) [ns]; 0 when
    /// empty.
    pub fn max_ns(&self) -> u64 {
        if self.max == 0 {
            0
        } else {
            highest_equivalent(self.max)
        }
    }

    /// Smallest recorded value (the lowest counted with it) [ns]; 0 when
    /// empty or when a 0 was recorded.
    pub fn min_ns(&self) -> u64 {
        if self.total == 0 || self.counts.first().is_some_and(|&c| c != 0) {
            0
        } else {
            lowest_equivalent(self.min_nz)
        }
    }

    /// Adds every value of `other` into this histogram.
    pub fn merge(&mut self, other: &Latency) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (c, &o) in self.counts.iter_mut().zip(&other.counts) {
            *c = c.saturating_add(o);
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.min_nz = self.min_nz.min(other.min_nz);
        self.sum_ns += other.sum_ns;
    }
}

/// A count and a sum, for per-hop accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Observations.
    pub count: u64,
    /// Sum of the observed values.
    pub sum: u64,
}

impl Tally {
    /// Adds one observation.
    #[inline]
    pub fn add(&mut self, value: u64) {
        self.count += 1;
        self.sum += value;
    }

    /// Adds `n` observations of `value` (as `n` calls of [`Tally::add`]).
    #[inline]
    pub fn add_n(&mut self, value: u64, n: u64) {
        self.count += n;
        self.sum += value * n;
    }

    /// Mean of the observations; 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos approximation, g = 7, n = 9; relative
/// error below 1e-13).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1-x) = π / sin(πx).
        return libm::log(std::f64::consts::PI / libm::sin(std::f64::consts::PI * x)) - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G.iter().enumerate().skip(1).fold(G[0], |acc, (i, &g)| acc + g / (x + i as f64));
    0.5 * libm::log(2.0 * std::f64::consts::PI) + (x + 0.5) * libm::log(t) - t + libm::log(sum)
}

/// The regularized upper incomplete gamma function `Q(a, x)`: a series
/// below `x = a + 1`, a continued fraction (Lentz) above.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let gln = ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut del, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * libm::exp(-x + a * libm::log(x) - gln)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        libm::exp(-x + a * libm::log(x) - gln) * h
    }
}

/// A histogram of long delays recorded in great numbers (a network
/// programming latency per update and node: hundreds of millions of
/// records in a large run): microseconds in log-linear buckets, 64 per
/// octave (within 1.6%), exact below 64 us, in one flat array of 2,560
/// counts (10 KB) allocated up front, so a record is a few integer
/// operations and one increment. The maximum is kept exactly.
#[derive(Clone, Debug)]
pub struct CoarseLatency {
    counts: Box<[u32]>,
    n: u64,
    max_ns: u64,
}

/// Sub-buckets per octave (log2).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets: exact below `SUB` us, then `SUB` per octave up to 2^45 us
/// (above `MAX_SAMPLE_NS`).
const BUCKETS: usize = ((45 - SUB_BITS as usize) + 1) * SUB as usize;

impl Default for CoarseLatency {
    fn default() -> Self {
        Self::new()
    }
}

impl CoarseLatency {
    /// An empty histogram.
    pub fn new() -> CoarseLatency {
        CoarseLatency { counts: vec![0; BUCKETS].into_boxed_slice(), n: 0, max_ns: 0 }
    }

    /// The bucket of `us`.
    #[inline]
    fn bucket(us: u64) -> usize {
        if us < SUB {
            return us as usize;
        }
        let e = 63 - us.leading_zeros();
        let shift = e - SUB_BITS;
        let i = ((shift as u64 + 1) << SUB_BITS) + ((us >> shift) - SUB);
        (i as usize).min(BUCKETS - 1)
    }

    /// The largest microsecond value of bucket `i`.
    fn upper_us(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let shift = (i >> SUB_BITS) - 1;
        (((i & (SUB - 1)) + SUB + 1) << shift) - 1
    }

    /// Records one delay [ns] (in whole microseconds).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns / 1_000)] += 1;
        self.n += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The value at quantile `q` in `[0, 1]` [ns] (nearest rank: the top of
    /// the bucket holding the `ceil(q x n)`-th smallest, within 1.6%, and
    /// never above the maximum); 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= rank {
                return (Self::upper_us(i) * 1_000 + 999).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Largest value [ns], exact; 0 when empty.
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// The share of values at most `ns` (counting whole buckets, within
    /// 1.6%); 0 when empty.
    pub fn fraction_at_most(&self, ns: u64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let last = Self::bucket(ns / 1_000);
        let at_most: u64 = self.counts[..=last].iter().map(|&c| c as u64).sum();
        at_most as f64 / self.n as f64
    }
}

/// Pearson's chi-square test of `observed` counts against `expected`
/// proportions (any positive scale): returns (statistic, p-value) with
/// `len - 1` degrees of freedom. Categories expected at zero are skipped.
pub fn chi_square(observed: &[u64], expected: &[f64]) -> (f64, f64) {
    assert_eq!(observed.len(), expected.len());
    let total: u64 = observed.iter().sum();
    let scale: f64 = expected.iter().sum();
    let mut stat = 0.0;
    let mut k = 0;
    for (&o, &e) in observed.iter().zip(expected) {
        if e <= 0.0 {
            continue;
        }
        let e = e / scale * total as f64;
        stat += (o as f64 - e).powi(2) / e;
        k += 1;
    }
    if k < 2 || total == 0 {
        return (0.0, 1.0);
    }
    (stat, gamma_q((k - 1) as f64 / 2.0, stat / 2.0))
}

#[cfg(test)]
mod tests {

    /// The histogram answers as the `hdrhistogram` crate's (3 significant
    /// digits, auto-resizing, `u32` counts) for values from 0 to 2^63 and
    /// beyond, merged in every order.
    #[test]
    fn latency_answers_as_hdrhistogram() {
        let mut rng = crate::rng::Stream::new(7, crate::rng::Domain(0), 0);
        let qs = [0.0, 1e-9, 0.25, 0.5, 0.9, 0.99, 0.999, 0.99999, 1.0, 1.5, -0.5];
        let check = |ours: &Latency, theirs: &hdrhistogram::Histogram<u32>| {
            assert_eq!(ours.count(), theirs.len());
            assert_eq!(ours.max_ns(), theirs.max());
            assert_eq!(ours.min_ns(), theirs.min());
            for q in qs {
                assert_eq!(ours.quantile_ns(q), theirs.value_at_quantile(q), "quantile {q}");
            }
            let ascending = [-0.5, 0.0, 1e-9, 0.25, 0.5, 0.9, 0.99, 0.999, 0.99999, 1.0, 1.5];
            assert_eq!(ours.quantiles_ns(ascending), ascending.map(|q| theirs.value_at_quantile(q)));
        };
        let mut all = (Latency::default(), hdrhistogram::Histogram::<u32>::new(3).unwrap());
        all.1.auto(true);
        for round in 0..40u64 {
            let mut h = (Latency::new(), hdrhistogram::Histogram::<u32>::new(3).unwrap());
            h.1.auto(true);
            let n = 1 + rng.below(3_000);
            for _ in 0..n {
                // Spans of 2^0 to 2^63: small integers, latencies, huge.
                let bits = rng.below(64) as u32;
                let v = match round % 4 {
                    0 => rng.below(1 << bits.max(1)),
                    1 => 300_000 + rng.below(200_000),
                    2 => rng.below(4_096),
                    _ => (1u64 << 63) + rng.below(1 << 40),
                };
                h.0.record(v);
                h.1.record(v).unwrap();
            }
            if round == 3 {
                h.0.record(0);
                h.1.record(0).unwrap();
            }
            check(&h.0, &h.1);
            if round % 2 == 0 {
                all.0.merge(&h.0);
                all.1.add(&h.1).unwrap();
            } else {
                // The other way round: the bigger into the smaller.
                let mut m = h.clone();
                m.0.merge(&all.0);
                m.1.add(&all.1).unwrap();
                all = m;
            }
            check(&all.0, &all.1);
        }
        let empty = Latency::new();
        assert_eq!((empty.count(), empty.max_ns(), empty.min_ns(), empty.quantile_ns(0.5)), (0, 0, 0, 0));
    }

    use super::*;

    #[test]
    fn coarse_latency_buckets_are_contiguous_and_within_two_percent() {
        for us in [0u64, 1, 63, 64, 65, 127, 128, 1_000, 1_000_000, 30_000_000, 1 << 40] {
            let b = CoarseLatency::bucket(us);
            let top = CoarseLatency::upper_us(b);
            assert!(top >= us, "{us} above its bucket's top {top}");
            assert!(top as f64 <= us as f64 * 1.016 + 1.0, "{us}: top {top}");
            if b > 0 {
                assert!(CoarseLatency::upper_us(b - 1) < us, "{us} fits the bucket below");
            }
        }
        let mut h = CoarseLatency::new();
        for ms in 1..=1000u64 {
            h.record(ms * 1_000_000);
        }
        let p50 = h.quantile_ns(0.5) as f64;
        assert!((p50 / 500e6 - 1.0).abs() < 0.02, "{p50}");
        assert_eq!(h.max_ns(), 1_000_000_000);
        assert_eq!(h.quantile_ns(1.0), 1_000_000_000);
        assert!((h.fraction_at_most(250_000_000) - 0.25).abs() < 0.01);
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn quantiles_within_three_digits() {
        let mut l = Latency::new();
        for v in 1..=100_000u64 {
            l.record(v * 10);
        }
        assert_eq!(l.count(), 100_000);
        let p50 = l.quantile_ns(0.5) as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.001, "p50 {p50}");
        let p99 = l.quantile_ns(0.99) as f64;
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.001, "p99 {p99}");
        assert!((l.mean_ns() - 500_005.0).abs() < 1e-6);
        assert!((l.max_ns() as f64 / 1_000_000.0 - 1.0).abs() < 0.001);
    }

    #[test]
    fn chi_square_p_values_match_tables() {
        // ln Γ(5) = ln 24; Γ(0.5) = √π.
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        // Critical values of the chi-square distribution (any table):
        // 9 dof, 16.919 at 0.05 and 27.877 at 0.001; 1 dof, 3.841 at 0.05.
        for (x, dof, p) in [(16.919, 9.0, 0.05), (27.877, 9.0, 0.001), (3.841, 1.0, 0.05), (0.0, 4.0, 1.0)] {
            let q = gamma_q(dof / 2.0, x / 2.0);
            assert!((q - p).abs() < 1e-4, "x {x} dof {dof}: {q} vs {p}");
        }
        let (stat, p) = chi_square(&[100, 100, 100, 100], &[1.0; 4]);
        assert_eq!((stat, p), (0.0, 1.0));
        let (stat, p) = chi_square(&[130, 70], &[1.0, 1.0]);
        assert!((stat - 18.0).abs() < 1e-12 && p < 0.001);
        // Against weights 3:1, a 75/25 split fits perfectly.
        assert_eq!(chi_square(&[75, 25], &[3.0, 1.0]).0, 0.0);
    }

    #[test]
    fn empty_is_zero_and_merge_adds() {
        let mut a = Latency::new();
        assert_eq!((a.count(), a.quantile_ns(0.5), a.max_ns()), (0, 0, 0));
        let mut b = Latency::new();
        b.record(5);
        b.record(7);
        a.record(1);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.mean_ns(), 13.0 / 3.0);
        let mut t = Tally::default();
        t.add(3);
        t.add(5);
        assert_eq!((t.count, t.sum, t.mean()), (2, 8, 4.0));
    }
}
