//! Cluster DNS: what a pod's resolver asks CoreDNS, in which order.
//!
//! Scope: a pod with the kubelet's default `ClusterFirst` resolv.conf:
//! `search <ns>.svc.<domain> svc.<domain> <domain>` and `options ndots:5`.
//! A name with fewer than `ndots` dots is tried with each search suffix
//! first and as given last; a name with `ndots` or more dots is tried as
//! given first; a trailing dot means "as given, only". Each try is one query
//! (A records only; the AAAA query glibc sends alongside is not modelled)
//! answered by CoreDNS's `kubernetes` plugin: `<svc>.<ns>.svc.<domain>`
//! resolves to the Service's ClusterIP (a headless Service's: its endpoints'
//! pod IPs, and NXDOMAIN when it has none, as `findServices` in
//! plugin/kubernetes/kubernetes.go leaves `errNoItems`, a name error),
//! anything else in the cluster domain is NXDOMAIN. Names outside the cluster domain would be forwarded
//! upstream; emu has no upstream, so they are NXDOMAIN after CoreDNS's own
//! work. Each query is itself a UDP exchange with the `kube-dns` Service,
//! walked through the data path and kube-proxy like any other.
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `ndots` | 5 | kubelet's resolv.conf for ClusterFirst pods |
//! | `cluster_domain` | `cluster.local` | kubelet `--cluster-domain` default in kubeadm |
//! | `replicas` | 2 | kubeadm's CoreDNS Deployment |
//! | `service_time` | `const(56us)` per query | coredns/deployment Scaling_CoreDNS.md: 33,669 internal QPS pegging ~1.9 vCPU (1.9 / 33,669 s) |
//! | `concurrency` | 2 per CoreDNS pod | the n1-standard-2 (2 vCPU) nodes of that test |
//! | `query_bytes` / `response_bytes` | 64 / 128 B | estimate: DNS header 12 B, a service FQDN ~40 B, one A record |
//! | `node_local_cache` | off | NodeLocal DNSCache is an add-on |
//! | `cache_ttl` | 5 s | CoreDNS `kubernetes` plugin default TTL (the cache keeps answers no longer) |
//! | `cache_service_time` | `const(20us)` | estimate, not validated: a cache hit skips the `kubernetes` plugin's lookup |
//! | `cache_concurrency` | 1 per node | node-local-dns's default CPU request is a fraction of one core |
//!
//! With `node_local_cache`, pods query the NodeLocal DNSCache on their own
//! node (169.254.20.10, link-local, NOTRACK: no conntrack, no DNAT): a hit
//! answers there; a miss is forwarded over a kept-alive TCP connection from
//! the node to CoreDNS through the `kube-dns` Service (`force_tcp`, as the
//! add-on's Corefile sets it), and the answer is cached for `cache_ttl`.

use emu_engine::Dist;

use crate::cluster::Cluster;
use crate::ids::{PodId, SvcId};

/// CoreDNS replicas: kubeadm's CoreDNS Deployment runs 2.
pub const DEFAULT_REPLICAS: u32 = 2;

/// NodeLocal DNSCache's address on every node (its `-localip` default in
/// the kubernetes.io NodeLocal DNSCache guide).
pub const NODE_LOCAL_DNS_IP: crate::addr::Ipv4 = crate::addr::Ipv4(0xA9FE_140A); // 169.254.20.10

/// DNS parameters; see the module docs for sources.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsParams {
    /// resolv.conf `ndots`.
    pub ndots: u8,
    /// The cluster domain.
    pub cluster_domain: String,
    /// CoreDNS work per query [ns distribution].
    pub service_time: Dist,
    /// Queries one CoreDNS pod works on at once.
    pub concurrency: u32,
    /// Query size [bytes].
    pub query_bytes: u32,
    /// Response size [bytes].
    pub response_bytes: u32,
    /// NodeLocal DNSCache on every node.
    pub node_local_cache: bool,
    /// How long the cache keeps an answer [ns].
    pub cache_ttl_ns: u64,
    /// Cache work per query [ns distribution].
    pub cache_service_time: Dist,
    /// Queries one node's cache works on at once.
    pub cache_concurrency: u32,
    /// Whether a client pod sends its queries from one long-lived UDP
    /// socket (one conntrack entry, hence one DNAT, while it keeps
    /// querying within the UDP timeout) rather than a new socket per query
    /// (glibc's `res_send`).
    pub persistent_socket: bool,
}

impl Default for DnsParams {
    fn default() -> Self {
        DnsParams {
            ndots: 5,
            cluster_domain: "cluster.local".into(),
            service_time: Dist::Constant(56_000),
            concurrency: 2,
            query_bytes: 64,
            response_bytes: 128,
            node_local_cache: false,
            cache_ttl_ns: 5_000_000_000,
            cache_service_time: Dist::Constant(20_000),
            cache_concurrency: 1,
            persistent_socket: false,
        }
    }
}

/// The outcome of resolving one name from one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsPlan {
    /// The names queried, in order, up to and including the one answered.
    pub queries: Vec<String>,
    /// The Service the last query resolved to; `None` means NXDOMAIN.
    pub answer: Option<SvcId>,
    /// A pod's own name (`web-0.nginx`, a StatefulSet pod under its
    /// headless Service): the pod it resolved to (`answer` is that
    /// Service).
    pub pod: Option<PodId>,
}

/// The names a resolver in namespace `ns` tries for `name`, in order.
pub fn candidates(params: &DnsParams, ns: &str, name: &str) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_string()];
    }
    let d = &params.cluster_domain;
    let search = [format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()];
    let with_suffix = search.iter().map(|s| format!("{name}.{s}"));
    let dots = name.matches('.').count();
    if dots >= params.ndots as usize {
        std::iter::once(name.to_string()).chain(with_suffix).collect()
    } else {
        with_suffix.chain(std::iter::once(name.to_string())).collect()
    }
}

/// The Service the fully qualified `fqdn` names (`<svc>.<ns>.svc.<domain>`),
/// whether or not CoreDNS has an address for it.
pub fn service_named(cluster: &Cluster, params: &DnsParams, fqdn: &str) -> Option<SvcId> {
    // DNS names are case-insensitive (RFC 4343); Kubernetes names are
    // lower case.
    let fqdn = fqdn.to_ascii_lowercase();
    let rest = fqdn.strip_suffix(params.cluster_domain.to_ascii_lowercase().as_str())?.strip_suffix('.')?;
    let rest = rest.strip_suffix(".svc")?;
    let (svc, ns) = rest.split_once('.')?;
    if ns.contains('.') {
        return pod_named(cluster, rest).map(|(svc, _)| svc);
    }
    cluster.service_by_name(cluster.namespace(ns)?, svc)
}

/// A pod's own name, `<host>.<service>.<namespace>` (the fully qualified
/// name less `.svc.<domain>`): the headless Service that publishes it and
/// the pod, if the Service selects the pod.
fn pod_named(cluster: &Cluster, rest: &str) -> Option<(SvcId, PodId)> {
    let (host, rest) = rest.split_once('.')?;
    let (svc, ns) = rest.split_once('.')?;
    if ns.contains('.') {
        return None;
    }
    let nsi = cluster.namespace(ns)?;
    let s = cluster.service_by_name(nsi, svc)?;
    let pod = cluster.pod_by_hostname(nsi, svc, host)?;
    let service = &cluster.services[s.index()];
    let selects =
        service.ports.iter().any(|&sp| cluster.service_ports[sp.index()].endpoints.iter().any(|e| e.pod == pod));
    (!service.has_cluster_ip() && selects).then_some((s, pod))
}

/// Whether Service `svc` is headless and has no endpoints: CoreDNS has no
/// address to answer with and returns a name error (NXDOMAIN).
pub fn headless_without_endpoints(cluster: &Cluster, svc: SvcId) -> bool {
    let service = &cluster.services[svc.index()];
    !service.has_cluster_ip() && service.ports.iter().all(|&sp| cluster.service_ports[sp.index()].endpoints.is_empty())
}

/// What CoreDNS answers for the fully qualified `fqdn`: a Service, or
/// `None` for NXDOMAIN (also for a headless Service without endpoints).
pub fn answer(cluster: &Cluster, params: &DnsParams, fqdn: &str) -> Option<SvcId> {
    service_named(cluster, params, fqdn).filter(|&s| !headless_without_endpoints(cluster, s))
}

/// Resolves `name` as a pod in namespace `ns` would.
pub fn plan(cluster: &Cluster, params: &DnsParams, ns: &str, name: &str) -> DnsPlan {
    let mut queries = Vec::new();
    for c in candidates(params, ns, name) {
        let a = answer(cluster, params, &c);
        if a.is_some() {
            let lower = c.to_ascii_lowercase();
            let pod = lower
                .strip_suffix(params.cluster_domain.to_ascii_lowercase().as_str())
                .and_then(|r| r.strip_suffix(".svc."))
                .and_then(|r| pod_named(cluster, r))
                .map(|(_, p)| p);
            queries.push(c);
            return DnsPlan { queries, answer: a, pod };
        }
        queries.push(c);
    }
    DnsPlan { queries, answer: None, pod: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{build, testing};

    #[test]
    fn names_are_case_insensitive() {
        let cl = cluster();
        let p = DnsParams::default();
        let lower = service_named(&cl, &p, "myservice.default.svc.cluster.local");
        assert!(lower.is_some());
        assert_eq!(service_named(&cl, &p, "MyService.DEFAULT.svc.Cluster.Local"), lower);
        let plan = plan(&cl, &p, "default", "MYSERVICE");
        assert_eq!(plan.answer, lower);
        assert_eq!(plan.queries, ["MYSERVICE.default.svc.cluster.local"], "the resolver sends the name as written");
    }

    fn cluster() -> Cluster {
        let mut s = testing::spec(1);
        s.namespaces.push("otherns".into());
        s.pods.push(testing::pods("web", 1, 8080));
        s.services.push(testing::service("myservice", "web", 8080));
        let mut other = testing::service("remote", "web", 8080);
        other.namespace = "otherns".into();
        s.services.push(other);
        build(&s, 1).unwrap()
    }

    #[test]
    fn search_path_order_follows_ndots() {
        let p = DnsParams::default();
        assert_eq!(
            candidates(&p, "default", "myservice"),
            [
                "myservice.default.svc.cluster.local",
                "myservice.svc.cluster.local",
                "myservice.cluster.local",
                "myservice"
            ]
        );
        let long = "a.b.c.d.e.f";
        assert_eq!(candidates(&p, "default", long)[0], long);
        assert_eq!(candidates(&p, "default", "x.y.")[..], ["x.y"]);
    }

    #[test]
    fn short_name_resolves_in_one_query() {
        let c = cluster();
        let plan = plan(&c, &DnsParams::default(), "default", "myservice");
        assert_eq!(plan.queries.len(), 1);
        assert_eq!(c.services[plan.answer.unwrap().index()].name, "myservice");
    }

    #[test]
    fn fqdn_of_another_namespace_pays_the_search_path() {
        let c = cluster();
        // 4 dots < ndots 5: the three suffixed forms fail first.
        let p = plan(&c, &DnsParams::default(), "default", "remote.otherns.svc.cluster.local");
        assert_eq!(p.queries.len(), 4);
        assert_eq!(c.services[p.answer.unwrap().index()].name, "remote");
        let p = plan(&c, &DnsParams::default(), "default", "remote.otherns");
        assert_eq!(p.queries.len(), 2);
        assert!(p.answer.is_some());
    }

    #[test]
    fn unknown_names_are_nxdomain_after_every_try() {
        let c = cluster();
        let p = plan(&c, &DnsParams::default(), "default", "nosuch");
        assert_eq!((p.queries.len(), p.answer), (4, None));
        // A Service of another namespace is not found by its short name.
        assert_eq!(plan(&c, &DnsParams::default(), "default", "remote").answer, None);
    }

    #[test]
    fn a_headless_service_without_endpoints_is_nxdomain() {
        let mut s = testing::spec(1);
        s.pods.push(testing::pods("web", 1, 8080));
        let mut empty = testing::service("empty", "web", 8080);
        (empty.headless, empty.selector) = (true, None);
        s.services.push(empty);
        let mut full = testing::service("full", "web", 8080);
        full.headless = true;
        s.services.push(full);
        let mut plain = testing::service("plain", "web", 8080);
        plain.selector = None;
        s.services.push(plain);
        let c = build(&s, 1).unwrap();
        let p = DnsParams::default();
        // No address to answer with: a name error, so the search path goes on.
        assert_eq!(
            (plan(&c, &p, "default", "empty").queries.len(), plan(&c, &p, "default", "empty").answer),
            (4, None)
        );
        assert!(plan(&c, &p, "default", "full").answer.is_some());
        // A ClusterIP Service without endpoints still answers with its ClusterIP.
        assert!(plan(&c, &p, "default", "plain").answer.is_some());
    }
}
