//! The table `emu run` prints on stdout: per flow, or per run for sweeps,
//! capped, and silenced by `--quiet`.

use crate::util::{csv, emu, f, root, row, stderr, write};

fn run(args: &[&str]) -> (String, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut a = vec!["run"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let o = emu(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrote "), "the closing line stays on stderr");
    (String::from_utf8(o.stdout).unwrap(), tmp)
}

/// The table's rows as (first cell, cells), split on runs of 2+ spaces.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines().map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()).collect()
}

#[test]
fn a_run_ends_with_one_row_per_flow_that_agrees_with_summary_csv() {
    let (text, tmp) = run(&[root().join("workloads/policy/default-deny.toml").to_str().unwrap()]);
    let t = rows(&text);
    assert_eq!(t[0][..4], ["flow", "requests", "completed", "failed"]);
    assert_eq!(t.len(), 1 + 7, "{text}");
    let s = csv(&tmp.path().join("out/summary.csv"));
    for r in &t[1..] {
        let want = row(&s, "flow", &r[0]);
        assert_eq!(r[1], want["requests"]);
        assert_eq!(r[2], want["completed"]);
        assert_eq!(r[3], want["failed"]);
    }
    let denied = t.iter().find(|r| r[0] == "frontend-to-db").unwrap();
    assert_eq!(denied[4], "policy_denied 20", "the main failure and its count");
    let ok = t.iter().find(|r| r[0] == "backend-to-db").unwrap();
    let p50_ms: f64 = ok[4].trim_end_matches("ms").parse().unwrap();
    let want = f(row(&s, "flow", "backend-to-db"), "latency_p50_us") / 1000.0;
    assert!((p50_ms - want).abs() < 0.01, "{p50_ms} vs {want}");
    assert!(ok.last().unwrap().starts_with("server "), "the top hop of a DB call is the server: {ok:?}");
}

#[test]
fn a_sweep_prints_one_row_per_run_and_quiet_prints_nothing() {
    let sc = root().join("workloads/validation/kube-proxy-modes.toml");
    let (text, _t) = run(&[sc.to_str().unwrap()]);
    let t = rows(&text);
    assert_eq!(t[0][0], "run");
    assert_eq!(t.len(), 1 + 9);
    assert!(t[1][0].starts_with("proxy.mode=iptables"), "{text}");
    let (quiet, _t) = run(&[sc.to_str().unwrap(), "--quiet"]);
    assert_eq!(quiet, "");
}

#[test]
fn many_flows_are_capped_and_the_rest_summed() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(
        tmp.path(),
        "s.toml",
        "[[pods]]\nname = \"p\"\nports = [80]\n[[flows]]\ncount = 25\nname = \"f{i}\"\nfrom = \"p\"\nto = \"http://localhost:80\"\nrequests = 10\n",
    );
    let (text, _t) = run(&[sc.to_str().unwrap()]);
    let t = rows(&text);
    assert_eq!(t.len(), 1 + 20 + 1);
    let last = t.last().unwrap();
    assert_eq!(last[..3], ["(5 more)", "50", "50"]);
}
