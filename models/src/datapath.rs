//! The Linux data path between two sockets, as a short list of hops.
//!
//! Scope: one message (a request, a response, a SYN) crossing from a sending
//! socket to a receiving socket. Each hop is a pure delay: a fixed cost per
//! traversal, plus, on links, the serialization time of the message at the
//! link's bandwidth. Queueing (NIC and softirq capacity) is not modelled
//! here yet; the only capacity in a run is the server's.
//!
//! Routes (routed pod networking, Linux bridge `cbr0`, no NAT between pods):
//! - inside a pod: `socket, loopback, socket`;
//! - same node: `socket, veth, bridge, veth, socket`;
//! - across nodes: `socket, veth, bridge, nic, underlay, nic, bridge, veth,
//!   socket` (the `nic` hop is the node's `eth0` plus IP forwarding);
//! - from outside: `socket, external, nic` to the node, then on as above.
//!
//! Parameters and defaults (all per message, per traversal):
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `socket_ns` | 10,600 ns | calibrated, see below |
//! | `loopback_ns` | 1,000 ns | estimate: `lo` transmit is a function call; no published figure |
//! | `veth_ns` | 10,000 ns | calibrated |
//! | `bridge_ns` | 10,800 ns | calibrated (includes br_netfilter hooks) |
//! | `nic_ns` | 14,700 ns | calibrated |
//! | `underlay_latency_ns` | 5,000 ns | estimate: one switch hop in a data centre |
//! | `underlay_bandwidth_bps` | 10 Gbit/s | the 2020 InfraBuilder CNI benchmark's link speed |
//! | `external_latency_ns` | 5,000 ns | assumption: the client sits in the same data centre |
//! | `external_bandwidth_bps` | 10 Gbit/s | assumption: the client's link matches the underlay |
//! | `load_balancer_ns` | 10,000 ns | estimate, not validated: one forwarding hop in a cloud load balancer |
//! | `header_bytes` | 66 B | per TCP message: Ethernet 14 + IPv4 20 + TCP with timestamps 32 |
//! | `udp_header_bytes` | 42 B | per UDP message (DNS): Ethernet 14 + IPv4 20 + UDP 8 |
//!
//! Calibration: the DaoCloud netperf TCP_RR (1 KiB, mean round trip)
//! figures in `published-figures.md` give three equations for a round trip
//! of two 1 KiB messages: node to node 113 us, same-node pod to pod 104 us
//! (Calico BGP), cross-node pod to pod 196 us (Calico BGP). They fix
//! `2 socket + 2 veth + bridge = 52 us`, `veth + bridge = 20.75 us` and
//! `2 nic + underlay = 35.25 us` (1 KiB serialization included); the split
//! inside each sum is a choice, rounded to 0.1 us. The defaults give 104.0,
//! 196.1 and 112.9 us; `tests` below holds all three within 1%.

use std::fmt;

/// Kinds of hop, the rows of `hops.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum HopKind {
    /// Name resolution: the whole DNS exchange, all attempts.
    Dns = 0,
    /// A socket send or receive: syscall and TCP/IP stack.
    Socket,
    /// The loopback device inside a pod.
    Loopback,
    /// One end of a pod's veth pair.
    Veth,
    /// The node's Linux bridge `cbr0`.
    Bridge,
    /// A node's `eth0` with IP forwarding.
    Nic,
    /// The physical network between nodes.
    Underlay,
    /// The link between an external client and a node.
    External,
    /// iptables rule evaluation on a connection's first packet.
    Iptables,
    /// IPVS virtual-server lookup (or ipset check) on a first packet.
    Ipvs,
    /// nftables verdict-map lookup on a first packet.
    Nftables,
    /// eBPF service translation (at connect, or on the node-port device).
    Ebpf,
    /// Creating a conntrack entry (and NAT binding) for a new flow.
    Conntrack,
    /// The external load balancer in front of the nodes.
    LoadBalancer,
    /// Waiting for a free worker at the ingress controller.
    IngressQueue,
    /// The ingress controller's own work (L7 parsing, routing, proxying).
    Ingress,
    /// Waiting for a free worker at the server.
    Queue,
    /// The server's own work.
    Server,
}

/// Number of hop kinds.
pub const HOP_KINDS: usize = 18;

impl HopKind {
    /// Every kind, in `hops.csv` order.
    pub const ALL: [HopKind; HOP_KINDS] = [
        HopKind::Dns,
        HopKind::Socket,
        HopKind::Loopback,
        HopKind::Veth,
        HopKind::Bridge,
        HopKind::Nic,
        HopKind::Underlay,
        HopKind::External,
        HopKind::Iptables,
        HopKind::Ipvs,
        HopKind::Nftables,
        HopKind::Ebpf,
        HopKind::Conntrack,
        HopKind::LoadBalancer,
        HopKind::IngressQueue,
        HopKind::Ingress,
        HopKind::Queue,
        HopKind::Server,
    ];

    /// The name used in output files.
    pub fn name(self) -> &'static str {
        match self {
            HopKind::Dns => "dns",
            HopKind::Socket => "socket",
            HopKind::Loopback => "loopback",
            HopKind::Veth => "veth",
            HopKind::Bridge => "bridge",
            HopKind::Nic => "nic",
            HopKind::Underlay => "underlay",
            HopKind::External => "external",
            HopKind::Iptables => "iptables",
            HopKind::Ipvs => "ipvs",
            HopKind::Nftables => "nftables",
            HopKind::Ebpf => "ebpf",
            HopKind::Conntrack => "conntrack",
            HopKind::LoadBalancer => "loadbalancer",
            HopKind::IngressQueue => "ingress_queue",
            HopKind::Ingress => "ingress",
            HopKind::Queue => "queue",
            HopKind::Server => "server",
        }
    }

    fn serializes(self) -> bool {
        matches!(self, HopKind::Underlay | HopKind::External)
    }
}

impl fmt::Display for HopKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Data path parameters; see the module docs for units and sources.
#[derive(Clone, Debug, PartialEq)]
pub struct DataPathParams {
    /// Socket send or receive, per message [ns].
    pub socket_ns: u64,
    /// Loopback device, per message [ns].
    pub loopback_ns: u64,
    /// One veth end, per message [ns].
    pub veth_ns: u64,
    /// Bridge `cbr0`, per message [ns].
    pub bridge_ns: u64,
    /// Node `eth0` transmit or receive with forwarding, per message [ns].
    pub nic_ns: u64,
    /// Underlay propagation and switching, one way [ns].
    pub underlay_latency_ns: u64,
    /// Underlay link bandwidth [bit/s].
    pub underlay_bandwidth_bps: u64,
    /// External client to node, one way [ns].
    pub external_latency_ns: u64,
    /// Bandwidth of the external client's link [bit/s].
    pub external_bandwidth_bps: u64,
    /// Forwarding through an external load balancer [ns].
    pub load_balancer_ns: u64,
    /// Protocol headers added to every TCP message on a link [bytes].
    pub header_bytes: u32,
    /// Protocol headers added to every UDP message on a link [bytes].
    pub udp_header_bytes: u32,
}

impl Default for DataPathParams {
    fn default() -> Self {
        DataPathParams {
            socket_ns: 10_600,
            loopback_ns: 1_000,
            veth_ns: 10_000,
            bridge_ns: 10_800,
            nic_ns: 14_700,
            underlay_latency_ns: 5_000,
            underlay_bandwidth_bps: 10_000_000_000,
            external_latency_ns: 5_000,
            external_bandwidth_bps: 10_000_000_000,
            load_balancer_ns: 10_000,
            header_bytes: 66,
            udp_header_bytes: 42,
        }
    }
}

/// One hop of a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// What it is.
    pub kind: HopKind,
    /// Fixed cost per traversal [ns].
    pub base_ns: u32,
    /// For links: bandwidth index (0 underlay, 1 external).
    link: u8,
}

/// Most hops a leg holds: a cross-node path plus first-packet costs on two
/// nodes and an external entry.
pub const MAX_HOPS: usize = 16;

/// A one-way route between two sockets: a fixed-size list of hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leg {
    hops: [Hop; MAX_HOPS],
    len: u8,
}

impl Default for Leg {
    fn default() -> Self {
        Leg { hops: [Hop { kind: HopKind::Socket, base_ns: 0, link: 0 }; MAX_HOPS], len: 0 }
    }
}

impl Leg {
    /// The hops in order.
    pub fn hops(&self) -> &[Hop] {
        &self.hops[..self.len as usize]
    }

    /// Appends a hop.
    pub fn push(&mut self, kind: HopKind, base_ns: u64) {
        assert!((self.len as usize) < MAX_HOPS, "leg longer than {MAX_HOPS} hops");
        let link = u8::from(kind == HopKind::External);
        self.hops[self.len as usize] =
            Hop { kind, base_ns: u32::try_from(base_ns).expect("hop cost above 4.29 s"), link };
        self.len += 1;
    }

    /// The same hops in reverse order (the way back).
    pub fn reversed(&self) -> Leg {
        let mut r = *self;
        r.hops[..self.len as usize].reverse();
        r
    }

    /// Walks the leg with a TCP message of `bytes` payload: calls
    /// `each(kind, ns)` per hop and returns the total delay [ns].
    #[inline]
    pub fn walk(&self, p: &DataPathParams, bytes: u32, each: impl FnMut(HopKind, u64)) -> u64 {
        self.walk_wire(p, bytes + p.header_bytes, each)
    }

    /// Walks the leg with a message of `wire_bytes` on the wire, headers
    /// included.
    #[inline]
    pub fn walk_wire(&self, p: &DataPathParams, wire_bytes: u32, mut each: impl FnMut(HopKind, u64)) -> u64 {
        let mut total = 0;
        for h in self.hops() {
            let mut ns = h.base_ns as u64;
            if h.kind.serializes() {
                let bps = if h.link == 0 { p.underlay_bandwidth_bps } else { p.external_bandwidth_bps };
                ns += serialization_ns(wire_bytes, bps);
            }
            each(h.kind, ns);
            total += ns;
        }
        total
    }
}

/// Time to clock `bytes` onto a link of `bps` bit/s [ns], rounded up.
#[inline]
pub fn serialization_ns(bytes: u32, bps: u64) -> u64 {
    (bytes as u64 * 8 * 1_000_000_000).div_ceil(bps)
}

/// One end of a connection, as far as routing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A pod (by index) on a node (by index).
    Pod {
        /// Pod index.
        pod: u32,
        /// Node index.
        node: u32,
    },
    /// A client outside the cluster, entering at node `node`.
    External {
        /// Entry node index.
        node: u32,
    },
    /// A client outside the cluster whose load balancer forwards it to node
    /// `node` over the underlay.
    ViaLoadBalancer {
        /// Entry node index.
        node: u32,
    },
    /// A process in node `node`'s own network namespace (hostNetwork).
    Host {
        /// Node index.
        node: u32,
    },
}

/// Builds the leg from socket `from` to a pod socket `to`.
pub fn route(p: &DataPathParams, from: Place, to_pod: u32, to_node: u32) -> Leg {
    let mut leg = Leg::default();
    leg.push(HopKind::Socket, p.socket_ns);
    let at_node = match from {
        Place::Pod { pod, .. } if pod == to_pod => {
            leg.push(HopKind::Loopback, p.loopback_ns);
            leg.push(HopKind::Socket, p.socket_ns);
            return leg;
        }
        Place::Pod { node, .. } => {
            leg.push(HopKind::Veth, p.veth_ns);
            leg.push(HopKind::Bridge, p.bridge_ns);
            node
        }
        Place::Host { node } => {
            if node == to_node {
                leg.push(HopKind::Bridge, p.bridge_ns);
            }
            node
        }
        Place::External { node } | Place::ViaLoadBalancer { node } => {
            leg.push(HopKind::External, p.external_latency_ns);
            if matches!(from, Place::ViaLoadBalancer { .. }) {
                leg.push(HopKind::LoadBalancer, p.load_balancer_ns);
                leg.push(HopKind::Underlay, p.underlay_latency_ns);
            }
            leg.push(HopKind::Nic, p.nic_ns);
            if node == to_node {
                leg.push(HopKind::Bridge, p.bridge_ns);
            }
            node
        }
    };
    if at_node != to_node {
        leg.push(HopKind::Nic, p.nic_ns);
        leg.push(HopKind::Underlay, p.underlay_latency_ns);
        leg.push(HopKind::Nic, p.nic_ns);
        leg.push(HopKind::Bridge, p.bridge_ns);
    }
    leg.push(HopKind::Veth, p.veth_ns);
    leg.push(HopKind::Socket, p.socket_ns);
    leg
}

/// The leg of a hairpin connection: a pod reaching itself through a
/// Service, out through its veth to the bridge and back in.
pub fn hairpin(p: &DataPathParams) -> Leg {
    let mut leg = Leg::default();
    leg.push(HopKind::Socket, p.socket_ns);
    leg.push(HopKind::Veth, p.veth_ns);
    leg.push(HopKind::Bridge, p.bridge_ns);
    leg.push(HopKind::Veth, p.veth_ns);
    leg.push(HopKind::Socket, p.socket_ns);
    leg
}

/// The leg from a pod to a hostNetwork process on its own node: out of the
/// pod through its veth, into the node's stack.
pub fn to_host(p: &DataPathParams) -> Leg {
    let mut leg = Leg::default();
    leg.push(HopKind::Socket, p.socket_ns);
    leg.push(HopKind::Veth, p.veth_ns);
    leg.push(HopKind::Socket, p.socket_ns);
    leg
}

/// The leg of a packet that a node's netfilter answers itself (a REJECT):
/// from the sender to the node's netfilter, which answers back the same way.
pub fn to_node(p: &DataPathParams, from: Place) -> Leg {
    let mut leg = Leg::default();
    leg.push(HopKind::Socket, p.socket_ns);
    match from {
        Place::Pod { .. } => {
            leg.push(HopKind::Veth, p.veth_ns);
            leg.push(HopKind::Bridge, p.bridge_ns);
        }
        Place::External { .. } => {
            leg.push(HopKind::External, p.external_latency_ns);
            leg.push(HopKind::Nic, p.nic_ns);
        }
        Place::ViaLoadBalancer { .. } => {
            leg.push(HopKind::External, p.external_latency_ns);
            leg.push(HopKind::LoadBalancer, p.load_balancer_ns);
            leg.push(HopKind::Underlay, p.underlay_latency_ns);
            leg.push(HopKind::Nic, p.nic_ns);
        }
        Place::Host { .. } => {}
    }
    leg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtt_us(p: &DataPathParams, leg: &Leg) -> f64 {
        let there = leg.walk(p, 1024, |_, _| {});
        let back = leg.reversed().walk(p, 1024, |_, _| {});
        (there + back) as f64 / 1_000.0
    }

    #[test]
    fn reproduces_daocloud_round_trips() {
        let p = DataPathParams::default();
        // same-node pod <-> pod, Calico BGP: 104 us.
        let same = route(&p, Place::Pod { pod: 0, node: 0 }, 1, 0);
        let r = rtt_us(&p, &same);
        assert!((r / 104.0 - 1.0).abs() < 0.01, "same-node {r}");
        // cross-node pod <-> pod, Calico BGP: 196 us.
        let cross = route(&p, Place::Pod { pod: 0, node: 0 }, 1, 1);
        let r = rtt_us(&p, &cross);
        assert!((r / 196.0 - 1.0).abs() < 0.01, "cross-node {r}");
        // node <-> node: 113 us: the cross-node path without veth and bridge.
        let node_rtt = r - 2.0 * (2.0 * p.veth_ns as f64 + 2.0 * p.bridge_ns as f64) / 1_000.0;
        assert!((node_rtt / 113.0 - 1.0).abs() < 0.01, "node-node {node_rtt}");
    }

    #[test]
    fn routes_have_the_expected_shape() {
        let p = DataPathParams::default();
        let kinds = |l: Leg| l.hops().iter().map(|h| h.kind.name()).collect::<Vec<_>>().join(",");
        assert_eq!(kinds(route(&p, Place::Pod { pod: 3, node: 0 }, 3, 0)), "socket,loopback,socket");
        assert_eq!(kinds(route(&p, Place::Pod { pod: 3, node: 0 }, 4, 0)), "socket,veth,bridge,veth,socket");
        assert_eq!(
            kinds(route(&p, Place::Pod { pod: 3, node: 0 }, 4, 1)),
            "socket,veth,bridge,nic,underlay,nic,bridge,veth,socket"
        );
        assert_eq!(kinds(route(&p, Place::External { node: 2 }, 4, 2)), "socket,external,nic,bridge,veth,socket");
        assert_eq!(
            kinds(route(&p, Place::External { node: 2 }, 4, 1)),
            "socket,external,nic,nic,underlay,nic,bridge,veth,socket"
        );
    }

    #[test]
    fn serialization_grows_with_size() {
        let p = DataPathParams::default();
        assert_eq!(serialization_ns(1250, 10_000_000_000), 1_000);
        let cross = route(&p, Place::Pod { pod: 0, node: 0 }, 1, 1);
        let small = cross.walk(&p, 100, |_, _| {});
        let big = cross.walk(&p, 1_000_000, |_, _| {});
        // 1 MB more at 10 Gbit/s is 800 us more on the one underlay hop.
        assert_eq!(
            big - small,
            serialization_ns(1_000_000 + 66, p.underlay_bandwidth_bps)
                - serialization_ns(166, p.underlay_bandwidth_bps)
        );
    }
}
