//! A message's walk along its leg: delay hops are summed into one event;
//! at each capacity hop (a node's softirq CPU, a node NIC's transmit
//! queue) the message joins the resource's FIFO queue, and walks on from
//! the time its service ends (one event per capacity hop: departures are
//! computed, not scheduled). A message dropped at a full queue is sent
//! again from the start of its leg after the retransmission delay.

use emu_engine::Scheduler;

use super::legs::Opening;
use super::run::{Ev, Phase};
use super::trace::{EventKind, Tracer};
use super::World;
use crate::datapath::{Hop, HopKind, Leg, Msg, HOP_KINDS};
use crate::ids::{ConnId, ReqId};
use crate::traffic::Failure;
use emu_engine::stats::Tally;

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
    /// Index of the stop it is at or walks to next (`legs::Stop`).
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
    /// Requests of `served_flow` it brought to its server after the first
    /// of them, which went into `World::sources` at once (deciding whether
    /// the triple is among the first `MAX_SOURCES`); these follow when it
    /// settles.
    pub(super) served: u32,
    /// The flow whose requests `served` counts; [`ConnCounts::NO_FLOW`]
    /// before the first.
    pub(super) served_flow: u32,
}

impl ConnCounts {
    /// No flow yet.
    pub(super) const NO_FLOW: u32 = u32::MAX;
    /// Nothing counted.
    pub(super) const ZERO: ConnCounts =
        ConnCounts { hits: 0, walks: [0, 0], flow: Self::NO_FLOW, served: 0, served_flow: Self::NO_FLOW };
}

/// Adds `n` traversals of each fixed hop among `hops` to `tally`.
fn tally_fixed(tally: &mut [Tally; HOP_KINDS], hops: &[Hop], n: u64) {
    for h in hops {
        if let Some(ns) = h.fixed_ns() {
            tally[h.kind as usize].add_n(ns, n);
        }
    }
}

/// Shows the traced request's fixed hops `hops`, the first at index
/// `first` of its leg, reached at `t` [ns].
fn trace_fixed(tracer: &mut Tracer, hops: &[Hop], first: u8, mut t: u64) {
    for (i, h) in (first..).zip(hops) {
        let latency = h.fixed_ns().expect("a fixed hop between stops");
        tracer.hop(i, t, 0, 0, 0, latency);
        t += latency;
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
            let leg = self.full_leg(conn, back);
            self.trace_walk(req, conn, back, phase, leg.hops(), s.now().as_nanos());
        }
        self.walk_on(req, 0, s);
    }

    /// Connection `conn`'s full leg, forward or back (rebuilt from its path:
    /// a walk keeps only its stops).
    fn full_leg(&self, conn: ConnId, back: bool) -> Leg {
        self.conns.get(conn).path.leg(&self.params.datapath, back)
    }

    /// Walks from the current stop, `delay` already owed, to the next
    /// capacity hop (or the end of the leg), adding each stop's fixed
    /// latency before it. The fixed hops' costs go to the flow's tallies
    /// when the walk reaches the leg's end (counted on its connection,
    /// [`ConnCounts`]) or is dropped on the way; a link's or off-node
    /// CPU's, which depends on the message, at once.
    pub(super) fn walk_on(&mut self, req: ReqId, mut delay: u64, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let (flow, phase, msg) = (r.flow as usize, r.phase, r.walk.msg);
        let (conn, back) = (r.walk.conn.expect("a walk has a connection"), r.walk.back);
        let mut pos = r.walk.pos as usize;
        let dp = &self.params.datapath;
        let stops = self.legs.of(&r.walk);
        let acc = accounted(phase);
        let tracing = self.trace.as_deref().is_some_and(|t| t.req == Some(req));
        loop {
            let st = &stops[pos];
            if let Some(t) = self.trace.as_deref_mut().filter(|_| tracing) {
                let from = if pos == 0 { 0 } else { stops[pos - 1].at + 1 };
                let leg = self.conns.get(conn).path.leg(dp, back);
                trace_fixed(t, &leg.hops()[from as usize..st.at as usize], from, s.now().as_nanos() + delay);
            }
            delay += st.pre_ns as u64;
            if st.is_end() {
                break;
            }
            if st.node.is_some() {
                self.reqs.get_mut(req).walk.pos = pos as u8;
                return self.at(s, delay, Ev::HopArrive { req });
            }
            let (service, latency) = Leg::idle_hop_ns(dp, &st.hop(), msg);
            if acc {
                self.flows[flow].stats.hops[st.kind as usize].add(service + latency);
            }
            if let Some(t) = self.trace.as_deref_mut().filter(|_| tracing) {
                t.hop(st.at, s.now().as_nanos() + delay, 0, service, 0, latency);
            }
            delay += service + latency;
            pos += 1;
        }
        self.reqs.get_mut(req).walk.pos = pos as u8;
        if acc {
            self.walked(conn, back, flow as u32);
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
        let n = &mut self.conn_counts[conn.index()].walks[back as usize];
        *n += 1;
        if *n == u32::MAX {
            self.settle_walks(conn);
        }
    }

    /// Adds the fixed hops of `conn`'s counted walks to their flow's hop
    /// tallies (when it closes, when another flow's walk is counted on it,
    /// when the run ends).
    pub(super) fn settle_walks(&mut self, conn: ConnId) {
        let c = &mut self.conn_counts[conn.index()];
        let (walks, flow) = (std::mem::take(&mut c.walks), c.flow);
        for (b, n) in walks.into_iter().enumerate().filter(|&(_, n)| n > 0) {
            let tally = &mut self.flows[flow as usize].stats.hops;
            for (kind, ns) in self.legs.fixed(conn, b == 1).hops() {
                tally[kind as usize].add_n(ns as u64, n as u64);
            }
        }
    }

    /// Adds the fixed hops `req`'s message has passed on a walk that will
    /// not reach its leg's end: dropped at a queue, or cut off with the
    /// message between hops when a run stops early.
    pub(super) fn settle_partial_walk(&mut self, req: ReqId) {
        let r = self.reqs.get(req);
        let (w, flow) = (r.walk, r.flow as usize);
        if accounted(r.phase) {
            let at = self.legs.of(&w)[w.pos as usize].at as usize;
            let leg = self.full_leg(w.conn.expect("a walk has a connection"), w.back);
            tally_fixed(&mut self.flows[flow].stats.hops, &leg.hops()[..at], 1);
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
            if let Some(t) = self.tracing(req) {
                t.hop(h.at, now, start - now, service, extra, h.base_ns as u64);
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
