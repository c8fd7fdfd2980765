//! The simulation loop: it alone owns the clock.

use crate::{EventQueue, SimDuration, SimTime};

/// Something driven by events: a state machine that is handed the current
/// time (through the scheduler) and schedules what happens next.
pub trait Model {
    /// The event record: small and `Copy`, dispatched by `match`.
    type Event: Copy;
    /// Handles one event at `sched.now()`.
    fn handle(&mut self, event: Self::Event, sched: &mut Scheduler<Self::Event>);

    /// How many of the next events [`Model::prefetch`] is shown before
    /// each event is handled (0: none).
    const PREFETCH_AHEAD: usize = 1;

    /// A hint, given just before an event is handled, of an event that
    /// comes soon, `ahead` places after the one about to be handled less
    /// one (0: the very next; later ones are the queue's best guess): a
    /// model may start loading the state that event will touch (a random
    /// node's record, far in memory in a large cluster), so the load
    /// overlaps the handling of the events before it. A model shown the
    /// same event at several distances can stage its loads: the far hint
    /// loads the event's own record, a near one what that record points
    /// to. It must not change the model: the run is the same with or
    /// without it.
    #[inline]
    fn prefetch(&self, _soon: &Self::Event, _ahead: usize) {}
}

/// The clock and the pending events.
pub struct Scheduler<E: Copy> {
    now: SimTime,
    queue: EventQueue<E>,
    handled: u64,
    stopped: bool,
}

impl<E: Copy> Default for Scheduler<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> Scheduler<E> {
    /// A scheduler at time zero with no events.
    pub fn new() -> Self {
        Scheduler { now: SimTime::ZERO, queue: EventQueue::with_capacity(1024), handled: 0, stopped: false }
    }

    /// A scheduler with room for `n` pending events.
    pub fn with_capacity(n: usize) -> Self {
        Scheduler { now: SimTime::ZERO, queue: EventQueue::with_capacity(n.max(16)), handled: 0, stopped: false }
    }

    /// The current simulated time.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events handled so far.
    #[inline]
    pub fn handled(&self) -> u64 {
        self.handled
    }

    /// Events pending.
    #[inline]
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Ends the run after the event being handled: `run` and `run_until`
    /// return, leaving any pending events unhandled.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Schedules `event` after `delay` from now.
    #[inline]
    pub fn schedule(&mut self, delay: SimDuration, event: E) {
        self.queue.push(self.now + delay, event);
    }

    /// Schedules `event` at the absolute time `at`, which must not be in
    /// the past.
    #[inline]
    pub fn schedule_at(&mut self, at: SimTime, event: E) {
        assert!(at >= self.now, "event scheduled in the past: {at:?} < {:?}", self.now);
        self.queue.push(at, event);
    }

    /// Shows `model` the events after the one about to be handled
    /// ([`Model::prefetch`]).
    #[inline]
    fn hint_next<M: Model<Event = E>>(&self, model: &M) {
        if M::PREFETCH_AHEAD == 0 {
            return;
        }
        if let Some(next) = self.queue.peek() {
            model.prefetch(next, 0);
        }
        for k in 1..M::PREFETCH_AHEAD {
            if let Some(soon) = self.queue.peek_ahead(k) {
                model.prefetch(soon, k);
            }
        }
    }

    /// Runs `model` until no event is pending or the next one is later than
    /// `until` (events at exactly `until` run). Returns events handled.
    pub fn run_until<M: Model<Event = E>>(&mut self, model: &mut M, until: SimTime) -> u64 {
        let start = self.handled;
        while let Some(t) = self.queue.peek_time() {
            if t > until {
                break;
            }
            let (t, ev) = self.queue.pop().expect("peeked");
            debug_assert!(t >= self.now, "time went backwards");
            self.hint_next(model);
            self.now = t;
            self.handled += 1;
            model.handle(ev, self);
            if self.stopped {
                break;
            }
        }
        self.handled - start
    }

    /// Handles at most `n` events (fewer if the queue empties or the model
    /// calls `stop`); returns how many. Running in such steps handles
    /// exactly the events `run` would, in the same order.
    pub fn run_steps<M: Model<Event = E>>(&mut self, model: &mut M, n: u64) -> u64 {
        let start = self.handled;
        while self.handled - start < n && !self.stopped {
            let Some((t, ev)) = self.queue.pop() else { break };
            assert!(t >= self.now, "time went backwards");
            self.hint_next(model);
            self.now = t;
            self.handled += 1;
            model.handle(ev, self);
        }
        self.handled - start
    }

    /// Whether the run is over: no event pending, or the model stopped it.
    pub fn is_done(&self) -> bool {
        self.stopped || self.queue.is_empty()
    }

    /// Runs `model` until no event is pending or the model calls `stop`.
    pub fn run<M: Model<Event = E>>(&mut self, model: &mut M) -> u64 {
        let start = self.handled;
        while let Some((t, ev)) = self.queue.pop() {
            assert!(t >= self.now, "time went backwards");
            self.hint_next(model);
            self.now = t;
            self.handled += 1;
            model.handle(ev, self);
            if self.stopped {
                break;
            }
        }
        self.handled - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ping-pong model that records the times it saw.
    struct PingPong {
        seen: Vec<(u64, u8)>,
        left: u32,
    }

    impl Model for PingPong {
        type Event = u8;
        fn handle(&mut self, ev: u8, s: &mut Scheduler<u8>) {
            self.seen.push((s.now().0, ev));
            if self.left > 0 {
                self.left -= 1;
                s.schedule(SimDuration(10), 1 - ev);
            }
        }
    }

    #[test]
    fn runs_in_time_order_and_stops() {
        let mut s = Scheduler::new();
        let mut m = PingPong { seen: vec![], left: 3 };
        s.schedule(SimDuration(5), 0);
        assert_eq!(s.run(&mut m), 4);
        assert_eq!(m.seen, vec![(5, 0), (15, 1), (25, 0), (35, 1)]);
        assert_eq!(s.now(), SimTime(35));
    }

    #[test]
    fn run_until_leaves_later_events() {
        let mut s = Scheduler::new();
        let mut m = PingPong { seen: vec![], left: 10 };
        s.schedule(SimDuration(0), 0);
        s.run_until(&mut m, SimTime(20));
        assert_eq!(m.seen.len(), 3);
        assert_eq!(s.pending(), 1);
    }

    struct StopAt(u32);
    impl Model for StopAt {
        type Event = u8;
        fn handle(&mut self, _: u8, s: &mut Scheduler<u8>) {
            self.0 += 1;
            if self.0 == 2 {
                s.stop();
            }
        }
    }

    #[test]
    fn stop_ends_the_run_with_events_left() {
        let mut s = Scheduler::new();
        for t in 0..5 {
            s.schedule(SimDuration(t), 0);
        }
        let mut m = StopAt(0);
        assert_eq!(s.run(&mut m), 2);
        assert_eq!(s.pending(), 3);
        assert_eq!(s.now(), SimTime(1));
    }

    #[test]
    #[should_panic(expected = "in the past")]
    fn scheduling_in_the_past_panics() {
        let mut s: Scheduler<u8> = Scheduler::new();
        let mut m = PingPong { seen: vec![], left: 0 };
        s.schedule(SimDuration(10), 0);
        s.run(&mut m);
        s.schedule_at(SimTime(3), 0);
    }
}
