//! The engine through the binary: PHOLD, replications, time series.

use super::util::*;

#[test]
fn phold_prints_its_line_and_a_stable_checksum() {
    let run = || {
        let o = emu(&["bench", "phold", "--lps", "200", "--init", "2", "--events", "50000"]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let (a, b) = (run(), run());
    let fields = |s: &str| -> Vec<(String, String)> {
        s.trim().split(' ').map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())).unwrap()).collect()
    };
    let fa = fields(&a);
    let keys: Vec<&str> = fa.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["events", "secs", "rate", "checksum"]);
    // 50,000 handled while scheduling, then the 400 pending drain.
    assert_eq!(fa[0].1, "50400");
    assert_eq!(fa[3].1, fields(&b)[3].1, "checksum differs run to run");
    assert_eq!(fa[3].1.len(), 16);
    let other = emu(&["bench", "phold", "--lps", "200", "--init", "2", "--events", "50000", "--seed", "2"]);
    assert_ne!(fields(&String::from_utf8(other.stdout).unwrap())[3].1, fa[3].1);
}

#[test]
fn phold_runs_beside_a_bare_heap_of_the_same_semantics() {
    let o = emu(&["bench", "phold", "--lps", "300", "--events", "40000", "--baseline-heap"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let field = |l: &str, k: &str| l.split(' ').find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap().to_string();
    assert!(lines[1].starts_with("baseline-heap "), "{text}");
    assert_eq!(field(lines[0], "checksum"), field(lines[1], "checksum"), "the same events in the same order");
    assert_eq!(field(lines[1], "events"), "40300");
    assert!(field(lines[1], "engine/baseline").parse::<f64>().unwrap() > 0.0);
}

#[test]
fn phold_refuses_more_pending_events_than_it_allows() {
    for args in [["--lps", "4000000000", "--init", "1"], ["--lps", "1000", "--init", "4000000000"]] {
        let o = emu(&["bench", "phold", args[0], args[1], args[2], args[3], "--events", "10"]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("pending events, more than the 100000000"), "{}", stderr(&o));
    }
}

#[test]
fn replications_add_a_column_and_differ_only_by_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rep");
    run_ok(&root().join("workloads/seed/pod-to-service.toml"), &out, &["--replications", "3"]);
    let s = csv(&out.join("summary.csv"));
    let reps: Vec<&str> = s.iter().map(|r| r["replication"].as_str()).collect();
    assert_eq!(reps, ["0", "1", "2"]);
    // Replication r runs with seed + r: replication 1 of seed 1 is seed 2.
    let seed2 = tmp.path().join("seed2");
    run_ok(&root().join("workloads/seed/pod-to-service.toml"), &seed2, &["--seed", "2"]);
    let alone = &csv(&seed2.join("summary.csv"))[0];
    assert_eq!(s[1]["latency_mean_us"], alone["latency_mean_us"]);
    assert_ne!(s[0]["latency_mean_us"], s[1]["latency_mean_us"]);
}

#[test]
fn timeseries_adds_up_to_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ts");
    run_ok(&root().join("workloads/services/external-traffic-policy.toml"), &out, &[]);
    let s = csv(&out.join("summary.csv"));
    let ts = csv(&out.join("timeseries.csv"));
    assert_eq!(s.len(), 2, "Cluster and Local");
    for r in &s {
        let policy = &r["services[0].external_traffic_policy"];
        let rows: Vec<_> = ts.iter().filter(|t| &t["services[0].external_traffic_policy"] == policy).collect();
        let completed: f64 = rows.iter().map(|t| f(t, "completed")).sum();
        let failed: f64 = rows.iter().map(|t| f(t, "failed")).sum();
        assert_eq!(completed, f(r, "completed"), "{policy}");
        assert_eq!(failed, f(r, "failed"), "{policy}");
        // Consecutive 100 ms intervals, no gaps.
        for w in rows.windows(2) {
            assert!((f(w[1], "time_s") - f(w[0], "time_s") - 0.1).abs() < 1e-9);
        }
        // 2,000 requests/s offered: a busy interval completes about 200.
        let busy = rows.iter().map(|t| f(t, "completed") + f(t, "failed")).fold(0.0, f64::max);
        assert!((150.0..260.0).contains(&busy), "{policy}: {busy}");
    }
}
