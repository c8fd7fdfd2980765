//! NetworkPolicy objects: `[[network_policies]]` in TOML (the API's fields
//! in snake_case) and `kind: NetworkPolicy` in YAML manifests, both turned
//! into the models' [`NetworkPolicySpec`]. Every field is checked where it
//! is written (file, line, key): operators, CIDRs, `except` blocks, ports,
//! `endPort`, protocols, `policyTypes`.

use std::collections::BTreeMap;

use emu_models::addr::Cidr;
use emu_models::cluster::{Origin, Protocol};
use emu_models::policy::{
    self, Direction, IpBlockSpec, LabelSelector, NetworkPolicySpec, Operator, PeerSpec, PolicyPortSpec, PortRef,
    Requirement, RuleSpec,
};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

// ---------------------------------------------------------------- TOML

/// `[[network_policies]]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicyToml {
    /// Repeat with `{i}` templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    pub name: String,
    #[serde(default = "super::schema::default_ns")]
    pub namespace: String,
    #[serde(default)]
    pub pod_selector: SelectorToml,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<RuleToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<RuleToml>,
}

/// A label selector.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorToml {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<ExprToml>,
}

/// One `match_expressions` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprToml {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// An ingress (`from`) or egress (`to`) rule.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleToml {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<PeerToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<PeerToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PolicyPortToml>,
}

/// A peer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerToml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<SelectorToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<SelectorToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlockToml>,
}

/// An ipBlock.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpBlockToml {
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A rule's port.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPortToml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRefToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i64>,
}

/// A port number or name.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortRefToml {
    Number(i64),
    Name(String),
}

/// `(key suffix, message)` of a field at fault.
type Fault = (String, String);

fn protocol(p: Option<&str>) -> Result<Protocol, String> {
    match p {
        None | Some("TCP") => Ok(Protocol::Tcp),
        Some("UDP") => Ok(Protocol::Udp),
        Some("SCTP") => Ok(Protocol::Sctp),
        Some(o) => Err(format!("protocol `{o}` is not TCP, UDP or SCTP")),
    }
}

/// An ipBlock from its `cidr` and `except` texts. Host bits are cleared,
/// as the API server's `net.ParseCIDR` does (`10.0.0.7/24` is
/// 10.0.0.0/24). An IPv6 block (a `:` in it) matches nothing in emu's IPv4
/// clusters (the loader warns); IPv6 exceptions of an IPv4 block remove
/// nothing. A fault names the except entry (`Some(i)`) or the cidr.
fn ip_block<'a>(cidr: &str, except: impl Iterator<Item = &'a str>) -> Result<IpBlockSpec, (Option<usize>, String)> {
    if cidr.contains(':') {
        let none = Cidr { base: emu_models::addr::Ipv4(0), prefix: 32 };
        return Ok(IpBlockSpec { cidr: none, except: Vec::new(), ipv6: true });
    }
    let cidr = masked(cidr).map_err(|m| (None, m))?;
    let mut out = Vec::new();
    for (i, e) in except.enumerate().filter(|(_, e)| !e.contains(':')) {
        let e = masked(e).map_err(|m| (Some(i), m))?;
        if let Some(m) = policy::except_problem(cidr, e) {
            return Err((Some(i), m));
        }
        out.push(e);
    }
    Ok(IpBlockSpec { cidr, except: out, ipv6: false })
}

fn masked(text: &str) -> Result<Cidr, String> {
    let masked = match text.split_once('/') {
        Some((ip, len)) => match (ip.parse::<emu_models::addr::Ipv4>(), len.parse::<u8>()) {
            (Ok(ip), Ok(len)) if len <= 32 => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                format!("{}/{len}", emu_models::addr::Ipv4(ip.0 & mask))
            }
            _ => text.to_string(),
        },
        None => text.to_string(),
    };
    masked.parse()
}

fn operator(s: &str) -> Result<Operator, String> {
    Operator::parse(s).ok_or_else(|| format!("operator `{s}` is not In, NotIn, Exists or DoesNotExist"))
}

fn direction(s: &str) -> Result<Direction, String> {
    match s {
        "Ingress" => Ok(Direction::Ingress),
        "Egress" => Ok(Direction::Egress),
        o => Err(format!("policy type `{o}` is not Ingress or Egress")),
    }
}

fn port_number(n: i64) -> Result<u32, String> {
    u32::try_from(n).ok().filter(|n| (1..=65535).contains(n)).ok_or_else(|| format!("port {n} is outside 1-65535"))
}

fn selector_toml(key: &str, s: &SelectorToml) -> Result<LabelSelector, Fault> {
    let mut out = LabelSelector::labels(s.match_labels.clone());
    for (i, e) in s.match_expressions.iter().enumerate() {
        let k = format!("{key}.match_expressions[{i}]");
        let r = Requirement {
            key: e.key.clone(),
            operator: operator(&e.operator).map_err(|m| (format!("{k}.operator"), m))?,
            values: e.values.clone(),
        };
        if let Some((f, m)) = policy::requirement_problem(&r) {
            return Err((format!("{k}.{f}"), m));
        }
        out.match_expressions.push(r);
    }
    Ok(out)
}

fn rule_toml(key: &str, r: &RuleToml, dir: Direction) -> Result<RuleSpec, Fault> {
    let (peers, wrong) = match dir {
        Direction::Ingress => (&r.from, ("to", &r.to)),
        Direction::Egress => (&r.to, ("from", &r.from)),
    };
    if !wrong.1.is_empty() {
        return Err((format!("{key}.{}", wrong.0), format!("an {} rule has no `{}`", dir.name(), wrong.0)));
    }
    let side = if dir == Direction::Ingress { "from" } else { "to" };
    let mut out = RuleSpec::default();
    for (j, p) in peers.iter().enumerate() {
        let k = format!("{key}.{side}[{j}]");
        let ip_block = match &p.ip_block {
            None => None,
            Some(b) => Some(ip_block(&b.cidr, b.except.iter().map(String::as_str)).map_err(|(x, m)| match x {
                Some(x) => (format!("{k}.ip_block.except[{x}]"), m),
                None => (format!("{k}.ip_block.cidr"), m),
            })?),
        };
        out.peers.push(PeerSpec {
            pod_selector: p
                .pod_selector
                .as_ref()
                .map(|s| selector_toml(&format!("{k}.pod_selector"), s))
                .transpose()?,
            namespace_selector: p
                .namespace_selector
                .as_ref()
                .map(|s| selector_toml(&format!("{k}.namespace_selector"), s))
                .transpose()?,
            ip_block,
        });
    }
    for (j, p) in r.ports.iter().enumerate() {
        let k = format!("{key}.ports[{j}]");
        let port = match &p.port {
            None => None,
            Some(PortRefToml::Number(n)) => {
                Some(PortRef::Number(port_number(*n).map_err(|m| (format!("{k}.port"), m))?))
            }
            Some(PortRefToml::Name(n)) => Some(PortRef::Name(n.clone())),
        };
        let end_port = p.end_port.map(|e| u32::try_from(e).unwrap_or(0));
        if let Some((f, m)) = policy::port_problem(port.as_ref(), end_port) {
            return Err((format!("{k}.{f}"), m));
        }
        out.ports.push(PolicyPortSpec {
            protocol: protocol(p.protocol.as_deref()).map_err(|m| (format!("{k}.protocol"), m))?,
            port,
            end_port,
        });
    }
    Ok(out)
}

/// The policy at `key` (`network_policies[3]`) of the scenario file; a
/// fault names the key below it.
pub fn from_toml(origin: Origin, p: &NetworkPolicyToml) -> Result<NetworkPolicySpec, Fault> {
    let key = &origin.path;
    let policy_types = match &p.policy_types {
        None => None,
        Some(t) => Some(
            t.iter()
                .enumerate()
                .map(|(i, s)| match direction(s) {
                    Ok(_) if t[..i].iter().any(|x| x == s) => {
                        Err((format!("{key}.policy_types[{i}]"), "listed twice".into()))
                    }
                    Ok(d) => Ok(d),
                    Err(m) => Err((format!("{key}.policy_types[{i}]"), m)),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let mut rules = [Vec::new(), Vec::new()];
    for (d, list) in [(Direction::Ingress, &p.ingress), (Direction::Egress, &p.egress)] {
        for (i, r) in list.iter().enumerate() {
            rules[d as usize].push(rule_toml(&format!("{key}.{}[{i}]", d.name()), r, d)?);
        }
    }
    let [ingress, egress] = rules;
    Ok(NetworkPolicySpec {
        pod_selector: selector_toml(&format!("{key}.pod_selector"), &p.pod_selector)?,
        origin,
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        policy_types,
        ingress,
        egress,
    })
}

// ---------------------------------------------------------------- settings

/// `[network_policy]`: the enforcing implementation (`auto`: eBPF with
/// the eBPF CNI, iptables otherwise) and its costs.
pub(super) fn policy_params(
    ctx: &super::Ctx,
    sc: &super::Scenario,
) -> Result<emu_models::policy::cost::Enforcer, String> {
    use emu_models::policy::cost::{EbpfPolicyParams, Enforcer, IptablesPolicyParams};
    let t = sc.network_policy.clone().unwrap_or_default();
    let ebpf_cni = sc.cni.mode == super::schema::CniMode::Ebpf;
    let ebpf = match t.enforcement {
        super::schema::EnforcementToml::Auto => ebpf_cni,
        super::schema::EnforcementToml::Ebpf => true,
        super::schema::EnforcementToml::Iptables if ebpf_cni => {
            return Err(ctx.err(
                "network_policy.enforcement",
                "iptables enforcement needs netfilter, which the eBPF CNI bypasses (use \"ebpf\" or \"auto\")",
            ))
        }
        super::schema::EnforcementToml::Iptables => false,
    };
    Ok(if ebpf {
        Enforcer::Ebpf(EbpfPolicyParams { lookup_ns: t.ebpf_lookup.ns() })
    } else {
        Enforcer::Iptables(IptablesPolicyParams {
            rule_ns: t.rule_cost.ns(),
            dispatch_ns: t.dispatch.ns(),
            set_ns: t.set_match.ns(),
        })
    })
}

/// Every namespace's labels, from `cluster.namespaces` and the manifests'
/// Namespace objects; a namespace labelled twice, differently, is refused.
pub(super) fn namespace_labels(
    ctx: &super::Ctx,
    c: &super::schema::ClusterToml,
    manifests: Vec<(String, emu_models::cluster::Labels)>,
) -> Result<std::collections::BTreeMap<String, emu_models::cluster::Labels>, String> {
    let mut out = std::collections::BTreeMap::new();
    for (i, n) in c.namespaces.iter().enumerate() {
        if let super::schema::NamespaceToml::Full(f) = n {
            let k = emu_models::policy::NAMESPACE_NAME_LABEL;
            if f.labels.get(k).is_some_and(|v| *v != f.name) {
                return Err(ctx.err(
                    &format!("cluster.namespaces[{i}].labels"),
                    format!("`{k}` is set by Kubernetes to the namespace's name, `{}`", f.name),
                ));
            }
            if out.insert(f.name.clone(), f.labels.clone()).is_some() {
                return Err(
                    ctx.err(&format!("cluster.namespaces[{i}]"), format!("namespace `{}` is labelled twice", f.name))
                );
            }
        }
    }
    for (name, labels) in manifests {
        match out.get(&name) {
            Some(l) if *l != labels && !labels.is_empty() => {
                return Err(format!(
                    "{}: namespace `{name}` has labels in cluster.namespaces and different ones in a manifest",
                    ctx.file
                ))
            }
            Some(_) => {}
            None => {
                out.insert(name, labels);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- YAML

/// A NetworkPolicy document (other documents read as this too, and are
/// skipped by kind).
#[derive(Deserialize)]
struct Doc {
    kind: Option<String>,
    #[serde(default)]
    spec: Option<Spanned<SpecY>>,
    /// A `kind: List`'s objects.
    #[serde(default)]
    items: Vec<Doc>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SpecY {
    pod_selector: Option<SelectorY>,
    policy_types: Option<Vec<Spanned<String>>>,
    ingress: Option<Vec<Spanned<RuleY>>>,
    egress: Option<Vec<Spanned<RuleY>>>,
}

/// A `metav1.LabelSelector` in YAML (Deployments' selectors read it too).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelectorY {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<Spanned<ExprY>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprY {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleY {
    from: Option<Vec<Spanned<PeerY>>>,
    to: Option<Vec<Spanned<PeerY>>>,
    ports: Option<Vec<Spanned<PortY>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PeerY {
    pod_selector: Option<SelectorY>,
    namespace_selector: Option<SelectorY>,
    ip_block: Option<IpBlockY>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpBlockY {
    cidr: Spanned<String>,
    #[serde(default)]
    except: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PortY {
    protocol: Option<String>,
    port: Option<PortRefY>,
    end_port: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortRefY {
    Number(i64),
    Name(String),
}

/// Where a YAML field is: `file:line: document N (NetworkPolicy name)`.
struct At<'a> {
    file: &'a str,
    doc: &'a str,
}

impl At<'_> {
    fn err<T>(&self, line: u64, field: &str, msg: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("{}:{line}: {}.{field}: {msg}", self.file, self.doc))
    }
}

impl SelectorY {
    /// The selector, each requirement checked at its line.
    pub fn read(&self, file: &str, doc: &str, field: &str) -> Result<LabelSelector, String> {
        let at = At { file, doc };
        let mut out = LabelSelector::labels(self.match_labels.clone());
        for (i, e) in self.match_expressions.iter().enumerate() {
            let line = e.referenced.line();
            let k = format!("{field}.matchExpressions[{i}]");
            let op = match operator(&e.value.operator) {
                Ok(op) => op,
                Err(m) => return at.err(line, &format!("{k}.operator"), m),
            };
            let r = Requirement { key: e.value.key.clone(), operator: op, values: e.value.values.clone() };
            if let Some((f, m)) = policy::requirement_problem(&r) {
                return at.err(line, &format!("{k}.{f}"), m);
            }
            out.match_expressions.push(r);
        }
        Ok(out)
    }
}

fn rule_yaml(at: &At, key: &str, r: &Spanned<RuleY>, dir: Direction) -> Result<RuleSpec, String> {
    let (side, peers, wrong) = match dir {
        Direction::Ingress => ("from", &r.value.from, ("to", &r.value.to)),
        Direction::Egress => ("to", &r.value.to, ("from", &r.value.from)),
    };
    if wrong.1.is_some() {
        return at.err(
            r.referenced.line(),
            &format!("{key}.{}", wrong.0),
            format!("an {} rule has no `{}`", dir.name(), wrong.0),
        );
    }
    let mut out = RuleSpec::default();
    for (j, p) in peers.iter().flatten().enumerate() {
        let k = format!("{key}.{side}[{j}]");
        let line = p.referenced.line();
        let ip_block = match &p.value.ip_block {
            None => None,
            Some(b) => match ip_block(&b.cidr.value, b.except.iter().map(|e| e.value.as_str())) {
                Ok(b) => Some(b),
                Err((Some(x), m)) => {
                    return at.err(b.except[x].referenced.line(), &format!("{k}.ipBlock.except[{x}]"), m)
                }
                Err((None, m)) => return at.err(b.cidr.referenced.line(), &format!("{k}.ipBlock.cidr"), m),
            },
        };
        let sel = |s: &Option<SelectorY>, f: &str| {
            s.as_ref().map(|s| s.read(at.file, at.doc, &format!("{k}.{f}"))).transpose()
        };
        let peer = PeerSpec {
            pod_selector: sel(&p.value.pod_selector, "podSelector")?,
            namespace_selector: sel(&p.value.namespace_selector, "namespaceSelector")?,
            ip_block,
        };
        if peer.ip_block.is_some() && (peer.pod_selector.is_some() || peer.namespace_selector.is_some()) {
            return at.err(line, &k, "a peer with an ipBlock may not also have a podSelector or namespaceSelector");
        }
        if peer.ip_block.is_none() && peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
            return at.err(line, &k, "a peer needs a podSelector, a namespaceSelector or an ipBlock");
        }
        out.peers.push(peer);
    }
    for (j, p) in r.value.ports.iter().flatten().enumerate() {
        let k = format!("{key}.ports[{j}]");
        let line = p.referenced.line();
        let port = match &p.value.port {
            None => None,
            Some(PortRefY::Number(n)) => match port_number(*n) {
                Ok(n) => Some(PortRef::Number(n)),
                Err(m) => return at.err(line, &format!("{k}.port"), m),
            },
            Some(PortRefY::Name(n)) => Some(PortRef::Name(n.clone())),
        };
        let end_port = p.value.end_port.map(|e| u32::try_from(e).unwrap_or(0));
        if let Some((f, m)) = policy::port_problem(port.as_ref(), end_port) {
            let f = if f == "end_port" { "endPort" } else { f };
            return at.err(line, &format!("{k}.{f}"), m);
        }
        let protocol = match protocol(p.value.protocol.as_deref()) {
            Ok(p) => p,
            Err(m) => return at.err(line, &format!("{k}.protocol"), m),
        };
        out.ports.push(PolicyPortSpec { protocol, port, end_port });
    }
    Ok(out)
}

/// A NetworkPolicy document found by the manifest loader.
pub struct Found {
    /// Its index among the file's documents (0-based).
    pub doc: usize,
    /// Its index among the items of a `kind: List` document.
    pub item: Option<usize>,
    /// Its origin (file, line of `kind`, `document N (NetworkPolicy name)`).
    pub origin: Origin,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (default `default`).
    pub namespace: String,
}

/// The NetworkPolicy documents `found` of a manifest file.
pub fn from_yaml(text: &str, found: &[Found]) -> Result<Vec<NetworkPolicySpec>, String> {
    let docs: Vec<Option<Doc>> = serde_saphyr::from_multiple(text).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or("").to_string();
        let file = found.first().map_or("", |o| o.origin.file.as_str()).to_string();
        match e.location() {
            Some(l) => format!("{file}:{}:{}: {}", l.line(), l.column(), super::manifests::plain_yaml_message(&first)),
            None => format!("{file}: {}", super::manifests::plain_yaml_message(&first)),
        }
    })?;
    let mut out = Vec::new();
    for Found { doc: i, item, origin, name, namespace } in found {
        let Some(Some(doc)) = docs.get(*i) else { continue };
        let Some(doc) = (match item {
            None => Some(doc),
            Some(j) => doc.items.get(*j),
        }) else {
            continue;
        };
        debug_assert_eq!(doc.kind.as_deref(), Some("NetworkPolicy"));
        let at = At { file: &origin.file, doc: &origin.path };
        // An absent spec or podSelector is `{}`: every pod of the namespace.
        let empty = SpecY::default();
        let s = doc.spec.as_ref().map_or(&empty, |sp| &sp.value);
        let policy_types = match &s.policy_types {
            None => None,
            Some(t) => {
                let mut v = Vec::new();
                for (k, d) in t.iter().enumerate() {
                    let line = d.referenced.line();
                    match direction(&d.value) {
                        Ok(d) if v.contains(&d) => {
                            return at.err(line, &format!("spec.policyTypes[{k}]"), "listed twice")
                        }
                        Ok(d) => v.push(d),
                        Err(m) => return at.err(line, &format!("spec.policyTypes[{k}]"), m),
                    }
                }
                Some(v)
            }
        };
        let mut rules = [Vec::new(), Vec::new()];
        for (d, list) in [(Direction::Ingress, &s.ingress), (Direction::Egress, &s.egress)] {
            for (k, r) in list.iter().flatten().enumerate() {
                rules[d as usize].push(rule_yaml(&at, &format!("spec.{}[{k}]", d.name()), r, d)?);
            }
        }
        let [ingress, egress] = rules;
        let pod_selector = match &s.pod_selector {
            Some(sel) => sel.read(&origin.file, &origin.path, "spec.podSelector")?,
            None => LabelSelector::default(),
        };
        out.push(NetworkPolicySpec {
            origin: origin.clone(),
            name: name.clone(),
            namespace: namespace.clone(),
            pod_selector,
            policy_types,
            ingress,
            egress,
        });
    }
    Ok(out)
}
