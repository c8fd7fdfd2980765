//! PHOLD, the classic benchmark of discrete-event engines (Fujimoto 1990),
//! with fixed semantics so its rate compares across engines:
//!
//! - `lps` logical processes, each with its own random stream;
//! - `init` events per LP at time 0;
//! - handling an event at LP `x` schedules one new event at an LP drawn
//!   uniformly from all LPs (by `x`'s stream), after 100 ms plus an
//!   exponential delay of mean 900 ms, rounded to integer nanoseconds;
//! - once `events` events have been handled, no new event is scheduled and
//!   the queue drains (so `lps x init` more events are handled).
//!
//! The checksum folds every handled event's (time, LP) in handling order,
//! so any change in order or timing changes it.

use crate::rng::{mix64, Domain, Stream};
use crate::{Model, Scheduler, SimDuration};

/// Random-stream domain of PHOLD's LPs.
const PHOLD: Domain = Domain(0x50484f4c44); // "PHOLD"

/// What a PHOLD run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PholdResult {
    /// Events handled, the drain included.
    pub handled: u64,
    /// Order- and time-sensitive checksum of the handled events.
    pub checksum: u64,
}

struct Phold {
    streams: Vec<Stream>,
    lps: u64,
    budget: u64,
    handled: u64,
    checksum: u64,
}

impl Model for Phold {
    type Event = u32;

    #[inline]
    fn handle(&mut self, lp: u32, s: &mut Scheduler<u32>) {
        self.handled += 1;
        self.checksum = mix64(self.checksum ^ s.now().as_nanos() ^ ((lp as u64) << 40));
        if self.handled <= self.budget {
            let rng = &mut self.streams[lp as usize];
            let dest = rng.below(self.lps) as u32;
            let exp = -900_000_000.0 * libm::log(rng.next_f64_nonzero());
            s.schedule(SimDuration(100_000_000 + exp.round() as u64), dest);
        }
    }
}

/// Runs PHOLD with `lps` LPs, `init` initial events each, until `events`
/// events have been handled and the queue has drained.
pub fn phold(lps: u32, init: u32, events: u64, seed: u64) -> PholdResult {
    assert!(lps > 0, "PHOLD needs at least one LP");
    let mut model = Phold {
        streams: (0..lps as u64).map(|i| Stream::new(seed, PHOLD, i)).collect(),
        lps: lps as u64,
        budget: events,
        handled: 0,
        checksum: 0,
    };
    let mut s = Scheduler::with_capacity(lps as usize * init as usize);
    for lp in 0..lps {
        for _ in 0..init {
            s.schedule(SimDuration::ZERO, lp);
        }
    }
    s.run(&mut model);
    PholdResult { handled: model.handled, checksum: model.checksum }
}

/// PHOLD of the same semantics on a bare `std` `BinaryHeap<u128>` loop,
/// the baseline the engine is measured against side by side: each key
/// packs (time, insertion sequence, LP) so the order is the engine's
/// (time, then scheduling order), and the checksum comes out the same.
pub fn phold_baseline_heap(lps: u32, init: u32, events: u64, seed: u64) -> PholdResult {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    assert!(lps > 0 && lps < 1 << 24, "the baseline packs the LP in 24 bits");
    let mut streams: Vec<Stream> = (0..lps as u64).map(|i| Stream::new(seed, PHOLD, i)).collect();
    let mut heap = BinaryHeap::with_capacity(lps as usize * init as usize);
    let key = |time: u64, seq: u64, lp: u32| Reverse(((time as u128) << 64) | ((seq as u128) << 24) | lp as u128);
    let mut seq = 0u64;
    for lp in 0..lps {
        for _ in 0..init {
            heap.push(key(0, seq, lp));
            seq += 1;
        }
    }
    let (mut handled, mut checksum) = (0u64, 0u64);
    while let Some(Reverse(k)) = heap.pop() {
        let (now, lp) = ((k >> 64) as u64, (k as u32) & 0x00ff_ffff);
        handled += 1;
        checksum = mix64(checksum ^ now ^ ((lp as u64) << 40));
        if handled <= events {
            let rng = &mut streams[lp as usize];
            let dest = rng.below(lps as u64) as u32;
            let exp = -900_000_000.0 * libm::log(rng.next_f64_nonzero());
            heap.push(key(now + 100_000_000 + exp.round() as u64, seq, dest));
            seq += 1;
        }
    }
    PholdResult { handled, checksum }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_heap_baseline_has_the_engine_s_semantics() {
        // Same events in the same order: the same checksum.
        for (lps, init) in [(1, 1), (100, 2), (1000, 1)] {
            assert_eq!(phold_baseline_heap(lps, init, 20_000, 3), phold(lps, init, 20_000, 3), "{lps} x {init}");
        }
    }

    #[test]
    fn drains_after_the_budget_and_is_reproducible() {
        let a = phold(100, 2, 10_000, 1);
        // 10,000 handled with scheduling, then the 200 pending drain.
        assert_eq!(a.handled, 10_200);
        assert_eq!(a, phold(100, 2, 10_000, 1));
        assert_ne!(a.checksum, phold(100, 2, 10_000, 2).checksum);
    }
}
