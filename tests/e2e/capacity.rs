//! The data plane with capacity: saturation, drops, conntrack, CNI modes.

use super::util::*;

#[test]
fn nodeport_throughput_saturates_and_local_holds_about_twice_cluster() {
    // The shipped workload, cut to three load points and 200 ms.
    let text = std::fs::read_to_string(root().join("workloads/nodeport-throughput.toml"))
        .unwrap()
        .replace(
            "\"flows[0].rate\" = [17500, 35000, 52500, 70000, 87500, 105000, 122500, 140000, 157500, 175000, 210000, 262500, 350000]",
            "\"flows[0].rate\" = [35000, 140000, 262500]",
        )
        .replace("duration = \"500ms\"", "duration = \"200ms\"");
    let (_t, out) = run_text(&text, &[]);
    let s = csv(&out.join("summary.csv"));
    let get = |policy: &str, rate: &str, col: &str| {
        f(
            s.iter()
                .find(|r| r["services[0].external_traffic_policy"] == policy && r["flows[0].rate"] == rate)
                .unwrap(),
            col,
        )
    };
    // Completions per second while the load is offered (the first 200 ms):
    // past the knee some SYNs are dropped at full backlogs and wait the SYN
    // RTO (1 s) to be retransmitted, so the whole run's throughput (to the
    // last answer, after 1 s) says little about capacity.
    let ts = csv(&out.join("timeseries.csv"));
    let carried = |policy: &str, rate: &str| {
        let rows = ts.iter().filter(|r| {
            r["services[0].external_traffic_policy"] == policy && r["flows[0].rate"] == rate && f(r, "time_s") < 0.2
        });
        rows.map(|r| f(r, "completed")).sum::<f64>() / 0.2
    };
    // Below the knee both carry the offered load.
    for policy in ["Cluster", "Local"] {
        assert!((get(policy, "35000", "throughput_rps") / 35_000.0 - 1.0).abs() < 0.05, "{policy}");
        assert!((carried(policy, "35000") / 35_000.0 - 1.0).abs() < 0.05, "{policy}");
    }
    // Past it, Cluster flattens near half of Local's capacity and queues.
    let cluster = carried("Cluster", "262500");
    let local = carried("Local", "262500");
    assert!(cluster < 110_000.0, "Cluster {cluster}");
    assert!(local > 1.4 * cluster, "Local {local} vs Cluster {cluster}");
    assert!(carried("Local", "140000") > 130_000.0);
    assert!(get("Cluster", "140000", "latency_p99_us") > 10.0 * get("Cluster", "35000", "latency_p99_us"));
    // Drops at the full backlogs are retransmitted, and counted by queue.
    assert!(get("Cluster", "262500", "retransmits") > 0.0);
    assert_eq!(
        get("Cluster", "262500", "retransmits"),
        get("Cluster", "262500", "drops_cpu") + get("Cluster", "262500", "drops_nic")
    );
    assert!(get("Cluster", "262500", "drops_cpu") > 0.0, "one softirq core per node saturates first");
    assert_eq!(get("Local", "35000", "retransmits"), 0.0);
}

#[test]
fn a_full_conntrack_table_drops_new_connections() {
    let text = r#"
[cluster]
nodes = 2
[node]
conntrack_max = 500
[[pods]]
name = "a"
node = "node-0"
[[pods]]
name = "b"
node = "node-1"
ip = "10.244.1.9"
ports = [80]
[[flows]]
name = "churn"
from = "a"
to = "10.244.1.9:80"
rate = 2000
requests = 2000
timeout = "1s"
"#;
    let (_t, out) = run_text(text, &[]);
    let fails = csv(&out.join("failures.csv"));
    let full: u64 = fails.iter().find(|r| r["reason"] == "conntrack_full").unwrap()["count"].parse().unwrap();
    // Every closed connection holds its entry 120 s (TIME_WAIT): the first
    // 500 get through, the other 1,500 are dropped. TIME_WAIT entries are
    // ASSURED, so the packet path's early_drop evicts none; only the
    // collector may, at its next pass (60 s); and with a 1 s timeout the
    // first SYN retransmission (1 s later) never comes. (With a 10 s or a
    // 130 s timeout the 1,500 fail too: the server's node, whose table is
    // as full, never dropped a packet before 60 s, so its collector is not
    // early-dropping when the retransmissions at 67 s get past node-0.)
    assert_eq!(full, 1500);
    let c = csv(&out.join("cluster.csv"));
    assert_eq!(row(&c, "metric", "conntrack_peak_entries")["value"], "500");
    assert_eq!(row(&c, "metric", "conntrack_max_per_node")["value"], "500");
}

#[test]
fn a_syn_dropped_by_a_full_table_gets_through_on_a_retransmission() {
    // Ten connections fill node-0's table of 10 at 0 s; their TIME_WAIT is
    // 2 s. A connection at 0.5 s is dropped, retransmitted at 1.5 s (still
    // full) and at 2.5 s, when the entries have expired: it is answered
    // about 2 s late, with two SYNs retransmitted and two drops counted.
    let text = r#"
[cluster]
nodes = 1
[node]
conntrack_max = 10
tcp_time_wait = "2s"
[[pods]]
name = "a"
[[pods]]
name = "b"
ip = "10.244.0.9"
ports = [80]
[[flows]]
name = "fill"
from = "a"
to = "10.244.0.9:80"
concurrency = 10
requests = 10
[[flows]]
name = "late"
from = "a"
to = "10.244.0.9:80"
start = "500ms"
requests = 1
"#;
    let (_t, out) = run_text(text, &[]);
    let s = csv(&out.join("summary.csv"));
    let late = row(&s, "flow", "late");
    assert_eq!((late["completed"].as_str(), late["retransmits"].as_str()), ("1", "2"));
    let lat = f(late, "latency_mean_us");
    assert!((lat / 1e6 - 2.0).abs() < 0.001, "{lat}");
    let c = csv(&out.join("cluster.csv"));
    assert_eq!(row(&c, "metric", "conntrack_drops")["value"], "2");
}

#[test]
fn early_drop_evicts_dns_entries_but_not_time_wait_ones() {
    // One node, a table of 64: each request adds a DNS query's UDP entry
    // (never ASSURED) and a TCP one (TIME_WAIT after its answer, 120 s).
    // The packet path's early_drop evicts UDP entries while they are at
    // least 1 in 32 of the table, so 63 requests get in, not 32 (two entries
    // each) as when nothing was evicted; then the table holds TIME_WAIT
    // entries, which only the collector may evict, and the rest fail.
    let text = r#"
[cluster]
nodes = 1
[dns]
replicas = 1
[node]
conntrack_max = 64
[[pods]]
name = "a"
[[pods]]
name = "b"
labels = { app = "web" }
ports = [80]
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80 }]
[[flows]]
name = "f"
from = "a"
to = "http://web:80"
rate = 1000
requests = 200
timeout = "1s"
"#;
    let (_t, out) = run_text(text, &[]);
    let s = csv(&out.join("summary.csv"));
    assert_eq!(row(&s, "flow", "f")["completed"], "63");
    let c = csv(&out.join("cluster.csv"));
    assert_eq!(row(&c, "metric", "conntrack_early_drops")["value"], "62");
    assert_eq!(row(&c, "metric", "conntrack_drops")["value"], "137");
}

#[test]
fn the_collector_frees_5_percent_of_a_time_wait_table_after_a_drop() {
    // 200 connections in 0.2 s into a table of 100 on one node: the first
    // 100 take it (TIME_WAIT 120 s), the rest are dropped and retransmit
    // their SYNs. The first drop tells the collector to early-drop: its
    // pass at 60 s evicts TIME_WAIT entries down to 94 (below 95%), and 6
    // of the SYNs retransmitted at 67 s get in; the 7th is dropped again.
    // The others run out of retransmissions and fail at their 100 s timeout.
    let text = r#"
[cluster]
nodes = 1
[node]
conntrack_max = 100
[[pods]]
name = "a"
[[pods]]
name = "b"
ip = "10.244.0.9"
ports = [80]
[[flows]]
name = "churn"
from = "a"
to = "10.244.0.9:80"
rate = 1000
requests = 200
timeout = "100s"
"#;
    let (_t, out) = run_text(text, &[]);
    let s = csv(&out.join("summary.csv"));
    assert_eq!(row(&s, "flow", "churn")["completed"], "106");
    let fails = csv(&out.join("failures.csv"));
    assert_eq!(fails.iter().find(|r| r["reason"] == "conntrack_full").unwrap()["count"], "94");
    let c = csv(&out.join("cluster.csv"));
    assert_eq!(row(&c, "metric", "conntrack_early_drops")["value"], "6");
}

#[test]
fn established_connections_continue_when_the_table_is_full() {
    // A kept-alive connection opened first keeps working while churn from
    // another flow fills the table and has its new connections dropped.
    let text = r#"
[cluster]
nodes = 2
[node]
conntrack_max = 100
[[pods]]
name = "a"
node = "node-0"
[[pods]]
name = "b"
node = "node-1"
ip = "10.244.1.9"
ports = [80]
[[flows]]
name = "kept"
from = "a"
to = "10.244.1.9:80"
keep_alive = true
concurrency = 1
think_time = "const(1ms)"
requests = 500
[[flows]]
name = "churn"
from = "a"
to = "10.244.1.9:80"
start = "10ms"
rate = 5000
requests = 1000
timeout = "1s"
"#;
    let (_t, out) = run_text(text, &[]);
    let s = csv(&out.join("summary.csv"));
    assert_eq!(row(&s, "flow", "kept")["completed"], "500");
    let fails = csv(&out.join("failures.csv"));
    let full = |flow: &str| {
        fails.iter().find(|r| r["flow"] == flow && r["reason"] == "conntrack_full").unwrap()["count"]
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(full("kept"), 0);
    assert_eq!(full("churn"), 1000 - 99, "the kept connection holds one of the 100 entries");
}

#[test]
fn vxlan_costs_latency_and_a_wrong_mtu_fragments() {
    let base = r#"
[cluster]
nodes = 2
[[pods]]
name = "a"
node = "node-0"
[[pods]]
name = "b"
node = "node-1"
ip = "10.244.1.9"
ports = [80]
[[flows]]
name = "bulk"
from = "a"
to = "10.244.1.9:80"
keep_alive = true
response_bytes = 1000000
requests = 200
"#;
    let mean = |cni: &str| {
        let (_t, out) = run_text(&format!("{base}\n[cni]\n{cni}\n"), &[]);
        let s = csv(&out.join("summary.csv"));
        f(&s[0], "latency_mean_us")
    };
    let routed = mean("mode = \"routed\"");
    let vxlan = mean("mode = \"vxlan\"");
    let wrong = mean("mode = \"vxlan\"\npod_mtu = 1500");
    let ebpf = mean("mode = \"ebpf\"");
    // 1 MB responses: VXLAN adds encapsulation per packet and 50 B each;
    // a pod MTU of 1500 over VXLAN fragments every packet in two.
    assert!(vxlan > routed, "{vxlan} vs {routed}");
    assert!(wrong > vxlan, "{wrong} vs {vxlan}");
    assert!(ebpf < routed, "{ebpf} vs {routed}");
}
