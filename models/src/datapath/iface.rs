//! What a hop crosses, by name: the interface, node and pod a message
//! meets at each hop of its leg, for `emu trace`. The names are those
//! `emu rules --links` prints for the node ([`super::links`]): a pod's
//! `eth0` and its host-side `veth...` (`lxc...` with eBPF), `cbr0`
//! (flannel's `cni0` with VXLAN), `flannel.1`, the node's `eth0`, `lo`.

use super::{links, Cni, Hop, HopKind, Place};
use crate::ids::{NodeId, PodId};

/// Where a hop happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crossing {
    /// The node it is on; `None` outside the cluster (the external
    /// client's link, the load balancer).
    pub node: Option<NodeId>,
    /// The pod whose network namespace it is in (or whose veth it crosses).
    pub pod: Option<PodId>,
    /// The interface crossed, in the direction of travel (`eth0 >
    /// veth0123abcd` leaves a pod), or what the hop is (`socket`, `cpu`).
    pub iface: String,
    /// The receiving node of a wire between nodes.
    pub to: Option<NodeId>,
}

/// The place at one end of a path, as far as names go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    /// Its pod (`None`: a process of the node's own, or an external client;
    /// a hostNetwork pod is named at its socket, it has no interface).
    pub pod: Option<PodId>,
    /// Its node (an external client's: the node it enters by).
    pub node: NodeId,
    /// Outside the cluster.
    pub external: bool,
    /// Through a load balancer.
    pub via_lb: bool,
}

impl End {
    /// The end at `place`.
    pub fn of(place: Place) -> End {
        match place {
            Place::Pod { pod, node } => End { pod: Some(pod), node, external: false, via_lb: false },
            Place::Host { node } => End { pod: None, node, external: false, via_lb: false },
            Place::External { node } => End { pod: None, node, external: true, via_lb: false },
            Place::ViaLoadBalancer { node } => End { pod: None, node, external: true, via_lb: true },
        }
    }
}

/// What `hop` crosses, on a path from `near` to `far` travelled forward or
/// `back`; `pod_key` names a pod `namespace/name` (its host-side
/// interface's name is a hash of it).
pub fn crossing(cni: Cni, hop: &Hop, near: End, far: End, back: bool, pod_key: &dyn Fn(PodId) -> String) -> Crossing {
    let end = if hop.far { far } else { near };
    let arrow = |a: &str, b: &str, leaving: bool| if leaving { format!("{a} > {b}") } else { format!("{b} > {a}") };
    // Whether the message travels away from this end (out of the near end
    // going forward, out of the far end coming back).
    let leaving = hop.far == back;
    let host_if = |pod: PodId| {
        let name = links::pod_if(if cni == Cni::Ebpf { "lxc" } else { "veth" }, &pod_key(pod));
        name.trim_end_matches("@if2").to_string()
    };
    let on = |iface: String| Crossing { node: Some(end.node), pod: end.pod, iface, to: None };
    let at_node = |iface: &str| Crossing { node: Some(end.node), pod: None, iface: iface.into(), to: None };
    match hop.kind {
        HopKind::Socket if end.external => Crossing { node: None, pod: None, iface: "client socket".into(), to: None },
        HopKind::Socket => on("socket".into()),
        HopKind::Loopback => on("lo".into()),
        HopKind::Veth => match end.pod {
            Some(p) => on(arrow("eth0", &host_if(p), leaving)),
            None => on("veth".into()),
        },
        HopKind::EbpfRedirect => match end.pod {
            Some(p) => on(arrow("eth0", &host_if(p), leaving)),
            None => at_node("cilium_host"),
        },
        HopKind::Bridge => at_node(if cni == Cni::Vxlan { "cni0" } else { "cbr0" }),
        HopKind::Nic => at_node("eth0"),
        HopKind::Vxlan => at_node("flannel.1"),
        HopKind::Cpu => Crossing { node: hop.node, pod: None, iface: "cpu".into(), to: None },
        HopKind::Underlay if hop.node.is_none() || hop.peer.is_none() => {
            // The load balancer's link to the entry node.
            Crossing { node: Some(end.node), pod: None, iface: arrow("load balancer", "eth0", !back), to: None }
        }
        HopKind::Underlay => {
            let (from, to) = if back { (far.node, near.node) } else { (near.node, far.node) };
            // A node's own traffic (to or from a host address) is not
            // encapsulated.
            let overlay = hop.flags & super::flags::OVERLAY != 0;
            let iface = if overlay { "underlay (VXLAN in UDP 8472)" } else { "underlay" };
            Crossing { node: Some(from), pod: None, iface: iface.into(), to: Some(to) }
        }
        HopKind::External => {
            let other = if end.via_lb { "load balancer" } else { "eth0" };
            let node = (!end.via_lb).then_some(end.node);
            Crossing { node, pod: None, iface: arrow("client", other, !back), to: None }
        }
        HopKind::LoadBalancer => Crossing { node: None, pod: None, iface: "load balancer".into(), to: None },
        other => on(other.name().into()),
    }
}
