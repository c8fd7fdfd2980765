//! A cluster that changes while traffic flows: rolling updates, scaling,
//! deleted pods, drained and lost nodes, and what each costs the traffic.

use crate::util::*;

/// Six `web` pods behind a Service, two client pods at 400 requests/s (a
/// new connection per request, the name resolved each time), rolled at
/// t = 5 s; `PRE_STOP` is the web pods' preStop sleep.
const ROLLING: &str = r#"
seed = 3
[cluster]
nodes = 4
[[pods]]
name = "web"
replicas = 6
labels = { app = "web" }
ports = [8080]
readiness_probe = { period = "1s" }
pre_stop = "PRE_STOP"
[[pods]]
name = "client"
replicas = 2
labels = { role = "client" }
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[servers]]
selector = { app = "web" }
port = 8080
service_time = "exp(1ms)"
concurrency = 8
[[flows]]
name = "steady"
from = "client"
to = "http://web:80"
rate = 400
duration = "20s"
timeout = "2s"
[[changes]]
at = "5s"
rollout = "deployment/web"
"#;

fn failures(out: &std::path::Path) -> Vec<(String, u64)> {
    csv(&out.join("failures.csv"))
        .iter()
        .map(|r| (r["reason"].clone(), r["count"].parse().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn a_rolling_update_without_pre_stop_refuses_connections_until_every_node_syncs() {
    let (_t, out) = run_text(&ROLLING.replace("PRE_STOP", "0s"), &[]);
    let s = csv(&out.join("summary.csv"));
    let steady = row(&s, "flow", "steady");
    let refused = failures(&out).iter().find(|(r, _)| r == "connection_refused").map_or(0, |f| f.1);
    // Each old pod stops accepting at its deletion, while every node sends
    // it new connections until its next sync (about 0.3-1.5 s): at 400/s
    // over 6 pods, tens of refusals per pod.
    assert!(refused > 60, "refused {refused}: {:?}", failures(&out));
    assert!(f(steady, "failed") < 0.1 * f(steady, "requests"));
    // All of them after the rollout began, none before.
    let series = csv(&out.join("timeseries_failures.csv"));
    assert!(!series.is_empty());
    assert!(series.iter().all(|r| f(r, "time_s") >= 5.0), "a failure before the rollout");
    // Every pod replaced: 6 created, 6 deleted; the rules of the 4 nodes
    // took each update within a few seconds.
    let p = csv(&out.join("programming.csv"));
    let r = row(&p, "action", "rollout");
    assert_eq!((r["pods_created"].as_str(), r["pods_deleted"].as_str()), ("6", "6"));
    let p50 = f(r, "latency_p50_s");
    assert!((0.1..3.0).contains(&p50), "programming latency p50 {p50} s");
    assert_eq!(f(r, "node_updates"), 4.0 * f(r, "updates"), "every update reaches all 4 nodes");
    assert_eq!(r["within_30s"], "1.0000");
    // The new pods took the traffic: the old ones' share stops at 5 s.
    let eps = csv(&out.join("endpoints.csv"));
    let web: Vec<_> = eps.iter().filter(|r| r["service"] == "web").collect();
    assert_eq!(web.len(), 12, "6 old and 6 new endpoints, by stable id");
    let new: u64 = web[6..].iter().map(|r| r["requests"].parse::<u64>().unwrap()).sum();
    let all: u64 = web.iter().map(|r| r["requests"].parse::<u64>().unwrap()).sum();
    assert!(new as f64 > 0.6 * all as f64, "new pods served {new} of {all}");
}

#[test]
fn a_pre_stop_sleep_longer_than_the_programming_latency_hides_the_rollout() {
    let (_t, out) = run_text(&ROLLING.replace("PRE_STOP", "5s"), &[]);
    assert_eq!(failures(&out), vec![], "no request fails with a 5 s preStop");
    let s = csv(&out.join("summary.csv"));
    assert!(f(row(&s, "flow", "steady"), "completed") > 7_000.0);
    let c = csv(&out.join("cluster.csv"));
    assert_eq!(row(&c, "metric", "pods_created")["value"], "6");
    assert_eq!(row(&c, "metric", "pods_ready_at_end")["value"], "11", "6 web, 2 clients, 2 CoreDNS, the API server");
}

#[test]
fn a_changing_run_is_byte_identical_on_any_thread_count() {
    let text = format!("{}\n[sweep]\n\"pods[0].pre_stop\" = [\"0s\", \"2s\"]\n", ROLLING.replace("PRE_STOP", "0s"));
    let (_t1, a) = run_text(&text, &["--threads", "1"]);
    let (_t2, b) = run_text(&text, &["--threads", "2"]);
    for name in ["summary.csv", "failures.csv", "programming.csv", "timeseries_failures.csv", "endpoints.csv"] {
        let (x, y) = (std::fs::read(a.join(name)).unwrap(), std::fs::read(b.join(name)).unwrap());
        assert!(x == y, "{name} differs between 1 and 2 threads");
    }
    let p = csv(&a.join("programming.csv"));
    assert_eq!(p.len(), 2, "one rollout row per sweep point");
}

#[test]
fn a_deleted_pod_is_replaced_at_the_next_address_of_host_local() {
    let text = r#"
[cluster]
nodes = 1
[[pods]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [8080]
[[pods]]
name = "client"
labels = { role = "client" }
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
rate = 100
duration = "10s"
[[changes]]
at = "2s"
delete_pod = "web-1"
"#;
    let (_t, out) = run_text(text, &[]);
    let eps = csv(&out.join("endpoints.csv"));
    let web: Vec<_> = eps.iter().filter(|r| r["service"] == "web").collect();
    // node-0 holds .2-.4 (web), .5 (client), .6-.7 (two CoreDNS): the
    // replacement gets .8, not web-1's freed .3 (host-local hands out in
    // turn).
    assert_eq!(web.len(), 4);
    assert_eq!((web[1]["endpoint_pod"].as_str(), web[1]["endpoint_ip"].as_str()), ("web-1", "10.244.0.3"));
    assert_eq!((web[3]["endpoint_pod"].as_str(), web[3]["endpoint_ip"].as_str()), ("web-3", "10.244.0.8"));
    let served: u64 = web[3]["requests"].parse().unwrap();
    assert!(served > 100, "the replacement serves: {served}");
}

#[test]
fn a_drained_node_s_pods_move_and_the_node_gets_no_new_ones() {
    let text = r#"
[cluster]
nodes = 3
[[pods]]
name = "web"
replicas = 6
labels = { app = "web" }
ports = [8080]
readiness_probe = { period = "1s" }
pre_stop = "3s"
[[pods]]
name = "client"
labels = { role = "client" }
node = "node-0"
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
rate = 200
duration = "15s"
[[changes]]
at = "3s"
drain_node = "node-1"
"#;
    let (_t, out) = run_text(text, &[]);
    let eps = csv(&out.join("endpoints.csv"));
    let web: Vec<_> = eps.iter().filter(|r| r["service"] == "web").collect();
    let moved: Vec<_> = web[6..].iter().collect();
    assert_eq!(moved.len(), 2, "node-1's two web pods replaced: {web:?}");
    assert!(moved.iter().all(|r| r["node"] != "node-1"), "cordoned: {moved:?}");
    assert_eq!(failures(&out), vec![], "a drain with a preStop longer than the sync loses nothing");
}

#[test]
fn a_lost_node_behind_a_local_load_balancer_loses_traffic_until_the_checks_notice() {
    let (_t, out) = run_ok_shipped("workloads/dynamics/node-loss.toml");
    let series = csv(&out.join("timeseries_failures.csv"));
    assert!(!series.is_empty());
    let times: Vec<f64> = series.iter().map(|r| f(r, "time_s")).collect();
    let (first, last) = (times[0], *times.last().unwrap());
    // Requests sent to node-1 from 10 s time out 3 s later. The load
    // balancer takes node-1 out at its second failed check (15 s); a
    // request sent there from 13 s on retransmits its SYN (1 s and 2 s
    // later) after that, to a healthy node, and completes: the lost ones
    // are those of 10-13 s, failing from 13 to 16 s.
    assert!((12.9..13.5).contains(&first), "first failure at {first}");
    assert!((15.5..16.5).contains(&last), "last failure at {last}");
    assert!(series.iter().all(|r| r["reason"] == "timeout"));
    let lost: f64 = series.iter().map(|r| f(r, "failed")).sum();
    // A third of 300/s for 3 s.
    assert!((220.0..400.0).contains(&lost), "lost {lost}");
}

#[test]
fn kept_alive_clients_ignore_new_pods_unless_connections_age_out() {
    let (_t, out) = run_ok_shipped("workloads/dynamics/scale-up-keepalive.toml");
    let eps = csv(&out.join("endpoints.csv"));
    let new = |age: &str| -> u64 {
        eps.iter()
            .filter(|r| r["flows[0].max_connection_age"] == age && r["service"] == "api")
            .skip(2)
            .map(|r| r["requests"].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(new("0s"), 0, "connections opened before the scale-up stay on the 2 old pods");
    let total: u64 = eps
        .iter()
        .filter(|r| r["flows[0].max_connection_age"] == "5s" && r["service"] == "api")
        .map(|r| r["requests"].parse::<u64>().unwrap())
        .sum();
    assert!(new("5s") as f64 > 0.4 * total as f64, "with a 5 s age the 4 new pods get {} of {total}", new("5s"));
}

/// Runs a shipped workload into a temporary directory.
fn run_ok_shipped(path: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_ok(&root().join(path), &out, &[]);
    (tmp, out)
}

/// The published shape of network programming latency (KEP-3453 at 5,000
/// nodes: full syncs p50 ~27 s, partial syncs ~13 s, partial with a 1 s
/// minSyncPeriod ~5 s) at a tenth of the Services, with each iptables-
/// restore line ten times dearer so that a full sync takes what it takes
/// at 10,000 Services (about 10.6 s): the sync loop sees the same times.
#[test]
fn partial_syncs_and_a_short_min_sync_period_cut_programming_latency_as_published() {
    let text = r#"
[cluster]
nodes = 100
[proxy.sync]
iptables_line = "180us"
[sweep]
"proxy.sync.min_sync_period" = ["10s", "1s"]
"proxy.sync.iptables_partial" = [false, true]
[[pods]]
count = 1000
name = "app-{i}"
replicas = 14
labels = { app = "app-{i}" }
ports = [8080]
[[pods]]
name = "client"
labels = { role = "client" }
[[services]]
count = 1000
name = "svc-{i}"
selector = { app = "app-{i}" }
ports = [{ port = 80, target_port = 8080 }]
[[flows]]
name = "probe"
from = "client"
to = "http://svc-999:80"
rate = 1
duration = "80s"
[[changes]]
count = 40
at = "5s"
every = "1s"
rollout = "deployment/app-{i}"
"#;
    let (_t, out) = run_text(text, &[]);
    let p = csv(&out.join("programming.csv"));
    let p50 = |min_sync: &str, partial: &str| -> f64 {
        let rows: Vec<_> = p
            .iter()
            .filter(|r| r["proxy.sync.min_sync_period"] == min_sync && r["proxy.sync.iptables_partial"] == partial)
            .collect();
        assert_eq!(rows.len(), 40);
        let mut v: Vec<f64> = rows.iter().map(|r| f(r, "latency_p50_s")).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (full, partial, fast) = (p50("10s", "false"), p50("10s", "true"), p50("1s", "true"));
    assert!(full > 1.8 * partial, "partial syncs roughly halve p50: full {full} s, partial {partial} s");
    assert!(partial > 2.0 * fast, "a 1 s minSyncPeriod cuts it further: {partial} s -> {fast} s");
    assert!((8.0..30.0).contains(&full), "full-sync p50 {full} s (published ~27 s)");
    assert!(p.iter().all(|r| f(r, "within_30s") > 0.99), "within the 30 s threshold");
}

#[test]
fn coredns_without_lameduck_stalls_lookups_while_it_rolls() {
    let (_t, out) = run_ok_shipped("workloads/dynamics/coredns-restart.toml");
    let s = csv(&out.join("summary.csv"));
    let at = |lameduck: &str| s.iter().find(|r| r["dns.lameduck"] == lameduck).unwrap().clone();
    // A query DNATed to a CoreDNS pod that has exited gets no answer: the
    // resolver asks again after its 5 s timeout.
    assert!(f(&at("0s"), "latency_p99_us") > 4_900_000.0, "{:?}", at("0s"));
    assert!(f(&at("5s"), "latency_p99_us") < 100_000.0, "lameduck hides the rollout: {:?}", at("5s"));
    assert_eq!(at("0s")["failed"], "0", "within the 10 s timeout every request gets through");
}

#[test]
fn kube_proxy_s_udp_conntrack_cleanup_prevents_the_dns_black_hole() {
    let (_t, out) = run_ok_shipped("workloads/dynamics/coredns-blackhole.toml");
    let s = csv(&out.join("summary.csv"));
    let at = |cleanup: &str| s.iter().find(|r| r["proxy.sync.conntrack_cleanup"] == cleanup).unwrap().clone();
    assert_eq!(at("true")["failed"], "0", "entries to the old CoreDNS pods are deleted after each sync");
    // Without the cleanup every client's socket keeps its old DNAT: once
    // its CoreDNS pod exits (5 s lameduck after the rollout starts), its
    // lookups vanish until the run ends.
    let (failed, requests) = (f(&at("false"), "failed"), f(&at("false"), "requests"));
    assert!(failed > 0.4 * requests, "black hole: {failed} of {requests} failed");
    let series = csv(&out.join("timeseries_failures.csv"));
    assert!(series.iter().all(|r| f(r, "time_s") > 10.0), "nothing fails before the old pods exit");
}

#[test]
fn pods_csv_tells_each_pod_s_story_in_order() {
    let (_t, out) = run_text(&ROLLING.replace("PRE_STOP", "2s"), &[]);
    let steps = csv(&out.join("pods.csv"));
    let of = |pod: &str| -> Vec<(f64, String)> {
        steps.iter().filter(|r| r["pod"] == pod).map(|r| (f(r, "time_s"), r["step"].clone())).collect()
    };
    // An old pod: deleted during the rollout, SIGTERM after its 2 s
    // preStop, exits (nothing in flight), gone a second later (sandbox
    // teardown).
    let old = of("web-0");
    let names: Vec<&str> = old.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(names, ["deleted", "sigterm", "exited", "gone"], "{old:?}");
    assert!(old[0].0 >= 5.0, "deleted after the rollout began: {old:?}");
    assert!((old[1].0 - old[0].0 - 2.0).abs() < 1e-3, "preStop 2 s: {old:?}");
    assert!((old[3].0 - old[2].0 - 1.0).abs() < 1e-3, "teardown 1 s: {old:?}");
    // A new one: scheduled, started, then ready at its first probe.
    let new: Vec<String> = of("web-6").into_iter().map(|(_, s)| s).collect();
    assert_eq!(&new[..3], ["scheduled", "started", "ready"]);
    let times: Vec<f64> = steps.iter().map(|r| f(r, "time_s")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
}

#[test]
fn vanished_syns_keep_ipvs_connection_counts_balanced() {
    // Least-connection IPVS counts every connection it scheduled until it
    // closes: SYNs DNATed to a pod on a lost node vanish, are retransmitted
    // to the same endpoint (their conntrack entry holds the DNAT) and given
    // up; each must be counted out once (the debug build panics on an
    // underflow), and lc then steers around the endpoint that holds them.
    let text = r#"
[cluster]
nodes = 3
[proxy]
mode = "ipvs"
[proxy.ipvs]
scheduler = "lc"
[[pods]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [8080]
[[pods]]
name = "client"
labels = { role = "client" }
node = "node-0"
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
rate = 200
duration = "20s"
timeout = "3s"
[[changes]]
at = "5s"
fail_node = "node-2"
"#;
    let (_t, out) = run_text(text, &[]);
    let fails = csv(&out.join("failures.csv"));
    let timeouts: f64 = fails.iter().find(|r| r["reason"] == "timeout").unwrap()["count"].parse().unwrap();
    assert!(timeouts > 0.0, "connections to the lost pod time out");
    let s = csv(&out.join("summary.csv"));
    assert!(f(row(&s, "flow", "f"), "completed") > 0.8 * f(row(&s, "flow", "f"), "requests"));
}

#[test]
fn a_lost_node_s_pods_are_evicted_after_the_toleration_and_replaced_elsewhere() {
    let text = r#"
[cluster]
nodes = 3
[[pods]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [8080]
[[pods]]
name = "client"
labels = { role = "client" }
node = "node-0"
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
rate = 2
duration = "400s"
[[changes]]
at = "10s"
fail_node = "node-1"
"#;
    let (_t, out) = run_text(text, &[]);
    let steps = csv(&out.join("pods.csv"));
    let lost: Vec<_> = steps.iter().filter(|r| r["pod"] == "web-1").collect();
    let names: Vec<&str> = lost.iter().map(|r| r["step"].as_str()).collect();
    // Unreachable at once; deleted after node-monitor-grace-period (50 s)
    // and the 300 s toleration; no kubelet runs its shutdown.
    assert_eq!(names, ["unreachable", "deleted"], "{lost:?}");
    assert!((f(lost[1], "time_s") - 360.0).abs() < 1e-3, "{lost:?}");
    let new: Vec<_> = steps.iter().filter(|r| r["pod"] == "web-3").collect();
    assert!(!new.is_empty() && new.iter().all(|r| r["node"] != "node-1"), "replaced on a running node: {new:?}");
    assert_eq!(new[0]["step"], "scheduled");
}

#[test]
fn new_pods_serve_as_their_template_says() {
    // Every pod is replaced by 10 s; requests after it meet only new pods,
    // which take the `[[servers]]` entry's 1 ms as the old ones did (they
    // were once served in no time at all: a new pod matched no entry).
    let text = ROLLING.replace("PRE_STOP", "5s").replace("exp(1ms)", "const(1ms)");
    let (_t, out) = run_text(&text, &[]);
    let series = csv(&out.join("timeseries.csv"));
    let late: Vec<f64> = series.iter().filter(|r| f(r, "time_s") >= 15.0).map(|r| f(r, "latency_p50_us")).collect();
    assert!(late.len() >= 40, "{}", late.len());
    assert!(late.iter().all(|&p50| p50 > 1000.0), "{late:?}");
    let pods = csv(&out.join("pods.csv"));
    assert!(pods.iter().any(|r| r["pod"].starts_with("web-") && r["pod"].len() > "web-0".len()), "new pods exist");
}
