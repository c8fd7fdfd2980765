//! Cluster DNS: what a pod's resolver asks CoreDNS, in which order.
//!
//! Scope: a pod with the kubelet's default `ClusterFirst` resolv.conf:
//! `search <ns>.svc.<domain> svc.<domain> <domain>` and `options ndots:5`.
//! A name with fewer than `ndots` dots is tried with each search suffix
//! first and as given last; a name with `ndots` or more dots is tried as
//! given first (musl: only as given); a trailing dot means "as given,
//! only". Each try asks the questions of the pod's stub resolver
//! ([`Resolver`]): glibc's default sends an A and an AAAA question per
//! candidate, in parallel from one socket, so on a single-stack IPv4
//! cluster every try costs two queries at CoreDNS (the AAAA answered
//! empty). CoreDNS's `kubernetes` plugin answers the cluster domain:
//! `<svc>.<ns>.svc.<domain>` resolves to the Service's ClusterIP (a
//! headless Service's: its endpoints' pod IPs, and NXDOMAIN when it has
//! none, as `findServices` in plugin/kubernetes/kubernetes.go leaves
//! `errNoItems`, a name error; an ExternalName Service's: a CNAME to its
//! `externalName`, whose target CoreDNS resolves itself), the zone's own
//! names (`<ns>.svc.<domain>`, `svc.<domain>`, `<domain>`) have no
//! address (NODATA), anything else in the cluster domain is NXDOMAIN.
//! Names outside the cluster domain are forwarded to the upstream
//! resolver (`forward . /etc/resolv.conf` in kubeadm's Corefile), which
//! takes `upstream_latency` and knows the names in `external_names`
//! (NXDOMAIN for the rest); CoreDNS's `cache 30` keeps forwarded answers
//! for `upstream_cache_ttl`. Each query is itself a UDP exchange with the
//! `kube-dns` Service, walked through the data path and kube-proxy like
//! any other.
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `ndots` | 5 | kubelet's resolv.conf for ClusterFirst pods |
//! | `cluster_domain` | `cluster.local` | kubelet `--cluster-domain` default in kubeadm |
//! | `replicas` | 2 | kubeadm's CoreDNS Deployment |
//! | `service_time` | `const(56us)` per query | coredns/deployment Scaling_CoreDNS.md: 33,669 internal QPS pegging ~1.9 vCPU (1.9 / 33,669 s) |
//! | `concurrency` | 2 per CoreDNS pod | the n1-standard-2 (2 vCPU) nodes of that test |
//! | `query_bytes` / `response_bytes` | 64 / 128 B per question | estimate: DNS header 12 B, a service FQDN ~40 B, one A record |
//! | `resolver` | glibc | the C library of most images (Debian, Ubuntu, RHEL bases); musl is Alpine's |
//! | `upstream_latency` | `const(1ms)` | **estimate**: a resolver in the same cloud region answering from its cache |
//! | `upstream_cache_ttl` | 30 s | `cache 30` in kubeadm's Corefile (and in NodeLocal DNSCache's `.:53` block) |
//! | `external_names` | none | names the upstream resolver knows are the scenario's to list |
//! | `node_local_cache` | off | NodeLocal DNSCache is an add-on |
//! | `cache_ttl` | 5 s | CoreDNS `kubernetes` plugin default TTL (the cache keeps answers no longer) |
//! | `cache_service_time` | `const(20us)` | estimate, not validated: a cache hit skips the `kubernetes` plugin's lookup |
//! | `cache_concurrency` | 1 per node | node-local-dns's default CPU request is a fraction of one core |
//!
//! With `node_local_cache`, pods query the NodeLocal DNSCache on their own
//! node (169.254.20.10, link-local, NOTRACK: no conntrack, no DNAT): a hit
//! answers there; a miss in the cluster domain is forwarded over a
//! kept-alive TCP connection from the node to CoreDNS through the
//! `kube-dns` Service (`force_tcp`, as the add-on's Corefile sets it), and
//! the answer is cached for `cache_ttl`; a miss outside it goes from the
//! node to the upstream resolver (the add-on's `.:53` block) and is cached
//! for `upstream_cache_ttl`.

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
    /// The pods' stub resolver.
    pub resolver: Resolver,
    /// The upstream resolver's answer time, from CoreDNS (or a node's
    /// cache) asking to the answer [ns distribution].
    pub upstream_latency: Dist,
    /// How long CoreDNS (and a node's cache) keeps a forwarded answer [ns].
    pub upstream_cache_ttl_ns: u64,
    /// Names outside the cluster domain the upstream resolver has an
    /// address for; it answers NXDOMAIN for every other.
    pub external_names: Vec<String>,
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
            resolver: Resolver::Glibc,
            upstream_latency: Dist::Constant(1_000_000),
            upstream_cache_ttl_ns: 30_000_000_000,
            external_names: Vec::new(),
        }
    }
}

/// How a pod's stub resolver asks for a name's addresses (`[dns]
/// resolver`): which questions per search-path candidate, on which
/// sockets, and when the search path stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// glibc's `getaddrinfo` with AF_UNSPEC (the default): an A and an
    /// AAAA question per candidate, sent back to back from one UDP socket
    /// (one conntrack entry) and awaited together (`send_dg` in
    /// resolv/res_send.c). The search goes on past NXDOMAIN and NODATA.
    Glibc,
    /// glibc with `options single-request`: the A question, its answer,
    /// then the AAAA question on the same socket.
    GlibcSingleRequest,
    /// glibc with `options single-request-reopen`: the A question, its
    /// answer, then the AAAA question from a new socket (a new conntrack
    /// entry, so a new DNAT decision).
    GlibcSingleRequestReopen,
    /// musl (Alpine): A and AAAA in parallel from one socket; a name with
    /// `ndots` or more dots is tried as given only (no search), and the
    /// search stops at the first candidate that is not NXDOMAIN
    /// (`name_from_dns_search` in src/network/lookup_name.c: NODATA ends
    /// it with EAI_NODATA).
    Musl,
    /// One A question per candidate (AF_INET lookups; emu's model before
    /// AAAA questions were counted).
    AOnly,
}

impl Resolver {
    /// Every resolver with its name in `[dns] resolver`.
    pub const ALL: [(Resolver, &'static str); 5] = [
        (Resolver::Glibc, "glibc"),
        (Resolver::GlibcSingleRequest, "glibc-single-request"),
        (Resolver::GlibcSingleRequestReopen, "glibc-single-request-reopen"),
        (Resolver::Musl, "musl"),
        (Resolver::AOnly, "a-only"),
    ];

    /// Its name in `[dns] resolver`.
    pub fn name(self) -> &'static str {
        Resolver::ALL.iter().find(|(r, _)| *r == self).map(|(_, n)| *n).expect("every resolver is listed")
    }

    /// The resolver named `name`.
    pub fn parse(name: &str) -> Option<Resolver> {
        Resolver::ALL.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
    }

    /// Questions asked per candidate name (A, and AAAA unless `AOnly`).
    pub fn questions(self) -> u8 {
        if self == Resolver::AOnly {
            1
        } else {
            2
        }
    }

    /// Whether the A and AAAA questions of a candidate travel together
    /// (one message of two questions on one socket).
    pub fn parallel(self) -> bool {
        matches!(self, Resolver::Glibc | Resolver::Musl)
    }
}

/// What CoreDNS answers for one fully qualified name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A Service's address (its ClusterIP, or a headless Service's pod
    /// IPs), possibly through an ExternalName Service's CNAME.
    Service(SvcId),
    /// A pod's own name under its headless Service.
    Pod(SvcId, PodId),
    /// An address outside the cluster, from the upstream resolver.
    External,
    /// The name exists with no address (NOERROR, no answer: a namespace's
    /// or the cluster domain's own name).
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// One candidate name of the search path and what asking for it costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Try {
    /// The name asked, as the resolver writes it.
    pub name: String,
    /// CoreDNS's answer.
    pub answer: Answer,
    /// The CNAME an ExternalName Service answered with, if any.
    pub cname: Option<String>,
    /// Whether the name is outside the cluster domain (a NodeLocal
    /// DNSCache forwards it to the node's upstream resolver, not to
    /// CoreDNS).
    pub outside: bool,
    /// Whether answering takes the upstream resolver (the name, or its
    /// CNAME's target, is outside the cluster domain).
    pub upstream: bool,
}

/// The outcome of resolving one name from one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsPlan {
    /// The names tried, in order, up to and including the one that ended
    /// the search.
    pub queries: Vec<Try>,
    /// The Service the last query resolved to; `None` means no address in
    /// the cluster (NXDOMAIN, NODATA, or an address outside).
    pub answer: Option<SvcId>,
    /// A pod's own name (`web-0.nginx`, a StatefulSet pod under its
    /// headless Service): the pod it resolved to (`answer` is that
    /// Service).
    pub pod: Option<PodId>,
    /// The name resolved to an address outside the cluster.
    pub external: bool,
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
        if params.resolver == Resolver::Musl {
            // musl suppresses the search for such a name.
            return vec![name.to_string()];
        }
        std::iter::once(name.to_string()).chain(with_suffix).collect()
    } else {
        with_suffix.chain(std::iter::once(name.to_string())).collect()
    }
}

/// `fqdn` (lower case) less `.<domain>`, if it is in the cluster domain;
/// `Some("")` for the domain itself.
fn in_domain<'a>(params: &DnsParams, fqdn: &'a str) -> Option<&'a str> {
    let domain = params.cluster_domain.to_ascii_lowercase();
    if fqdn == domain {
        return Some("");
    }
    fqdn.strip_suffix(domain.as_str())?.strip_suffix('.')
}

/// The Service the fully qualified `fqdn` names (`<svc>.<ns>.svc.<domain>`),
/// whether or not CoreDNS has an address for it.
pub fn service_named(cluster: &Cluster, params: &DnsParams, fqdn: &str) -> Option<SvcId> {
    // DNS names are case-insensitive (RFC 4343); Kubernetes names are
    // lower case.
    let fqdn = fqdn.to_ascii_lowercase();
    let rest = in_domain(params, &fqdn)?.strip_suffix(".svc")?;
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
    (!service.has_cluster_ip() && service.external_name.is_none() && selects).then_some((s, pod))
}

/// Whether Service `svc` is headless and has no endpoints: CoreDNS has no
/// address to answer with and returns a name error (NXDOMAIN).
pub fn headless_without_endpoints(cluster: &Cluster, svc: SvcId) -> bool {
    let service = &cluster.services[svc.index()];
    !service.has_cluster_ip()
        && service.external_name.is_none()
        && service.ports.iter().all(|&sp| cluster.service_ports[sp.index()].endpoints.is_empty())
}

/// What CoreDNS answers for the fully qualified `fqdn`, with the CNAME
/// an ExternalName Service gave on the way. CoreDNS resolves a CNAME's
/// target itself (plugin/pkg/upstream: through its own plugins, so a
/// target in the cluster domain is answered by the `kubernetes` plugin,
/// any other is forwarded upstream).
pub fn lookup(cluster: &Cluster, params: &DnsParams, fqdn: &str) -> (Answer, Option<String>) {
    let lower = fqdn.trim_end_matches('.').to_ascii_lowercase();
    let Some(rest) = in_domain(params, &lower) else {
        let known = params.external_names.iter().any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(&lower));
        return (if known { Answer::External } else { Answer::NxDomain }, None);
    };
    if let Some(s) = service_named(cluster, params, &lower) {
        let service = &cluster.services[s.index()];
        if let Some(target) = &service.external_name {
            // One level of CNAME: CoreDNS's lookup of the target does not
            // follow a second ExternalName (a loop guard emu keeps simple).
            let (a, _) = lookup(cluster, params, target);
            let a = if matches!(a, Answer::Service(t) if cluster.services[t.index()].external_name.is_some()) {
                Answer::NxDomain
            } else {
                a
            };
            return (a, Some(target.clone()));
        }
        if let Some((svc, pod)) = rest.strip_suffix(".svc").and_then(|r| pod_named(cluster, r)) {
            return (Answer::Pod(svc, pod), None);
        }
        if headless_without_endpoints(cluster, s) {
            return (Answer::NxDomain, None);
        }
        return (Answer::Service(s), None);
    }
    // The zone's own names: the domain, `svc.<domain>`, `<ns>.svc.<domain>`.
    let zone = rest.is_empty()
        || rest == "svc"
        || rest.strip_suffix(".svc").is_some_and(|ns| !ns.contains('.') && cluster.namespace(ns).is_some());
    (if zone { Answer::NoData } else { Answer::NxDomain }, None)
}

/// What CoreDNS answers for the fully qualified `fqdn`: a Service, or
/// `None` for no address in the cluster.
pub fn answer(cluster: &Cluster, params: &DnsParams, fqdn: &str) -> Option<SvcId> {
    match lookup(cluster, params, fqdn).0 {
        Answer::Service(s) | Answer::Pod(s, _) => Some(s),
        _ => None,
    }
}

/// Resolves `name` as a pod in namespace `ns` would.
pub fn plan(cluster: &Cluster, params: &DnsParams, ns: &str, name: &str) -> DnsPlan {
    let mut queries = Vec::new();
    for c in candidates(params, ns, name) {
        let lower = c.to_ascii_lowercase();
        let (answer, cname) = lookup(cluster, params, &lower);
        let outside = in_domain(params, &lower).is_none();
        let target_outside = cname.as_ref().is_some_and(|t| in_domain(params, &t.to_ascii_lowercase()).is_none());
        let upstream = outside || target_outside;
        let found = match answer {
            Answer::Service(_) | Answer::Pod(..) | Answer::External => true,
            // musl's search ends at NODATA; glibc's goes on.
            Answer::NoData => params.resolver == Resolver::Musl,
            Answer::NxDomain => false,
        };
        let (svc, pod, external) = match answer {
            Answer::Service(s) => (Some(s), None, false),
            Answer::Pod(s, p) => (Some(s), Some(p), false),
            Answer::External => (None, None, true),
            _ => (None, None, false),
        };
        queries.push(Try { name: c, answer, cname, outside, upstream });
        if found {
            return DnsPlan { queries, answer: svc, pod, external };
        }
    }
    DnsPlan { queries, answer: None, pod: None, external: false }
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
        let names: Vec<&str> = plan.queries.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["MYSERVICE.default.svc.cluster.local"], "the resolver sends the name as written");
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

    #[test]
    fn musl_stops_at_nodata_and_skips_the_search_for_long_names() {
        let c = cluster();
        let glibc = DnsParams::default();
        let musl = DnsParams { resolver: Resolver::Musl, ..DnsParams::default() };
        // `otherns` from `default`: otherns.default.svc... NXDOMAIN, then
        // otherns.svc.cluster.local, the namespace's own name: NODATA.
        let g = plan(&c, &glibc, "default", "otherns");
        assert_eq!(g.queries[1].answer, Answer::NoData);
        assert_eq!((g.queries.len(), g.answer), (4, None), "glibc goes on past NODATA");
        let m = plan(&c, &musl, "default", "otherns");
        assert_eq!((m.queries.len(), m.answer), (2, None), "musl's search ends at NODATA");
        // 5 dots: glibc tries it as given, then the whole search path.
        let long = "remote.otherns.svc.cluster.local.x";
        assert_eq!(plan(&c, &glibc, "default", long).queries.len(), 4);
        assert_eq!(candidates(&musl, "default", long), [long]);
        assert_eq!(Resolver::parse("musl"), Some(Resolver::Musl));
        assert!(Resolver::ALL.iter().all(|&(r, n)| Resolver::parse(n) == Some(r) && r.name() == n));
        assert_eq!(Resolver::AOnly.questions(), 1);
        assert!(!Resolver::GlibcSingleRequest.parallel() && Resolver::Glibc.parallel());
    }

    #[test]
    fn names_outside_the_cluster_go_upstream() {
        let c = cluster();
        let p = DnsParams { external_names: vec!["api.example.com".into()], ..DnsParams::default() };
        let known = plan(&c, &p, "default", "API.example.com");
        // Three suffixed candidates in the cluster domain, then upstream.
        assert_eq!(known.queries.len(), 4);
        assert!(known.queries[..3].iter().all(|q| !q.upstream && q.answer == Answer::NxDomain));
        let last = &known.queries[3];
        assert!(last.upstream && last.outside && last.answer == Answer::External);
        assert!(known.external && known.answer.is_none());
        let unknown = plan(&c, &p, "default", "nosuch.example.com");
        assert_eq!(unknown.queries[3].answer, Answer::NxDomain);
        assert!(unknown.queries[3].upstream && !unknown.external);
        // The bare last try of an unknown short name is forwarded too.
        assert!(plan(&c, &p, "default", "nosuch").queries[3].upstream);
    }

    #[test]
    fn an_external_name_service_answers_with_its_cname() {
        let mut s = testing::spec(1);
        s.namespaces.push("prod".into());
        s.pods.push(testing::pods("web", 1, 8080));
        s.services.push(testing::service("web", "web", 8080));
        let mut db = testing::service("db", "web", 8080);
        (db.namespace, db.selector, db.ports) = ("prod".into(), None, Vec::new());
        db.external_name = Some("web.default.svc.cluster.local".into());
        s.services.push(db);
        let mut ext = testing::service("ext", "web", 8080);
        (ext.selector, ext.external_name) = (None, Some("my.database.example.com".into()));
        s.services.push(ext);
        let c = build(&s, 1).unwrap();
        let p = DnsParams::default();
        let web = c.service_by_name(0, "web");
        let inside = plan(&c, &p, "prod", "db");
        assert_eq!(inside.answer, web, "the CNAME's target in the cluster: its ClusterIP");
        assert_eq!(inside.queries[0].cname.as_deref(), Some("web.default.svc.cluster.local"));
        assert!(!inside.queries[0].upstream);
        let db = c.service_by_name(c.namespace("prod").unwrap(), "db").unwrap();
        let svc = &c.services[db.index()];
        assert!(svc.cluster_ip.is_none() && svc.ports.is_empty());
        let outside = plan(&c, &p, "default", "ext");
        // A CNAME to a name upstream does not know: rcode NXDOMAIN, so the
        // resolver goes on with the search path.
        assert_eq!(outside.queries.len(), 4);
        assert!(outside.queries[0].upstream && !outside.queries[0].outside);
        assert_eq!(outside.queries[0].answer, Answer::NxDomain);
        let p = DnsParams { external_names: vec!["my.database.example.com".into()], ..DnsParams::default() };
        assert!(plan(&c, &p, "default", "ext").external);
        let mut bad = s.clone();
        bad.services[2].external_name = Some("not a name".into());
        assert!(build(&bad, 1).unwrap_err().to_string().contains("external_name"));
    }
}
