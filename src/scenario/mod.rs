//! Scenario files: TOML (plus Kubernetes YAML manifests) in, a validated
//! cluster, model parameters, flows and servers out. Every error names the
//! file, the line where the line is known, and the key.

mod changes;
// As `schema`: every key is documented in docs/scenario.md.
#[allow(missing_docs)]
pub mod dynamics_schema;
mod expand;
pub mod limits;
mod locate;
pub mod manifests;
#[allow(missing_docs)]
pub mod netpol;
// The TOML structs: every key is documented, with unit, default and
// source, in docs/scenario.md (one home), not field by field here.
#[allow(missing_docs)]
pub mod schema;
mod targets;
pub mod units;

use std::path::{Path, PathBuf};

use emu_models::addr::{Cidr, Ipv4};
use emu_models::cluster::ingress::{BackendPort, IngressPathSpec, IngressRuleSpec, IngressSpec, PathType};
use emu_models::cluster::{
    self, BuildError, Cluster, ClusterSpec, ContainerSpec, Origin, Placement, PodSpec, PortSpec, Protocol,
    ServicePortSpec, ServiceSpec, ServiceType, TargetPort, TrafficPolicy,
};
use emu_models::dns::{self, DnsParams, Resolver};
use emu_models::proxy::iptables::{IptablesParams, RuleOrder};
use emu_models::proxy::ProxyParams;
use emu_models::traffic::{Arrivals, Client, Flow, Server, Target};
use emu_models::world::{LbParams, LbPolicy, Params, World};

use expand::{display_value, expand, set_path};
use schema::*;
use targets::{resolve_from, resolve_to};

/// A scenario ready to run.
pub struct Prepared {
    /// Manifest files: (path as written, path on disk, text).
    pub manifests: Vec<(String, PathBuf, String)>,
    /// The built cluster.
    pub cluster: Cluster,
    /// Every model parameter.
    pub params: Params,
    /// The flows, `count` expanded, targets resolved.
    pub flows: Vec<Flow>,
    /// The servers, `count` expanded.
    pub servers: Vec<Server>,
    /// Warnings, to print once each.
    pub warnings: Vec<String>,
}

/// Loading context: the scenario file's name and text, for locating errors.
struct Ctx<'a> {
    loc: locate::Locator,
    file: &'a str,
    /// Client sets already selected, shared between flows that ask again.
    clients: std::cell::RefCell<ClientSets>,
    /// Only the cluster is wanted: no flow is required.
    cluster_only: bool,
}

/// Pods selected by (namespace, selector).
type ClientSets = std::collections::BTreeMap<(u32, cluster::Labels), std::sync::Arc<[emu_models::ids::PodId]>>;

impl Ctx<'_> {
    fn origin(&self, path: String) -> Origin {
        let line = self.loc.locate(&path).map_or(0, |(l, _)| l as u32);
        Origin { file: self.file.to_string(), line, path }
    }

    /// An error at key `path` of the scenario file.
    fn err(&self, path: &str, msg: impl std::fmt::Display) -> String {
        match self.loc.locate(path) {
            Some((l, c)) => format!("{}:{l}:{c}: {path}: {msg}", self.file),
            None => format!("{}: {path}: {msg}", self.file),
        }
    }

    /// A model build error, pointed at the line of the exact key.
    fn build_err(&self, e: BuildError) -> String {
        let full = if e.field.is_empty() { e.origin.path.clone() } else { format!("{}.{}", e.origin.path, e.field) };
        if e.origin.file == self.file {
            self.err(&full, e.message)
        } else {
            e.to_string()
        }
    }
}

fn cidr(ctx: &Ctx, key: &str, text: &str) -> Result<Cidr, String> {
    text.parse().map_err(|e| ctx.err(key, e))
}

fn proto(p: ProtocolToml) -> Protocol {
    match p {
        ProtocolToml::Tcp => Protocol::Tcp,
        ProtocolToml::Udp => Protocol::Udp,
        ProtocolToml::Sctp => Protocol::Sctp,
    }
}

fn port_spec(p: &PortToml) -> PortSpec {
    match p {
        PortToml::Number(n) => PortSpec { name: None, port: *n, protocol: Protocol::Tcp },
        PortToml::Full(f) => PortSpec { name: f.name.clone(), port: f.port, protocol: proto(f.protocol) },
    }
}

/// One point of a run: the swept keys' values and the scenario there.
pub struct Point {
    /// (key path, value) of every swept key, in declaration order.
    pub values: Vec<(String, String)>,
    /// The scenario at this point, ready to run.
    pub prepared: Prepared,
}

/// A scenario file, loaded and validated at every point of its sweep.
pub struct Loaded {
    /// The file as read (its `[sweep]` included), defaults filled in.
    pub base: Scenario,
    /// The swept key paths, in declaration order (empty without a sweep).
    pub keys: Vec<String>,
    /// Every point, first key slowest.
    pub points: Vec<Point>,
}

/// Most points a sweep may have.
const MAX_POINTS: usize = 10_000;

/// Reads and validates the scenario at `path` at every point of its sweep.
/// `threads` (at least 1) is how many runs will be in memory at once, for
/// the memory estimate.
pub fn load(path: &Path, seed: Option<u64>, replications: Option<u32>, threads: u64) -> Result<Loaded, String> {
    let text = limits::read_input(path, &path.display().to_string())?;
    load_str(path, &text, seed, replications, threads)
}

/// As [`load`], with the file's text already read (manifests are still
/// read from beside `path`).
pub fn load_str(
    path: &Path,
    text: &str,
    seed: Option<u64>,
    replications: Option<u32>,
    threads: u64,
) -> Result<Loaded, String> {
    load_inner(path, text, seed, replications, threads, false)
}

/// As [`load`], for a look at the cluster alone (`emu reach`): a scenario
/// without `[[flows]]` is accepted.
pub fn load_cluster(path: &Path) -> Result<Loaded, String> {
    let text = limits::read_input(path, &path.display().to_string())?;
    load_inner(path, &text, None, None, 1, true)
}

fn load_inner(
    path: &Path,
    text: &str,
    seed: Option<u64>,
    replications: Option<u32>,
    threads: u64,
    cluster_only: bool,
) -> Result<Loaded, String> {
    let file = path.display().to_string();
    let ctx = Ctx { file: &file, loc: locate::Locator::new(text), clients: Default::default(), cluster_only };
    let toml_err = |e: toml::de::Error| {
        let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
        match e.span() {
            Some(s) => {
                let (l, c) = locate::line_col(text, s.start);
                format!("{file}:{l}:{c}: {msg}")
            }
            None => format!("{file}: {msg}"),
        }
    };
    let mut base: Scenario = toml::from_str(text).map_err(toml_err)?;
    if !base.changes.is_empty() {
        // A changing cluster: its control plane's resolved values go to run.toml.
        base.control_plane.get_or_insert_with(Default::default);
        base.proxy.sync.get_or_insert_with(Default::default);
        base.load_balancer.healthy_threshold.get_or_insert(LbParams::default().healthy_threshold);
        base.dns.lameduck.get_or_insert(units::Duration(cluster::DEFAULT_LAMEDUCK_NS));
    }
    if let Some(s) = seed {
        base.seed = s;
    }
    if let Some(r) = replications {
        base.replications = r;
    }
    let mut version_warning = None;
    if let Some(v) = base.emu_version.as_deref().filter(|v| *v != env!("CARGO_PKG_VERSION")) {
        version_warning = Some(ctx.err(
            "emu_version",
            format!("written by emu {v}, run by emu {}: results may differ", env!("CARGO_PKG_VERSION")),
        ));
    }
    if !(1..=10_000).contains(&base.replications) {
        return Err(ctx.err("replications", "must be from 1 to 10000"));
    }
    if base.sweep.is_empty() {
        let mut prepared = prepare(&ctx, path, base.clone())?;
        prepared.warnings.extend(version_warning);
        let loaded = Loaded { base, keys: vec![], points: vec![Point { values: vec![], prepared }] };
        check_estimate(&ctx, &loaded, threads)?;
        return Ok(loaded);
    }
    let mut raw: toml::Value = toml::from_str(text).map_err(toml_err)?;
    raw.as_table_mut().expect("a TOML document is a table").remove("sweep");
    if let Some(s) = seed {
        set_path(&mut raw, "seed", toml::Value::Integer(s as i64)).expect("seed is a top-level key");
    }
    let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
    for (key, values) in &base.sweep {
        let list = values.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            ctx.err(&format!("sweep.{key}"), "a sweep key takes a non-empty list of values, e.g. [1, 2, 3]")
        })?;
        if key == "sweep" || key.starts_with("sweep.") {
            return Err(ctx.err(&format!("sweep.{key}"), "a sweep cannot sweep itself"));
        }
        let whole_run = match key.as_str() {
            "replications" => Some("set it at the top, or use --replications"),
            "emu_version" => Some("it records which emu wrote the file"),
            _ => None,
        };
        if let Some(why) = whole_run {
            return Err(ctx.err(
                &format!("sweep.{key}"),
                format!("`{key}` cannot be swept: it applies to the whole run ({why})"),
            ));
        }
        axes.push((key.clone(), list.clone()));
    }
    let total = axes.iter().map(|a| a.1.len()).try_fold(1usize, |acc, n| acc.checked_mul(n)).unwrap_or(usize::MAX);
    if total > MAX_POINTS {
        return Err(ctx.err("sweep", format!("{total} points is more than {MAX_POINTS}")));
    }
    let runs = total as u64 * base.replications as u64;
    if runs > limits::MAX_RUNS {
        return Err(ctx.err(
            "replications",
            format!(
                "{total} sweep points x {} replications = {runs} runs, more than emu's limit of {}",
                base.replications,
                limits::MAX_RUNS
            ),
        ));
    }
    let mut points = Vec::with_capacity(total);
    for index in 0..total {
        let mut v = raw.clone();
        let mut values = Vec::with_capacity(axes.len());
        let mut rest = index;
        let mut digits = vec![0; axes.len()];
        for (d, (_, list)) in axes.iter().enumerate().rev() {
            digits[d] = rest % list.len();
            rest /= list.len();
        }
        for ((key, list), &d) in axes.iter().zip(&digits) {
            set_path(&mut v, key, list[d].clone()).map_err(|e| ctx.err(&format!("sweep.{key}"), e))?;
            values.push((key.clone(), display_value(&list[d])));
        }
        let at = values.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ");
        let sc: Scenario = v.try_into().map_err(|e: toml::de::Error| {
            ctx.err("sweep", format!("at {at}: {}", e.message().lines().next().unwrap_or("invalid")))
        })?;
        let prepared = prepare(&ctx, path, sc).map_err(|e| format!("{e} (sweep point {at})"))?;
        if index == 0 {
            // Projected from the first point, before building the others.
            let e = limits::estimate(&[&prepared], total as u64, base.replications, threads);
            limits::refuse(&e, threads).map_err(|(key, msg)| blame(&ctx, key, msg))?;
        }
        points.push(Point { values, prepared });
    }
    if let Some(first) = points.first_mut() {
        first.prepared.warnings.extend(version_warning);
    }
    let loaded = Loaded { base, keys: axes.into_iter().map(|a| a.0).collect(), points };
    check_estimate(&ctx, &loaded, threads)?;
    Ok(loaded)
}

fn blame(ctx: &Ctx, key: Option<&str>, msg: String) -> String {
    match key {
        Some(k) => ctx.err(k, msg),
        None => format!("{}: {msg}", ctx.file),
    }
}

/// Refuses a loaded scenario whose estimate exceeds the machine or the
/// output limits.
fn check_estimate(ctx: &Ctx, loaded: &Loaded, threads: u64) -> Result<(), String> {
    let points: Vec<&Prepared> = loaded.points.iter().map(|p| &p.prepared).collect();
    let e = limits::estimate(&points, 1, loaded.base.replications, threads);
    limits::refuse(&e, threads).map_err(|(key, msg)| blame(ctx, key, msg))
}

/// Validates one scenario (one sweep point) and builds everything a run needs.
fn prepare(ctx: &Ctx, path: &Path, mut sc: Scenario) -> Result<Prepared, String> {
    sc.sweep.clear();
    let file = ctx.file.to_string();
    let mut warnings = Vec::new();

    // Manifests.
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut manifests = Vec::new();
    let mut extra = manifests::Loaded::default();
    for (i, m) in sc.manifests.iter().enumerate() {
        let p = dir.join(m);
        let t = limits::read_input(&p, &p.display().to_string()).map_err(|e| ctx.err(&format!("manifests[{i}]"), e))?;
        let l = manifests::load(&p.display().to_string(), &t)?;
        extra.namespaces.extend(l.namespaces);
        extra.namespace_labels.extend(l.namespace_labels);
        extra.network_policies.extend(l.network_policies);
        extra.pods.extend(l.pods);
        extra.services.extend(l.services);
        extra.ingresses.extend(l.ingresses);
        extra.endpoints.extend(l.endpoints);
        warnings.extend(l.warnings);
        manifests.push((m.clone(), p, t));
    }

    // Cluster.
    let c = &sc.cluster;
    let mut namespaces: Vec<String> = c.namespaces.iter().map(|n| n.name().to_string()).collect();
    namespaces.extend(extra.namespaces);
    let namespace_labels = netpol::namespace_labels(ctx, c, extra.namespace_labels)?;
    let mut network_policies = Vec::new();
    for (i, p) in expand(ctx, "network_policies", &sc.network_policies, limits::MAX_POLICIES, |p| p.count.take())? {
        let origin = ctx.origin(format!("network_policies[{i}]"));
        network_policies.push(netpol::from_toml(origin, &p).map_err(|(key, m)| ctx.err(&key, m))?);
    }
    network_policies.extend(extra.network_policies);
    for p in network_policies.iter().filter(|p| {
        p.ingress.iter().chain(&p.egress).flat_map(|r| &r.peers).any(|x| x.ip_block.as_ref().is_some_and(|b| b.ipv6))
    }) {
        warnings.push(format!(
            "{}: NetworkPolicy {}/{}: an IPv6 ipBlock matches nothing in emu's IPv4 cluster",
            p.origin, p.namespace, p.name
        ));
    }
    let mut pods = Vec::new();
    for (i, p) in
        expand(ctx, "pods", &sc.pods, u32::try_from(cluster::MAX_PODS).unwrap_or(u32::MAX), |p| p.count.take())?
    {
        let key = format!("pods[{i}]");
        if p.ip.is_some() && sc.pods[i].count.is_some() {
            return Err(ctx.err(&format!("{key}.ip"), "an explicit ip cannot be repeated with count"));
        }
        let mut containers: Vec<ContainerSpec> = p
            .containers
            .iter()
            .map(|c| ContainerSpec { name: c.name.clone(), ports: c.ports.iter().map(port_spec).collect() })
            .collect();
        if !p.ports.is_empty() || containers.is_empty() {
            containers.insert(0, ContainerSpec { name: "main".into(), ports: p.ports.iter().map(port_spec).collect() });
        }
        let ip = match &p.ip {
            Some(t) => Some(t.parse::<Ipv4>().map_err(|e| ctx.err(&format!("{key}.ip"), e))?),
            None => None,
        };
        let cluster_dns = emu_models::cluster::cluster_dns(p.host_network, p.dns_policy.as_deref())
            .map_err(|e| ctx.err(&format!("{key}.dns_policy"), e))?;
        let lifecycle = lifecycle(ctx, &key, &p)?;
        pods.push(PodSpec {
            lifecycle,
            origin: ctx.origin(key),
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            replicas: p.replicas,
            per_node: false,
            host_network: p.host_network,
            cluster_dns,
            subdomain: None,
            node: p.node.clone(),
            ip,
            weight: p.ipvs_weight,
            labels: p.labels.clone(),
            containers,
        });
    }
    pods.extend(extra.pods);
    let mut services = Vec::new();
    for (i, s) in expand(ctx, "services", &sc.services, limits::MAX_SERVICES, |s| s.count.take())? {
        let key = format!("services[{i}]");
        let fixed_ip = s.cluster_ip.as_deref().is_some_and(|ip| ip != "None");
        if sc.services[i].count.is_some() && (fixed_ip || s.ports.iter().any(|p| p.node_port.is_some())) {
            return Err(ctx.err(&key, "cluster_ip and node_port cannot be repeated with count"));
        }
        let headless = s.cluster_ip.as_deref() == Some("None");
        let cluster_ip = match &s.cluster_ip {
            Some(t) if t != "None" => Some(t.parse::<Ipv4>().map_err(|e| ctx.err(&format!("{key}.cluster_ip"), e))?),
            _ => None,
        };
        let policy = |p: PolicyToml| match p {
            PolicyToml::Cluster => TrafficPolicy::Cluster,
            PolicyToml::Local => TrafficPolicy::Local,
        };
        let timeout_s = s.session_affinity_timeout.ns() / 1_000_000_000;
        if s.session_affinity == AffinityToml::ClientIP
            && (s.session_affinity_timeout.ns() % 1_000_000_000 != 0 || !(1..=86_400).contains(&timeout_s))
        {
            return Err(ctx.err(
                &format!("{key}.session_affinity_timeout"),
                "must be whole seconds from 1s to 86400s (Kubernetes' limits)",
            ));
        }
        match (s.kind == ServiceTypeToml::ExternalName, s.external_name.is_some()) {
            (true, false) => {
                return Err(ctx.err(&format!("{key}.external_name"), "type ExternalName needs external_name"))
            }
            (false, true) => return Err(ctx.err(&format!("{key}.external_name"), "needs type = \"ExternalName\"")),
            (true, true) if !s.ports.is_empty() || s.selector.is_some() => {
                return Err(ctx.err(
                    &format!("{key}.external_name"),
                    "an ExternalName Service takes no ports and no selector (nothing proxies it)",
                ))
            }
            _ => {}
        }
        services.push(ServiceSpec {
            origin: ctx.origin(key),
            name: s.name.clone(),
            namespace: s.namespace.clone(),
            kind: match s.kind {
                ServiceTypeToml::ClusterIP | ServiceTypeToml::ExternalName => ServiceType::ClusterIp,
                ServiceTypeToml::NodePort => ServiceType::NodePort,
                ServiceTypeToml::LoadBalancer => ServiceType::LoadBalancer,
            },
            selector: s.selector.clone(),
            cluster_ip,
            headless,
            affinity_timeout_s: (s.session_affinity == AffinityToml::ClientIP).then_some(timeout_s as u32),
            internal_traffic_policy: policy(s.internal_traffic_policy),
            ports: s
                .ports
                .iter()
                .map(|p| ServicePortSpec {
                    name: p.name.clone(),
                    port: p.port,
                    target_port: p.target_port.as_ref().map(|t| match t {
                        TargetPortToml::Number(n) => TargetPort::Number(*n),
                        TargetPortToml::Name(n) => TargetPort::Name(n.clone()),
                    }),
                    node_port: p.node_port,
                    protocol: proto(p.protocol),
                })
                .collect(),
            external_traffic_policy: policy(s.external_traffic_policy),
            manual_endpoints: Vec::new(),
            external_name: s.external_name.clone(),
        });
    }
    services.extend(extra.services);
    // Endpoints written for Services without selectors.
    for (origin, ns, name, eps) in extra.endpoints {
        let Some(svc) = services.iter_mut().find(|s| s.namespace == ns && s.name == name) else {
            return Err(format!("{origin}: no Service `{ns}/{name}` for these endpoints"));
        };
        if svc.selector.as_ref().is_some_and(|s| !s.is_empty()) {
            warnings.push(format!(
                "{origin}: Service `{ns}/{name}` has a selector, so its endpoints are the pods it selects; these are ignored"
            ));
            continue;
        }
        svc.manual_endpoints.extend(eps);
    }
    // Services a change creates: built now (ClusterIPs allocated), absent
    // from every node until their change.
    let known: Vec<&str> = ["default", "kube-system", sc.ingress_controller.namespace.as_str()]
        .into_iter()
        .chain(namespaces.iter().map(String::as_str))
        .collect();
    let timeline = changes::expand_changes(ctx, &sc.changes)?;
    services.extend(changes::created_services(ctx, &timeline, &known)?);
    let mut ingresses: Vec<IngressSpec> = sc
        .ingresses
        .iter()
        .enumerate()
        .map(|(i, ing)| IngressSpec {
            origin: ctx.origin(format!("ingresses[{i}]")),
            name: ing.name.clone(),
            namespace: ing.namespace.clone(),
            rules: ing
                .rules
                .iter()
                .map(|r| IngressRuleSpec {
                    host: r.host.clone(),
                    paths: r
                        .paths
                        .iter()
                        .map(|p| IngressPathSpec {
                            path: p.path.clone(),
                            path_type: match p.path_type {
                                PathTypeToml::Exact => PathType::Exact,
                                _ => PathType::Prefix,
                            },
                            service: p.service.clone(),
                            port: BackendPort::Number(p.port),
                        })
                        .collect(),
                })
                .collect(),
            default_backend: ing.default_backend.as_ref().map(|b| (b.service.clone(), BackendPort::Number(b.port))),
        })
        .collect();
    ingresses.extend(extra.ingresses);
    let templates: Vec<(String, String, u32)> =
        pods.iter().map(|p| (p.namespace.clone(), p.name.clone(), p.count(c.nodes))).collect();
    let spec = ClusterSpec {
        origin: ctx.origin("cluster".into()),
        nodes: c.nodes,
        node_ip_cidr: cidr(ctx, "cluster.node_ip_cidr", &c.node_ip_cidr)?,
        pod_cidr: cidr(ctx, "cluster.pod_cidr", &c.pod_cidr)?,
        node_cidr_mask_size: c.node_cidr_mask_size,
        service_cidr: cidr(ctx, "cluster.service_cidr", &c.service_cidr)?,
        node_port_range: (c.node_port_range.0, c.node_port_range.1),
        load_balancer_cidr: cidr(ctx, "cluster.load_balancer_cidr", &c.load_balancer_cidr)?,
        placement: match c.placement {
            PlacementToml::RoundRobin => Placement::RoundRobin,
            PlacementToml::Random => Placement::Random,
        },
        namespaces,
        namespace_labels,
        network_policies,
        pods,
        services,
        kubernetes_service: c.kubernetes_service,
        dns_replicas: sc.dns.replicas,
        dns_lameduck_ns: sc.dns.lameduck.map_or(cluster::DEFAULT_LAMEDUCK_NS, |d| d.ns()),
        ingress_controller: emu_models::cluster::ingress::IngressControllerSpec {
            replicas: sc.ingress_controller.replicas,
            namespace: sc.ingress_controller.namespace.clone(),
            service_type: match sc.ingress_controller.service_type {
                ServiceTypeToml::LoadBalancer => ServiceType::LoadBalancer,
                ServiceTypeToml::NodePort => ServiceType::NodePort,
                ServiceTypeToml::ClusterIP | ServiceTypeToml::ExternalName => {
                    return Err(ctx.err("ingress_controller.service_type", "must be LoadBalancer or NodePort"))
                }
            },
        },
        ingresses,
    };
    let cluster = cluster::build(&spec, sc.seed).map_err(|e| ctx.build_err(e))?;
    warnings.extend(cluster.warnings.iter().cloned());

    // Parameters.
    let d = &sc.dns;
    if d.concurrency == 0 {
        return Err(ctx.err("dns.concurrency", "must be at least 1"));
    }
    if sc.output.interval.ns() == 0 {
        return Err(ctx.err("output.interval", "must be above zero"));
    }
    let mut datapath = sc.datapath.params();
    let cni = &sc.cni;
    datapath.cni = match cni.mode {
        CniMode::Routed => emu_models::datapath::Cni::Routed,
        CniMode::Vxlan => emu_models::datapath::Cni::Vxlan,
        CniMode::Ebpf => emu_models::datapath::Cni::Ebpf,
    };
    if !(576..=65_535).contains(&cni.link_mtu) {
        return Err(ctx.err("cni.link_mtu", format!("{} is outside 576-65535 bytes", cni.link_mtu)));
    }
    if cni.pod_mtu != 0 && !(576..=65_535).contains(&cni.pod_mtu) {
        return Err(ctx.err("cni.pod_mtu", format!("{} is outside 576-65535 bytes (0: derived)", cni.pod_mtu)));
    }
    datapath.link_mtu = cni.link_mtu;
    datapath.pod_mtu = cni.pod_mtu;
    datapath.vxlan_encap_ns = cni.vxlan_encap.ns();
    datapath.vxlan_decap_ns = cni.vxlan_decap.ns();
    datapath.vxlan_cpu_ns = cni.vxlan_cpu.ns();
    datapath.ebpf_redirect_ns = cni.ebpf_redirect.ns();
    datapath.reassembly_ns = cni.reassembly.ns();
    let n = &sc.node;
    datapath.cpu_packet_ns = n.cpu_per_packet.ns();
    datapath.cpu_byte_ps = n.cpu_per_byte_ps;
    if datapath.fragments() {
        warnings.push(ctx.err(
            "cni.pod_mtu",
            format!(
                "pod MTU {} + 50 B of VXLAN exceeds the link MTU {}: every full packet is fragmented",
                datapath.pod_mtu(),
                cni.link_mtu
            ),
        ));
    }
    let policy = netpol::policy_params(ctx, &sc)?;
    let params = Params {
        policy,
        node: emu_models::node::NodeParams {
            softirq_cores: n.softirq_cores,
            backlog: n.backlog,
            txqueuelen: n.txqueuelen,
            conntrack_max: n.conntrack_max,
            tcp_time_wait_ns: n.tcp_time_wait.ns(),
            tcp_close_ns: n.tcp_close.ns(),
            udp_timeout_ns: n.udp_timeout.ns(),
            rto_ns: n.rto.ns(),
            dns_retry_ns: n.dns_retry.ns(),
            tcp_syn_retries: n.tcp_syn_retries,
            tcp_syn_linear_timeouts: n.tcp_syn_linear_timeouts,
            conntrack_gc_interval_ns: n.conntrack_gc_interval.ns(),
        },
        interval_ns: sc.output.interval.ns(),
        seed: sc.seed,
        datapath,
        proxy: proxy_params(&sc.proxy),
        ingress: emu_models::world::IngressParams {
            service_time: sc.ingress_controller.service_time.0,
            concurrency: sc.ingress_controller.concurrency.max(1),
        },
        load_balancer: LbParams {
            policy: match sc.load_balancer.policy {
                LbPolicyToml::Random => LbPolicy::Random,
                LbPolicyToml::RoundRobin => LbPolicy::RoundRobin,
            },
            check_interval_ns: sc.load_balancer.check_interval.ns(),
            unhealthy_threshold: sc.load_balancer.unhealthy_threshold,
            healthy_threshold: sc.load_balancer.healthy_threshold.unwrap_or(LbParams::default().healthy_threshold),
        },
        dns: DnsParams {
            ndots: d.ndots,
            cluster_domain: d.cluster_domain.clone(),
            service_time: d.service_time.0,
            concurrency: d.concurrency,
            query_bytes: d.query_bytes,
            response_bytes: d.response_bytes,
            node_local_cache: d.node_local_cache,
            cache_ttl_ns: d.cache_ttl.ns(),
            cache_service_time: d.cache_service_time.0,
            cache_concurrency: d.cache_concurrency.max(1),
            persistent_socket: d.persistent_socket.unwrap_or(false),
            resolver: Resolver::parse(&d.resolver).ok_or_else(|| {
                let names: Vec<&str> = Resolver::ALL.iter().map(|(_, n)| *n).collect();
                ctx.err("dns.resolver", format!("`{}` is not a resolver: one of {}", d.resolver, names.join(", ")))
            })?,
            upstream_latency: d.upstream_latency.0,
            upstream_cache_ttl_ns: d.upstream_cache_ttl.ns(),
            external_names: external_names(ctx, &d.external_names)?,
        },
        changes: changes::resolve(ctx, &timeline, &cluster)?,
        control: sc.control_plane.clone().unwrap_or_default().params(),
        sync: sc.proxy.sync.clone().unwrap_or_default().params(),
    };
    if params.sync.sync_period_ns == 0 {
        return Err(ctx.err("proxy.sync.sync_period", "must be above zero (a resync every 0 s never ends)"));
    }
    if !(1..=1000).contains(&params.control.max_endpoints_per_slice) {
        return Err(ctx.err(
            "control_plane.max_endpoints_per_slice",
            "must be from 1 to 1000 (kube-controller-manager's --max-endpoints-per-slice range)",
        ));
    }
    emu_models::params::check(&params, &cluster).map_err(|e| ctx.err(&e.key, e.message))?;

    // Servers.
    let mut servers = Vec::new();
    for (i, s) in expand(ctx, "servers", &sc.servers, limits::MAX_SERVERS, |s| s.count.take())? {
        let key = format!("servers[{i}]");
        let ns = cluster
            .namespace(&s.namespace)
            .ok_or_else(|| ctx.err(&format!("{key}.namespace"), format!("no namespace `{}`", s.namespace)))?;
        let pods = cluster.select(ns, &s.selector);
        if pods.is_empty() {
            return Err(ctx.err(&format!("{key}.selector"), "matches no pod"));
        }
        let port = u16::try_from(s.port)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| ctx.err(&format!("{key}.port"), format!("port {} is out of range 1-65535", s.port)))?;
        if !pods.iter().any(|&p| cluster.pods[p.index()].listens_on(port, Protocol::Tcp).is_some()) {
            return Err(ctx.err(&format!("{key}.port"), format!("none of the selected pods listens on {port}/TCP")));
        }
        servers.push(Server {
            pods,
            port,
            service_time: s.service_time.0,
            concurrency: s.concurrency,
            queue_limit: s.queue_limit.unwrap_or(u32::MAX),
        });
    }

    // Flows.
    if sc.flows.is_empty() && !ctx.cluster_only {
        return Err(format!("{file}: no [[flows]]: a scenario needs at least one flow to run"));
    }
    let mut flows = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, f) in expand(ctx, "flows", &sc.flows, limits::MAX_FLOWS, |f| f.count.take())? {
        let f = &f;
        let key = format!("flows[{i}]");
        if !names.insert(f.name.clone()) {
            return Err(ctx.err(
                &format!("{key}.name"),
                format!("flow name `{}` is used twice (use {{i}} in the name of a flow with count)", f.name),
            ));
        }
        if f.name.is_empty() || f.name.contains(',') || f.name.contains('"') {
            return Err(ctx.err(&format!("{key}.name"), "flow names must be non-empty, without commas or quotes"));
        }
        let arrivals = match (f.rate, f.concurrency) {
            (Some(r), None) => Arrivals::Open { rate_per_s: r },
            (None, Some(c)) => Arrivals::Closed { clients: c, think: f.think_time.0 },
            (None, None) => Arrivals::Closed { clients: 1, think: f.think_time.0 },
            (Some(_), Some(_)) => {
                return Err(
                    ctx.err(&format!("{key}.rate"), "set `rate` (open loop) or `concurrency` (closed loop), not both")
                )
            }
        };
        let client = resolve_from(ctx, &key, &f.from, &cluster, &templates, f)?;
        let target = resolve_to(ctx, &key, &f.to, &cluster, matches!(client, Client::External(_)))?;
        if let Target::Ingress { backend: None, .. } = target {
            warnings.push(ctx.err(
                &format!("{key}.to"),
                format!("no Ingress rule routes `{}`: every request gets the controller's 404 (no_route)", f.to),
            ));
        }
        if let (Target::Name { name, .. }, Client::Pods(p)) = (&target, &client) {
            let ns = &cluster.namespaces[cluster.pods[p[0].index()].namespace as usize];
            let plan = dns::plan(&cluster, &params.dns, ns, name);
            let empty_headless = plan
                .queries
                .iter()
                .filter_map(|q| dns::service_named(&cluster, &params.dns, &q.name))
                .find(|&s| dns::headless_without_endpoints(&cluster, s));
            if plan.external {
                let last = &plan.queries[plan.queries.len() - 1];
                let via = last.cname.as_ref().map_or(String::new(), |c| format!(", a CNAME to `{c}`,"));
                return Err(ctx.err(
                    &format!("{key}.to"),
                    format!("`{name}` resolves outside the cluster (`{}`{via} is in dns.external_names): emu models no destination outside the cluster", last.name),
                ));
            }
            if let (None, Some(svc)) = (plan.answer, empty_headless) {
                warnings.push(ctx.err(
                    &format!("{key}.to"),
                    format!(
                        "`{name}` names the headless Service {}, which has no endpoints: CoreDNS answers NXDOMAIN and every request fails as nxdomain",
                        cluster.service_ref(svc)
                    ),
                ));
            } else if plan.answer.is_none() && !f.allow_nxdomain {
                return Err(ctx.err(
                    &format!("{key}.to"),
                    format!("`{name}` resolves to no Service from namespace `{ns}` (tried {}); set allow_nxdomain = true to emulate the NXDOMAIN failures", plan.queries.iter().map(|q| q.name.as_str()).collect::<Vec<_>>().join(", ")),
                ));
            }
        }
        let to_service = match (&target, &client) {
            (Target::ServiceIp { service, .. }, _) => Some(*service),
            (Target::Name { name, .. }, Client::Pods(p)) => {
                let ns = &cluster.namespaces[cluster.pods[p[0].index()].namespace as usize];
                dns::plan(&cluster, &params.dns, ns, name).answer
            }
            (Target::Ingress { backend: Some(sp), .. }, _) => Some(cluster.service_ports[sp.index()].service),
            _ => None,
        };
        if let Some(change) = to_service.and_then(|svc| created_by(&cluster, &file, svc)) {
            return Err(ctx.err(
                &format!("{key}.to"),
                format!(
                    "`{}` reaches Service {}, which {change} creates: flows may not target Services created by a change",
                    f.to,
                    cluster.service_ref(to_service.expect("found"))
                ),
            ));
        }
        if f.request_bytes == 0 {
            return Err(ctx.err(&format!("{key}.request_bytes"), "must be at least 1"));
        }
        flows.push(Flow {
            origin: ctx.origin(key),
            name: f.name.clone(),
            client,
            target,
            arrivals,
            requests: f.requests,
            duration_ns: f.duration.map(|d| d.ns()),
            start_ns: f.start.ns(),
            request_bytes: f.request_bytes,
            response_bytes: f.response_bytes,
            keep_alive: f.keep_alive,
            timeout_ns: f.timeout.ns(),
            max_connection_age_ns: f.max_connection_age.map(|d| d.ns()).filter(|&d| d > 0),
        });
    }
    if flows.is_empty() && !ctx.cluster_only {
        return Err(ctx.err("flows", "every flow has count = 0: nothing to run"));
    }
    // The world's own checks (flows against the cluster), run here so that
    // `validate` catches everything `run` would.
    World::new(&cluster, params.clone(), flows.clone(), servers.clone()).map_err(|e| ctx.build_err(e))?;
    Ok(Prepared { manifests, cluster, params, flows, servers, warnings })
}

/// The change (`changes[3]`) of scenario file `file` that creates
/// Service `svc`, if a change does.
fn created_by<'c>(cluster: &'c Cluster, file: &str, svc: emu_models::ids::SvcId) -> Option<&'c str> {
    let o = &cluster.services[svc.index()].origin;
    (o.file == file && o.path.starts_with("changes[")).then(|| o.path.split('.').next().unwrap_or(&o.path))
}

/// The lifecycle keys of `[[pods]]` entry `key`.
fn lifecycle(ctx: &Ctx, key: &str, p: &PodToml) -> Result<emu_models::dynamics::Lifecycle, String> {
    let mut l = emu_models::dynamics::Lifecycle::default();
    if let Some(probe) = &p.readiness_probe {
        let pr = probe.probe();
        if pr.period_ns == 0 {
            return Err(ctx.err(&format!("{key}.readiness_probe.period"), "must be above zero"));
        }
        for (field, v) in [("success_threshold", pr.success_threshold), ("failure_threshold", pr.failure_threshold)] {
            if v == 0 {
                return Err(ctx.err(&format!("{key}.readiness_probe.{field}"), "must be at least 1"));
            }
        }
        l.readiness = Some(pr);
    }
    if let Some(d) = p.app_start {
        l.app_start = d.0;
    }
    if let Some(d) = p.pre_stop {
        l.pre_stop_ns = d.ns();
    }
    if let Some(d) = p.termination_grace_period {
        l.grace_ns = d.ns();
    }
    if let Some(d) = p.min_ready {
        l.min_ready_ns = d.ns();
    }
    for (field, v, slot) in
        [("max_surge", &p.max_surge, &mut l.max_surge), ("max_unavailable", &p.max_unavailable, &mut l.max_unavailable)]
    {
        if let Some(v) = v {
            *slot = v.parse().map_err(|e| ctx.err(&format!("{key}.{field}"), e))?;
        }
    }
    if l.max_surge.scaled(100, true) == 0 && l.max_unavailable.scaled(100, false) == 0 {
        return Err(ctx.err(&format!("{key}.max_surge"), "max_surge and max_unavailable cannot both be 0"));
    }
    Ok(l)
}

fn proxy_params(p: &ProxyToml) -> ProxyParams {
    use emu_models::proxy::{ebpf::EbpfParams, ipvs, nftables::NftablesParams, Mode};
    ProxyParams {
        mode: match p.mode {
            ProxyMode::Iptables => Mode::Iptables,
            ProxyMode::Ipvs => Mode::Ipvs,
            ProxyMode::Nftables => Mode::Nftables,
            ProxyMode::Ebpf => Mode::Ebpf,
        },
        iptables: IptablesParams {
            rule_ns: p.iptables.rule_cost.ns(),
            conntrack_new_ns: p.iptables.conntrack_new.ns(),
            rule_order: match p.iptables.rule_order {
                RuleOrderToml::Random => RuleOrder::Random,
                RuleOrderToml::Declaration => RuleOrder::Declaration,
            },
        },
        ipvs: ipvs::IpvsParams {
            scheduler: match p.ipvs.scheduler {
                SchedulerToml::Rr => ipvs::Scheduler::Rr,
                SchedulerToml::Wrr => ipvs::Scheduler::Wrr,
                SchedulerToml::Lc => ipvs::Scheduler::Lc,
                SchedulerToml::Wlc => ipvs::Scheduler::Wlc,
                SchedulerToml::Sh => ipvs::Scheduler::Sh,
                SchedulerToml::Dh => ipvs::Scheduler::Dh,
                SchedulerToml::Sed => ipvs::Scheduler::Sed,
                SchedulerToml::Nq => ipvs::Scheduler::Nq,
            },
            lookup_ns: p.ipvs.lookup.ns(),
            conntrack_new_ns: p.ipvs.conntrack_new.ns(),
            tcp_time_wait_ns: p.ipvs.tcp_time_wait.ns(),
            udp_timeout_ns: p.ipvs.udp_timeout.ns(),
        },
        nftables: NftablesParams { lookup_ns: p.nftables.lookup.ns(), conntrack_new_ns: p.nftables.conntrack_new.ns() },
        ebpf: EbpfParams { connect_ns: p.ebpf.connect.ns(), nodeport_ns: p.ebpf.nodeport.ns() },
    }
}

/// `[dns] external_names`, checked: DNS names, without the trailing dot.
fn external_names(ctx: &Ctx, names: &[String]) -> Result<Vec<String>, String> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let t = n.strip_suffix('.').unwrap_or(n);
            let ok = !t.is_empty()
                && t.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            if ok {
                Ok(t.to_ascii_lowercase())
            } else {
                Err(ctx.err(&format!("dns.external_names[{i}]"), format!("`{n}` is not a DNS name")))
            }
        })
        .collect()
}
