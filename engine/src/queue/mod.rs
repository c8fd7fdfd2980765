//! The pending-event set with a written total order.
//!
//! # Order
//!
//! Events sort by `(time, seq)` where `seq` is the insertion sequence
//! number, so two events at the same nanosecond run in the order they
//! were scheduled. There is no further tie-break: `(time, seq)` is unique.
//! The pop order is exactly that of a heap on the `u128` key
//! `time << 64 | seq` (which the queue used to be).
//!
//! # Design: a ladder of time buckets over a sorted bottom
//!
//! A ladder queue (Tang, Goh & Thng 2005), with a heap beside the sorted
//! bottom and the sequence number kept implicit:
//!
//! - **bottom**: the bucket being handled, sorted by time, handed out from
//!   `head`; with it **near**, a small 4-ary heap of the events pushed
//!   into the bottom's span after it was filled (delay zero and other
//!   short delays). A pop takes the earlier of the two heads, the bottom's
//!   at equal times. Every event in them is earlier than `bottom_end`;
//!   every other event is at or after it.
//! - **levels** (the ladder's rungs), coarsest first: each an array of
//!   buckets of one power-of-two width over a span of time, and an
//!   overflow for events past its last bucket. A finer level covers part
//!   of a coarser level's spent bucket; each level covers `[its next
//!   bucket's start, the coarser level's next bucket's start)`, so a push
//!   goes to the first level, coarsest first, whose next bucket starts at
//!   or before the event's time, and there to the bucket
//!   `(time - base) >> shift`, or to the overflow.
//! - **top**: when there is no level, the events at or after `bottom_end`.
//!
//! When bottom and near are both empty, `refill` takes the finest level's
//! next non-empty bucket: more than [`SPLIT`] events spread over more than
//! one nanosecond become a new, finer level (of about one bucket per
//! [`PER_SPLIT_BUCKET`] events); otherwise they are sorted into the bottom.
//! A level whose buckets are spent is rebuilt from its overflow (sized for
//! the events pending, which will fill it as time nears it, up to
//! `REBUILD_GROWTH` times its events), or dropped when that is empty; with
//! no level left, a level is built from the top (a bucket per
//! [`PER_BUCKET`] events). Coarse levels keep pushes' scattered writes
//! within few buckets; crowded buckets are split where they are in cache.
//! Near is spilled into a new finest level when it outgrows the bottom
//! ([`NEAR_SPILL`]), as when a far event was the first pushed. A refill
//! with at most [`SHALLOW`] events pending gathers them all into near
//! (with sequence numbers in their order), whose span is then all time:
//! a shallow queue is a heap until near spills. Refilling
//! eagerly (after any pop or push that leaves bottom and near empty) keeps
//! `peek_time` O(1) and `&self`.
//!
//! # Why the order is the heap's
//!
//! The structures partition time: the bottom's and near's span before
//! every level's, a finer level's before a coarser one's, a level's
//! buckets in time order and its overflow after them. Events leave a
//! structure only for a part of it handled no later (a bucket for the
//! bottom or a finer level, an overflow for its level's buckets, near and
//! the bottom for a finer level). So what remains is the order within one
//! time, i.e. by `seq`, which buckets, overflows and the top keep as
//! vector order: events are appended as pushed, and every move (a build,
//! a split, a rebuild, which go through events in order) and sort keeps
//! the order of events at one time (a stable sort by time; for buckets of
//! 17 to 128 events an unstable sort of keys that are the time and then
//! the place in the bucket, distinct, so the same order; up to 16, each
//! event put at its rank). Near's events
//! carry their `seq` for its heap, and were all pushed after the bottom's;
//! a spill puts the bottom's first, then near's by `seq` (then, if there is
//! no level, the top's, all later in time). Slots are thus
//! 16 bytes for a `u32` event (near's entries 24). The one place time
//! cannot be split is `u64::MAX`, where a span's end saturates: an event
//! pushed at `u64::MAX` may then go to a structure handled after one
//! holding an earlier-pushed event at `u64::MAX`, which is its place.
//!
//! # Complexity
//!
//! A push is O(levels) (levels are few, at most [`MAX_LEVELS`]) or, into
//! near, O(log near). An event moves at most once into a level's buckets
//! from its overflow and once per level down the ladder, then is sorted
//! with its bucket (O(log b) for b events; small buckets by rank) and
//! popped in O(1): on a smooth time distribution a small constant per
//! event. Skewed ones degrade gracefully, never to O(n) per operation:
//! events all at one time form one bucket, sorted in O(n) once (they
//! arrive in order); a far outlier widens a level's buckets, and the
//! crowded one becomes a finer level; past [`MAX_LEVELS`] a bucket is
//! sorted whole. Scanning empty buckets costs at most `REBUILD_GROWTH /
//! PER_BUCKET` per event a level was built from. A spill costs at most
//! twice near's size, the pushes since the last refill. The tests bound
//! this work per push on skewed times.
//!
//! Memory: a level's bucket array is cut back when it is more than about
//! four times what a build needs, which is at most a bucket per
//! [`PER_SPLIT_BUCKET`] events pending; an emptied bucket keeps at most
//! [`KEEP_CAPACITY`] entries of capacity; spent levels are kept for reuse
//! up to [`MAX_LEVELS`]. So memory is O(peak pending).

mod heap;
mod ladder;

use crate::SimTime;
use heap::Heap;
use ladder::Level;

/// A bucket of more events than this, spread over more than one
/// nanosecond, is split into a finer level rather than sorted.
const SPLIT: usize = 128;
/// Events per bucket a level aims at when it is built.
const PER_BUCKET: usize = 32;
/// Events per bucket a level split from a bucket aims at.
const PER_SPLIT_BUCKET: usize = 4;
/// Levels at most; a crowded bucket at the finest is sorted whole.
const MAX_LEVELS: usize = 12;
/// Near holding this many events, and more than the bottom, is spilled
/// into a new finest level.
const NEAR_SPILL: usize = 2 * SPLIT;
/// A refill with at most this many events pending puts them all in near:
/// below a few hundred events a heap is faster.
const SHALLOW: usize = SPLIT;
/// Capacity (in entries) an emptied bucket keeps for reuse.
const KEEP_CAPACITY: usize = 4 * SPLIT;

/// An event in a bucket, the bottom or the top, where the vector's order
/// stands for the insertion order.
#[derive(Clone, Copy)]
struct Slot<E> {
    time: u64,
    event: E,
}

/// An event in near, with its insertion sequence number.
#[derive(Clone, Copy)]
struct Entry<E> {
    time: u64,
    seq: u64,
    event: E,
}

impl<E> Entry<E> {
    /// The order's key: time, then insertion sequence.
    #[inline(always)]
    fn key(&self) -> u128 {
        ((self.time as u128) << 64) | self.seq as u128
    }
}

/// The pending events, popped in `(time, seq)` order; see the module docs.
pub struct EventQueue<E: Copy> {
    /// The bucket being handled, sorted by time (ties in insertion order),
    /// handed out from `head`.
    bottom: Vec<Slot<E>>,
    head: usize,
    /// Events pushed before `bottom_end` since the bottom was sorted.
    near: Heap<E>,
    /// Events in `bottom` and `near` are before it, all others at or after.
    bottom_end: u64,
    /// The ladder, coarsest level first.
    levels: Vec<Level<E>>,
    /// Events at or after `bottom_end` while there is no level.
    top: Vec<Slot<E>>,
    /// Spent levels, kept for their allocations.
    spare: Vec<Level<E>>,
    len: usize,
    next_seq: u64,
    /// Events moved and buckets scanned by `refill`, for the tests'
    /// complexity bounds.
    #[cfg(test)]
    work: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty queue with room for `n` events before it reallocates.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            bottom: Vec::new(),
            head: 0,
            near: Heap::with_capacity(n),
            bottom_end: 0,
            levels: Vec::new(),
            top: Vec::new(),
            spare: Vec::new(),
            len: 0,
            next_seq: 0,
            #[cfg(test)]
            work: 0,
        }
    }

    /// Add `event` at `time`; it runs after every event already queued for
    /// the same `time`.
    #[inline]
    pub fn push(&mut self, time: SimTime, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.len += 1;
        if time.0 < self.bottom_end {
            self.near.push(Entry { time: time.0, seq, event });
            let n = self.near.len();
            if n >= NEAR_SPILL && n > self.bottom.len() - self.head {
                self.spill();
            }
            return;
        }
        self.push_far(Slot { time: time.0, event });
        if self.head == self.bottom.len() && self.near.len() == 0 {
            self.refill();
        }
    }

    /// Remove and return the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        // At equal times the bottom's event goes first: near's were all
        // pushed after the bottom was filled.
        let (time, event) = match (self.bottom.get(self.head), self.near.peek()) {
            (Some(b), Some(n)) if n.time < b.time => self.near.pop().map(|n| (n.time, n.event))?,
            (Some(&b), _) => {
                self.head += 1;
                (b.time, b.event)
            }
            (None, Some(_)) => self.near.pop().map(|n| (n.time, n.event))?,
            (None, None) => return None,
        };
        self.len -= 1;
        if self.head == self.bottom.len() && self.near.len() == 0 {
            self.refill();
        }
        Some((SimTime(time), event))
    }

    /// The time of the earliest event, if any.
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        let t = match (self.bottom.get(self.head), self.near.peek()) {
            (Some(b), Some(n)) => b.time.min(n.time),
            (Some(b), None) => b.time,
            (None, Some(n)) => n.time,
            (None, None) => return None,
        };
        Some(SimTime(t))
    }

    /// The earliest event, if any, without removing it.
    #[inline]
    pub fn peek(&self) -> Option<&E> {
        match (self.bottom.get(self.head), self.near.peek()) {
            (Some(b), Some(n)) if n.time < b.time => Some(&n.event),
            (Some(b), _) => Some(&b.event),
            (None, Some(n)) => Some(&n.event),
            (None, None) => None,
        }
    }

    /// An event due soon, about `k` places after the earliest (a hint for
    /// prefetching, not an order: it is the sorted bottom's `k`-th next,
    /// and events in `near` may come before it). `None` when the bottom
    /// holds fewer.
    #[inline]
    pub fn peek_ahead(&self, k: usize) -> Option<&E> {
        self.bottom.get(self.head + k).map(|b| &b.event)
    }

    /// Every pending event, in no particular order (for a model's last
    /// accounts when a run is stopped with events pending).
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        let levels = self.levels.iter().flat_map(|l| l.pending());
        let slots = self.bottom[self.head..].iter().chain(levels).chain(&self.top);
        slots.map(|s| &s.event).chain(self.near.entries().map(|e| &e.event))
    }

    /// Events pending.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is pending.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests;
