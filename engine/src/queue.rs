//! The pending-event set with a written total order.
//!
//! Order: events sort by `(time, seq)` where `seq` is the insertion
//! sequence number, so two events at the same nanosecond run in the order
//! they were scheduled. There is no further tie-break: `(time, seq)` is
//! unique. Both are packed into one `u128` key (time in the high 64 bits),
//! which compares in one instruction pair and keeps heap entries small.

use crate::SimTime;

/// Children per heap node. Four children of 32-byte entries span two
/// cache lines, and the tree is half as deep as a binary heap's, so a pop
/// on a deep queue touches about half as many lines.
const ARITY: usize = 4;
// `pop` picks the least of a full set of children with an unrolled
// two-round compare written for four.
const _: () = assert!(ARITY == 4);

#[derive(Clone, Copy)]
struct Entry<E> {
    key: u128,
    event: E,
}

/// A min-heap of events keyed by `(time, seq)`; see the module docs.
pub struct EventQueue<E: Copy> {
    heap: Vec<Entry<E>>,
    next_seq: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue { heap: Vec::new(), next_seq: 0 }
    }

    /// An empty queue with room for `n` events before it reallocates.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue { heap: Vec::with_capacity(n), next_seq: 0 }
    }

    /// Add `event` at `time`; it runs after every event already queued for
    /// the same `time`.
    #[inline]
    pub fn push(&mut self, time: SimTime, event: E) {
        let key = ((time.0 as u128) << 64) | self.next_seq as u128;
        self.next_seq += 1;
        let entry = Entry { key, event };
        // Sift up: move parents down into the hole until `entry` fits.
        let mut i = self.heap.len();
        self.heap.push(entry);
        while i > 0 {
            let parent = (i - 1) / ARITY;
            let p = self.heap[parent];
            if p.key <= key {
                break;
            }
            self.heap[i] = p;
            i = parent;
        }
        self.heap[i] = entry;
    }

    /// Remove and return the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let last = self.heap.pop()?;
        let Some(&top) = self.heap.first() else {
            return Some((SimTime((last.key >> 64) as u64), last.event));
        };
        // Bottom-up: walk the hole from the root down to a leaf along the
        // least children (no comparison with `last` on the way: it came
        // from the bottom and usually belongs near it), then sift `last`
        // up from there.
        let heap = &mut self.heap[..];
        let n = heap.len();
        let mut i = 0;
        loop {
            let first = i * ARITY + 1;
            let c = if first + ARITY <= n {
                let ch = &heap[first..first + ARITY];
                let (a, b) = if ch[1].key < ch[0].key { (1, ch[1].key) } else { (0, ch[0].key) };
                let (c, d) = if ch[3].key < ch[2].key { (3, ch[3].key) } else { (2, ch[2].key) };
                first + if d < b { c } else { a }
            } else if first < n {
                let mut c = first;
                for j in first + 1..n {
                    if heap[j].key < heap[c].key {
                        c = j;
                    }
                }
                c
            } else {
                break;
            };
            heap[i] = heap[c];
            i = c;
        }
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if heap[parent].key <= last.key {
                break;
            }
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = last;
        Some((SimTime((top.key >> 64) as u64), top.event))
    }

    /// The time of the earliest event, if any.
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.first().map(|e| SimTime((e.key >> 64) as u64))
    }

    /// Events pending.
    #[inline]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
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
}
