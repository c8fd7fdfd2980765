//! NetworkPolicy on the data path: denied first packets vanish and fail as
//! `policy_denied` (DNS as `dns_policy_denied`), ipBlock rules see the
//! address a NodePort's SNAT leaves, each enforcer charges its model, and
//! bad policies are refused with file, line and key.

use crate::util::{csv, emu, f, root, row, run_ok, run_text, stderr, write};

/// (completed, failed by reason) of `flow`.
fn outcome(out: &std::path::Path, flow: &str) -> (u64, Vec<(String, u64)>) {
    let s = csv(&out.join("summary.csv"));
    let completed = f(row(&s, "flow", flow), "completed") as u64;
    let fails = csv(&out.join("failures.csv"))
        .into_iter()
        .filter(|r| r["flow"] == flow && r["count"] != "0")
        .map(|r| (r["reason"].clone(), r["count"].parse().unwrap()))
        .collect();
    (completed, fails)
}

#[test]
fn the_default_deny_workload_completes_what_is_allowed_and_drops_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_ok(&root().join("workloads/policy/default-deny.toml"), &out, &[]);
    for flow in ["internet-lb", "frontend-to-backend", "backend-to-db"] {
        assert_eq!(outcome(&out, flow), (2000, vec![]), "{flow} is allowed");
    }
    for (flow, why) in [
        ("frontend-to-db", "policy_denied"),
        ("intruder-to-backend", "policy_denied"),
        ("locked-job", "dns_policy_denied"),
    ] {
        assert_eq!(outcome(&out, flow), (0, vec![(why.to_string(), 20)]), "{flow}");
    }
    // The node port SNATs to the entry node: the frontend's ipBlock rule
    // admits only connections that entered on the pod's own node.
    let (done, fails) = outcome(&out, "internet-nodeport-snat");
    assert!(done > 0 && done < 60, "{done} of 60 completed");
    assert_eq!(fails, vec![("policy_denied".to_string(), 60 - done)]);
    // Denied SYNs are retransmitted before the client gives up.
    let s = csv(&out.join("summary.csv"));
    assert!(f(row(&s, "flow", "frontend-to-db"), "retransmits") >= 20.0);
    // Per policy: who admitted, who isolated.
    let p = csv(&out.join("policies.csv"));
    assert_eq!(p.len(), 6);
    let get = |ns: &str, name: &str| p.iter().find(|r| r["namespace"] == ns && r["policy"] == name).unwrap();
    assert_eq!(get("shop", "db")["ingress_allowed"], "2000", "one SYN per backend-to-db request");
    assert_eq!(get("shop", "db")["types"], "ingress");
    assert_eq!(get("shop", "default-deny")["pods_selected"], "5");
    assert_eq!(get("locked", "deny-egress")["egress_denied"], "20");
    assert_eq!(get("shop", "frontend")["egress_denied"], get("shop", "default-deny")["egress_denied"]);
    // What enforcing cost, in hops.csv.
    let hops = csv(&out.join("hops.csv"));
    let h = hops.iter().find(|r| r["flow"] == "backend-to-db" && r["hop"] == "network_policy").unwrap();
    assert!(f(h, "traversals") >= 4000.0, "egress and ingress checks of every SYN");
    assert!(f(h, "mean_us") > 0.2 && f(h, "mean_us") < 1.0, "{h:?}");
}

/// A web pod, a client pod with egress policies, a flow by name.
fn dns_case(egress: &str, node_local: bool) -> String {
    format!(
        r#"
[cluster]
nodes = 2
[dns]
node_local_cache = {node_local}
[[pods]]
name = "client"
labels = {{ role = "client" }}
[[pods]]
name = "web"
labels = {{ app = "web" }}
ports = [8080]
[[services]]
name = "web"
selector = {{ app = "web" }}
ports = [{{ port = 80, target_port = 8080 }}]
[[network_policies]]
name = "client-egress"
pod_selector = {{ match_labels = {{ role = "client" }} }}
policy_types = ["Egress"]
{egress}
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
requests = 10
timeout = "3s"
"#
    )
}

const TO_WEB: &str = "[[network_policies.egress]]\nto = [{ pod_selector = { match_labels = { app = \"web\" } } }]\n";
const TO_KUBE_DNS: &str = "[[network_policies.egress]]\nto = [{ namespace_selector = { match_labels = { \"kubernetes.io/metadata.name\" = \"kube-system\" } }, pod_selector = { match_labels = { k8s-app = \"kube-dns\" } } }]\nports = [{ protocol = \"UDP\", port = 53 }]\n";
const TO_CACHE: &str =
    "[[network_policies.egress]]\nto = [{ ip_block = { cidr = \"169.254.20.10/32\" } }]\nports = [{ protocol = \"UDP\", port = 53 }]\n";

#[test]
fn a_default_deny_egress_without_a_dns_rule_breaks_name_resolution() {
    let (_t, out) = run_text(&dns_case(TO_WEB, false), &[]);
    assert_eq!(outcome(&out, "f"), (0, vec![("dns_policy_denied".into(), 10)]));
    let (_t, out) = run_text(&dns_case(&format!("{TO_WEB}{TO_KUBE_DNS}"), false), &[]);
    assert_eq!(outcome(&out, "f"), (10, vec![]));
    // DNS allowed, the web pod not: the SYN is denied.
    let (_t, out) = run_text(&dns_case(TO_KUBE_DNS, false), &[]);
    assert_eq!(outcome(&out, "f"), (0, vec![("policy_denied".into(), 10)]));
    // NodeLocal DNSCache listens on a link-local address of the node, no
    // pod: the kube-dns rule does not cover it, an ipBlock does.
    let (_t, out) = run_text(&dns_case(&format!("{TO_WEB}{TO_KUBE_DNS}"), true), &[]);
    assert_eq!(outcome(&out, "f"), (0, vec![("dns_policy_denied".into(), 10)]));
    let (_t, out) = run_text(&dns_case(&format!("{TO_WEB}{TO_CACHE}"), true), &[]);
    assert_eq!(outcome(&out, "f"), (10, vec![]));
}

/// External clients through a node port to web pods on every node, which
/// admit only 198.18.0.0/15 (and `extra` blocks).
fn snat_case(policy: &str, extra: &str) -> String {
    format!(
        r#"
[cluster]
nodes = 4
[[pods]]
name = "web"
replicas = 2
labels = {{ app = "web" }}
ports = [8080]
[[services]]
name = "web"
type = "NodePort"
external_traffic_policy = "{policy}"
selector = {{ app = "web" }}
ports = [{{ port = 80, target_port = 8080, node_port = 30080 }}]
[[network_policies]]
name = "from-internet"
pod_selector = {{ match_labels = {{ app = "web" }} }}
[[network_policies.ingress]]
from = [{{ ip_block = {{ cidr = "198.18.0.0/15" }} }}{extra}]
[[flows]]
name = "f"
from = "external"
to = "http://node-1:30080"
concurrency = 4
requests = 400
timeout = "2s"
"#
    )
}

#[test]
fn an_ip_block_sees_the_address_the_snat_leaves() {
    // Local: no SNAT, the client's address matches; node-1 holds web-1.
    let (_t, out) = run_text(&snat_case("Local", ""), &[]);
    assert_eq!(outcome(&out, "f"), (400, vec![]));
    // Cluster: SNAT to node-1's address. web-1 (on node-1) sees its own
    // node (always allowed), web-0 sees another node's address: denied.
    let (_t, out) = run_text(&snat_case("Cluster", ""), &[]);
    let (done, fails) = outcome(&out, "f");
    assert!(done > 100 && done < 400, "{done}");
    assert_eq!(fails, vec![("policy_denied".into(), 400 - done)]);
    let sources = csv(&out.join("sources.csv"));
    assert!(sources.iter().all(|r| r["server_pod"] == "default/web-1"), "only the pod on the entry node answers");
    // Admitting the node network lets the SNATed connections in.
    let (_t, out) = run_text(&snat_case("Cluster", ", { ip_block = { cidr = \"192.168.0.0/16\" } }"), &[]);
    assert_eq!(outcome(&out, "f"), (400, vec![]));
}

#[test]
fn each_enforcer_charges_its_model_and_no_policy_charges_nothing() {
    let base = dns_case(&format!("{TO_WEB}{TO_KUBE_DNS}"), false);
    let mean = |out: &std::path::Path| {
        let hops = csv(&out.join("hops.csv"));
        hops.iter().find(|r| r["hop"] == "network_policy").map(|r| f(r, "mean_us"))
    };
    let (_t, out) = run_text(&format!("{base}\n[network_policy]\nenforcement = \"ebpf\"\n"), &[]);
    assert_eq!(mean(&out), Some(0.1), "one 100 ns map lookup per check");
    let (_t, out) = run_text(&format!("{base}\n[network_policy]\nenforcement = \"iptables\"\n"), &[]);
    // 200 ns of dispatch plus 60 ns per rule passed: jumps and rules.
    let m = mean(&out).unwrap();
    assert!(m > 0.2 && m < 0.5, "{m}");
    let (_t, out) = run_text(&format!("{base}\n[network_policy]\nrule_cost = \"1us\"\n"), &[]);
    assert!(mean(&out).unwrap() > 1.0);
    // Without policies: no check, no policy reasons in failures.csv.
    let open = base.replace("[[network_policies]]", "[[ignored]]");
    let open = open.split("[[ignored]]").next().unwrap().to_string()
        + "[[flows]]\nname = \"f\"\nfrom = \"client\"\nto = \"http://web:80\"\nrequests = 10\n";
    let (_t, out) = run_text(&open, &[]);
    assert_eq!(mean(&out), None);
    let reasons: Vec<String> = csv(&out.join("failures.csv")).into_iter().map(|r| r["reason"].clone()).collect();
    assert!(!reasons.iter().any(|r| r.contains("policy")), "{reasons:?}");
    assert_eq!(csv(&out.join("policies.csv")).len(), 0);
    // iptables enforcement with the eBPF CNI is refused.
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(
        tmp.path(),
        "s.toml",
        &format!("{base}\n[cni]\nmode = \"ebpf\"\n[network_policy]\nenforcement = \"iptables\"\n"),
    );
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("network_policy.enforcement"), "{}", stderr(&o));
}

/// Checks that `emu validate` and `emu run` refuse `text` (scenario) with
/// `manifest` beside it, exit 2, with every needle in the message.
fn refused(text: &str, manifest: &str, needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "np.yaml", manifest);
    let sc = write(tmp.path(), "bad.toml", text);
    for cmd in ["validate", "run"] {
        let out = tmp.path().join("out");
        let o = if cmd == "run" {
            emu(&["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()])
        } else {
            emu(&["validate", sc.to_str().unwrap()])
        };
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        for n in needles {
            assert!(err.contains(n), "{cmd}: message lacks `{n}`: {err}");
        }
        assert!(!out.exists());
    }
}

const APP: &str = "[[pods]]\nname = \"web\"\nlabels = { app = \"web\" }\nports = [8080]\n[[flows]]\nname = \"f\"\nfrom = \"web\"\nto = \"http://localhost:8080\"\nrequests = 1\n";

#[test]
fn bad_policies_in_toml_name_file_line_and_key() {
    let with = |rule: &str| format!("{APP}[[network_policies]]\nname = \"p\"\n[[network_policies.ingress]]\n{rule}\n");
    for (rule, line, key, what) in [
        (
            "from = [{ pod_selector = { match_expressions = [{ key = \"a\", operator = \"Inn\", values = [\"x\"] }] } }]",
            13,
            "network_policies[0].ingress[0].from[0].pod_selector.match_expressions[0].operator",
            "`Inn` is not In, NotIn, Exists or DoesNotExist",
        ),
        ("ports = [{ port = 70000 }]", 13, "network_policies[0].ingress[0].ports[0].port", "port 70000 is outside 1-65535"),
        (
            "ports = [{ port = 8080, end_port = 80 }]",
            13,
            "network_policies[0].ingress[0].ports[0].end_port",
            "endPort 80 must be at least port 8080",
        ),
        (
            "from = [{ ip_block = { cidr = \"10.0.0.0\" } }]",
            13,
            "network_policies[0].ingress[0].from[0].ip_block.cidr",
            "not a CIDR block",
        ),
        (
            "from = [{ ip_block = { cidr = \"10.0.0.0/16\", except = [\"10.1.0.0/24\"] } }]",
            13,
            "network_policies[0].ingress[0].from[0].ip_block.except[0]",
            "10.1.0.0/24 is not a strict subset of the ipBlock's cidr 10.0.0.0/16",
        ),
    ] {
        refused(&with(rule), "", &[&format!("bad.toml:{line}:"), key, what]);
    }
}

#[test]
fn bad_policies_in_yaml_name_file_line_and_key() {
    let sc = format!("manifests = [\"np.yaml\"]\n{APP}");
    let head = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector: {}\n  ingress:\n";
    for (rule, line, key, what) in [
        (
            "  - from:\n    - podSelector:\n        matchExpressions:\n        - {key: a, operator: Inn, values: [x]}\n",
            11,
            "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator",
            "`Inn` is not In",
        ),
        ("  - ports:\n    - port: 0\n", 9, "spec.ingress[0].ports[0].port", "port 0 is outside 1-65535"),
        (
            "  - ports:\n    - {port: 8080, endPort: 80}\n",
            9,
            "spec.ingress[0].ports[0].endPort",
            "endPort 80 must be at least port 8080",
        ),
        (
            "  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/33\n",
            10,
            "spec.ingress[0].from[0].ipBlock.cidr",
            "prefix length above 32",
        ),
        (
            "  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/16\n        except: [10.0.0.0/8]\n",
            11,
            "spec.ingress[0].from[0].ipBlock.except[0]",
            "not a strict subset",
        ),
    ] {
        refused(&sc, &format!("{head}{rule}"), &[&format!("np.yaml:{line}:"), "NetworkPolicy p", key, what]);
    }
}

#[test]
fn reach_filters_by_namespace_and_shows_one_pod_per_workload_in_large_clusters() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(
        tmp.path(),
        "s.toml",
        r#"
[cluster]
nodes = 4
namespaces = [{ name = "shop", labels = { team = "shop" } }, "guest"]
[[pods]]
name = "web"
namespace = "shop"
replicas = 30
labels = { app = "web" }
ports = [8080]
[[pods]]
name = "client"
namespace = "guest"
replicas = 20
labels = { app = "client" }
[[network_policies]]
name = "web"
namespace = "shop"
pod_selector = { match_labels = { app = "web" } }
[[network_policies.ingress]]
from = [{ namespace_selector = { match_labels = { team = "shop" } } }]
"#,
    );
    let reach = |args: &[&str]| {
        let out = tmp.path().join("out");
        let mut a = vec!["reach", sc.to_str().unwrap(), "--out", out.to_str().unwrap()];
        a.extend_from_slice(args);
        let o = emu(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        (String::from_utf8_lossy(&o.stdout).into_owned(), csv(&out.join("reach.csv")))
    };
    // 50 pods: one per workload, every port the pods listen on.
    let (text, rows) = reach(&[]);
    assert!(text.starts_with("(one pod per workload"), "{text}");
    assert!(text.contains("reachability 8080/TCP: 3 of 4 allowed"), "{text}");
    assert_eq!(rows.len(), 4);
    let cell = |from: &str, to: &str| rows.iter().find(|r| r["from"] == from && r["to"] == to).unwrap().clone();
    assert_eq!(cell("guest/client-0", "shop/web-0")["ingress"], "deny");
    assert_eq!(cell("shop/web-0", "guest/client-0")["listening"], "false");
    // One namespace: its 30 pods, each pair; shop admits shop.
    let (text, rows) = reach(&["--namespace", "shop", "--port", "8080"]);
    assert!(text.contains("reachability 8080/TCP: 900 of 900 allowed"), "{text}");
    assert_eq!(rows.len(), 900);
    assert!(rows.iter().filter(|r| r["from"] != r["to"]).all(|r| r["ingress"] == "allow shop/web"));
    // Bad arguments are bad input.
    for bad in [&["--protocol", "ICMP"][..], &["--namespace", "nowhere"], &["--port", "0"]] {
        let mut a = vec!["reach", sc.to_str().unwrap()];
        a.extend_from_slice(bad);
        assert_eq!(emu(&a).status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn pods_created_during_a_rollout_are_selected_like_their_workload() {
    let text = r#"
[cluster]
nodes = 3
[[pods]]
name = "client"
labels = { role = "client" }
[[pods]]
name = "stranger"
[[pods]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [8080]
pre_stop = "5s"
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[network_policies]]
name = "web"
pod_selector = { match_labels = { app = "web" } }
[[network_policies.ingress]]
from = [{ pod_selector = { match_labels = { role = "client" } } }]
ports = [{ port = 8080 }]
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
rate = 200
duration = "60s"
[[flows]]
name = "other"
from = "stranger"
to = "http://web:80"
rate = 20
duration = "60s"
timeout = "4s"
[[changes]]
at = "5s"
rollout = "web"
"#;
    let (_t, out) = run_text(text, &[]);
    // The new pods admit the client as the old ones did: nothing fails.
    let (done, fails) = outcome(&out, "f");
    assert!(done > 11_000 && fails.is_empty(), "{done} {fails:?}");
    let steps = csv(&out.join("pods.csv"));
    assert!(steps.iter().any(|r| r["pod"] == "web-3" && r["step"] == "ready"), "the rollout made new pods");
    // A pod without the label is denied by the old pods and the new.
    let (done, fails) = outcome(&out, "other");
    assert_eq!(done, 0);
    assert!(fails.iter().any(|(r, n)| r == "policy_denied" && *n > 100), "{fails:?}");
    // The new pods served the client.
    let eps = csv(&out.join("endpoints.csv"));
    let new: u64 =
        eps.iter().filter(|r| r["endpoint_pod"] == "web-3").map(|r| r["requests"].parse::<u64>().unwrap()).sum();
    assert!(new > 1000, "web-3 served {new}");
}

#[test]
fn a_denied_ingress_upstream_fails_as_policy_denied_and_the_run_ends() {
    // The backends admit only `role = front` pods, not the controller.
    let text = |allow_controller: bool| {
        let from = if allow_controller {
            "{ namespace_selector = { match_labels = { \"kubernetes.io/metadata.name\" = \"ingress-nginx\" } } }"
        } else {
            "{ pod_selector = { match_labels = { role = \"front\" } } }"
        };
        format!(
            r#"
[cluster]
nodes = 2
[ingress_controller]
replicas = 1
[[pods]]
name = "web"
labels = {{ app = "web" }}
ports = [8080]
[[services]]
name = "web"
selector = {{ app = "web" }}
ports = [{{ port = 80, target_port = 8080 }}]
[[ingresses]]
name = "site"
rules = [{{ host = "site.example", paths = [{{ path = "/", service = "web", port = 80 }}] }}]
[[network_policies]]
name = "web"
pod_selector = {{ match_labels = {{ app = "web" }} }}
[[network_policies.ingress]]
from = [{from}]
[[flows]]
name = "f"
from = "external"
to = "http://site.example/"
concurrency = 1
requests = 5
timeout = "2s"
"#
        )
    };
    let (_t, out) = run_text(&text(false), &[]);
    assert_eq!(outcome(&out, "f"), (0, vec![("policy_denied".into(), 5)]), "every request ends, denied");
    let s = csv(&out.join("summary.csv"));
    assert_eq!(f(row(&s, "flow", "f"), "requests"), 5.0, "the closed loop went on after each denial");
    let (_t, out) = run_text(&text(true), &[]);
    assert_eq!(outcome(&out, "f"), (5, vec![]));
}

#[test]
fn dns_checks_are_inside_the_dns_hop_and_coredns_can_deny_the_cache() {
    // A costly rule walk: the DNS queries' checks must not be counted twice.
    let base = dns_case(&format!("{TO_WEB}{TO_KUBE_DNS}"), false);
    let (_t, out) = run_text(&format!("{base}\n[network_policy]\ndispatch = \"1ms\"\n"), &[]);
    let hops = csv(&out.join("hops.csv"));
    let h = hops.iter().find(|r| r["hop"] == "network_policy").unwrap();
    assert_eq!(f(h, "traversals"), 20.0, "egress and ingress of each of 10 SYNs; DNS checks are in `dns`");
    let per_request: f64 = hops.iter().filter(|r| r["flow"] == "f").map(|r| f(r, "per_request_us")).sum();
    let s = csv(&out.join("summary.csv"));
    let mean = f(row(&s, "flow", "f"), "latency_mean_us");
    assert!((per_request - mean).abs() < 0.02 * mean, "hops add up to the latency: {per_request} vs {mean}");
    // CoreDNS admitting only pods: the NodeLocal DNSCache forwards from its
    // node, which is no pod, and is denied unless CoreDNS runs there.
    let coredns = "\n[[network_policies]]\nname = \"coredns\"\nnamespace = \"kube-system\"\npod_selector = { match_labels = { k8s-app = \"kube-dns\" } }\n[[network_policies.ingress]]\nfrom = [{ namespace_selector = {} }]\n";
    let case = |node: &str| {
        dns_case(&format!("{TO_WEB}{TO_CACHE}"), true)
            .replace("node_local_cache = true", "node_local_cache = true\nreplicas = 1")
            .replace("[[pods]]\nname = \"client\"", &format!("[[pods]]\nname = \"client\"\nnode = \"{node}\""))
            + coredns
    };
    let (_t, out) = run_text(&case("node-0"), &[]);
    let eps = csv(&out.join("endpoints.csv"));
    let dns_node = eps.iter().find(|r| r["service"] == "kube-dns").unwrap()["node"].clone();
    let other = if dns_node == "node-0" { "node-1" } else { "node-0" };
    let (_t, out) = run_text(&case(&dns_node), &[]);
    assert_eq!(outcome(&out, "f"), (10, vec![]), "the cache on CoreDNS's node is its resident node");
    let (_t, out) = run_text(&case(other), &[]);
    assert_eq!(outcome(&out, "f"), (0, vec![("dns_policy_denied".to_string(), 10)]), "the cache on {other} is denied");
}

#[test]
fn manifests_policies_follow_the_api_server_on_defaults_and_refuse_what_it_refuses() {
    let sc = format!("manifests = [\"np.yaml\"]\n{APP}");
    let head = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n";
    // No spec, no podSelector, empty policyTypes: every pod, Ingress.
    for spec in [
        "",
        "spec: {}\n",
        "spec:\n  policyTypes: []\n",
        "spec:\n  ingress:\n  - from:\n    - ipBlock: {cidr: \"::/0\"}\n",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "np.yaml", &format!("{head}{spec}"));
        let s = write(tmp.path(), "s.toml", &sc);
        let out = tmp.path().join("out");
        let o = emu(&["reach", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{spec}: {}", stderr(&o));
        let rows = csv(&out.join("reach.csv"));
        assert!(rows.iter().all(|r| r["ingress"] == "open" || r["from"] == r["to"]), "{spec}");
        let p = emu_models_policy_types(&out);
        assert_eq!(p, "ingress", "{spec}");
        if spec.contains("::/0") {
            assert!(stderr(&o).contains("IPv6 ipBlock matches nothing"), "{}", stderr(&o));
        }
    }
    refused(
        &sc,
        &format!("{head}spec:\n  podSelector: {{}}\n  ingres: [{{}}]\n"),
        &["np.yaml:2:", "spec.ingres is not a NetworkPolicy field"],
    );
    refused(
        &sc,
        &head.replace("networking.k8s.io/v1", "projectcalico.org/v3"),
        &["np.yaml:2:", "apiVersion `projectcalico.org/v3`"],
    );
    refused(
        &sc,
        &format!("{head}spec:\n  policyTypes: [Ingress, Ingress]\n"),
        &["np.yaml:6:", "spec.policyTypes[1]: listed twice"],
    );
}

/// The `types` column of the only policy, from a run of the scenario the
/// reach output directory holds.
fn emu_models_policy_types(reach_out: &std::path::Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_ok(&reach_out.join("run.toml"), &out, &[]);
    csv(&out.join("policies.csv"))[0]["types"].clone()
}
