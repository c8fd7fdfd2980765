//! Validation and construction of a [`Cluster`] from a [`ClusterSpec`]:
//! node and pod IPAM, placement, ClusterIP and NodePort allocation, and
//! endpoint selection. Near-linear in pods and Services: selectors are
//! answered from a label index, never by scanning every pod per Service.

use crate::hash::{HashMap, HashSet};
use std::sync::Arc;

use emu_engine::rng::{Domain, Stream};
use rayon::prelude::*;

use super::ingress::{BackendPort, Ingress, IngressControllerSpec, IngressPath, IngressRule};
use super::names::PodNames;
use super::pods::{place_pods, pod_names, Pending};
use super::spec::*;
use super::{Cluster, Endpoint, Node, Pod, Service, ServicePort, Workload};
use crate::addr::Ipv4;
use crate::ids::{EpId, NodeId, PodId, SpId, SvcId};

/// Random-stream domain of the placement policy.
const PLACEMENT: Domain = Domain(0x504c_4143); // "PLAC"

pub(super) fn err(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> BuildError {
    BuildError { origin: origin.clone(), field: field.into(), message: message.into() }
}

/// Pods by label: key -> value -> namespace -> pods (in pod order). Nested
/// so lookups take `&str` without allocating; probed, never iterated.
#[derive(Clone, Debug, Default)]
pub(crate) struct LabelIndex(HashMap<String, HashMap<String, HashMap<u32, Vec<PodId>>>>);

impl LabelIndex {
    fn new(pods: &[Pod]) -> LabelIndex {
        let mut idx: HashMap<String, HashMap<String, HashMap<u32, Vec<PodId>>>> = HashMap::default();
        // Replicas of a template share one label set and sit side by side:
        // each run of them is looked up once per label.
        let mut start = 0;
        while start < pods.len() {
            let p = &pods[start];
            let same = |q: &Pod| Arc::ptr_eq(&q.labels, &p.labels) && q.namespace == p.namespace;
            let end = start + pods[start..].iter().take_while(|q| same(q)).count();
            for (k, v) in p.labels.iter() {
                let values = match idx.get_mut(k.as_str()) {
                    Some(m) => m,
                    None => idx.entry(k.clone()).or_default(),
                };
                let nss = match values.get_mut(v.as_str()) {
                    Some(m) => m,
                    None => values.entry(v.clone()).or_default(),
                };
                nss.entry(p.namespace).or_default().extend((start..end).map(PodId::from_index));
            }
            start = end;
        }
        LabelIndex(idx)
    }

    /// Pods of namespace `ns` matching every pair of `sel` (non-empty), in
    /// pod order: the shortest posting list, filtered.
    pub(crate) fn select(&self, pods: &[Pod], ns: u32, sel: &Labels) -> Vec<PodId> {
        let mut best: Option<&Vec<PodId>> = None;
        for (k, v) in sel {
            match self.0.get(k.as_str()).and_then(|m| m.get(v.as_str())).and_then(|m| m.get(&ns)) {
                None => return Vec::new(),
                Some(l) if best.is_none_or(|b| l.len() < b.len()) => best = Some(l),
                Some(_) => {}
            }
        }
        match best {
            Some(list) => list.iter().copied().filter(|&p| matches(sel, &pods[p.index()].labels)).collect(),
            None => Vec::new(),
        }
    }
}

/// Whether `labels` satisfy every pair of `selector`.
pub(crate) fn matches(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Most nodes a cluster may have (emu's limit: 7.7x the largest
/// published cluster, GKE's 130,000 nodes).
pub const MAX_NODES: u32 = 1_000_000;

/// Most pods a cluster may have, CoreDNS and the ingress controller
/// included (emu's limit: about 1.6 KB each at run time, 32 GB at the limit).
pub const MAX_PODS: u64 = 20_000_000;

/// CoreDNS's default lameduck period [ns]: `health { lameduck 5s }` in the
/// Corefile kubeadm installs.
pub const DEFAULT_LAMEDUCK_NS: u64 = 5_000_000_000;

/// Refuses a cluster of more than [`MAX_PODS`] pods before any is made,
/// naming the template with the most replicas.
fn check_pod_count(spec: &ClusterSpec) -> Result<(), BuildError> {
    let builtin =
        [(spec.dns_replicas, "dns.replicas"), (spec.ingress_controller.replicas, "ingress_controller.replicas")];
    let total: u64 = spec.pods.iter().map(|p| p.count(spec.nodes) as u64).sum::<u64>()
        + builtin.iter().map(|(r, _)| *r as u64).sum::<u64>();
    if total <= MAX_PODS {
        return Ok(());
    }
    let message = format!("the cluster would have {total} pods, more than emu's limit of {MAX_PODS}");
    let biggest = spec.pods.iter().max_by_key(|p| p.count(spec.nodes));
    match builtin.iter().max_by_key(|(r, _)| *r) {
        Some(&(r, key)) if biggest.is_none_or(|p| r > p.count(spec.nodes)) => {
            let origin = Origin { file: spec.origin.file.clone(), line: 0, path: key.into() };
            Err(err(&origin, "", message))
        }
        _ => {
            let p = biggest.expect("more pods than the limit come from some template");
            Err(err(&p.origin, "replicas", message))
        }
    }
}

/// An error about a resource the cluster's address space or port range ran
/// out of: blamed on the object `o` the user declared, or, when emu added
/// that object itself, on the cluster key `cluster_key` whose size caused it.
pub(super) fn exhausted(
    o: &Origin,
    co: &Origin,
    field: impl Into<String>,
    cluster_key: &str,
    message: String,
) -> BuildError {
    if o.is_builtin() {
        err(co, cluster_key, format!("{message} (by {}, which emu adds itself)", o.file.trim_matches(['<', '>'])))
    } else {
        err(o, field, message)
    }
}

fn check_name(origin: &Origin, field: &str, name: &str) -> Result<(), BuildError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(err(
            origin,
            field,
            format!("`{name}` is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')"),
        ))
    }
}

pub(super) fn port16(origin: &Origin, field: &str, port: u32) -> Result<u16, BuildError> {
    if (1..=65535).contains(&port) {
        Ok(port as u16)
    } else {
        Err(err(origin, field, format!("port {port} is out of range 1-65535")))
    }
}

/// Validates `spec` and builds the cluster. `seed` drives the `random`
/// placement policy.
pub fn build(spec: &ClusterSpec, seed: u64) -> Result<Cluster, BuildError> {
    let co = &spec.origin;
    let mut warnings = Vec::new();

    // Namespaces.
    let mut namespaces = vec!["default".to_string(), "kube-system".to_string()];
    for (i, ns) in spec.namespaces.iter().enumerate() {
        check_name(co, &format!("namespaces[{i}]"), ns)?;
        if !namespaces.contains(ns) {
            namespaces.push(ns.clone());
        }
    }

    // Nodes and their pod CIDRs.
    if spec.nodes == 0 {
        return Err(err(co, "nodes", "a cluster needs at least one node"));
    }
    if spec.nodes > MAX_NODES {
        return Err(err(co, "nodes", format!("{} nodes is more than emu's limit of {MAX_NODES}", spec.nodes)));
    }
    check_pod_count(spec)?;
    if spec.node_cidr_mask_size < spec.pod_cidr.prefix || spec.node_cidr_mask_size > 30 {
        return Err(err(
            co,
            "node_cidr_mask_size",
            format!(
                "/{} does not fit inside pod CIDR {} (or leaves no room for pods)",
                spec.node_cidr_mask_size, spec.pod_cidr
            ),
        ));
    }
    let room = spec.pod_cidr.subnets(spec.node_cidr_mask_size);
    if spec.nodes as u64 > room {
        return Err(err(
            co,
            "pod_cidr",
            format!(
                "pod CIDR {} split into /{} blocks has room for {room} nodes, but the cluster has {}; \
                 use a larger pod_cidr (e.g. a /12) or a longer node_cidr_mask_size",
                spec.pod_cidr, spec.node_cidr_mask_size, spec.nodes
            ),
        ));
    }
    if spec.nodes as u64 + 2 > spec.node_ip_cidr.size() {
        return Err(err(co, "node_ip_cidr", format!("{} has no room for {} node IPs", spec.node_ip_cidr, spec.nodes)));
    }
    if spec.pod_cidr.contains(spec.service_cidr.base) || spec.service_cidr.contains(spec.pod_cidr.base) {
        return Err(err(
            co,
            "service_cidr",
            format!("service CIDR {} overlaps pod CIDR {}", spec.service_cidr, spec.pod_cidr),
        ));
    }
    let nodes: Vec<Node> = (0..spec.nodes as u64)
        .map(|i| {
            let pod_cidr = spec.pod_cidr.subnet(spec.node_cidr_mask_size, i);
            Node { name: format!("node-{i}"), ip: spec.node_ip_cidr.nth(i + 1), pod_cidr, bridge_ip: pod_cidr.nth(1) }
        })
        .collect();
    let node_by_name: HashMap<String, NodeId> =
        nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), NodeId::from_index(i))).collect();
    let (lo, hi) = spec.node_port_range;
    if !(1..=65535).contains(&lo) || !(1..=65535).contains(&hi) || lo > hi {
        return Err(err(co, "node_port_range", format!("{lo}-{hi} is not a valid port range")));
    }

    // kube-dns takes the tenth address of the service CIDR (kubeadm's
    // choice), and the broadcast address is not allocatable.
    if spec.dns_replicas > 0 && spec.service_cidr.size() < 12 {
        return Err(err(
            co,
            "service_cidr",
            format!(
                "service CIDR {} has {} address(es), but kube-dns takes the tenth (.10): use a /28 or larger",
                spec.service_cidr,
                spec.service_cidr.size()
            ),
        ));
    }

    // Pods: expand templates (user pods first, then CoreDNS), pin or place.
    let mut workloads: Vec<Workload> = Vec::new();
    let dns_spec = coredns_spec(spec.dns_replicas, spec.dns_lameduck_ns);
    let ingress_on = !spec.ingresses.is_empty() && spec.ingress_controller.replicas > 0;
    let ingress_pods = ingress_on.then(|| controller_pods(&spec.ingress_controller));
    if ingress_on {
        // The scenario's `[ingress_controller]` table, for errors in its keys.
        let table = Origin { file: co.file.clone(), line: 0, path: "ingress_controller".into() };
        check_name(&table, "namespace", &spec.ingress_controller.namespace)?;
    }
    if ingress_on && !namespaces.contains(&spec.ingress_controller.namespace) {
        namespaces.push(spec.ingress_controller.namespace.clone());
    }
    let ns_index = |name: &str| namespaces.iter().position(|n| n == name).map(|i| i as u32);
    let api_spec = spec.kubernetes_service.then(api_server_spec);
    let mut pending: Vec<Pending> = Vec::new();
    for ps in spec.pods.iter().chain(dns_spec.iter()).chain(ingress_pods.iter()).chain(api_spec.iter()) {
        let o = &ps.origin;
        check_name(o, "name", &ps.name)?;
        let ns = ns_index(&ps.namespace).ok_or_else(|| {
            err(
                o,
                "namespace",
                format!("namespace `{}` does not exist; declare it in cluster.namespaces", ps.namespace),
            )
        })?;
        let replicas = ps.count(spec.nodes);
        if replicas == 0 {
            continue;
        }
        if ps.per_node && (ps.ip.is_some() || ps.node.is_some()) {
            return Err(err(o, "node", "a pod on every node (a DaemonSet) cannot be pinned to a node or an IP"));
        }
        if ps.ip.is_some() && replicas > 1 {
            return Err(err(o, "ip", "an explicit pod IP needs replicas = 1"));
        }
        if ps.ip.is_some() && ps.host_network {
            return Err(err(o, "ip", "a hostNetwork pod has its node's IP, not a pod IP of its own"));
        }
        if ps.containers.is_empty() {
            return Err(err(o, "containers", "a pod needs at least one container"));
        }
        let mut node = match &ps.node {
            Some(n) => Some(*node_by_name.get(n).ok_or_else(|| {
                err(o, "node", format!("no node `{n}` (nodes are node-0 .. node-{})", spec.nodes - 1))
            })?),
            None => None,
        };
        if let Some(ip) = ps.ip {
            let owner = nodes.iter().position(|n| n.pod_cidr.contains(ip)).map(NodeId::from_index);
            match (owner, node) {
                (None, _) => {
                    return Err(err(
                        o,
                        "ip",
                        format!("{ip} is in no node's pod CIDR (cluster pod CIDR {})", spec.pod_cidr),
                    ))
                }
                (Some(a), Some(b)) if a != b => {
                    return Err(err(
                        o,
                        "ip",
                        format!(
                            "{ip} belongs to {} ({}), not to {}",
                            nodes[a.index()].name,
                            nodes[a.index()].pod_cidr,
                            nodes[b.index()].name
                        ),
                    ))
                }
                (Some(a), _) => node = Some(a),
            }
        }
        let workload = workloads.len() as u32;
        let first = pending.len();
        workloads.push(Workload {
            origin: ps.origin.clone(),
            name: ps.name.clone(),
            namespace: ns,
            pods: (first..first + replicas as usize).map(PodId::from_index).collect(),
            pinned: node.is_some() || ps.per_node,
            lifecycle: ps.lifecycle.clone(),
        });
        for r in 0..replicas {
            let name = if replicas == 1 && !ps.per_node { ps.name.clone() } else { format!("{}-{r}", ps.name) };
            let node = if ps.per_node { Some(NodeId::new(r)) } else { node };
            pending.push(Pending { spec: ps, name, ns, node, workload });
        }
    }
    let mut rng = Stream::new(seed, PLACEMENT, 0);
    let mut next_rr = 0u64;
    for p in pending.iter_mut().filter(|p| p.node.is_none()) {
        p.node = Some(match spec.placement {
            Placement::RoundRobin => {
                let n = next_rr % spec.nodes as u64;
                next_rr += 1;
                NodeId::new(n as u32)
            }
            Placement::Random => NodeId::new(rng.below(spec.nodes as u64) as u32),
        });
    }

    // Pod IPs: explicit ones reserved first, then each node hands out the
    // lowest free address from .2 up (.0 is the network, .1 the bridge, the
    // last the broadcast address).
    let mut pod_by_ip: HashMap<Ipv4, PodId> = crate::hash::with_capacity(pending.len());
    let mut reserved: Vec<HashSet<u64>> = vec![HashSet::default(); nodes.len()];
    for (i, p) in pending.iter().enumerate() {
        if let Some(ip) = p.spec.ip {
            let node = &nodes[p.node.unwrap().index()];
            let off = node.pod_cidr.offset(ip);
            if off < 2 || off + 1 >= node.pod_cidr.size() {
                return Err(err(
                    &p.spec.origin,
                    "ip",
                    format!("{ip} is reserved in {} (network, bridge cbr0 or broadcast address)", node.pod_cidr),
                ));
            }
            if let Some(&other) = pod_by_ip.get(&ip) {
                return Err(err(
                    &p.spec.origin,
                    "ip",
                    format!("{ip} is already the IP of pod {}", pending[other.index()].name),
                ));
            }
            pod_by_ip.insert(ip, PodId::from_index(i));
            reserved[p.node.unwrap().index()].insert(off);
        }
    }
    // Two passes side by side: names (and their duplicates), and
    // addresses and pod records. Each stops at its first error in pod
    // order; the earlier pod's error wins, as in one pass (at one pod: its
    // address, then its name, then its template).
    let (names, placed) = rayon::join(|| pod_names(&pending), || place_pods(co, &nodes, &pending, reserved, pod_by_ip));
    let (pod_by_name, duplicate) = names;
    let placed = match (placed, duplicate) {
        (Err((i, rank, _)), Some(d)) if (d, 1) < (i, rank) => Err(d),
        (Ok(_), Some(d)) => Err(d),
        (Err((_, _, e)), _) => return Err(e),
        (Ok(placed), None) => Ok(placed),
    };
    let (pods, pod_by_ip, pod_subdomain) = placed.map_err(|d| {
        let p = &pending[d];
        err(
            &p.spec.origin,
            "name",
            format!("pod `{}` is declared twice in namespace `{}`", p.name, namespaces[p.ns as usize]),
        )
    })?;
    host_ports_free(&pods, &pending.iter().map(|p| p.spec).collect::<Vec<_>>())?;

    let labels = LabelIndex::new(&pods);

    // Services: ClusterIPs, node ports, endpoints.
    let dns_svc = dns_service_spec(spec);
    let ingress_svc = ingress_on.then(|| controller_service(&spec.ingress_controller));
    let api_svc = spec.kubernetes_service.then(|| kubernetes_service_spec(spec));
    let all_services: Vec<&ServiceSpec> =
        dns_svc.iter().chain(api_svc.iter()).chain(spec.services.iter()).chain(ingress_svc.iter()).collect();
    let scidr = spec.service_cidr;
    let mut service_by_ip: HashMap<Ipv4, SvcId> = HashMap::default();
    let mut service_by_name: HashMap<(u32, String), SvcId> = HashMap::default();
    let mut used_node_ports: HashMap<u16, SvcId> = HashMap::default();
    // Reserved: network, .1 (the `kubernetes` Service), .10 (kube-dns), broadcast.
    let reserved_ips: HashSet<u64> = [0, 1, 10, scidr.size() - 1].into_iter().collect();
    for (si, s) in all_services.iter().enumerate() {
        if let Some(ip) = s.cluster_ip {
            if !scidr.contains(ip) {
                return Err(err(&s.origin, "cluster_ip", format!("{ip} is outside the service CIDR {scidr}")));
            }
            let off = scidr.offset(ip);
            let kubernetes = api_svc.as_ref().is_some_and(|k| std::ptr::eq(k, *s));
            if off == 0 || (off == 1 && !kubernetes) || off + 1 == scidr.size() {
                return Err(err(
                    &s.origin,
                    "cluster_ip",
                    format!("{ip} is reserved in {scidr} (network, the `kubernetes` Service, or broadcast address)"),
                ));
            }
            if let Some(&o) = service_by_ip.get(&ip) {
                return Err(err(
                    &s.origin,
                    "cluster_ip",
                    format!("{ip} is already the ClusterIP of Service `{}`", all_services[o.index()].name),
                ));
            }
            service_by_ip.insert(ip, SvcId::from_index(si));
        }
        for (pi, p) in s.ports.iter().enumerate() {
            if let Some(np) = p.node_port {
                let field = format!("ports[{pi}].node_port");
                if s.kind == ServiceType::ClusterIp {
                    return Err(err(
                        &s.origin,
                        field,
                        "node_port is only allowed on NodePort and LoadBalancer Services",
                    ));
                }
                if np < lo || np > hi {
                    return Err(err(&s.origin, field, format!("node port {np} is outside the range {lo}-{hi}")));
                }
                if let Some(&o) = used_node_ports.get(&(np as u16)) {
                    return Err(err(
                        &s.origin,
                        field,
                        format!("node port {np} is already used by Service `{}`", all_services[o.index()].name),
                    ));
                }
                used_node_ports.insert(np as u16, SvcId::from_index(si));
            }
        }
    }
    let mut next_ip: u64 = 2;
    let mut next_lb: u64 = 0;
    let mut service_by_lb_ip: HashMap<Ipv4, SvcId> = HashMap::default();
    let mut next_node_port: u32 = lo;
    let mut services: Vec<Service> = Vec::with_capacity(all_services.len());
    let mut service_ports: Vec<ServicePort> = Vec::new();
    let mut port_by_node_port: HashMap<u16, SpId> = HashMap::default();
    // Endpoint selection, the costly part at scale, runs in parallel; its
    // results are used in declaration order, so the outcome is the same on
    // any number of threads.
    let mut selections: Vec<Option<Vec<PodId>>> = all_services
        .par_iter()
        .map(|s| match (&s.selector, ns_index(&s.namespace)) {
            (Some(sel), Some(ns)) if !sel.is_empty() => Some(labels.select(&pods, ns, sel)),
            _ => None,
        })
        .collect();
    for (si, s) in all_services.iter().enumerate() {
        let o = &s.origin;
        check_name(o, "name", &s.name)?;
        let ns = ns_index(&s.namespace).ok_or_else(|| {
            err(o, "namespace", format!("namespace `{}` does not exist; declare it in cluster.namespaces", s.namespace))
        })?;
        if let Some(other) = service_by_name.insert((ns, s.name.clone()), SvcId::from_index(si)) {
            let why = if all_services[other.index()].origin.is_builtin() {
                "; emu creates it (kube-dns, or `kubernetes`: set cluster.kubernetes_service = false to declare your own)"
            } else {
                ""
            };
            return Err(err(
                o,
                "name",
                format!("Service `{}` is declared twice in namespace `{}`{why}", s.name, s.namespace),
            ));
        }
        if let Some(target) = &s.external_name {
            services.push(external_name_service(o, s, ns, target)?);
            continue;
        }
        if s.ports.is_empty() {
            return Err(err(o, "ports", "a Service needs at least one port"));
        }
        if s.headless && (s.cluster_ip.is_some() || s.kind != ServiceType::ClusterIp) {
            return Err(err(o, "cluster_ip", "a headless Service (clusterIP None) must be of type ClusterIP"));
        }
        if s.kind == ServiceType::ClusterIp && s.external_traffic_policy == TrafficPolicy::Local {
            return Err(err(
                o,
                "external_traffic_policy",
                "externalTrafficPolicy applies to NodePort and LoadBalancer Services only",
            ));
        }
        if let Some(t) = s.affinity_timeout_s {
            if !(1..=86_400).contains(&t) {
                return Err(err(o, "session_affinity_timeout", format!("{t} s is outside 1-86400 s")));
            }
        }
        let cluster_ip = match s.cluster_ip {
            _ if s.headless => None,
            Some(ip) => Some(ip),
            None => Some({
                while next_ip >= scidr.size()
                    || reserved_ips.contains(&next_ip)
                    || service_by_ip.contains_key(&scidr.nth(next_ip))
                {
                    next_ip += 1;
                    if next_ip >= scidr.size() {
                        return Err(exhausted(
                            o,
                            co,
                            "",
                            "service_cidr",
                            format!("service CIDR {scidr} is full: no ClusterIP left for Service `{}`", s.name),
                        ));
                    }
                }
                let ip = scidr.nth(next_ip);
                service_by_ip.insert(ip, SvcId::from_index(si));
                ip
            }),
        };
        let load_balancer_ip = if s.kind == ServiceType::LoadBalancer {
            next_lb += 1;
            if next_lb + 1 >= spec.load_balancer_cidr.size() {
                return Err(exhausted(
                    o,
                    co,
                    "",
                    "load_balancer_cidr",
                    format!("load balancer pool {} is exhausted", spec.load_balancer_cidr),
                ));
            }
            let ip = spec.load_balancer_cidr.nth(next_lb);
            service_by_lb_ip.insert(ip, SvcId::from_index(si));
            Some(ip)
        } else {
            None
        };
        let mut alloc_node_port = |used: &mut HashMap<u16, SvcId>, field: String| -> Result<u16, BuildError> {
            while used.contains_key(&(next_node_port as u16)) && next_node_port <= hi {
                next_node_port += 1;
            }
            if next_node_port > hi {
                return Err(exhausted(
                    o,
                    co,
                    field,
                    "node_port_range",
                    format!("node port range {lo}-{hi} is exhausted"),
                ));
            }
            used.insert(next_node_port as u16, SvcId::from_index(si));
            Ok(next_node_port as u16)
        };
        let manual = manual_pods(o, s, &namespaces, &pod_by_name, &pending)?;
        let selected: Vec<PodId> = match selections[si].take() {
            Some(selected) => selected,
            None if !manual.is_empty() => manual.iter().map(|m| m.0).collect(),
            None => {
                warnings.push(format!("{o}: Service `{}` has no selector, so it has no endpoints", s.name));
                Vec::new()
            }
        };
        if s.selector.as_ref().is_some_and(|sel| !sel.is_empty()) && selected.is_empty() {
            // A headless Service has no REJECT rule: CoreDNS has no address for it.
            let outcome = if s.headless {
                "lookups of it fail with nxdomain"
            } else {
                "connections to it fail with no_endpoints"
            };
            warnings.push(format!(
                "{o}: selector {} of Service `{}` matches no pod in namespace `{}`: {outcome}",
                fmt_labels(s.selector.as_ref().unwrap()),
                s.name,
                s.namespace
            ));
        }
        let mut port_ids = Vec::with_capacity(s.ports.len());
        for (pi, p) in s.ports.iter().enumerate() {
            let port = port16(o, &format!("ports[{pi}].port"), p.port)?;
            if s.ports[..pi].iter().any(|q| q.port == p.port && q.protocol == p.protocol) {
                return Err(err(
                    o,
                    format!("ports[{pi}].port"),
                    format!("port {}/{} is declared twice", p.port, p.protocol),
                ));
            }
            if s.ports.len() > 1 && p.name.is_none() {
                return Err(err(o, format!("ports[{pi}].name"), "every port of a multi-port Service needs a name"));
            }
            let target = p.target_port.clone().unwrap_or(TargetPort::Number(p.port));
            if let TargetPort::Number(n) = target {
                port16(o, &format!("ports[{pi}].target_port"), n)?;
            }
            let mut endpoints = Vec::with_capacity(selected.len());
            // Written endpoints: the ones for this port (by name and protocol).
            for (pod, m) in manual.iter().filter(|(_, m)| m.port_name == p.name && m.protocol == p.protocol) {
                let n = port16(o, &format!("ports[{pi}]"), m.port)?;
                endpoints.push(Endpoint { pod: *pod, port: n, weight: pods[pod.index()].weight });
            }
            for &pod in selected.iter().filter(|_| manual.is_empty()) {
                let pd = &pods[pod.index()];
                match &target {
                    TargetPort::Number(n) => {
                        let n = port16(o, &format!("ports[{pi}].target_port"), *n)?;
                        endpoints.push(Endpoint { pod, port: n, weight: pd.weight });
                    }
                    TargetPort::Name(name) => {
                        if let Some(l) =
                            pd.listens.iter().find(|l| l.name.as_deref() == Some(name) && l.protocol == p.protocol)
                        {
                            endpoints.push(Endpoint { pod, port: l.port, weight: pd.weight });
                        }
                    }
                }
            }
            if !selected.is_empty() && manual.is_empty() {
                let listening = endpoints.iter().any(|e| pods[e.pod.index()].listens_on(e.port, p.protocol).is_some());
                if !listening {
                    return Err(err(
                        o,
                        format!("ports[{pi}].target_port"),
                        format!(
                            "target port `{target}` matches no {} container port of the {} pod(s) the selector picks (e.g. {})",
                            p.protocol,
                            selected.len(),
                            pods[selected[0].index()].name
                        ),
                    ));
                }
            }
            let node_port = match (s.kind, p.node_port) {
                (ServiceType::ClusterIp, _) => None,
                (_, Some(np)) => Some(np as u16),
                (_, None) => Some(alloc_node_port(&mut used_node_ports, format!("ports[{pi}]"))?),
            };
            let mut local: HashMap<NodeId, Vec<EpId>> = HashMap::default();
            if s.external_traffic_policy == TrafficPolicy::Local || s.internal_traffic_policy == TrafficPolicy::Local {
                for (i, e) in endpoints.iter().enumerate() {
                    local.entry(pods[e.pod.index()].node).or_default().push(EpId::from_index(i));
                }
            }
            let id = SpId::from_index(service_ports.len());
            if let Some(np) = node_port {
                port_by_node_port.insert(np, id);
            }
            service_ports.push(ServicePort {
                service: SvcId::from_index(si),
                name: p.name.clone(),
                port,
                protocol: p.protocol,
                target_port: target,
                node_port,
                endpoints,
                local,
            });
            port_ids.push(id);
        }
        let health_check_node_port =
            if s.kind == ServiceType::LoadBalancer && s.external_traffic_policy == TrafficPolicy::Local {
                Some(alloc_node_port(&mut used_node_ports, "health_check_node_port".into())?)
            } else {
                None
            };
        services.push(Service {
            origin: o.clone(),
            name: s.name.clone(),
            namespace: ns,
            kind: s.kind,
            cluster_ip,
            load_balancer_ip,
            health_check_node_port,
            external_traffic_policy: s.external_traffic_policy,
            internal_traffic_policy: s.internal_traffic_policy,
            affinity_timeout_ns: s.affinity_timeout_s.map(|t| t as u64 * 1_000_000_000),
            ports: port_ids,
            external_name: None,
        });
    }

    let ingress_service = ingress_svc.as_ref().map(|_| SvcId::from_index(services.len() - 1));
    let mut ingresses = Vec::with_capacity(spec.ingresses.len());
    for ing in &spec.ingresses {
        let o = &ing.origin;
        check_name(o, "name", &ing.name)?;
        let ns = ns_index(&ing.namespace).ok_or_else(|| {
            err(
                o,
                "namespace",
                format!("namespace `{}` does not exist; declare it in cluster.namespaces", ing.namespace),
            )
        })?;
        let backend = |field: String, svc: &str, port: &BackendPort| -> Result<SpId, BuildError> {
            let s = service_by_name
                .get(&(ns, svc.to_string()))
                .ok_or_else(|| err(o, field.clone(), format!("no Service `{svc}` in namespace `{}`", ing.namespace)))?;
            services[s.index()]
                .ports
                .iter()
                .copied()
                .find(|&p| {
                    let sp = &service_ports[p.index()];
                    let named = match port {
                        BackendPort::Number(n) => sp.port as u32 == *n,
                        BackendPort::Name(n) => sp.name.as_deref() == Some(n.as_str()),
                    };
                    named && sp.protocol == Protocol::Tcp
                })
                .ok_or_else(|| err(o, field, format!("Service `{svc}` has no TCP port {port}")))
        };
        let mut rules = Vec::with_capacity(ing.rules.len());
        for (ri, r) in ing.rules.iter().enumerate() {
            let mut paths = Vec::with_capacity(r.paths.len());
            for (pi, p) in r.paths.iter().enumerate() {
                if !p.path.starts_with('/') {
                    return Err(err(
                        o,
                        format!("rules[{ri}].paths[{pi}].path"),
                        format!("`{}` must start with /", p.path),
                    ));
                }
                let sp = backend(format!("rules[{ri}].paths[{pi}].service"), &p.service, &p.port)?;
                paths.push(IngressPath { path: p.path.clone(), path_type: p.path_type, sp });
            }
            rules.push(IngressRule { host: r.host.clone(), paths });
        }
        let default_backend = match &ing.default_backend {
            Some((svc, port)) => Some(backend("default_backend".into(), svc, port)?),
            None => None,
        };
        ingresses.push(Ingress { name: ing.name.clone(), namespace: ns, rules, default_backend });
    }

    let (namespace_labels, policies) = policies(spec, &namespaces, &workloads, &pods)?;
    let node_by_ip = nodes.iter().enumerate().map(|(i, n)| (n.ip, NodeId::from_index(i))).collect();
    let node_by_bridge_ip = nodes.iter().enumerate().map(|(i, n)| (n.bridge_ip, NodeId::from_index(i))).collect();
    Ok(Cluster {
        node_network: spec.node_ip_cidr,
        workloads,
        placement: spec.placement,
        labels,
        ingresses,
        ingress_service,
        nodes,
        namespaces,
        namespace_labels,
        policies,
        pods,
        dns_service: dns_svc.as_ref().map(|_| SvcId::new(0)),
        services,
        service_ports,
        warnings,
        pod_by_ip,
        node_by_ip,
        node_by_bridge_ip,
        node_by_name,
        pod_by_name,
        service_by_name,
        pod_subdomain,
        service_by_ip,
        port_by_node_port,
        service_by_lb_ip,
    })
}

/// Every namespace's labels (its `kubernetes.io/metadata.name` added) and
/// the compiled NetworkPolicies.
fn policies(
    spec: &ClusterSpec,
    namespaces: &[String],
    workloads: &[Workload],
    pods: &[Pod],
) -> Result<(Vec<Labels>, crate::policy::Policies), BuildError> {
    for name in spec.namespace_labels.keys() {
        if !namespaces.contains(name) {
            return Err(err(
                &spec.origin,
                "namespaces",
                format!("labels given for namespace `{name}`, which does not exist; declare it in cluster.namespaces"),
            ));
        }
    }
    let labels: Vec<Labels> = namespaces
        .iter()
        .map(|n| {
            let mut l = spec.namespace_labels.get(n).cloned().unwrap_or_default();
            l.insert(crate::policy::NAMESPACE_NAME_LABEL.to_string(), n.clone());
            l
        })
        .collect();
    let wl: Vec<crate::policy::WorkloadLabels> = workloads
        .iter()
        .map(|w| crate::policy::WorkloadLabels {
            namespace: w.namespace,
            labels: w.pods.first().map_or(&EMPTY_LABELS, |&p| &pods[p.index()].labels),
            host_network: w.pods.first().is_some_and(|&p| pods[p.index()].host_network),
        })
        .collect();
    let compiled = crate::policy::Policies::compile(&spec.network_policies, namespaces, &labels, &wl)?;
    Ok((labels, compiled))
}

static EMPTY_LABELS: Labels = Labels::new();

/// ingress-nginx's controller pods: `app.kubernetes.io/name=ingress-nginx`,
/// serving `http` 80 and `https` 443.
fn controller_pods(c: &IngressControllerSpec) -> PodSpec {
    PodSpec {
        origin: Origin { file: "<ingress controller>".into(), line: 0, path: "ingress_controller".into() },
        name: "ingress-nginx-controller".into(),
        lifecycle: crate::dynamics::Lifecycle::default(),
        namespace: c.namespace.clone(),
        replicas: c.replicas,
        per_node: false,
        host_network: false,
        cluster_dns: true,
        subdomain: None,
        node: None,
        ip: None,
        weight: 1,
        labels: [("app.kubernetes.io/name".to_string(), "ingress-nginx".to_string())].into_iter().collect(),
        containers: vec![ContainerSpec {
            name: "controller".into(),
            ports: vec![
                PortSpec { name: Some("http".into()), port: 80, protocol: Protocol::Tcp },
                PortSpec { name: Some("https".into()), port: 443, protocol: Protocol::Tcp },
            ],
        }],
    }
}

/// The pods of a selectorless Service's written endpoints, each with its
/// entry; a pod that does not exist in its namespace (the Service's unless
/// the endpoint names another) is an error.
fn manual_pods<'s>(
    o: &Origin,
    s: &'s ServiceSpec,
    namespaces: &[String],
    pod_by_name: &PodNames,
    pending: &[Pending],
) -> Result<Vec<(PodId, &'s super::ManualEndpoint)>, BuildError> {
    s.manual_endpoints
        .iter()
        .map(|m| {
            let ns_name = m.namespace.as_deref().unwrap_or(&s.namespace);
            let ns = namespaces.iter().position(|n| n == ns_name).map(|i| i as u32);
            let pod = ns
                .and_then(|ns| {
                    pod_by_name.get(ns, &m.pod, |id| (pending[id.index()].ns, pending[id.index()].name.as_str()))
                })
                .ok_or_else(|| {
                    err(o, "endpoints", format!("no pod `{}` in namespace `{ns_name}` for Service `{}`", m.pod, s.name))
                })?;
            Ok((pod, m))
        })
        .collect()
}

/// The controller's Service, `ingress-nginx-controller`, as the
/// ingress-nginx manifests create it.
fn controller_service(c: &IngressControllerSpec) -> ServiceSpec {
    let port = |name: &str, n: u32| ServicePortSpec {
        name: Some(name.into()),
        port: n,
        target_port: Some(TargetPort::Name(name.into())),
        node_port: None,
        protocol: Protocol::Tcp,
    };
    ServiceSpec {
        origin: Origin { file: "<ingress controller>".into(), line: 0, path: "ingress_controller".into() },
        name: "ingress-nginx-controller".into(),
        namespace: c.namespace.clone(),
        kind: c.service_type,
        selector: Some([("app.kubernetes.io/name".to_string(), "ingress-nginx".to_string())].into_iter().collect()),
        cluster_ip: None,
        headless: false,
        affinity_timeout_s: None,
        internal_traffic_policy: TrafficPolicy::Cluster,
        ports: vec![port("http", 80), port("https", 443)],
        external_traffic_policy: TrafficPolicy::Cluster,
        manual_endpoints: Vec::new(),
        external_name: None,
    }
}

fn fmt_labels(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

fn coredns_origin() -> Origin {
    Origin { file: "<cluster DNS>".into(), line: 0, path: "dns".into() }
}

/// The CoreDNS Deployment kubeadm installs: `k8s-app=kube-dns` pods in
/// `kube-system` serving DNS on 53/UDP and 53/TCP and metrics on 9153.
fn coredns_spec(replicas: u32, lameduck_ns: u64) -> Option<PodSpec> {
    (replicas > 0).then(|| PodSpec {
        origin: coredns_origin(),
        name: "coredns".into(),
        namespace: "kube-system".into(),
        replicas,
        per_node: false,
        host_network: false,
        cluster_dns: true,
        subdomain: None,
        node: None,
        ip: None,
        weight: 1,
        labels: [("k8s-app".to_string(), "kube-dns".to_string())].into_iter().collect(),
        containers: vec![ContainerSpec {
            name: "coredns".into(),
            ports: vec![
                PortSpec { name: Some("dns".into()), port: 53, protocol: Protocol::Udp },
                PortSpec { name: Some("dns-tcp".into()), port: 53, protocol: Protocol::Tcp },
                PortSpec { name: Some("metrics".into()), port: 9153, protocol: Protocol::Tcp },
            ],
        }],
        // kubeadm's CoreDNS: a readiness probe (/ready, periodSeconds 10),
        // and `health { lameduck 5s }` in its Corefile: after SIGTERM it
        // keeps serving that long before it exits, as a preStop sleep would.
        lifecycle: crate::dynamics::Lifecycle {
            readiness: Some(crate::dynamics::Probe::default()),
            pre_stop_ns: lameduck_ns,
            ..Default::default()
        },
    })
}

/// The `kube-dns` Service at the tenth address of the service CIDR
/// (10.96.0.10 by default), as kubeadm sets it up.
fn dns_service_spec(spec: &ClusterSpec) -> Option<ServiceSpec> {
    (spec.dns_replicas > 0).then(|| ServiceSpec {
        origin: coredns_origin(),
        name: "kube-dns".into(),
        namespace: "kube-system".into(),
        kind: ServiceType::ClusterIp,
        selector: Some([("k8s-app".to_string(), "kube-dns".to_string())].into_iter().collect()),
        cluster_ip: Some(spec.service_cidr.nth(10)),
        headless: false,
        affinity_timeout_s: None,
        internal_traffic_policy: TrafficPolicy::Cluster,
        ports: vec![
            ServicePortSpec {
                name: Some("dns".into()),
                port: 53,
                target_port: Some(TargetPort::Name("dns".into())),
                node_port: None,
                protocol: Protocol::Udp,
            },
            ServicePortSpec {
                name: Some("dns-tcp".into()),
                port: 53,
                target_port: Some(TargetPort::Name("dns-tcp".into())),
                node_port: None,
                protocol: Protocol::Tcp,
            },
            ServicePortSpec {
                name: Some("metrics".into()),
                port: 9153,
                target_port: Some(TargetPort::Name("metrics".into())),
                node_port: None,
                protocol: Protocol::Tcp,
            },
        ],
        external_traffic_policy: TrafficPolicy::Cluster,
        manual_endpoints: Vec::new(),
        external_name: None,
    })
}

fn api_server_origin() -> Origin {
    Origin { file: "<API server>".into(), line: 0, path: "cluster.kubernetes_service".into() }
}

/// The API server as kubeadm runs it: a static pod in the host network of
/// the control-plane node (node-0 here), `--secure-port` 6443.
fn api_server_spec() -> PodSpec {
    PodSpec {
        origin: api_server_origin(),
        name: "kube-apiserver-node-0".into(),
        namespace: "kube-system".into(),
        replicas: 1,
        per_node: false,
        host_network: true,
        cluster_dns: false,
        subdomain: None,
        node: Some("node-0".into()),
        ip: None,
        weight: 1,
        labels: [("component", "kube-apiserver"), ("tier", "control-plane")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        containers: vec![ContainerSpec {
            name: "kube-apiserver".into(),
            ports: vec![PortSpec { name: Some("https".into()), port: 6443, protocol: Protocol::Tcp }],
        }],
        lifecycle: crate::dynamics::Lifecycle::default(),
    }
}

/// The `kubernetes` Service the API server keeps in `default`: the first
/// address of the service CIDR, `https` 443, no selector; its endpoints
/// (written by the API server) are the API servers' 6443.
fn kubernetes_service_spec(spec: &ClusterSpec) -> ServiceSpec {
    ServiceSpec {
        origin: api_server_origin(),
        name: "kubernetes".into(),
        namespace: "default".into(),
        kind: ServiceType::ClusterIp,
        selector: None,
        cluster_ip: Some(spec.service_cidr.nth(1)),
        headless: false,
        affinity_timeout_s: None,
        internal_traffic_policy: TrafficPolicy::Cluster,
        ports: vec![ServicePortSpec {
            name: Some("https".into()),
            port: 443,
            target_port: Some(TargetPort::Number(6443)),
            node_port: None,
            protocol: Protocol::Tcp,
        }],
        external_traffic_policy: TrafficPolicy::Cluster,
        external_name: None,
        manual_endpoints: vec![super::ManualEndpoint {
            pod: "kube-apiserver-node-0".into(),
            namespace: Some("kube-system".into()),
            port_name: Some("https".into()),
            port: 6443,
            protocol: Protocol::Tcp,
        }],
    }
}

/// Pods in a node's network namespace share its ports: two hostNetwork pods
/// on one node may not bind the same port (the scheduler's `NodePorts`
/// filter keeps them apart; emu places pods before it, so it is an error).
fn host_ports_free(pods: &[Pod], specs: &[&PodSpec]) -> Result<(), BuildError> {
    let mut bound: HashMap<(NodeId, u16, Protocol), usize> = HashMap::default();
    for (i, p) in pods.iter().enumerate().filter(|(_, p)| p.host_network) {
        for l in p.listens.iter() {
            if let Some(&o) = bound.get(&(p.node, l.port, l.protocol)) {
                return Err(err(
                    &specs[i].origin,
                    "host_network",
                    format!(
                        "pods `{}` and `{}` are both in the network namespace of {} and both bind {}/{}; \
                         use fewer replicas, more nodes, or a DaemonSet",
                        pods[o].name,
                        p.name,
                        format_args!("node-{}", p.node.index()),
                        l.port,
                        l.protocol
                    ),
                ));
            }
            bound.insert((p.node, l.port, l.protocol), i);
        }
    }
    Ok(())
}

/// An ExternalName Service (`ns` its namespace index): a CNAME to
/// `target` in CoreDNS and nothing else: no ClusterIP, no ports (the API
/// keeps any declared, kube-proxy ignores them), no endpoints, no rules.
fn external_name_service(o: &Origin, s: &ServiceSpec, ns: u32, target: &str) -> Result<Service, BuildError> {
    let t = target.strip_suffix('.').unwrap_or(target);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if t.is_empty() || t.len() > 253 || !t.split('.').all(label_ok) {
        return Err(err(o, "external_name", format!("`{target}` is not a DNS name (RFC 1123 labels joined by dots)")));
    }
    if s.headless || s.cluster_ip.is_some() || s.kind != ServiceType::ClusterIp {
        return Err(err(
            o,
            "external_name",
            "an ExternalName Service has no ClusterIP, no node ports and no load balancer",
        ));
    }
    Ok(Service {
        origin: o.clone(),
        name: s.name.clone(),
        namespace: ns,
        kind: s.kind,
        cluster_ip: None,
        load_balancer_ip: None,
        health_check_node_port: None,
        external_traffic_policy: s.external_traffic_policy,
        internal_traffic_policy: s.internal_traffic_policy,
        affinity_timeout_ns: None,
        ports: Vec::new(),
        external_name: Some(t.to_ascii_lowercase()),
    })
}
