//! docs/scenario.md documents every key the scenario schema accepts.
//!
//! The keys come from the schema itself: `FULL` reaches every table of
//! it (every optional key set, every array with one element); each of
//! those tables, handed an unknown key, makes serde list every field its
//! struct accepts ("unknown field `zz`, expected one of `a`, `b`, ..."),
//! so a key added to any struct (optional or not) is found even if
//! `FULL` does not set it; the test then asks for it to be set in `FULL`
//! and for a row `| \`key\` |` in docs/scenario.md.

use std::collections::BTreeSet;

use emu::scenario::schema::Scenario;

use super::util::root;

/// A scenario that sets every key (values need only parse, not validate).
const FULL: &str = r#"
emu_version = "0.0.0"
seed = 7
replications = 2
manifests = ["m.yaml"]

[cluster]
nodes = 3
placement = "random"
namespaces = ["shop", { name = "team", labels = { tier = "a" } }]
kubernetes_service = true

[network_policy]
enforcement = "auto"
rule_cost = "20ns"
dispatch = "200ns"
set_match = "40ns"
ebpf_lookup = "100ns"

[proxy.sync]
min_sync_period = "1s"

[control_plane]
sandbox = "1s"

[load_balancer]
healthy_threshold = 2

[dns]
lameduck = "5s"
persistent_socket = true
resolver = "musl"
upstream_latency = "2ms"
upstream_cache_ttl = "30s"
external_names = ["api.example.com"]

[sweep]
"cluster.nodes" = [1, 2]

[[ingresses]]
name = "ing"
namespace = "default"
default_backend = { service = "web", port = 80 }
rules = [{ host = "a.example", paths = [{ path = "/", path_type = "Exact", service = "web", port = 80 }] }]

[[pods]]
count = 1
name = "web"
namespace = "default"
replicas = 2
node = "node-0"
ip = "10.244.0.5"
ipvs_weight = 1
labels = { app = "web" }
ports = [8080, { name = "http", port = 8081, protocol = "TCP" }]
containers = [{ name = "side", ports = [9090] }]
readiness_probe = { initial_delay = "1s", period = "2s", success_threshold = 1, failure_threshold = 3 }
app_start = "1s"
pre_stop = "5s"
termination_grace_period = "30s"
max_surge = "25%"
max_unavailable = 1
min_ready = "0s"
host_network = true
dns_policy = "ClusterFirst"

[[services]]
count = 1
name = "web"
namespace = "default"
type = "NodePort"
selector = { app = "web" }
cluster_ip = "10.96.0.20"
external_name = "db.example.com"
ports = [{ name = "http", port = 80, target_port = 8080, node_port = 30080, protocol = "TCP" }]
external_traffic_policy = "Cluster"
internal_traffic_policy = "Cluster"
session_affinity = "ClientIP"
session_affinity_timeout = "10s"

[[servers]]
count = 1
selector = { app = "web" }
namespace = "default"
port = 8080
service_time = "1ms"
concurrency = 1
queue_limit = 10

[[flows]]
count = 1
name = "f"
from = { pod = "web", container = "side", selector = { app = "web" }, namespace = "default" }
to = "http://web"
rate = 1.0
concurrency = 1
think_time = "0s"
requests = 1
duration = "1s"
start = "0s"
request_bytes = 1
response_bytes = 1
keep_alive = true
timeout = "1s"
clients = 1
allow_nxdomain = true
max_connection_age = "1s"

[[network_policies]]
count = 1
name = "p"
namespace = "default"
pod_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }
policy_types = ["Ingress", "Egress"]
# Every key once (not a valid policy: the loader refuses `to` in an ingress rule).
ingress = [{ from = [{ pod_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }, namespace_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }, ip_block = { cidr = "10.0.0.0/8", except = ["10.1.0.0/16"] } }], to = [{ pod_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }, namespace_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }, ip_block = { cidr = "10.0.0.0/8", except = ["10.1.0.0/16"] } }], ports = [{ protocol = "TCP", port = 80, end_port = 90 }] }]
egress = [{ from = [{ pod_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }, namespace_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }, ip_block = { cidr = "10.0.0.0/8", except = ["10.1.0.0/16"] } }], to = [{ pod_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }, namespace_selector = { match_labels = { app = "web" }, match_expressions = [{ key = "app", operator = "In", values = ["web"] }] }, ip_block = { cidr = "10.0.0.0/8", except = ["10.1.0.0/16"] } }], ports = [{ protocol = "TCP", port = 80, end_port = 90 }] }]

[[changes]]
count = 1
every = "1s"
at = "1s"
after = "1s"
namespace = "default"
rollout = "web"
scale = { deployment = "web", replicas = 1 }
delete_pod = "web-0"
drain_node = "node-0"
fail_node = "node-0"
recover_node = "node-0"
create_services = { count = 1, name = "c", selector = { app = "web" }, port = 80, target_port = 8080 }
"#;

const PROBE: &str = "zz_not_a_key";

/// The fields serde says the table at `path` of `full` accepts, or
/// `None` for a free-form map (labels, selectors, `[sweep]`).
fn accepted(full: &toml::Value, path: &[Step]) -> Option<Vec<String>> {
    let mut v = full.clone();
    let mut t = &mut v;
    for s in path {
        t = match s {
            Step::Key(k) => t.get_mut(k.as_str()).unwrap(),
            Step::Index(i) => t.get_mut(*i).unwrap(),
        };
    }
    t.as_table_mut().unwrap().insert(PROBE.into(), toml::Value::String("x".into()));
    let msg = match v.try_into::<Scenario>() {
        Ok(_) => return None,
        // One of several forms (a namespace's name or its table): serde
        // names no fields; docs/scenario.md lists the table's.
        Err(e) if e.message().contains("did not match any variant of untagged enum") => return None,
        Err(e) => e.message().to_string(),
    };
    let (_, expected) = msg
        .split_once(&format!("unknown field `{PROBE}`, expected "))
        .unwrap_or_else(|| panic!("{}: not an unknown-field error: {msg}", show(path)));
    let fields: Vec<String> = expected.split('`').skip(1).step_by(2).map(str::to_string).collect();
    assert!(!fields.is_empty(), "{}: no fields in {msg}", show(path));
    Some(fields)
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn show(path: &[Step]) -> String {
    let mut s = String::new();
    for p in path {
        match p {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => s.push_str(&format!(".{k}")),
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        "(top level)".into()
    } else {
        s
    }
}

/// Every key the schema accepts, as (path of its table, key, value is a table
/// or an array of tables); panics if `FULL` misses one.
fn keys(full: &toml::Value, here: &toml::Value, path: Vec<Step>, out: &mut Vec<(String, String, bool)>) {
    let Some(fields) = accepted(full, &path) else { return };
    let table = here.as_table().unwrap();
    for f in fields {
        let v = table.get(&f).unwrap_or_else(|| {
            panic!("`{}` accepts `{f}`, which FULL (tests/e2e/docs.rs) does not set: set it", show(&path))
        });
        let mut p = path.clone();
        p.push(Step::Key(f.clone()));
        match v {
            toml::Value::Table(_) => {
                out.push((show(&path), f, true));
                keys(full, v, p, out);
            }
            toml::Value::Array(a) if a.iter().any(toml::Value::is_table) => {
                out.push((show(&path), f, a.iter().all(toml::Value::is_table)));
                for (i, e) in a.iter().enumerate().filter(|(_, e)| e.is_table()) {
                    let mut q = p.clone();
                    q.push(Step::Index(i));
                    keys(full, e, q, out);
                }
            }
            _ => out.push((show(&path), f, false)),
        }
    }
}

/// Every key of the schema, documented as `| \`key\` |` (a table-valued
/// key may instead be documented by its section, `[key]` or `[[key]]`).
fn undocumented(doc: &str) -> Vec<String> {
    let parsed: Scenario = toml::from_str(FULL).unwrap_or_else(|e| panic!("FULL does not parse: {e}"));
    let full = toml::Value::try_from(&parsed).unwrap();
    let mut all = Vec::new();
    keys(&full, &full, vec![], &mut all);
    assert!(all.len() > 150, "only {} keys found", all.len());
    let rows: BTreeSet<&str> =
        doc.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split_once("` |").map(|(k, _)| k)).collect();
    let sections: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with('#'))
        .flat_map(|l| l.split('`').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>())
        .collect();
    let mut missing = Vec::new();
    for (table, key, is_table) in all {
        let row = rows.contains(key.as_str());
        let section = is_table
            && (rows.contains(format!("[{key}]").as_str())
                || rows.contains(format!("[[{key}]]").as_str())
                || sections.iter().any(|s| {
                    s == &format!("[{key}]") || s == &format!("[[{key}]]") || s.ends_with(&format!(".{key}]"))
                }));
        if !row && !section {
            missing.push(format!("{table}: `{key}`"));
        }
    }
    missing
}

#[test]
fn docs_list_every_scenario_key() {
    let doc = std::fs::read_to_string(root().join("docs/scenario.md")).unwrap();
    let missing = undocumented(&doc);
    assert!(missing.is_empty(), "docs/scenario.md has no table row `| `key` |` for:\n{}", missing.join("\n"));
}

#[test]
fn the_docs_check_can_fail() {
    let doc = std::fs::read_to_string(root().join("docs/scenario.md")).unwrap();
    let without: String =
        doc.lines().filter(|l| !l.starts_with("| `max_connection_age` |")).map(|l| format!("{l}\n")).collect();
    assert!(without.len() < doc.len(), "the row to remove is not in the docs");
    assert_eq!(undocumented(&without), vec!["flows[0]: `max_connection_age`".to_string()]);
}
