//! Bad input: a clear message naming file, line and key; exit code 2; no
//! results directory created, and an existing one left untouched.

use super::util::*;

pub(super) const GOOD: &str = r#"
[cluster]
nodes = 2
[[pods]]
name = "client"
[[pods]]
name = "web"
labels = { app = "web" }
ports = [8080]
[[services]]
name = "web"
type = "NodePort"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080, node_port = 30007 }]
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
requests = 10
"#;

/// Runs `text` as a scenario and checks it fails as bad input, with every
/// `needles` fragment in the message; returns the message.
pub(super) fn bad(text: &str, needles: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "bad.toml", text);
    let out = tmp.path().join("out");
    let kept = tmp.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    std::fs::write(kept.join("summary.csv"), "earlier results").unwrap();
    for target in [&out, &kept] {
        let o = emu(&["run", sc.to_str().unwrap(), "--out", target.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "expected exit 2, got {:?}: {err}", o.status.code());
        for n in needles {
            assert!(err.contains(n), "message lacks `{n}`: {err}");
        }
        assert!(err.contains("bad.toml") || err.contains(".yaml"), "message names no file: {err}");
        assert!(err.lines().count() <= 2, "message longer than two lines: {err}");
    }
    assert!(!out.exists(), "a results directory was created");
    assert_eq!(std::fs::read_to_string(kept.join("summary.csv")).unwrap(), "earlier results");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "left behind: {leftovers:?}");
    let o = emu(&["validate", sc.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "validate: expected exit 2: {err}");
    for n in needles {
        assert!(err.contains(n), "validate's message lacks `{n}`: {err}");
    }
    err
}

#[test]
fn the_good_scenario_is_good() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "good.toml", GOOD);
    run_ok(&sc, &tmp.path().join("out"), &[]);
}

#[test]
fn unknown_key() {
    bad(
        &GOOD.replace("name = \"client\"", "name = \"client\"\nnmae = \"x\""),
        &["unknown field `nmae`", "bad.toml:6:1"],
    );
}

#[test]
fn wrong_type() {
    bad(&GOOD.replace("nodes = 2", "nodes = \"two\""), &["bad.toml:3:9", "invalid type"]);
}

#[test]
fn malformed_toml() {
    bad(&GOOD.replace("[cluster]", "[cluster"), &["bad.toml:2:"]);
}

#[test]
fn node_port_out_of_range() {
    bad(
        &GOOD.replace("30007", "40000"),
        &["bad.toml:14:", "services[0].ports[0].node_port", "outside the range 30000-32767"],
    );
}

#[test]
fn duplicate_node_port() {
    let dup = GOOD.replace(
        "[[flows]]",
        "[[services]]\nname = \"web2\"\ntype = \"NodePort\"\nselector = { app = \"web\" }\nports = [{ port = 81, target_port = 8080, node_port = 30007 }]\n[[flows]]",
    );
    bad(&dup, &["services[1].ports[0].node_port", "already used by Service `web`", "bad.toml:19:"]);
}

#[test]
fn port_out_of_range() {
    bad(&GOOD.replace("ports = [8080]", "ports = [70000]"), &["pods[1]", "out of range 1-65535"]);
}

#[test]
fn port_clash_in_a_pod() {
    let clash = GOOD
        .replace("ports = [8080]", "containers = [{ name = \"a\", ports = [8080] }, { name = \"b\", ports = [8080] }]");
    bad(&clash, &["pods[1].containers[1].ports[0]", "share one network namespace", "bad.toml:9:"]);
}

#[test]
fn target_port_matching_nothing() {
    bad(
        &GOOD.replace("target_port = 8080", "target_port = \"http\""),
        &["services[0].ports[0].target_port", "matches no TCP container port"],
    );
}

#[test]
fn selector_matching_nothing_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let text = GOOD.replace(
        "[[flows]]",
        "[[services]]\nname = \"lonely\"\nselector = { app = \"nobody\" }\nports = [{ port = 80 }]\n[[flows]]",
    );
    let sc = write(tmp.path(), "warn.toml", &text);
    let o = emu(&["run", sc.to_str().unwrap(), "--out", tmp.path().join("out").to_str().unwrap()]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(err.contains("warning:") && err.contains("lonely") && err.contains("matches no pod"), "{err}");
}

#[test]
fn pod_cidr_running_out() {
    bad(&GOOD.replace("name = \"client\"", "name = \"client\"\nreplicas = 600"), &["is full", "10.244.", "pods[0]"]);
}

#[test]
fn cluster_too_big_for_pod_cidr() {
    bad(&GOOD.replace("nodes = 2", "nodes = 300"), &["cluster.pod_cidr", "room for 256 nodes"]);
}

#[test]
fn flow_to_an_unknown_name() {
    bad(&GOOD.replace("http://web:80", "http://wbe:80"), &["flows[0].to", "resolves to no Service", "bad.toml:18:"]);
}

#[test]
fn flow_from_an_unknown_pod() {
    bad(&GOOD.replace("from = \"client\"", "from = \"clinet\""), &["flows[0].from", "no pod or pod template `clinet`"]);
}

#[test]
fn a_document_that_is_no_kubernetes_object() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("np.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\nkind: Pod\nmetadata:\n  name: db\n",
    )
    .unwrap();
    let sc = write(tmp.path(), "m.toml", &format!("manifests = [\"np.yaml\"]\n{GOOD}"));
    let o = emu(&["run", sc.to_str().unwrap(), "--out", tmp.path().join("out").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("np.yaml:6:") && err.contains("document 2") && err.contains("no apiVersion"), "{err}");
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn missing_file() {
    let o = emu(&["run", "does/not/exist.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does/not/exist.toml: cannot read"));
}
