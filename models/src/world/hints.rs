//! Staged loads of what an event soon to be handled touches
//! ([`emu_engine::Model::prefetch`]): at 65,000 nodes each is a miss to
//! memory. The scheduler shows an event three, two and one places ahead
//! (or next, if it was not shown one ahead); each stage loads what the
//! stage before brought in points to. Hints never change the run.
//!
//! - A hop's arrival: three ahead the request's record; two ahead, from
//!   it, the stop of its connection's leg it reaches; one ahead the node
//!   queue and the flow's tallies of that hop.
//! - A delivery or a service's end: three ahead the request's record; two
//!   ahead its connection; one ahead the server and the first line of the
//!   connection's other leg (the answer's walk), and what the event itself
//!   counts: for a response the flow's completions and latency histogram,
//!   the counter the latency will land on and its place in the interval's
//!   latencies; for a request reaching its server the connection's
//!   counts; for a service's end the flow's response size.
//! - A closed-loop client ready for its next request: three ahead the
//!   flow's lines that issuing a request reads (a flow's record spans many
//!   lines); two ahead, from them, the client's idle-connection stack and
//!   the slot the request's timeout will take; one ahead the stack's top.

use emu_engine::prefetch::{prefetch, prefetch_addr, prefetch_line};

use super::run::{Ev, Phase};
use super::{IdlePool, World};
use crate::datapath::HopKind;

impl World<'_> {
    /// The hint for `soon`, `ahead` places ahead.
    #[inline]
    pub(super) fn hint(&self, soon: &Ev, ahead: usize) {
        if let Ev::ClientReady { flow, slot } = *soon {
            return self.hint_issue(flow, slot, ahead);
        }
        let (Ev::HopArrive { req } | Ev::Deliver { req } | Ev::ServiceDone { req }) = *soon else { return };
        if ahead >= 3 {
            return self.reqs.prefetch(req);
        }
        let Some(r) = self.reqs.try_get(req) else { return };
        if let Ev::HopArrive { .. } = soon {
            let Some(h) = self.legs.try_at(&r.walk) else { return };
            if ahead == 2 {
                return prefetch_line(h);
            }
            if let Some(node) = h.node.and_then(|n| self.nodes.get(n.index())) {
                let (half, queue) = if h.kind == HopKind::Cpu {
                    (&node.cpu, HopKind::CpuQueue)
                } else {
                    (&node.nic, HopKind::NicQueue)
                };
                crate::node::prefetch(half);
                if let Some(f) = self.flows.get(r.flow as usize) {
                    prefetch_line(&f.stats.hops[queue as usize]);
                    prefetch_line(&f.stats.hops[h.kind as usize]);
                }
            }
            return;
        }
        let Some(c) = r.conn_of_any(r.phase) else { return };
        if ahead == 2 {
            return self.conns.prefetch(c);
        }
        if let Some(sv) = self.conns.try_get(c).and_then(|c| c.server).and_then(|sv| self.servers.get(sv.index())) {
            prefetch(sv);
        }
        // What a delivery or a service's end leads to is most often the
        // answer's walk: the connection's other way.
        if r.walk.conn == Some(c) {
            self.legs.prefetch_start(c, !r.walk.back);
        }
        let Some(f) = self.flows.get(r.flow as usize) else { return };
        match (soon, r.phase) {
            (Ev::Deliver { .. }, Phase::Response) => {
                prefetch_line(&f.stats.completed);
                prefetch_line(&f.stats.latency);
                // The counter of the latency as of now: the delivery is at
                // most a few events later, within the counter's line.
                f.stats.latency.prefetch(self.now_ns.saturating_sub(r.start.as_nanos()));
                f.series.prefetch_completed();
            }
            (Ev::Deliver { .. }, Phase::Request | Phase::Upstream) => {
                if let Some(n) = self.conn_counts.get(c.index()) {
                    prefetch_line(n);
                }
            }
            (Ev::ServiceDone { .. }, _) => prefetch_line(&f.flow.response_bytes),
            _ => {}
        }
    }

    /// The hint for a closed-loop client's next request (`World::issue`).
    #[inline]
    fn hint_issue(&self, flow: u32, slot: u32, ahead: usize) {
        let Some(f) = self.flows.get(flow as usize) else { return };
        if ahead >= 3 {
            prefetch_line(&f.issued);
            prefetch_line(&f.stats.requests);
            prefetch_line(&f.flow.keep_alive);
            prefetch_line(&f.flow.max_connection_age_ns);
            prefetch_line(&f.timeouts);
            return prefetch_line(&f.idle);
        }
        let stack = match &f.idle {
            IdlePool::Slots(v) if f.flow.keep_alive && f.clients() > 0 => v.get(f.slot_client(slot) as usize),
            _ => None,
        };
        if ahead == 2 {
            if let Some(st) = stack {
                prefetch_line(st);
            }
            // The back of the timeouts' ring, where the request's goes.
            let (a, b) = f.timeouts.as_slices();
            let end = if b.is_empty() { a.as_ptr_range().end } else { b.as_ptr_range().end };
            return prefetch_addr(end);
        }
        if let Some(top) = stack.and_then(|st| st.last()) {
            prefetch_line(top);
        }
    }
}
