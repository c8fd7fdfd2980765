//! host-local IPAM on one node: addresses of the node's pod CIDR handed
//! out in turn.
//!
//! The host-local plugin (containernetworking/plugins,
//! plugins/ipam/host-local) keeps the last address it reserved and hands
//! out the next free one after it, wrapping at the end of the range, so an
//! address freed by a deleted pod is reused only after every other free
//! address has been handed out once. The range excludes the network
//! address, the gateway (`.1`, the bridge `cbr0`) and the broadcast
//! address. The cluster's build (time 0) gives the lowest free addresses
//! from `.2` up, which is what host-local does on a fresh node; the
//! allocator continues after the highest of them.

/// One node's allocator, over offsets `2 .. size - 1` of its pod CIDR.
#[derive(Clone, Debug)]
pub struct Ipam {
    used: Vec<u64>,
    size: u32,
    last: u32,
}

impl Ipam {
    /// A node's allocator for a CIDR of `size` addresses, with `taken`
    /// offsets in use at time 0.
    pub fn new(size: u32, taken: impl IntoIterator<Item = u32>) -> Ipam {
        // Before any address, the turn starts at offset 2.
        let mut a = Ipam { used: vec![0; (size as usize).div_ceil(64)], size, last: size.saturating_sub(2) };
        let mut highest = None;
        for off in taken {
            a.set(off, true);
            highest = highest.max(Some(off));
        }
        if let Some(h) = highest {
            a.last = h;
        }
        a
    }

    fn set(&mut self, off: u32, on: bool) {
        let (w, b) = ((off / 64) as usize, off % 64);
        if on {
            self.used[w] |= 1 << b;
        } else {
            self.used[w] &= !(1 << b);
        }
    }

    fn is_used(&self, off: u32) -> bool {
        self.used[(off / 64) as usize] >> (off % 64) & 1 == 1
    }

    /// The next free offset after the last one handed out, or `None` when
    /// the range is full.
    pub fn allocate(&mut self) -> Option<u32> {
        let (lo, hi) = (2, self.size.saturating_sub(1));
        let span = hi.saturating_sub(lo);
        for k in 1..=span {
            let off = lo + (self.last - lo + k) % span;
            if !self.is_used(off) {
                self.set(off, true);
                self.last = off;
                return Some(off);
            }
        }
        None
    }

    /// Frees `off` (the pod is gone: CNI DEL ran).
    pub fn release(&mut self, off: u32) {
        self.set(off, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_in_turn_and_reuses_only_after_wrapping() {
        // A /29: offsets 2..=6 usable.
        let mut a = Ipam::new(8, [2, 3]);
        assert_eq!(a.allocate(), Some(4));
        a.release(2);
        assert_eq!(a.allocate(), Some(5), "2 is free but the turn goes on");
        assert_eq!(a.allocate(), Some(6));
        assert_eq!(a.allocate(), Some(2), "wrapped");
        assert_eq!(a.allocate(), None, "3, 4, 5, 6 and 2 are in use");
        a.release(5);
        assert_eq!(a.allocate(), Some(5));
        let mut fresh = Ipam::new(256, []);
        assert_eq!(fresh.allocate(), Some(2));
        assert_eq!(fresh.allocate(), Some(3));
    }
}
