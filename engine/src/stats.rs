//! Statistics: latency histograms (HdrHistogram, 3 significant digits) and
//! running tallies.

use hdrhistogram::Histogram;

/// A latency histogram over nanoseconds with 3 significant digits: any
/// recorded value is reported within 0.1% of its true value. It grows as
/// larger values arrive, so it stays small when latencies are small.
#[derive(Clone, Debug)]
pub struct Latency {
    h: Histogram<u64>,
    sum_ns: u128,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        let mut h = Histogram::new(3).expect("3 significant digits is valid");
        h.auto(true);
        Latency { h, sum_ns: 0 }
    }

    /// Records one latency [ns].
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.h.record(ns).expect("auto-resizing histogram accepts any u64");
        self.sum_ns += ns as u128;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// Exact mean [ns] (from the running sum, not from buckets); 0 when empty.
    pub fn mean_ns(&self) -> f64 {
        if self.h.is_empty() {
            0.0
        } else {
            self.sum_ns as f64 / self.h.len() as f64
        }
    }

    /// The value at quantile `q` in `[0, 1]` [ns], within 0.1%; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            self.h.value_at_quantile(q)
        }
    }

    /// Largest value [ns], within 0.1%; 0 when empty.
    pub fn max_ns(&self) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            self.h.max()
        }
    }

    /// Smallest value [ns], within 0.1%; 0 when empty.
    pub fn min_ns(&self) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            self.h.min()
        }
    }

    /// Adds every value of `other` into this histogram.
    pub fn merge(&mut self, other: &Latency) {
        self.h.add(&other.h).expect("auto-resizing histograms always merge");
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

    /// Mean of the observations; 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
