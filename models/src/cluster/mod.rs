//! The cluster: nodes, namespaces, pods and Services, validated and indexed.
//!
//! Built once from a [`ClusterSpec`] by [`build`]; afterwards every lookup
//! the data path needs (pod by IP, Service by name or IP, NodePort owner) is
//! a hash-map probe, and endpoint lists are plain vectors in pod order.
//! Hash maps here are only probed, never iterated, so their order cannot
//! reach any output.

mod build;
pub mod ingress;
mod names;
mod pods;
mod spec;

use crate::hash::HashMap;
use std::sync::Arc;

pub use build::{build, DEFAULT_LAMEDUCK_NS, MAX_NODES, MAX_PODS};
pub use spec::{
    cluster_dns, BuildError, ClusterSpec, ContainerSpec, Labels, ManualEndpoint, Origin, Placement, PodSpec, PortSpec,
    Protocol, ServicePortSpec, ServiceSpec, ServiceType, TargetPort, TrafficPolicy,
};

use crate::addr::{Cidr, Ipv4};
use crate::ids::{EpId, NodeId, PodId, SpId, SvcId};

/// A node: a host with an IP on the node network and a pod CIDR bridged
/// behind `cbr0`.
#[derive(Clone, Debug)]
pub struct Node {
    /// `node-<i>`.
    pub name: String,
    /// Address of `eth0` on the node network.
    pub ip: Ipv4,
    /// This node's slice of the cluster pod CIDR.
    pub pod_cidr: Cidr,
    /// Address of the `cbr0` bridge: the first host address of `pod_cidr`,
    /// the pods' default gateway (kubenet convention).
    pub bridge_ip: Ipv4,
}

/// One listening socket of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// Port number.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Index of the container that owns it.
    pub container: u16,
    /// Port name, if any.
    pub name: Option<String>,
}

/// A pod: one network namespace with one IP, shared by its containers.
#[derive(Clone, Debug)]
pub struct Pod {
    /// Name, unique in its namespace.
    pub name: String,
    /// Namespace index into [`Cluster::namespaces`].
    pub namespace: u32,
    /// Its node.
    pub node: NodeId,
    /// Pod IP.
    pub ip: Ipv4,
    /// Labels (shared by the replicas of one template).
    pub labels: Arc<Labels>,
    /// IPVS weight of its endpoints.
    pub weight: u32,
    /// Container names (shared by the replicas of one template).
    pub containers: Arc<[String]>,
    /// Ports listened on by its containers (shared by the replicas of one
    /// template).
    pub listens: Arc<[Listen]>,
    /// Its workload (index into [`Cluster::workloads`]).
    pub workload: u32,
    /// In its node's network namespace (`hostNetwork`): `ip` is the node's.
    pub host_network: bool,
    /// Its resolver is cluster DNS (see [`PodSpec::cluster_dns`]).
    pub cluster_dns: bool,
}

/// A workload: the pods of one `[[pods]]` entry or Deployment (or CoreDNS,
/// or the ingress controller), which a changing cluster rolls, scales and
/// replaces.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Where it was declared.
    pub origin: Origin,
    /// Name (its pods are `name`, or `name-0`, `name-1`, ...).
    pub name: String,
    /// Namespace index.
    pub namespace: u32,
    /// Its pods at time 0, in pod order.
    pub pods: Vec<PodId>,
    /// Whether its pods are pinned to a node (`node` or `ip`).
    pub pinned: bool,
    /// How its pods start, stop and roll.
    pub lifecycle: crate::dynamics::Lifecycle,
}

impl Pod {
    /// The listening socket on `port`/`protocol`, if any.
    #[inline]
    pub fn listens_on(&self, port: u16, protocol: Protocol) -> Option<&Listen> {
        self.listens.iter().find(|l| l.port == port && l.protocol == protocol)
    }
}

/// An endpoint of a Service port: a ready pod and the port on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod.
    pub pod: PodId,
    /// Target port on the pod.
    pub port: u16,
    /// The pod's IPVS weight.
    pub weight: u32,
}

/// One port of a Service, with its endpoints.
#[derive(Clone, Debug)]
pub struct ServicePort {
    /// Owning Service.
    pub service: SvcId,
    /// Port name.
    pub name: Option<String>,
    /// The Service port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// The target port as declared.
    pub target_port: TargetPort,
    /// Node port, for NodePort Services.
    pub node_port: Option<u16>,
    /// Endpoints in pod order, indexed by [`EpId`].
    pub endpoints: Vec<Endpoint>,
    /// For Services with a Local traffic policy: node -> its endpoints on
    /// that node (empty map otherwise).
    pub local: HashMap<NodeId, Vec<EpId>>,
}

impl ServicePort {
    /// The endpoints on `node` (Local traffic policies only).
    pub fn local_endpoints(&self, node: NodeId) -> &[EpId] {
        self.local.get(&node).map_or(&[], Vec::as_slice)
    }
}

/// A Service.
#[derive(Clone, Debug)]
pub struct Service {
    /// Where it was declared.
    pub origin: Origin,
    /// Name.
    pub name: String,
    /// Namespace index.
    pub namespace: u32,
    /// Type.
    pub kind: ServiceType,
    /// The virtual IP; `None` for a headless Service.
    pub cluster_ip: Option<Ipv4>,
    /// The load balancer's IP (`status.loadBalancer.ingress[0].ip`).
    pub load_balancer_ip: Option<Ipv4>,
    /// healthCheckNodePort (LoadBalancer with externalTrafficPolicy Local).
    pub health_check_node_port: Option<u16>,
    /// externalTrafficPolicy.
    pub external_traffic_policy: TrafficPolicy,
    /// internalTrafficPolicy.
    pub internal_traffic_policy: TrafficPolicy,
    /// `sessionAffinity: ClientIP` timeout [ns].
    pub affinity_timeout_ns: Option<u64>,
    /// Its ports in [`Cluster::service_ports`].
    pub ports: Vec<SpId>,
    /// `type: ExternalName`: the CNAME target (lower case); such a Service
    /// has no ClusterIP, no ports and no rules.
    pub external_name: Option<String>,
}

/// The built, validated cluster.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// Nodes.
    pub nodes: Vec<Node>,
    /// The node network the nodes' `eth0` addresses come from.
    pub node_network: Cidr,
    /// Namespace names; index 0 is `default`, 1 is `kube-system`.
    pub namespaces: Vec<String>,
    /// Each namespace's labels, `kubernetes.io/metadata.name` included.
    pub namespace_labels: Vec<Labels>,
    /// The NetworkPolicies, compiled.
    pub policies: crate::policy::Policies,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Services.
    pub services: Vec<Service>,
    /// Every port of every Service, in Service order.
    pub service_ports: Vec<ServicePort>,
    /// The `kube-dns` Service, when cluster DNS is enabled.
    pub dns_service: Option<SvcId>,
    /// Ingress objects, backends resolved.
    pub ingresses: Vec<ingress::Ingress>,
    /// The ingress controller's Service, when there are Ingresses.
    pub ingress_service: Option<SvcId>,
    /// Non-fatal findings (a selector that matches nothing, ...).
    pub warnings: Vec<String>,
    /// Workloads, in declaration order (user pods, CoreDNS, the ingress
    /// controller).
    pub workloads: Vec<Workload>,
    /// The placement policy (new pods of a changing cluster follow it).
    pub placement: Placement,
    pub(crate) pod_by_ip: HashMap<Ipv4, PodId>,
    pub(crate) node_by_ip: HashMap<Ipv4, NodeId>,
    pub(crate) node_by_bridge_ip: HashMap<Ipv4, NodeId>,
    pub(crate) node_by_name: HashMap<String, NodeId>,
    pub(crate) pod_by_name: names::PodNames,
    pub(crate) service_by_name: HashMap<(u32, String), SvcId>,
    /// The pods that have a subdomain (a per-pod DNS name), and it.
    pub(crate) pod_subdomain: HashMap<PodId, String>,
    pub(crate) service_by_ip: HashMap<Ipv4, SvcId>,
    pub(crate) port_by_node_port: HashMap<u16, SpId>,
    pub(crate) service_by_lb_ip: HashMap<Ipv4, SvcId>,
    pub(crate) labels: build::LabelIndex,
}

impl Service {
    /// Whether it has a virtual IP (is not headless).
    pub fn has_cluster_ip(&self) -> bool {
        self.cluster_ip.is_some()
    }
}

impl Cluster {
    /// The pod whose own DNS name is `host.subdomain` in namespace `ns`
    /// (`web-0.nginx`): a pod named `host` whose subdomain is `subdomain`.
    pub fn pod_by_hostname(&self, ns: u32, subdomain: &str, host: &str) -> Option<PodId> {
        let pod = self.pod_by_name(ns, host)?;
        (self.pod_subdomain.get(&pod).map(String::as_str) == Some(subdomain)).then_some(pod)
    }
    /// Pod at `ip`.
    pub fn pod_by_ip(&self, ip: Ipv4) -> Option<PodId> {
        self.pod_by_ip.get(&ip).copied()
    }
    /// Node whose `eth0` is `ip`.
    pub fn node_by_ip(&self, ip: Ipv4) -> Option<NodeId> {
        self.node_by_ip.get(&ip).copied()
    }
    /// Node whose `cbr0` bridge has address `ip`.
    pub fn node_by_bridge_ip(&self, ip: Ipv4) -> Option<NodeId> {
        self.node_by_bridge_ip.get(&ip).copied()
    }
    /// Workload `name` in namespace `ns`.
    pub fn workload_by_name(&self, ns: u32, name: &str) -> Option<u32> {
        self.workloads.iter().position(|w| w.namespace == ns && w.name == name).map(|i| i as u32)
    }
    /// Node named `name`.
    pub fn node_by_name(&self, name: &str) -> Option<NodeId> {
        self.node_by_name.get(name).copied()
    }
    /// Namespace index of `name`.
    pub fn namespace(&self, name: &str) -> Option<u32> {
        self.namespaces.iter().position(|n| n == name).map(|i| i as u32)
    }
    /// Pod `name` in namespace `ns`.
    pub fn pod_by_name(&self, ns: u32, name: &str) -> Option<PodId> {
        self.pod_by_name.get(ns, name, |id| {
            let p = &self.pods[id.index()];
            (p.namespace, p.name.as_str())
        })
    }
    /// Service `name` in namespace `ns`.
    pub fn service_by_name(&self, ns: u32, name: &str) -> Option<SvcId> {
        self.service_by_name.get(&(ns, name.to_string())).copied()
    }
    /// Service whose ClusterIP is `ip`.
    pub fn service_by_ip(&self, ip: Ipv4) -> Option<SvcId> {
        self.service_by_ip.get(&ip).copied()
    }
    /// The Service port of Service `svc` with number `port` and `protocol`.
    pub fn service_port(&self, svc: SvcId, port: u16, protocol: Protocol) -> Option<SpId> {
        self.services[svc.index()]
            .ports
            .iter()
            .copied()
            .find(|&p| self.service_ports[p.index()].port == port && self.service_ports[p.index()].protocol == protocol)
    }
    /// The LoadBalancer Service whose load balancer IP is `ip`.
    pub fn service_by_lb_ip(&self, ip: Ipv4) -> Option<SvcId> {
        self.service_by_lb_ip.get(&ip).copied()
    }
    /// The Service port that owns node port `port`.
    pub fn port_by_node_port(&self, port: u16) -> Option<SpId> {
        self.port_by_node_port.get(&port).copied()
    }
    /// Pods whose labels match `selector` in namespace `ns`, in pod order.
    pub fn select(&self, ns: u32, selector: &Labels) -> Vec<PodId> {
        if selector.is_empty() {
            return (0..self.pods.len()).filter(|&p| self.pods[p].namespace == ns).map(PodId::from_index).collect();
        }
        self.labels.select(&self.pods, ns, selector)
    }
    /// "namespace/name" of a pod.
    pub fn pod_ref(&self, pod: PodId) -> String {
        let p = &self.pods[pod.index()];
        format!("{}/{}", self.namespaces[p.namespace as usize], p.name)
    }
    /// "namespace/name" of a Service.
    pub fn service_ref(&self, svc: SvcId) -> String {
        let s = &self.services[svc.index()];
        format!("{}/{}", self.namespaces[s.namespace as usize], s.name)
    }
}

/// Small cluster builders for tests and benchmarks.
pub mod testing {
    use super::*;

    /// The default cluster settings with `nodes` nodes and one CoreDNS
    /// replica, no pods and no Services.
    pub fn spec(nodes: u32) -> ClusterSpec {
        ClusterSpec {
            origin: Origin { file: "test".into(), line: 0, path: "cluster".into() },
            nodes,
            node_ip_cidr: "192.168.0.0/16".parse().unwrap(),
            pod_cidr: "10.244.0.0/16".parse().unwrap(),
            node_cidr_mask_size: 24,
            service_cidr: "10.96.0.0/12".parse().unwrap(),
            node_port_range: (30000, 32767),
            load_balancer_cidr: "203.0.113.0/24".parse().unwrap(),
            placement: Placement::RoundRobin,
            namespaces: vec![],
            namespace_labels: Default::default(),
            network_policies: vec![],
            pods: vec![],
            services: vec![],
            dns_replicas: 1,
            dns_lameduck_ns: DEFAULT_LAMEDUCK_NS,
            // Unit tests count Services and ports from their own; the
            // e2e tests run with it.
            kubernetes_service: false,
            ingress_controller: Default::default(),
            ingresses: vec![],
        }
    }

    /// A pod template `name` with `replicas` pods labelled `app=<name>`,
    /// one container listening on TCP `port`.
    pub fn pods(name: &str, replicas: u32, port: u32) -> PodSpec {
        PodSpec {
            origin: Origin { file: "test".into(), line: 0, path: format!("pods.{name}") },
            name: name.into(),
            namespace: "default".into(),
            replicas,
            per_node: false,
            host_network: false,
            cluster_dns: true,
            subdomain: None,
            node: None,
            ip: None,
            weight: 1,
            labels: [("app".to_string(), name.to_string())].into_iter().collect(),
            containers: vec![ContainerSpec {
                name: "main".into(),
                ports: vec![PortSpec { name: Some("http".into()), port, protocol: Protocol::Tcp }],
            }],
            lifecycle: Default::default(),
        }
    }

    /// A ClusterIP Service `name` selecting `app=<app>`, port 80 -> `target`.
    pub fn service(name: &str, app: &str, target: u32) -> ServiceSpec {
        ServiceSpec {
            origin: Origin { file: "test".into(), line: 0, path: format!("services.{name}") },
            name: name.into(),
            namespace: "default".into(),
            kind: ServiceType::ClusterIp,
            selector: Some([("app".to_string(), app.to_string())].into_iter().collect()),
            cluster_ip: None,
            headless: false,
            affinity_timeout_s: None,
            internal_traffic_policy: TrafficPolicy::Cluster,
            ports: vec![ServicePortSpec {
                name: None,
                port: 80,
                target_port: Some(TargetPort::Number(target)),
                node_port: None,
                protocol: Protocol::Tcp,
            }],
            external_traffic_policy: TrafficPolicy::Cluster,
            manual_endpoints: Vec::new(),
            external_name: None,
        }
    }

    /// `services` Services that all select the same `endpoints` pods.
    pub fn services_cluster(nodes: u32, services: u32, endpoints: u32) -> Cluster {
        let mut s = spec(nodes);
        s.pods.push(pods("backend", endpoints, 8080));
        s.services = (0..services).map(|i| service(&format!("svc-{i}"), "backend", 8080)).collect();
        build(&s, 1).expect("test cluster builds")
    }
}

#[cfg(test)]
mod tests;
