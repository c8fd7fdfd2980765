//! Behaviour of Services, DNS, servers and failures.

use super::util::*;

const BASE: &str = r#"
[cluster]
nodes = 4
[[pods]]
name = "client"
replicas = 4
labels = { role = "client" }
[[pods]]
name = "web"
replicas = 10
labels = { app = "web" }
ports = [8080]
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
"#;

fn run_with(flows: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    run_text(&format!("{BASE}{flows}"), &[])
}

#[test]
fn a_service_spreads_new_connections_uniformly() {
    let (_t, out) = run_with(
        r#"
[[flows]]
name = "spread"
from = { selector = { role = "client" } }
to = "http://web:80"
rate = 20000
requests = 20000
"#,
    );
    let counts = hits(&out, "web");
    assert_eq!(counts.len(), 10);
    assert_eq!(counts.iter().sum::<u64>(), 20_000);
    // Chi-square against uniform, 9 degrees of freedom: 27.877 is the
    // critical value at significance 0.001.
    let chi2 = chi_square_uniform(&counts);
    assert!(chi2 < 27.877, "chi2 {chi2} for {counts:?}");
    // And the test has teeth: a split 10% off uniform on two endpoints fails.
    let mut skewed = vec![2_000u64; 10];
    skewed[0] = 2_200;
    skewed[1] = 1_800;
    assert!(chi_square_uniform(&skewed) > 27.877);
}

#[test]
fn unknown_names_fail_with_nxdomain_after_the_search_path() {
    let (_t, out) = run_with(
        r#"
[[flows]]
name = "typo"
from = "client"
to = "http://wbe:80"
allow_nxdomain = true
requests = 50
"#,
    );
    let fails = csv(&out.join("failures.csv"));
    let nx = fails.iter().find(|r| r["flow"] == "typo" && r["reason"] == "nxdomain").unwrap();
    assert_eq!(nx["count"], "50");
    let s = csv(&out.join("summary.csv"));
    assert_eq!(row(&s, "flow", "typo")["completed"], "0");
    // ndots:5: three search suffixes and the bare name, four queries each.
    let h = csv(&out.join("hops.csv"));
    let dns = h.iter().find(|r| r["flow"] == "typo" && r["hop"] == "dns").unwrap();
    assert_eq!(dns["traversals"], "200");
}

#[test]
fn a_closed_port_refuses_and_a_service_without_endpoints_rejects() {
    let (_t, out) = run_with(
        r#"
[[services]]
name = "empty"
selector = { app = "nothing" }
ports = [{ port = 80 }]
[[flows]]
name = "refused"
from = "client"
to = "10.244.1.2:9999"
requests = 20
[[flows]]
name = "rejected"
from = "client"
to = "http://empty:80"
requests = 30
"#,
    );
    let fails = csv(&out.join("failures.csv"));
    let count = |flow: &str, reason: &str| {
        fails.iter().find(|r| r["flow"] == flow && r["reason"] == reason).unwrap()["count"].parse::<u64>().unwrap()
    };
    assert_eq!(count("refused", "connection_refused"), 20);
    assert_eq!(count("rejected", "no_endpoints"), 30);
    assert_eq!(count("refused", "no_endpoints") + count("rejected", "connection_refused"), 0);
}

#[test]
fn slow_servers_time_out_and_queue() {
    let (_t, out) = run_with(
        r#"
[[servers]]
selector = { app = "web" }
port = 8080
service_time = "const(50ms)"
concurrency = 1
[[flows]]
name = "slow"
from = { selector = { role = "client" } }
to = "http://web:80"
concurrency = 40
requests = 400
timeout = "120ms"
"#,
    );
    // 40 clients on 10 single-worker pods of 50 ms: about 4 queued per pod,
    // so some wait past 120 ms and time out; the rest queue.
    let s = csv(&out.join("summary.csv"));
    let r = row(&s, "flow", "slow");
    let fails = csv(&out.join("failures.csv"));
    let timeouts: u64 =
        fails.iter().find(|x| x["flow"] == "slow" && x["reason"] == "timeout").unwrap()["count"].parse().unwrap();
    assert!(timeouts > 0, "no timeouts");
    assert_eq!(f(r, "completed") as u64 + timeouts, 400);
    assert!(f(r, "latency_max_us") <= 120_000.0);
    let h = csv(&out.join("hops.csv"));
    let q = h.iter().find(|x| x["flow"] == "slow" && x["hop"] == "queue").unwrap();
    assert!(f(q, "mean_us") > 10_000.0, "queueing {q:?}");
    let sv = h.iter().find(|x| x["flow"] == "slow" && x["hop"] == "server").unwrap();
    assert!((f(sv, "mean_us") - 50_000.0).abs() < 1.0);
}

#[test]
fn keep_alive_reuses_connections_and_skips_setup() {
    let (_t, out) = run_with(
        r#"
[[flows]]
name = "fresh"
from = "client"
to = "http://web:80"
concurrency = 2
requests = 400
[[flows]]
name = "kept"
from = "client"
to = "http://web:80"
concurrency = 2
requests = 400
keep_alive = true
"#,
    );
    let s = csv(&out.join("summary.csv"));
    assert_eq!(row(&s, "flow", "fresh")["connections"], "400");
    // Two closed-loop clients over four client pods: slots 0 and 1 keep one
    // connection each.
    assert_eq!(row(&s, "flow", "kept")["connections"], "2");
    assert!(f(row(&s, "flow", "kept"), "latency_p50_us") < f(row(&s, "flow", "fresh"), "latency_p50_us") / 2.0);
}

#[test]
fn iptables_first_packet_grows_with_services() {
    // The same pod-to-pod exchange, in a cluster with 10 and with 2,000
    // Services: every new connection walks KUBE-SERVICES on both nodes.
    let tmp = tempfile::tempdir().unwrap();
    let mut p50 = Vec::new();
    for services in [10, 2000] {
        let sc = write(
            tmp.path(),
            &format!("s{services}.toml"),
            &format!(
                r#"
[cluster]
nodes = 2
[[pods]]
name = "a"
node = "node-0"
[[pods]]
name = "b"
node = "node-1"
ip = "10.244.1.9"
labels = {{ app = "b" }}
ports = [80]
[[services]]
count = {services}
name = "s-{{i}}"
selector = {{ app = "b" }}
ports = [{{ port = 80 }}]
[[flows]]
name = "direct"
from = "a"
to = "10.244.1.9:80"
requests = 100
"#
            ),
        );
        let out = tmp.path().join(format!("o{services}"));
        run_ok(&sc, &out, &[]);
        let h = csv(&out.join("hops.csv"));
        let ipt = h.iter().find(|r| r["hop"] == "iptables").unwrap();
        // Two nodes x (services + kube-dns's 3 ports + `kubernetes` + the
        // NODEPORTS jump) x 20 ns.
        let expected = 2.0 * (services as f64 + 5.0) * 0.020;
        assert!((f(ipt, "per_request_us") - expected).abs() < 1e-6, "{services}: {ipt:?}");
        p50.push(f(&csv(&out.join("summary.csv"))[0], "latency_p50_us"));
    }
    assert!(p50[1] - p50[0] > 79.0 && p50[1] - p50[0] < 81.0, "{p50:?}");
}

#[test]
fn validate_checks_without_writing() {
    // Run from an empty directory: `run` would create results/paths there.
    let tmp = tempfile::tempdir().unwrap();
    let o = emu_in(tmp.path(), &["validate", root().join("workloads/seed/paths.toml").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("ok: 1 point(s); 3 nodes"), "{text}");
    let written: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(written.is_empty(), "validate wrote {written:?}");
}
