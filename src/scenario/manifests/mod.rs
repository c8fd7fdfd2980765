//! Kubernetes manifests: Pod, Service, Deployment, Namespace and Ingress
//! objects from multi-document YAML files, turned into the same specs the
//! TOML objects become.
//!
//! Only what changes networking is read. Fields that would change it but
//! that emu does not model (dnsConfig, IPv6, externalIPs, loadBalancerIP,
//! trafficDistribution, ...) are errors, never silently ignored; what is
//! modelled only in part (Ingress TLS, a preStop hook that is not a sleep,
//! a pod's hostPort) is a warning; kinds
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
use std::collections::BTreeMap;

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
    /// Endpoints written for Services without selectors (EndpointSlice,
    /// Endpoints): where, the Service's namespace and name, the endpoints.
    pub endpoints: Vec<(Origin, String, String, Vec<emu_models::cluster::ManualEndpoint>)>,
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

/// Reads every object of the manifest file `file` (text `text`): each
/// document, and each item of a `kind: List` document (what `kubectl get
/// -o yaml` prints).
pub fn load(file: &str, text: &str) -> Result<Loaded, String> {
    let yaml_err = |e: serde_saphyr::Error| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("");
        match e.location() {
            Some(l) => format!("{file}:{}:{}: {}", l.line(), l.column(), plain_yaml_message(first)),
            None => format!("{file}: {}", plain_yaml_message(first)),
        }
    };
    let docs: Vec<Option<Spanned<yaml::Object>>> = serde_saphyr::from_multiple(text).map_err(yaml_err)?;
    // The spec keys of every document, to catch what the typed read skips.
    let keys: Vec<Option<yaml::SpecKeys>> = serde_saphyr::from_multiple(text).map_err(yaml_err)?;
    let mut r = Reader { file, out: Loaded::default(), policies: Vec::new(), skipped: BTreeMap::new() };
    for (i, (doc, keys)) in docs.into_iter().zip(keys).enumerate() {
        let Some(doc) = doc else { continue };
        let line = doc.referenced.line() as u32;
        let obj = doc.value;
        if obj.kind.as_ref().is_some_and(|k| k.value == "List") {
            let mut item_keys = keys.map(|k| k.items).unwrap_or_default().into_iter();
            for (j, item) in obj.items.into_iter().enumerate() {
                let at = Place { doc: i, item: Some(j), line };
                r.object(item, item_keys.next(), at)?;
            }
        } else {
            r.object(obj, keys, Place { doc: i, item: None, line })?;
        }
    }
    let Reader { mut out, policies, skipped, .. } = r;
    for (kind, (n, first)) in skipped {
        let what = if n == 1 { "object".to_string() } else { format!("objects, the first at {first}") };
        let at = if n == 1 { format!("{first}: ") } else { format!("{file}: ") };
        out.warnings.push(format!("{at}kind {kind}: {n} {what}: skipped (emu models no part of it)"));
    }
    if !policies.is_empty() {
        out.network_policies = crate::scenario::netpol::from_yaml(text, &policies)?;
    }
    Ok(out)
}

/// Where an object is: its document (and item of a List), the document's line.
#[derive(Clone, Copy)]
struct Place {
    doc: usize,
    item: Option<usize>,
    line: u32,
}

/// A manifest file being read.
struct Reader<'a> {
    file: &'a str,
    out: Loaded,
    policies: Vec<crate::scenario::netpol::Found>,
    /// Kinds skipped: how many objects, and where the first was.
    skipped: BTreeMap<String, (u32, Origin)>,
}

impl Reader<'_> {
    /// Reads one object at `at`.
    fn object(&mut self, obj: yaml::Object, keys: Option<yaml::SpecKeys>, at: Place) -> Result<(), String> {
        let where_ = match at.item {
            None => format!("document {}", at.doc + 1),
            Some(j) => format!("document {} item {j}", at.doc + 1),
        };
        let (kind, api) = match (&obj.kind, &obj.api_version) {
            (Some(k), Some(a)) => (k.value.clone(), a.value.clone()),
            (k, _) => {
                let line = k.as_ref().map_or(at.line, |k| k.referenced.line() as u32);
                let missing = if k.is_none() { "kind" } else { "apiVersion" };
                return Err(format!(
                    "{}:{line}: {where_}: no {missing}: not a Kubernetes object (every object has apiVersion and kind)",
                    self.file
                ));
            }
        };
        let name = obj.metadata.name.clone().unwrap_or_default();
        let line = obj.kind.as_ref().map_or(at.line, |k| k.referenced.line() as u32);
        let origin = Origin { file: self.file.to_string(), line, path: format!("{where_} ({kind} {name})") };
        if name.is_empty() {
            return Err(format!("{origin}: metadata.name is required"));
        }
        let namespace = obj.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let d = Doc { obj, keys, origin, name, namespace };
        let out = &mut self.out;
        match kind.as_str() {
            "Namespace" => {
                out.namespace_labels.push((d.name.clone(), d.obj.metadata.labels));
                out.namespaces.push(d.name);
            }
            "NetworkPolicy" => self.policies.push(network_policy(d, &api, at)?),
            "Pod" => pods::pod(d, out)?,
            "Deployment" => pods::workload(d, out, pods::Controller::Deployment)?,
            "ReplicaSet" => pods::workload(d, out, pods::Controller::ReplicaSet)?,
            "StatefulSet" => pods::workload(d, out, pods::Controller::StatefulSet)?,
            "DaemonSet" => pods::workload(d, out, pods::Controller::DaemonSet)?,
            "Job" => pods::job(d, out, false)?,
            "CronJob" => pods::job(d, out, true)?,
            "Service" => services::service(d, out)?,
            "Ingress" => ingress::ingress(d, out)?,
            "EndpointSlice" => services::endpoints(d, out, true)?,
            "Endpoints" => services::endpoints(d, out, false)?,
            _ => self.skipped.entry(kind).or_insert((0, d.origin)).0 += 1,
        }
        Ok(())
    }
}

/// A NetworkPolicy of networking.k8s.io/v1, checked for its fields here
/// and read by [`crate::scenario::netpol::from_yaml`].
fn network_policy(d: Doc, api: &str, at: Place) -> Result<crate::scenario::netpol::Found, String> {
    let Doc { keys, origin, name, namespace, .. } = d;
    if api != "networking.k8s.io/v1" {
        return Err(format!(
            "{origin}: apiVersion `{api}`: emu reads NetworkPolicy of networking.k8s.io/v1 only \
             (CNI-specific policy kinds are not modelled)"
        ));
    }
    for k in keys.iter().flat_map(|k| k.spec.keys()) {
        if !["podSelector", "policyTypes", "ingress", "egress"].contains(&k.as_str()) {
            return Err(format!("{origin}: spec.{k} is not a NetworkPolicy field"));
        }
    }
    Ok(crate::scenario::netpol::Found { doc: at.doc, item: at.item, origin, name, namespace })
}

#[cfg(test)]
mod tests;
