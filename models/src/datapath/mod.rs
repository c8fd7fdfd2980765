//! The Linux data path between two sockets: a short list of hops, some of
//! them pure delays and two kinds of them capacities.
//!
//! Scope: one message (a request, a response, a SYN, a DNS query) crossing
//! from a sending socket to a receiving socket. Delay hops (socket, veth,
//! bridge, nic, ...) are a fixed latency per traversal, calibrated on
//! published round trips. Capacity hops are queueing resources of a node:
//! its packet-processing (softirq) CPU, and its NIC's transmit queue on the
//! `underlay` hop (serialization at the NIC's bandwidth, then propagation).
//! Their service times come from message size: a message is cut into
//! packets by the pod MTU, and each packet costs CPU and wire bytes; see
//! [`crate::node`] for the resources. Which hops a route has depends on the
//! CNI mode, one file each:
//!
//! - [`routed`]: Linux bridge `cbr0` and routing between nodes (host-gw,
//!   BGP): no encapsulation, no NAT between pods.
//! - [`vxlan`]: the bridge plus a VXLAN overlay between nodes (flannel,
//!   Calico VXLAN): 50 B more per packet, encapsulation work on both ends.
//! - [`ebpf`]: a Cilium-like eBPF data path with native routing: the
//!   bridge and netfilter are bypassed by BPF redirects.
//!
//! Parameters and defaults (delays per message and traversal):
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `socket_ns` | 10,050 ns | calibrated, see below |
//! | `loopback_ns` | 1,000 ns | estimate: `lo` transmit is a function call; no published figure |
//! | `veth_ns` | 10,000 ns | calibrated |
//! | `bridge_ns` | 10,750 ns | calibrated (includes br_netfilter hooks) |
//! | `nic_ns` | 14,100 ns | calibrated |
//! | `underlay_latency_ns` | 5,000 ns | estimate: one switch hop in a data centre |
//! | `underlay_bandwidth_bps` | 10 Gbit/s | the 2020 InfraBuilder CNI benchmark's link speed; every node NIC |
//! | `external_latency_ns` | 5,000 ns | assumption: the client sits in the same data centre |
//! | `external_bandwidth_bps` | 10 Gbit/s | assumption: the client's link matches the underlay |
//! | `load_balancer_ns` | 10,000 ns | estimate, not validated: one forwarding hop in a cloud load balancer |
//! | `header_bytes` | 66 B | per TCP packet: Ethernet 14 + IPv4 20 + TCP with timestamps 32 |
//! | `udp_header_bytes` | 42 B | per UDP packet (DNS): Ethernet 14 + IPv4 20 + UDP 8 |
//! | `cni` | routed | |
//! | `link_mtu` | 1,500 B | Ethernet's default MTU |
//! | `pod_mtu` | link MTU less the overlay (1,450 with VXLAN) | published-figures.md: "pod MTU 1450 on a 1500 link" |
//! | `cpu_packet_ns` | 1,000 ns per packet | InfraBuilder 2024: bare metal 31.4 Gbit/s on one TCP stream at MTU 9000 is 2.28 us per packet; split as 1 us per packet plus 0.14 ns per byte (the split is an assumption) |
//! | `cpu_byte_ps` | 140 ps per byte | same |
//! | `vxlan_cpu_ns` | 650 ns per packet, each end | InfraBuilder 2024: flannel VXLAN 20.0 vs bare metal 31.4 Gbit/s on one stream: 1.3 us more per 9,000 B packet, split between encapsulation and decapsulation |
//! | `vxlan_encap_ns`, `vxlan_decap_ns` | 19,100 ns each per message | DaoCloud: Calico VXLAN cross-node 275 us vs Calico BGP 196 us per round trip (less the VXLAN CPU and bytes) |
//! | `ebpf_redirect_ns` | 1,800 ns | DaoCloud: Cilium same-node 66 us vs 104 us: eBPF replaces a veth and the bridge |
//! | `reassembly_ns` | 1,000 ns per fragmented packet | estimate, not validated |
//!
//! Calibration: the DaoCloud netperf TCP_RR (1 KiB, mean round trip)
//! figures in `published-figures.md` give three equations for a round trip
//! of two 1 KiB messages: node to node 113 us, same-node pod to pod 104 us
//! (Calico BGP), cross-node pod to pod 196 us (Calico BGP). Each node's
//! CPU pass costs 1.15 us for a 1 KiB message (below); the three equations
//! then fix `2 socket + veth = 30.1 us`, `veth + bridge = 20.75 us` and
//! `2 nic + underlay = 33.2 us` (plus 0.87 us to serialize 1 KiB); the split
//! inside each sum is a choice, rounded to 0.05 us.
//! `tests` below holds all three within 1%, and the VXLAN and eBPF
//! variants against Calico VXLAN (275 us) and Cilium (66 us same node).
//!
//! A wrong MTU: with VXLAN, a pod MTU above `link_mtu - 50` makes every
//! full packet too big for the link once encapsulated; Linux's vxlan device
//! sends the outer UDP datagram without DF, so the node fragments it: two
//! packets on the wire each, and reassembly work at the receiver. Without
//! an overlay, a pod MTU above the link MTU meets TCP's DF bit: the node
//! drops the packet and answers ICMP "fragmentation needed", and the sender
//! lowers its MSS to the link's (PMTU discovery); emu sends every message
//! with the link's MSS and does not model the one-time discovery.

pub mod ebpf;
pub mod iface;
pub mod links;
pub mod routed;
pub mod vxlan;

use std::fmt;

use crate::ids::{NodeId, PodId};

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
    /// The physical network between nodes: the sender's NIC transmit
    /// queue (serialization) then propagation.
    Underlay,
    /// A node's packet processing (softirq) CPU.
    Cpu,
    /// Waiting for a node's softirq CPU.
    CpuQueue,
    /// Waiting in a node NIC's transmit queue.
    NicQueue,
    /// VXLAN encapsulation or decapsulation (latency).
    Vxlan,
    /// An eBPF CNI's redirect between pod and node (replaces the bridge).
    EbpfRedirect,
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
    /// NetworkPolicy checks of a first packet (egress and ingress).
    Policy,
}

/// Number of hop kinds.
pub const HOP_KINDS: usize = 24;

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
        HopKind::Cpu,
        HopKind::CpuQueue,
        HopKind::NicQueue,
        HopKind::Vxlan,
        HopKind::EbpfRedirect,
        HopKind::External,
        HopKind::Iptables,
        HopKind::Ipvs,
        HopKind::Nftables,
        HopKind::Ebpf,
        HopKind::Policy,
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
            HopKind::Cpu => "cpu",
            HopKind::CpuQueue => "cpu_queue",
            HopKind::NicQueue => "nic_queue",
            HopKind::Vxlan => "vxlan",
            HopKind::EbpfRedirect => "ebpf_redirect",
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
            HopKind::Policy => "network_policy",
        }
    }

    /// Whether the hop can be a capacity (a queueing resource): a CPU pass,
    /// or a link whose sending end is a node NIC.
    pub fn is_capacity(self) -> bool {
        matches!(self, HopKind::Cpu | HopKind::Underlay | HopKind::External)
    }
}

impl fmt::Display for HopKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The CNI's data path between pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Cni {
    /// Bridge and routing, no encapsulation.
    #[default]
    Routed,
    /// Bridge and a VXLAN overlay between nodes.
    Vxlan,
    /// eBPF redirects, native routing.
    Ebpf,
}

impl Cni {
    /// Its name in scenarios.
    pub fn name(self) -> &'static str {
        match self {
            Cni::Routed => "routed",
            Cni::Vxlan => "vxlan",
            Cni::Ebpf => "ebpf",
        }
    }
}

/// VXLAN's per-packet overhead: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
pub const VXLAN_OVERHEAD: u32 = 50;

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
    /// Every node NIC's bandwidth [bit/s].
    pub underlay_bandwidth_bps: u64,
    /// External client to node, one way [ns].
    pub external_latency_ns: u64,
    /// Bandwidth of links whose sender is no node NIC: the external
    /// client's, and the load balancer's towards a node [bit/s].
    pub external_bandwidth_bps: u64,
    /// Forwarding through an external load balancer [ns].
    pub load_balancer_ns: u64,
    /// Headers of every TCP packet on a link [bytes].
    pub header_bytes: u32,
    /// Headers of every UDP packet on a link [bytes].
    pub udp_header_bytes: u32,
    /// The CNI mode.
    pub cni: Cni,
    /// The node links' MTU [bytes].
    pub link_mtu: u32,
    /// The pods' MTU [bytes]; 0: the link MTU less the overlay's overhead.
    pub pod_mtu: u32,
    /// Softirq CPU per packet [ns].
    pub cpu_packet_ns: u64,
    /// Softirq CPU per byte on the wire [ps].
    pub cpu_byte_ps: u64,
    /// VXLAN encapsulation or decapsulation CPU per packet [ns].
    pub vxlan_cpu_ns: u64,
    /// VXLAN encapsulation latency per message [ns].
    pub vxlan_encap_ns: u64,
    /// VXLAN decapsulation latency per message [ns].
    pub vxlan_decap_ns: u64,
    /// eBPF redirect latency per message [ns].
    pub ebpf_redirect_ns: u64,
    /// Reassembly CPU per fragmented packet [ns].
    pub reassembly_ns: u64,
}

impl Default for DataPathParams {
    fn default() -> Self {
        DataPathParams {
            socket_ns: 10_050,
            loopback_ns: 1_000,
            veth_ns: 10_000,
            bridge_ns: 10_750,
            nic_ns: 14_100,
            underlay_latency_ns: 5_000,
            underlay_bandwidth_bps: 10_000_000_000,
            external_latency_ns: 5_000,
            external_bandwidth_bps: 10_000_000_000,
            load_balancer_ns: 10_000,
            header_bytes: 66,
            udp_header_bytes: 42,
            cni: Cni::Routed,
            link_mtu: 1_500,
            pod_mtu: 0,
            cpu_packet_ns: 1_000,
            cpu_byte_ps: 140,
            vxlan_cpu_ns: 650,
            vxlan_encap_ns: 19_100,
            vxlan_decap_ns: 19_100,
            ebpf_redirect_ns: 1_800,
            reassembly_ns: 1_000,
        }
    }
}

/// A message to carry: its payload and transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    /// Payload [bytes].
    pub bytes: u32,
    /// UDP (one datagram) rather than TCP (segments of one MSS).
    pub udp: bool,
}

impl Msg {
    /// A TCP message of `bytes` payload.
    pub fn tcp(bytes: u32) -> Msg {
        Msg { bytes, udp: false }
    }
}

/// Flags of a capacity hop.
pub mod flags {
    /// A CPU pass that encapsulates (sender side of an overlay).
    pub const ENCAP: u8 = 1;
    /// A CPU pass that decapsulates (receiver side of an overlay).
    pub const DECAP: u8 = 2;
    /// An underlay hop carrying overlay packets.
    pub const OVERLAY: u8 = 4;
}

impl DataPathParams {
    /// The pod MTU in effect [bytes].
    pub fn pod_mtu(&self) -> u32 {
        if self.pod_mtu > 0 {
            self.pod_mtu
        } else if self.cni == Cni::Vxlan {
            self.link_mtu - VXLAN_OVERHEAD
        } else {
            self.link_mtu
        }
    }

    /// Whether overlay packets exceed the link MTU and get fragmented.
    pub fn fragments(&self) -> bool {
        self.cni == Cni::Vxlan && self.pod_mtu() + VXLAN_OVERHEAD > self.link_mtu
    }

    /// TCP payload per packet: the pod MTU (clamped to the link's without
    /// an overlay, after PMTU discovery) less IPv4 20 and TCP 32 bytes.
    pub fn mss(&self) -> u32 {
        let mtu = if self.cni == Cni::Vxlan { self.pod_mtu() } else { self.pod_mtu().min(self.link_mtu) };
        mtu.saturating_sub(52).max(1)
    }

    /// Packets `m` is cut into (on the pod side).
    #[inline]
    pub fn packets(&self, m: Msg) -> u32 {
        if m.udp {
            1
        } else {
            m.bytes.div_ceil(self.mss()).max(1)
        }
    }

    /// Bytes `m` puts on a wire, headers included; `overlay` adds VXLAN's
    /// 50 B per packet (and the second fragment's headers when fragmenting).
    #[inline]
    pub fn wire_bytes(&self, m: Msg, overlay: bool) -> u64 {
        let packets = self.packets(m) as u64;
        let hdr = if m.udp { self.udp_header_bytes } else { self.header_bytes } as u64;
        let mut bytes = m.bytes as u64 + packets * hdr;
        if overlay {
            bytes += packets * VXLAN_OVERHEAD as u64;
            bytes += self.fragmented(m) as u64 * 34; // the second fragment's Ethernet and IPv4 headers
        }
        bytes
    }

    /// Packets of `m` too big for the link once encapsulated (0 unless the
    /// pod MTU is wrong for a VXLAN overlay): the full ones, and the last
    /// if it is big enough.
    #[inline]
    pub fn fragmented(&self, m: Msg) -> u32 {
        if !self.fragments() || m.udp {
            return 0;
        }
        let (packets, mss) = (self.packets(m), self.mss());
        // Payload above which inner IP + TCP (52 B) + VXLAN (50 B) exceed the link MTU.
        let fits = self.link_mtu.saturating_sub(VXLAN_OVERHEAD + 52);
        let last = m.bytes - (packets - 1).min(m.bytes / mss.max(1)) * mss;
        (packets - 1) + u32::from(last > fits)
    }

    /// Softirq CPU time for `m` on a CPU hop with `flags` [ns].
    #[inline]
    pub fn cpu_ns(&self, m: Msg, hop_flags: u8) -> u64 {
        let overlay = hop_flags & (flags::ENCAP | flags::DECAP) != 0;
        let packets = self.packets(m) as u64;
        let mut ns = packets * self.cpu_packet_ns + self.wire_bytes(m, overlay) * self.cpu_byte_ps / 1_000;
        if overlay {
            ns += packets * self.vxlan_cpu_ns;
            if hop_flags & flags::DECAP != 0 {
                ns += self.fragmented(m) as u64 * self.reassembly_ns;
            }
        }
        ns
    }

    /// Serialization of `m` on a node NIC [ns].
    #[inline]
    pub fn nic_ns(&self, m: Msg, hop_flags: u8) -> u64 {
        serialization_ns(self.wire_bytes(m, hop_flags & flags::OVERLAY != 0), self.underlay_bandwidth_bps)
    }
}

/// One hop of a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// What it is.
    pub kind: HopKind,
    /// Flags ([`flags`]) of a capacity hop.
    pub flags: u8,
    /// Latency per traversal [ns] (after the service, for a capacity hop).
    pub base_ns: u32,
    /// The node whose resource serves a capacity hop: the CPU's node, or
    /// the sending node of an underlay or external hop; `None` for a hop
    /// with no capacity behind it.
    pub node: Option<NodeId>,
    /// The receiving node of an underlay hop.
    pub peer: Option<NodeId>,
    /// Whether the hop is at the path's far end (the receiving pod or its
    /// node) rather than its near end (the sender, its node, the external
    /// client's side); kept when the leg is reversed. Only `emu trace`
    /// reads it, to name the interface a hop crosses.
    pub far: bool,
}

impl Hop {
    /// A filler: a socket hop of no latency and no node.
    pub const NONE: Hop = Hop { kind: HopKind::Socket, flags: 0, base_ns: 0, node: None, peer: None, far: false };

    /// The hop's cost [ns] when it is the same for every message: its
    /// latency, for a kind that is never a capacity (its service is 0 in
    /// [`Leg::idle_hop_ns`]); `None` for a CPU pass or a link, whose
    /// service depends on the message's size.
    #[inline]
    pub fn fixed_ns(&self) -> Option<u64> {
        (!self.kind.is_capacity()).then_some(self.base_ns as u64)
    }

    /// The hop on the way back ([`Leg::reversed`]): a link is sent by its
    /// former receiver, an overlay CPU pass swaps encapsulation and
    /// decapsulation.
    #[inline]
    pub fn reversed(mut self) -> Hop {
        if matches!(self.kind, HopKind::Underlay | HopKind::External) {
            std::mem::swap(&mut self.node, &mut self.peer);
        }
        if self.flags & (flags::ENCAP | flags::DECAP) != 0 {
            self.flags ^= flags::ENCAP | flags::DECAP;
        }
        self
    }
}

/// Most hops a leg holds.
pub const MAX_HOPS: usize = 16;

/// A one-way route between two sockets: a fixed-size list of hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leg {
    hops: [Hop; MAX_HOPS],
    len: u8,
    /// Whether hops pushed now are at the far end.
    far: bool,
}

impl Default for Leg {
    fn default() -> Self {
        Leg::EMPTY
    }
}

impl Leg {
    /// A leg of no hops.
    pub const EMPTY: Leg = Leg { hops: [Hop::NONE; MAX_HOPS], len: 0, far: false };

    /// The hops in order.
    #[inline]
    pub fn hops(&self) -> &[Hop] {
        &self.hops[..self.len as usize]
    }

    /// Appends a delay hop.
    pub fn push(&mut self, kind: HopKind, base_ns: u64) {
        self.push_at(kind, base_ns, None, None, 0);
    }

    /// Appends a hop served by `node` (and, for the underlay, received by `peer`).
    pub fn push_at(&mut self, kind: HopKind, base_ns: u64, node: Option<NodeId>, peer: Option<NodeId>, flags: u8) {
        assert!((self.len as usize) < MAX_HOPS, "leg longer than {MAX_HOPS} hops");
        let base_ns = u32::try_from(base_ns).expect("hop latency above 4.29 s");
        self.hops[self.len as usize] = Hop { kind, flags, base_ns, node, peer, far: self.far };
        self.len += 1;
    }

    /// Hops pushed from now on are at the path's far end.
    pub(super) fn switch_to_far_end(&mut self) {
        self.far = true;
    }

    /// Appends the wire between nodes `from` and `to`: the sender's NIC,
    /// the underlay (with `flags`), the receiver's NIC.
    pub(super) fn push_wire(&mut self, p: &DataPathParams, from: NodeId, to: NodeId, flags: u8) {
        self.push(HopKind::Nic, p.nic_ns);
        self.push_at(HopKind::Underlay, p.underlay_latency_ns, Some(from), Some(to), flags);
        self.switch_to_far_end();
        self.push(HopKind::Nic, p.nic_ns);
    }

    /// Appends delivery into a bridged pod: across `cbr0`, then the pod's veth.
    pub(super) fn push_bridge_to_pod(&mut self, p: &DataPathParams) {
        self.switch_to_far_end();
        self.push(HopKind::Bridge, p.bridge_ns);
        self.push(HopKind::Veth, p.veth_ns);
    }

    /// The way back: the hops in reverse order, with each underlay hop now
    /// sent by its former receiver and each overlay CPU pass swapping
    /// encapsulation and decapsulation.
    pub fn reversed(&self) -> Leg {
        let mut r = *self;
        let n = self.len as usize;
        r.hops[..n].reverse();
        for h in &mut r.hops[..n] {
            *h = h.reversed();
        }
        r
    }

    /// The cost of hop `h` for `m` when nothing queues: its service time
    /// (capacities) plus its latency [ns].
    #[inline]
    pub fn idle_hop_ns(p: &DataPathParams, h: &Hop, m: Msg) -> (u64, u64) {
        let service = match h.kind {
            HopKind::Cpu => p.cpu_ns(m, h.flags),
            HopKind::Underlay | HopKind::External if h.node.is_some() => p.nic_ns(m, h.flags),
            HopKind::Underlay | HopKind::External => serialization_ns(p.wire_bytes(m, false), p.external_bandwidth_bps),
            _ => 0,
        };
        (service, h.base_ns as u64)
    }

    /// Walks the leg with `m` on an idle cluster: calls `each(kind, ns)`
    /// per hop and returns the total [ns]. (A run queues at capacities;
    /// this is the floor, for tests and for messages off the capacity model.)
    pub fn idle_ns(&self, p: &DataPathParams, m: Msg, mut each: impl FnMut(HopKind, u64)) -> u64 {
        let mut total = 0;
        for h in self.hops() {
            let (service, latency) = Self::idle_hop_ns(p, h, m);
            each(h.kind, service + latency);
            total += service + latency;
        }
        total
    }
}

/// Time to clock `bytes` onto a link of `bps` bit/s [ns], rounded up.
#[inline]
pub fn serialization_ns(bytes: impl Into<u64>, bps: u64) -> u64 {
    (bytes.into() * 8 * 1_000_000_000).div_ceil(bps)
}

/// One end of a connection, as far as routing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A pod on a node.
    Pod {
        /// The pod.
        pod: PodId,
        /// Its node.
        node: NodeId,
    },
    /// A client outside the cluster, entering at node `node`.
    External {
        /// The entry node.
        node: NodeId,
    },
    /// A client outside the cluster whose load balancer forwards it to node
    /// `node` over the underlay.
    ViaLoadBalancer {
        /// The entry node.
        node: NodeId,
    },
    /// A process in node `node`'s own network namespace (hostNetwork).
    Host {
        /// The node.
        node: NodeId,
    },
}

/// A connection's path, small enough to keep per connection; its legs are
/// built when a message starts (a [`Leg`] is 260 bytes, a `Path` 20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// [`route`] from `from` to pod `to_pod` on `to_node`.
    Route {
        /// The sending end.
        from: Place,
        /// The receiving pod.
        to_pod: PodId,
        /// Its node.
        to_node: NodeId,
    },
    /// [`hairpin`] on `node`.
    Hairpin {
        /// The pod's node.
        node: NodeId,
    },
    /// [`to_host`]: from `from` to a process in node `node`'s own network
    /// namespace (a hostNetwork pod, the NodeLocal DNSCache).
    ToHost {
        /// The sending end.
        from: Place,
        /// The node.
        node: NodeId,
    },
}

impl Path {
    /// The leg forward (or back, reversed).
    #[inline]
    pub fn leg(&self, p: &DataPathParams, back: bool) -> Leg {
        let leg = match *self {
            Path::Route { from, to_pod, to_node } => route(p, from, to_pod, to_node),
            Path::Hairpin { node } => hairpin(p, node),
            Path::ToHost { from, node } => to_host(p, from, node),
        };
        if back {
            leg.reversed()
        } else {
            leg
        }
    }
}

/// The leg from socket `from` to a pod socket on `to_node`, for the
/// configured CNI.
pub fn route(p: &DataPathParams, from: Place, to_pod: PodId, to_node: NodeId) -> Leg {
    let mut leg = Leg::default();
    leg.push(HopKind::Socket, p.socket_ns);
    if let Place::Pod { pod, .. } = from {
        if pod == to_pod {
            leg.push(HopKind::Loopback, p.loopback_ns);
            leg.switch_to_far_end();
            leg.push(HopKind::Socket, p.socket_ns);
            return leg;
        }
    }
    let at = enter(p, &mut leg, from);
    let from_pod = matches!(from, Place::Pod { .. });
    match p.cni {
        Cni::Routed => routed::between_nodes(p, &mut leg, at, to_node, from_pod),
        Cni::Vxlan => vxlan::between_nodes(p, &mut leg, at, to_node, from_pod),
        Cni::Ebpf => ebpf::between_nodes(p, &mut leg, at, to_node, from_pod),
    }
    leg.switch_to_far_end();
    leg.push(HopKind::Socket, p.socket_ns);
    leg
}

/// Appends the hops from sender `from` up to its first node's packet
/// processing; returns that node.
fn enter(p: &DataPathParams, leg: &mut Leg, from: Place) -> NodeId {
    match from {
        Place::Pod { node, .. } => {
            if p.cni != Cni::Ebpf {
                leg.push(HopKind::Veth, p.veth_ns);
            }
            node
        }
        Place::Host { node } => node,
        Place::External { node } | Place::ViaLoadBalancer { node } => {
            // The client's link: on the way back, sent by the node's NIC.
            let peer = matches!(from, Place::External { .. }).then_some(node);
            leg.push_at(HopKind::External, p.external_latency_ns, None, peer, 0);
            if matches!(from, Place::ViaLoadBalancer { .. }) {
                leg.push(HopKind::LoadBalancer, p.load_balancer_ns);
                // The load balancer's link to the node: on the way back,
                // sent by the node's NIC.
                leg.push_at(HopKind::Underlay, p.underlay_latency_ns, None, Some(node), 0);
            }
            leg.push(HopKind::Nic, p.nic_ns);
            node
        }
    }
}

/// The leg of a hairpin connection: a pod reaching itself through a
/// Service, out to the node and back in.
pub fn hairpin(p: &DataPathParams, node: NodeId) -> Leg {
    let mut leg = Leg::default();
    leg.push(HopKind::Socket, p.socket_ns);
    match p.cni {
        Cni::Ebpf => {
            leg.push_at(HopKind::Cpu, 0, Some(node), None, 0);
            leg.switch_to_far_end();
            leg.push(HopKind::EbpfRedirect, p.ebpf_redirect_ns);
        }
        _ => {
            leg.push(HopKind::Veth, p.veth_ns);
            leg.push_at(HopKind::Cpu, 0, Some(node), None, 0);
            leg.push_bridge_to_pod(p);
        }
    }
    leg.switch_to_far_end();
    leg.push(HopKind::Socket, p.socket_ns);
    leg
}

/// The leg from `from` to a process in node `node`'s own network namespace
/// (a hostNetwork pod, the NodeLocal DNSCache). The node's address is no
/// pod address: between nodes the packet takes the underlay as the node's
/// own traffic (no overlay, no eBPF redirect on arrival), and the host's
/// stack receives it without a veth. From the same host it is local
/// delivery over `lo`.
pub fn to_host(p: &DataPathParams, from: Place, node: NodeId) -> Leg {
    let mut leg = Leg::default();
    leg.push(HopKind::Socket, p.socket_ns);
    if from == (Place::Host { node }) {
        leg.push(HopKind::Loopback, p.loopback_ns);
        leg.switch_to_far_end();
        leg.push(HopKind::Socket, p.socket_ns);
        return leg;
    }
    let same_pod_node = matches!(from, Place::Pod { node: n, .. } if n == node);
    if same_pod_node && p.cni == Cni::Ebpf {
        // The program on the pod's device hands the packet to the host.
        leg.push_at(HopKind::Cpu, 0, Some(node), None, 0);
        leg.push(HopKind::EbpfRedirect, p.ebpf_redirect_ns);
    } else {
        let at = enter(p, &mut leg, from);
        leg.push_at(HopKind::Cpu, 0, Some(at), None, 0);
        if at != node {
            match (from, p.cni) {
                (Place::Pod { .. }, Cni::Ebpf) => leg.push(HopKind::EbpfRedirect, p.ebpf_redirect_ns),
                (Place::Pod { .. }, _) => leg.push(HopKind::Bridge, p.bridge_ns),
                _ => {}
            }
            leg.push_wire(p, at, node, 0);
            leg.push_at(HopKind::Cpu, 0, Some(node), None, 0);
        }
    }
    leg.switch_to_far_end();
    leg.push(HopKind::Socket, p.socket_ns);
    leg
}

/// The leg of a packet that a node's netfilter answers itself (a REJECT):
/// from the sender to the node, delays only.
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
mod tests;
