//! An arena of records addressed by `u32`, reusing freed slots.

/// Records addressed by `u32` keys; freed keys are reused (LIFO), so the
/// arena stays as large as the peak number of live records.
#[derive(Clone, Debug)]
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    live: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Slab<T> {
    /// An empty slab.
    pub fn new() -> Self {
        Slab { slots: Vec::new(), free: Vec::new(), live: 0 }
    }

    /// Stores `value` and returns its key.
    #[inline]
    pub fn insert(&mut self, value: T) -> u32 {
        self.live += 1;
        if let Some(k) = self.free.pop() {
            self.slots[k as usize] = Some(value);
            k
        } else {
            let k = u32::try_from(self.slots.len()).expect("slab full");
            self.slots.push(Some(value));
            k
        }
    }

    /// Removes and returns the record at `key`, which must be live.
    #[inline]
    pub fn remove(&mut self, key: u32) -> T {
        let v = self.slots[key as usize].take().expect("slab: remove of a free slot");
        self.free.push(key);
        self.live -= 1;
        v
    }

    /// The record at `key`, which must be live.
    #[inline]
    pub fn get(&self, key: u32) -> &T {
        self.slots[key as usize].as_ref().expect("slab: read of a free slot")
    }

    /// The record at `key`, or `None` if that slot is free.
    #[inline]
    pub fn try_get(&self, key: u32) -> Option<&T> {
        self.slots.get(key as usize).and_then(Option::as_ref)
    }

    /// Starts loading the slot of `key` into the cache (a hint: it reads
    /// nothing, and a key out of range is ignored).
    #[inline]
    pub fn prefetch(&self, key: u32) {
        if let Some(slot) = self.slots.get(key as usize) {
            crate::prefetch::prefetch(slot);
        }
    }

    /// The record at `key`, mutably.
    #[inline]
    pub fn get_mut(&mut self, key: u32) -> &mut T {
        self.slots[key as usize].as_mut().expect("slab: write to a free slot")
    }

    /// The live records with their keys, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots.iter().enumerate().filter_map(|(k, v)| v.as_ref().map(|v| (k as u32, v)))
    }

    /// Live records.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no record is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slots ever allocated (the peak number of live records).
    pub fn capacity_used(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_keys() {
        let mut s = Slab::new();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), "a");
        let c = s.insert("c");
        assert_eq!(c, a);
        assert_eq!(*s.get(b), "b");
        assert_eq!(s.len(), 2);
        assert_eq!(s.capacity_used(), 2);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(a, &"c"), (b, &"b")]);
        s.remove(b);
        assert_eq!(s.iter().map(|(k, _)| k).collect::<Vec<_>>(), vec![c]);
    }

    #[test]
    #[should_panic(expected = "free slot")]
    fn reading_a_freed_key_panics() {
        let mut s = Slab::new();
        let a = s.insert(1);
        s.remove(a);
        s.get(a);
    }
}
