//! What a user asks for: the cluster as declared, before validation.
//!
//! The `emu` binary fills these from TOML and Kubernetes YAML; [`build`]
//! (crate::cluster::build) checks them and produces a [`Cluster`]
//! (crate::cluster::Cluster).

use std::collections::BTreeMap;
use std::fmt;

use crate::addr::{Cidr, Ipv4};

/// Where a declared object came from, for error messages: a file, the line
/// of the object (0 when unknown) and the object's key path in that file
/// (`pods[2]`, or `document 3 (Service myweb)` for YAML).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The file the object was declared in.
    pub file: String,
    /// 1-based line of the object; 0 when unknown.
    pub line: u32,
    /// Key path of the object inside the file.
    pub path: String,
}

impl Origin {
    /// Whether the object is one emu adds itself (CoreDNS, the ingress
    /// controller), not one the user declared.
    pub fn is_builtin(&self) -> bool {
        self.file.starts_with('<')
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.path)
        } else {
            write!(f, "{}: {}", self.file, self.path)
        }
    }
}

/// A validation failure: which object, which field of it, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    /// The object at fault.
    pub origin: Origin,
    /// The field inside the object (`ports[0].node_port`), or empty.
    pub field: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}.{}: {}", self.origin, self.field, self.message)
        }
    }
}

impl std::error::Error for BuildError {}

/// Labels or a selector: an ordered map, so iteration order is stable.
pub type Labels = BTreeMap<String, String>;

/// Transport protocol of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Protocol {
    /// TCP (the default, as in Kubernetes).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP (ports and policies only: no flow sends it).
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// How pods without an explicit node are placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Placement {
    /// Unpinned pods in declaration order go to nodes 0, 1, 2, ... wrapping.
    #[default]
    RoundRobin,
    /// Each unpinned pod goes to a node drawn uniformly from the seeded
    /// placement stream.
    Random,
}

/// A container port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Optional port name (a Service's `targetPort` may refer to it).
    pub name: Option<String>,
    /// Port number, 1..=65535.
    pub port: u32,
    /// Protocol.
    pub protocol: Protocol,
}

/// A container: a name and the ports it listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Container name, unique in its pod.
    pub name: String,
    /// Ports it listens on.
    pub ports: Vec<PortSpec>,
}

/// A pod, or a template of `replicas` identical pods.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSpec {
    /// Where it was declared.
    pub origin: Origin,
    /// Name; with `replicas > 1` the pods are named `name-0`, `name-1`, ...
    pub name: String,
    /// Namespace (must exist).
    pub namespace: String,
    /// Number of pods from this template (ignored with `per_node`).
    pub replicas: u32,
    /// One pod on every node, pinned to it (a DaemonSet): `name-0` on
    /// node-0, `name-1` on node-1, ...
    pub per_node: bool,
    /// The headless Service that gives each pod its own DNS name
    /// `<pod name>.<subdomain>.<namespace>.svc.<domain>` (a StatefulSet's
    /// `serviceName`, a pod's `spec.subdomain`).
    pub subdomain: Option<String>,
    /// Node name to pin to; otherwise placed by the placement policy (or,
    /// with an explicit `ip`, on the node whose pod CIDR holds it).
    pub node: Option<String>,
    /// Explicit pod IP (only with `replicas == 1`).
    pub ip: Option<Ipv4>,
    /// IPVS real-server weight of its endpoints (kube-proxy always writes
    /// 1; other values exist to study the weighted schedulers).
    pub weight: u32,
    /// Labels.
    pub labels: Labels,
    /// Containers; they share one network namespace.
    pub containers: Vec<ContainerSpec>,
    /// How its pods start, stop and roll (a changing cluster's).
    pub lifecycle: crate::dynamics::Lifecycle,
    /// `hostNetwork: true`: its pods live in their node's network
    /// namespace, with the node's IP (no veth, no pod IP).
    pub host_network: bool,
    /// Whether its pods' resolver is cluster DNS (`dnsPolicy` ClusterFirst,
    /// or ClusterFirstWithHostNet for a hostNetwork pod); `false` for
    /// `Default` (the node's resolv.conf) and `None`.
    pub cluster_dns: bool,
}

/// Whether a pod's resolver is cluster DNS, from its `hostNetwork` and its
/// `dnsPolicy` (`None`: the API server's default, ClusterFirst). A
/// hostNetwork pod with ClusterFirst falls back to `Default`, its node's
/// resolv.conf (kubernetes.io, "DNS for Services and Pods": "Pod's DNS
/// Policy"); it needs ClusterFirstWithHostNet for cluster DNS.
pub fn cluster_dns(host_network: bool, dns_policy: Option<&str>) -> Result<bool, String> {
    match dns_policy {
        None | Some("ClusterFirst") => Ok(!host_network),
        Some("ClusterFirstWithHostNet") => Ok(true),
        Some("Default") => Ok(false),
        Some("None") => Err("dnsPolicy `None` takes its resolver from dnsConfig, which emu does not model".into()),
        Some(other) => {
            Err(format!("dnsPolicy `{other}` is not one of ClusterFirst, ClusterFirstWithHostNet, Default, None"))
        }
    }
}

impl PodSpec {
    /// How many pods it makes on a cluster of `nodes` nodes.
    pub fn count(&self, nodes: u32) -> u32 {
        if self.per_node {
            nodes
        } else {
            self.replicas
        }
    }
}

/// A Service's target port: a number or a container port name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    /// A port number.
    Number(u32),
    /// A container port name, resolved per endpoint pod.
    Name(String),
}

impl fmt::Display for TargetPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetPort::Number(n) => write!(f, "{n}"),
            TargetPort::Name(s) => f.write_str(s),
        }
    }
}

/// One port of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePortSpec {
    /// Port name (required by Kubernetes when a Service has several ports).
    pub name: Option<String>,
    /// The Service port, 1..=65535.
    pub port: u32,
    /// Where it goes on the pods; defaults to `port`.
    pub target_port: Option<TargetPort>,
    /// For NodePort Services: the node port, allocated when absent.
    pub node_port: Option<u32>,
    /// Protocol.
    pub protocol: Protocol,
}

/// Service type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    /// A virtual IP inside the cluster.
    #[default]
    ClusterIp,
    /// A ClusterIP plus a port opened on every node.
    NodePort,
    /// A NodePort Service behind an external load balancer with its own IP.
    LoadBalancer,
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceType::ClusterIp => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        })
    }
}

/// externalTrafficPolicy (NodePort and LoadBalancer Services) or
/// internalTrafficPolicy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    /// Any endpoint (external traffic: SNAT to the node, client IP lost).
    #[default]
    Cluster,
    /// Node-local endpoints only (external traffic: client IP kept); no
    /// local endpoint means the traffic is dropped.
    Local,
}

impl fmt::Display for TrafficPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrafficPolicy::Cluster => "Cluster",
            TrafficPolicy::Local => "Local",
        })
    }
}

/// A Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Where it was declared.
    pub origin: Origin,
    /// Name, unique in its namespace; also its DNS name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Type.
    pub kind: ServiceType,
    /// Selector; `None` means no selector (no endpoints are managed).
    pub selector: Option<Labels>,
    /// Explicit ClusterIP, allocated from the service CIDR when absent.
    pub cluster_ip: Option<Ipv4>,
    /// `clusterIP: None`: no virtual IP; DNS answers with the pod IPs.
    pub headless: bool,
    /// `sessionAffinity: ClientIP` with this timeout [s] (1..=86400).
    pub affinity_timeout_s: Option<u32>,
    /// internalTrafficPolicy.
    pub internal_traffic_policy: TrafficPolicy,
    /// Ports.
    pub ports: Vec<ServicePortSpec>,
    /// externalTrafficPolicy.
    pub external_traffic_policy: TrafficPolicy,
    /// A Service without a selector: the endpoints written for it
    /// (EndpointSlice or Endpoints objects), by pod.
    pub manual_endpoints: Vec<ManualEndpoint>,
    /// `type: ExternalName`: the name CoreDNS answers with (a CNAME); the
    /// Service then has no ClusterIP, no ports and no proxy rules.
    pub external_name: Option<String>,
}

/// An endpoint written by hand for a Service without a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualEndpoint {
    /// The pod.
    pub pod: String,
    /// Its namespace, when not the Service's (a targetRef's `namespace`).
    pub namespace: Option<String>,
    /// The Service port it is for, by name (`None`: the unnamed port).
    pub port_name: Option<String>,
    /// The pod port.
    pub port: u32,
    /// Its protocol.
    pub protocol: Protocol,
}

/// The cluster as declared.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Where the cluster settings were declared (for errors on them).
    pub origin: Origin,
    /// Number of nodes, named `node-0` ... `node-{n-1}`.
    pub nodes: u32,
    /// Block node IPs come from: node i gets the (i+1)-th address.
    pub node_ip_cidr: Cidr,
    /// Cluster pod CIDR (kube-controller-manager `--cluster-cidr`).
    pub pod_cidr: Cidr,
    /// Prefix length of each node's pod CIDR (`--node-cidr-mask-size`).
    pub node_cidr_mask_size: u8,
    /// Service CIDR (`--service-cluster-ip-range`).
    pub service_cidr: Cidr,
    /// NodePort range, inclusive (`--service-node-port-range`).
    pub node_port_range: (u32, u32),
    /// Pool of load-balancer IPs handed to LoadBalancer Services in order.
    pub load_balancer_cidr: Cidr,
    /// Placement of unpinned pods.
    pub placement: Placement,
    /// Namespaces besides `default` and `kube-system`.
    pub namespaces: Vec<String>,
    /// Labels of namespaces (any, `default` and `kube-system` included);
    /// `kubernetes.io/metadata.name` is added to every namespace.
    pub namespace_labels: BTreeMap<String, Labels>,
    /// NetworkPolicy objects.
    pub network_policies: Vec<crate::policy::NetworkPolicySpec>,
    /// Pods and pod templates.
    pub pods: Vec<PodSpec>,
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// The ingress controller, deployed when `ingresses` is not empty.
    pub ingress_controller: super::ingress::IngressControllerSpec,
    /// Ingress objects.
    pub ingresses: Vec<super::ingress::IngressSpec>,
    /// CoreDNS replicas behind the `kube-dns` Service in `kube-system`
    /// (0: no cluster DNS, and flows to names are rejected).
    pub dns_replicas: u32,
    /// CoreDNS's lameduck period [ns]: after SIGTERM it keeps answering
    /// this long before it exits.
    pub dns_lameduck_ns: u64,
    /// The `default/kubernetes` Service (the first address of the service
    /// CIDR, `https` 443) and the API server behind it: a hostNetwork pod
    /// `kube-system/kube-apiserver-node-0` listening on 6443 on node-0.
    pub kubernetes_service: bool,
}
