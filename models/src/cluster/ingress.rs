//! Ingress: an L7 controller (ingress-nginx) behind a Service, and the
//! Ingress objects that route HTTP requests by host and path to backend
//! Services.
//!
//! Routing follows the Kubernetes Ingress specification: a rule's host
//! matches exactly, or a wildcard `*.example.com` matches one extra DNS
//! label; a rule without host matches every host. Among the paths of every
//! Ingress whose rule matches the host, the longest match wins; `Exact`
//! matches the whole path, `Prefix` matches element by element on `/`
//! (`/api` matches `/api` and `/api/v1` but not `/apis`); at equal length
//! `Exact` beats `Prefix`. With no match, the Ingress's `defaultBackend`
//! serves, else the controller answers 404.

use super::spec::{Origin, ServiceType};
use crate::ids::SpId;

/// The ingress controller deployment emu creates when a scenario has
/// Ingresses: ingress-nginx's namespace and LoadBalancer Service, and two
/// replicas (a choice: its deploy manifests run one; two keep the ingress
/// up across one pod's loss, as its production guidance advises).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressControllerSpec {
    /// Controller pods (`ingress-nginx-controller-<i>`).
    pub replicas: u32,
    /// Their namespace (created if missing).
    pub namespace: String,
    /// How the controller's Service is exposed (LoadBalancer or NodePort).
    pub service_type: ServiceType,
}

impl Default for IngressControllerSpec {
    fn default() -> Self {
        IngressControllerSpec {
            replicas: 2,
            namespace: "ingress-nginx".into(),
            service_type: ServiceType::LoadBalancer,
        }
    }
}

/// How an Ingress path matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PathType {
    /// Element-wise prefix on `/` (also what `ImplementationSpecific` means
    /// for ingress-nginx without regexes).
    #[default]
    Prefix,
    /// The whole path.
    Exact,
}

/// One path of an Ingress rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressPathSpec {
    /// The path (starts with `/`).
    pub path: String,
    /// How it matches.
    pub path_type: PathType,
    /// Backend Service name (in the Ingress's namespace).
    pub service: String,
    /// Backend Service port.
    pub port: BackendPort,
}

/// An Ingress backend's Service port: its number, or its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendPort {
    /// `port.number`.
    Number(u32),
    /// `port.name`: the Service port of that name.
    Name(String),
}

impl std::fmt::Display for BackendPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendPort::Number(n) => write!(f, "{n}"),
            BackendPort::Name(n) => write!(f, "`{n}`"),
        }
    }
}

/// One rule: a host and its paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressRuleSpec {
    /// Host, exact or `*.` wildcard; `None` matches every host.
    pub host: Option<String>,
    /// Paths.
    pub paths: Vec<IngressPathSpec>,
}

/// An Ingress object as declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressSpec {
    /// Where it was declared.
    pub origin: Origin,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Rules.
    pub rules: Vec<IngressRuleSpec>,
    /// `spec.defaultBackend`: (Service, port).
    pub default_backend: Option<(String, BackendPort)>,
}

/// A built route: a path and the Service port it goes to.
#[derive(Clone, Debug)]
pub struct IngressPath {
    /// The path.
    pub path: String,
    /// How it matches.
    pub path_type: PathType,
    /// Backend Service port.
    pub sp: SpId,
}

/// A built Ingress rule.
#[derive(Clone, Debug)]
pub struct IngressRule {
    /// Host pattern.
    pub host: Option<String>,
    /// Paths.
    pub paths: Vec<IngressPath>,
}

/// A built Ingress.
#[derive(Clone, Debug)]
pub struct Ingress {
    /// Name.
    pub name: String,
    /// Namespace index.
    pub namespace: u32,
    /// Rules.
    pub rules: Vec<IngressRule>,
    /// Default backend Service port.
    pub default_backend: Option<SpId>,
}

/// Whether rule host `pattern` matches request host `host`.
pub fn host_matches(pattern: &Option<String>, host: &str) -> bool {
    match pattern {
        None => true,
        Some(p) => match p.strip_prefix("*.") {
            Some(suffix) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => p == host,
        },
    }
}

/// How long a match of `p` on `path` is, or `None` if it does not match.
fn path_match(p: &IngressPath, path: &str) -> Option<usize> {
    match p.path_type {
        PathType::Exact => (p.path == path).then_some(p.path.len()),
        PathType::Prefix => {
            let prefix = p.path.trim_end_matches('/');
            if prefix.is_empty() {
                return Some(1); // "/" matches everything, as the shortest prefix
            }
            let ok = path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
            ok.then_some(prefix.len())
        }
    }
}

/// The Service port that serves `host` + `path` across `ingresses`, or
/// `None` for the controller's 404.
pub fn route(ingresses: &[Ingress], host: &str, path: &str) -> Option<SpId> {
    let mut best: Option<(usize, bool, SpId)> = None;
    let mut default = None;
    for ing in ingresses {
        for rule in ing.rules.iter().filter(|r| host_matches(&r.host, host)) {
            for p in &rule.paths {
                if let Some(len) = path_match(p, path) {
                    let exact = p.path_type == PathType::Exact;
                    if best.is_none_or(|(l, e, _)| len > l || (len == l && exact && !e)) {
                        best = Some((len, exact, p.sp));
                    }
                }
            }
        }
        default = default.or(ing.default_backend);
    }
    best.map(|b| b.2).or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Paths<'a> = Vec<(&'a str, PathType, u32)>;

    fn ing(rules: Vec<(Option<&str>, Paths)>, default: Option<u32>) -> Ingress {
        Ingress {
            name: "i".into(),
            namespace: 0,
            rules: rules
                .into_iter()
                .map(|(h, ps)| IngressRule {
                    host: h.map(String::from),
                    paths: ps
                        .into_iter()
                        .map(|(p, t, sp)| IngressPath { path: p.into(), path_type: t, sp: SpId::new(sp) })
                        .collect(),
                })
                .collect(),
            default_backend: default.map(SpId::new),
        }
    }

    /// `route`, as a bare index.
    fn at(i: &[Ingress], host: &str, path: &str) -> Option<u32> {
        route(i, host, path).map(SpId::get)
    }

    #[test]
    fn longest_prefix_by_path_element_wins() {
        let i = [ing(
            vec![(Some("shop.example.com"), vec![("/", PathType::Prefix, 1), ("/api", PathType::Prefix, 2)])],
            None,
        )];
        assert_eq!(at(&i, "shop.example.com", "/api/cart"), Some(2));
        assert_eq!(at(&i, "shop.example.com", "/api"), Some(2));
        assert_eq!(at(&i, "shop.example.com", "/apis"), Some(1), "element-wise: /apis is not under /api");
        assert_eq!(at(&i, "other.example.com", "/api"), None);
    }

    #[test]
    fn exact_beats_prefix_and_wildcards_match_one_label() {
        let i = [ing(
            vec![
                (Some("*.example.com"), vec![("/a", PathType::Prefix, 1), ("/a", PathType::Exact, 2)]),
                (None, vec![("/x", PathType::Prefix, 3)]),
            ],
            Some(9),
        )];
        assert_eq!(at(&i, "foo.example.com", "/a"), Some(2));
        assert_eq!(at(&i, "foo.example.com", "/a/b"), Some(1));
        assert_eq!(at(&i, "a.b.example.com", "/a"), Some(9), "a wildcard covers one label only");
        assert_eq!(at(&i, "anything", "/x/y"), Some(3));
        assert_eq!(at(&i, "anything", "/nothing"), Some(9));
    }
}
