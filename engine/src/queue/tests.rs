//! The queue's order against a sorted reference.
use super::*;

/// A xorshift64 stream from `seed` (non-zero), for the randomized tests.
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[test]
fn orders_by_time_then_insertion() {
    let mut q = EventQueue::new();
    q.push(SimTime(5), 'a');
    q.push(SimTime(1), 'b');
    q.push(SimTime(5), 'c');
    q.push(SimTime(1), 'd');
    q.push(SimTime(0), 'e');
    let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
    assert_eq!(order, vec!['e', 'b', 'd', 'a', 'c']);
}

#[test]
fn large_times_do_not_collide_with_sequence() {
    let mut q = EventQueue::new();
    q.push(SimTime(u64::MAX - 1), 1u8);
    q.push(SimTime(3), 2u8);
    assert_eq!(q.pop(), Some((SimTime(3), 2)));
    assert_eq!(q.pop(), Some((SimTime(u64::MAX - 1), 1)));
    assert!(q.is_empty());
}

/// Against a sorted reference: random times with many ties, pushes
/// interleaved with pops, as a simulation does.
#[test]
fn matches_a_sorted_reference_under_interleaving() {
    let mut q = EventQueue::new();
    let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, seq)
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut seq = 0u64;
    let mut now = 0u64;
    for round in 0..20_000 {
        let pushes = next() % 3;
        for _ in 0..pushes {
            let t = now + next() % 50;
            q.push(SimTime(t), seq);
            reference.push((t, seq));
            seq += 1;
        }
        if round % 2 == 0 || pushes == 0 {
            let want = reference.iter().copied().min();
            if let Some(w) = want {
                reference.retain(|&r| r != w);
            }
            let got = q.pop().map(|(t, e)| (t.0, e));
            assert_eq!(got, want, "round {round}");
            if let Some((t, _)) = got {
                assert!(t >= now);
                now = t;
            }
        }
        assert_eq!(q.len(), reference.len());
    }
}

/// xorshift64: the tests' own deterministic random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The queue beside a sorted reference of (time, seq): every push, pop,
/// `peek_time` and `len` must agree.
struct Checked {
    q: EventQueue<u64>,
    reference: std::collections::BTreeSet<(u64, u64)>,
    seq: u64,
    now: u64,
}

impl Checked {
    fn new() -> Self {
        Checked { q: EventQueue::new(), reference: Default::default(), seq: 0, now: 0 }
    }
    fn push(&mut self, t: u64) {
        self.q.push(SimTime(t), self.seq);
        self.reference.insert((t, self.seq));
        self.seq += 1;
        self.check_peek();
    }
    fn pop(&mut self) -> Option<u64> {
        let want = self.reference.pop_first();
        let got = self.q.pop().map(|(t, e)| (t.0, e));
        assert_eq!(got, want, "pop after {} pushes", self.seq);
        self.check_peek();
        if let Some((t, _)) = got {
            self.now = t;
        }
        got.map(|(t, _)| t)
    }
    fn check_peek(&self) {
        // The full check scans the whole queue: every so often suffices.
        if self.seq.is_multiple_of(32) {
            self.q.check_invariants();
        }
        assert_eq!(self.q.peek_time().map(|t| t.0), self.reference.first().map(|r| r.0));
        assert_eq!(self.q.len(), self.reference.len());
        assert_eq!(self.q.is_empty(), self.reference.is_empty());
    }
    fn drain(&mut self) {
        while self.pop().is_some() {}
        assert!(self.q.is_empty());
    }
}

/// Runs `rounds` of a simulation-like mix: each round pops one event (if
/// any) and pushes 0 to 2 events at `delay(now, rng)` after the last popped
/// time, after `initial` pushes at time zero; then drains.
fn simulate(seed: u64, initial: usize, rounds: usize, mut delay: impl FnMut(&mut Rng) -> u64) {
    let mut rng = Rng(seed);
    let mut c = Checked::new();
    for _ in 0..initial {
        c.push(0);
    }
    for _ in 0..rounds {
        c.pop();
        for _ in 0..rng.below(3) {
            let d = delay(&mut rng);
            c.push(c.now.saturating_add(d));
        }
        if c.q.is_empty() {
            c.push(c.now);
        }
    }
    c.drain();
}

#[test]
fn ties_at_one_time_pop_in_insertion_order() {
    let mut c = Checked::new();
    for _ in 0..5_000 {
        c.push(7);
    }
    for _ in 0..2_500 {
        c.pop();
        c.push(7);
    }
    c.drain();
    // Delay zero, as emu schedules most: everything at the same times.
    simulate(1, 500, 20_000, |r| if r.below(4) == 0 { r.below(3) } else { 0 });
}

#[test]
fn bimodal_nanosecond_and_ten_second_delays() {
    simulate(2, 300, 30_000, |r| if r.below(10) == 0 { 10_000_000_000 } else { 1 });
    simulate(3, 2_000, 30_000, |r| if r.below(2) == 0 { 10_000_000_000 + r.below(5) } else { r.below(2) });
}

#[test]
fn exponential_delays_as_phold() {
    simulate(4, 1_000, 40_000, |r| {
        let u = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
        100_000_000 + (-900_000_000.0 * (1.0 - u).ln()) as u64
    });
    // Delays over many orders of magnitude: ns to seconds.
    simulate(5, 1_000, 40_000, |r| 1u64 << r.below(34));
}

#[test]
fn huge_times_up_to_the_end_of_time() {
    let mut rng = Rng(6);
    let mut c = Checked::new();
    for i in 0..20_000u64 {
        let t = match rng.below(5) {
            0 => u64::MAX - rng.below(3),
            1 => u64::MAX - 1 - rng.below(1 << 40),
            2 => rng.below(1 << 63),
            _ => c.now.saturating_add(rng.below(1_000)),
        };
        c.push(t.max(c.now));
        if i % 3 != 0 {
            c.pop();
        }
    }
    c.drain();
    simulate(7, 100, 20_000, |r| if r.below(50) == 0 { u64::MAX } else { r.below(100) });
}

#[test]
fn a_far_future_event_among_many_near_ones() {
    for far in [u64::MAX - 1, 1 << 50, 10_000_000_000] {
        let mut rng = Rng(8);
        let mut c = Checked::new();
        c.push(far);
        for _ in 0..3_000 {
            c.push(rng.below(1_000));
        }
        for _ in 0..30_000 {
            c.pop();
            let d = rng.below(1_000);
            c.push(c.now + d);
        }
        c.drain();
    }
}

#[test]
fn grows_drains_to_empty_and_grows_again() {
    let mut rng = Rng(9);
    let mut c = Checked::new();
    for round in 0..4u64 {
        let n = 500 + 4_000 * (round % 2);
        for _ in 0..n {
            let t = c.now + rng.below(10_000 << round);
            c.push(t);
        }
        // Half down, a little up, then empty.
        for _ in 0..n / 2 {
            c.pop();
        }
        for _ in 0..n / 4 {
            let t = c.now + rng.below(100);
            c.push(t);
        }
        c.drain();
        // Empty, later and earlier than before: both must work.
        c.push(c.now + 5);
        c.push(c.now);
        c.drain();
    }
}

#[test]
fn pushes_before_the_last_popped_time_still_sort() {
    // Not what the scheduler does, but the queue allows it.
    let mut rng = Rng(10);
    let mut c = Checked::new();
    for _ in 0..20_000 {
        c.push(rng.below(1 << 20));
        if rng.below(3) != 0 {
            c.pop();
        }
    }
    c.drain();
}

#[test]
fn memory_follows_the_pending_count() {
    // A far outlier and waves of growth: the ladder's bucket slots stay
    // within a small multiple of the peak pending, not of pushes made.
    let mut rng = Rng(11);
    let mut q = EventQueue::new();
    let mut now = 0;
    q.push(SimTime(u64::MAX - 1), 0u32);
    for wave in 0..20u64 {
        for _ in 0..2_000 {
            q.push(SimTime(now + rng.below(1 << (wave % 40))), 0);
        }
        while q.len() > 1 {
            now = q.pop().unwrap().0 .0;
        }
    }
    let (slots, capacity) = q.footprint();
    assert!(slots <= 4 * 2_001 && capacity <= 40 * 2_001, "{slots} bucket slots, {capacity} entries of capacity");
}

/// `refill`'s work (events moved, buckets scanned) per push, on a mix of
/// `rounds` pops each followed by a push at `delay`, after `initial`
/// pushes at `start(i)`.
fn work_per_push(initial: u64, rounds: u64, start: impl Fn(u64) -> u64, mut delay: impl FnMut(&mut Rng) -> u64) -> f64 {
    let mut rng = Rng(12);
    let mut q = EventQueue::new();
    for i in 0..initial {
        q.push(SimTime(start(i)), 0u32);
    }
    for _ in 0..rounds {
        let (t, _) = q.pop().unwrap();
        let d = delay(&mut rng);
        q.push(SimTime(t.0.saturating_add(d)), 0);
    }
    while q.pop().is_some() {}
    q.work as f64 / (initial + rounds) as f64
}

#[test]
fn skewed_times_cost_a_bounded_work_per_event() {
    // Each case holds 5,000 events: O(n) work per operation would be
    // thousands per push; the ladder does a few (each event moves at most
    // once per level, and scanning is bounded by events filed).
    let n = 5_000;
    let cases: [(&str, f64); 5] = [
        ("all at one time", work_per_push(n, 50_000, |_| 7, |_| 0)),
        (
            "bimodal 1 ns and 10 s",
            work_per_push(n, 50_000, |i| i, |r| if r.below(2) == 0 { 1 } else { 10_000_000_000 }),
        ),
        ("a far outlier", work_per_push(n, 50_000, |i| if i == 0 { u64::MAX - 1 } else { i }, |r| r.below(1_000))),
        ("near the end of time", work_per_push(n, 50_000, |i| u64::MAX - 1 - i, |r| r.below(2))),
        ("uniform", work_per_push(n, 50_000, |i| i * 1_000, |r| r.below(5_000_000))),
    ];
    for (name, work) in cases {
        assert!(work < 16.0, "{name}: {work:.1} moves and scans per push");
    }
}

#[test]
fn refills_after_emptying_with_pushes_on_both_sides_of_the_last_span() {
    // Emptied, the queue's last bucket may end after the last pop: events
    // pushed then fall both before and after that end, then the ladder
    // is rebuilt from them.
    let mut rng = Rng(13);
    let mut c = Checked::new();
    for round in 0..30u64 {
        let n = 50 + rng.below(400 << (round % 4));
        for _ in 0..n {
            let t = c.now + rng.below(1 << (4 * (round % 8)));
            c.push(t);
        }
        for _ in 0..n / 3 {
            c.pop();
            let t = c.now + rng.below(1 << 10);
            c.push(t);
        }
        c.drain();
    }
}

#[test]
fn pushes_after_emptying_a_wide_bucket_keep_their_order() {
    // Two events 2^30 ns apart make 2^30-ns buckets; once both are popped
    // the last bucket's span still reaches 2^30 ns past the clock, so what
    // is pushed next falls before and after its end, the crowded near side
    // spilling into a new level.
    let mut c = Checked::new();
    c.push(0);
    c.push(1 << 40);
    c.push((1 << 40) + (1 << 30));
    c.drain();
    let (now, end) = (c.now, c.now + (1 << 30));
    c.push(now); // within the old span: into near
    for i in 0..10 {
        c.push(end + i); // past its end
    }
    for i in 0..1_000 {
        c.push(now + i); // within it
        if i % 100 == 0 {
            c.push(end - 1 + i); // on both sides of its end
        }
    }
    c.drain();
}

/// `peek` shows the event the next `pop` returns, at every depth (heap
/// mode, bottom, near, after refills).
#[test]
fn peek_shows_what_pop_returns() {
    let mut q = EventQueue::new();
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut now = 0u64;
    for i in 0..50_000u32 {
        let pushes = if i < 25_000 { 2 } else { next() % 2 };
        for _ in 0..pushes {
            let d = if next().is_multiple_of(4) { 0 } else { next() % 1_000_000 };
            q.push(SimTime(now + d), i);
        }
        let peeked = q.peek().copied();
        let popped = q.pop();
        assert_eq!(peeked, popped.map(|(_, e)| e), "step {i}");
        if let Some((t, _)) = popped {
            now = t.0;
        }
    }
    while let Some(p) = q.peek().copied() {
        assert_eq!(Some(p), q.pop().map(|(_, e)| e));
    }
    assert!(q.is_empty() && q.pop().is_none());
}

#[test]
fn a_bucket_sorted_by_its_keys_is_in_stable_time_order() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for n in [17, 40, 127, SPLIT] {
        for spread in [3, 1_000, 1 << 40] {
            let base = next() % (1 << 50);
            let mut bucket: Vec<Slot<u32>> =
                (0..n as u32).map(|i| Slot { time: base + next() % spread, event: i }).collect();
            let mut want = bucket.clone();
            want.sort_by_key(|s| s.time);
            let mut bottom = Vec::new();
            assert!(ladder::key_sort_into(&mut bucket, &mut bottom));
            assert!(bucket.is_empty());
            let got: Vec<(u64, u32)> = bottom.iter().map(|s| (s.time, s.event)).collect();
            assert_eq!(got, want.iter().map(|s| (s.time, s.event)).collect::<Vec<_>>(), "n {n} spread {spread}");
        }
    }
    // A span too wide for the keys is left to the stable sort.
    let mut bucket = vec![Slot { time: 0, event: 0u32 }, Slot { time: u64::MAX - 1, event: 1 }];
    let mut bottom = Vec::new();
    assert!(!ladder::key_sort_into(&mut bucket, &mut bottom));
    assert_eq!((bucket.len(), bottom.len()), (2, 0));
}
