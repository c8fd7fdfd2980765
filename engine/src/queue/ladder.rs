//! The ladder's levels and the refill that walks them; see the module docs
//! of `queue` for the design and why it keeps the order.

use super::{Entry, EventQueue, KEEP_CAPACITY, MAX_LEVELS, PER_BUCKET, SPLIT};

/// One rung: buckets of width `1 << shift` from `base`, the next to hand
/// out at `cur`, and an overflow for events at or after `end`.
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
    buckets: Vec<Vec<Entry<E>>>,
    overflow: Vec<Entry<E>>,
}

impl<E: Copy> Level<E> {
    fn empty() -> Self {
        Level { base: 0, shift: 0, nb: 0, cur: 0, cur_start: 0, end: 0, buckets: Vec::new(), overflow: Vec::new() }
    }

    /// The start of bucket `i`, saturating at `u64::MAX`.
    fn start(&self, i: usize) -> u64 {
        (self.base as u128 + ((i as u128) << self.shift)).min(u64::MAX as u128) as u64
    }

    /// Puts `entry`, at or after `cur_start`, in its bucket or the overflow.
    #[inline]
    fn insert(&mut self, entry: Entry<E>) {
        if entry.time >= self.end {
            self.overflow.push(entry);
        } else {
            self.buckets[((entry.time - self.base) >> self.shift) as usize].push(entry);
        }
    }

    /// Spreads `items` (all of which it drains), spanning `[min, max]`, over
    /// about `items.len() / PER_BUCKET` buckets of a power-of-two width;
    /// the level covers no time at or after `limit` (which is above `max`).
    fn build(&mut self, items: &mut Vec<Entry<E>>, (min, max): (u64, u64), limit: u64) {
        let span = max - min;
        let target = (items.len() / PER_BUCKET).max(2) as u64;
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
        } else if self.buckets.len() > 2 * nb + 64 {
            self.buckets.truncate(nb);
            self.buckets.shrink_to_fit();
        }
        for e in items.drain(..) {
            self.buckets[((e.time - min) >> shift) as usize].push(e);
        }
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

/// The least and greatest time in `items` (not empty).
fn time_range<E>(items: &[Entry<E>]) -> (u64, u64) {
    items.iter().fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e.time), hi.max(e.time)))
}

impl<E: Copy> EventQueue<E> {
    /// Files `entry`, at or after `bottom_end`, in the ladder or the top.
    #[inline]
    pub(super) fn push_far(&mut self, entry: Entry<E>) {
        let Some((finest, coarser)) = self.levels.split_last_mut() else {
            self.top.push(entry);
            return;
        };
        for level in coarser {
            if entry.time >= level.cur_start {
                level.insert(entry);
                return;
            }
        }
        // The finest level starts at `bottom_end`, at or before `entry`.
        debug_assert!(entry.time >= finest.cur_start);
        finest.insert(entry);
    }

    /// With bottom and near empty, moves the next events into the bottom
    /// (building, splitting, rebuilding and dropping levels on the way),
    /// or leaves the queue with no level and an empty top if it is empty.
    #[inline(never)]
    pub(super) fn refill(&mut self) {
        debug_assert!(self.bottom.is_empty() && self.near.len() == 0);
        loop {
            let depth = self.levels.len();
            // The finest level's span ends where the coarser one's next bucket starts.
            let limit = if depth > 1 { self.levels[depth - 2].cur_start } else { u64::MAX };
            let Some(level) = self.levels.last_mut() else {
                if self.top.is_empty() {
                    return;
                }
                let mut items = std::mem::take(&mut self.top);
                self.add_level(&mut items, u64::MAX);
                self.top = items;
                continue;
            };
            let Some(b) = level.next_bucket() else {
                if level.overflow.is_empty() {
                    let spent = self.levels.pop().expect("a level");
                    if self.spare.len() < MAX_LEVELS {
                        self.spare.push(spent);
                    }
                } else {
                    let mut items = std::mem::take(&mut level.overflow);
                    let range = time_range(&items);
                    level.build(&mut items, range, limit);
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
                    self.add_level(&mut items, limit);
                    self.levels[depth - 1].buckets[b] = items;
                    continue;
                }
            }
            std::mem::swap(&mut self.bottom, bucket);
            if bucket.capacity() > KEEP_CAPACITY {
                *bucket = Vec::new();
            }
            self.bottom_end = level.cur_start;
            self.bottom.sort_unstable_by(|x, y| y.key().cmp(&x.key()));
            return;
        }
    }

    /// Pushes a finest level built from `items` (not empty; drained),
    /// covering no time at or after `limit`.
    fn add_level(&mut self, items: &mut Vec<Entry<E>>, limit: u64) {
        let mut level = self.spare.pop().unwrap_or_else(Level::empty);
        let range = time_range(items);
        level.build(items, range, limit);
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
        for e in self.bottom.iter().chain(self.near.iter()) {
            assert!(
                e.time < self.bottom_end || self.bottom_end == u64::MAX,
                "bottom/near {} >= {}",
                e.time,
                self.bottom_end
            );
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
