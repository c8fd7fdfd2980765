//! kube-proxy in iptables mode.
//!
//! Scope: the nat table as kube-proxy writes it. The first packet of every
//! new connection that enters a node's netfilter (from a pod through the
//! bridge with br_netfilter, or from `eth0`) meets `KUBE-SERVICES`, one rule
//! per Service port that has endpoints (`-d ClusterIP --dport port -j
//! KUBE-SVC-...`), and one more per port of a LoadBalancer Service (`-d
//! <load-balancer IP> --dport port -j KUBE-EXT-...`, the "loadbalancer IP"
//! rule pkg/proxy/iptables/proxier.go writes after the Service's ClusterIP
//! rule), matched in order; then, for destinations local to the node, the
//! closing `KUBE-NODEPORTS` jump. A packet a passthrough load balancer
//! forwards still carries the load-balancer IP, so it matches its own rule
//! in KUBE-SERVICES, not KUBE-NODEPORTS. A match jumps to the Service's
//! `KUBE-SVC-...` chain (`KUBE-SVL-...` for a Local traffic policy, holding
//! only node-local endpoints), where rule `i` of `n` is `-m statistic
//! --mode random --probability 1/(n-i)`, the last unconditional: a uniform
//! choice per connection. With `sessionAffinity: ClientIP` the chain first
//! holds one `-m recent --rcheck` rule per endpoint. The chosen
//! `KUBE-SEP-...` chain holds two rules (hairpin masquerade mark, DNAT). A
//! packet to a pod IP passes every KUBE-SERVICES rule without matching.
//! Later packets of the connection hit conntrack and skip the nat table.
//!
//! Costs are charged arithmetically: (rules passed) x `rule_ns`, plus
//! `conntrack_new_ns` for the conntrack entry; rules are never walked one by
//! one. Rule order: kube-proxy writes KUBE-SERVICES by ranging over a Go map,
//! so the order is effectively random and differs per node; `random` (the
//! default) gives each node its own seeded permutation, computed in O(1)
//! per lookup without storing it; `declaration` uses the scenario's order.
//! In declaration order a load-balancer rule follows its Service's
//! ClusterIP rule, as kube-proxy writes them; in random order it is its own
//! entry of the permutation (in kube-proxy it stays next to the ClusterIP
//! rule; either way its position is uniform over the chain, which is all
//! the cost depends on).
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
//! Validation: docs/validation.md; `tests` below and
//! `tests/e2e/validation.rs` hold the first-packet p50 at 5,000 Services
//! within 2x of the published 47 us and the 30k/5k ratio within 30% of the
//! published 5.8.

use emu_engine::rng::{mix64, permute, Stream};

use super::{Dnat, Entry, FirstPacket, ProxyModel, Query};
use crate::cluster::Cluster;
use crate::datapath::HopKind;
use crate::ids::{NodeId, SpId};

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

/// The iptables proxy of every node (the tables are the same set of rules
/// on every node; only their order differs).
#[derive(Clone, Debug)]
pub struct Iptables {
    params: IptablesParams,
    /// Service port -> its ClusterIP rule index in declaration order (None: no endpoints).
    service_rule: Vec<Option<u32>>,
    /// Service port -> its load-balancer IP rule index (right after its ClusterIP rule).
    lb_rule: Vec<Option<u32>>,
    /// Rules in KUBE-SERVICES before the KUBE-NODEPORTS jump (ClusterIP and load-balancer IP rules).
    service_rules: u32,
    /// Service port -> its KUBE-NODEPORTS rule index.
    nodeport_rule: Vec<Option<u32>>,
    nodeport_rules: u32,
    key: u64,
    kube_svc: u64,
    kube_sep: u64,
}

impl Iptables {
    /// Builds the tables for `cluster`; `seed` keys the per-node order.
    pub fn new(cluster: &Cluster, params: IptablesParams, seed: u64) -> Iptables {
        let mut service_rule = Vec::with_capacity(cluster.service_ports.len());
        let mut lb_rule = Vec::with_capacity(cluster.service_ports.len());
        let mut nodeport_rule = Vec::with_capacity(cluster.service_ports.len());
        let (mut n, mut np, mut kube_svc) = (0u32, 0u32, 0u64);
        for sp in &cluster.service_ports {
            let svc = &cluster.services[sp.service.index()];
            let has_rule = !sp.endpoints.is_empty() && svc.has_cluster_ip();
            let has_lb = has_rule && svc.load_balancer_ip.is_some();
            // The ClusterIP rule, then the load-balancer IP's right after it.
            service_rule.push(has_rule.then_some(n));
            lb_rule.push(has_lb.then_some(n + 1));
            nodeport_rule.push((has_rule && sp.node_port.is_some()).then_some(np));
            if has_rule {
                n += 1 + u32::from(has_lb);
                kube_svc += sp.endpoints.len() as u64;
                np += u32::from(sp.node_port.is_some());
            }
        }
        Iptables {
            params,
            service_rule,
            lb_rule,
            service_rules: n,
            nodeport_rule,
            nodeport_rules: np,
            key: mix64(seed ^ 0x4950_5442),
            kube_svc,
            kube_sep: 2 * kube_svc,
        }
    }

    /// The parameters in use.
    pub fn params(&self) -> &IptablesParams {
        &self.params
    }

    fn position(&self, node: NodeId, index: u32, n: u32, table: u64) -> u32 {
        match self.params.rule_order {
            RuleOrder::Declaration => index,
            RuleOrder::Random => {
                permute(index as u64, n as u64, mix64(mix64(self.key ^ table) ^ node.get() as u64)) as u32
            }
        }
    }

    /// 0-based position of Service port `sp`'s ClusterIP rule in
    /// KUBE-SERVICES on `node`; `None` when it has no rule (no endpoints, or
    /// headless).
    pub fn service_position(&self, node: NodeId, sp: SpId) -> Option<u32> {
        self.service_rule[sp.index()].map(|i| self.position(node, i, self.service_rules, 1))
    }

    /// 0-based position of Service port `sp`'s rule in KUBE-NODEPORTS on
    /// `node`; `None` without a node port or endpoints.
    pub fn nodeport_position(&self, node: NodeId, sp: SpId) -> Option<u32> {
        self.nodeport_rule[sp.index()].map(|i| self.position(node, i, self.nodeport_rules, 2))
    }

    /// 0-based position of Service port `sp`'s load-balancer IP rule in
    /// KUBE-SERVICES on `node`; `None` without a load balancer or endpoints.
    pub fn lb_position(&self, node: NodeId, sp: SpId) -> Option<u32> {
        self.lb_rule[sp.index()].map(|i| self.position(node, i, self.service_rules, 1))
    }

    fn cost(&self, rules: u32) -> FirstPacket {
        FirstPacket {
            entries: rules,
            lookup_ns: rules as u64 * self.params.rule_ns,
            conntrack_ns: self.params.conntrack_new_ns,
        }
    }

    /// Rules passed before the KUBE-SVC/KUBE-SVL chain of `q`.
    /// The rules of a Service port's `KUBE-EXT-...` chain an external
    /// packet passes: with a Cluster policy the masquerade mark and the
    /// jump to `KUBE-SVC-...`; with Local the "masquerade LOCAL" and
    /// "route LOCAL" rules (which a packet from outside the node does not
    /// match) and the jump to `KUBE-SVL-...`.
    pub fn ext_rules(cl: &Cluster, sp: SpId) -> u32 {
        match cl.services[cl.service_ports[sp.index()].service.index()].external_traffic_policy {
            crate::cluster::TrafficPolicy::Cluster => 2,
            crate::cluster::TrafficPolicy::Local => 3,
        }
    }

    /// Rules a first packet passes before the Service's `KUBE-SVC-...` (or
    /// `KUBE-SVL-...`) chain: KUBE-SERVICES up to its rule and, for
    /// external traffic, KUBE-NODEPORTS and KUBE-EXT.
    pub fn rules_before_chain(&self, cl: &Cluster, q: &Query) -> u32 {
        match q.entry {
            Entry::ClusterIp => {
                self.service_position(q.node, q.sp).expect("a Service port with endpoints has a rule") + 1
            }
            Entry::NodePort => {
                let at = self.nodeport_position(q.node, q.sp).expect("a node port with endpoints has a rule");
                // Every KUBE-SERVICES rule, the KUBE-NODEPORTS jump, the
                // node port's rule, then KUBE-EXT's.
                self.service_rules + 1 + at + 1 + Self::ext_rules(cl, q.sp)
            }
            Entry::LoadBalancer => {
                // KUBE-SERVICES up to the load-balancer IP's own rule, then
                // KUBE-EXT's.
                self.lb_position(q.node, q.sp).expect("a load balancer with endpoints has a rule")
                    + 1
                    + Self::ext_rules(cl, q.sp)
            }
        }
    }
}

impl ProxyModel for Iptables {
    fn hop(&self) -> HopKind {
        HopKind::Iptables
    }

    fn miss(&self) -> FirstPacket {
        self.cost(self.service_rules + 1)
    }

    fn pick(&mut self, cl: &Cluster, q: &Query, rng: &mut Stream) -> Option<Dnat> {
        let n = q.candidates.len();
        let i = rng.below(n as u64) as u32;
        let recent = if q.affinity { n } else { 0 };
        // Up to the chain, the `recent` checks, the statistic rules up to
        // the chosen one, KUBE-SEP's two rules.
        Some(Dnat {
            endpoint: q.candidates.get(i),
            cost: self.cost(self.rules_before_chain(cl, q) + recent + i + 1 + 2),
        })
    }

    fn affinity_hit(&mut self, cl: &Cluster, q: &Query, position: u32) -> FirstPacket {
        self.cost(self.rules_before_chain(cl, q) + position + 1 + 2)
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            // ClusterIP and load-balancer IP rules, and the KUBE-NODEPORTS jump.
            ("iptables_kube_services_rules", self.service_rules as u64 + 1),
            ("iptables_kube_nodeports_rules", self.nodeport_rules as u64),
            ("iptables_kube_svc_rules", self.kube_svc),
            ("iptables_kube_sep_rules", self.kube_sep),
            (
                "iptables_nat_rules",
                self.service_rules as u64 + 1 + self.nodeport_rules as u64 + self.kube_svc + self.kube_sep,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Ipv4;
    use crate::cluster::{testing, Protocol};
    use crate::proxy::Candidates;
    use emu_engine::rng::Domain;

    fn q(node: u32, sp: u32, n: u32) -> Query<'static> {
        Query {
            node: NodeId::new(node),
            sp: SpId::new(sp),
            entry: Entry::ClusterIp,
            candidates: Candidates::All(n),
            client_ip: Ipv4(1),
            dest_ip: Ipv4(2),
            affinity: false,
            now_ns: 0,
            extra: &[],
            version: 0,
        }
    }

    fn first_packet_p50_ns(services: u32) -> u64 {
        let cluster = testing::services_cluster(2, services, 10);
        let mut ipt = Iptables::new(&cluster, IptablesParams::default(), 1);
        let mut rng = Stream::new(1, Domain(9), 0);
        let mut costs: Vec<u64> = (0..cluster.service_ports.len() as u32)
            .filter(|&sp| cluster.service_ports[sp as usize].protocol == Protocol::Tcp)
            .map(|sp| ipt.pick(&cluster, &q(0, sp, 10), &mut rng).unwrap().cost.total_ns())
            .collect();
        costs.sort_unstable();
        costs[costs.len() / 2]
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
                if let Some(p) = ipt.service_position(NodeId::new(node), SpId::new(sp)) {
                    assert!(!seen[p as usize]);
                    seen[p as usize] = true;
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
        let order = |node| (0..50).map(|sp| ipt.service_position(NodeId::new(node), SpId::new(sp))).collect::<Vec<_>>();
        assert_ne!(order(0), order(1));
        let decl =
            Iptables::new(&cluster, IptablesParams { rule_order: RuleOrder::Declaration, ..Default::default() }, 7);
        let (n0, n2, sp5) = (NodeId::new(0), NodeId::new(2), SpId::new(5));
        assert_eq!(decl.service_position(n2, sp5), decl.service_position(n0, sp5));
    }

    #[test]
    fn a_load_balancer_ip_is_matched_at_its_own_rule_not_via_kube_nodeports() {
        // 100 ClusterIP Services, then one LoadBalancer Service with one
        // endpoint, in declaration order: KUBE-SERVICES holds kube-dns's 3
        // rules, the 100, the LoadBalancer's ClusterIP rule and its
        // load-balancer IP rule right after it (105 rules).
        let mut s = testing::spec(1);
        s.pods.push(testing::pods("backend", 1, 8080));
        s.services = (0..100).map(|i| testing::service(&format!("svc-{i}"), "backend", 8080)).collect();
        let mut lb = testing::service("lb", "backend", 8080);
        lb.kind = crate::cluster::ServiceType::LoadBalancer;
        s.services.push(lb);
        let cluster = crate::cluster::build(&s, 1).unwrap();
        let decl = IptablesParams { rule_order: RuleOrder::Declaration, ..Default::default() };
        let mut ipt = Iptables::new(&cluster, decl, 1);
        let sp = cluster.services.iter().position(|v| v.name == "lb").unwrap();
        let sp = cluster.services[sp].ports[0];
        let n0 = NodeId::new(0);
        assert_eq!(ipt.service_position(n0, sp), Some(103));
        assert_eq!(ipt.lb_position(n0, sp), Some(104));
        assert_eq!(ipt.miss().entries, 106, "105 KUBE-SERVICES rules and the KUBE-NODEPORTS jump");
        let mut rng = Stream::new(1, Domain(9), 0);
        let via = |entry| Query { entry, ..q(0, sp.get(), 1) };
        // Its rule (105th), KUBE-EXT's mark and jump, KUBE-SVC's one rule,
        // KUBE-SEP's two.
        assert_eq!(ipt.pick(&cluster, &via(Entry::LoadBalancer), &mut rng).unwrap().cost.entries, 105 + 2 + 1 + 2);
        // A node port passes all 105, the jump, KUBE-NODEPORTS' rule, KUBE-EXT's two.
        assert_eq!(ipt.pick(&cluster, &via(Entry::NodePort), &mut rng).unwrap().cost.entries, 106 + 1 + 2 + 1 + 2);
        // In random order the load-balancer rule sits anywhere, as ClusterIP
        // rules do: over many nodes its mean position is half the chain.
        let ipt = Iptables::new(&cluster, IptablesParams::default(), 1);
        let mean = (0..400).map(|node| ipt.lb_position(NodeId::new(node), sp).unwrap() as f64).sum::<f64>() / 400.0;
        assert!((mean / 104.5 - 0.5).abs() < 0.08, "{mean}");
        let mut seen = [false; 105];
        let n7 = NodeId::new(7);
        for p in (0..cluster.service_ports.len())
            .map(SpId::from_index)
            .flat_map(|sp| [ipt.service_position(n7, sp), ipt.lb_position(n7, sp)])
            .flatten()
        {
            assert!(!seen[p as usize], "two rules at {p}");
            seen[p as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "ClusterIP and load-balancer rules fill the chain");
    }

    #[test]
    fn miss_passes_every_rule_and_counts_are_reported() {
        let cluster = testing::services_cluster(1, 100, 3);
        let ipt = Iptables::new(&cluster, IptablesParams::default(), 1);
        // 100 user Services + kube-dns's 3 ports, plus the KUBE-NODEPORTS jump.
        assert_eq!(ipt.miss().entries, 104);
        assert_eq!(ipt.miss().lookup_ns, 104 * 20);
        let c = ipt.counts();
        assert_eq!(c[2], ("iptables_kube_svc_rules", 100 * 3 + 3));
        assert_eq!(c[3].1, 2 * c[2].1);
    }

    #[test]
    fn affinity_adds_a_recent_check_per_endpoint() {
        let cluster = testing::services_cluster(1, 1, 10);
        let mut ipt =
            Iptables::new(&cluster, IptablesParams { rule_order: RuleOrder::Declaration, ..Default::default() }, 1);
        let mut rng = Stream::new(1, Domain(9), 0);
        let plain = ipt.pick(&cluster, &q(0, 3, 10), &mut rng).unwrap();
        let mut with = q(0, 3, 10);
        with.affinity = true;
        let mut rng = Stream::new(1, Domain(9), 0);
        let sticky = ipt.pick(&cluster, &with, &mut rng).unwrap();
        assert_eq!(plain.endpoint, sticky.endpoint);
        assert_eq!(sticky.cost.entries, plain.cost.entries + 10);
        // A hit skips the statistic rules: it jumps from its `recent` rule.
        assert_eq!(ipt.affinity_hit(&cluster, &with, 4).entries, 4 + 5 + 2);
    }
}
