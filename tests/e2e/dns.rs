//! What a pod's resolver sends: A and AAAA questions per search-path
//! candidate (`[dns] resolver`), names outside the cluster answered by the
//! upstream resolver (and CoreDNS's cache of them), ExternalName Services.

use crate::util::*;

/// A client, a web Service in `default`, an api Service in `shop`, and
/// flows whose names take 1, 2 and 4 candidates.
const SCENARIO: &str = r#"[cluster]
nodes = 2
namespaces = ["default", "shop", "prod"]
[[pods]]
name = "client"
node = "node-0"
[[pods]]
name = "web"
replicas = 2
labels = { app = "web" }
ports = [80]
[[pods]]
name = "api"
namespace = "shop"
labels = { app = "api" }
ports = [80]
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80 }]
[[services]]
name = "api"
namespace = "shop"
selector = { app = "api" }
ports = [{ port = 80 }]
[[flows]]
name = "one"
from = { pod = "client" }
to = "web:80"
concurrency = 1
requests = 100
[[flows]]
name = "two"
from = { pod = "client" }
to = "api.shop:80"
concurrency = 1
requests = 100
[[flows]]
name = "four"
from = { pod = "client" }
to = "nosuch:80"
allow_nxdomain = true
concurrency = 1
requests = 10
"#;

/// Runs SCENARIO with `dns` as its `[dns]` table; summary.csv and
/// endpoints.csv.
fn run_dns(dns: &str) -> (Vec<Row>, Vec<Row>, tempfile::TempDir) {
    let (tmp, out) = run_text(&format!("{SCENARIO}[dns]\n{dns}\n"), &[]);
    (csv(&out.join("summary.csv")), csv(&out.join("endpoints.csv")), tmp)
}

/// Runs `text` and returns flow `four`'s total time in DNS exchanges [us].
fn four_s_dns_us(text: &str) -> f64 {
    let (_tmp, out) = run_text(text, &[]);
    let hops = csv(&out.join("hops.csv"));
    f(hops.iter().find(|r| r["flow"] == "four" && r["hop"] == "dns").unwrap(), "total_us")
}

fn questions(s: &[Row], flow: &str) -> u64 {
    row(s, "flow", flow)["dns_questions"].parse().unwrap()
}

#[test]
fn each_resolver_sends_what_it_sends_for_every_candidate() {
    for (resolver, per_try) in
        [("glibc", 2), ("glibc-single-request", 2), ("glibc-single-request-reopen", 2), ("a-only", 1)]
    {
        let (s, eps, _t) = run_dns(&format!("resolver = \"{resolver}\""));
        assert_eq!(questions(&s, "one"), 100 * per_try, "{resolver}");
        assert_eq!(questions(&s, "two"), 200 * per_try, "{resolver}");
        assert_eq!(questions(&s, "four"), 40 * per_try, "{resolver}");
        assert_eq!(row(&s, "flow", "one")["completed"], "100", "{resolver}");
        assert_eq!(row(&s, "flow", "four")["failed"], "10", "{resolver}");
        // CoreDNS answered every question: kube-dns's endpoints count them.
        let coredns: u64 = eps
            .iter()
            .filter(|r| r["service"] == "kube-dns" && r["port"] == "53/UDP")
            .map(|r| r["requests"].parse::<u64>().unwrap())
            .sum();
        assert_eq!(coredns, 340 * per_try, "{resolver}");
    }
    // musl: `nosuch.shop.svc.cluster.local`... NXDOMAIN, but `shop` from
    // `default` meets `shop.svc.cluster.local`, the namespace's own name:
    // NODATA, where musl's search ends and glibc's goes on.
    let text = SCENARIO.replace("to = \"nosuch:80\"", "to = \"shop:80\"");
    for (resolver, tries) in [("glibc", 4), ("musl", 2)] {
        let (tmp, out) = run_text(&format!("{text}[dns]\nresolver = \"{resolver}\"\n"), &[]);
        let s = csv(&out.join("summary.csv"));
        assert_eq!(questions(&s, "four"), 10 * 2 * tries, "{resolver}");
        drop(tmp);
    }
}

#[test]
fn parallel_questions_cost_one_exchange_sequential_ones_two() {
    let p50 = |resolver: &str| {
        let (s, _, _t) = run_dns(&format!("resolver = \"{resolver}\""));
        f(row(&s, "flow", "one"), "latency_p50_us")
    };
    let (a, glibc, single, reopen) =
        (p50("a-only"), p50("glibc"), p50("glibc-single-request"), p50("glibc-single-request-reopen"));
    // Two questions served side by side (2 workers per CoreDNS pod): the
    // same exchange, a few us of serialisation more.
    assert!(glibc >= a && glibc - a < 5.0, "a-only {a}, glibc {glibc}");
    // One after the other: a second round trip of ~150 us.
    assert!(single - glibc > 100.0, "glibc {glibc}, single-request {single}");
    // A new socket for the AAAA pays a second first packet (DNAT, conntrack entry).
    assert!(reopen > single, "single-request {single}, reopen {reopen}");
}

#[test]
fn the_trace_names_the_questions_and_the_socket_they_leave_from() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = |resolver: &str| {
        let sc = write(tmp.path(), "s.toml", &format!("{SCENARIO}[dns]\nresolver = \"{resolver}\"\n"));
        let o = emu(&["trace", sc.to_str().unwrap(), "--flow", "one"]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let t = trace("glibc");
    assert!(t.contains("query A and AAAA web.default.svc.cluster.local. (candidate 1"), "{t}");
    assert!(t.contains("AAAA: none (NOERROR, NODATA"), "{t}");
    let t = trace("glibc-single-request");
    assert!(t.contains("query A web.default") && t.contains("query AAAA web.default"), "{t}");
    assert!(t.contains("the same socket"), "{t}");
    assert_eq!(t.matches("iptables chose").count(), 2, "one DNAT for the DNS socket, one for the connection: {t}");
    let t = trace("glibc-single-request-reopen");
    assert_eq!(t.matches("iptables chose").count(), 3, "a DNAT per DNS socket and the connection's: {t}");
}

#[test]
fn names_outside_the_cluster_wait_for_the_upstream_resolver_once_per_cache_ttl() {
    // `nosuch` is tried bare last: CoreDNS forwards it upstream.
    let dns_total =
        |extra: &str| four_s_dns_us(&format!("{SCENARIO}[dns]\nupstream_latency = \"const(10ms)\"\n{extra}"));
    let cached = dns_total("");
    let uncached = dns_total("upstream_cache_ttl = \"0s\"\n");
    // Without the cache all 10 lookups wait 10 ms (plus 40 exchanges of
    // ~170 us); with it only the first at each CoreDNS pod asked.
    assert!(uncached > 100_000.0 && uncached < 110_000.0, "{uncached}");
    assert!(cached > 10_000.0 && cached < 30_000.0, "{cached}");
    // A name the upstream resolver knows is an address outside the
    // cluster, which no flow can reach.
    let text = SCENARIO.replace("to = \"nosuch:80\"", "to = \"api.example.com:443\"");
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "s.toml", &format!("{text}[dns]\nexternal_names = [\"api.example.com\"]\n"));
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("flows[2].to") && stderr(&o).contains("resolves outside the cluster"),
        "{}",
        stderr(&o)
    );
    // An ExternalName to a name upstream does not know is NXDOMAIN: a
    // flow to it needs allow_nxdomain, like any name that resolves to
    // nothing.
    let ext = SCENARIO.replace("to = \"nosuch:80\"\nallow_nxdomain = true", "to = \"ext:80\"")
        + "[[services]]\nname = \"ext\"\ntype = \"ExternalName\"\nexternal_name = \"db.example.com\"\n";
    let e = write(tmp.path(), "e.toml", &ext);
    let o = emu(&["validate", e.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("allow_nxdomain") && !stderr(&o).contains("headless"), "{}", stderr(&o));
    let bad = write(tmp.path(), "b.toml", &format!("{SCENARIO}[dns]\nresolver = \"bionic\"\n"));
    let o = emu(&["validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("dns.resolver") && stderr(&o).contains("musl"), "{}", stderr(&o));
}

#[test]
fn an_external_name_service_is_a_cname_with_no_rules() {
    // The Kubernetes documentation's example, and one pointing in the cluster.
    let docs = root().join("tests/manifests/k8s-docs/external-name.yaml");
    let text = SCENARIO.replace("[cluster]", &format!("manifests = [\"{}\"]\n[cluster]", docs.display()))
        + r#"[[services]]
name = "db"
namespace = "prod"
type = "ExternalName"
external_name = "web.default.svc.cluster.local"
[[flows]]
name = "cname"
from = { pod = "client" }
to = "db.prod:80"
concurrency = 1
requests = 50
[[flows]]
name = "docs"
from = { pod = "client" }
to = "my-service.prod:80"
allow_nxdomain = true
concurrency = 1
requests = 5
"#;
    let (tmp, out) = run_text(&text, &[]);
    let services = csv(&out.join("services.csv"));
    let doc = row(&services, "service", "my-service");
    assert_eq!(
        (doc["type"].as_str(), doc["cluster_ip"].as_str(), doc["external_name"].as_str(), doc["ports"].as_str()),
        ("ExternalName", "", "my.database.example.com", "")
    );
    let s = csv(&out.join("summary.csv"));
    // db.prod: `db.prod.default.svc...` NXDOMAIN, then the CNAME to web,
    // whose ClusterIP the connection goes to.
    assert_eq!(row(&s, "flow", "cname")["completed"], "50");
    assert_eq!(questions(&s, "cname"), 50 * 2 * 2);
    assert_eq!(hits(&out, "web").iter().sum::<u64>(), 100 + 50);
    // The docs' target is unknown upstream: NXDOMAIN, after every candidate.
    assert_eq!(row(&s, "flow", "docs")["failed"], "5");
    // kube-proxy writes nothing for it.
    let sc = tmp.path().join("s.toml");
    let o = emu(&["rules", sc.to_str().unwrap(), "--node", "node-0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rules = String::from_utf8(o.stdout).unwrap();
    assert!(rules.contains("default/web") && !rules.contains("my-service") && !rules.contains("prod/db"), "{rules}");
}

/// A CoreDNS pod deleted while it answers for names that need the upstream
/// resolver: it drains the forwarded queries before it exits (no answer
/// is lost, nothing is retransmitted).
#[test]
fn a_deleted_coredns_pod_drains_its_forwarded_queries() {
    let text = r#"seed = 1
[cluster]
nodes = 2
[dns]
lameduck = "0s"
service_time = "const(100ms)"
concurrency = 4
upstream_latency = "const(100ms)"
upstream_cache_ttl = "0s"
[[pods]]
name = "client"
[[flows]]
name = "ext"
from = "client"
to = "nosuch.example.com.:80"
allow_nxdomain = true
rate = 20
duration = "10s"
timeout = "30s"
[[changes]]
at = "2s"
namespace = "kube-system"
delete_pod = "coredns-0"
"#;
    let (_t, out) = run_text(text, &[]);
    let s = csv(&out.join("summary.csv"));
    let r = row(&s, "flow", "ext");
    assert_eq!(r["failed"], r["requests"], "{r:?}");
    assert_eq!(r["retransmits"], "0", "a query lost at the pod's exit is resent: {r:?}");
    let f = csv(&out.join("failures.csv"));
    assert_eq!(row(&f, "reason", "nxdomain")["count"], r["requests"]);
}

/// NodeLocal DNSCache forwarding to CoreDNS pods that roll away without
/// lameduck: the reset forward is silence to the pod's resolver, which
/// asks again (once a panic: the reset answered on a connection the
/// request did not have).
#[test]
fn a_node_cache_s_forward_to_a_gone_coredns_pod_is_asked_again() {
    let text = r#"seed = 1
[cluster]
nodes = 6
[dns]
lameduck = "0s"
node_local_cache = true
cache_ttl = "0s"
[[pods]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [8080]
[[pods]]
name = "client"
replicas = 6
labels = { role = "client" }
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[flows]]
name = "lookups"
from = "client"
to = "http://web:80"
rate = 500
duration = "30s"
timeout = "10s"
[[changes]]
at = "5s"
namespace = "kube-system"
rollout = "deployment/coredns"
"#;
    let (_t, out) = run_text(text, &[]);
    let s = csv(&out.join("summary.csv"));
    let r = row(&s, "flow", "lookups");
    let (requests, completed) = (f(r, "requests"), f(r, "completed"));
    assert!(completed / requests > 0.95, "{r:?}");
}

/// One question at a time: the A and the AAAA are cached apart, so a
/// name outside the cluster waits for the upstream resolver twice.
#[test]
fn a_and_aaaa_asked_apart_are_cached_apart() {
    let text = SCENARIO.replace("to = \"nosuch:80\"", "to = \"nosuch.example.com.:80\"");
    let dns_total = |resolver: &str| {
        four_s_dns_us(&format!("{text}[dns]\nresolver = \"{resolver}\"\nupstream_latency = \"const(10ms)\"\n"))
    };
    // glibc: one upstream wait per CoreDNS pod that got the pair (1 or 2);
    // single-request: the A's and the AAAA's, each cached on its own.
    let (pair, apart) = (dns_total("glibc"), dns_total("glibc-single-request"));
    assert!(pair < 25_000.0, "{pair}");
    assert!(apart - pair > 9_000.0, "glibc {pair} us, single-request {apart} us");
}
