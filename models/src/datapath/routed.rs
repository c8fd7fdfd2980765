//! Routed pod networking (kubenet, host-gw, Calico BGP): each node bridges
//! its pods on `cbr0` and routes between nodes over the underlay, no
//! encapsulation, no NAT between pods.

use super::{DataPathParams, HopKind, Leg};
use crate::ids::NodeId;

/// From the first node's packet processing at `at` to the pod on `to`.
pub(super) fn between_nodes(p: &DataPathParams, leg: &mut Leg, at: NodeId, to: NodeId, from_pod: bool) {
    leg.push_at(HopKind::Cpu, 0, Some(at), None, 0);
    if at == to {
        leg.push_bridge_to_pod(p);
        return;
    }
    if from_pod {
        leg.push(HopKind::Bridge, p.bridge_ns);
    }
    leg.push_wire(p, at, to, 0);
    leg.push_at(HopKind::Cpu, 0, Some(to), None, 0);
    leg.push_bridge_to_pod(p);
}
