//! kube-proxy in IPVS mode.
//!
//! Scope: every node's IPVS table holds one virtual server per Service
//! address and port (ClusterIP, each node IP for node ports, and the
//! load-balancer IP, which kube-proxy binds to `kube-ipvs0`), each with
//! the Service's endpoints as real servers (NAT forwarding, weight 1 as
//! kube-proxy writes it, or the pod's `ipvs_weight`). The first packet of a
//! connection costs one hash lookup, whatever the number of Services;
//! non-Service traffic costs one ipset lookup in iptables' KUBE-SERVICES
//! (`-m set --match-set KUBE-CLUSTER-IP dst,dst`). The scheduler picks a
//! real server with the semantics of the kernel's `ip_vs_*.c`, with its
//! state (round-robin cursor, active and inactive connection counts) kept
//! per node and per virtual server, as each node's IPVS balances on its
//! own:
//!
//! | scheduler | rule |
//! |---|---|
//! | `rr` | next server after the last one chosen (kube-proxy's default) |
//! | `wrr` | interleaved weighted round robin (current weight stepped by the gcd of the weights) |
//! | `lc` | least overhead `(active << 8) + inactive` (`ip_vs_dest_conn_overhead` in include/net/ip_vs.h) |
//! | `wlc` | least overhead `(active << 8) + inactive` per unit of weight |
//! | `sed` | shortest expected delay: fewest `(active + 1) / weight` (active connections only, ip_vs_sed.c) |
//! | `nq` | never queue: the first server without active connections, else as `sed` (active only, ip_vs_nq.c) |
//! | `sh` | source hashing: a 256-bucket table filled in weighted turn, indexed by `hash_32(client IP, 8)` |
//! | `dh` | destination hashing: the same table indexed by the destination address |
//!
//! Ties go to the first server in endpoint order, as the kernel walks its
//! list. A TCP connection counts as active from its first packet (IPVS
//! counts SYN_RECV as active, `tcp_state_active` in ip_vs_proto_tcp.c)
//! until it is closed; then it is inactive for IPVS's own TIME_WAIT timeout
//! (`tcp_time_wait_ns`, its entry's last state after either side's FIN)
//! before IPVS frees it. A UDP connection (a DNS query) has no states in
//! IPVS (ip_vs_proto_udp.c): it stays active for `udp_timeout_ns` after
//! its exchange. Expiries are kept in one FIFO per virtual server (one
//! timeout per protocol, so they come in order) and applied lazily when
//! the virtual server schedules or closes a connection: no event per
//! connection. Only the schedulers that read the counts keep these FIFOs:
//! `lc` and `wlc` (and `sed` and `nq` for UDP; they ignore inactive
//! connections).
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `scheduler` | `rr` | kube-proxy `--ipvs-scheduler` default |
//! | `lookup_ns` | 4,500 ns | published-figures.md: nftables "matches IPVS (slightly better)": the nftables lookup (4 us) plus 0.5 us |
//! | `conntrack_new_ns` | 8,000 ns | as iptables mode (kube-proxy runs IPVS with `net.ipv4.vs.conntrack=1`) |
//! | `tcp_time_wait_ns` | 120 s | ip_vs_proto_tcp.c `tcp_timeouts[IP_VS_TCP_S_TIME_WAIT]` = 2 min (kube-proxy's `--ipvs-tcp*-timeout` flags leave it) |
//! | `udp_timeout_ns` | 300 s | ip_vs_proto_udp.c `udp_timeouts[IP_VS_UDP_S_NORMAL]` = 5 min (kube-proxy's `--ipvs-udp-timeout` default 0 leaves it) |
//!
//! Validation: flat first-packet cost in the number of Services
//! (docs/validation.md); scheduler semantics by the tests below.

use crate::hash::HashMap;
use std::collections::VecDeque;

use emu_engine::rng::Stream;

use super::{Dnat, Entry, FirstPacket, ProxyModel, Query};
use crate::cluster::{Cluster, Protocol};
use crate::datapath::HopKind;
use crate::ids::{EpId, NodeId, SpId};

/// An IPVS scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scheduler {
    /// Round robin.
    #[default]
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Source hashing.
    Sh,
    /// Destination hashing.
    Dh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
}

impl Scheduler {
    /// Every scheduler, by name.
    pub const ALL: [(&'static str, Scheduler); 8] = [
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("sh", Scheduler::Sh),
        ("dh", Scheduler::Dh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
    ];
}

/// IPVS-mode parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct IpvsParams {
    /// The scheduler of every virtual server.
    pub scheduler: Scheduler,
    /// Virtual-server (or ipset) hash lookup [ns].
    pub lookup_ns: u64,
    /// Conntrack entry creation [ns].
    pub conntrack_new_ns: u64,
    /// How long a closed TCP connection stays an inactive connection of its
    /// real server (IPVS's TIME_WAIT) [ns].
    pub tcp_time_wait_ns: u64,
    /// How long a UDP connection stays active after its exchange [ns].
    pub udp_timeout_ns: u64,
}

impl Default for IpvsParams {
    fn default() -> Self {
        IpvsParams {
            scheduler: Scheduler::Rr,
            lookup_ns: 4_500,
            conntrack_new_ns: 8_000,
            tcp_time_wait_ns: 120_000_000_000,
            udp_timeout_ns: 300_000_000_000,
        }
    }
}

impl Scheduler {
    /// Whether it reads inactive connections (`ip_vs_dest_conn_overhead`).
    fn reads_inactive(self) -> bool {
        matches!(self, Scheduler::Lc | Scheduler::Wlc)
    }

    /// Whether it reads active connections.
    fn reads_active(self) -> bool {
        matches!(self, Scheduler::Lc | Scheduler::Wlc | Scheduler::Sed | Scheduler::Nq)
    }
}

/// One virtual server's scheduler state on one node.
#[derive(Clone, Debug, Default)]
struct VsState {
    /// Index (into the candidates) of the last server chosen; `None` before the first.
    last: Option<u32>,
    /// wrr: current weight.
    cw: i64,
    /// Active connections per endpoint of the Service port.
    active: Vec<u32>,
    /// Inactive (closed, in IPVS's TIME_WAIT) TCP connections per endpoint.
    inactive: Vec<u32>,
    /// Connections still counted after their close, by (expiry [ns],
    /// endpoint), in expiry order: TCP ones inactive, UDP ones active.
    lingering: VecDeque<(u64, EpId)>,
    /// Whether the virtual server is UDP.
    udp: bool,
    /// sh/dh: the 256-bucket table of candidate indices.
    table: Vec<u32>,
    /// The endpoint set version `table` was built for.
    table_version: u64,
}

impl VsState {
    /// Sizes the counts for Service port `sp` on first use, and for the
    /// endpoints added since.
    fn init(&mut self, cluster: &Cluster, q: &Query) {
        let port = &cluster.service_ports[q.sp.index()];
        let n = port.endpoints.len() + q.extra.len();
        if self.active.len() < n {
            self.active.resize(n, 0);
            self.inactive.resize(n, 0);
            self.udp = port.protocol == Protocol::Udp;
        }
        if self.table_version != q.version {
            // A new endpoint set: sh and dh rebuild their buckets.
            self.table.clear();
            self.table_version = q.version;
        }
    }

    /// Frees the lingering connections whose timeout has passed at `now_ns`.
    fn expire(&mut self, now_ns: u64) {
        while let Some(&(at, ep)) = self.lingering.front() {
            if at > now_ns {
                break;
            }
            self.lingering.pop_front();
            let count = if self.udp { &mut self.active } else { &mut self.inactive };
            count[ep.index()] -= 1;
        }
    }

    /// `ip_vs_dest_conn_overhead`: `(active << 8) + inactive` of endpoint `ep`.
    fn overhead(&self, ep: EpId) -> u64 {
        ((self.active[ep.index()] as u64) << 8) + self.inactive[ep.index()] as u64
    }
}

/// The IPVS proxy: tables on every node, scheduler state per node.
#[derive(Clone, Debug)]
pub struct Ipvs {
    params: IpvsParams,
    /// (node, service port, entry) -> state; created on first use.
    state: HashMap<(NodeId, SpId, Entry), VsState>,
    virtual_servers: u64,
    real_servers: u64,
}

/// `hash_32(val, bits)` of include/linux/hash.h.
fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Ipvs {
    /// Builds the tables for `cluster`.
    pub fn new(cluster: &Cluster, params: IpvsParams) -> Ipvs {
        let (mut vs, mut rs) = (0u64, 0u64);
        for sp in &cluster.service_ports {
            if !cluster.services[sp.service.index()].has_cluster_ip() {
                continue;
            }
            // The ClusterIP, plus, for a node port, one virtual server per
            // local address of the node (eth0 and cbr0), plus the
            // load-balancer IP's (kube-proxy binds it to kube-ipvs0).
            let lb = cluster.services[sp.service.index()].load_balancer_ip.is_some();
            let per = 1 + if sp.node_port.is_some() { 2 } else { 0 } + u64::from(lb);
            vs += per;
            rs += per * sp.endpoints.len() as u64;
        }
        Ipvs { params, state: HashMap::default(), virtual_servers: vs, real_servers: rs }
    }

    fn cost(&self) -> FirstPacket {
        FirstPacket { entries: 1, lookup_ns: self.params.lookup_ns, conntrack_ns: self.params.conntrack_new_ns }
    }

    /// Active connections per endpoint of a virtual server on a node.
    pub fn active(&self, node: NodeId, sp: SpId, entry: Entry) -> Vec<u32> {
        self.state.get(&(node, sp, entry)).map(|s| s.active.clone()).unwrap_or_default()
    }

    /// Inactive connections per endpoint of a virtual server on a node, as
    /// of its last scheduling or close.
    pub fn inactive(&self, node: NodeId, sp: SpId, entry: Entry) -> Vec<u32> {
        self.state.get(&(node, sp, entry)).map(|s| s.inactive.clone()).unwrap_or_default()
    }
}

fn weight(cluster: &Cluster, q: &Query, i: u32) -> u32 {
    let base = &cluster.service_ports[q.sp.index()].endpoints;
    let ep = q.candidates.get(i).index();
    base.get(ep).unwrap_or_else(|| &q.extra[ep - base.len()]).weight
}

/// The candidate minimising `overhead / weight` (cross-multiplied, as the
/// kernel does); weight-0 servers are skipped; ties keep the first; `None`
/// when every candidate has weight 0.
fn least(cluster: &Cluster, q: &Query, overhead: impl Fn(EpId) -> u64) -> Option<u32> {
    let mut best: Option<(u32, u64, u64)> = None;
    for i in 0..q.candidates.len() {
        let w = weight(cluster, q, i) as u64;
        if w == 0 {
            continue;
        }
        let oh = overhead(q.candidates.get(i));
        match best {
            Some((_, boh, bw)) if oh * bw >= boh * w => {}
            _ => best = Some((i, oh, w)),
        }
    }
    best.map(|b| b.0)
}

fn hash_table(cluster: &Cluster, q: &Query) -> Vec<u32> {
    // ip_vs_sh_reassign: walk the servers in turn, each filling `weight`
    // consecutive buckets.
    let n = q.candidates.len();
    let mut table = Vec::with_capacity(256);
    let (mut i, mut used) = (0u32, 0u32);
    while table.len() < 256 {
        let w = weight(cluster, q, i).max(1);
        table.push(i);
        used += 1;
        if used >= w {
            used = 0;
            i = (i + 1) % n;
        }
    }
    table
}

/// rr: the next server with a weight after the last one chosen.
fn round_robin(st: &VsState, n: u32, w: impl Fn(u32) -> u32) -> Option<u32> {
    let start = st.last.map_or(0, |l| (l + 1) % n);
    (0..n).map(|k| (start + k) % n).find(|&i| w(i) > 0)
}

/// wrr: interleaved weighted round robin; `None` when every weight is 0
/// (ip_vs_wrr.c: the current weight stays 0, "no destination available").
fn weighted_round_robin(st: &mut VsState, n: u32, w: impl Fn(u32) -> u32) -> Option<u32> {
    let weights: Vec<u32> = (0..n).map(w).collect();
    let mw = *weights.iter().max().unwrap() as i64;
    if mw == 0 {
        return None;
    }
    let di = weights.iter().fold(0, |g, &x| gcd(g, x)).max(1) as i64;
    let mut i = st.last.unwrap_or(n - 1);
    for _ in 0..(n as usize * (mw as usize / di as usize + 1)) {
        i = (i + 1) % n;
        if i == 0 {
            st.cw -= di;
            if st.cw <= 0 {
                st.cw = mw;
            }
        }
        if weights[i as usize] as i64 >= st.cw {
            return Some(i);
        }
    }
    unreachable!("a server of the largest weight is met within a round")
}

/// lc: least overhead, weights used only to skip weight-0 servers.
fn least_connections(q: &Query, w: impl Fn(u32) -> u32, overhead: impl Fn(EpId) -> u64) -> Option<u32> {
    let mut best: Option<(u32, u64)> = None;
    for i in (0..q.candidates.len()).filter(|&i| w(i) > 0) {
        let oh = overhead(q.candidates.get(i));
        if best.is_none_or(|(_, b)| oh < b) {
            best = Some((i, oh));
        }
    }
    best.map(|b| b.0)
}

impl ProxyModel for Ipvs {
    fn hop(&self) -> HopKind {
        HopKind::Ipvs
    }

    fn miss(&self) -> FirstPacket {
        self.cost()
    }

    fn pick(&mut self, cluster: &Cluster, q: &Query, _rng: &mut Stream) -> Option<Dnat> {
        let n = q.candidates.len();
        let cost = self.cost();
        let scheduler = self.params.scheduler;
        let st = self.state.entry((q.node, q.sp, q.entry)).or_default();
        st.init(cluster, q);
        st.expire(q.now_ns);
        let w = |i: u32| weight(cluster, q, i);
        // Every scheduler finds no destination when it may choose no server
        // of weight > 0 (ip_vs_*_schedule returns NULL).
        let i = match scheduler {
            Scheduler::Rr => round_robin(st, n, w),
            Scheduler::Wrr => weighted_round_robin(st, n, w),
            Scheduler::Lc => least_connections(q, w, |ep| st.overhead(ep)),
            Scheduler::Wlc => least(cluster, q, |ep| st.overhead(ep)),
            Scheduler::Sed => least(cluster, q, |ep| st.active[ep.index()] as u64 + 1),
            Scheduler::Nq => match (0..n).find(|&i| st.active[q.candidates.get(i).index()] == 0 && w(i) > 0) {
                Some(i) => Some(i),
                None => least(cluster, q, |ep| st.active[ep.index()] as u64 + 1),
            },
            Scheduler::Sh | Scheduler::Dh => {
                if st.table.is_empty() {
                    st.table = hash_table(cluster, q);
                }
                let addr = if scheduler == Scheduler::Sh { q.client_ip } else { q.dest_ip };
                // No fallback: a bucket whose server has weight 0 has no
                // destination (ip_vs_sh_get / ip_vs_dh_schedule), whatever
                // the other servers' weights.
                Some(st.table[hash_32(addr.0, 8) as usize]).filter(|&i| w(i) > 0)
            }
        }?;
        st.last = Some(i);
        st.active[q.candidates.get(i).index()] += 1;
        Some(Dnat { endpoint: q.candidates.get(i), cost })
    }

    fn affinity_hit(&mut self, cluster: &Cluster, q: &Query, position: u32) -> FirstPacket {
        // IPVS persistence: the persistent template is found by the same
        // lookup, and the connection counts against its server.
        let st = self.state.entry((q.node, q.sp, q.entry)).or_default();
        st.init(cluster, q);
        st.expire(q.now_ns);
        st.active[q.candidates.get(position).index()] += 1;
        self.cost()
    }

    fn closed(&mut self, node: NodeId, sp: SpId, entry: Entry, endpoint: EpId, now_ns: u64) {
        let p = &self.params;
        let st = self.state.get_mut(&(node, sp, entry)).expect("closed a connection IPVS never scheduled");
        st.expire(now_ns);
        if st.udp && p.scheduler.reads_active() {
            // No states for UDP: active until its timeout.
            st.lingering.push_back((now_ns + p.udp_timeout_ns, endpoint));
            return;
        }
        st.active[endpoint.index()] -= 1;
        if !st.udp && p.scheduler.reads_inactive() {
            st.inactive[endpoint.index()] += 1;
            st.lingering.push_back((now_ns + p.tcp_time_wait_ns, endpoint));
        }
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![("ipvs_virtual_servers", self.virtual_servers), ("ipvs_real_servers", self.real_servers)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Ipv4;
    use crate::cluster::{build, testing};
    use crate::proxy::Candidates;
    use emu_engine::rng::Domain;

    fn ipvs(scheduler: Scheduler, cluster: &Cluster) -> Ipvs {
        Ipvs::new(cluster, IpvsParams { scheduler, ..Default::default() })
    }

    fn n(i: u32) -> NodeId {
        NodeId::new(i)
    }

    fn sp(i: u32) -> SpId {
        SpId::new(i)
    }

    fn q(node: u32, client: u32) -> Query<'static> {
        Query {
            node: n(node),
            sp: sp(3),
            entry: Entry::ClusterIp,
            candidates: Candidates::All(4),
            client_ip: Ipv4(0xC612_0000 + client),
            dest_ip: Ipv4(0x0A60_0002),
            affinity: false,
            now_ns: 0,
            extra: &[],
            version: 0,
        }
    }

    fn rng() -> Stream {
        Stream::new(1, Domain(0), 0)
    }

    #[test]
    fn rr_is_exactly_even_per_node_and_nodes_are_independent() {
        let c = testing::services_cluster(2, 1, 4);
        let mut p = ipvs(Scheduler::Rr, &c);
        let picks: Vec<u32> = (0..8).map(|i| p.pick(&c, &q(0, i), &mut rng()).unwrap().endpoint.get()).collect();
        assert_eq!(picks, [0, 1, 2, 3, 0, 1, 2, 3]);
        // Node 1 has its own cursor: it starts from the first server too.
        assert_eq!(p.pick(&c, &q(1, 0), &mut rng()).unwrap().endpoint.get(), 0);
    }

    fn weighted_cluster(weights: &[u32]) -> Cluster {
        let mut s = testing::spec(1);
        for (i, w) in weights.iter().enumerate() {
            let mut p = testing::pods(&format!("w{i}"), 1, 80);
            p.labels.insert("tier".into(), "web".into());
            p.weight = *w;
            s.pods.push(p);
        }
        let mut svc = testing::service("web", "x", 80);
        svc.selector = Some([("tier".to_string(), "web".to_string())].into_iter().collect());
        s.services.push(svc);
        build(&s, 1).unwrap()
    }

    #[test]
    fn wrr_follows_the_weights_interleaved() {
        let c = weighted_cluster(&[4, 3, 2, 1]);
        let mut p = ipvs(Scheduler::Wrr, &c);
        let picks: Vec<u32> = (0..10).map(|i| p.pick(&c, &q(0, i), &mut rng()).unwrap().endpoint.get()).collect();
        // The kernel's interleaved sequence for weights 4,3,2,1 (gcd 1).
        assert_eq!(picks, [0, 0, 1, 0, 1, 2, 0, 1, 2, 3]);
    }

    #[test]
    fn lc_and_nq_prefer_the_idle_server() {
        let c = testing::services_cluster(1, 1, 4);
        for s in [Scheduler::Lc, Scheduler::Wlc, Scheduler::Sed, Scheduler::Nq] {
            let mut p = ipvs(s, &c);
            // Four connections, one per server; then server 2's ends.
            for i in 0..4 {
                p.pick(&c, &q(0, i), &mut rng());
            }
            p.closed(n(0), sp(3), Entry::ClusterIp, EpId::new(2), 0);
            assert_eq!(p.active(n(0), sp(3), Entry::ClusterIp), [1, 1, 0, 1]);
            assert_eq!(p.pick(&c, &q(0, 9), &mut rng()).unwrap().endpoint.get(), 2, "{s:?}");
        }
    }

    #[test]
    fn lc_spreads_sequential_connections_over_their_inactive_counts() {
        // One client, one connection at a time, each closed 1 ms after it
        // opened: no server ever has an active connection when the next is
        // scheduled. The kernel's overhead (active << 8) + inactive still
        // sees the closed ones (IPVS's TIME_WAIT, 120 s), so lc and wlc go
        // round the servers; before, lc pinned every connection to server 0.
        // sed and nq count active connections only: they keep choosing 0.
        let c = testing::services_cluster(1, 1, 4);
        let sequential = |s: Scheduler| {
            let mut p = ipvs(s, &c);
            let mut picks = Vec::new();
            for k in 0..8u64 {
                let now = k * 1_000_000;
                let d = p.pick(&c, &Query { now_ns: now, ..q(0, 7) }, &mut rng()).unwrap();
                p.closed(n(0), sp(3), Entry::ClusterIp, d.endpoint, now + 500_000);
                picks.push(d.endpoint.get());
            }
            (p, picks)
        };
        for s in [Scheduler::Lc, Scheduler::Wlc] {
            let (p, picks) = sequential(s);
            assert_eq!(picks, [0, 1, 2, 3, 0, 1, 2, 3], "{s:?}");
            assert_eq!(p.inactive(n(0), sp(3), Entry::ClusterIp), [2, 2, 2, 2], "{s:?}");
            assert_eq!(p.active(n(0), sp(3), Entry::ClusterIp), [0; 4]);
        }
        for s in [Scheduler::Sed, Scheduler::Nq] {
            assert_eq!(sequential(s).1, [0; 8], "{s:?}");
        }
        // The inactive connections leave after IPVS's TIME_WAIT: 120 s after
        // its close, server 0 is the least loaded again.
        let (mut p, _) = sequential(Scheduler::Lc);
        let late = Query { now_ns: 120_000_000_000 + 4_500_000, ..q(0, 7) };
        assert_eq!(p.pick(&c, &late, &mut rng()).unwrap().endpoint.get(), 0);
        assert_eq!(p.inactive(n(0), sp(3), Entry::ClusterIp), [0, 1, 1, 1], "the first five closed by then expired");
    }

    #[test]
    fn a_udp_connection_stays_active_for_the_udp_timeout() {
        // kube-dns 53/UDP is Service port 0 of the test cluster.
        let c = testing::services_cluster(1, 1, 4);
        let mut p = ipvs(Scheduler::Lc, &c);
        let dns = |now| Query { sp: sp(0), now_ns: now, candidates: Candidates::All(1), ..q(0, 1) };
        assert_eq!(c.service_ports[0].protocol, Protocol::Udp);
        p.pick(&c, &dns(0), &mut rng()).unwrap();
        p.closed(n(0), sp(0), Entry::ClusterIp, EpId::new(0), 1_000);
        p.pick(&c, &dns(299_000_000_000), &mut rng()).unwrap();
        assert_eq!(p.active(n(0), sp(0), Entry::ClusterIp), [2], "no states for UDP: still active");
        p.pick(&c, &dns(300_000_001_000), &mut rng()).unwrap();
        assert_eq!(p.active(n(0), sp(0), Entry::ClusterIp), [2], "the first expired after 300 s");
        assert_eq!(p.inactive(n(0), sp(0), Entry::ClusterIp), [0]);
    }

    #[test]
    fn wlc_and_sed_weigh_active_connections() {
        // Weights 3 and 1. wlc picks the fewest (active << 8) / weight, sed
        // the fewest (active + 1) / weight: over four connections both put
        // three on the weight-3 server (plain lc would split them 2:2).
        let c = weighted_cluster(&[3, 1]);
        let q = |client| Query { candidates: Candidates::All(2), ..q(0, client) };
        for s in [Scheduler::Wlc, Scheduler::Sed] {
            let mut p = ipvs(s, &c);
            let picks: Vec<u32> = (0..4).map(|i| p.pick(&c, &q(i), &mut rng()).unwrap().endpoint.get()).collect();
            // Idle both: heavy (ties go first). Then the heavy server takes
            // connections until its load per weight passes the light one's.
            assert_eq!(picks[0], 0, "{s:?}");
            let active = p.active(n(0), sp(3), Entry::ClusterIp);
            assert_eq!(active.iter().sum::<u32>(), 4);
            assert!(active[0] >= 2 * active[1], "{s:?}: weight 3 takes the larger share {active:?}");
        }
    }

    #[test]
    fn every_scheduler_finds_no_destination_when_every_weight_is_0() {
        // ip_vs_*_schedule returns NULL ("no destination available"); the
        // world answers with ICMP port unreachable. Before, rr fell back to
        // its cursor, lc and the weighted ones to server 0.
        let c = weighted_cluster(&[0, 0]);
        let q = |client| Query { candidates: Candidates::All(2), ..q(0, client) };
        for (name, s) in Scheduler::ALL {
            let mut p = ipvs(s, &c);
            for client in 0..20 {
                assert_eq!(p.pick(&c, &q(client * 7919), &mut rng()), None, "{name}");
            }
            assert_eq!(p.active(n(0), sp(3), Entry::ClusterIp).iter().sum::<u32>(), 0, "{name}: nothing scheduled");
        }
        // One weight-1 server left: every scheduler but sh/dh finds it; sh
        // and dh find no destination for the buckets of the weight-0 one
        // (no fallback), and the other server for the rest.
        let c = weighted_cluster(&[0, 1]);
        for (name, s) in Scheduler::ALL {
            let mut p = ipvs(s, &c);
            let picks: Vec<Option<u32>> =
                (0..200).map(|i| p.pick(&c, &q(i * 65_537), &mut rng()).map(|d| d.endpoint.get())).collect();
            if matches!(s, Scheduler::Sh) {
                assert!(picks.contains(&None) && picks.contains(&Some(1)), "{name}: {picks:?}");
                assert!(!picks.contains(&Some(0)), "{name}");
            } else if s != Scheduler::Dh {
                assert!(picks.iter().all(|&e| e == Some(1)), "{name}: {picks:?}");
            }
        }
    }

    #[test]
    fn sh_pins_a_client_and_dh_pins_a_service() {
        let c = testing::services_cluster(1, 1, 4);
        let mut p = ipvs(Scheduler::Sh, &c);
        for client in 0..20 {
            let first = p.pick(&c, &q(0, client), &mut rng()).unwrap().endpoint.get();
            for _ in 0..5 {
                assert_eq!(p.pick(&c, &q(0, client), &mut rng()).unwrap().endpoint.get(), first);
            }
        }
        let mut seen = [false; 4];
        for client in 0..200 {
            seen[p.pick(&c, &q(0, client * 65_537), &mut rng()).unwrap().endpoint.index()] = true;
        }
        assert!(seen.iter().all(|&s| s), "sh spreads clients: {seen:?}");
        let mut p = ipvs(Scheduler::Dh, &c);
        let first = p.pick(&c, &q(0, 0), &mut rng()).unwrap().endpoint.get();
        assert!((0..50).all(|i| p.pick(&c, &q(0, i), &mut rng()).unwrap().endpoint.get() == first));
    }
}
