//! What a packet meets in a changing cluster: a pod that is gone, an
//! address handed to another pod, a node that is lost. In a static run
//! none of this happens: every function here answers "as addressed"
//! without looking further.
//!
//! - A SYN DNATed (by a node's stale rules) to an address no pod holds
//!   reaches that node's bridge, where ARP gets no answer: after
//!   [`ARP_FAIL_NS`] the node sends ICMP host unreachable and the connect
//!   fails (`host_unreachable`).
//! - An address reused by a new pod (host-local hands it out again after a
//!   full turn) reaches that pod: a RST if it does not listen on the port.
//! - A pod that stopped accepting (after SIGTERM) answers a SYN with a RST
//!   (`connection_refused`); one that is gone (its node still up) answers
//!   a request on an open connection with a RST (`connection_reset`).
//! - Anything sent to a lost node vanishes: a SYN is retransmitted (to the
//!   same endpoint: its conntrack entry pins the DNAT), a request waits
//!   for its timeout, a DNS query for the resolver's retry.

use emu_engine::Scheduler;

use super::control::{accepts, answers};
use super::run::{Ev, Phase};
use super::World;
use crate::datapath::{Msg, Path};
use crate::ids::{ConnId, NodeId, PodId, ReqId};
use crate::traffic::Failure;

/// How long a node tries to resolve a neighbour before it reports it
/// unreachable [ns]: `mcast_solicit` (3) probes `retrans_time_ms` (1 s)
/// apart (Linux neighbour defaults, ip-sysctl.rst).
pub const ARP_FAIL_NS: u64 = 3_000_000_000;

/// Where a packet addressed to a pod's IP ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Landing {
    /// At this pod (the addressee, or the pod that holds its IP now).
    At(PodId),
    /// At the pod's node, where no pod holds the address.
    Unassigned(NodeId),
    /// Nowhere: the node is lost.
    Lost,
}

/// What a message on an open connection meets at its server pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The server is there.
    Served,
    /// The pod is gone, its node answers with a RST.
    Reset,
    /// The pod's node is lost.
    Lost,
}

impl World<'_> {
    /// Where a packet to `pod`'s address lands now.
    pub(super) fn land(&self, pod: PodId) -> Landing {
        let Some(ctl) = self.control.as_deref() else { return Landing::At(pod) };
        let loc = self.state.loc[pod.index()];
        if !ctl.nodes[loc.node.index()].alive {
            return Landing::Lost;
        }
        if ctl.pods[pod.index()].state != super::control::PodState::Gone {
            // It still holds its address (host-local frees it at teardown).
            return Landing::At(pod);
        }
        match self.state.pod_by_ip(self.cluster, loc.ip) {
            Some(p) => Landing::At(p),
            None => Landing::Unassigned(loc.node),
        }
    }

    /// Whether `pod`'s application accepts a new connection now.
    pub(super) fn accepting(&self, pod: PodId, now: u64) -> bool {
        self.control.as_deref().is_none_or(|c| accepts(c.pods[pod.index()].state, now))
    }

    /// What a message on an open connection to `pod` meets now.
    pub(super) fn fate(&self, pod: Option<PodId>) -> Fate {
        let (Some(ctl), Some(pod)) = (self.control.as_deref(), pod) else { return Fate::Served };
        if !ctl.nodes[self.state.loc[pod.index()].node.index()].alive {
            Fate::Lost
        } else if answers(ctl.pods[pod.index()].state) {
            Fate::Served
        } else {
            Fate::Reset
        }
    }

    /// `req`'s SYN reached a node where no pod holds the address (`path`
    /// leads there): ICMP host unreachable after ARP gives up.
    pub(super) fn host_unreachable(&mut self, req: ReqId, path: Path, s: &mut Scheduler<Ev>) {
        let dp = &self.params.datapath;
        let flow = self.reqs.get(req).flow as usize;
        let hops = &mut self.flows[flow].stats.hops;
        let there = path.leg(dp, false).idle_ns(dp, Msg::tcp(0), |k, ns| hops[k as usize].add(ns));
        let back = path.leg(dp, true).idle_ns(dp, Msg::tcp(0), |k, ns| hops[k as usize].add(ns));
        let r = self.reqs.get_mut(req);
        r.phase = Phase::Reject;
        r.failure = Failure::HostUnreachable;
        if self.trace.is_some() {
            let text = "no pod holds the address: ARP fails, ICMP host unreachable comes back";
            self.trace_wait(req, s.now().as_nanos(), there + ARP_FAIL_NS + back, text);
        }
        self.at(s, there + ARP_FAIL_NS + back, Ev::Deliver { req });
    }

    /// A message of `req` vanished at a lost node: nothing comes back; the
    /// request ends at its timeout.
    pub(super) fn vanish(&mut self, req: ReqId) {
        if self.trace.is_some() {
            self.trace_lost(req);
        }
        let r = self.reqs.get_mut(req);
        r.phase = Phase::Lost;
        r.failure = Failure::Timeout;
    }

    /// Counts a request arriving at (`+1`) or leaving (`-1`) `pod`'s
    /// servers, so that a terminating application exits once drained.
    pub(super) fn inflight(&mut self, pod: Option<PodId>, delta: i32) {
        if let (Some(ctl), Some(pod)) = (self.control.as_deref_mut(), pod) {
            let n = &mut ctl.pods[pod.index()].inflight;
            *n = n.saturating_add_signed(delta);
        }
    }

    /// Whether an idle kept-alive connection of `flow` may carry another
    /// request at `now`: its server has not closed it (SIGTERM: a server
    /// shutting down closes its idle connections, and the client sees the
    /// FIN before its next request) and it is younger than the flow's
    /// `max_connection_age`.
    pub(super) fn reusable(&self, flow: usize, conn: ConnId, now: u64) -> bool {
        let f = &self.flows[flow];
        if let (Some(age), Some(&opened)) = (f.flow.max_connection_age_ns, f.opened.get(&conn)) {
            if now >= opened + age {
                return false;
            }
        }
        let Some(ctl) = self.control.as_deref() else { return true };
        let Some(pod) = self.conns.get(conn).server_pod else { return true };
        // A lost node's connections look fine to the client.
        !ctl.nodes[self.state.loc[pod.index()].node.index()].alive || accepts(ctl.pods[pod.index()].state, now)
    }
}
