//! kube-proxy in iptables mode.
//!
//! Scope: the nat table as kube-proxy writes it. The first packet of every
//! new connection that enters a node's netfilter (from a pod through the
//! bridge with br_netfilter, or from `eth0`) meets `KUBE-SERVICES`, one rule
//! per Service port that has endpoints (`-d ClusterIP --dport port -j
//! KUBE-SVC-...`), matched in order; then, for destinations local to the
//! node, the closing `KUBE-NODEPORTS` jump. A match jumps to the Service's
//! `KUBE-SVC-...` chain, where rule `i` of `n` is `-m statistic --mode
//! random --probability 1/(n-i)`, the last unconditional: a uniform choice
//! per connection. The chosen `KUBE-SEP-...` chain holds two rules (hairpin
//! masquerade mark, DNAT). A packet to a pod IP passes every KUBE-SERVICES
//! rule without matching. Later packets of the connection hit conntrack and
//! skip the nat table entirely.
//!
//! Costs are charged arithmetically: (rules passed) x `rule_ns`, plus
//! `conntrack_new_ns` for the conntrack entry; rules are never walked one by
//! one. Rule order: kube-proxy writes KUBE-SERVICES by ranging over a Go map,
//! so the order is effectively random and differs per node; `random` (the
//! default) gives each node its own seeded permutation, computed in O(1)
//! per lookup without storing it; `declaration` uses the scenario's order.
//!
//! Parameters:
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `rule_ns` | 20 ns per rule passed | published-figures.md: "roughly 18-24 ns per rule passed" (KubeCon NA 2024 data in the Kubernetes nftables blog post) |
//! | `conntrack_new_ns` | 8,000 ns per new flow per node | published-figures.md: nftables p01 first-packet latency, 8 us, the O(1) floor of that measurement |
//!
//! Not modelled: the 10-decimal rounding of the probabilities (a bias below
//! 1e-10 per endpoint), the filter table (except the REJECT of Services
//! without endpoints), rule sync latency.
//!
//! Validation: first-packet cost at 5,000 Services with random order has a
//! median of about 8 + 2,500 x 0.02 = 58 us against the published 47 us
//! (chart); the 30k/5k ratio is checked by the tests in this file.

use emu_engine::rng::{mix64, permute, Stream};

use crate::cluster::Cluster;

/// Order of the rules in KUBE-SERVICES.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RuleOrder {
    /// A seeded random permutation per node (what Go map iteration gives).
    #[default]
    Random,
    /// Declaration order on every node.
    Declaration,
}

/// iptables-mode parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct IptablesParams {
    /// Cost of one rule passed [ns].
    pub rule_ns: u64,
    /// Cost of creating a conntrack entry and NAT binding [ns].
    pub conntrack_new_ns: u64,
    /// Rule order in KUBE-SERVICES and KUBE-NODEPORTS.
    pub rule_order: RuleOrder,
}

impl Default for IptablesParams {
    fn default() -> Self {
        IptablesParams { rule_ns: 20, conntrack_new_ns: 8_000, rule_order: RuleOrder::Random }
    }
}

/// What a new connection's first packet costs on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FirstPacket {
    /// Rules evaluated.
    pub rules: u32,
    /// Rule evaluation time [ns].
    pub rules_ns: u64,
    /// Conntrack entry creation time [ns].
    pub conntrack_ns: u64,
}

/// A DNAT decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dnat {
    /// Index of the chosen endpoint in the Service port's endpoint list.
    pub endpoint: u32,
    /// The cost on this node.
    pub cost: FirstPacket,
}

/// Rules kube-proxy writes per node, as users size clusters by them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RuleCounts {
    /// Rules in KUBE-SERVICES (one per Service port with endpoints, plus the
    /// KUBE-NODEPORTS jump).
    pub kube_services: u64,
    /// Rules in KUBE-NODEPORTS.
    pub kube_nodeports: u64,
    /// Rules in all KUBE-SVC chains (one per endpoint).
    pub kube_svc: u64,
    /// Rules in all KUBE-SEP chains (two per endpoint).
    pub kube_sep: u64,
}

impl RuleCounts {
    /// All nat rules kube-proxy owns on a node.
    pub fn total(&self) -> u64 {
        self.kube_services + self.kube_nodeports + self.kube_svc + self.kube_sep
    }
}

/// The iptables proxy of every node (the tables are the same set of rules
/// on every node; only their order differs).
#[derive(Clone, Debug)]
pub struct Iptables {
    params: IptablesParams,
    /// Service port -> its rule index in declaration order (None: no endpoints).
    service_rule: Vec<Option<u32>>,
    service_rules: u32,
    /// Service port -> its KUBE-NODEPORTS rule index.
    nodeport_rule: Vec<Option<u32>>,
    nodeport_rules: u32,
    key: u64,
    counts: RuleCounts,
}

impl Iptables {
    /// Builds the tables for `cluster`; `seed` keys the per-node order.
    pub fn new(cluster: &Cluster, params: IptablesParams, seed: u64) -> Iptables {
        let mut service_rule = Vec::with_capacity(cluster.service_ports.len());
        let mut nodeport_rule = Vec::with_capacity(cluster.service_ports.len());
        let (mut n, mut np) = (0u32, 0u32);
        let mut counts = RuleCounts::default();
        for sp in &cluster.service_ports {
            if sp.endpoints.is_empty() {
                service_rule.push(None);
                nodeport_rule.push(None);
                continue;
            }
            service_rule.push(Some(n));
            n += 1;
            let e = sp.endpoints.len() as u64;
            counts.kube_svc += e;
            counts.kube_sep += 2 * e;
            if sp.node_port.is_some() {
                nodeport_rule.push(Some(np));
                np += 1;
            } else {
                nodeport_rule.push(None);
            }
        }
        counts.kube_services = n as u64 + 1;
        counts.kube_nodeports = np as u64;
        Iptables {
            params,
            service_rule,
            service_rules: n,
            nodeport_rule,
            nodeport_rules: np,
            key: mix64(seed ^ 0x4950_5442),
            counts,
        }
    }

    /// The parameters in use.
    pub fn params(&self) -> &IptablesParams {
        &self.params
    }

    /// Rules per node.
    pub fn rule_counts(&self) -> RuleCounts {
        self.counts
    }

    fn position(&self, node: u32, index: u32, n: u32, table: u64) -> u32 {
        match self.params.rule_order {
            RuleOrder::Declaration => index,
            RuleOrder::Random => permute(index as u64, n as u64, mix64(mix64(self.key ^ table) ^ node as u64)) as u32,
        }
    }

    /// 0-based position of Service port `sp`'s rule in KUBE-SERVICES on
    /// `node`; `None` when it has no endpoints (and so no rule).
    pub fn service_position(&self, node: u32, sp: u32) -> Option<u32> {
        self.service_rule[sp as usize].map(|i| self.position(node, i, self.service_rules, 1))
    }

    fn cost(&self, rules: u32) -> FirstPacket {
        FirstPacket { rules, rules_ns: rules as u64 * self.params.rule_ns, conntrack_ns: self.params.conntrack_new_ns }
    }

    /// A new connection's first packet to a destination that is no Service
    /// (a pod IP): it passes every KUBE-SERVICES rule.
    pub fn miss(&self) -> FirstPacket {
        self.cost(self.service_rules + 1)
    }

    /// A new connection to ClusterIP Service port `sp` from a pod on `node`:
    /// `None` when the Service has no endpoints (the filter table REJECTs).
    pub fn dnat(&self, node: u32, sp: u32, endpoints: u32, rng: &mut Stream) -> Option<Dnat> {
        let pos = self.service_position(node, sp)?;
        let endpoint = rng.below(endpoints as u64) as u32;
        // KUBE-SERVICES up to the match, KUBE-SVC up to the chosen rule,
        // KUBE-SEP's two rules.
        Some(Dnat { endpoint, cost: self.cost(pos + 1 + endpoint + 1 + 2) })
    }

    /// A new connection arriving at `node` for node port of Service port
    /// `sp`: every KUBE-SERVICES rule, then KUBE-NODEPORTS up to the match,
    /// the KUBE-EXT masquerade mark, then KUBE-SVC and KUBE-SEP.
    pub fn nodeport(&self, node: u32, sp: u32, endpoints: u32, rng: &mut Stream) -> Option<Dnat> {
        let idx = self.nodeport_rule[sp as usize]?;
        let pos = self.position(node, idx, self.nodeport_rules, 2);
        let endpoint = rng.below(endpoints as u64) as u32;
        Some(Dnat { endpoint, cost: self.cost(self.service_rules + 1 + pos + 1 + 1 + endpoint + 1 + 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{testing, Protocol};
    use emu_engine::rng::Domain;

    fn p50(mut v: Vec<u64>) -> u64 {
        v.sort_unstable();
        v[v.len() / 2]
    }

    fn first_packet_p50_ns(services: u32) -> u64 {
        let cluster = testing::services_cluster(2, services, 10);
        let ipt = Iptables::new(&cluster, IptablesParams::default(), 1);
        let mut rng = Stream::new(1, Domain(9), 0);
        let costs: Vec<u64> = (0..cluster.service_ports.len() as u32)
            .filter(|&sp| {
                cluster.service_ports[sp as usize].protocol == Protocol::Tcp
                    && !cluster.service_ports[sp as usize].endpoints.is_empty()
            })
            .map(|sp| {
                let d = ipt.dnat(0, sp, 10, &mut rng).unwrap();
                d.cost.rules_ns + d.cost.conntrack_ns
            })
            .collect();
        p50(costs)
    }

    #[test]
    fn first_packet_cost_grows_linearly_like_the_published_chart() {
        let at5k = first_packet_p50_ns(5_000) as f64;
        let at30k = first_packet_p50_ns(30_000) as f64;
        // Published p50: 47 us at 5k, 272 us at 30k (ratio 5.8).
        assert!(at5k / 47_000.0 < 2.0 && at5k / 47_000.0 > 0.5, "5k p50 {at5k}");
        let ratio = at30k / at5k;
        assert!((ratio / (272.0 / 47.0) - 1.0).abs() < 0.3, "30k/5k ratio {ratio}");
    }

    #[test]
    fn positions_are_a_permutation_per_node_and_differ_between_nodes() {
        let cluster = testing::services_cluster(3, 200, 1);
        let ipt = Iptables::new(&cluster, IptablesParams::default(), 7);
        let n = ipt.service_rules;
        for node in 0..3 {
            let mut seen = vec![false; n as usize];
            for sp in 0..cluster.service_ports.len() as u32 {
                if let Some(p) = ipt.service_position(node, sp) {
                    assert!(!seen[p as usize]);
                    seen[p as usize] = true;
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
        let order = |node| (0..50).map(|sp| ipt.service_position(node, sp)).collect::<Vec<_>>();
        assert_ne!(order(0), order(1));
        let decl =
            Iptables::new(&cluster, IptablesParams { rule_order: RuleOrder::Declaration, ..Default::default() }, 7);
        assert_eq!(decl.service_position(2, 5), decl.service_position(0, 5));
    }

    #[test]
    fn miss_passes_every_rule_and_counts_are_reported() {
        let cluster = testing::services_cluster(1, 100, 3);
        let ipt = Iptables::new(&cluster, IptablesParams::default(), 1);
        // 100 user Services + kube-dns's 2 ports, plus the KUBE-NODEPORTS jump.
        assert_eq!(ipt.miss().rules, 103);
        assert_eq!(ipt.miss().rules_ns, 103 * 20);
        let c = ipt.rule_counts();
        assert_eq!(c.kube_svc, 100 * 3 + 2);
        assert_eq!(c.kube_sep, 2 * c.kube_svc);
    }
}
