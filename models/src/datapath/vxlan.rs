//! A VXLAN overlay (flannel, Calico VXLAN): pods are bridged on each node as
//! in routed mode, but traffic between nodes is encapsulated in UDP: 50 B
//! more per packet on the wire, encapsulation CPU on the sender and
//! decapsulation CPU on the receiver, and the latency the published
//! round trips show for it (see the module docs of [`super`]).

use super::{flags, DataPathParams, HopKind, Leg};
use crate::ids::NodeId;

/// From the first node's packet processing at `at` to the pod on `to`.
pub(super) fn between_nodes(p: &DataPathParams, leg: &mut Leg, at: NodeId, to: NodeId, from_pod: bool) {
    if at == to {
        leg.push_at(HopKind::Cpu, 0, Some(at), None, 0);
        leg.push_bridge_to_pod(p);
        return;
    }
    leg.push_at(HopKind::Cpu, 0, Some(at), None, flags::ENCAP);
    if from_pod {
        leg.push(HopKind::Bridge, p.bridge_ns);
    }
    leg.push(HopKind::Vxlan, p.vxlan_encap_ns);
    leg.push_wire(p, at, to, flags::OVERLAY);
    leg.push(HopKind::Vxlan, p.vxlan_decap_ns);
    leg.push_at(HopKind::Cpu, 0, Some(to), None, flags::DECAP);
    leg.push_bridge_to_pod(p);
}
