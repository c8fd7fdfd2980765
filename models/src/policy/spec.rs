//! NetworkPolicy objects as declared (networking.k8s.io/v1), before
//! validation: label selectors with `matchExpressions`, peers, ports.

use std::fmt;

use crate::addr::Cidr;
use crate::cluster::{Labels, Origin, Protocol};

/// A `matchExpressions` operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent, or its value is none of `values`.
    NotIn,
    /// The label is present (any value).
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl Operator {
    /// The operator named `s` as the API spells it.
    pub fn parse(s: &str) -> Option<Operator> {
        Some(match s {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            _ => return None,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        })
    }
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub operator: Operator,
    /// The values (`In`, `NotIn`: at least one; `Exists`, `DoesNotExist`:
    /// none).
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether `labels` satisfy the requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match self.operator {
            Operator::In => v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => v.is_none_or(|v| self.values.iter().all(|x| x != v)),
            Operator::Exists => v.is_some(),
            Operator::DoesNotExist => v.is_none(),
        }
    }
}

/// A label selector (`metav1.LabelSelector`): every `matchLabels` pair and
/// every requirement must hold; the empty selector selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelSelector {
    /// Exact label pairs.
    pub match_labels: Labels,
    /// Requirements.
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector of exactly these pairs.
    pub fn labels(match_labels: Labels) -> LabelSelector {
        LabelSelector { match_labels, match_expressions: Vec::new() }
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether `labels` are selected.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    /// `app=web,tier in (a,b),!legacy`, as `kubectl` prints selectors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for r in &self.match_expressions {
            parts.push(match r.operator {
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
            });
        }
        f.write_str(&parts.join(","))
    }
}

/// A policy's direction (`policyTypes` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Traffic into the selected pods.
    Ingress = 0,
    /// Traffic out of the selected pods.
    Egress = 1,
}

impl Direction {
    /// Both, in the order the API lists them.
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    /// `ingress` or `egress`, as in output files.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// A rule's port: a number (with `endPort`, a range), a name, or absent
/// (every port of the protocol).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRef {
    /// A port number.
    Number(u32),
    /// A named container port of the destination pod.
    Name(String),
}

/// One `ports[]` entry of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyPortSpec {
    /// Protocol (TCP when absent, as the API server defaults it).
    pub protocol: Protocol,
    /// The port; `None`: every port.
    pub port: Option<PortRef>,
    /// The last port of a range starting at a numeric `port`.
    pub end_port: Option<u32>,
}

/// An `ipBlock` peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpBlockSpec {
    /// The block.
    pub cidr: Cidr,
    /// Blocks inside `cidr` it leaves out.
    pub except: Vec<Cidr>,
    /// An IPv6 block (`cidr` unused): no address of emu's IPv4 clusters
    /// is in it.
    pub ipv6: bool,
}

impl IpBlockSpec {
    /// Whether `ip` is in the block and in none of its exceptions.
    pub fn contains(&self, ip: crate::addr::Ipv4) -> bool {
        !self.ipv6 && self.cidr.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }
}

/// One `from[]` / `to[]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerSpec {
    /// Pods (in the policy's namespace unless `namespace_selector` is set).
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces (with `pod_selector`: those pods of these namespaces).
    pub namespace_selector: Option<LabelSelector>,
    /// Addresses.
    pub ip_block: Option<IpBlockSpec>,
}

/// One `ingress[]` / `egress[]` rule: traffic from (to) any of `peers` on
/// any of `ports`; no peers means every source (destination), no ports
/// every port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    /// Peers.
    pub peers: Vec<PeerSpec>,
    /// Ports.
    pub ports: Vec<PolicyPortSpec>,
}

/// A NetworkPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkPolicySpec {
    /// Where it was declared.
    pub origin: Origin,
    /// Name, unique in its namespace.
    pub name: String,
    /// Namespace (must exist).
    pub namespace: String,
    /// The pods it applies to, in its namespace (empty: all of them).
    pub pod_selector: LabelSelector,
    /// `policyTypes` as written; `None` or empty: defaulted as the API
    /// server does (Ingress, plus Egress when there are egress rules).
    pub policy_types: Option<Vec<Direction>>,
    /// Ingress rules (none: the selected pods accept nothing).
    pub ingress: Vec<RuleSpec>,
    /// Egress rules (none, with Egress in `policy_types`: the selected pods
    /// send nothing).
    pub egress: Vec<RuleSpec>,
}

impl NetworkPolicySpec {
    /// The directions it isolates, defaulted as the API server does when
    /// `policyTypes` is absent or empty (`SetDefaults_NetworkPolicy`).
    pub fn types(&self) -> [bool; 2] {
        match &self.policy_types {
            Some(t) if !t.is_empty() => [t.contains(&Direction::Ingress), t.contains(&Direction::Egress)],
            _ => [true, !self.egress.is_empty()],
        }
    }
}
