//! Services: type, ClusterIP (or headless), ports, traffic policies,
//! session affinity; every other spec field is an error.

use emu_models::cluster::{
    ManualEndpoint, Origin, ServicePortSpec, ServiceSpec, ServiceType, TargetPort, TrafficPolicy,
};

use super::pods::protocol;
use super::yaml::{EndpointPortY, IntOrString, Selector, TargetRefY};
use super::{line_of, Doc, Loaded};

/// Service spec fields emu reads, or knows to make no difference here
/// (`clusterIPs`, `ipFamilyPolicy` and `publishNotReadyAddresses`: every
/// emulated pod is IPv4 and ready).
const SERVICE_FIELDS: &[&str] = &[
    "type",
    "selector",
    "ports",
    "clusterIP",
    "clusterIPs",
    "externalTrafficPolicy",
    "internalTrafficPolicy",
    "sessionAffinity",
    "sessionAffinityConfig",
    "externalIPs",
    "ipFamilies",
    "ipFamilyPolicy",
    "trafficDistribution",
    "loadBalancerIP",
    "healthCheckNodePort",
    "publishNotReadyAddresses",
    "externalName",
];

/// A Service.
pub(super) fn service(d: Doc, out: &mut Loaded) -> Result<(), String> {
    let Doc { obj, keys, origin, name, namespace } = d;
    let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
    let o = Origin { line: line_of(&spec), ..origin.clone() };
    // Nearly every Service field changes networking: one emu does
    // not know (or a misspelt one) is an error, not a silence.
    for k in keys.iter().flat_map(|k| k.spec.keys()) {
        if !SERVICE_FIELDS.contains(&k.as_str()) {
            return Err(format!("{o}: spec.{k} is not a Service field emu models"));
        }
    }
    let s = spec.value;
    if s.kind.as_deref() == Some("ExternalName") {
        return external_name(o, origin, name, namespace, s.external_name, out);
    }
    if s.external_name.is_some() {
        return Err(format!("{o}: spec.externalName needs spec.type ExternalName"));
    }
    let kind = match s.kind.as_deref() {
        None | Some("ClusterIP") => ServiceType::ClusterIp,
        Some("NodePort") => ServiceType::NodePort,
        Some("LoadBalancer") => ServiceType::LoadBalancer,
        Some(other) => {
            return Err(format!(
                "{o}: spec.type `{other}` is not a Service type (ClusterIP, NodePort, LoadBalancer or ExternalName)"
            ))
        }
    };
    let cluster_ip = match s.cluster_ip.as_deref() {
        None | Some("") => None,
        Some("None") => None,
        Some(ip) => Some(ip.parse().map_err(|e| format!("{o}: spec.clusterIP: {e}"))?),
    };
    let headless = s.cluster_ip.as_deref() == Some("None");
    let policy = |field: &str, p: &Option<String>| match p.as_deref() {
        None | Some("Cluster") => Ok(TrafficPolicy::Cluster),
        Some("Local") => Ok(TrafficPolicy::Local),
        Some(other) => Err(format!("{o}: spec.{field} `{other}` is not Cluster or Local")),
    };
    let external_traffic_policy = policy("externalTrafficPolicy", &s.external_traffic_policy)?;
    let internal_traffic_policy = policy("internalTrafficPolicy", &s.internal_traffic_policy)?;
    let affinity_timeout_s = match s.session_affinity.as_deref() {
        None | Some("None") => None,
        Some("ClientIP") => Some(
            s.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(10_800),
        ),
        Some(other) => return Err(format!("{o}: spec.sessionAffinity `{other}` is not None or ClientIP")),
    };
    if s.ip_families.iter().any(|f| f != "IPv4") {
        return Err(format!("{o}: spec.ipFamilies: only IPv4 is modelled"));
    }
    if s.load_balancer_ip.is_some() || s.health_check_node_port.is_some() {
        return Err(format!(
            "{o}: spec.loadBalancerIP and spec.healthCheckNodePort are not modelled (emu allocates both)"
        ));
    }
    if s.traffic_distribution.is_some() {
        return Err(format!("{o}: spec.trafficDistribution is not modelled yet"));
    }
    if !s.external_ips.is_empty() {
        return Err(format!("{o}: spec.externalIPs is not modelled yet"));
    }
    let selector = match s.selector {
        None => None,
        Some(Selector::Map(m)) => Some(m),
        Some(Selector::Full(_)) => {
            return Err(format!("{o}: a Service selector is a plain label map, not matchLabels"))
        }
    };
    let ports = s
        .ports
        .iter()
        .map(|p| {
            Ok(ServicePortSpec {
                name: p.name.clone(),
                port: p.port,
                target_port: p.target_port.as_ref().map(|t| match t {
                    IntOrString::Int(n) => TargetPort::Number(*n),
                    IntOrString::Str(s) => match s.parse() {
                        Ok(n) => TargetPort::Number(n),
                        Err(_) => TargetPort::Name(s.clone()),
                    },
                }),
                node_port: p.node_port,
                protocol: protocol(&o, &p.protocol)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    out.services.push(ServiceSpec {
        origin,
        name,
        namespace,
        kind,
        selector,
        cluster_ip,
        headless,
        affinity_timeout_s,
        internal_traffic_policy,
        ports,
        external_traffic_policy,
        manual_endpoints: Vec::new(),
        external_name: None,
    });
    Ok(())
}

/// A Service of `type: ExternalName`: a CNAME in CoreDNS and nothing
/// else (its ports, selector and traffic policies are the API's to keep
/// and nobody's to act on).
fn external_name(
    o: Origin,
    origin: Origin,
    name: String,
    namespace: String,
    target: Option<String>,
    out: &mut Loaded,
) -> Result<(), String> {
    let target = target.ok_or_else(|| format!("{o}: spec.externalName is required for type ExternalName"))?;
    out.services.push(ServiceSpec {
        origin,
        name,
        namespace,
        kind: ServiceType::ClusterIp,
        selector: None,
        cluster_ip: None,
        headless: false,
        affinity_timeout_s: None,
        internal_traffic_policy: TrafficPolicy::Cluster,
        ports: Vec::new(),
        external_traffic_policy: TrafficPolicy::Cluster,
        manual_endpoints: Vec::new(),
        external_name: Some(target),
    });
    Ok(())
}

/// The endpoints written for a Service without a selector: an
/// EndpointSlice (`discovery.k8s.io/v1`, its Service named by the
/// `kubernetes.io/service-name` label) or an Endpoints object (its Service
/// of the same name). Each endpoint names its pod by `targetRef`; an
/// address without one (outside the cluster) is not modelled and is
/// skipped with a warning.
pub(super) fn endpoints(d: Doc, out: &mut Loaded, slice: bool) -> Result<(), String> {
    let Doc { obj, origin, name, namespace, .. } = d;
    let service = if slice {
        obj.metadata
            .labels
            .get("kubernetes.io/service-name")
            .cloned()
            .ok_or_else(|| format!("{origin}: an EndpointSlice needs the label kubernetes.io/service-name"))?
    } else {
        name
    };
    // Every endpoint (its pod, its address) on every port of its slice or subset.
    type Refs<'a> = Vec<(Option<&'a TargetRefY>, Option<&'a str>)>;
    let groups: Vec<(Refs, &[EndpointPortY])> = if slice {
        let refs = obj.endpoints.iter().map(|e| (e.target_ref.as_ref(), e.addresses.first().map(String::as_str)));
        vec![(refs.collect(), &obj.ports)]
    } else {
        obj.subsets
            .iter()
            .map(|sub| {
                (sub.addresses.iter().map(|a| (a.target_ref.as_ref(), a.ip.as_deref())).collect(), &sub.ports[..])
            })
            .collect()
    };
    let mut manual = Vec::new();
    for (refs, ports) in groups {
        for (target, addr) in refs {
            let Some(t) = target.filter(|t| t.kind.as_deref().is_none_or(|k| k == "Pod")) else {
                out.warnings.push(format!(
                    "{origin}: endpoint {}: an address without a Pod targetRef (outside the cluster) is not modelled; skipped",
                    addr.unwrap_or("?")
                ));
                continue;
            };
            for p in ports {
                let port = p.port.ok_or_else(|| format!("{origin}: an endpoint port needs port"))?;
                manual.push(ManualEndpoint {
                    pod: t.name.clone(),
                    namespace: t.namespace.clone().filter(|n| *n != namespace),
                    port_name: p.name.clone().filter(|n| !n.is_empty()),
                    port,
                    protocol: protocol(&origin, &p.protocol)?,
                });
            }
        }
    }
    out.endpoints.push((origin, namespace, service, manual));
    Ok(())
}
