//! Kubernetes manifests: Pod, Service, Deployment, Namespace and Ingress
//! objects from multi-document YAML files, turned into the same specs the
//! TOML objects become.
//!
//! Only what changes networking is read. Fields that would change it but
//! that emu does not model (hostNetwork, hostPort, dnsConfig, IPv6,
//! ExternalName Services, externalIPs, loadBalancerIP, trafficDistribution,
//! ...) are errors, never silently ignored; what is modelled only in part
//! (Ingress TLS, a preStop hook that is not a sleep) is a warning; kinds
//! that carry no networking (ConfigMap, Secret, ServiceAccount, ...) are
//! skipped with a warning.
//!
//! The pod lifecycle of a changing cluster is read too: a Deployment's
//! `strategy` (`type: Recreate` is modelled as maxSurge 0, maxUnavailable
//! 100%: every old pod goes before a new one starts) and
//! `minReadySeconds`; a pod's `terminationGracePeriodSeconds`; the first
//! container's `readinessProbe` (timing only, any handler) and
//! `lifecycle.preStop` (a sleep).

use std::collections::BTreeMap;

use emu_models::cluster::ingress::{IngressPathSpec, IngressRuleSpec, IngressSpec, PathType};
use emu_models::cluster::{
    ContainerSpec, Labels, Origin, PodSpec, PortSpec, Protocol, ServicePortSpec, ServiceSpec, ServiceType, TargetPort,
    TrafficPolicy,
};
use emu_models::dynamics::{IntOrPercent, Lifecycle, Probe};
use emu_models::policy::LabelSelector;
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
    /// Namespace objects' labels.
    pub namespace_labels: Vec<(String, Labels)>,
    /// NetworkPolicy objects.
    pub network_policies: Vec<emu_models::policy::NetworkPolicySpec>,
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
    termination_grace_period_seconds: Option<Spanned<i64>>,
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
    strategy: Option<Spanned<Strategy>>,
    min_ready_seconds: Option<Spanned<i64>>,
}

/// A Deployment's `spec.strategy`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Strategy {
    #[serde(rename = "type")]
    kind: Option<String>,
    rolling_update: Option<RollingUpdate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollingUpdate {
    max_surge: Option<Spanned<IntOrText>>,
    max_unavailable: Option<Spanned<IntOrText>>,
}

/// `maxSurge: 3` or `maxSurge: 25%`.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrText {
    Int(i64),
    Text(String),
}

/// A container's `readinessProbe`: its timing (the handler, httpGet,
/// tcpSocket, exec or grpc, is accepted and not modelled).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProbeY {
    initial_delay_seconds: Option<Spanned<i64>>,
    period_seconds: Option<Spanned<i64>>,
    success_threshold: Option<Spanned<i64>>,
    failure_threshold: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LifecycleY {
    pre_stop: Option<Spanned<HandlerY>>,
}

/// A lifecycle hook handler.
#[derive(Deserialize)]
struct HandlerY {
    exec: Option<ExecY>,
    sleep: Option<SleepY>,
}

#[derive(Deserialize)]
struct ExecY {
    #[serde(default)]
    command: Vec<String>,
}

#[derive(Deserialize)]
struct SleepY {
    seconds: Spanned<i64>,
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

/// A Service's selector (a plain map) or a Deployment's (a LabelSelector).
#[derive(Deserialize)]
#[serde(untagged)]
enum Selector {
    Map(BTreeMap<String, String>),
    Full(super::netpol::SelectorY),
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
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    #[serde(default)]
    ports: Vec<ContainerPort>,
    readiness_probe: Option<Spanned<ProbeY>>,
    lifecycle: Option<LifecycleY>,
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
        Some("SCTP") => Ok(Protocol::Sctp),
        Some(other) => Err(format!("{o}: protocol `{other}` is not modelled (TCP, UDP or SCTP)")),
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

/// Most seconds a manifest's time field may hold: emu's longest duration.
const MAX_SECONDS: i64 = (emu_engine::MAX_DURATION_NS / 1_000_000_000) as i64;

/// `o` at the line of `v`.
fn at<T>(o: &Origin, v: &Spanned<T>) -> Origin {
    Origin { line: v.referenced.line() as u32, ..o.clone() }
}

/// A field of whole seconds, 0 or more, in nanoseconds.
fn seconds(o: &Origin, field: &str, v: &Spanned<i64>) -> Result<u64, String> {
    if !(0..=MAX_SECONDS).contains(&v.value) {
        return Err(format!("{}: {field}: {} is not a number of seconds from 0 to {MAX_SECONDS}", at(o, v), v.value));
    }
    Ok(v.value as u64 * 1_000_000_000)
}

/// A probe's count or period: 0 means Kubernetes' default (the API
/// server's defaulting), negative is an error.
fn count(o: &Origin, field: &str, v: &Option<Spanned<i64>>, default: u32) -> Result<u32, String> {
    match v {
        None => Ok(default),
        Some(v) if v.value == 0 => Ok(default),
        Some(v) => u32::try_from(v.value).map_err(|_| format!("{}: {field}: {} must be 1 or more", at(o, v), v.value)),
    }
}

/// `maxSurge` or `maxUnavailable`: a count, or a percentage `N%` of at
/// most 100%.
fn int_or_percent(o: &Origin, field: &str, v: &Spanned<IntOrText>) -> Result<IntOrPercent, String> {
    let bad = |what: &str| {
        format!("{}: {field}: `{what}` is not a count (0 or more) or a percentage from 0% to 100%", at(o, v))
    };
    match &v.value {
        IntOrText::Int(n) => u32::try_from(*n).map(IntOrPercent::Int).map_err(|_| bad(&n.to_string())),
        IntOrText::Text(t) => t
            .strip_suffix('%')
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|&p| p <= 100)
            .map(IntOrPercent::Percent)
            .ok_or_else(|| bad(t)),
    }
}

/// The seconds of a sleep command (`sleep 5`, `sleep 1.5`, `sleep 5s`),
/// rounded to the nanosecond; `None` if `args` is not one.
fn sleep_command(args: &[String]) -> Option<u64> {
    let words: Vec<&str> = match args {
        [sleep, n] if sleep == "sleep" || sleep == "/bin/sleep" => vec![sleep, n],
        [sh, c, script] if matches!(sh.as_str(), "sh" | "/bin/sh" | "bash" | "/bin/bash") && c == "-c" => {
            script.split_whitespace().collect()
        }
        _ => return None,
    };
    let [sleep, n] = words[..] else { return None };
    if sleep != "sleep" && sleep != "/bin/sleep" {
        return None;
    }
    let n = n.strip_suffix('s').unwrap_or(n);
    let secs: f64 = n.parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= MAX_SECONDS as f64)?;
    Some((secs * 1e9).round() as u64)
}

/// The lifecycle of the pods of `spec` (a Pod's spec, or a Deployment's
/// template spec at `prefix`), with the Deployment's own `deploy` spec.
fn lifecycle(
    o: &Origin,
    prefix: &str,
    spec: &Spec,
    deploy: Option<&Spec>,
    warnings: &mut Vec<String>,
) -> Result<Lifecycle, String> {
    let mut l = Lifecycle::default();
    if let Some(g) = &spec.termination_grace_period_seconds {
        l.grace_ns = seconds(o, &format!("{prefix}.terminationGracePeriodSeconds"), g)?;
    }
    if let Some((i, p)) =
        spec.containers.iter().enumerate().find_map(|(i, c)| c.readiness_probe.as_ref().map(|p| (i, p)))
    {
        let f = |k: &str| format!("{prefix}.containers[{i}].readinessProbe.{k}");
        let d = Probe::default();
        let q = &p.value;
        let period_s = count(o, &f("periodSeconds"), &q.period_seconds, (d.period_ns / 1_000_000_000) as u32)?;
        let initial = match &q.initial_delay_seconds {
            Some(v) => seconds(o, &f("initialDelaySeconds"), v)?,
            None => d.initial_delay_ns,
        };
        if period_s as i64 > MAX_SECONDS {
            let v = q.period_seconds.as_ref().expect("only a written period is that long");
            return Err(format!(
                "{}: {}: {} is more than {MAX_SECONDS} seconds",
                at(o, v),
                f("periodSeconds"),
                v.value
            ));
        }
        l.readiness = Some(Probe {
            initial_delay_ns: initial,
            period_ns: period_s as u64 * 1_000_000_000,
            success_threshold: count(o, &f("successThreshold"), &q.success_threshold, d.success_threshold)?,
            failure_threshold: count(o, &f("failureThreshold"), &q.failure_threshold, d.failure_threshold)?,
        });
    }
    if let Some((i, h)) = spec
        .containers
        .iter()
        .enumerate()
        .find_map(|(i, c)| c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).map(|h| (i, h)))
    {
        let f = format!("{prefix}.containers[{i}].lifecycle.preStop");
        if let Some(sl) = &h.value.sleep {
            l.pre_stop_ns = seconds(o, &format!("{f}.sleep.seconds"), &sl.seconds)?;
        } else if let Some(ns) = h.value.exec.as_ref().and_then(|e| sleep_command(&e.command)) {
            l.pre_stop_ns = ns;
        } else {
            warnings.push(format!(
                "{}: {f}: only a sleep (exec `sleep N` or `sleep: {{seconds: N}}`) is modelled; emu models this hook as no delay",
                at(o, h)
            ));
        }
    }
    let Some(d) = deploy else { return Ok(l) };
    if let Some(m) = &d.min_ready_seconds {
        l.min_ready_ns = seconds(o, "spec.minReadySeconds", m)?;
    }
    if let Some(st) = &d.strategy {
        match st.value.kind.as_deref() {
            None | Some("RollingUpdate") => {}
            Some("Recreate") => {
                if st.value.rolling_update.is_some() {
                    return Err(format!(
                        "{}: spec.strategy.rollingUpdate: not allowed with strategy type Recreate",
                        at(o, st)
                    ));
                }
                l.max_surge = IntOrPercent::Int(0);
                l.max_unavailable = IntOrPercent::Percent(100);
            }
            Some(other) => {
                return Err(format!("{}: spec.strategy.type `{other}` is not RollingUpdate or Recreate", at(o, st)))
            }
        }
        if let Some(r) = &st.value.rolling_update {
            if let Some(v) = &r.max_surge {
                l.max_surge = int_or_percent(o, "spec.strategy.rollingUpdate.maxSurge", v)?;
            }
            if let Some(v) = &r.max_unavailable {
                l.max_unavailable = int_or_percent(o, "spec.strategy.rollingUpdate.maxUnavailable", v)?;
            }
            if l.max_surge.scaled(100, true) == 0 && l.max_unavailable.scaled(100, false) == 0 {
                return Err(format!(
                    "{}: spec.strategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0",
                    at(o, st)
                ));
            }
        }
    }
    Ok(l)
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
    let mut policies = Vec::new();
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
            "Namespace" => {
                out.namespace_labels.push((name.clone(), obj.metadata.labels));
                out.namespaces.push(name);
            }
            "NetworkPolicy" => {
                if let Some(v) = obj.api_version.as_deref().filter(|v| *v != "networking.k8s.io/v1") {
                    return Err(format!(
                        "{origin}: apiVersion `{v}`: emu reads NetworkPolicy of networking.k8s.io/v1 only \
                         (CNI-specific policy kinds are not modelled)"
                    ));
                }
                for k in keys.iter().flat_map(|k| k.spec.keys()) {
                    if !["podSelector", "policyTypes", "ingress", "egress"].contains(&k.as_str()) {
                        return Err(format!("{origin}: spec.{k} is not a NetworkPolicy field"));
                    }
                }
                policies.push(super::netpol::Found { doc: i, origin, name, namespace })
            }
            "Pod" => {
                let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
                let node = spec.value.node_name.clone();
                let lifecycle = lifecycle(&origin, "spec", &spec.value, None, &mut out.warnings)?;
                out.pods.push(PodSpec {
                    lifecycle,
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
                let mut s = spec.value;
                let t = s.template.take().ok_or_else(|| format!("{o}: spec.template is required"))?;
                let sel = match s.selector.take() {
                    Some(Selector::Full(sel)) => sel.read(&o.file, &o.path, "spec.selector")?,
                    _ => LabelSelector::default(),
                };
                if sel.is_empty() {
                    return Err(format!("{o}: spec.selector needs matchLabels or matchExpressions"));
                }
                if !sel.matches(&t.metadata.labels) {
                    return Err(format!("{o}: spec.selector does not match spec.template.metadata.labels"));
                }
                let lifecycle = lifecycle(&o, "spec.template.spec", &t.spec, Some(&s), &mut out.warnings)?;
                out.pods.push(PodSpec {
                    lifecycle,
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
                "{origin}: kind `{other}` is not modelled (emu reads Pod, Service, Deployment, Namespace, Ingress and NetworkPolicy)"
            ))
            }
        }
    }
    if !policies.is_empty() {
        out.network_policies = super::netpol::from_yaml(text, &policies)?;
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

    /// A Deployment `web` whose spec has `spec` (indented 2) and whose
    /// template spec has `pod` (indented 6) before its containers.
    fn deployment(spec: &str, pod: &str, container: &str) -> String {
        format!(
            "kind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 4\n  selector: {{matchLabels: {{app: web}}}}\n{spec}  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n{pod}      containers:\n        - name: side\n        - name: app\n{container}"
        )
    }

    fn lc(text: &str) -> (Lifecycle, Vec<String>) {
        let l = load("m.yaml", text).unwrap_or_else(|e| panic!("{e}"));
        (l.pods[0].lifecycle.clone(), l.warnings)
    }

    #[test]
    fn reads_the_rolling_update_strategy() {
        let (l, w) = lc(&deployment(
            "  minReadySeconds: 7\n  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 2, maxUnavailable: 10%}\n",
            "",
            "",
        ));
        assert_eq!(l.max_surge, IntOrPercent::Int(2));
        assert_eq!(l.max_unavailable, IntOrPercent::Percent(10));
        assert_eq!(l.min_ready_ns, 7_000_000_000);
        assert!(w.is_empty(), "{w:?}");
        // Absent: Kubernetes' defaults, 25% and 25%, no minReadySeconds.
        let (l, _) = lc(&deployment("", "", ""));
        assert_eq!(l, Lifecycle::default());
        let (l, _) = lc(&deployment("  strategy: {rollingUpdate: {maxSurge: 0%}}\n", "", ""));
        assert_eq!((l.max_surge, l.max_unavailable), (IntOrPercent::Percent(0), IntOrPercent::Percent(25)));
    }

    #[test]
    fn recreate_is_no_surge_and_all_unavailable() {
        let (l, w) = lc(&deployment("  strategy: {type: Recreate}\n", "", ""));
        assert_eq!(l.max_surge, IntOrPercent::Int(0));
        assert_eq!(l.max_unavailable, IntOrPercent::Percent(100));
        assert!(w.is_empty(), "{w:?}");
        let e = load("m.yaml", &deployment("  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n", "", ""))
            .err()
            .unwrap();
        assert!(
            e.starts_with("m.yaml:6: document 1 (Deployment web): spec.strategy.rollingUpdate: not allowed"),
            "{e}"
        );
        let e = load("m.yaml", &deployment("  strategy: {type: BlueGreen}\n", "", "")).err().unwrap();
        assert!(e.contains("spec.strategy.type `BlueGreen` is not RollingUpdate or Recreate"), "{e}");
    }

    #[test]
    fn rejects_bad_strategy_values_with_line_and_field() {
        let cases = [
            ("  strategy:\n    rollingUpdate:\n      maxSurge: 150%\n", "m.yaml:8: document 1 (Deployment web): spec.strategy.rollingUpdate.maxSurge: `150%` is not a count"),
            ("  strategy:\n    rollingUpdate:\n      maxUnavailable: -1\n", "m.yaml:8: document 1 (Deployment web): spec.strategy.rollingUpdate.maxUnavailable: `-1` is not a count"),
            ("  strategy:\n    rollingUpdate:\n      maxUnavailable: ten\n", "spec.strategy.rollingUpdate.maxUnavailable: `ten` is not a count"),
            ("  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: 0%}\n", "m.yaml:7: document 1 (Deployment web): spec.strategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0"),
            ("  minReadySeconds: -3\n", "m.yaml:6: document 1 (Deployment web): spec.minReadySeconds: -3 is not a number of seconds"),
        ];
        for (spec, want) in cases {
            let e = load("m.yaml", &deployment(spec, "", "")).err().unwrap_or_else(|| panic!("{spec} loaded"));
            assert!(e.starts_with(want) || e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn reads_the_grace_period_and_the_first_readiness_probe() {
        for handler in [
            "httpGet: {path: /healthz, port: 8080}",
            "tcpSocket: {port: 8080}",
            "exec: {command: [cat, /ready]}",
            "grpc: {port: 9090}",
        ] {
            let (l, w) = lc(&deployment(
                "",
                "      terminationGracePeriodSeconds: 45\n",
                &format!("          readinessProbe:\n            {handler}\n            initialDelaySeconds: 2\n            periodSeconds: 3\n            successThreshold: 2\n            failureThreshold: 4\n"),
            ));
            assert_eq!(l.grace_ns, 45_000_000_000);
            assert_eq!(
                l.readiness,
                Some(Probe {
                    initial_delay_ns: 2_000_000_000,
                    period_ns: 3_000_000_000,
                    success_threshold: 2,
                    failure_threshold: 4
                }),
                "{handler}"
            );
            assert!(w.is_empty(), "{w:?}");
        }
        // Unset or 0 fields take Kubernetes' defaults (10 s, 1, 3).
        let (l, _) = lc(&deployment("", "", "          readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 0}\n"));
        assert_eq!(l.readiness, Some(Probe::default()));
        // A Pod reads the same fields.
        let (l, _) = lc("kind: Pod\nmetadata: {name: p}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n    - name: a\n      readinessProbe: {exec: {command: [true]}, periodSeconds: 1}\n");
        assert_eq!(l.grace_ns, 0);
        assert_eq!(l.readiness.unwrap().period_ns, 1_000_000_000);
    }

    #[test]
    fn rejects_bad_probe_and_grace_values() {
        let e = load("m.yaml", &deployment("", "      terminationGracePeriodSeconds: -1\n", "")).err().unwrap();
        assert!(e.starts_with("m.yaml:9: document 1 (Deployment web): spec.template.spec.terminationGracePeriodSeconds: -1 is not a number of seconds"), "{e}");
        for (field, line) in
            [("initialDelaySeconds", 14), ("periodSeconds", 14), ("successThreshold", 14), ("failureThreshold", 14)]
        {
            let e = load(
                "m.yaml",
                &deployment(
                    "",
                    "",
                    &format!("          readinessProbe:\n            httpGet: {{port: 80}}\n            {field}: -2\n"),
                ),
            )
            .err()
            .unwrap();
            let want = format!("m.yaml:{line}: document 1 (Deployment web): spec.template.spec.containers[1].readinessProbe.{field}: -2");
            assert!(e.starts_with(&want), "{field}: {e}");
        }
        let e = load("m.yaml", "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: a\n      lifecycle: {preStop: {sleep: {seconds: -5}}}\n").err().unwrap();
        assert!(
            e.starts_with("m.yaml:6: document 1 (Pod p): spec.containers[0].lifecycle.preStop.sleep.seconds: -5"),
            "{e}"
        );
    }

    #[test]
    fn reads_a_sleeping_pre_stop_hook() {
        let hooks: [(&str, u64); 6] = [
            ("exec: {command: [sleep, '5']}", 5_000_000_000),
            ("exec: {command: [/bin/sh, -c, sleep 5]}", 5_000_000_000),
            ("exec: {command: [sh, -c, 'sleep 15']}", 15_000_000_000),
            ("exec: {command: [sh, -c, 'sleep 0.5']}", 500_000_000),
            ("exec: {command: [sleep, 2s]}", 2_000_000_000),
            ("sleep: {seconds: 10}", 10_000_000_000),
        ];
        for (hook, ns) in hooks {
            let (l, w) =
                lc(&deployment("", "", &format!("          lifecycle:\n            preStop:\n              {hook}\n")));
            assert_eq!(l.pre_stop_ns, ns, "{hook}");
            assert!(w.is_empty(), "{hook}: {w:?}");
        }
    }

    #[test]
    fn warns_about_a_pre_stop_hook_that_is_not_a_sleep() {
        for hook in [
            "exec: {command: [nginx, -s, quit]}",
            "exec: {command: [sh, -c, 'sleep 5 && nginx -s quit']}",
            "httpGet: {path: /drain, port: 8080}",
        ] {
            let (l, w) =
                lc(&deployment("", "", &format!("          lifecycle:\n            preStop:\n              {hook}\n")));
            assert_eq!(l.pre_stop_ns, 0, "{hook}");
            assert_eq!(w.len(), 1, "{hook}: {w:?}");
            assert!(
                w[0].starts_with("m.yaml:14: document 1 (Deployment web): spec.template.spec.containers[1].lifecycle.preStop: only a sleep"),
                "{}",
                w[0]
            );
            assert!(w[0].contains("emu models this hook as no delay"), "{}", w[0]);
        }
    }
}
