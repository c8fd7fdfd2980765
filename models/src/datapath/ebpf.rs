//! A Cilium-like eBPF data path with native routing: a BPF program on the
//! pod's device redirects packets straight to the peer pod's namespace or
//! to the node's NIC (`bpf_redirect_peer`, `bpf_redirect_neigh`), so the
//! bridge, one veth traversal and netfilter (iptables, conntrack) are
//! bypassed. Between nodes it routes like [`super::routed`].

use super::{DataPathParams, HopKind, Leg};
use crate::ids::NodeId;

/// From the first node's packet processing at `at` to the pod on `to`.
pub(super) fn between_nodes(p: &DataPathParams, leg: &mut Leg, at: NodeId, to: NodeId, from_pod: bool) {
    leg.push_at(HopKind::Cpu, 0, Some(at), None, 0);
    if at == to {
        if from_pod {
            // The sender's veth to its host side, where the program
            // redirects into the peer: one veth is skipped, not both.
            leg.push(HopKind::Veth, p.veth_ns);
        }
        leg.switch_to_far_end();
        leg.push(HopKind::EbpfRedirect, p.ebpf_redirect_ns);
        return;
    }
    if from_pod {
        leg.push(HopKind::EbpfRedirect, p.ebpf_redirect_ns);
    }
    leg.push_wire(p, at, to, 0);
    leg.push_at(HopKind::Cpu, 0, Some(to), None, 0);
    leg.push(HopKind::EbpfRedirect, p.ebpf_redirect_ns);
}
