//! The four communication paths of the seed, on the shipped scenarios.

use super::util::*;

fn run_paths() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("paths");
    run_ok(&root().join("workloads/seed/paths.toml"), &out, &[]);
    (tmp, out)
}

#[test]
fn paths_order_by_p50_latency() {
    let (_t, out) = run_paths();
    let s = csv(&out.join("summary.csv"));
    let names: Vec<&str> = s.iter().map(|r| r["flow"].as_str()).collect();
    assert_eq!(
        names,
        [
            "container-to-container",
            "pod-to-pod-same-node",
            "pod-to-pod-cross-node",
            "pod-to-service",
            "internet-to-nodeport"
        ]
    );
    let p50 = |flow: &str| f(row(&s, "flow", flow), "latency_p50_us");
    assert!(p50("container-to-container") < p50("pod-to-pod-same-node"));
    assert!(p50("pod-to-pod-same-node") < p50("pod-to-pod-cross-node"));
    // The Service's endpoints sit on all three nodes, so its p50 is a
    // cross-node exchange plus DNS and DNAT.
    assert!(p50("pod-to-service") > p50("pod-to-pod-cross-node"));
    for r in &s {
        assert_eq!(r["requests"], "10000", "{}", r["flow"]);
        assert_eq!(r["completed"], "10000", "{}", r["flow"]);
        assert_eq!(r["failed"], "0");
    }
}

#[test]
fn servers_see_pod_ips_for_pod_traffic_and_node_ips_for_nodeport() {
    let (_t, out) = run_paths();
    let src = csv(&out.join("sources.csv"));
    for flow in ["pod-to-pod-same-node", "pod-to-pod-cross-node", "pod-to-service"] {
        let rows: Vec<_> = src.iter().filter(|r| r["flow"] == flow).collect();
        assert!(!rows.is_empty());
        for r in rows {
            // No NAT between pods: the server sees Pod A's own address.
            assert_eq!(r["source_ip"], "10.244.0.10", "{flow}");
            assert_eq!(r["source_kind"], "pod");
            assert_eq!(r["source_name"], "default/pod-a");
        }
    }
    let c2c = row(&src, "flow", "container-to-container");
    assert_eq!(c2c["source_ip"], "127.0.0.1");
    let np: Vec<_> = src.iter().filter(|r| r["flow"] == "internet-to-nodeport").collect();
    let total: u64 = np.iter().map(|r| r["requests"].parse::<u64>().unwrap()).sum();
    assert_eq!(total, 10000);
    let mut forwarded = 0;
    for r in np {
        // externalTrafficPolicy Cluster: SNAT to the receiving node, so the
        // client's 198.18.x.x address never reaches the pod.
        assert_eq!(r["source_kind"], "node", "{r:?}");
        assert!(!r["source_ip"].starts_with("198.18."));
        if r["source_ip"].starts_with("192.168.") {
            // Forwarded from another node: that node's eth0 address.
            assert_ne!(r["source_name"], r["server_node"]);
            forwarded += r["requests"].parse::<u64>().unwrap();
        } else {
            // Local endpoint: masqueraded out of cbr0 of the same node.
            assert_eq!(r["source_name"], format!("{} (cbr0)", r["server_node"]));
        }
    }
    // Uniform entry node and endpoint over 3 nodes: about 2/3 forwarded.
    assert!((6_300..7_000).contains(&forwarded), "forwarded {forwarded}");
}

#[test]
fn a_pod_reaching_its_own_ip_is_seen_from_that_ip() {
    // Through `lo` either way, but only a localhost target is sent from
    // 127.0.0.1: to its own pod IP (directly, or as a headless Service's
    // only endpoint) the kernel picks the pod IP as the source.
    let (_t, out) = run_text(
        r#"
[[pods]]
name = "me"
ip = "10.244.0.7"
labels = { app = "me" }
ports = [8080]
[[services]]
name = "self"
cluster_ip = "None"
selector = { app = "me" }
ports = [{ port = 8080 }]
[[flows]]
name = "own-ip"
from = "me"
to = "10.244.0.7:8080"
requests = 5
[[flows]]
name = "loopback"
from = "me"
to = "localhost:8080"
requests = 5
[[flows]]
name = "headless-self"
from = "me"
to = "http://self:8080"
requests = 5
"#,
        &[],
    );
    let src = csv(&out.join("sources.csv"));
    for flow in ["own-ip", "headless-self"] {
        let r = row(&src, "flow", flow);
        assert_eq!((r["source_ip"].as_str(), r["source_kind"].as_str()), ("10.244.0.7", "pod"), "{flow}");
        assert_eq!(r["source_name"], "default/me");
        assert_eq!(r["requests"], "5");
    }
    let lo = row(&src, "flow", "loopback");
    assert_eq!((lo["source_ip"].as_str(), lo["source_kind"].as_str()), ("127.0.0.1", "localhost"));
}

#[test]
fn service_costs_dns_plus_dnat_over_the_pod_path() {
    // One endpoint, on another node: the Service path is the pod path plus
    // DNS and kube-proxy's DNAT, and hops.csv accounts for the difference.
    let (_tmp, out) = run_text(
        r#"
[cluster]
nodes = 2
[dns]
replicas = 1
[[pods]]
name = "client"
node = "node-0"
[[pods]]
name = "server"
node = "node-1"
ip = "10.244.1.50"
labels = { app = "s" }
ports = [8080]
[[services]]
name = "s"
selector = { app = "s" }
ports = [{ port = 80, target_port = 8080 }]
[[flows]]
name = "direct"
from = "client"
to = "10.244.1.50:8080"
requests = 2000
[[flows]]
name = "service"
from = "client"
to = "http://s"
requests = 2000
"#,
        &[],
    );
    let s = csv(&out.join("summary.csv"));
    let h = csv(&out.join("hops.csv"));
    let mean = |flow: &str| f(row(&s, "flow", flow), "latency_mean_us");
    let per_req = |flow: &str, hop: &str| {
        h.iter().find(|r| r["flow"] == flow && r["hop"] == hop).map_or(0.0, |r| f(r, "per_request_us"))
    };
    let extra = mean("service") - mean("direct");
    assert!(extra > 0.0);
    let dns = per_req("service", "dns");
    assert!(dns > 50.0, "dns {dns}");
    let dnat = per_req("service", "iptables") - per_req("direct", "iptables");
    assert!(dnat >= 0.0);
    assert!((extra - dns - dnat).abs() < 0.01 * extra, "extra {extra} vs dns {dns} + dnat {dnat}");
}

#[test]
fn every_seed_scenario_runs_its_example() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, flow, server) in [
        ("container-to-container", "container-to-container", "default/mypod"),
        ("pod-to-pod", "pod-to-pod-same-node", "default/pod-b"),
        ("pod-to-service", "pod-to-service", "default/myapp-0"),
        ("internet-to-service", "internet-to-nodeport", "default/web-0"),
    ] {
        let out = tmp.path().join(file);
        run_ok(&root().join(format!("workloads/seed/{file}.toml")), &out, &[]);
        let s = csv(&out.join("summary.csv"));
        let r = row(&s, "flow", flow);
        assert_eq!(r["completed"], r["requests"], "{file}");
        assert!(f(r, "latency_p50_us") > 0.0);
        let src = csv(&out.join("sources.csv"));
        assert!(src.iter().any(|r| r["server_pod"] == server), "{file}: {server} served nothing");
    }
}

#[test]
fn same_scenario_and_seed_give_byte_identical_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let sc = root().join("workloads/seed/paths.toml");
    run_ok(&sc, &a, &[]);
    run_ok(&sc, &b, &[]);
    run_ok(&sc, &c, &["--seed", "2"]);
    let files = emu::outdir::RESULT_FILES;
    for name in files {
        let x = std::fs::read(a.join(name)).unwrap();
        assert_eq!(x, std::fs::read(b.join(name)).unwrap(), "{name} differs between two runs");
    }
    // The seed matters: another seed picks other endpoints.
    assert_ne!(std::fs::read(a.join("endpoints.csv")).unwrap(), std::fs::read(c.join("endpoints.csv")).unwrap());
}

#[test]
fn run_toml_reproduces_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_ok(&root().join("workloads/seed/pod-to-service.toml"), &a, &["--seed", "7"]);
    run_ok(&a.join("run.toml"), &b, &[]);
    for name in ["summary.csv", "hops.csv", "endpoints.csv", "sources.csv"] {
        assert_eq!(std::fs::read(a.join(name)).unwrap(), std::fs::read(b.join(name)).unwrap(), "{name}");
    }
}

#[test]
fn scale_scenario_builds_the_limits_and_answers_every_request() {
    // The shipped cluster as is, with 1% of its requests (a debug build runs
    // the tests; docs/performance.md times the full run).
    let text = std::fs::read_to_string(root().join("workloads/scale.toml"))
        .unwrap()
        .replace("requests = 1000", "requests = 10")
        .replace("requests = 3000", "requests = 30")
        .replace("requests = 2000", "requests = 20");
    let (_tmp, out) = run_text(&text, &[]);
    let s = csv(&out.join("summary.csv"));
    assert_eq!(s.len(), 700);
    let requests: f64 = s.iter().map(|r| f(r, "requests")).sum();
    let completed: f64 = s.iter().map(|r| f(r, "completed")).sum();
    assert_eq!(requests, 10_000.0);
    assert_eq!(completed, requests);
    let cluster = csv(&out.join("cluster.csv"));
    let metric = |k: &str| row(&cluster, "metric", k)["value"].parse::<u64>().unwrap();
    // With the API server's pod and `kubernetes`, kube-dns.
    assert_eq!((metric("nodes"), metric("pods"), metric("services")), (5_000, 150_001, 10_002));
    // KUBE-SERVICES: the 9,800 ClusterIP and 100 NodePort Services, kube-dns's
    // 3 ports, `kubernetes` and the NODEPORTS jump (headless Services have no
    // rule).
    assert_eq!(metric("iptables_kube_services_rules_per_node"), 9_905);
    assert_eq!(metric("iptables_kube_nodeports_rules_per_node"), 100);
    let ep = csv(&out.join("endpoints.csv"));
    assert_eq!(ep.len(), 10_000 * 14 + 313 * 3 + 1);
    // Each path is there: DNAT for Services, none for headless, node ports.
    let h = csv(&out.join("hops.csv"));
    let has = |flow: &str, hop: &str| h.iter().any(|r| r["flow"] == flow && r["hop"] == hop);
    assert!(has("to-svc-19", "dns") && has("to-svc-19", "iptables"));
    assert!(has("internet-to-edge-7", "external"));
}

#[test]
fn the_large_scale_variants_build_to_their_sizes() {
    for (file, nodes, pods, services) in [
        ("scale-110", "1364", "150041", "10002"),
        ("scale-65k", "65000", "1040001", "20002"),
        ("scale-130k", "130000", "2080001", "20002"),
    ] {
        let o = emu(&["validate", &format!("workloads/{file}.toml")]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        let expected = format!("{nodes} nodes, {pods} pods, {services} services");
        assert!(text.contains(&expected), "{file}: {text}");
    }
}
