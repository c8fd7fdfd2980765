//! NetworkPolicy on the data path: a new connection's (or UDP flow's)
//! first packet is checked on the source pod's node (egress) and on the
//! destination pod's node (ingress), after kube-proxy's DNAT (so against
//! pod ports), against the source address the destination sees (a
//! NodePort's SNAT included). Replies and later packets ride the conntrack
//! entry and are never checked. The evaluation is
//! [`Policies::check`](crate::policy::Policies::check), the one `emu reach`
//! prints.

use super::run::LOCALHOST;
use super::World;
use crate::addr::Ipv4;
use crate::cluster::Protocol;
use crate::datapath::HopKind;
use crate::ids::PodId;
use crate::policy::cost::PolicyModel;
use crate::policy::{Direction, Packet, Remote, Verdict};

/// Per policy: checks it decided, `[ingress allowed, ingress denied,
/// egress allowed, egress denied]` (allowed: its rule admitted the packet
/// first; denied: it isolated the pod and nothing admitted the packet).
pub type PolicyCounts = [u64; 4];

/// Who sends a first packet, for the policy check.
#[derive(Clone, Copy)]
pub(super) struct Sender {
    /// The client pod; `None` for an external client or a node.
    pub pod: Option<PodId>,
    /// The source address the destination pod sees.
    pub src: Ipv4,
    /// A new flow's first packet (`false`: a packet on a kept-alive
    /// connection, which could only exist if its first packet passed: a
    /// denial still drops it, an allowed one costs and counts nothing).
    pub first: bool,
    /// A DNS query: its checks' work is inside the `dns` hop, not counted
    /// again as `network_policy`.
    pub dns: bool,
}

impl World<'_> {
    /// Whether a packet from `from` to `server`'s `port`/`protocol` passes
    /// both checks. `Ok`: the first-packet work [ns] on the source's node
    /// and on the server's node (charged to `flow`'s `network_policy` hop);
    /// `Err`: denied (dropped; counted per policy). A DNS query's work is
    /// not charged to the hop (it is inside `dns`).
    pub(super) fn police(
        &mut self,
        flow: usize,
        from: Sender,
        server: PodId,
        port: u16,
        protocol: Protocol,
    ) -> Result<[u64; 2], Direction> {
        let cl = self.cluster;
        if cl.policies.is_empty() || from.pod == Some(server) || from.src == LOCALHOST {
            return Ok([0, 0]);
        }
        let dst_loc = self.state.loc[server.index()];
        // A hostNetwork pod's packets are its node's: sent by no pod, and
        // received by no pod the policies isolate.
        let from_pod = from.pod.filter(|&c| !self.spec_pod(c).host_network);
        let pkt = Packet {
            from: from_pod.map(|c| (self.spec_pod(c), self.state.loc[c.index()].ip)),
            src: from.src,
            to: self.spec_pod(server),
            to_ip: dst_loc.ip,
            to_node: &cl.nodes[dst_loc.node.index()],
            port,
            protocol,
        };
        let mut work = [0, 0];
        if let Some(v) = cl.policies.egress(&pkt) {
            work[0] = self.tally(
                flow,
                Direction::Egress,
                pkt.from.expect("a source pod").0.workload,
                &v,
                from.first,
                from.dns,
            );
            if !v.allowed {
                return Err(Direction::Egress);
            }
        }
        let v = cl.policies.ingress(&pkt);
        work[1] = self.tally(flow, Direction::Ingress, pkt.to.workload, &v, from.first, from.dns);
        if !v.allowed {
            return Err(Direction::Ingress);
        }
        Ok(work)
    }

    /// Whether client pod `pod`'s DNS query to `to` (an address that is no
    /// pod: the node-local DNS cache) on `port`/`protocol` passes its
    /// egress policies; `Ok` with the work [ns] on its node.
    pub(super) fn police_egress_to(
        &mut self,
        flow: usize,
        pod: PodId,
        to: Ipv4,
        port: u16,
        protocol: Protocol,
    ) -> Result<u64, Direction> {
        let cl = self.cluster;
        if cl.policies.is_empty() {
            return Ok(0);
        }
        let src = self.spec_pod(pod);
        let v = cl.policies.check(Direction::Egress, src, Remote::Addr(to), port, protocol);
        let ns = self.tally(flow, Direction::Egress, src.workload, &v, true, true);
        if v.allowed {
            Ok(ns)
        } else {
            Err(Direction::Egress)
        }
    }

    /// Counts a verdict for its policies and charges the check's work to
    /// `flow`; returns the work [ns]. A packet that is not a `first` one
    /// is counted and charged only when denied.
    fn tally(&mut self, flow: usize, d: Direction, workload: u32, v: &Verdict, first: bool, dns: bool) -> u64 {
        let cl = self.cluster;
        if !first && v.allowed {
            return 0;
        }
        let col = d as usize * 2;
        match v.by {
            Some(p) => self.policy_counts[p as usize][col] += 1,
            None if !v.allowed => {
                for p in cl.policies.selecting(d, workload) {
                    self.policy_counts[p as usize][col + 1] += 1;
                }
            }
            None => {}
        }
        let ns = self.params.policy.check_ns(v);
        if !dns {
            self.flows[flow].stats.hops[HopKind::Policy as usize].add(ns);
        }
        ns
    }
}
