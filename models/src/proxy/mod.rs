//! kube-proxy: how a node turns a Service address into an endpoint, and
//! what that costs the first packet of a connection. One model per mode,
//! behind one interface ([`ProxyModel`]), dispatched by an enum ([`Proxy`])
//! so the hot path has no dynamic dispatch:
//!
//! - [`iptables`]: KUBE-SERVICES matched rule by rule: cost O(Services);
//!   uniform random choice through KUBE-SVC probability chains.
//! - [`ipvs`]: O(1) virtual-server hash lookup; the real IPVS schedulers
//!   (rr, wrr, lc, wlc, sh, dh, sed, nq) with per-node state.
//! - [`nftables`]: O(1) verdict-map lookup; random choice only.
//! - [`ebpf`]: Cilium-style kube-proxy replacement: translation at
//!   `connect()` in the socket layer, no per-packet NAT for pod traffic.
//!
//! Session affinity, traffic policies and which endpoints are candidates
//! are decided by the caller (the world); a mode picks among the candidates
//! it is given and prices the decision.

pub mod ebpf;
pub mod iptables;
pub mod iptables_save;
pub mod ipvs;
pub mod nft_list;
pub mod nftables;

use emu_engine::rng::Stream;

use crate::addr::Ipv4;
use crate::cluster::Cluster;
use crate::datapath::HopKind;
use crate::ids::{EpId, NodeId, SpId};

/// What a new connection's first packet costs on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FirstPacket {
    /// Rules, set or map entries examined.
    pub entries: u32,
    /// The proxy's own lookup time [ns].
    pub lookup_ns: u64,
    /// Conntrack entry creation time [ns] (0 where the mode bypasses it).
    pub conntrack_ns: u64,
}

impl FirstPacket {
    /// Total [ns].
    pub fn total_ns(&self) -> u64 {
        self.lookup_ns + self.conntrack_ns
    }
}

/// A load-balancing decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dnat {
    /// The chosen endpoint of the Service port.
    pub endpoint: EpId,
    /// The cost on the deciding node.
    pub cost: FirstPacket,
}

/// How the connection reached the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    /// To the ClusterIP, from a pod.
    ClusterIp,
    /// To a node port, from outside.
    NodePort,
    /// To the load-balancer IP, forwarded by the load balancer with its
    /// destination kept (a passthrough load balancer): kube-proxy matches
    /// the address itself, as it matches a ClusterIP.
    LoadBalancer,
}

impl Entry {
    /// Whether the external traffic policy applies (node ports and load
    /// balancers), rather than the internal one.
    pub fn external(self) -> bool {
        !matches!(self, Entry::ClusterIp)
    }
}

/// The endpoints a decision may choose from.
#[derive(Clone, Copy, Debug)]
pub enum Candidates<'a> {
    /// All `n` endpoints of the Service port.
    All(u32),
    /// Only these endpoints (a Local traffic policy's node-local set).
    Subset(&'a [EpId]),
}

impl Candidates<'_> {
    /// How many.
    #[inline]
    pub fn len(&self) -> u32 {
        match self {
            Candidates::All(n) => *n,
            Candidates::Subset(s) => s.len() as u32,
        }
    }
    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The endpoint of candidate `i`.
    #[inline]
    pub fn get(&self, i: u32) -> EpId {
        match self {
            Candidates::All(_) => EpId::new(i),
            Candidates::Subset(s) => s[i as usize],
        }
    }
}

/// One load-balancing question.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// The deciding node.
    pub node: NodeId,
    /// The Service port.
    pub sp: SpId,
    /// How the connection arrived.
    pub entry: Entry,
    /// Who may be chosen (never empty).
    pub candidates: Candidates<'a>,
    /// The client's address as the node sees it (for source hashing).
    pub client_ip: Ipv4,
    /// The destination address (ClusterIP, node IP or load-balancer IP, for
    /// destination hashing).
    pub dest_ip: Ipv4,
    /// Whether the Service has `sessionAffinity: ClientIP` (iptables then
    /// checks a `recent` rule per endpoint before choosing).
    pub affinity: bool,
    /// When the first packet arrives [ns] (IPVS expires its inactive
    /// connections lazily by it).
    pub now_ns: u64,
    /// Endpoints added at run time to the port (ids from the base's count
    /// on); empty in a static cluster.
    pub extra: &'a [crate::cluster::Endpoint],
    /// The version of the endpoint set the deciding node has programmed
    /// (0: the base); schedulers that cache per set rebuild on a new one.
    pub version: u64,
}

/// The interface every proxy mode implements.
pub trait ProxyModel {
    /// The hop kind its lookup is reported as in `hops.csv`.
    fn hop(&self) -> HopKind;
    /// A new connection's first packet to a destination that is no Service
    /// (a pod IP), on any node.
    fn miss(&self) -> FirstPacket;
    /// Picks an endpoint among `q.candidates` (never empty) for a new
    /// connection, and prices the decision. `None`: the mode finds no
    /// destination among them (IPVS when every candidate it may choose has
    /// weight 0: its scheduler returns NULL and `ip_vs_leave` answers the
    /// first packet with ICMP port unreachable); the other modes always pick.
    fn pick(&mut self, cluster: &Cluster, q: &Query, rng: &mut Stream) -> Option<Dnat>;
    /// The cost when session affinity already names the endpoint, the
    /// `position`-th candidate; the connection counts as opened to it.
    fn affinity_hit(&mut self, cluster: &Cluster, q: &Query, position: u32) -> FirstPacket;
    /// A connection decided on `node` to endpoint `endpoint` of `sp` ended
    /// at `now_ns` (schedulers that count connections need it).
    fn closed(&mut self, _node: NodeId, _sp: SpId, _entry: Entry, _endpoint: EpId, _now_ns: u64) {}
    /// What the mode programs on every node, as (name, count) rows.
    fn counts(&self) -> Vec<(&'static str, u64)>;
}

/// The proxy modes a cluster can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// kube-proxy `--proxy-mode=iptables` (the default).
    #[default]
    Iptables,
    /// kube-proxy `--proxy-mode=ipvs`.
    Ipvs,
    /// kube-proxy `--proxy-mode=nftables`.
    Nftables,
    /// A Cilium-style eBPF kube-proxy replacement.
    Ebpf,
}

impl Mode {
    /// Its name in scenarios and output.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Iptables => "iptables",
            Mode::Ipvs => "ipvs",
            Mode::Nftables => "nftables",
            Mode::Ebpf => "ebpf",
        }
    }
}

/// Parameters of every mode (only the chosen mode's are used).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyParams {
    /// Which mode runs.
    pub mode: Mode,
    /// iptables mode.
    pub iptables: iptables::IptablesParams,
    /// IPVS mode.
    pub ipvs: ipvs::IpvsParams,
    /// nftables mode.
    pub nftables: nftables::NftablesParams,
    /// eBPF mode.
    pub ebpf: ebpf::EbpfParams,
}

/// The proxy of a cluster: one mode, on every node.
#[derive(Clone, Debug)]
pub enum Proxy {
    /// iptables mode.
    Iptables(iptables::Iptables),
    /// IPVS mode.
    Ipvs(ipvs::Ipvs),
    /// nftables mode.
    Nftables(nftables::Nftables),
    /// eBPF mode.
    Ebpf(ebpf::Ebpf),
}

macro_rules! each_mode {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Proxy::Iptables($m) => $e,
            Proxy::Ipvs($m) => $e,
            Proxy::Nftables($m) => $e,
            Proxy::Ebpf($m) => $e,
        }
    };
}

impl Proxy {
    /// Builds the chosen mode's tables for `cluster`.
    pub fn new(cluster: &Cluster, params: &ProxyParams, seed: u64) -> Proxy {
        match params.mode {
            Mode::Iptables => Proxy::Iptables(iptables::Iptables::new(cluster, params.iptables.clone(), seed)),
            Mode::Ipvs => Proxy::Ipvs(ipvs::Ipvs::new(cluster, params.ipvs.clone())),
            Mode::Nftables => Proxy::Nftables(nftables::Nftables::new(cluster, params.nftables.clone())),
            Mode::Ebpf => Proxy::Ebpf(ebpf::Ebpf::new(cluster, params.ebpf.clone())),
        }
    }
}

impl ProxyModel for Proxy {
    #[inline]
    fn hop(&self) -> HopKind {
        each_mode!(self, m => m.hop())
    }
    #[inline]
    fn miss(&self) -> FirstPacket {
        each_mode!(self, m => m.miss())
    }
    #[inline]
    fn pick(&mut self, cluster: &Cluster, q: &Query, rng: &mut Stream) -> Option<Dnat> {
        debug_assert!(!q.candidates.is_empty());
        each_mode!(self, m => m.pick(cluster, q, rng))
    }
    #[inline]
    fn affinity_hit(&mut self, cluster: &Cluster, q: &Query, position: u32) -> FirstPacket {
        each_mode!(self, m => m.affinity_hit(cluster, q, position))
    }
    #[inline]
    fn closed(&mut self, node: NodeId, sp: SpId, entry: Entry, endpoint: EpId, now_ns: u64) {
        each_mode!(self, m => m.closed(node, sp, entry, endpoint, now_ns))
    }
    fn counts(&self) -> Vec<(&'static str, u64)> {
        each_mode!(self, m => m.counts())
    }
}

#[cfg(test)]
mod contract;
