//! kube-proxy in nftables mode.
//!
//! Scope: kube-proxy's `ip kube-proxy` table. The first packet of a new
//! connection is classified by verdict-map lookups in the `services` chain
//! (pkg/proxy/nftables/proxier.go `setupNFTables`), O(1) whatever the
//! number of Services: `ip daddr . meta l4proto . th dport vmap
//! @service-ips`, which holds ClusterIPs and load-balancer IPs (one lookup
//! for either), then, for a local destination, `meta l4proto . th dport
//! vmap @service-nodeports` (a node port costs both lookups: the first
//! misses); a packet to a pod IP misses `@service-ips`. The Service's chain picks an endpoint with `numgen
//! random mod n vmap { ... }`: uniform, and the only algorithm this mode
//! has. Session affinity uses a set with timeouts, found by one more lookup.
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `lookup_ns` | 4,000 ns | published-figures.md: nftables first-packet p50 12 us less the 8 us floor (p01) |
//! | `conntrack_new_ns` | 8,000 ns | published-figures.md: nftables first-packet p01, 8 us |
//!
//! Validation: the model's first-packet cost is 12 us whatever the number
//! of Services, the published p50 (docs/validation.md). The published
//! spread (p99 36 us) comes from the kernel and the measurement, which the
//! model does not reproduce: every first packet costs the same.

use emu_engine::rng::Stream;

use super::{Dnat, Entry, FirstPacket, ProxyModel, Query};
use crate::cluster::Cluster;
use crate::datapath::HopKind;

/// nftables-mode parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct NftablesParams {
    /// Verdict-map lookup [ns].
    pub lookup_ns: u64,
    /// Conntrack entry creation [ns].
    pub conntrack_new_ns: u64,
}

impl Default for NftablesParams {
    fn default() -> Self {
        NftablesParams { lookup_ns: 4_000, conntrack_new_ns: 8_000 }
    }
}

/// The nftables proxy of every node.
#[derive(Clone, Debug)]
pub struct Nftables {
    params: NftablesParams,
    service_ips: u64,
    service_nodeports: u64,
    endpoints: u64,
}

impl Nftables {
    /// Builds the maps for `cluster`.
    pub fn new(cluster: &Cluster, params: NftablesParams) -> Nftables {
        let (mut ips, mut nps, mut eps) = (0, 0, 0);
        for sp in &cluster.service_ports {
            if !cluster.services[sp.service.index()].has_cluster_ip() {
                continue;
            }
            // The ClusterIP, and the load-balancer IP of a LoadBalancer Service.
            ips += 1 + u64::from(cluster.services[sp.service.index()].load_balancer_ip.is_some());
            nps += u64::from(sp.node_port.is_some());
            eps += sp.endpoints.len() as u64;
        }
        Nftables { params, service_ips: ips, service_nodeports: nps, endpoints: eps }
    }

    /// Map lookups until the Service's chain: `@service-ips`, and
    /// `@service-nodeports` after it for a node port.
    fn lookups(entry: Entry) -> u32 {
        match entry {
            Entry::ClusterIp | Entry::LoadBalancer => 1,
            Entry::NodePort => 2,
        }
    }

    fn cost(&self, lookups: u32) -> FirstPacket {
        FirstPacket {
            entries: lookups,
            lookup_ns: lookups as u64 * self.params.lookup_ns,
            conntrack_ns: self.params.conntrack_new_ns,
        }
    }
}

impl ProxyModel for Nftables {
    fn hop(&self) -> HopKind {
        HopKind::Nftables
    }

    fn miss(&self) -> FirstPacket {
        self.cost(1)
    }

    fn pick(&mut self, _: &Cluster, q: &Query, rng: &mut Stream) -> Option<Dnat> {
        let i = rng.below(q.candidates.len() as u64) as u32;
        Some(Dnat { endpoint: q.candidates.get(i), cost: self.cost(Self::lookups(q.entry)) })
    }

    fn affinity_hit(&mut self, _: &Cluster, q: &Query, _position: u32) -> FirstPacket {
        // One more: the affinity set.
        self.cost(Self::lookups(q.entry) + 1)
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("nft_service_ips_elements", self.service_ips),
            ("nft_service_nodeports_elements", self.service_nodeports),
            ("nft_endpoint_elements", self.endpoints),
        ]
    }
}
