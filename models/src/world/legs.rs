//! The legs of the open connections, compiled for walking: a message
//! walks its connection's legs, built once when the connection opens, and
//! what it needs of a leg is where it must stop (a capacity hop, or a link
//! whose cost depends on the message) and the fixed delay before each
//! stop; and, for the hop tallies when the connection closes, its fixed
//! hops in order. The full hop list is rebuilt from the connection's path
//! (`Path::leg`) only where each hop's place counts: a walk dropped on the
//! way, and `emu trace`.

use crate::datapath::{Hop, HopKind, Leg, MAX_HOPS};
use crate::ids::{ConnId, NodeId};

use super::walk::Walk;

/// Most stops a leg has: its capacity-kind hops (at most 5 on any path
/// emu builds: an external client's link, a load balancer's link, two
/// node CPUs and a node NIC between them) and its end.
pub(super) const MAX_STOPS: usize = 8;

/// Where a walk stops on a leg: a capacity hop, a link or CPU pass whose
/// cost depends on the message (off any node's capacity), or the leg's
/// end, each after the summed latency of the fixed hops before it
/// ([`Hop::fixed_ns`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stop {
    /// The hop's kind; a kind that is never a capacity marks the end.
    pub(super) kind: HopKind,
    /// The hop's flags.
    pub(super) flags: u8,
    /// Its index in the full leg (the leg's length at the end).
    pub(super) at: u8,
    /// The node whose resource serves it; `None` off the capacity model.
    pub(super) node: Option<NodeId>,
    /// The hop's latency after its service [ns].
    pub(super) base_ns: u32,
    /// The fixed hops' latency before it, since the last stop [ns].
    pub(super) pre_ns: u32,
}

impl Stop {
    /// A filler past a leg's end.
    const NONE: Stop = Stop { kind: HopKind::Socket, flags: 0, at: 0, node: None, base_ns: 0, pre_ns: 0 };

    /// Whether the leg ends here.
    #[inline]
    pub(super) fn is_end(&self) -> bool {
        !self.kind.is_capacity()
    }

    /// The hop, for its cost (`Leg::idle_hop_ns`; no peer).
    #[inline]
    pub(super) fn hop(&self) -> Hop {
        Hop { kind: self.kind, flags: self.flags, base_ns: self.base_ns, node: self.node, peer: None, far: false }
    }
}

/// A leg's stops, on whole cache lines (four to a line: a leg between two
/// nodes has three stops and its end, one line).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(super) struct Stops([Stop; MAX_STOPS]);

/// A leg's fixed hops, in order: what one walk of the leg adds to its
/// flow's hop tallies.
#[derive(Clone, Copy, Debug)]
pub(super) struct FixedHops {
    kinds: [HopKind; MAX_HOPS],
    ns: [u32; MAX_HOPS],
    n: u8,
}

impl FixedHops {
    const NONE: FixedHops = FixedHops { kinds: [HopKind::Socket; MAX_HOPS], ns: [0; MAX_HOPS], n: 0 };

    /// Each hop's kind and latency [ns].
    #[inline]
    pub(super) fn hops(&self) -> impl Iterator<Item = (HopKind, u32)> + '_ {
        let n = self.n as usize;
        self.kinds[..n].iter().copied().zip(self.ns[..n].iter().copied())
    }
}

/// Compiles `leg` into its stops (ending with its end) and its fixed hops
/// in order. (Stops past the end and fixed hops past `n` are left as they
/// were: nothing reads them.)
fn compile(leg: impl ExactSizeIterator<Item = Hop>, stops: &mut Stops, fixed: &mut FixedHops) {
    let (mut n, mut pre, mut f) = (0, 0u32, 0);
    let len = leg.len();
    for (i, h) in leg.enumerate() {
        if h.fixed_ns().is_some() {
            // `params::MAX_FIXED_HOP_NS` keeps a leg's sums inside 32 bits.
            pre = pre.checked_add(h.base_ns).expect("a leg's fixed hops above 4.29 s");
            (fixed.kinds[f], fixed.ns[f], f) = (h.kind, h.base_ns, f + 1);
            continue;
        }
        assert!(n + 1 < MAX_STOPS, "a leg of more than {} capacity hops", MAX_STOPS - 1);
        stops.0[n] = Stop { kind: h.kind, flags: h.flags, at: i as u8, node: h.node, base_ns: h.base_ns, pre_ns: pre };
        (n, pre) = (n + 1, 0);
    }
    stops.0[n] = Stop { at: len as u8, pre_ns: pre, ..Stop::NONE };
    fixed.n = f as u8;
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
    pub(super) const NONE: Opening = Opening {
        #[cfg(debug_assertions)]
        n: 0,
    };
}

/// The compiled legs of every open connection, both ways, by connection
/// id (a message walks its connection's legs, not a copy).
#[derive(Default)]
pub(crate) struct ConnLegs {
    stops: Vec<[Stops; 2]>,
    /// Each leg's fixed hops, for the tallies when the connection closes.
    fixed: Vec<[FixedHops; 2]>,
    /// Which opening each slot holds (empty records in release builds).
    openings: Vec<Opening>,
    /// Openings so far (debug builds).
    #[cfg(debug_assertions)]
    opened: u32,
}

impl ConnLegs {
    /// Keeps connection `id`'s leg `fwd` and its way back
    /// ([`Leg::reversed`], compiled from `fwd` without building it).
    #[inline]
    pub(super) fn set(&mut self, id: ConnId, fwd: &Leg) {
        let i = id.index();
        if i >= self.stops.len() {
            self.stops.resize(i + 1, [Stops([Stop::NONE; MAX_STOPS]); 2]);
            self.fixed.resize(i + 1, [FixedHops::NONE; 2]);
            self.openings.resize(i + 1, Opening::NONE);
        }
        #[cfg(debug_assertions)]
        {
            self.opened += 1;
            self.openings[i] = Opening { n: self.opened };
        }
        let ([s_fwd, s_back], [f_fwd, f_back]) = (&mut self.stops[i], &mut self.fixed[i]);
        compile(fwd.hops().iter().copied(), s_fwd, f_fwd);
        compile(fwd.hops().iter().rev().map(|h| h.reversed()), s_back, f_back);
    }

    /// Connection `id`'s fixed hops, forward or back.
    #[inline]
    pub(super) fn fixed(&self, id: ConnId, back: bool) -> &FixedHops {
        &self.fixed[id.index()][back as usize]
    }

    /// Connection `id`'s stops, forward or back: its end is the first
    /// [`Stop::is_end`].
    #[inline]
    pub(super) fn get(&self, id: ConnId, back: bool) -> &[Stop; MAX_STOPS] {
        &self.stops[id.index()][back as usize].0
    }

    /// Which opening connection `id`'s slot holds.
    #[inline]
    pub(super) fn opening(&self, id: ConnId) -> Opening {
        self.openings[id.index()]
    }

    /// The stops of the leg `w` walks.
    #[inline]
    pub(super) fn of(&self, w: &Walk) -> &[Stop; MAX_STOPS] {
        let c = w.conn.expect("a message walks a connection's leg");
        debug_assert_eq!(self.openings[c.index()], w.opening, "a message walks the leg of {c:?}, closed");
        self.get(c, w.back)
    }

    /// Hints that a walk of connection `id`'s leg (forward or back) starts
    /// soon: fetches its first stops' line.
    #[inline]
    pub(super) fn prefetch_start(&self, id: ConnId, back: bool) {
        if let Some(l) = self.stops.get(id.index()) {
            emu_engine::prefetch::prefetch_line(&l[back as usize]);
        }
    }

    /// The stop `w` is at, if it has started (a hint's view: no panic).
    #[inline]
    pub(super) fn try_at(&self, w: &Walk) -> Option<&Stop> {
        self.stops.get(w.conn?.index()).and_then(|l| l[w.back as usize].0.get(w.pos as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::{route, Cni, DataPathParams, Place};
    use crate::ids::PodId;

    #[test]
    fn a_leg_s_stops_sit_on_whole_cache_lines() {
        // Four 16-byte stops to a 64-byte line, a leg's first at a line's
        // start (docs/performance.md).
        assert_eq!(std::mem::size_of::<Stop>(), 16);
        assert_eq!(std::mem::align_of::<Stops>(), 64);
        assert_eq!(std::mem::size_of::<[Stops; 2]>(), 256);
        assert_eq!(std::mem::size_of::<[FixedHops; 2]>(), 168);
        // Endpoint hits, finished walks and their flow, served requests
        // and their flow (`sources.csv`).
        assert_eq!(std::mem::size_of::<super::super::walk::ConnCounts>(), 24);
        let mut legs = ConnLegs::default();
        legs.set(ConnId::new(3), &Leg::EMPTY);
        for c in 0..4 {
            for back in [false, true] {
                let at = legs.stops[c][back as usize].0.as_ptr() as usize;
                assert_eq!(at % 64, 0, "connection {c} back {back}");
            }
        }
        assert!(legs.get(ConnId::new(3), true)[0].is_end());
    }

    #[test]
    fn a_leg_s_stops_keep_its_capacity_hops_and_its_fixed_latency() {
        let p = DataPathParams::default();
        let (a, b) = (NodeId::new(0), NodeId::new(1));
        let leg = route(&p, Place::Pod { pod: PodId::new(0), node: a }, PodId::new(1), b);
        let (mut stops, mut fixed) = (Stops([Stop::NONE; MAX_STOPS]), FixedHops::NONE);
        compile(leg.hops().iter().copied(), &mut stops, &mut fixed);
        let stops = stops.0;
        let n = stops.iter().position(Stop::is_end).expect("an end");
        let caps: Vec<&Hop> = leg.hops().iter().filter(|h| h.fixed_ns().is_none()).collect();
        assert_eq!(n, caps.len(), "{stops:?}");
        for (s, h) in stops[..n].iter().zip(&caps) {
            assert_eq!((s.kind, s.node, s.flags, s.base_ns), (h.kind, h.node, h.flags, h.base_ns));
            assert_eq!(leg.hops()[s.at as usize], **h);
        }
        // Every fixed hop's latency is before exactly one stop.
        let fixed_ns: u64 = leg.hops().iter().filter_map(Hop::fixed_ns).sum();
        assert_eq!(stops[..=n].iter().map(|s| s.pre_ns as u64).sum::<u64>(), fixed_ns);
        assert!(fixed_ns > 0);
        assert_eq!(stops[n].at as usize, leg.hops().len());
        // And one by one, as a walk adds them to the tallies.
        let want: Vec<(HopKind, u32)> =
            leg.hops().iter().filter(|h| h.fixed_ns().is_some()).map(|h| (h.kind, h.base_ns)).collect();
        assert_eq!(fixed.hops().collect::<Vec<_>>(), want);
        // Between two nodes: CPU, NIC, CPU and the end, one cache line.
        assert_eq!(n, 3);
    }

    #[test]
    fn the_way_back_is_compiled_as_the_reversed_leg() {
        for cni in [Cni::Routed, Cni::Vxlan, Cni::Ebpf] {
            let p = DataPathParams { cni, ..Default::default() };
            let (a, b) = (NodeId::new(0), NodeId::new(1));
            for from in [Place::Pod { pod: PodId::new(0), node: a }, Place::ViaLoadBalancer { node: a }] {
                let fwd = route(&p, from, PodId::new(1), b);
                let mut legs = ConnLegs::default();
                legs.set(ConnId::new(0), &fwd);
                let (mut stops, mut fixed) = (Stops([Stop::NONE; MAX_STOPS]), FixedHops::NONE);
                let back = fwd.reversed();
                compile(back.hops().iter().copied(), &mut stops, &mut fixed);
                let n = stops.0.iter().position(Stop::is_end).expect("an end");
                assert_eq!(legs.get(ConnId::new(0), true)[..=n], stops.0[..=n], "{cni:?} {from:?}");
                let got: Vec<_> = legs.fixed(ConnId::new(0), true).hops().collect();
                assert_eq!(got, fixed.hops().collect::<Vec<_>>());
                // The underlay is sent by the other node on the way back.
                assert!(stops.0[..n].iter().any(|s| s.kind == HopKind::Underlay && s.node == Some(b)));
            }
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "closed")]
    fn a_walk_on_a_reopened_slot_panics_in_debug_builds() {
        let mut legs = ConnLegs::default();
        let c = ConnId::new(0);
        legs.set(c, &Leg::EMPTY);
        let w = Walk { conn: Some(c), opening: legs.opening(c), ..Walk::IDLE };
        assert!(legs.of(&w)[0].is_end());
        // The connection closes and its slot opens for another.
        legs.set(c, &Leg::EMPTY);
        let _ = legs.of(&w);
    }
}
