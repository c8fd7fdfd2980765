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
    /// to; an event shown at 1 is most often not shown again at 0 (the
    /// scheduler takes the nearer stage as done). It must not change the
    /// model: the run is the same with or without it.
    #[inline]
    fn prefetch(&self, _soon: &Self::Event, _ahead: usize) {}
}

/// The clock and the pending events.
pub struct Scheduler<E: Copy> {
    now: SimTime,
    queue: EventQueue<E>,
    handled: u64,
    stopped: bool,
    /// Where the event shown one place ahead at the last hint sits in the
    /// queue (an address compared, never read; 0: none): when it is next,
    /// the model has been shown it already.
    shown_ahead: usize,
}

impl<E: Copy> Default for Scheduler<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> Scheduler<E> {
    /// A scheduler at time zero with no events.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// A scheduler with room for `n` pending events.
    pub fn with_capacity(n: usize) -> Self {
        Scheduler {
            now: SimTime::ZERO,
            queue: EventQueue::with_capacity(n.max(16)),
            handled: 0,
            stopped: false,
            shown_ahead: 0,
        }
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

    /// Every pending event, in no particular order (for a model's last
    /// accounts when a run stops with events pending).
    pub fn pending_events(&self) -> impl Iterator<Item = &E> {
        self.queue.iter()
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
    /// ([`Model::prefetch`]). The next event is not shown again at 0 when
    /// it was shown at 1 the time before (the same slot of the queue's
    /// sorted bottom, the bottom's head having moved on by one): a model
    /// stages its loads by distance, and the nearest stage is done.
    #[inline]
    fn hint_next<M: Model<Event = E>>(&mut self, model: &M) {
        if M::PREFETCH_AHEAD == 0 {
            return;
        }
        if let Some(next) = self.queue.peek() {
            if std::ptr::from_ref(next) as usize != self.shown_ahead {
                model.prefetch(next, 0);
            }
        }
        self.shown_ahead = 0;
        for k in 1..M::PREFETCH_AHEAD {
            if let Some(soon) = self.queue.peek_ahead(k) {
                if k == 1 {
                    self.shown_ahead = std::ptr::from_ref(soon) as usize;
                }
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

    /// Records the hints it is shown (event, distance) and the events it
    /// handles; every seventh event schedules a new one 1 ns later (into
    /// the ladder's near heap).
    struct Hinted {
        hints: std::cell::RefCell<Vec<(u32, usize)>>,
        rounds: Vec<(u32, Vec<(u32, usize)>)>,
        next_id: u32,
    }

    impl Model for Hinted {
        type Event = u32;
        const PREFETCH_AHEAD: usize = 3;
        fn handle(&mut self, ev: u32, s: &mut Scheduler<u32>) {
            self.rounds.push((ev, self.hints.take()));
            if ev.is_multiple_of(7) && self.next_id < 3_000 {
                self.next_id += 1;
                s.schedule(SimDuration(1), self.next_id);
            }
        }
        fn prefetch(&self, soon: &u32, ahead: usize) {
            self.hints.borrow_mut().push((*soon, ahead));
        }
    }

    #[test]
    fn every_event_gets_its_nearest_hint_once() {
        let mut s = Scheduler::new();
        for id in 0..2_000u32 {
            s.schedule(SimDuration(10 * id as u64 + 5), id);
        }
        let mut m = Hinted { hints: Default::default(), rounds: vec![], next_id: 1_999 };
        s.run(&mut m);
        assert!(m.rounds.len() > 2_200, "{}", m.rounds.len());
        let (mut skipped, mut far) = (0, 0);
        // A round's hints are shown while its event is handled: they are
        // of the events after it.
        for (i, (ev, _)) in m.rounds.iter().enumerate().skip(1) {
            let at0 = m.rounds[i - 1].1.contains(&(*ev, 0));
            let at1 = i > 1 && m.rounds[i - 2].1.contains(&(*ev, 1));
            // The nearest stage at most once: at 1 two rounds before, or at
            // 0 the round before; never neither for an event that was
            // pending when the round before was hinted (one scheduled 1 ns
            // ahead while that round's event was handled comes unhinted).
            assert!(!(at0 && at1), "event {ev} (round {i}) shown at 1, then again at 0");
            assert!(at0 || at1 || *ev >= 2_000, "event {ev} (round {i}) never shown near");
            skipped += at1 as u32;
            far += (i > 2 && m.rounds[i - 3].1.contains(&(*ev, 2))) as u32;
        }
        // Most events come from the sorted bottom and are staged ahead.
        assert!(skipped > 1_200 && far > 1_000, "{skipped} {far}");
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
