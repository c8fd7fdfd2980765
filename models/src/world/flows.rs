//! A flow's checks against the cluster and its run-time record: what
//! `World::new` does per flow.

use crate::hash::HashMap;
use crate::ids::PodId;
use std::sync::Arc;

use emu_engine::rng::Stream;
use emu_engine::stats::{Latency, Tally};

use super::{err, series, FlowRt, FlowStats, Params, FLOW_STREAM, MAX_CLIENTS, MAX_RATE_PER_S};
use crate::cluster::{BuildError, Cluster, Protocol};
use crate::datapath::HOP_KINDS;
use crate::dns::{self, DnsPlan};
use crate::traffic::{Arrivals, Client, Flow, Target, FAILURES};

/// Checks flow `i`, `f`, against `cluster` and builds its record; `names`
/// interns DNS query names, `all_clients` counts closed-loop clients over
/// every flow.
/// What a flow to a name needs to know of its client set, found once per
/// set: flows share their sets (35,937 clients behind 1,400 flows in
/// scale-65k.toml).
#[derive(Clone, Copy)]
pub(super) struct ClientSet {
    /// Every client is in the first one's namespace.
    one_namespace: bool,
    /// The first client that does not resolve through cluster DNS.
    outside_cluster_dns: Option<PodId>,
}

pub(super) fn flow_rt(
    cluster: &Cluster,
    params: &Params,
    i: usize,
    f: Flow,
    names: &mut HashMap<String, u32>,
    all_clients: &mut u64,
    client_sets: &mut HashMap<usize, ClientSet>,
) -> Result<FlowRt, BuildError> {
    if f.requests.is_none() && f.duration_ns.is_none() {
        return Err(err(&f, "", "a flow needs `requests` or `duration` (or both) to end".into()));
    }
    if let Arrivals::Closed { clients, .. } = f.arrivals {
        *all_clients += clients as u64;
    }
    match (&f.arrivals, &f.client) {
            (Arrivals::Open { rate_per_s }, _) if !(*rate_per_s > 0.0 && rate_per_s.is_finite()) => {
                return Err(err(
                    &f,
                    "rate",
                    format!("rate {rate_per_s} must be a positive number of requests per second"),
                ))
            }
            (Arrivals::Open { rate_per_s }, _) if *rate_per_s > MAX_RATE_PER_S => {
                return Err(err(
                    &f,
                    "rate",
                    format!("rate {rate_per_s} is above emu's limit of {MAX_RATE_PER_S:e} requests per second (one per ns)"),
                ))
            }
            (Arrivals::Closed { clients: 0, .. }, _) => {
                return Err(err(&f, "concurrency", "needs at least one client".into()))
            }
            (Arrivals::Closed { clients, .. }, _) if *all_clients > MAX_CLIENTS => {
                return Err(err(
                    &f,
                    "concurrency",
                    format!("{clients} clients would make {all_clients} closed-loop clients in all, more than emu's limit of {MAX_CLIENTS}"),
                ))
            }
            _ if f.request_bytes > crate::params::MAX_MESSAGE_BYTES => {
                return Err(err(&f, "request_bytes", format!("{} bytes is above the largest message, 1 GiB", f.request_bytes)))
            }
            _ if f.response_bytes > crate::params::MAX_MESSAGE_BYTES => {
                return Err(err(&f, "response_bytes", format!("{} bytes is above the largest message, 1 GiB", f.response_bytes)))
            }
            (_, Client::External(n)) if *n as u64 > MAX_CLIENTS => {
                return Err(err(&f, "from", format!("{n} external clients is more than emu's limit of {MAX_CLIENTS}")))
            }
            (_, Client::Pods(p)) if p.is_empty() => return Err(err(&f, "from", "selects no pod".into())),
            (_, Client::External(0)) => return Err(err(&f, "from", "needs at least one external client".into())),
            _ => {}
        }
    let mut dns = None;
    match &f.target {
        Target::Localhost(_) if matches!(f.client, Client::External(_)) => {
            return Err(err(&f, "to", "localhost is only reachable from a container in a pod".into()))
        }
        Target::NodePort { port, .. } => {
            if !matches!(f.client, Client::External(_)) {
                return Err(err(
                    &f,
                    "to",
                    "NodePort targets are modelled for external clients only (from = \"external\")".into(),
                ));
            }
            if cluster.port_by_node_port(*port).is_none() {
                let mut owned: Vec<String> = cluster
                    .service_ports
                    .iter()
                    .filter_map(|sp| sp.node_port.map(|n| (n, cluster.service_ref(sp.service), sp.port)))
                    .map(|(n, svc, p)| format!("{n} ({svc}:{p})"))
                    .collect();
                let more = owned.len().saturating_sub(20);
                owned.truncate(20);
                let list = match (owned.is_empty(), more) {
                    (true, _) => "no Service has a node port".to_string(),
                    (false, 0) => format!("node ports: {}", owned.join(", ")),
                    (false, m) => format!("node ports: {} and {m} more", owned.join(", ")),
                };
                return Err(err(
                    &f,
                    "to",
                    format!("no Service owns node port {port} ({list}; or write <NodePort:namespace/name>:port)"),
                ));
            }
        }
        Target::Ingress { .. } if !matches!(f.client, Client::External(_)) => {
            return Err(err(
                &f,
                "to",
                "Ingress hosts are modelled for external clients only (from = \"external\")".into(),
            ));
        }
        Target::LoadBalancer { service, port } => {
            if !matches!(f.client, Client::External(_)) {
                return Err(err(
                    &f,
                    "to",
                    "load balancer targets are modelled for external clients only (from = \"external\")".into(),
                ));
            }
            if cluster.service_port(*service, *port, Protocol::Tcp).is_none() {
                return Err(err(&f, "to", format!("Service {} has no TCP port {port}", cluster.service_ref(*service))));
            }
        }
        Target::Pod { .. } | Target::ServiceIp { .. } | Target::Name { .. }
            if matches!(f.client, Client::External(_)) =>
        {
            return Err(err(
                &f,
                "to",
                "pod and ClusterIP addresses are not reachable from outside the cluster: use a node IP and node port"
                    .into(),
            ))
        }
        Target::ServiceIp { service, port } if cluster.service_port(*service, *port, Protocol::Tcp).is_none() => {
            return Err(err(&f, "to", format!("Service {} has no TCP port {port}", cluster.service_ref(*service))));
        }
        Target::Name { name, port } => {
            let Client::Pods(pods) = &f.client else { unreachable!() };
            let ns = cluster.pods[pods[0].index()].namespace;
            let set = *client_sets.entry(Arc::as_ptr(pods) as *const PodId as usize).or_insert_with(|| ClientSet {
                one_namespace: pods.iter().all(|&p| cluster.pods[p.index()].namespace == ns),
                outside_cluster_dns: pods.iter().copied().find(|&p| !cluster.pods[p.index()].cluster_dns),
            });
            if !set.one_namespace {
                return Err(err(
                    &f,
                    "from",
                    "clients of a flow to a name must share one namespace (their resolv.conf search path)".into(),
                ));
            }
            if let Some(p) = set.outside_cluster_dns {
                let pod = &cluster.pods[p.index()];
                let why = if pod.host_network {
                    "a hostNetwork pod with dnsPolicy ClusterFirst falls back to its node's resolv.conf; \
                     give it dnsPolicy ClusterFirstWithHostNet"
                } else {
                    "its dnsPolicy is Default: its node's resolv.conf"
                };
                return Err(err(
                    &f,
                    "from",
                    format!("pod `{}` does not resolve through cluster DNS ({why})", pod.name),
                ));
            }
            if cluster.dns_service.is_none() {
                return Err(err(&f, "to", format!("`{name}` needs cluster DNS, but dns.replicas is 0")));
            }
            let plan = dns::plan(cluster, &params.dns, &cluster.namespaces[ns as usize], name);
            if plan.external {
                let last = &plan.queries[plan.queries.len() - 1];
                let via = last.cname.as_ref().map_or(String::new(), |c| format!(" (a CNAME to `{c}`)"));
                return Err(err(
                    &f,
                    "to",
                    format!(
                        "`{name}` resolves outside the cluster: `{}`{via} has an address upstream ([dns] external_names); \
                         emu models no destination outside the cluster",
                        last.name
                    ),
                ));
            }
            match plan.answer {
                Some(svc) if cluster.service_port(svc, *port, Protocol::Tcp).is_none() => {
                    return Err(err(&f, "to", format!("Service {} has no TCP port {port}", cluster.service_ref(svc))));
                }
                _ => {}
            }
            dns = Some(plan);
        }
        _ => {}
    }
    let stats = FlowStats {
        name: f.name.clone(),
        requests: 0,
        completed: 0,
        failures: [0; FAILURES],
        latency: Latency::new(),
        hops: [Tally::default(); HOP_KINDS],
        connections: 0,
        dns_questions: 0,
        retransmits: 0,
        cpu_drops: 0,
        nic_drops: 0,
        first_packet: Latency::new(),
        first_ns: 0,
        last_ns: 0,
        series: Vec::new(),
        failure_series: Vec::new(),
        stopped_at_horizon: false,
    };
    let dns_ids = dns
        .as_ref()
        .map(|p: &DnsPlan| {
            p.queries
                .iter()
                .map(|q| {
                    let next = names.len() as u32;
                    *names.entry(q.name.clone()).or_insert(next)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(FlowRt {
        series: series::Series::new(params.interval_ns.max(1)),
        timeouts: std::collections::VecDeque::new(),
        timer_armed: false,
        dns_ids,
        rng: Stream::new(params.seed, FLOW_STREAM, i as u64),
        issued: 0,
        limit: f.requests.unwrap_or(u64::MAX),
        end_ns: f.duration_ns.map_or(u64::MAX, |d| f.start_ns.saturating_add(d)).min(emu_engine::HORIZON_NS),
        dns,
        idle: super::IdlePool::new(&f.arrivals, client_count(&f.client)),
        opened: HashMap::default(),
        flow: f,
        stats,
    })
}

/// How many clients `client` names.
pub(super) fn client_count(client: &Client) -> u32 {
    match client {
        Client::Pods(p) => p.len() as u32,
        Client::External(n) => *n,
    }
}
