//! A message's walk along its leg: delay hops are summed into one event;
//! at each capacity hop (a node's softirq CPU, a node NIC's transmit
//! queue) the message joins the resource's FIFO queue, and walks on from
//! the time its service ends (one event per capacity hop: departures are
//! computed, not scheduled). A message dropped at a full queue is sent
//! again from the start of its leg after the retransmission delay.

use emu_engine::Scheduler;

use super::run::{Ev, Phase};
use super::trace::EventKind;
use super::World;
use crate::datapath::{Hop, HopKind, Leg, Msg, HOP_KINDS, MAX_HOPS};
use crate::ids::{ConnId, ReqId};
use emu_engine::stats::Tally;
use crate::traffic::Failure;

/// The state of the one message a request has in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walk {
    /// The connection whose leg it walks (`None` before the first walk).
    pub(super) conn: Option<ConnId>,
    /// Whether it walks the connection's way back.
    pub(super) back: bool,
    /// Which opening of the connection's slot it walks (checked in debug
    /// builds; nothing in release ones).
    pub(super) opening: Opening,
    /// Index of the next hop.
    pub(super) pos: u8,
    /// CPU hops passed so far (indexes `extra`).
    pub(super) cpus: u8,
    /// The message.
    pub(super) msg: Msg,
    /// First-packet work [ns] at the first and second CPU hop (a SYN's
    /// proxy lookup and conntrack entry creation).
    pub(super) extra: [u32; 2],
}

impl Walk {
    /// A walk that has not started.
    pub(super) const IDLE: Walk = Walk {
        conn: None,
        back: false,
        opening: Opening::NONE,
        pos: 0,
        cpus: 0,
        msg: Msg { bytes: 0, udp: false },
        extra: [0, 0],
    };
}

/// One opening of a connection slot. A walk reads its connection's legs
/// where the connection keeps them, so a connection must not close (and
/// its slot be reused) while one of its messages walks: debug builds
/// number each opening and check, at every step of a walk, that the slot
/// still holds the connection the walk started on. In release builds it
/// is empty (no bytes, no check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Opening {
    #[cfg(debug_assertions)]
    n: u32,
}

impl Opening {
    /// No opening (a walk that has not started).
    const NONE: Opening = Opening {
        #[cfg(debug_assertions)]
        n: 0,
    };
}

/// The legs of every open connection, both ways, by connection id: built
/// once when the connection opens (a message walks its connection's leg,
/// not a copy of it). The hops of a leg start on a cache line (four hops to
/// a line, none across two); the lengths are apart, two bytes a connection,
/// so that a walk's first load is the line of the hop it is at.
#[derive(Default)]
pub(crate) struct ConnLegs {
    hops: Vec<[LegHops; 2]>,
    lens: Vec<[u8; 2]>,
    /// Which opening each slot holds (empty records in release builds).
    openings: Vec<Opening>,
    /// Openings so far (debug builds).
    #[cfg(debug_assertions)]
    opened: u32,
}

/// A leg's hops, on whole cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct LegHops([Hop; MAX_HOPS]);

impl ConnLegs {
    /// Keeps `legs` (forward, back) for connection `id`.
    #[inline]
    pub(super) fn set(&mut self, id: ConnId, legs: [Leg; 2]) {
        let i = id.index();
        if i >= self.hops.len() {
            self.hops.resize(i + 1, [LegHops([Hop::NONE; MAX_HOPS]); 2]);
            self.lens.resize(i + 1, [0; 2]);
            self.openings.resize(i + 1, Opening::NONE);
        }
        #[cfg(debug_assertions)]
        {
            self.opened += 1;
            self.openings[i] = Opening { n: self.opened };
        }
        for (b, leg) in legs.iter().enumerate() {
            let hops = leg.hops();
            self.hops[i][b].0[..hops.len()].copy_from_slice(hops);
            self.lens[i][b] = hops.len() as u8;
        }
    }

    /// Connection `id`'s leg, forward or back.
    #[inline]
    pub(super) fn get(&self, id: ConnId, back: bool) -> &[Hop] {
        let n = self.lens[id.index()][back as usize];
        &self.hops[id.index()][back as usize].0[..n as usize]
    }

    /// Which opening connection `id`'s slot holds.
    #[inline]
    pub(super) fn opening(&self, id: ConnId) -> Opening {
        self.openings[id.index()]
    }

    /// The leg `w` walks.
    #[inline]
    pub(super) fn of(&self, w: &Walk) -> &[Hop] {
        let c = w.conn.expect("a message walks a connection's leg");
        debug_assert_eq!(self.openings[c.index()], w.opening, "a message walks the leg of {c:?}, closed");
        self.get(c, w.back)
    }

    /// Hints that a walk of connection `id`'s leg (forward or back) starts
    /// soon: fetches its first hops' line.
    #[inline]
    pub(super) fn prefetch_start(&self, id: ConnId, back: bool) {
        if let Some(l) = self.hops.get(id.index()) {
            emu_engine::prefetch::prefetch_line(&l[back as usize]);
        }
    }

    /// The hop `w` is at, if it has started and is not past its end (a
    /// hint's view: no panic, and no load of the leg's length).
    #[inline]
    pub(super) fn try_at(&self, w: &Walk) -> Option<&Hop> {
        self.hops.get(w.conn?.index()).and_then(|l| l[w.back as usize].0.get(w.pos as usize))
    }
}

/// What an open connection leaves to add to the run's counts when it
/// closes (or the run ends), by connection id: a request or message
/// touches its connection's record, not a random endpoint's counter or
/// its flow's tally of every hop it passes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnCounts {
    /// Requests it brought to its Service endpoint (for `endpoint_hits`).
    pub(super) hits: u32,
    /// Accounted walks of its legs (forward, back) that reached their end:
    /// each adds the leg's fixed hops ([`Hop::fixed_ns`]) to `flow`'s hop
    /// tallies, all at once.
    walks: [u32; 2],
    /// The flow those walks were for; [`ConnCounts::NO_FLOW`] before the first.
    flow: u32,
}

impl ConnCounts {
    /// No flow yet.
    const NO_FLOW: u32 = u32::MAX;
    /// Nothing counted.
    pub(super) const ZERO: ConnCounts = ConnCounts { hits: 0, walks: [0, 0], flow: Self::NO_FLOW };
}

/// Adds `n` traversals of each fixed hop among `hops` to `tally`.
fn tally_fixed(tally: &mut [Tally; HOP_KINDS], hops: &[Hop], n: u64) {
    for h in hops {
        if let Some(ns) = h.fixed_ns() {
            tally[h.kind as usize].add_n(ns, n);
        }
    }
}

/// Whether hops of `phase` are accounted to the flow's hop tallies (a DNS
/// exchange is accounted as a whole, in the `dns` hop).
fn accounted(phase: Phase) -> bool {
    !matches!(
        phase,
        Phase::DnsQuery
            | Phase::DnsReply
            | Phase::DnsUpstream
            | Phase::DnsUpReply
            | Phase::DnsAtServer
            | Phase::DnsUpAtServer
    )
}

impl World<'_> {
    /// Starts `req`'s message `msg` along `conn`'s leg (back: the reverse
    /// leg), with first-packet work `extra` on its first two CPU hops.
    pub(super) fn start_walk(
        &mut self,
        req: ReqId,
        conn: ConnId,
        back: bool,
        msg: Msg,
        extra: [u64; 2],
        s: &mut Scheduler<Ev>,
    ) {
        let extra = extra.map(|e| u32::try_from(e).expect("first-packet work above 4.29 s"));
        let opening = self.legs.opening(conn);
        self.reqs.get_mut(req).walk = Walk { conn: Some(conn), back, opening, pos: 0, cpus: 0, msg, extra };
        if self.trace.is_some() && self.tracing(req).is_some() {
            let phase = self.reqs.get(req).phase;
            let leg = self.legs.get(conn, back).to_vec();
            self.trace_walk(req, conn, back, phase, &leg, s.now().as_nanos());
        }
        self.walk_on(req, 0, s);
    }

    /// Walks delay hops from the current position, `delay` already owed,
    /// up to the next capacity hop (or the end of the leg). A fixed hop's
    /// cost goes to the flow's tallies when the walk reaches the leg's end
    /// (counted on its connection, [`ConnCounts`]), or is dropped on the
    /// way; a link's or off-node CPU's, which depends on the message, at
    /// once.
    pub(super) fn walk_on(&mut self, req: ReqId, mut delay: u64, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let (flow, phase, msg) = (r.flow as usize, r.phase, r.walk.msg);
        let (conn, back) = (r.walk.conn, r.walk.back);
        let mut pos = r.walk.pos;
        let dp = &self.params.datapath;
        let hops = self.legs.of(&r.walk);
        let tally = &mut self.flows[flow].stats.hops;
        let acc = accounted(phase);
        let mut trace = self.trace.as_deref_mut().filter(|t| t.req == Some(req));
        while (pos as usize) < hops.len() {
            let h = &hops[pos as usize];
            let (service, latency) = match h.fixed_ns() {
                Some(ns) => (0, ns),
                None if h.node.is_some() => {
                    self.reqs.get_mut(req).walk.pos = pos;
                    return self.at(s, delay, Ev::HopArrive { req });
                }
                None => {
                    let (service, latency) = Leg::idle_hop_ns(dp, h, msg);
                    if acc {
                        tally[h.kind as usize].add(service + latency);
                    }
                    (service, latency)
                }
            };
            if let Some(t) = trace.as_deref_mut() {
                t.hop(pos, s.now().as_nanos() + delay, 0, service, 0, latency);
            }
            delay += service + latency;
            pos += 1;
        }
        self.reqs.get_mut(req).walk.pos = pos;
        if acc {
            self.walked(conn.expect("a walk has a connection"), back, flow as u32);
        }
        self.at(s, delay, Ev::Deliver { req });
    }

    /// An accounted walk of `conn`'s leg (`back`) for `flow` reached its end.
    #[inline]
    fn walked(&mut self, conn: ConnId, back: bool, flow: u32) {
        let c = &self.conn_counts[conn.index()];
        if c.flow != flow {
            // Another flow's requests ride it now (an ingress controller's
            // connection): what the first left is theirs.
            self.settle_walks(conn);
            self.conn_counts[conn.index()].flow = flow;
        }
        self.conn_counts[conn.index()].walks[back as usize] += 1;
    }

    /// Adds the fixed hops of `conn`'s counted walks to their flow's hop
    /// tallies (when it closes, when another flow's walk is counted on it,
    /// when the run ends).
    pub(super) fn settle_walks(&mut self, conn: ConnId) {
        let c = &mut self.conn_counts[conn.index()];
        let (walks, flow) = (std::mem::take(&mut c.walks), c.flow);
        for (b, n) in walks.into_iter().enumerate().filter(|&(_, n)| n > 0) {
            tally_fixed(&mut self.flows[flow as usize].stats.hops, self.legs.get(conn, b == 1), n as u64);
        }
    }

    /// Adds the fixed hops `req`'s message has passed on a walk that will
    /// not reach its leg's end: dropped at a queue, or cut off with the
    /// message between hops when a run stops early.
    pub(super) fn settle_partial_walk(&mut self, req: ReqId) {
        let r = self.reqs.get(req);
        if accounted(r.phase) {
            let passed = &self.legs.of(&r.walk)[..r.walk.pos as usize];
            tally_fixed(&mut self.flows[r.flow as usize].stats.hops, passed, 1);
        }
    }

    /// `req`'s message, dropped at a full queue, is sent again from the
    /// start of its leg: a DNS message after `dns_retry`, a handshake
    /// message (SYN or SYN-ACK) on the SYN's schedule (`syn_rto_ns`; the
    /// connect gives up as `timeout` when it runs out), any other after
    /// `rto`.
    fn resend(&mut self, req: ReqId, phase: Phase, msg: Msg, s: &mut Scheduler<Ev>) {
        let p = &self.params.node;
        let wait = if msg.udp {
            p.dns_retry_ns
        } else if matches!(phase, Phase::Syn | Phase::SynAck) {
            let r = self.reqs.get_mut(req);
            r.syn_losses = r.syn_losses.saturating_add(1);
            let (wait, again) = p.syn_rto_ns(r.syn_losses as u32);
            if !again {
                let now = s.now().as_nanos();
                let deadline = r.start.as_nanos() + self.flows[r.flow as usize].flow.timeout_ns;
                (r.phase, r.failure) = (Phase::Dropped, Failure::Timeout);
                let end = (now + wait).min(deadline).max(now) - now;
                if self.trace.is_some() {
                    self.trace_wait(req, now, end, "handshake message dropped again: the connect gives up");
                }
                return self.at(s, end, Ev::Deliver { req });
            }
            wait
        } else {
            p.rto_ns
        };
        self.flows[self.reqs.get(req).flow as usize].stats.retransmits += 1;
        if self.trace.is_some() {
            self.trace_wait(req, s.now().as_nanos(), wait, "retransmission timeout: the message is sent again");
        }
        self.at(s, wait, Ev::Walk { req });
    }

    /// `req`'s message reaches the capacity hop at its position: it queues
    /// (FIFO, resolved without departure events) and walks on from its
    /// finish time, or is dropped if the queue is full and sent again.
    pub(super) fn hop_arrive(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let r = self.reqs.get(req);
        let (flow, phase) = (r.flow as usize, r.phase);
        let w = &r.walk;
        let (msg, extra_ns, cpus) = (w.msg, w.extra, w.cpus);
        let dp = &self.params.datapath;
        let h = self.legs.of(w)[w.pos as usize];
        let (service, extra) = match h.kind {
            HopKind::Cpu => (dp.cpu_ns(msg, h.flags), extra_ns.get(cpus as usize).copied().unwrap_or(0) as u64),
            _ => (dp.nic_ns(msg, h.flags), 0),
        };
        let node = &mut self.nodes[h.node.expect("a capacity hop walked to has a node").index()];
        let res = if h.kind == HopKind::Cpu { &mut node.cpu } else { &mut node.nic };
        let Some((start, finish)) = res.admit(now, service + extra) else {
            // Dropped: the sender sends it again from the start. First-packet
            // work already done at earlier nodes is not done again.
            self.settle_partial_walk(req);
            let r = self.reqs.get_mut(req);
            for e in r.walk.extra.iter_mut().take(r.walk.cpus as usize) {
                *e = 0;
            }
            r.walk.pos = 0;
            r.walk.cpus = 0;
            let st = &mut self.flows[flow].stats;
            if h.kind == HopKind::Cpu {
                st.cpu_drops += 1;
            } else {
                st.nic_drops += 1;
            }
            if self.trace.is_some() {
                let what = if h.kind == HopKind::Cpu { "softirq backlog" } else { "NIC transmit queue" };
                let text = format!("dropped at the full {what}");
                self.trace_event(req, now, EventKind::Drop, h.node, text);
            }
            return self.resend(req, phase, msg, s);
        };
        if accounted(phase) {
            let hops = &mut self.flows[flow].stats.hops;
            let queue = if h.kind == HopKind::Cpu { HopKind::CpuQueue } else { HopKind::NicQueue };
            let kind = h.kind;
            hops[queue as usize].add(start - now);
            // Service, then the hop's latency (the underlay's propagation);
            // a first packet's proxy work is in its own tallies.
            hops[kind as usize].add(service + h.base_ns as u64);
        }
        if self.trace.is_some() {
            let pos = self.reqs.get(req).walk.pos;
            if let Some(t) = self.tracing(req) {
                t.hop(pos, now, start - now, service, extra, h.base_ns as u64);
            }
        }
        let r = self.reqs.get_mut(req);
        r.walk.pos += 1;
        if h.kind == HopKind::Cpu {
            r.walk.cpus += 1;
        }
        self.walk_on(req, finish - now + h.base_ns as u64, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leg_s_hops_sit_on_whole_cache_lines() {
        // Four 16-byte hops to a 64-byte line, a leg's first hop at a line's
        // start: no hop straddles two lines (docs/performance.md).
        assert_eq!(std::mem::size_of::<Hop>(), 16);
        assert_eq!(std::mem::align_of::<LegHops>(), 64);
        assert_eq!(std::mem::size_of::<[LegHops; 2]>(), 2 * MAX_HOPS * 16);
        let mut legs = ConnLegs::default();
        legs.set(ConnId::new(3), [Leg::EMPTY, Leg::EMPTY]);
        for c in 0..4 {
            for back in [false, true] {
                let at = legs.hops[c][back as usize].0.as_ptr() as usize;
                assert_eq!(at % 64, 0, "connection {c} back {back}");
            }
        }
        assert!(legs.get(ConnId::new(3), true).is_empty());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "closed")]
    fn a_walk_on_a_reopened_slot_panics_in_debug_builds() {
        let mut legs = ConnLegs::default();
        let c = ConnId::new(0);
        legs.set(c, [Leg::EMPTY, Leg::EMPTY]);
        let w = Walk { conn: Some(c), opening: legs.opening(c), ..Walk::IDLE };
        assert!(legs.of(&w).is_empty());
        // The connection closes and its slot opens for another.
        legs.set(c, [Leg::EMPTY, Leg::EMPTY]);
        let _ = legs.of(&w);
    }
}
