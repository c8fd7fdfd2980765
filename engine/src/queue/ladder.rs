//! The ladder's levels and the refill that walks them; see the module docs
//! of `queue` for the design and why it keeps the order.

use super::{EventQueue, Slot, KEEP_CAPACITY, MAX_LEVELS, PER_BUCKET, PER_SPLIT_BUCKET, SHALLOW, SPLIT};

/// One rung: buckets of width `1 << shift` from `base`, the next to hand
/// out at `cur`, and an overflow for events at or after `end`. Every
/// vector holds its events in insertion order.
pub(super) struct Level<E> {
    base: u64,
    shift: u32,
    /// Buckets in use (`buckets` may hold more, empty, for reuse).
    nb: usize,
    /// The next bucket to hand out; those before it are spent.
    cur: usize,
    /// The start of bucket `cur`: this level holds no event before it.
    cur_start: u64,
    /// The end of bucket `nb - 1` (saturating at `u64::MAX`) or, if
    /// earlier, of the span this level may cover: the coarser level's
    /// next bucket's start.
    end: u64,
    buckets: Vec<Vec<Slot<E>>>,
    overflow: Vec<Slot<E>>,
}

impl<E: Copy> Level<E> {
    fn empty() -> Self {
        Level { base: 0, shift: 0, nb: 0, cur: 0, cur_start: 0, end: 0, buckets: Vec::new(), overflow: Vec::new() }
    }

    /// The start of bucket `i`, saturating at `u64::MAX`.
    fn start(&self, i: usize) -> u64 {
        (self.base as u128 + ((i as u128) << self.shift)).min(u64::MAX as u128) as u64
    }

    /// Appends `slot`, at or after `cur_start`, to its bucket or the overflow.
    #[inline]
    fn insert(&mut self, slot: Slot<E>) {
        if slot.time >= self.end {
            self.overflow.push(slot);
        } else {
            self.buckets[((slot.time - self.base) >> self.shift) as usize].push(slot);
        }
    }

    /// Spreads `items` (all of which it drains, in order), spanning
    /// `[min, max]`, over about `expect` buckets of a power-of-two width;
    /// the level covers no time at or after `limit` (which is above `max`).
    fn build(&mut self, items: &mut Vec<Slot<E>>, (min, max): (u64, u64), limit: u64, expect: usize) {
        let span = max - min;
        let target = expect.max(2) as u64;
        // The least power of two above `span / target`: then `span >> shift`
        // is below `target`, and `target >= 2` keeps `shift` below 64.
        let shift = 64 - (span / target).leading_zeros();
        let nb = (span >> shift) as usize + 1;
        self.base = min;
        self.shift = shift;
        self.nb = nb;
        self.cur = 0;
        self.cur_start = min;
        self.end = self.start(nb).min(limit);
        if self.buckets.len() < nb {
            self.buckets.resize_with(nb, Vec::new);
        } else if self.buckets.len() > 4 * nb + 256 {
            self.buckets.truncate(nb);
            self.buckets.shrink_to_fit();
        }
        for e in items.drain(..) {
            self.buckets[((e.time - min) >> shift) as usize].push(e);
        }
    }

    /// The events held: the buckets not yet spent, then the overflow.
    pub(super) fn pending(&self) -> impl Iterator<Item = &Slot<E>> {
        self.buckets[self.cur..self.nb].iter().flatten().chain(&self.overflow)
    }

    /// The next non-empty bucket, marked spent, or `None` when all are.
    fn next_bucket(&mut self) -> Option<usize> {
        while self.cur < self.nb {
            let b = self.cur;
            self.cur += 1;
            if !self.buckets[b].is_empty() {
                self.cur_start = self.start(self.cur).min(self.end);
                return Some(b);
            }
        }
        self.cur_start = self.end;
        None
    }
}

/// A level rebuilt from its overflow of `m` events is sized for up to
/// this many times `m` (for the events pending), so that scanning its
/// buckets costs at most `REBUILD_GROWTH / PER_BUCKET` per event filed.
const REBUILD_GROWTH: usize = 8;

/// Buckets of at most this many events are sorted by rank.
const RANK_SORT: usize = 16;

/// Moves `bucket` (at most [`RANK_SORT`] events, in insertion order) into
/// the empty `bottom` sorted by time, ties in insertion order: each event
/// goes to the place its rank says (the events before it in time, or at
/// its time and inserted before it), counted without branches, which on a
/// few events in random order beats an insertion sort's mispredictions.
fn rank_sort_into<E: Copy>(bucket: &mut Vec<Slot<E>>, bottom: &mut Vec<Slot<E>>) {
    let n = bucket.len();
    let mut times = [0u64; RANK_SORT];
    for (t, e) in times.iter_mut().zip(bucket.iter()) {
        *t = e.time;
    }
    let times = &times[..n];
    bottom.extend_from_slice(bucket);
    for (i, (e, &t)) in bucket.iter().zip(times).enumerate() {
        let before = times[..i].iter().map(|&o| (o <= t) as usize).sum::<usize>()
            + times[i + 1..].iter().map(|&o| (o < t) as usize).sum::<usize>();
        bottom[before] = *e;
    }
    bucket.clear();
}

/// Moves `bucket` (at most [`SPLIT`] events, in insertion order, spanning
/// less than 2^57 ns) into the empty `bottom` sorted by time, ties in
/// insertion order: each event's key is its time from the earliest and
/// then its place in the bucket, so the keys are distinct and an unstable
/// sort of plain integers gives the stable order (`refill` took a quarter
/// fewer instructions than with a stable sort of the events by time, in
/// docs/performance.md's 20-node run); `false`, leaving both untouched,
/// for a wider span.
pub(super) fn key_sort_into<E: Copy>(bucket: &mut Vec<Slot<E>>, bottom: &mut Vec<Slot<E>>) -> bool {
    const INDEX_BITS: u32 = SPLIT.trailing_zeros();
    const _: () = assert!(SPLIT.is_power_of_two());
    let n = bucket.len();
    debug_assert!(n <= SPLIT);
    let (lo, hi) = time_range(bucket);
    if hi - lo >= 1 << (64 - INDEX_BITS) {
        return false;
    }
    let mut keys = [0u64; SPLIT];
    for (k, (i, e)) in keys.iter_mut().zip(bucket.iter().enumerate()) {
        *k = ((e.time - lo) << INDEX_BITS) | i as u64;
    }
    let keys = &mut keys[..n];
    keys.sort_unstable();
    let mask = (1 << INDEX_BITS) - 1;
    bottom.extend(keys.iter().map(|&k| bucket[(k & mask) as usize]));
    bucket.clear();
    true
}

/// Moves `bucket` into the empty `bottom`, sorted by time, ties in
/// insertion order.
fn fill_bottom<E: Copy>(bucket: &mut Vec<Slot<E>>, bottom: &mut Vec<Slot<E>>) {
    if bucket.len() <= RANK_SORT {
        rank_sort_into(bucket, bottom);
        return;
    }
    if bucket.len() <= SPLIT && key_sort_into(bucket, bottom) {
        return;
    }
    if bucket.len() <= SPLIT {
        // Copied, so that the bucket keeps its own allocation.
        bottom.extend_from_slice(bucket);
        bucket.clear();
    } else {
        std::mem::swap(bottom, bucket);
        if bucket.capacity() > KEEP_CAPACITY {
            *bucket = Vec::new();
        }
    }
    // Stable: events at one time stay in insertion order.
    bottom.sort_by_key(|e| e.time);
}

/// The least and greatest time in `items` (not empty).
fn time_range<E>(items: &[Slot<E>]) -> (u64, u64) {
    items.iter().fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e.time), hi.max(e.time)))
}

impl<E: Copy> EventQueue<E> {
    /// Files `slot`, at or after `bottom_end`, in the ladder or the top.
    #[inline]
    pub(super) fn push_far(&mut self, slot: Slot<E>) {
        let Some((finest, coarser)) = self.levels.split_last_mut() else {
            self.top.push(slot);
            return;
        };
        for level in coarser {
            if slot.time >= level.cur_start {
                level.insert(slot);
                return;
            }
        }
        // The finest level starts at `bottom_end`, at or before `slot`.
        debug_assert!(slot.time >= finest.cur_start);
        finest.insert(slot);
    }

    /// With bottom and near empty, moves the next events into the bottom
    /// (building, splitting, rebuilding and dropping levels on the way),
    /// or leaves the queue with no level and an empty top if it is empty.
    #[inline(never)]
    pub(super) fn refill(&mut self) {
        debug_assert!(self.head == self.bottom.len() && self.near.len() == 0);
        self.bottom.clear();
        self.head = 0;
        if self.len <= SHALLOW && self.len > 0 {
            self.gather();
            return;
        }
        loop {
            let depth = self.levels.len();
            // The finest level's span ends where the coarser one's next bucket starts.
            let limit = if depth > 1 { self.levels[depth - 2].cur_start } else { u64::MAX };
            let Some(level) = self.levels.last_mut() else {
                if self.top.is_empty() {
                    return;
                }
                let mut items = std::mem::take(&mut self.top);
                let expect = items.len() / PER_BUCKET;
                self.add_level(&mut items, u64::MAX, expect);
                self.top = items;
                continue;
            };
            #[cfg(test)]
            let scanned_from = level.cur;
            let next = level.next_bucket();
            #[cfg(test)]
            {
                self.work += (level.cur - scanned_from) as u64;
            }
            let Some(b) = next else {
                if level.overflow.is_empty() {
                    let spent = self.levels.pop().expect("a level");
                    if self.spare.len() < MAX_LEVELS {
                        self.spare.push(spent);
                    }
                } else {
                    // Sized for the events pending (within reason): as time
                    // nears this span it fills with events pushed meanwhile.
                    let mut items = std::mem::take(&mut level.overflow);
                    let range = time_range(&items);
                    let expect = self.len.min(REBUILD_GROWTH * items.len()) / PER_BUCKET;
                    #[cfg(test)]
                    {
                        self.work += items.len() as u64;
                    }
                    level.build(&mut items, range, limit, expect);
                    level.overflow = items;
                }
                continue;
            };
            let bucket = &mut level.buckets[b];
            if bucket.len() > SPLIT && depth < MAX_LEVELS {
                let range = time_range(bucket);
                if range.0 < range.1 {
                    let mut items = std::mem::take(bucket);
                    let limit = level.cur_start;
                    let expect = items.len() / PER_SPLIT_BUCKET;
                    self.add_level(&mut items, limit, expect);
                    self.levels[depth - 1].buckets[b] = items;
                    continue;
                }
            }
            self.bottom_end = level.cur_start;
            #[cfg(test)]
            {
                self.work += bucket.len() as u64;
            }
            fill_bottom(bucket, &mut self.bottom);
            return;
        }
    }

    /// With bottom and near empty, moves every event into near, which then
    /// spans all time: a shallow queue is a heap (until near spills). The
    /// sequence numbers given are in handling order (finest level's buckets,
    /// its overflow, the coarser levels', the top), so at any one time in
    /// insertion order, and below any pushed later.
    fn gather(&mut self) {
        let mut seq = 0;
        let mut take = |v: &mut Vec<Slot<E>>, near: &mut super::Heap<E>| {
            for s in v.drain(..) {
                near.push(super::Entry { time: s.time, seq, event: s.event });
                seq += 1;
            }
        };
        while let Some(mut level) = self.levels.pop() {
            #[cfg(test)]
            {
                self.work += (level.nb - level.cur) as u64;
            }
            for bucket in &mut level.buckets[level.cur..level.nb] {
                take(bucket, &mut self.near);
            }
            take(&mut level.overflow, &mut self.near);
            if self.spare.len() < MAX_LEVELS {
                self.spare.push(level);
            }
        }
        take(&mut self.top, &mut self.near);
        #[cfg(test)]
        {
            self.work += seq;
        }
        self.bottom_end = u64::MAX;
    }

    /// Moves the bottom's events left and near's into a new finest level
    /// over `[their earliest, bottom_end)` (or, with no level, the top's
    /// too, over all time), then refills: for when near
    /// has grown (the bottom's span being long, say after a far event was
    /// the first pushed). It costs at most twice near's size, which is the
    /// number of pushes since the last refill. The level's events are in
    /// the order the levels need: at any one time, in insertion order (the
    /// bottom's, sorted by time, were all pushed before near's).
    #[inline(never)]
    pub(super) fn spill(&mut self) {
        if self.levels.len() >= MAX_LEVELS {
            return;
        }
        let mut items = std::mem::take(&mut self.bottom);
        items.drain(..self.head);
        self.head = 0;
        let mut near = self.near.take();
        near.sort_unstable_by_key(|e| e.seq);
        items.extend(near.iter().map(|e| Slot { time: e.time, event: e.event }));
        self.near.give_back(near);
        // With no level (the queue emptied, or was shallow), the top holds
        // the events at or after `bottom_end`: the new level takes them too.
        let limit = if self.levels.is_empty() {
            items.append(&mut self.top);
            u64::MAX
        } else {
            self.bottom_end
        };
        let buckets = items.len() / PER_SPLIT_BUCKET;
        self.add_level(&mut items, limit, buckets);
        self.bottom = items;
        self.refill();
    }

    /// Pushes a finest level built from `items` (not empty; drained),
    /// covering no time at or after `limit`.
    fn add_level(&mut self, items: &mut Vec<Slot<E>>, limit: u64, buckets: usize) {
        let mut level = self.spare.pop().unwrap_or_else(Level::empty);
        #[cfg(test)]
        {
            self.work += items.len() as u64;
        }
        let range = time_range(items);
        level.build(items, range, limit, buckets);
        if items.capacity() > KEEP_CAPACITY {
            *items = Vec::new();
        }
        self.levels.push(level);
    }
}

#[cfg(test)]
impl<E: Copy> EventQueue<E> {
    /// Bucket slots and entries of capacity held by the ladder and spares.
    pub(super) fn footprint(&self) -> (usize, usize) {
        let levels = self.levels.iter().chain(&self.spare);
        levels.fold((0, 0), |(slots, cap), l| {
            let bucket_cap: usize = l.buckets.iter().map(Vec::capacity).sum();
            (slots + l.buckets.len(), cap + bucket_cap + l.overflow.capacity())
        })
    }

    /// Panics unless the structures partition time as the module docs say.
    pub(super) fn check_invariants(&self) {
        let near = self.near.entries().map(|e| e.time);
        for t in self.bottom[self.head..].iter().map(|e| e.time).chain(near) {
            assert!(t < self.bottom_end || self.bottom_end == u64::MAX, "bottom/near {t} >= {}", self.bottom_end);
        }
        let mut upper = u64::MAX;
        for (i, l) in self.levels.iter().enumerate() {
            assert!(l.cur_start <= upper, "level {i} starts at {} after {upper}", l.cur_start);
            for (b, bucket) in l.buckets.iter().enumerate() {
                for e in bucket {
                    assert!(b >= l.cur && b < l.nb, "level {i} bucket {b} spent or unused");
                    assert!(e.time >= l.start(b) && (e.time < l.start(b + 1) || l.start(b + 1) == u64::MAX));
                    assert!(e.time < l.end || l.end == u64::MAX);
                    assert!(e.time <= upper);
                }
            }
            for e in &l.overflow {
                assert!(e.time >= l.end && e.time <= upper);
            }
            upper = l.cur_start;
        }
        if let Some(l) = self.levels.last() {
            assert_eq!(l.cur_start, self.bottom_end);
        }
    }
}
