//! The scenario file format (TOML). Every key is documented in
//! docs/scenario.md with its unit, default and source. Model parameters
//! (data path, iptables, DNS) take their defaults from the models' own
//! `Default` impls, which cite their sources; cluster, flow and server
//! defaults are set here, each with its source beside it.

use std::collections::BTreeMap;

use emu_models::datapath::DataPathParams;
use emu_models::dns::DnsParams;
use emu_models::proxy::iptables::IptablesParams;
use serde::{Deserialize, Serialize};

use super::units::{Bandwidth, DistText, Duration, PortRange};

/// A whole scenario file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The emu version that wrote this file (run.toml); a different one
    /// only warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emu_version: Option<String>,
    /// Master seed of every random stream.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Runs of every point, replication r with seed + r.
    #[serde(default = "one")]
    pub replications: u32,
    /// Kubernetes YAML files to load, relative to the scenario file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    #[serde(default)]
    pub cluster: ClusterToml,
    #[serde(default)]
    pub datapath: DatapathToml,
    #[serde(default)]
    pub cni: CniToml,
    #[serde(default)]
    pub node: NodeToml,
    #[serde(default)]
    pub proxy: ProxyToml,
    #[serde(default)]
    pub dns: DnsToml,
    #[serde(default)]
    pub load_balancer: LoadBalancerToml,
    #[serde(default)]
    pub ingress_controller: IngressControllerToml,
    #[serde(default)]
    pub output: OutputToml,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingresses: Vec<IngressToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerToml>,
    #[serde(default)]
    pub flows: Vec<FlowToml>,
    /// The timeline of a changing cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<super::dynamics_schema::ChangeToml>,
    /// The control plane (resolved into run.toml when there are changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<super::dynamics_schema::ControlPlaneToml>,
    /// NetworkPolicy objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_policies: Vec<super::netpol::NetworkPolicyToml>,
    /// How NetworkPolicy is enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyToml>,
    /// Key path -> values: run the cartesian product of every list.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub sweep: toml::Table,
}

fn default_seed() -> u64 {
    1
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterToml {
    pub nodes: u32,
    pub node_ip_cidr: String,
    pub pod_cidr: String,
    pub node_cidr_mask_size: u8,
    pub service_cidr: String,
    pub node_port_range: PortRange,
    pub load_balancer_cidr: String,
    pub placement: PlacementToml,
    pub namespaces: Vec<NamespaceToml>,
    /// The `default/kubernetes` Service and the API server behind it.
    pub kubernetes_service: bool,
}

/// A namespace: its name, or its name and labels.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NamespaceToml {
    Name(String),
    Full(NamespaceFull),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceFull {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl NamespaceToml {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        match self {
            NamespaceToml::Name(n) => n,
            NamespaceToml::Full(f) => &f.name,
        }
    }
}

/// `[network_policy]`: how NetworkPolicy is enforced and what it costs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkPolicyToml {
    pub enforcement: EnforcementToml,
    pub rule_cost: Duration,
    pub dispatch: Duration,
    pub set_match: Duration,
    pub ebpf_lookup: Duration,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EnforcementToml {
    /// eBPF with `[cni] datapath = "ebpf"`, else iptables.
    Auto,
    Iptables,
    Ebpf,
}

impl Default for NetworkPolicyToml {
    fn default() -> Self {
        let i = emu_models::policy::cost::IptablesPolicyParams::default();
        let e = emu_models::policy::cost::EbpfPolicyParams::default();
        NetworkPolicyToml {
            enforcement: EnforcementToml::Auto,
            rule_cost: Duration(i.rule_ns),
            dispatch: Duration(i.dispatch_ns),
            set_match: Duration(i.set_ns),
            ebpf_lookup: Duration(e.lookup_ns),
        }
    }
}

impl Default for ClusterToml {
    /// Kubernetes' own defaults: pod CIDR 10.244.0.0/16 (flannel's default
    /// `Network`, the kubeadm docs' example), /24 per node
    /// (kube-controller-manager `--node-cidr-mask-size`), service CIDR
    /// 10.96.0.0/12 (kubeadm `--service-cidr`), node ports 30000-32767
    /// (kube-apiserver `--service-node-port-range`). Node IPs from
    /// 192.168.0.0/16 are a choice (an RFC 1918 block apart from both);
    /// load-balancer IPs from 203.0.113.0/24 (TEST-NET-3, RFC 5737) too.
    fn default() -> Self {
        ClusterToml {
            nodes: 1,
            node_ip_cidr: "192.168.0.0/16".into(),
            pod_cidr: "10.244.0.0/16".into(),
            node_cidr_mask_size: 24,
            service_cidr: "10.96.0.0/12".into(),
            node_port_range: PortRange(30000, 32767),
            load_balancer_cidr: "203.0.113.0/24".into(),
            kubernetes_service: true,
            placement: PlacementToml::RoundRobin,
            namespaces: vec![],
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementToml {
    RoundRobin,
    Random,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatapathToml {
    pub socket: Duration,
    pub loopback: Duration,
    pub veth: Duration,
    pub bridge: Duration,
    pub nic: Duration,
    pub underlay_latency: Duration,
    pub underlay_bandwidth: Bandwidth,
    pub external_latency: Duration,
    pub external_bandwidth: Bandwidth,
    pub header_bytes: u32,
    pub udp_header_bytes: u32,
    pub load_balancer: Duration,
}

impl Default for DatapathToml {
    fn default() -> Self {
        let d = DataPathParams::default();
        DatapathToml {
            socket: Duration(d.socket_ns),
            loopback: Duration(d.loopback_ns),
            veth: Duration(d.veth_ns),
            bridge: Duration(d.bridge_ns),
            nic: Duration(d.nic_ns),
            underlay_latency: Duration(d.underlay_latency_ns),
            underlay_bandwidth: Bandwidth(d.underlay_bandwidth_bps),
            external_latency: Duration(d.external_latency_ns),
            external_bandwidth: Bandwidth(d.external_bandwidth_bps),
            header_bytes: d.header_bytes,
            udp_header_bytes: d.udp_header_bytes,
            load_balancer: Duration(d.load_balancer_ns),
        }
    }
}

impl DatapathToml {
    pub fn params(&self) -> DataPathParams {
        DataPathParams {
            socket_ns: self.socket.ns(),
            loopback_ns: self.loopback.ns(),
            veth_ns: self.veth.ns(),
            bridge_ns: self.bridge.ns(),
            nic_ns: self.nic.ns(),
            underlay_latency_ns: self.underlay_latency.ns(),
            underlay_bandwidth_bps: self.underlay_bandwidth.0,
            external_latency_ns: self.external_latency.ns(),
            external_bandwidth_bps: self.external_bandwidth.0,
            header_bytes: self.header_bytes,
            udp_header_bytes: self.udp_header_bytes,
            load_balancer_ns: self.load_balancer.ns(),
            ..DataPathParams::default()
        }
    }
}

/// The CNI's data path.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CniToml {
    pub mode: CniMode,
    pub link_mtu: u32,
    /// 0: the link MTU less the overlay's overhead.
    pub pod_mtu: u32,
    pub vxlan_encap: Duration,
    pub vxlan_decap: Duration,
    pub vxlan_cpu: Duration,
    pub ebpf_redirect: Duration,
    pub reassembly: Duration,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CniMode {
    Routed,
    Vxlan,
    Ebpf,
}

impl Default for CniToml {
    fn default() -> Self {
        let d = DataPathParams::default();
        CniToml {
            mode: CniMode::Routed,
            link_mtu: d.link_mtu,
            pod_mtu: d.pod_mtu,
            vxlan_encap: Duration(d.vxlan_encap_ns),
            vxlan_decap: Duration(d.vxlan_decap_ns),
            vxlan_cpu: Duration(d.vxlan_cpu_ns),
            ebpf_redirect: Duration(d.ebpf_redirect_ns),
            reassembly: Duration(d.reassembly_ns),
        }
    }
}

/// Node capacities: softirq CPU, NIC queue, conntrack table.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeToml {
    pub softirq_cores: u32,
    pub cpu_per_packet: Duration,
    /// Picoseconds per byte.
    pub cpu_per_byte_ps: u64,
    pub backlog: u32,
    pub txqueuelen: u32,
    /// 0: kube-proxy's max(32768 x softirq_cores, 131072).
    pub conntrack_max: u32,
    pub tcp_time_wait: Duration,
    pub tcp_close: Duration,
    pub udp_timeout: Duration,
    pub rto: Duration,
    pub dns_retry: Duration,
    pub tcp_syn_retries: u32,
    pub tcp_syn_linear_timeouts: u32,
    pub conntrack_gc_interval: Duration,
}

impl Default for NodeToml {
    fn default() -> Self {
        let n = emu_models::node::NodeParams::default();
        let d = DataPathParams::default();
        NodeToml {
            softirq_cores: n.softirq_cores,
            cpu_per_packet: Duration(d.cpu_packet_ns),
            cpu_per_byte_ps: d.cpu_byte_ps,
            backlog: n.backlog,
            txqueuelen: n.txqueuelen,
            conntrack_max: n.conntrack_max,
            tcp_time_wait: Duration(n.tcp_time_wait_ns),
            tcp_close: Duration(n.tcp_close_ns),
            udp_timeout: Duration(n.udp_timeout_ns),
            rto: Duration(n.rto_ns),
            dns_retry: Duration(n.dns_retry_ns),
            tcp_syn_retries: n.tcp_syn_retries,
            tcp_syn_linear_timeouts: n.tcp_syn_linear_timeouts,
            conntrack_gc_interval: Duration(n.conntrack_gc_interval_ns),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyToml {
    pub mode: ProxyMode,
    pub iptables: IptablesToml,
    pub ipvs: IpvsToml,
    pub nftables: NftablesToml,
    pub ebpf: EbpfToml,
    /// kube-proxy's sync loop (resolved into run.toml when there are changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<super::dynamics_schema::SyncToml>,
}

impl Default for ProxyToml {
    fn default() -> Self {
        ProxyToml {
            mode: ProxyMode::Iptables,
            iptables: IptablesToml::default(),
            ipvs: IpvsToml::default(),
            nftables: NftablesToml::default(),
            ebpf: EbpfToml::default(),
            sync: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    Iptables,
    Ipvs,
    Nftables,
    Ebpf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpvsToml {
    pub scheduler: SchedulerToml,
    pub lookup: Duration,
    pub conntrack_new: Duration,
    pub tcp_time_wait: Duration,
    pub udp_timeout: Duration,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerToml {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sh,
    Dh,
    Sed,
    Nq,
}

impl Default for IpvsToml {
    fn default() -> Self {
        let p = emu_models::proxy::ipvs::IpvsParams::default();
        IpvsToml {
            scheduler: SchedulerToml::Rr,
            lookup: Duration(p.lookup_ns),
            conntrack_new: Duration(p.conntrack_new_ns),
            tcp_time_wait: Duration(p.tcp_time_wait_ns),
            udp_timeout: Duration(p.udp_timeout_ns),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NftablesToml {
    pub lookup: Duration,
    pub conntrack_new: Duration,
}

impl Default for NftablesToml {
    fn default() -> Self {
        let p = emu_models::proxy::nftables::NftablesParams::default();
        NftablesToml { lookup: Duration(p.lookup_ns), conntrack_new: Duration(p.conntrack_new_ns) }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EbpfToml {
    pub connect: Duration,
    pub nodeport: Duration,
}

impl Default for EbpfToml {
    fn default() -> Self {
        let p = emu_models::proxy::ebpf::EbpfParams::default();
        EbpfToml { connect: Duration(p.connect_ns), nodeport: Duration(p.nodeport_ns) }
    }
}

/// What the run writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputToml {
    /// Width of a `timeseries.csv` interval.
    pub interval: Duration,
}

impl Default for OutputToml {
    /// 100 ms: fine enough to see a queue build, coarse enough to plot.
    fn default() -> Self {
        OutputToml { interval: Duration(100_000_000) }
    }
}

/// The ingress controller emu deploys when there are Ingresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressControllerToml {
    pub replicas: u32,
    pub namespace: String,
    pub service_type: ServiceTypeToml,
    pub service_time: DistText,
    pub concurrency: u32,
}

impl Default for IngressControllerToml {
    fn default() -> Self {
        let c = emu_models::cluster::ingress::IngressControllerSpec::default();
        let p = emu_models::world::IngressParams::default();
        IngressControllerToml {
            replicas: c.replicas,
            namespace: c.namespace,
            service_type: ServiceTypeToml::LoadBalancer,
            service_time: DistText(p.service_time),
            concurrency: p.concurrency,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressToml {
    pub name: String,
    #[serde(default = "default_ns")]
    pub namespace: String,
    #[serde(default)]
    pub rules: Vec<IngressRuleToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<BackendToml>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressRuleToml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub paths: Vec<IngressPathToml>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressPathToml {
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub path_type: PathTypeToml,
    pub service: String,
    pub port: u32,
}

fn root_path() -> String {
    "/".into()
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum PathTypeToml {
    #[default]
    Prefix,
    Exact,
    ImplementationSpecific,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendToml {
    pub service: String,
    pub port: u32,
}

/// The external load balancer of LoadBalancer Services.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadBalancerToml {
    pub policy: LbPolicyToml,
    pub check_interval: Duration,
    pub unhealthy_threshold: u32,
    /// Passed checks to put a node back (a changing cluster's; resolved
    /// into run.toml when there are changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LbPolicyToml {
    Random,
    RoundRobin,
}

impl Default for LoadBalancerToml {
    fn default() -> Self {
        let p = emu_models::world::LbParams::default();
        LoadBalancerToml {
            policy: LbPolicyToml::Random,
            check_interval: Duration(p.check_interval_ns),
            unhealthy_threshold: p.unhealthy_threshold,
            healthy_threshold: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IptablesToml {
    pub rule_cost: Duration,
    pub conntrack_new: Duration,
    pub rule_order: RuleOrderToml,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleOrderToml {
    Random,
    Declaration,
}

impl Default for IptablesToml {
    fn default() -> Self {
        let p = IptablesParams::default();
        IptablesToml {
            rule_cost: Duration(p.rule_ns),
            conntrack_new: Duration(p.conntrack_new_ns),
            rule_order: RuleOrderToml::Random,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsToml {
    pub replicas: u32,
    pub ndots: u8,
    pub cluster_domain: String,
    pub service_time: DistText,
    pub concurrency: u32,
    pub query_bytes: u32,
    pub response_bytes: u32,
    pub node_local_cache: bool,
    pub cache_ttl: Duration,
    pub cache_service_time: DistText,
    pub cache_concurrency: u32,
    /// CoreDNS's `health { lameduck }` (a changing cluster's; resolved
    /// into run.toml when there are changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lameduck: Option<Duration>,
    /// Clients query from one long-lived UDP socket (written to run.toml
    /// when set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_socket: Option<bool>,
    /// The pods' stub resolver (`glibc`, `glibc-single-request`,
    /// `glibc-single-request-reopen`, `musl`, `a-only`).
    pub resolver: String,
    /// The upstream resolver's answer time.
    pub upstream_latency: DistText,
    /// How long CoreDNS keeps a forwarded answer.
    pub upstream_cache_ttl: Duration,
    /// Names outside the cluster domain that the upstream resolver knows.
    pub external_names: Vec<String>,
}

impl Default for DnsToml {
    fn default() -> Self {
        let p = DnsParams::default();
        DnsToml {
            replicas: emu_models::dns::DEFAULT_REPLICAS,
            ndots: p.ndots,
            cluster_domain: p.cluster_domain,
            service_time: DistText(p.service_time),
            concurrency: p.concurrency,
            query_bytes: p.query_bytes,
            response_bytes: p.response_bytes,
            node_local_cache: p.node_local_cache,
            cache_ttl: Duration(p.cache_ttl_ns),
            cache_service_time: DistText(p.cache_service_time),
            cache_concurrency: p.cache_concurrency,
            lameduck: None,
            persistent_socket: None,
            resolver: p.resolver.name().into(),
            upstream_latency: DistText(p.upstream_latency),
            upstream_cache_ttl: Duration(p.upstream_cache_ttl_ns),
            external_names: p.external_names,
        }
    }
}

/// A port in a container: `8080` or `{ name = "http", port = 8080 }`.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum PortToml {
    Number(u32),
    Full(PortFull),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortFull {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: u32,
    #[serde(default)]
    pub protocol: ProtocolToml,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum ProtocolToml {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerToml {
    pub name: String,
    #[serde(default)]
    pub ports: Vec<PortToml>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodToml {
    /// Repeat this entry `count` times, with `{i}` in any string replaced by 0, 1, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    pub name: String,
    #[serde(default = "default_ns")]
    pub namespace: String,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// IPVS real-server weight of its endpoints.
    #[serde(default = "one")]
    pub ipvs_weight: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Shorthand for one container named `main` with these ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<super::dynamics_schema::ProbeToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_start: Option<DistText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<super::dynamics_schema::IntOrPercentToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<super::dynamics_schema::IntOrPercentToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready: Option<Duration>,
    /// `hostNetwork`: the pod lives in its node's network namespace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    /// `dnsPolicy`: ClusterFirst (default), ClusterFirstWithHostNet or Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
}

pub fn default_ns() -> String {
    "default".into()
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetPortToml {
    Number(u32),
    Name(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePortToml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<TargetPortToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<u32>,
    #[serde(default)]
    pub protocol: ProtocolToml,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum ServiceTypeToml {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
    ExternalName,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum AffinityToml {
    #[default]
    None,
    ClientIP,
}

/// 10800 s: kube-apiserver's default `sessionAffinityConfig.clientIP.timeoutSeconds`.
fn default_affinity_timeout() -> Duration {
    Duration(10_800_000_000_000)
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum PolicyToml {
    #[default]
    Cluster,
    Local,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceToml {
    /// Repeat this entry `count` times, with `{i}` in any string replaced by 0, 1, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    pub name: String,
    #[serde(default = "default_ns")]
    pub namespace: String,
    #[serde(default, rename = "type")]
    pub kind: ServiceTypeToml,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// `type = "ExternalName"`: the name CoreDNS answers with (a CNAME).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    #[serde(default)]
    pub ports: Vec<ServicePortToml>,
    #[serde(default)]
    pub external_traffic_policy: PolicyToml,
    #[serde(default)]
    pub internal_traffic_policy: PolicyToml,
    #[serde(default)]
    pub session_affinity: AffinityToml,
    #[serde(default = "default_affinity_timeout")]
    pub session_affinity_timeout: Duration,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerToml {
    /// Repeat this entry `count` times, with `{i}` in any string replaced by 0, 1, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Label selector of the pods it runs in.
    pub selector: BTreeMap<String, String>,
    #[serde(default = "default_ns")]
    pub namespace: String,
    pub port: u32,
    #[serde(default = "zero_dist")]
    pub service_time: DistText,
    #[serde(default)]
    pub concurrency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_limit: Option<u32>,
}

/// Zero: a server with no work of its own, like netperf's TCP_RR
/// responder, so a request's latency is the network's.
fn zero_dist() -> DistText {
    DistText(emu_engine::Dist::Constant(0))
}

/// Who sends: `"external"`, a pod (or template) name in `default`, or a table.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum FromToml {
    Name(String),
    Table(FromTable),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FromTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(default = "default_ns")]
    pub namespace: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowToml {
    /// Repeat this entry `count` times, with `{i}` in any string replaced by 0, 1, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    pub name: String,
    pub from: FromToml,
    pub to: String,
    /// Open loop: requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Closed loop: concurrent clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default = "zero_dist")]
    pub think_time: DistText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    #[serde(default = "zero_duration")]
    pub start: Duration,
    #[serde(default = "default_request_bytes")]
    pub request_bytes: u32,
    #[serde(default = "default_response_bytes")]
    pub response_bytes: u32,
    #[serde(default)]
    pub keep_alive: bool,
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// External flows: distinct client addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<u32>,
    #[serde(default)]
    pub allow_nxdomain: bool,
    /// Kept-alive connections older than this are closed and reopened
    /// (gRPC's MAX_CONNECTION_AGE); absent or 0: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_age: Option<Duration>,
}

fn zero_duration() -> Duration {
    Duration(0)
}
/// 100 B: a `curl` GET's request line and headers (about 80-100 B).
fn default_request_bytes() -> u32 {
    100
}
/// 1 KiB: the message size of the DaoCloud netperf TCP_RR figures the data
/// path is calibrated on (published-figures.md).
fn default_response_bytes() -> u32 {
    1024
}
/// 10 s: a choice (curl itself has no overall timeout by default); long
/// enough that only a saturated server or a dead path reaches it.
fn default_timeout() -> Duration {
    Duration(10_000_000_000)
}

/// Deserializes an enum that is either a scalar or a table, keeping the
/// table's own error messages (an untagged enum would only say "data did
/// not match any variant").
macro_rules! scalar_or_table {
    ($ty:ident, $expect:literal, $scalar:ident($sty:ty) via $visit:ident, $table:ident($tty:ty)) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expect)
                    }
                    fn $visit<E: serde::de::Error>(self, v: $sty) -> Result<$ty, E> {
                        scalar_or_table!(@convert $ty, $scalar, v)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<$ty, A::Error> {
                        <$tty>::deserialize(serde::de::value::MapAccessDeserializer::new(m)).map($ty::$table)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
    (@convert PortToml, $scalar:ident, $v:ident) => {
        u32::try_from($v).map(PortToml::$scalar).map_err(|_| E::custom(format!("port {} is out of range 1-65535", $v)))
    };
    (@convert FromToml, $scalar:ident, $v:ident) => {
        Ok(FromToml::$scalar($v.to_string()))
    };
}

scalar_or_table!(PortToml, "a port number or a table { name, port, protocol }", Number(i64) via visit_i64, Full(PortFull));
scalar_or_table!(FromToml, "\"external\", a pod name, or a table { pod, container, selector, namespace }", Name(&str) via visit_str, Table(FromTable));
