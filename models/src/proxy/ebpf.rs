//! A Cilium-style eBPF kube-proxy replacement.
//!
//! Scope: for pod clients, the Service address is translated once, at
//! `connect()`, by a BPF program in the socket layer (socket-LB): the SYN
//! already carries the endpoint's address, so there is no per-packet NAT
//! and no netfilter conntrack entry for the connection, and pod-to-pod
//! traffic does not walk any rule list. External traffic to a node port is
//! translated per packet by the BPF program on the node's device, with
//! BPF's own connection table. Endpoint choice is uniform random (Cilium's
//! default `random` algorithm; Maglev is not modelled).
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `connect_ns` | 1,000 ns | estimate, not validated: two BPF hash-map lookups (service, backend) at connect() |
//! | `nodeport_ns` | 2,000 ns | estimate, not validated: service and backend lookups plus a BPF conntrack entry on the entry node |
//!
//! Validation: not validated against a measurement; the published figures
//! (published-figures.md) hold no eBPF first-packet numbers.

use emu_engine::rng::Stream;

use super::{Dnat, Entry, FirstPacket, ProxyModel, Query};
use crate::cluster::Cluster;
use crate::datapath::HopKind;

/// eBPF-mode parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct EbpfParams {
    /// Socket-layer translation at connect() [ns].
    pub connect_ns: u64,
    /// Node-port translation and BPF conntrack on the entry node [ns].
    pub nodeport_ns: u64,
}

impl Default for EbpfParams {
    fn default() -> Self {
        EbpfParams { connect_ns: 1_000, nodeport_ns: 2_000 }
    }
}

/// The eBPF load balancer of every node.
#[derive(Clone, Debug)]
pub struct Ebpf {
    params: EbpfParams,
    services: u64,
    backends: u64,
}

impl Ebpf {
    /// Builds the BPF maps for `cluster`.
    pub fn new(cluster: &Cluster, params: EbpfParams) -> Ebpf {
        let (mut s, mut b) = (0, 0);
        for sp in &cluster.service_ports {
            if !cluster.services[sp.service.index()].has_cluster_ip() {
                continue;
            }
            let lb = cluster.services[sp.service.index()].load_balancer_ip.is_some();
            let frontends = 1 + u64::from(sp.node_port.is_some()) + u64::from(lb);
            s += frontends;
            b += frontends * sp.endpoints.len() as u64;
        }
        Ebpf { params, services: s, backends: b }
    }

    fn cost(&self, entry: Entry) -> FirstPacket {
        // A load-balancer IP is a frontend of the same BPF service map as a
        // node port, translated per packet on the entry node's device.
        let lookup_ns = match entry {
            Entry::ClusterIp => self.params.connect_ns,
            Entry::NodePort | Entry::LoadBalancer => self.params.nodeport_ns,
        };
        FirstPacket { entries: 2, lookup_ns, conntrack_ns: 0 }
    }
}

impl ProxyModel for Ebpf {
    fn hop(&self) -> HopKind {
        HopKind::Ebpf
    }

    fn miss(&self) -> FirstPacket {
        FirstPacket::default()
    }

    fn pick(&mut self, _: &Cluster, q: &Query, rng: &mut Stream) -> Option<Dnat> {
        let i = rng.below(q.candidates.len() as u64) as u32;
        Some(Dnat { endpoint: q.candidates.get(i), cost: self.cost(q.entry) })
    }

    fn affinity_hit(&mut self, _: &Cluster, q: &Query, _position: u32) -> FirstPacket {
        self.cost(q.entry)
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![("bpf_lb_services", self.services), ("bpf_lb_backends", self.backends)]
    }
}
