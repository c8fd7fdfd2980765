//! FIFO resources: `k` identical servers and one first-come-first-served
//! queue. [`Fifo`] is event-driven (a server pod's worker pool: its
//! completions drive the application); [`LazyFifo`] resolves departures by
//! arithmetic (a node's softirq CPU and NIC queue: nothing waits on them but
//! the message itself). The resource holds no clock: the caller
//! asks for a server at `now`, and when a service ends tells the resource,
//! which hands back the next waiting token to start.

use std::collections::VecDeque;

/// The answer to [`Fifo::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// A server was free: service starts now.
    Granted,
    /// All servers are busy: the token waits in the queue.
    Queued,
    /// The queue is at its bound: the token is refused.
    Rejected,
}

/// `k` servers with a FIFO queue of `u32` tokens.
#[derive(Clone, Debug)]
pub struct Fifo {
    servers: u32,
    busy: u32,
    queue_limit: u32,
    queue: VecDeque<u32>,
    max_queue: u32,
    queued_total: u64,
    rejected_total: u64,
}

impl Fifo {
    /// `servers` servers (0 means unlimited) and a queue bounded at
    /// `queue_limit` tokens (`u32::MAX` for unbounded).
    pub fn new(servers: u32, queue_limit: u32) -> Fifo {
        Fifo {
            servers: if servers == 0 { u32::MAX } else { servers },
            busy: 0,
            queue_limit,
            queue: VecDeque::new(),
            max_queue: 0,
            queued_total: 0,
            rejected_total: 0,
        }
    }

    /// Asks for a server for `token`.
    #[inline]
    pub fn acquire(&mut self, token: u32) -> Acquire {
        if self.busy < self.servers {
            self.busy += 1;
            Acquire::Granted
        } else if (self.queue.len() as u32) < self.queue_limit {
            self.queue.push_back(token);
            self.queued_total += 1;
            self.max_queue = self.max_queue.max(self.queue.len() as u32);
            Acquire::Queued
        } else {
            self.rejected_total += 1;
            Acquire::Rejected
        }
    }

    /// Ends one service. Returns the token that now starts service, if one
    /// was waiting (the server stays busy with it).
    #[inline]
    pub fn release(&mut self) -> Option<u32> {
        assert!(self.busy > 0, "release of an idle resource");
        match self.queue.pop_front() {
            Some(t) => Some(t),
            None => {
                self.busy -= 1;
                None
            }
        }
    }

    /// Servers busy now.
    pub fn busy(&self) -> u32 {
        self.busy
    }
    /// Tokens waiting now.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }
    /// Longest queue seen.
    pub fn max_queue(&self) -> u32 {
        self.max_queue
    }
    /// Tokens that ever had to wait.
    pub fn queued_total(&self) -> u64 {
        self.queued_total
    }
    /// Tokens refused because the queue was full.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_total
    }
}

/// A `k`-server FIFO queue resolved without departure events (Lindley's
/// recursion): an arrival at `now` starts when the earliest server frees
/// and finishes `service` later. Arrivals must come in time order (they
/// do, as events); start times are then non-decreasing, so the queue
/// length at any time is the admitted arrivals still waiting to start.
/// Halves the events of a queueing hop: the customer's next step is
/// scheduled at its finish time directly.
#[derive(Clone, Debug)]
pub struct LazyFifo {
    /// When each server frees; inline up to 8 servers (no pointer to chase
    /// on the hot path), on the heap beyond.
    free_at: FreeAt,
    waiting: VecDeque<u64>,
    queue_limit: u32,
    max_queue: u32,
    rejected_total: u64,
    busy_ns: u64,
}

#[derive(Clone, Debug)]
enum FreeAt {
    Inline([u64; 8], u8),
    Heap(Vec<u64>),
}

impl FreeAt {
    #[inline]
    fn slots(&mut self) -> &mut [u64] {
        match self {
            FreeAt::Inline(a, n) => &mut a[..*n as usize],
            FreeAt::Heap(v) => v,
        }
    }
}

impl LazyFifo {
    /// `servers` servers (at least 1) and room for `queue_limit` waiting.
    pub fn new(servers: u32, queue_limit: u32) -> LazyFifo {
        let k = servers.max(1) as usize;
        LazyFifo {
            free_at: if k <= 8 { FreeAt::Inline([0; 8], k as u8) } else { FreeAt::Heap(vec![0; k]) },
            waiting: VecDeque::new(),
            queue_limit,
            max_queue: 0,
            rejected_total: 0,
            busy_ns: 0,
        }
    }

    /// An arrival at `now` needing `service` [ns]: its (start, finish)
    /// times, or `None` if the queue is full (the arrival is refused).
    #[inline]
    pub fn admit(&mut self, now: u64, service: u64) -> Option<(u64, u64)> {
        while self.waiting.front().is_some_and(|&t| t <= now) {
            self.waiting.pop_front();
        }
        let slots = self.free_at.slots();
        // The first server to free (the lowest index among equals).
        let (mut i, mut free) = (0, slots[0]);
        for (j, &t) in slots.iter().enumerate().skip(1) {
            if t < free {
                (i, free) = (j, t);
            }
        }
        let start = free.max(now);
        if start > now {
            if self.waiting.len() as u32 >= self.queue_limit {
                self.rejected_total += 1;
                return None;
            }
            self.waiting.push_back(start);
            self.max_queue = self.max_queue.max(self.waiting.len() as u32);
        }
        let finish = start + service;
        self.free_at.slots()[i] = finish;
        self.busy_ns += service;
        Some((start, finish))
    }

    /// Longest queue seen.
    pub fn max_queue(&self) -> u32 {
        self.max_queue
    }

    /// Arrivals refused because the queue was full.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_total
    }

    /// Total service given [ns] (divide by servers and time for utilisation).
    pub fn busy_ns(&self) -> u64 {
        self.busy_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_in_fifo_order_with_k_servers() {
        let mut r = Fifo::new(2, u32::MAX);
        assert_eq!(r.acquire(1), Acquire::Granted);
        assert_eq!(r.acquire(2), Acquire::Granted);
        assert_eq!(r.acquire(3), Acquire::Queued);
        assert_eq!(r.acquire(4), Acquire::Queued);
        assert_eq!(r.busy(), 2);
        assert_eq!(r.release(), Some(3));
        assert_eq!(r.release(), Some(4));
        assert_eq!(r.release(), None);
        assert_eq!(r.busy(), 1);
        assert_eq!(r.max_queue(), 2);
    }

    #[test]
    fn bounded_queue_rejects() {
        let mut r = Fifo::new(1, 1);
        assert_eq!(r.acquire(1), Acquire::Granted);
        assert_eq!(r.acquire(2), Acquire::Queued);
        assert_eq!(r.acquire(3), Acquire::Rejected);
        assert_eq!(r.rejected_total(), 1);
    }

    #[test]
    fn lazy_fifo_matches_the_event_driven_queue() {
        // One server, service 10: arrivals at 0, 5, 6, 30.
        let mut q = LazyFifo::new(1, 10);
        assert_eq!(q.admit(0, 10), Some((0, 10)));
        assert_eq!(q.admit(5, 10), Some((10, 20)));
        assert_eq!(q.admit(6, 10), Some((20, 30)));
        assert_eq!(q.max_queue(), 2);
        assert_eq!(q.admit(30, 10), Some((30, 40)));
        // Two servers share the load.
        let mut q = LazyFifo::new(2, 10);
        assert_eq!(q.admit(0, 10), Some((0, 10)));
        assert_eq!(q.admit(1, 10), Some((1, 11)));
        assert_eq!(q.admit(2, 10), Some((10, 20)));
        assert_eq!(q.busy_ns(), 30);
    }

    #[test]
    fn lazy_fifo_bounds_its_queue() {
        let mut q = LazyFifo::new(1, 1);
        assert!(q.admit(0, 100).is_some());
        assert!(q.admit(1, 100).is_some(), "one may wait");
        assert_eq!(q.admit(2, 100), None);
        assert_eq!(q.rejected_total(), 1);
        // Once the waiting one has started (t = 100), there is room again.
        assert!(q.admit(100, 100).is_some());
    }

    #[test]
    fn zero_servers_means_unlimited() {
        let mut r = Fifo::new(0, 0);
        for t in 0..1000 {
            assert_eq!(r.acquire(t), Acquire::Granted);
        }
    }
}
