//! Range checks of the model parameters, in one place, so that every value
//! a model stores narrower than it is given (hop latencies and first-packet
//! work in 32-bit nanoseconds, cores sizing per-node arrays) is refused
//! before a run starts: `emu validate` and `emu run` both call
//! [`check`] through [`crate::world::World::new`], and can never disagree.
//!
//! | limit | value | why |
//! |---|---|---|
//! | a link's latency (`datapath.underlay_latency`, `external_latency`) | 4 s | stored as `u32` ns in every hop of a leg (4.29 s) |
//! | any other hop's latency (`[datapath]`, `[cni]` durations) | 250 ms | a walk sums the latencies of the hops between two capacity hops in `u32` ns, and a leg has at most 16 hops (16 x 250 ms = 4 s); no Linux hop takes a millisecond |
//! | CPU per packet (`[node] cpu_per_packet`, `[cni] vxlan_cpu`, `reassembly`) | 4 s | as a hop |
//! | `[node] cpu_per_byte_ps` | 1,000,000,000 ps (1 ms a byte) | keeps a message's CPU time inside 64 bits |
//! | bandwidths | at least 1,000 bit/s | keeps serialization times inside the horizon |
//! | `[dns] query_bytes`, `response_bytes` | 1 to 65,535 | a DNS message's size limit |
//! | a flow's `request_bytes`, `response_bytes` | at most 1 GiB | keeps wire bytes x 8 x 1e9 inside 64 bits (checked with the flows) |
//! | first-packet work on one node | 4 s | stored as `u32` ns per CPU hop; bounded by rules passed x `rule_cost` + `conntrack_new` |
//! | `[node] softirq_cores` | 1,024 | emu's limit: each node keeps one server record per core; the largest x86 servers have 512 hardware threads |
//! | `[node] backlog`, `txqueuelen` | 1 to 10,000,000 messages | emu's limit, far above Linux defaults (1,000) |
//! | `[node] conntrack_max` | at most 1,000,000,000 entries | emu's limit (Linux's `nf_conntrack_max` is a 32-bit sysctl) |
//! | `[node] rto`, `dns_retry` | at least 1 ms | a shorter retry floods the run with resends |
//! | `[node] tcp_syn_retries` | 1 to 127 | the kernel's range (`MAX_TCP_SYNCNT`) |
//! | `[node] tcp_syn_linear_timeouts` | 0 to 127 | the kernel's range |
//! | `[node] conntrack_gc_interval` | 1 s to 60 s | the collector's `GC_SCAN_INTERVAL_MIN` and `MAX` |

use crate::cluster::Cluster;
use crate::world::Params;

/// Longest latency of one hop [ns] (a hop stores it as `u32` ns).
pub const MAX_HOP_NS: u64 = 4_000_000_000;

/// Longest latency of a hop with no capacity behind it [ns] (a socket, a
/// veth, a bridge, ...): a leg's compiled stops sum those between two
/// capacity hops as `u32` ns, and a leg has at most
/// [`crate::datapath::MAX_HOPS`] hops.
pub const MAX_FIXED_HOP_NS: u64 = 250_000_000;
const _: () = assert!(MAX_FIXED_HOP_NS * crate::datapath::MAX_HOPS as u64 <= u32::MAX as u64);

/// Most first-packet work on one node [ns] (stored as `u32` ns).
pub const MAX_FIRST_PACKET_NS: u64 = 4_000_000_000;

/// Most softirq CPU per byte [ps]: 1 ms a byte.
pub const MAX_BYTE_PS: u64 = 1_000_000_000;

/// Least link bandwidth [bit/s].
pub const MIN_BANDWIDTH_BPS: u64 = 1_000;

/// Largest request or response of a flow [bytes]: 1 GiB, so a message's
/// wire bytes and serialization time stay far inside 64 bits.
pub const MAX_MESSAGE_BYTES: u32 = 1 << 30;

/// Most softirq cores per node.
pub const MAX_CORES: u32 = 1_024;

/// Most messages a node's backlog per core or NIC queue holds.
pub const MAX_QUEUE: u32 = 10_000_000;

/// Largest conntrack table [entries].
pub const MAX_CONNTRACK: u32 = 1_000_000_000;

/// A parameter out of range: the scenario key (`datapath.socket`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// The key path of the parameter in a scenario file.
    pub key: String,
    /// What is wrong, with the limit.
    pub message: String,
}

fn fail(key: &str, message: String) -> Result<(), ParamError> {
    Err(ParamError { key: key.into(), message })
}

fn secs(ns: u64) -> String {
    emu_engine::format_duration(ns)
}

/// Checks every parameter of `p` against `cluster` (whose size bounds the
/// proxy's first-packet work).
pub fn check(p: &Params, cluster: &Cluster) -> Result<(), ParamError> {
    let d = &p.datapath;
    for (key, ns) in
        [("datapath.underlay_latency", d.underlay_latency_ns), ("datapath.external_latency", d.external_latency_ns)]
    {
        if ns > MAX_HOP_NS {
            return fail(key, format!("{} is above the longest link latency, {}", secs(ns), secs(MAX_HOP_NS)));
        }
    }
    for (key, ns) in [
        ("datapath.socket", d.socket_ns),
        ("datapath.loopback", d.loopback_ns),
        ("datapath.veth", d.veth_ns),
        ("datapath.bridge", d.bridge_ns),
        ("datapath.nic", d.nic_ns),
        ("datapath.load_balancer", d.load_balancer_ns),
        ("cni.vxlan_encap", d.vxlan_encap_ns),
        ("cni.vxlan_decap", d.vxlan_decap_ns),
        ("cni.ebpf_redirect", d.ebpf_redirect_ns),
    ] {
        if ns > MAX_FIXED_HOP_NS {
            return fail(key, format!("{} is above the longest hop latency, {}", secs(ns), secs(MAX_FIXED_HOP_NS)));
        }
    }
    for (key, ns) in [
        ("node.cpu_per_packet", d.cpu_packet_ns),
        ("cni.vxlan_cpu", d.vxlan_cpu_ns),
        ("cni.reassembly", d.reassembly_ns),
    ] {
        if ns > MAX_HOP_NS {
            return fail(key, format!("{} per packet is above the most, {}", secs(ns), secs(MAX_HOP_NS)));
        }
    }
    if d.cpu_byte_ps > MAX_BYTE_PS {
        return fail(
            "node.cpu_per_byte_ps",
            format!("{} ps is above the most, {MAX_BYTE_PS} ps (1 ms a byte)", d.cpu_byte_ps),
        );
    }
    for (key, bps) in [
        ("datapath.underlay_bandwidth", d.underlay_bandwidth_bps),
        ("datapath.external_bandwidth", d.external_bandwidth_bps),
    ] {
        if bps < MIN_BANDWIDTH_BPS {
            return fail(key, format!("{bps} bit/s is below the least, {MIN_BANDWIDTH_BPS} bit/s"));
        }
    }
    for (key, b) in [("dns.query_bytes", p.dns.query_bytes), ("dns.response_bytes", p.dns.response_bytes)] {
        if !(1..=65_535).contains(&b) {
            return fail(key, format!("{b} bytes is outside 1-65535 (a DNS message's size limit)"));
        }
    }
    check_node(p)?;
    check_policy(p)?;
    check_first_packet(p, cluster)
}

/// The most a policy parameter may be: 1 ms (emu's limit, far above any
/// rule walk's cost). A check's work is also capped at
/// [`crate::policy::cost::MAX_CHECK_NS`].
pub const MAX_POLICY_NS: u64 = 1_000_000;

fn check_policy(p: &Params) -> Result<(), ParamError> {
    use crate::policy::cost::Enforcer;
    let keys: Vec<(&str, u64)> = match &p.policy {
        Enforcer::Iptables(i) => vec![
            ("network_policy.rule_cost", i.rule_ns),
            ("network_policy.dispatch", i.dispatch_ns),
            ("network_policy.set_match", i.set_ns),
        ],
        Enforcer::Ebpf(e) => vec![("network_policy.ebpf_lookup", e.lookup_ns)],
    };
    for (key, ns) in keys {
        if ns > MAX_POLICY_NS {
            return fail(key, format!("{} is above the most, {}", secs(ns), secs(MAX_POLICY_NS)));
        }
    }
    Ok(())
}

fn check_node(p: &Params) -> Result<(), ParamError> {
    let n = &p.node;
    if !(1..=MAX_CORES).contains(&n.softirq_cores) {
        return fail("node.softirq_cores", format!("{} is outside 1-{MAX_CORES}", n.softirq_cores));
    }
    for (key, v) in [("node.backlog", n.backlog), ("node.txqueuelen", n.txqueuelen)] {
        if !(1..=MAX_QUEUE).contains(&v) {
            return fail(key, format!("{v} is outside 1-{MAX_QUEUE} messages"));
        }
    }
    if n.conntrack_max > MAX_CONNTRACK {
        return fail("node.conntrack_max", format!("{} is above {MAX_CONNTRACK} entries", n.conntrack_max));
    }
    // The kernel's bounds (MAX_TCP_SYNCNT, sysctl_net_ipv4.c).
    if !(1..=127).contains(&n.tcp_syn_retries) {
        return fail("node.tcp_syn_retries", "must be 1 to 127 (the kernel's range)".into());
    }
    if n.tcp_syn_linear_timeouts > 127 {
        return fail("node.tcp_syn_linear_timeouts", "must be 0 to 127".into());
    }
    if !(1_000_000_000..=60_000_000_000).contains(&n.conntrack_gc_interval_ns) {
        return fail(
            "node.conntrack_gc_interval",
            "must be 1s to 60s (the collector's GC_SCAN_INTERVAL_MIN and MAX)".into(),
        );
    }
    for (key, v) in [("node.rto", n.rto_ns), ("node.dns_retry", n.dns_retry_ns)] {
        if v < 1_000_000 {
            return fail(key, "must be at least 1ms (a shorter retry floods the run with resends)".into());
        }
    }
    Ok(())
}

/// The most first-packet work a node can do for one connection is bounded
/// by walking every rule kube-proxy writes on it once (iptables), or one
/// lookup (the other modes), plus the conntrack entry.
fn check_first_packet(p: &Params, cluster: &Cluster) -> Result<(), ParamError> {
    use crate::proxy::Mode;
    let x = &p.proxy;
    let (key, lookup, conntrack, ct_key) = match x.mode {
        Mode::Iptables => {
            // KUBE-SERVICES (one rule per Service port) and KUBE-NODEPORTS,
            // then the longest KUBE-SVC chain (a statistic and a recent
            // rule per endpoint) and its KUBE-SEP (two rules).
            let ports = cluster.service_ports.len() as u64;
            let longest = cluster.service_ports.iter().map(|sp| sp.endpoints.len() as u64).max().unwrap_or(0);
            let rules = 2 * ports + 2 * longest + 4;
            (
                "proxy.iptables.rule_cost",
                rules.saturating_mul(x.iptables.rule_ns),
                x.iptables.conntrack_new_ns,
                "proxy.iptables.conntrack_new",
            )
        }
        Mode::Ipvs => ("proxy.ipvs.lookup", x.ipvs.lookup_ns, x.ipvs.conntrack_new_ns, "proxy.ipvs.conntrack_new"),
        Mode::Nftables => {
            ("proxy.nftables.lookup", x.nftables.lookup_ns, x.nftables.conntrack_new_ns, "proxy.nftables.conntrack_new")
        }
        Mode::Ebpf if x.ebpf.nodeport_ns > x.ebpf.connect_ns => ("proxy.ebpf.nodeport", x.ebpf.nodeport_ns, 0, ""),
        Mode::Ebpf => ("proxy.ebpf.connect", x.ebpf.connect_ns, 0, ""),
    };
    if conntrack > MAX_FIRST_PACKET_NS {
        return fail(
            ct_key,
            format!("{} is above the most first-packet work, {}", secs(conntrack), secs(MAX_FIRST_PACKET_NS)),
        );
    }
    if lookup.saturating_add(conntrack) > MAX_FIRST_PACKET_NS {
        return fail(
            key,
            format!(
                "a new connection's first packet could cost {} on one node (lookup {} + conntrack {}), \
                 above the most first-packet work, {}",
                secs(lookup.saturating_add(conntrack)),
                secs(lookup),
                secs(conntrack),
                secs(MAX_FIRST_PACKET_NS)
            ),
        );
    }
    Ok(())
}
