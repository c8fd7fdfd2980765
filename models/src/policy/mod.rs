//! NetworkPolicy (networking.k8s.io/v1): the policies compiled against
//! the cluster's workloads and namespaces, and the one evaluation the data
//! path and `emu reach` both use ([`Policies::check`]).
//!
//! Semantics, as the API reference and the upstream e2e tests define them:
//! a pod selected by no policy of a direction is not isolated in that
//! direction (everything passes); once selected, only what some rule of
//! some selecting policy allows passes (the union). `policyTypes` defaults
//! to Ingress, plus Egress when there are egress rules. A rule with no
//! peers allows every peer; no ports, every port. A peer is a pod selector
//! (in the policy's namespace), a namespace selector (every pod of those
//! namespaces), both (those pods of those namespaces), or an `ipBlock`
//! (addresses, minus `except`). Ports are pod ports (after kube-proxy's
//! DNAT); a named port is the destination pod's container port of that
//! name and protocol. Traffic from a pod's own node is always allowed
//! (kubernetes.io: "Pods cannot ... block access from their resident
//! node").
//!
//! Membership is precomputed per workload (every pod of a workload has its
//! labels and namespace): a check reads the policies selecting the local
//! pod's workload (CSR lists) and, per peer, one binary search in the
//! remote workload's sorted peer classes. Nothing scans pods or policies.

pub mod cost;
mod spec;
#[cfg(test)]
mod tests;

use crate::hash::HashMap;
use std::collections::BTreeMap;

pub use spec::{
    Direction, IpBlockSpec, LabelSelector, NetworkPolicySpec, Operator, PeerSpec, PolicyPortSpec, PortRef, Requirement,
    RuleSpec,
};

use crate::addr::Ipv4;
use crate::cluster::{BuildError, Labels, Origin, Pod, Protocol};

/// The label every namespace carries with its own name (Kubernetes 1.22+).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A compiled policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Where it was declared.
    pub origin: Origin,
    /// Name.
    pub name: String,
    /// Namespace index.
    pub namespace: u32,
    /// Directions it isolates (ingress, egress).
    pub types: [bool; 2],
    /// Workloads it selects.
    pub workloads: Vec<u32>,
}

/// One rule, flattened: ranges into the flat peers and ports.
#[derive(Clone, Copy, Debug)]
struct Rule {
    /// No peers: every peer.
    peers: (u32, u32),
    /// No ports: every port.
    ports: (u32, u32),
    /// Distinct protocols of the ports (at least 1): the iptables rules an
    /// enforcing CNI renders per peer.
    protocols: u32,
}

#[derive(Clone, Copy, Debug)]
enum Peer {
    /// Pods of a peer class.
    Class(u32),
    /// Addresses: an index into the ipBlocks.
    Block(u32),
}

#[derive(Clone, Copy, Debug)]
struct Port {
    protocol: Protocol,
    /// Index among the rule's distinct protocols.
    group: u32,
    at: PortAt,
}

#[derive(Clone, Copy, Debug)]
enum PortAt {
    Any,
    Range(u16, u16),
    /// An index into the port names.
    Name(u32),
}

/// A policy selecting a workload in one direction: the policy and the
/// range of its rules (so a check reads no `Policy`).
#[derive(Clone, Copy, Debug)]
struct Sel {
    policy: u32,
    rules: (u32, u32),
}

/// The other end of a connection, as the checked pod's CNI sees it.
#[derive(Clone, Copy, Debug)]
pub enum Remote<'a> {
    /// A pod (its spec pod: labels, namespace, workload, ports) at `ip`.
    Pod(&'a Pod, Ipv4),
    /// The checked pod's own node (kubelet, host processes, SNAT to the
    /// node's bridge address): ingress from it always passes.
    Host,
    /// Any other address: an external client, another node (a NodePort's
    /// SNAT), a node-local DNS cache.
    Addr(Ipv4),
}

/// A first packet to a pod, as the enforcing CNI sees it (after
/// kube-proxy's DNAT).
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// The source pod (its spec pod) and its address; `None` for an
    /// external client or a node.
    pub from: Option<(&'a Pod, Ipv4)>,
    /// The source address the destination sees.
    pub src: Ipv4,
    /// The destination pod (its spec pod), its address and its node.
    pub to: &'a Pod,
    /// The destination pod's address.
    pub to_ip: Ipv4,
    /// The destination pod's node.
    pub to_node: &'a crate::cluster::Node,
    /// Destination port (the pod's).
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// What a check decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Whether the packet passes.
    pub allowed: bool,
    /// Whether some policy selects the pod in this direction.
    pub isolated: bool,
    /// The first policy (in evaluation order) whose rule allowed it.
    pub by: Option<u32>,
    /// Rendered rules an iptables enforcer passes to reach the verdict
    /// (policy chain jumps, rules, the final drop).
    pub rules: u32,
}

/// Every policy of the cluster, compiled.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    /// Policies in evaluation order: by namespace, then name.
    pub list: Vec<Policy>,
    /// Per workload: the policies selecting it per direction (CSR).
    selects: [Csr<Sel>; 2],
    /// Per workload: the peer classes it belongs to, sorted (CSR).
    member: Csr<u32>,
    /// Every rule, peer, port, ipBlock and port name, flat.
    rules: Vec<Rule>,
    peers: Vec<Peer>,
    ports: Vec<Port>,
    blocks: Vec<IpBlockSpec>,
    names: Vec<String>,
}

/// Lists per workload, flattened.
#[derive(Clone, Debug)]
struct Csr<T> {
    start: Vec<u32>,
    items: Vec<T>,
}

impl<T> Default for Csr<T> {
    fn default() -> Self {
        Csr { start: Vec::new(), items: Vec::new() }
    }
}

impl<T> Csr<T> {
    fn new(lists: Vec<Vec<T>>) -> Csr<T> {
        let mut start = Vec::with_capacity(lists.len() + 1);
        let mut items = Vec::new();
        start.push(0);
        for l in lists {
            items.extend(l);
            start.push(items.len() as u32);
        }
        Csr { start, items }
    }
    #[inline]
    fn of(&self, w: u32) -> &[T] {
        match (self.start.get(w as usize), self.start.get(w as usize + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// What [`Policies::compile`] needs of a workload.
pub struct WorkloadLabels<'a> {
    /// Namespace index.
    pub namespace: u32,
    /// Its pods' labels.
    pub labels: &'a Labels,
    /// Its pods are hostNetwork: no policy selects them, no pod selector
    /// matches them as peers (their traffic is their node's).
    pub host_network: bool,
}

fn err(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> BuildError {
    BuildError { origin: origin.clone(), field: field.into(), message: message.into() }
}

impl Policies {
    /// Whether there is no policy at all (nothing is ever checked).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Validates `specs` and compiles them against the namespaces (names
    /// and labels, `kubernetes.io/metadata.name` included) and workloads.
    pub fn compile(
        specs: &[NetworkPolicySpec],
        namespaces: &[String],
        ns_labels: &[Labels],
        workloads: &[WorkloadLabels],
    ) -> Result<Policies, BuildError> {
        if specs.is_empty() {
            return Ok(Policies::default());
        }
        let mut order: Vec<(u32, &NetworkPolicySpec)> = Vec::with_capacity(specs.len());
        for s in specs {
            let ns = namespaces.iter().position(|n| *n == s.namespace).ok_or_else(|| {
                err(
                    &s.origin,
                    "namespace",
                    format!("namespace `{}` does not exist; declare it in cluster.namespaces", s.namespace),
                )
            })?;
            validate(s)?;
            order.push((ns as u32, s));
        }
        order.sort_by(|a, b| (&namespaces[a.0 as usize], &a.1.name).cmp(&(&namespaces[b.0 as usize], &b.1.name)));
        for w in order.windows(2) {
            if w[0].0 == w[1].0 && w[0].1.name == w[1].1.name {
                return Err(err(
                    &w[1].1.origin,
                    "name",
                    format!("NetworkPolicy `{}` is declared twice in namespace `{}`", w[1].1.name, w[1].1.namespace),
                ));
            }
        }
        let index = WorkloadIndex::new(workloads);
        let mut out = Policies::default();
        let mut classes: BTreeMap<(Vec<u32>, LabelSelector), u32> = BTreeMap::new();
        let mut selects: [Vec<Vec<Sel>>; 2] = [vec![Vec::new(); workloads.len()], vec![Vec::new(); workloads.len()]];
        for (i, &(ns, s)) in order.iter().enumerate() {
            let selected = index.select(workloads, &[ns], &s.pod_selector);
            let types = s.types();
            let mut code = [(0, 0); 2];
            for (d, specs) in [(Direction::Ingress, &s.ingress), (Direction::Egress, &s.egress)] {
                let first = out.rules.len() as u32;
                for r in specs {
                    let rule = out.rule(r, ns, namespaces, ns_labels, &mut classes);
                    out.rules.push(rule);
                }
                code[d as usize] = (first, out.rules.len() as u32);
                if types[d as usize] {
                    for &w in &selected {
                        selects[d as usize][w as usize].push(Sel { policy: i as u32, rules: code[d as usize] });
                    }
                }
            }
            out.list.push(Policy {
                origin: s.origin.clone(),
                name: s.name.clone(),
                namespace: ns,
                types,
                workloads: selected,
            });
        }
        // Peer classes: the workloads of each, then inverted per workload.
        let mut member = vec![Vec::new(); workloads.len()];
        for ((scope, sel), &c) in &classes {
            for w in index.select(workloads, scope, sel) {
                member[w as usize].push(c);
            }
        }
        for m in &mut member {
            m.sort_unstable();
        }
        let [ingress, egress] = selects;
        out.selects = [Csr::new(ingress), Csr::new(egress)];
        out.member = Csr::new(member);
        Ok(out)
    }

    /// Flattens rule `r` of a policy of namespace `ns`.
    fn rule(
        &mut self,
        r: &RuleSpec,
        ns: u32,
        namespaces: &[String],
        ns_labels: &[Labels],
        classes: &mut BTreeMap<(Vec<u32>, LabelSelector), u32>,
    ) -> Rule {
        let first_peer = self.peers.len() as u32;
        for p in &r.peers {
            let peer = match &p.ip_block {
                Some(b) => {
                    self.blocks.push(b.clone());
                    Peer::Block(self.blocks.len() as u32 - 1)
                }
                None => {
                    let scope = match &p.namespace_selector {
                        None => vec![ns],
                        Some(sel) => {
                            (0..namespaces.len() as u32).filter(|&n| sel.matches(&ns_labels[n as usize])).collect()
                        }
                    };
                    let pods = p.pod_selector.clone().unwrap_or_default();
                    let next = classes.len() as u32;
                    Peer::Class(*classes.entry((scope, pods)).or_insert(next))
                }
            };
            self.peers.push(peer);
        }
        let first_port = self.ports.len() as u32;
        let mut protos: Vec<Protocol> = Vec::new();
        for p in &r.ports {
            let group = match protos.iter().position(|&x| x == p.protocol) {
                Some(g) => g,
                None => {
                    protos.push(p.protocol);
                    protos.len() - 1
                }
            } as u32;
            let at = match &p.port {
                None => PortAt::Any,
                Some(PortRef::Number(n)) => PortAt::Range(*n as u16, p.end_port.unwrap_or(*n) as u16),
                Some(PortRef::Name(n)) => {
                    self.names.push(n.clone());
                    PortAt::Name(self.names.len() as u32 - 1)
                }
            };
            self.ports.push(Port { protocol: p.protocol, group, at });
        }
        Rule {
            peers: (first_peer, self.peers.len() as u32),
            ports: (first_port, self.ports.len() as u32),
            protocols: protos.len().max(1) as u32,
        }
    }

    /// The policies (indices into `list`) selecting workload `w` in
    /// direction `d`, in evaluation order.
    pub fn selecting(&self, d: Direction, w: u32) -> impl Iterator<Item = u32> + '_ {
        self.selects[d as usize].of(w).iter().map(|s| s.policy)
    }

    /// The egress check of `p` on its source pod's node (`None`: no
    /// source pod, nothing to check).
    pub fn egress(&self, p: &Packet) -> Option<Verdict> {
        let (src, _) = p.from?;
        Some(self.check(Direction::Egress, src, Remote::Pod(p.to, p.to_ip), p.port, p.protocol))
    }

    /// The ingress check of `p` on its destination pod's node, against the
    /// source address the pod sees: the source pod's own address, its
    /// node's (the resident node: always allowed), or any other address
    /// (another node's after a NodePort's SNAT, an external client's).
    pub fn ingress(&self, p: &Packet) -> Verdict {
        let remote = match p.from {
            Some((pod, ip)) if ip == p.src => Remote::Pod(pod, ip),
            _ if p.src == p.to_node.ip || p.src == p.to_node.bridge_ip => Remote::Host,
            _ => Remote::Addr(p.src),
        };
        self.check(Direction::Ingress, p.to, remote, p.port, p.protocol)
    }

    /// Whether a packet between `local` (the pod whose CNI checks it: the
    /// destination for ingress, the source for egress) and `remote` on
    /// destination port `port`/`protocol` passes direction `d`.
    pub fn check(&self, d: Direction, local: &Pod, remote: Remote, port: u16, protocol: Protocol) -> Verdict {
        let selecting = self.selects[d as usize].of(local.workload);
        if selecting.is_empty() {
            return Verdict { allowed: true, isolated: false, by: None, rules: 0 };
        }
        if d == Direction::Ingress && matches!(remote, Remote::Host) {
            return Verdict { allowed: true, isolated: true, by: None, rules: 0 };
        }
        // A named port is the destination's: the local pod's for ingress.
        let named_on = match (d, remote) {
            (Direction::Ingress, _) => Some(local),
            (Direction::Egress, Remote::Pod(p, _)) => Some(p),
            _ => None,
        };
        // The remote pod's peer classes, read once.
        let classes = match remote {
            Remote::Pod(p, _) => self.member.of(p.workload),
            _ => &[],
        };
        let mut passed = 0u32;
        for sel in selecting {
            passed += 1; // the jump to the policy's chain
            for rule in &self.rules[sel.rules.0 as usize..sel.rules.1 as usize] {
                match self.rule_position(rule, remote, classes, port, protocol, named_on) {
                    Ok(at) => {
                        return Verdict { allowed: true, isolated: true, by: Some(sel.policy), rules: passed + at }
                    }
                    Err(all) => passed += all,
                }
            }
        }
        Verdict { allowed: false, isolated: true, by: None, rules: passed + 1 }
    }

    /// `Ok(k)`: the rule allows the packet at its `k`-th rendered rule;
    /// `Err(n)`: it does not, after its `n` rendered rules.
    fn rule_position(
        &self,
        rule: &Rule,
        remote: Remote,
        classes: &[u32],
        port: u16,
        protocol: Protocol,
        named_on: Option<&Pod>,
    ) -> Result<u32, u32> {
        let peers = &self.peers[rule.peers.0 as usize..rule.peers.1 as usize];
        let ports = &self.ports[rule.ports.0 as usize..rule.ports.1 as usize];
        let rendered = peers.len().max(1) as u32 * rule.protocols;
        let group = if ports.is_empty() {
            Some(0)
        } else {
            ports.iter().find(|p| self.port_matches(p, port, protocol, named_on)).map(|p| p.group)
        };
        let Some(group) = group else { return Err(rendered) };
        if peers.is_empty() {
            return Ok(group + 1);
        }
        let hit = |p: &Peer| match (*p, remote) {
            (Peer::Class(c), Remote::Pod(..)) => classes.binary_search(&c).is_ok(),
            (Peer::Block(b), Remote::Pod(_, ip) | Remote::Addr(ip)) => self.blocks[b as usize].contains(ip),
            _ => false,
        };
        match peers.iter().position(hit) {
            Some(k) => Ok(k as u32 * rule.protocols + group + 1),
            None => Err(rendered),
        }
    }

    fn port_matches(&self, p: &Port, port: u16, protocol: Protocol, named_on: Option<&Pod>) -> bool {
        p.protocol == protocol
            && match p.at {
                PortAt::Any => true,
                PortAt::Range(a, b) => (a..=b).contains(&port),
                PortAt::Name(n) => named_on.is_some_and(|pod| {
                    let n = Some(self.names[n as usize].as_str());
                    pod.listens.iter().any(|l| l.port == port && l.protocol == protocol && l.name.as_deref() == n)
                }),
            }
    }
}

/// The API server's validation of a policy's fields, with the field path.
fn validate(s: &NetworkPolicySpec) -> Result<(), BuildError> {
    let o = &s.origin;
    selector(o, "pod_selector", &s.pod_selector)?;
    for (dir, rules) in [("ingress", &s.ingress), ("egress", &s.egress)] {
        let peers = if dir == "ingress" { "from" } else { "to" };
        for (i, r) in rules.iter().enumerate() {
            for (j, p) in r.peers.iter().enumerate() {
                let f = format!("{dir}[{i}].{peers}[{j}]");
                if let Some(sel) = &p.pod_selector {
                    selector(o, &format!("{f}.pod_selector"), sel)?;
                }
                if let Some(sel) = &p.namespace_selector {
                    selector(o, &format!("{f}.namespace_selector"), sel)?;
                }
                match &p.ip_block {
                    Some(_) if p.pod_selector.is_some() || p.namespace_selector.is_some() => {
                        return Err(err(o, f, "a peer with an ipBlock may not also have a pod or namespace selector"))
                    }
                    Some(b) => {
                        for (k, e) in b.except.iter().enumerate() {
                            if let Some(m) = except_problem(b.cidr, *e) {
                                return Err(err(o, format!("{f}.ip_block.except[{k}]"), m));
                            }
                        }
                    }
                    None if p.pod_selector.is_none() && p.namespace_selector.is_none() => {
                        return Err(err(o, f, "a peer needs a pod selector, a namespace selector or an ipBlock"))
                    }
                    None => {}
                }
            }
            for (j, p) in r.ports.iter().enumerate() {
                let f = format!("{dir}[{i}].ports[{j}]");
                if let Some((key, m)) = port_problem(p.port.as_ref(), p.end_port) {
                    return Err(err(o, format!("{f}.{key}"), m));
                }
            }
        }
    }
    Ok(())
}

/// What is wrong with a rule's `port` and `endPort`, if anything: the key
/// at fault (`port` or `end_port`) and why.
pub fn port_problem(port: Option<&PortRef>, end_port: Option<u32>) -> Option<(&'static str, String)> {
    match (port, end_port) {
        (Some(PortRef::Number(n)), _) if !(1..=65535).contains(n) => {
            Some(("port", format!("port {n} is outside 1-65535")))
        }
        (Some(PortRef::Name(n)), _) if !valid_port_name(n) => {
            Some(("port", format!("`{n}` is not a port name (1-15 lowercase letters, digits and '-', with a letter)")))
        }
        (Some(PortRef::Number(n)), Some(e)) if e < *n || e > 65535 => {
            Some(("end_port", format!("endPort {e} must be at least port {n} and at most 65535")))
        }
        (Some(PortRef::Name(_)) | None, Some(_)) => Some(("end_port", "endPort needs a numeric port".into())),
        _ => None,
    }
}

/// What is wrong with an `except` block of an ipBlock `cidr`, if anything.
pub fn except_problem(cidr: crate::addr::Cidr, e: crate::addr::Cidr) -> Option<String> {
    (e.prefix <= cidr.prefix || !cidr.contains(e.base))
        .then(|| format!("{e} is not a strict subset of the ipBlock's cidr {cidr}"))
}

/// What is wrong with a `matchExpressions` entry, if anything: the key at
/// fault (`key` or `values`) and why.
pub fn requirement_problem(r: &Requirement) -> Option<(&'static str, String)> {
    match r.operator {
        _ if r.key.is_empty() => Some(("key", "the key is empty".into())),
        Operator::In | Operator::NotIn if r.values.is_empty() => {
            Some(("values", format!("operator {} needs at least one value", r.operator)))
        }
        Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => {
            Some(("values", format!("operator {} takes no values", r.operator)))
        }
        _ => None,
    }
}

/// A label selector's requirements as the API server validates them.
fn selector(o: &Origin, field: &str, sel: &LabelSelector) -> Result<(), BuildError> {
    for (i, r) in sel.match_expressions.iter().enumerate() {
        if let Some((key, m)) = requirement_problem(r) {
            return Err(err(o, format!("{field}.match_expressions[{i}].{key}"), m));
        }
    }
    Ok(())
}

/// An IANA service name, as a container port's name must be.
fn valid_port_name(n: &str) -> bool {
    (1..=15).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && n.bytes().any(|b| b.is_ascii_lowercase())
        && !n.starts_with('-')
        && !n.ends_with('-')
        && !n.contains("--")
}

/// Workloads by label pair and by key, for selectors: probed, never
/// iterated (so its hash order reaches nothing).
struct WorkloadIndex {
    pairs: HashMap<(String, String), Vec<u32>>,
    keys: HashMap<String, Vec<u32>>,
    all: Vec<u32>,
}

impl WorkloadIndex {
    fn new(workloads: &[WorkloadLabels]) -> WorkloadIndex {
        let mut pairs: HashMap<(String, String), Vec<u32>> = HashMap::default();
        let mut keys: HashMap<String, Vec<u32>> = HashMap::default();
        for (i, w) in workloads.iter().enumerate() {
            for (k, v) in w.labels {
                pairs.entry((k.clone(), v.clone())).or_default().push(i as u32);
                keys.entry(k.clone()).or_default().push(i as u32);
            }
        }
        WorkloadIndex { pairs, keys, all: (0..workloads.len() as u32).collect() }
    }

    /// Workloads of the namespaces `scope` that `sel` selects, in order:
    /// the shortest posting list a pair or an `In`/`Exists` key offers,
    /// filtered.
    fn select(&self, workloads: &[WorkloadLabels], scope: &[u32], sel: &LabelSelector) -> Vec<u32> {
        let empty = Vec::new();
        let mut best: &Vec<u32> = &self.all;
        for (k, v) in &sel.match_labels {
            let l = self.pairs.get(&(k.clone(), v.clone())).unwrap_or(&empty);
            if l.len() < best.len() {
                best = l;
            }
        }
        for r in &sel.match_expressions {
            if matches!(r.operator, Operator::In | Operator::Exists) {
                let l = self.keys.get(&r.key).unwrap_or(&empty);
                if l.len() < best.len() {
                    best = l;
                }
            }
        }
        best.iter()
            .copied()
            .filter(|&w| {
                let w = &workloads[w as usize];
                !w.host_network && scope.contains(&w.namespace) && sel.matches(w.labels)
            })
            .collect()
    }
}
