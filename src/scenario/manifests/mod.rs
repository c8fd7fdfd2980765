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

mod ingress;
mod pods;
mod services;
mod yaml;

use emu_models::cluster::ingress::IngressSpec;
use emu_models::cluster::{Labels, Origin, PodSpec, ServiceSpec};
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

/// One document being read: the object, its spec's keys, where it is,
/// its name and namespace.
struct Doc {
    obj: yaml::Object,
    keys: Option<yaml::SpecKeys>,
    origin: Origin,
    name: String,
    namespace: String,
}

/// The line of a document's spec.
fn line_of(s: &Spanned<yaml::Spec>) -> u32 {
    s.referenced.line() as u32
}

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
    let docs: Vec<Option<yaml::Object>> = serde_saphyr::from_multiple(text).map_err(yaml_err)?;
    // The spec keys of every document, to catch what the typed read skips.
    let keys: Vec<Option<yaml::SpecKeys>> = serde_saphyr::from_multiple(text).map_err(yaml_err)?;
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
                policies.push(crate::scenario::netpol::Found { doc: i, origin, name, namespace })
            }
            "Pod" => pods::pod(Doc { obj, keys, origin, name, namespace }, &mut out)?,
            "Deployment" => pods::deployment(Doc { obj, keys, origin, name, namespace }, &mut out)?,
            "Service" => services::service(Doc { obj, keys, origin, name, namespace }, &mut out)?,
            "Ingress" => ingress::ingress(Doc { obj, keys, origin, name, namespace }, &mut out)?,
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
        out.network_policies = crate::scenario::netpol::from_yaml(text, &policies)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
