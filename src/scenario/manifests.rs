//! Kubernetes manifests: Pod, Service, Deployment, Namespace and Ingress
//! objects from multi-document YAML files, turned into the same specs the
//! TOML objects become.
//!
//! Only what changes networking is read. Fields that would change it but
//! that emu does not model (hostNetwork, hostPort, dnsConfig, IPv6,
//! ExternalName Services, externalIPs, loadBalancerIP, trafficDistribution,
//! ...) are errors, never silently ignored; what is modelled only in part
//! (Ingress TLS) is a warning; kinds that carry no networking (ConfigMap,
//! Secret, ServiceAccount, ...) are skipped with a warning.

use std::collections::BTreeMap;

use emu_models::cluster::ingress::{IngressPathSpec, IngressRuleSpec, IngressSpec, PathType};
use emu_models::cluster::{
    ContainerSpec, Labels, Origin, PodSpec, PortSpec, Protocol, ServicePortSpec, ServiceSpec, ServiceType, TargetPort,
    TrafficPolicy,
};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// What a manifest file adds to a scenario.
#[derive(Default)]
pub struct Loaded {
    /// Namespace objects.
    pub namespaces: Vec<String>,
    /// Pods, and Deployments' pod templates.
    pub pods: Vec<PodSpec>,
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// Ingresses.
    pub ingresses: Vec<IngressSpec>,
    /// Kinds skipped and fields not modelled.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    #[serde(default)]
    api_version: Option<String>,
    kind: Spanned<String>,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Option<Spanned<Spec>>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrString {
    Int(u32),
    Str(String),
}

/// A superset of the Pod, Service and Deployment spec fields emu reads.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec {
    // Pod
    #[serde(default)]
    containers: Vec<Container>,
    node_name: Option<String>,
    host_network: Option<bool>,
    dns_policy: Option<String>,
    dns_config: Option<serde_ignored_value::Any>,
    // Service
    #[serde(rename = "type")]
    kind: Option<String>,
    selector: Option<Selector>,
    #[serde(default)]
    ports: Vec<ServicePort>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    external_traffic_policy: Option<String>,
    internal_traffic_policy: Option<String>,
    session_affinity: Option<String>,
    session_affinity_config: Option<AffinityConfig>,
    #[serde(default, rename = "externalIPs")]
    external_ips: Vec<String>,
    #[serde(default)]
    ip_families: Vec<String>,
    traffic_distribution: Option<String>,
    #[serde(rename = "loadBalancerIP")]
    load_balancer_ip: Option<String>,
    health_check_node_port: Option<u32>,
    // Ingress
    tls: Option<serde_ignored_value::Any>,
    ingress_class_name: Option<String>,
    // Ingress
    #[serde(default)]
    rules: Vec<IngressRuleY>,
    default_backend: Option<BackendY>,
    // Deployment
    replicas: Option<u32>,
    template: Option<Box<Template>>,
}

#[derive(Deserialize)]
struct IngressRuleY {
    host: Option<String>,
    http: Option<HttpY>,
}

#[derive(Deserialize)]
struct HttpY {
    paths: Vec<PathY>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PathY {
    path: Option<String>,
    path_type: Option<String>,
    backend: BackendY,
}

#[derive(Deserialize)]
struct BackendY {
    service: Option<ServiceBackendY>,
    resource: Option<serde_ignored_value::Any>,
}

#[derive(Deserialize)]
struct ServiceBackendY {
    name: String,
    port: PortY,
}

#[derive(Deserialize)]
struct PortY {
    number: Option<u32>,
    name: Option<String>,
}

fn backend(o: &Origin, b: &BackendY) -> Result<(String, u32), String> {
    if b.resource.is_some() {
        return Err(format!("{o}: resource backends are not modelled (use a Service backend)"));
    }
    let s = b.service.as_ref().ok_or_else(|| format!("{o}: a backend needs service"))?;
    match (s.port.number, &s.port.name) {
        (Some(n), _) => Ok((s.name.clone(), n)),
        (None, Some(n)) => Err(format!("{o}: backend port name `{n}`: write the port number")),
        _ => Err(format!("{o}: backend service port is required")),
    }
}

#[derive(Deserialize)]
struct AffinityConfig {
    #[serde(rename = "clientIP")]
    client_ip: Option<ClientIpConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientIpConfig {
    timeout_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Selector {
    Labels {
        #[serde(rename = "matchLabels")]
        match_labels: BTreeMap<String, String>,
        #[serde(default, rename = "matchExpressions")]
        match_expressions: Vec<serde_ignored_value::Any>,
    },
    Map(BTreeMap<String, String>),
}

mod serde_ignored_value {
    /// Any YAML value, read and thrown away.
    pub struct Any;
    impl<'de> serde::Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| Any)
        }
    }
}

#[derive(Deserialize)]
struct Template {
    #[serde(default)]
    metadata: Meta,
    spec: Spec,
}

#[derive(Deserialize)]
struct Container {
    name: String,
    #[serde(default)]
    ports: Vec<ContainerPort>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerPort {
    container_port: u32,
    name: Option<String>,
    protocol: Option<String>,
    host_port: Option<u32>,
    #[serde(rename = "hostIP")]
    host_ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServicePort {
    name: Option<String>,
    port: u32,
    target_port: Option<IntOrString>,
    node_port: Option<u32>,
    protocol: Option<String>,
}

/// Just the spec's keys of a document.
#[derive(Deserialize)]
struct SpecKeys {
    #[serde(default)]
    spec: BTreeMap<String, serde_ignored_value::Any>,
}

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
];

/// Kinds that carry nothing emu models; skipped with a warning.
const INERT_KINDS: &[&str] = &[
    "IngressClass",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolumeClaim",
];

fn protocol(o: &Origin, p: &Option<String>) -> Result<Protocol, String> {
    match p.as_deref() {
        None | Some("TCP") => Ok(Protocol::Tcp),
        Some("UDP") => Ok(Protocol::Udp),
        Some(other) => Err(format!("{o}: protocol `{other}` is not modelled (TCP or UDP)")),
    }
}

fn containers(o: &Origin, spec: &Spec) -> Result<Vec<ContainerSpec>, String> {
    if spec.host_network == Some(true) {
        return Err(format!("{o}: spec.hostNetwork: true is not modelled yet (pods get their own network namespace)"));
    }
    if spec.dns_config.is_some() {
        return Err(format!("{o}: spec.dnsConfig is not modelled yet (pods use ClusterFirst with ndots from [dns])"));
    }
    if let Some(p) = spec.dns_policy.as_deref() {
        if p != "ClusterFirst" {
            return Err(format!("{o}: spec.dnsPolicy `{p}` is not modelled (only ClusterFirst)"));
        }
    }
    spec.containers
        .iter()
        .map(|c| {
            let ports = c
                .ports
                .iter()
                .map(|p| {
                    if p.host_port.is_some() || p.host_ip.is_some() {
                        return Err(format!("{o}: container `{}`: hostPort is not modelled yet", c.name));
                    }
                    Ok(PortSpec { name: p.name.clone(), port: p.container_port, protocol: protocol(o, &p.protocol)? })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(ContainerSpec { name: c.name.clone(), ports })
        })
        .collect()
}

/// The limits of the YAML reader (serde-saphyr's default budget), as a
/// user reads them: (breach name, what was exceeded).
const YAML_LIMITS: [(&str, &str); 7] = [
    ("Documents", "more than 1,024 documents"),
    ("Nodes", "more than 250,000 values"),
    ("Events", "more than 1,000,000 YAML parser events"),
    ("Aliases", "more than 50,000 aliases (*name)"),
    ("Anchors", "more than 50,000 anchors (&name)"),
    ("Depth", "values nested more than 64 levels deep"),
    ("ScalarBytes", "more text in values than the YAML reader allows"),
];

/// A YAML reader's message in plain words: without its own `error: line
/// L column C:` prefix (the caller prints the location once) and with its
/// library jargon translated.
pub fn plain_yaml_message(msg: &str) -> String {
    let mut m = msg.trim();
    m = m.strip_prefix("error: ").unwrap_or(m);
    if let Some(rest) = m.strip_prefix("line ") {
        if let Some((_, after)) = rest.split_once(": ") {
            m = after;
        }
    }
    if let Some(b) = m.strip_prefix("budget breached: ") {
        let name = b.split([' ', '{']).next().unwrap_or(b);
        let what = YAML_LIMITS.iter().find(|(n, _)| *n == name).map_or("a YAML size limit", |(_, w)| w);
        return format!("the file has {what}: above the limits of emu's YAML reader (docs/scenario.md, Limits)");
    }
    if m.contains("recursive references require weak recursion types") {
        return "an alias (*name) refers to the anchor it is inside: recursive YAML is not allowed".into();
    }
    if m.contains("alias references unknown anchor") {
        return "an alias (*name) refers to no anchor (&name) defined before it".into();
    }
    if let Some(kind) = m.strip_prefix("data did not match any variant of untagged enum ") {
        return match kind.trim() {
            "IntOrString" => "expected a port number or a port name (text)".into(),
            other => format!("this value has the wrong type ({other})"),
        };
    }
    m.to_string()
}

/// Reads every object of the manifest file `file` (text `text`).
pub fn load(file: &str, text: &str) -> Result<Loaded, String> {
    let yaml_err = |e: serde_saphyr::Error| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("");
        match e.location() {
            Some(l) => format!("{file}:{}:{}: {}", l.line(), l.column(), plain_yaml_message(first)),
            None => format!("{file}: {}", plain_yaml_message(first)),
        }
    };
    let docs: Vec<Option<Object>> = serde_saphyr::from_multiple(text).map_err(yaml_err)?;
    // The spec keys of every document, to catch what the typed read skips.
    let keys: Vec<Option<SpecKeys>> = serde_saphyr::from_multiple(text).map_err(yaml_err)?;
    let mut out = Loaded::default();
    for (i, (doc, keys)) in docs.into_iter().zip(keys).enumerate() {
        let Some(obj) = doc else { continue };
        let kind = obj.kind.value.as_str();
        let name = obj.metadata.name.clone().unwrap_or_default();
        let origin = Origin {
            file: file.to_string(),
            line: obj.kind.referenced.line() as u32,
            path: format!("document {} ({kind} {name})", i + 1),
        };
        if name.is_empty() {
            return Err(format!("{origin}: metadata.name is required"));
        }
        let _ = &obj.api_version;
        let namespace = obj.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let spec_line = |s: &Spanned<Spec>| s.referenced.line() as u32;
        match kind {
            "Namespace" => out.namespaces.push(name),
            "Pod" => {
                let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
                let node = spec.value.node_name.clone();
                out.pods.push(PodSpec {
                    lifecycle: Default::default(),
                    containers: containers(&origin, &spec.value)?,
                    origin,
                    name,
                    namespace,
                    replicas: 1,
                    node,
                    ip: None,
                    weight: 1,
                    labels: obj.metadata.labels,
                });
            }
            "Deployment" => {
                let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
                let o = Origin { line: spec_line(&spec), ..origin.clone() };
                let s = spec.value;
                let t = s.template.ok_or_else(|| format!("{o}: spec.template is required"))?;
                let sel: Labels = match s.selector {
                    Some(Selector::Labels { match_labels, match_expressions }) => {
                        if !match_expressions.is_empty() {
                            return Err(format!(
                                "{o}: spec.selector.matchExpressions is not modelled (use matchLabels)"
                            ));
                        }
                        match_labels
                    }
                    _ => return Err(format!("{o}: spec.selector.matchLabels is required")),
                };
                if !sel.iter().all(|(k, v)| t.metadata.labels.get(k) == Some(v)) {
                    return Err(format!("{o}: spec.selector does not match spec.template.metadata.labels"));
                }
                out.pods.push(PodSpec {
                    lifecycle: Default::default(),
                    containers: containers(&o, &t.spec)?,
                    origin,
                    name,
                    namespace,
                    replicas: s.replicas.unwrap_or(1),
                    node: t.spec.node_name.clone(),
                    ip: None,
                    weight: 1,
                    labels: t.metadata.labels,
                });
            }
            "Service" => {
                let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
                let o = Origin { line: spec_line(&spec), ..origin.clone() };
                // Nearly every Service field changes networking: one emu does
                // not know (or a misspelt one) is an error, not a silence.
                for k in keys.iter().flat_map(|k| k.spec.keys()) {
                    if !SERVICE_FIELDS.contains(&k.as_str()) {
                        return Err(format!("{o}: spec.{k} is not a Service field emu models"));
                    }
                }
                let s = spec.value;
                let kind = match s.kind.as_deref() {
                    None | Some("ClusterIP") => ServiceType::ClusterIp,
                    Some("NodePort") => ServiceType::NodePort,
                    Some("LoadBalancer") => ServiceType::LoadBalancer,
                    Some(other) => {
                        return Err(format!(
                            "{o}: spec.type `{other}` is not modelled (ClusterIP, NodePort or LoadBalancer)"
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
                    Some(Selector::Labels { .. }) => {
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
                });
            }
            "Ingress" => {
                let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
                let o = Origin { line: spec_line(&spec), ..origin.clone() };
                let s = spec.value;
                let mut rules = Vec::new();
                for r in &s.rules {
                    let mut paths = Vec::new();
                    for p in r.http.iter().flat_map(|h| &h.paths) {
                        let (service, port) = backend(&o, &p.backend)?;
                        let path_type = match p.path_type.as_deref() {
                            Some("Exact") => PathType::Exact,
                            None | Some("Prefix") | Some("ImplementationSpecific") => PathType::Prefix,
                            Some(other) => {
                                return Err(format!(
                                    "{o}: pathType `{other}` is not Exact, Prefix or ImplementationSpecific"
                                ))
                            }
                        };
                        paths.push(IngressPathSpec {
                            path: p.path.clone().unwrap_or_else(|| "/".into()),
                            path_type,
                            service,
                            port,
                        });
                    }
                    rules.push(IngressRuleSpec { host: r.host.clone(), paths });
                }
                let default_backend = match &s.default_backend {
                    Some(b) => Some(backend(&o, b)?),
                    None => None,
                };
                if s.tls.is_some() {
                    out.warnings.push(format!(
                        "{o}: spec.tls: TLS termination is not modelled; requests are routed as plain HTTP"
                    ));
                }
                if let Some(c) = s.ingress_class_name.as_deref().filter(|c| *c != "nginx") {
                    out.warnings.push(format!(
                        "{o}: ingressClassName `{c}`: emu's one controller (ingress-nginx) serves it anyway"
                    ));
                }
                out.ingresses.push(IngressSpec { origin, name, namespace, rules, default_backend });
            }
            k if INERT_KINDS.contains(&k) => {
                out.warnings.push(format!("{origin}: kind {k} carries no networking; skipped"))
            }
            other => {
                return Err(format!(
                "{origin}: kind `{other}` is not modelled (emu reads Pod, Service, Deployment, Namespace and Ingress)"
            ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pods_services_and_deployments() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: mypod\nspec:\n  containers:\n    - name: app\n      image: nginx\n      ports:\n        - containerPort: 80\n    - name: sidecar\n      image: busybox\n      command: ['sh', '-c', 'curl http://localhost:80']\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: myweb\nspec:\n  type: NodePort\n  selector:\n    app: web\n  ports:\n    - port: 80\n      targetPort: 8080\n      nodePort: 30007\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          ports: [{containerPort: 8080, name: http}]\n";
        let l = load("m.yaml", text).unwrap();
        assert_eq!(l.pods.len(), 2);
        assert_eq!(l.pods[0].containers.len(), 2);
        assert_eq!(l.pods[0].containers[0].ports[0].port, 80);
        assert_eq!(l.pods[1].replicas, 3);
        assert_eq!(l.services[0].ports[0].node_port, Some(30007));
        assert_eq!(l.services[0].origin.line, 16);
    }

    #[test]
    fn rejects_what_it_does_not_model() {
        let e = load("m.yaml", "kind: CronJob\nmetadata: {name: x}\n").err().unwrap();
        assert!(e.starts_with("m.yaml:1: document 1 (CronJob x)"), "{e}");
        let e =
            load("m.yaml", "kind: Service\nmetadata: {name: x}\nspec:\n  type: ExternalName\n  ports: [{port: 80}]\n")
                .err()
                .unwrap();
        assert!(e.contains("ExternalName"), "{e}");
        let e = load(
            "m.yaml",
            "kind: Service\nmetadata: {name: x}\nspec:\n  sessionAffinty: ClientIP\n  ports: [{port: 80}]\n",
        )
        .err()
        .unwrap();
        assert!(e.contains("spec.sessionAffinty is not a Service field"), "{e}");
        let e = load("m.yaml", "kind: Service\nmetadata: {name: x}\nspec:\n  loadBalancerSourceRanges: [10.0.0.0/8]\n  ports: [{port: 80}]\n")
            .err()
            .unwrap();
        assert!(e.contains("loadBalancerSourceRanges"), "{e}");
        let ok = load(
            "m.yaml",
            "kind: Service\nmetadata: {name: x}\nspec:\n  clusterIP: None\n  type: ClusterIP\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n  internalTrafficPolicy: Local\n  ports: [{port: 80}]\n",
        )
        .unwrap();
        let s = &ok.services[0];
        assert!(s.headless);
        assert_eq!(s.affinity_timeout_s, Some(60));
        let e = load("m.yaml", "kind: Pod\nmetadata: {name: x}\nspec:\n  hostNetwork: true\n  containers: []\n")
            .err()
            .unwrap();
        assert!(e.contains("hostNetwork"), "{e}");
        let e = load("m.yaml", "kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n    - name: a\n      ports:\n        - containerPort: [1]\n").err().unwrap();
        assert!(e.starts_with("m.yaml:7:"), "{e}");
    }
}
