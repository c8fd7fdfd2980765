//! The cluster's pods: their names (and duplicates), addresses and records,
//! built from the expanded templates in two passes that run side by side.

use std::sync::Arc;

use super::build::{err, exhausted, port16};
use super::names::PodNames;
use super::spec::{BuildError, Labels, Origin, PodSpec};
use super::{Listen, Node, Pod};
use crate::addr::Ipv4;
use crate::hash::{HashMap, HashSet};
use crate::ids::{NodeId, PodId};

/// A pod of the cluster being built, before its address.
pub(super) struct Pending<'a> {
    pub(super) spec: &'a PodSpec,
    pub(super) name: String,
    pub(super) ns: u32,
    pub(super) node: Option<NodeId>,
    pub(super) workload: u32,
}

/// Pods by (namespace, name), and the first pod whose name an earlier pod
/// of its namespace has.
pub(super) fn pod_names(pending: &[Pending]) -> (PodNames, Option<usize>) {
    PodNames::new(pending.len(), |i| (pending[i].ns, pending[i].name.as_str()))
}

/// The pods, pod by IP and subdomains.
pub(super) type Placed = (Vec<Pod>, HashMap<Ipv4, PodId>, HashMap<PodId, String>);

/// Gives each pod its address (explicit ones are in `pod_by_ip` and
/// `reserved` already; each node hands out the lowest free offset from .2
/// up) and its record. An error comes with its pod and its rank among one
/// pod's checks (0 the address, 2 the template).
pub(super) fn place_pods(
    co: &Origin,
    nodes: &[Node],
    pending: &[Pending],
    reserved: Vec<HashSet<u64>>,
    mut pod_by_ip: HashMap<Ipv4, PodId>,
) -> Result<Placed, (usize, u8, BuildError)> {
    let mut next_off: Vec<u64> = vec![2; nodes.len()];
    let mut pods: Vec<Pod> = Vec::with_capacity(pending.len());
    let mut pod_subdomain: HashMap<PodId, String> = HashMap::default();
    let mut template: Option<(&PodSpec, TemplateParts)> = None;
    for (i, p) in pending.iter().enumerate() {
        let n = p.node.expect("every pod is placed").index();
        let node = &nodes[n];
        let ip = match p.spec.ip {
            Some(ip) => ip,
            // The node's network namespace: its address, no pod IP taken.
            None if p.spec.host_network => node.ip,
            None => {
                while reserved[n].contains(&next_off[n]) {
                    next_off[n] += 1;
                }
                if next_off[n] + 1 >= node.pod_cidr.size() {
                    let message = format!(
                        "pod CIDR {} of {} is full ({} pod IPs): pod {} does not fit; \
                         use a shorter cluster node_cidr_mask_size or more nodes",
                        node.pod_cidr,
                        node.name,
                        node.pod_cidr.size() - 3,
                        p.name
                    );
                    return Err((i, 0, exhausted(&p.spec.origin, co, "", "node_cidr_mask_size", message)));
                }
                let ip = node.pod_cidr.nth(next_off[n]);
                next_off[n] += 1;
                pod_by_ip.insert(ip, PodId::from_index(i));
                ip
            }
        };
        // Replicas of one template are contiguous: its labels, containers
        // and ports are checked and built once, and shared.
        let shared = match &template {
            Some((spec, shared)) if std::ptr::eq(*spec, p.spec) => shared.clone(),
            _ => {
                let shared = TemplateParts::new(p.spec).map_err(|e| (i, 2, e))?;
                template = Some((p.spec, shared.clone()));
                shared
            }
        };
        if let Some(sub) = &p.spec.subdomain {
            pod_subdomain.insert(PodId::from_index(i), sub.clone());
        }
        pods.push(Pod {
            name: p.name.clone(),
            namespace: p.ns,
            node: NodeId::from_index(n),
            ip,
            labels: shared.labels,
            weight: p.spec.weight,
            containers: shared.containers,
            listens: shared.listens,
            workload: p.workload,
            host_network: p.spec.host_network,
            cluster_dns: p.spec.cluster_dns,
        });
    }
    Ok((pods, pod_by_ip, pod_subdomain))
}

/// What the replicas of one pod template share.
#[derive(Clone)]
struct TemplateParts {
    labels: Arc<Labels>,
    containers: Arc<[String]>,
    listens: Arc<[Listen]>,
}

impl TemplateParts {
    /// Checks `spec`'s containers and ports (names unique, no port bound
    /// twice) and builds the parts its pods share.
    fn new(spec: &PodSpec) -> Result<TemplateParts, BuildError> {
        let mut listens: Vec<Listen> = Vec::new();
        for (ci, c) in spec.containers.iter().enumerate() {
            if spec.containers[..ci].iter().any(|o| o.name == c.name) {
                return Err(err(
                    &spec.origin,
                    format!("containers[{ci}].name"),
                    format!("container name `{}` is used twice", c.name),
                ));
            }
            for (pi, port) in c.ports.iter().enumerate() {
                let field = || format!("containers[{ci}].ports[{pi}]");
                let num = port16(&spec.origin, &field(), port.port)?;
                if let Some(l) = listens.iter().find(|l| l.port == num && l.protocol == port.protocol) {
                    return Err(err(
                        &spec.origin,
                        field(),
                        format!(
                            "containers `{}` and `{}` both bind {}/{}: containers in a pod share one network namespace",
                            spec.containers[l.container as usize].name, c.name, num, port.protocol
                        ),
                    ));
                }
                if let Some(name) = &port.name {
                    if listens.iter().any(|l| l.name.as_deref() == Some(name)) {
                        return Err(err(&spec.origin, field(), format!("port name `{name}` is used twice in the pod")));
                    }
                }
                listens.push(Listen {
                    port: num,
                    protocol: port.protocol,
                    container: ci as u16,
                    name: port.name.clone(),
                });
            }
        }
        Ok(TemplateParts {
            labels: Arc::new(spec.labels.clone()),
            containers: spec.containers.iter().map(|c| c.name.clone()).collect(),
            listens: listens.into(),
        })
    }
}
