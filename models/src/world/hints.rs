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
//!   connection's other leg (the answer's walk).

use emu_engine::prefetch::{prefetch, prefetch_line};

use super::run::Ev;
use super::World;
use crate::datapath::HopKind;

impl World<'_> {
    /// The hint for `soon`, `ahead` places ahead.
    #[inline]
    pub(super) fn hint(&self, soon: &Ev, ahead: usize) {
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
    }
}
