//! The 4-ary min-heap of entries that holds the events near the present
//! (those scheduled inside the bucket being handled) and, for shallow or
//! degenerate queues, everything.

use super::Entry;

/// Children per heap node. Four children of 24-byte entries span 96
/// bytes, and the tree is half as deep as a binary heap's, so a pop on a
/// deep heap touches about half as many cache lines.
const ARITY: usize = 4;
// `pop` picks the least of a full set of children with an unrolled
// two-round compare written for four.
const _: () = assert!(ARITY == 4);

/// A min-heap of entries by their `(time, seq)` key.
pub(super) struct Heap<E> {
    v: Vec<Entry<E>>,
}

impl<E: Copy> Heap<E> {
    /// An empty heap with room for `n` entries.
    pub(super) fn with_capacity(n: usize) -> Self {
        Heap { v: Vec::with_capacity(n) }
    }

    /// Entries held.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.v.len()
    }

    /// The least entry, if any.
    #[inline]
    pub(super) fn peek(&self) -> Option<&Entry<E>> {
        self.v.first()
    }

    /// The entries, in heap order.
    pub(super) fn entries(&self) -> std::slice::Iter<'_, Entry<E>> {
        self.v.iter()
    }

    /// Takes all the entries out (in no particular order).
    pub(super) fn take(&mut self) -> Vec<Entry<E>> {
        std::mem::take(&mut self.v)
    }

    /// Gives back the (emptied) vector of `take`, for its allocation.
    pub(super) fn give_back(&mut self, mut v: Vec<Entry<E>>) {
        debug_assert!(self.v.is_empty());
        v.clear();
        self.v = v;
    }

    /// Adds `entry`.
    #[inline]
    pub(super) fn push(&mut self, entry: Entry<E>) {
        // Sift up: move parents down into the hole until `entry` fits.
        let key = entry.key();
        let mut i = self.v.len();
        self.v.push(entry);
        while i > 0 {
            let parent = (i - 1) / ARITY;
            let p = self.v[parent];
            if p.key() <= key {
                break;
            }
            self.v[i] = p;
            i = parent;
        }
        self.v[i] = entry;
    }

    /// Removes and returns the least entry.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<Entry<E>> {
        let last = self.v.pop()?;
        let Some(&top) = self.v.first() else {
            return Some(last);
        };
        // Bottom-up: walk the hole from the root down to a leaf along the
        // least children (no comparison with `last` on the way: it came
        // from the bottom and usually belongs near it), then sift `last`
        // up from there.
        let heap = &mut self.v[..];
        let n = heap.len();
        let mut i = 0;
        loop {
            let first = i * ARITY + 1;
            let c = if first + ARITY <= n {
                let ch = &heap[first..first + ARITY];
                let (a, b) = if ch[1].key() < ch[0].key() { (1, ch[1].key()) } else { (0, ch[0].key()) };
                let (c, d) = if ch[3].key() < ch[2].key() { (3, ch[3].key()) } else { (2, ch[2].key()) };
                first + if d < b { c } else { a }
            } else if first < n {
                let mut c = first;
                for j in first + 1..n {
                    if heap[j].key() < heap[c].key() {
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
        let key = last.key();
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if heap[parent].key() <= key {
                break;
            }
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = last;
        Some(top)
    }
}
