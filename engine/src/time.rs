//! Simulated time: integer nanoseconds.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// The longest duration a scenario may give [ns]: 1,000,000 s (11.6
/// days). emu's choice, far above any networking time constant, so that
/// sums of a few durations can never overflow simulated time.
pub const MAX_DURATION_NS: u64 = 1_000_000_000_000_000;

/// The largest value a distribution draws [ns]: ten times
/// [`MAX_DURATION_NS`]; draws beyond it (the far tail of an exponential or
/// lognormal) are clamped to it.
pub const MAX_SAMPLE_NS: u64 = 10 * MAX_DURATION_NS;

/// The simulated horizon [ns]: 100,000,000 s (3.2 years). No request is
/// issued after it; requests in flight then still finish (within their
/// timeouts), so simulated time stays below `u64::MAX` by a wide margin.
pub const HORIZON_NS: u64 = 100 * MAX_DURATION_NS;

/// An instant of simulated time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of simulated time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// Nanoseconds since the start.
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Time elapsed since `earlier` (saturating at zero).
    #[inline]
    pub const fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// Zero length.
    pub const ZERO: SimDuration = SimDuration(0);
    /// From nanoseconds.
    #[inline]
    pub const fn from_nanos(ns: u64) -> Self {
        SimDuration(ns)
    }
    /// From microseconds.
    #[inline]
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us * 1_000)
    }
    /// From milliseconds.
    #[inline]
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * 1_000_000)
    }
    /// From seconds.
    #[inline]
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s * 1_000_000_000)
    }
    /// Length in nanoseconds.
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    #[inline]
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.checked_add(d.0).expect("simulated time overflow"))
    }
}

impl AddAssign<SimDuration> for SimTime {
    #[inline]
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    #[inline]
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0 + d.0)
    }
}

impl AddAssign for SimDuration {
    #[inline]
    fn add_assign(&mut self, d: SimDuration) {
        self.0 += d.0;
    }
}

impl Sub for SimTime {
    type Output = SimDuration;
    #[inline]
    fn sub(self, earlier: SimTime) -> SimDuration {
        assert!(earlier <= self, "time went backwards: {earlier:?} > {self:?}");
        SimDuration(self.0 - earlier.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", SimDuration(self.0))
    }
}

impl fmt::Display for SimDuration {
    /// Human-readable with the largest unit that keeps an integer part.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns >= 1_000_000_000 {
            write!(f, "{}s", ns as f64 / 1e9)
        } else if ns >= 1_000_000 {
            write!(f, "{}ms", ns as f64 / 1e6)
        } else if ns >= 1_000 {
            write!(f, "{}us", ns as f64 / 1e3)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_display() {
        let t = SimTime::ZERO + SimDuration::from_micros(3);
        assert_eq!(t.as_nanos(), 3_000);
        assert_eq!(t - SimTime(1_000), SimDuration(2_000));
        assert_eq!(SimDuration::from_millis(2).to_string(), "2ms");
        assert_eq!(SimDuration(1_500).to_string(), "1.5us");
        assert_eq!(SimDuration(7).to_string(), "7ns");
    }

    #[test]
    #[should_panic(expected = "time went backwards")]
    fn subtraction_never_goes_backwards() {
        let _ = SimTime(1) - SimTime(2);
    }
}
