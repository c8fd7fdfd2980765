//! Regression tests of issue 7's defects, each with its minimal
//! reproducer: what used to panic, blow up or touch the user's files.

use std::path::Path;
use std::process::{Command, Stdio};

use super::errors::{bad, GOOD};
use super::util::*;

/// GOOD with `[table] key = value` appended.
fn with(table: &str, line: &str) -> String {
    format!("{GOOD}\n[{table}]\n{line}\n")
}

#[test]
fn a_service_cidr_without_room_for_kube_dns() {
    bad(
        &GOOD.replace("nodes = 2", "nodes = 2\nservice_cidr = \"10.96.0.0/29\""),
        &["bad.toml:4:1", "cluster.service_cidr", "kube-dns takes the tenth"],
    );
}

#[test]
fn durations_above_the_limit() {
    bad(
        &GOOD.replace("requests = 10", "requests = 10\nthink_time = \"9000000000s\""),
        &["above the longest", "1000000s"],
    );
    bad(&with("node", "tcp_time_wait = \"9223372036s\""), &["bad.toml:", "above the longest"]);
}

#[test]
fn narrowed_values_are_refused_by_validate_too() {
    bad(&with("datapath", "socket = \"300ms\""), &["datapath.socket", "longest hop latency, 250ms"]);
    bad(&with("datapath", "underlay_latency = \"5s\""), &["datapath.underlay_latency", "longest link latency, 4s"]);
    bad(&with("proxy.iptables", "conntrack_new = \"5s\""), &["proxy.iptables.conntrack_new"]);
    bad(&with("proxy.iptables", "rule_cost = \"1s\""), &["proxy.iptables.rule_cost", "first packet could cost"]);
    bad(&format!("{GOOD}\n[proxy]\nmode = \"ipvs\"\n[proxy.ipvs]\nlookup = \"5s\"\n"), &["proxy.ipvs.lookup"]);
}

#[test]
fn a_flow_past_the_horizon_stops_there_with_a_warning() {
    let text = GOOD.replace("requests = 10", "requests = 1000\nthink_time = \"999999s\"");
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "h.toml", &text);
    let out = tmp.path().join("out");
    let o = emu(&["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("stopped issuing requests at the simulated horizon, 100000000 s"), "{}", stderr(&o));
    let s = &csv(&out.join("summary.csv"))[0];
    // One request at 0, then one per 999,999 s up to 1e8 s.
    assert_eq!(s["requests"], "101");
    // The gaps of days between requests are written as two idle rows each.
    let rows = csv(&out.join("timeseries.csv"));
    assert!(rows.len() <= 3 * 101, "{} rows", rows.len());
    assert_eq!(rows.iter().map(|r| f(r, "completed")).sum::<f64>(), 101.0);
}

#[test]
fn dot_paths_as_out_are_refused_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "s.toml", GOOD);
    for out in [".", "..", "x/..", "./"] {
        let o = emu_in(tmp.path(), &["run", "s.toml", "--out", out]);
        assert_eq!(o.status.code(), Some(2), "{out}: {}", stderr(&o));
        assert!(stderr(&o).contains("name the results directory itself"), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "only s.toml is left");
}

#[test]
fn object_counts_past_the_limits_are_refused_before_allocating() {
    let big = "4000000000";
    bad(
        &GOOD.replace("ports = [8080]", &format!("ports = [8080]\nreplicas = {big}")),
        &["pods[1].replicas", "limit of 20000000"],
    );
    bad(&with("dns", &format!("replicas = {big}")), &["dns.replicas", "limit of 20000000"]);
    bad(&GOOD.replace("name = \"client\"", &format!("name = \"c{{i}}\"\ncount = {big}")), &["pods[0].count", "limit"]);
    bad(
        &GOOD.replace("name = \"f\"", &format!("name = \"f{{i}}\"\ncount = {big}")),
        &["flows[0].count", "limit of 100000"],
    );
    let services = GOOD.replace("name = \"web\"\ntype", &format!("name = \"web{{i}}\"\ncount = {big}\ntype"));
    bad(&services, &["services[0].count", "limit of 1000000"]);
    let sweep = format!("[sweep]\n\"pods[0].count\" = [{big}]\n");
    bad(
        &GOOD
            .replace("name = \"client\"", "name = \"c{i}\"\ncount = 1")
            .replace("[cluster]", &format!("{sweep}[cluster]")),
        &["count", "limit"],
    );
    bad(&with("node", "softirq_cores = 4294967295"), &["node.softirq_cores", "outside 1-1024"]);
    bad(
        &GOOD.replace("nodes = 2", "nodes = 100000000\npod_cidr = \"10.0.0.0/8\"\nnode_cidr_mask_size = 30"),
        &["cluster.nodes", "limit of 1000000"],
    );
    bad(
        &GOOD.replace("requests = 10", "requests = 10\nconcurrency = 100000000"),
        &["flows[0].concurrency", "limit of 10000000"],
    );
    bad(&GOOD.replace("requests = 10", "requests = 10\nrate = 1e300"), &["flows[0].rate", "limit of 1e9"]);
    bad(
        &format!("replications = 10000\n[sweep]\n\"cluster.nodes\" = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]\n{GOOD}"),
        &["bad.toml:1:1", "110000 runs", "limit of 100000"],
    );
}

#[test]
fn a_manifest_deployment_with_billions_of_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("d.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: big\nspec:\n  replicas: 4000000000\n  selector:\n    matchLabels: {app: big}\n  template:\n    metadata:\n      labels: {app: big}\n    spec:\n      containers:\n      - name: c\n        image: x\n",
    )
    .unwrap();
    let sc = write(tmp.path(), "m.toml", &format!("manifests = [\"d.yaml\"]\n{GOOD}"));
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("d.yaml") && stderr(&o).contains("limit of 20000000"), "{}", stderr(&o));
}

#[test]
fn a_timeseries_of_too_many_rows_is_refused_up_front() {
    bad(
        &with("output", "interval = \"1ns\"").replace("requests = 10", "requests = 100000000\nrate = 1000000"),
        &["output.interval", "timeseries.csv would get up to", "the whole run"],
    );
}

#[test]
fn a_very_long_run_says_up_front_how_long_it_will_take() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "long.toml", &GOOD.replace("requests = 10", "requests = 1000000000000"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(["run", sc.to_str().unwrap(), "--out", tmp.path().join("out").to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    std::io::BufRead::read_line(&mut err, &mut first).unwrap();
    // SIGTERM once the handler is in place: the run ends with 130 and
    // writes nothing. (Dropping `err` first would make the handler's own
    // message meet a closed pipe: it must still exit.)
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(err);
    unsafe_kill(child.id());
    let status = child.wait().unwrap();
    assert!(first.starts_with("note: 1 run(s), 1000000000000 requests"), "{first}");
    assert!(first.contains("days") || first.contains("years"), "{first}");
    assert_eq!(status.code(), Some(130));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "only the scenario is left");
}

/// Sends SIGTERM to `pid` with the system's `kill`.
fn unsafe_kill(pid: u32) {
    let ok = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(ok.success());
}

#[test]
fn threads_beyond_the_cores_are_capped() {
    let (_tmp, out) = run_text(GOOD, &["--threads", "2000"]);
    assert_eq!(csv(&out.join("summary.csv"))[0]["completed"], "10");
}

#[test]
fn endless_inputs_are_cut_at_64_mib() {
    let o = emu(&["validate", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/dev/zero: larger than 64 MiB"), "{}", stderr(&o));
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "z.toml", &format!("manifests = [\"/dev/zero\"]\n{GOOD}"));
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("z.toml:1:14: manifests[0]: /dev/zero: larger than 64 MiB"), "{}", stderr(&o));
}

#[test]
fn out_as_a_file_or_a_foreign_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "s.toml", GOOD);
    let notes = write(tmp.path(), "notes.txt", "mine");
    let proj = tmp.path().join("proj");
    std::fs::create_dir(&proj).unwrap();
    write(&proj, "main.rs", "fn main() {}");
    for (target, needle) in [(&notes, "is not a directory"), (&proj, "--force")] {
        for force in [false, true] {
            let mut args = vec!["run", sc.to_str().unwrap(), "--out", target.to_str().unwrap()];
            if force {
                args.push("--force");
            }
            let o = emu(&args);
            if force && target == &proj {
                assert!(o.status.success(), "{}", stderr(&o));
                continue;
            }
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        }
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
    assert!(proj.join("summary.csv").exists() && !proj.join("main.rs").exists(), "--force replaced proj");
    // Its own results emu replaces without --force.
    run_ok(&sc, &proj, &[]);
    let names: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 3, "nothing beside s.toml, notes.txt and proj: {names:?}");
}

#[test]
fn rerunning_run_toml_keeps_manifest_names() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("workloads/seed/myservice.yaml"), tmp.path().join("myservice.yaml")).unwrap();
    let text = std::fs::read_to_string(root().join("workloads/seed/pod-to-service.toml")).unwrap();
    let sc = write(tmp.path(), "s.toml", &text);
    let one = tmp.path().join("one");
    let two = tmp.path().join("two");
    run_ok(&sc, &one, &[]);
    run_ok(&one.join("run.toml"), &two, &[]);
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d.join("manifests"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&one), ["00-myservice.yaml"]);
    assert_eq!(names(&two), names(&one));
    assert!(std::fs::read_to_string(two.join("run.toml")).unwrap().contains("manifests/00-myservice.yaml"));
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("u.toml");
    std::fs::write(&p, b"seed = 1\n# caf\xe9\n").unwrap();
    let o = emu(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("u.toml:2:6: invalid UTF-8"), "{}", stderr(&o));
}

#[test]
fn errors_caused_by_objects_emu_adds_name_the_cluster_key() {
    bad(
        &GOOD
            .replace("nodes = 2", "nodes = 1\nnode_cidr_mask_size = 29")
            .replace("name = \"client\"", "name = \"client\"\nreplicas = 3"),
        &["bad.toml:4:1", "cluster.node_cidr_mask_size", "coredns", "which emu adds itself"],
    );
    let ingress = "[[ingresses]]\nname = \"i\"\nrules = [{ paths = [{ path = \"/\", service = \"web\", port = 80 }] }]\n[ingress_controller]\nservice_type = \"NodePort\"\n";
    bad(
        &format!("{}{ingress}", GOOD.replace("nodes = 2", "nodes = 2\nnode_port_range = \"30007-30008\"")),
        &["cluster.node_port_range", "is exhausted", "ingress controller"],
    );
    bad(
        &format!("{GOOD}{ingress}namespace = \"Bad_NS\"\n"),
        &["bad.toml:25:1", "ingress_controller.namespace", "not a valid Kubernetes name"],
    );
}

#[test]
fn yaml_errors_are_located_once_in_plain_words() {
    let cases: [(&str, String, &str); 3] = [
        (
            "bad port",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n    targetPort: [1]\n"
                .into(),
            "s.yaml:8:17: expected a port number or a port name",
        ),
        ("recursion", "a: &a [*a]\n".into(), "s.yaml:1:8: an alias (*name) refers to the anchor it is inside"),
        ("documents", "---\n".repeat(1100), "s.yaml:1025:1: the file has more than 1,024 documents"),
    ];
    for (what, yaml, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("s.yaml"), yaml).unwrap();
        let sc = write(tmp.path(), "m.toml", &format!("manifests = [\"s.yaml\"]\n{GOOD}"));
        let o = emu(&["validate", sc.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(want), "{what}: {err}");
        assert!(
            !err.contains("line ") && !err.contains("budget breached") && !err.contains("untagged"),
            "{what}: {err}"
        );
    }
}

#[test]
fn a_huge_seed_keeps_the_line_of_a_later_error() {
    bad(
        &format!("seed = 18446744073709551615\n{}", GOOD.replace("requests = 10", "requests = 10\nrate = -5")),
        &["bad.toml:21:1", "flows[0].rate"],
    );
}

#[test]
fn sweeping_replications_is_refused() {
    bad(&format!("[sweep]\nreplications = [0, 3]\n{GOOD}"), &["bad.toml:2:1", "sweep.replications", "cannot be swept"]);
}
