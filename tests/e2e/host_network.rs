//! Pods in their node's network namespace (`hostNetwork`), their resolver
//! (`dnsPolicy`), and what every cluster has: the `kubernetes` Service with
//! the API server behind it, kube-dns's metrics port.

use crate::util::*;

/// A node-exporter DaemonSet in the host network behind a Service, a
/// hostNetwork agent with cluster DNS, and a web Deployment in pods.
const MANIFESTS: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter, namespace: monitoring}
spec:
  selector: {matchLabels: {app: node-exporter}}
  template:
    metadata: {labels: {app: node-exporter}}
    spec:
      hostNetwork: true
      containers:
      - name: node-exporter
        ports: [{name: metrics, containerPort: 9100}]
---
apiVersion: v1
kind: Service
metadata: {name: node-exporter, namespace: monitoring}
spec:
  selector: {app: node-exporter}
  ports: [{name: metrics, port: 9100, targetPort: metrics}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: agent, namespace: monitoring}
spec:
  replicas: 1
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      dnsPolicy: DNS_POLICY
      nodeName: node-1
      containers: [{name: agent}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: monitoring}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeName: node-2
      containers: [{name: web, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: monitoring}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"#;

const SCENARIO: &str = r#"manifests = ["m.yaml"]
[cluster]
nodes = 3
[[pods]]
name = "client"
namespace = "monitoring"
node = "node-0"
[[flows]]
name = "scrape"
from = { namespace = "monitoring", pod = "client" }
to = "node-exporter:9100"
concurrency = 1
requests = 300
[[flows]]
name = "agent-to-web"
from = { namespace = "monitoring", pod = "agent" }
to = "web:80"
concurrency = 1
requests = 100
[[flows]]
name = "api"
from = { namespace = "monitoring", pod = "client" }
to = "kubernetes.default:443"
concurrency = 1
requests = 50
"#;

/// The scenario in a temporary directory, with `policy` as the agent's
/// dnsPolicy and `extra` appended.
fn setup(policy: &str, extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "m.yaml", &MANIFESTS.replace("DNS_POLICY", policy));
    let sc = write(tmp.path(), "s.toml", &format!("{SCENARIO}{extra}"));
    (tmp, sc)
}

fn trace(sc: &std::path::Path, flow: &str) -> String {
    let o = emu(&["trace", sc.to_str().unwrap(), "--flow", flow]);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The trace lines of the first message sent after the line containing
/// `marker`, up to the next send.
fn message_after<'a>(t: &'a str, marker: &str) -> Vec<&'a str> {
    t.lines().skip_while(|l| !l.contains(marker)).skip(1).take_while(|l| !l.contains("> send")).collect()
}

#[test]
fn host_network_pods_take_their_node_s_address_and_its_stack() {
    let (tmp, sc) = setup("ClusterFirstWithHostNet", "");
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let s = csv(&out.join("summary.csv"));
    for flow in ["scrape", "agent-to-web", "api"] {
        let r = row(&s, "flow", flow);
        assert_eq!(r["completed"], r["requests"], "{flow}: {r:?}");
    }
    // One exporter per node, each at its node's eth0 address.
    let eps = csv(&out.join("endpoints.csv"));
    let exporters: Vec<_> = eps.iter().filter(|r| r["service"] == "node-exporter").collect();
    assert_eq!(exporters.len(), 3);
    for r in &exporters {
        let i: u32 = r["node"].strip_prefix("node-").unwrap().parse().unwrap();
        assert_eq!(r["endpoint_ip"], format!("192.168.0.{}", i + 1), "{r:?}");
        assert!(r["requests"].parse::<u64>().unwrap() > 60, "{r:?}");
    }
    // The SYN to an exporter ends in its node's stack: no bridge, no veth
    // after the DNAT to a node address; its socket is the exporter's.
    let t = trace(&sc, "scrape");
    let syn = message_after(&t, "SYN 10.244.0.2:");
    let dnat = syn.iter().position(|l| l.contains("dnat")).expect("the DNAT");
    assert!(syn[dnat].contains("> 192.168.0."), "{}", syn[dnat]);
    // From the DNAT's node out (a remote exporter) or straight in (the
    // local one): the receiving stack has no bridge and no veth.
    let arrival = syn.iter().rposition(|l| l.contains(" underlay ")).unwrap_or(dnat);
    assert!(!syn[arrival..].iter().any(|l| l.contains(" veth ") || l.contains(" bridge ")), "{t}");
    assert!(syn.last().unwrap().contains("socket (monitoring/node-exporter-"), "{t}");
    // The agent's packets leave its node's stack from the node's address,
    // without a veth.
    let t = trace(&sc, "agent-to-web");
    let query = t.lines().find(|l| l.contains("> send") && l.contains("DNS query")).unwrap();
    assert!(query.contains("DNS query 192.168.0.2:"), "{query}");
    let first = message_after(&t, "DNS query 192.168.0.2");
    assert!(first[0].contains(" socket ") && first[1].contains(" cpu "), "{}", first[..2].join("\n"));
    // `ip -brief address` lists an interface for the pods only.
    let o = emu(&["rules", sc.to_str().unwrap(), "--node", "node-1", "--links"]);
    let links = String::from_utf8(o.stdout).unwrap();
    let cl = {
        let loaded = emu::scenario::load(&sc, None, None, 1).unwrap_or_else(|e| panic!("{e}"));
        loaded.points.into_iter().next().unwrap().prepared.cluster
    };
    let on1 = |host: bool| cl.pods.iter().filter(|p| p.node.index() == 1 && p.host_network == host).count();
    assert!(on1(true) >= 2, "the exporter and the agent on node-1");
    assert_eq!(links.matches("veth").count(), on1(false), "{links}");
}

#[test]
fn a_host_network_pod_with_cluster_first_has_no_cluster_dns() {
    let (_tmp, sc) = setup("ClusterFirst", "");
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("flows[1].from") && e.contains("ClusterFirstWithHostNet"), "{e}");
}

#[test]
fn two_host_network_pods_on_one_node_cannot_bind_one_port() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(
        tmp.path(),
        "s.toml",
        "[[pods]]\nname = \"exporter\"\nreplicas = 2\nhost_network = true\nports = [9100]\n\
         [[flows]]\nname = \"f\"\nfrom = \"exporter\"\nto = \"localhost:9100\"\nrequests = 1\n",
    );
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("pods[0].host_network") && e.contains("both bind 9100/TCP"), "{e}");
    // On two nodes they fit.
    std::fs::write(&sc, format!("[cluster]\nnodes = 2\n{}", std::fs::read_to_string(&sc).unwrap())).unwrap();
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn network_policies_neither_isolate_nor_select_host_network_pods() {
    let deny = "[[network_policies]]\nname = \"deny-all\"\nnamespace = \"monitoring\"\npod_selector = {}\npolicy_types = [\"Ingress\"]\n\
                [[flows]]\nname = \"to-web\"\nfrom = { namespace = \"monitoring\", pod = \"client\" }\nto = \"web:80\"\nconcurrency = 1\nrequests = 10\ntimeout = \"2s\"\n";
    let (tmp, sc) = setup("ClusterFirstWithHostNet", deny);
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let s = csv(&out.join("summary.csv"));
    let completed = |flow: &str| f(row(&s, "flow", flow), "completed");
    assert_eq!(completed("scrape"), 300.0, "the exporters are not isolated");
    assert_eq!(completed("to-web"), 0.0, "the pod is");
    let p = csv(&out.join("policies.csv"));
    let deny = row(&p, "policy", "deny-all");
    // client, web: the agent and the exporters are not selected.
    assert_eq!(deny["pods_selected"], "2", "{deny:?}");
}

#[test]
fn every_cluster_has_the_kubernetes_service_and_kube_dns_metrics() {
    let (tmp, sc) = setup("ClusterFirstWithHostNet", "");
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let svc = csv(&out.join("services.csv"));
    let k = row(&svc, "service", "kubernetes");
    assert_eq!((k["namespace"].as_str(), k["cluster_ip"].as_str()), ("default", "10.96.0.1"));
    assert_eq!(k["ports"], "https:443/TCP->6443");
    assert!(row(&svc, "service", "kube-dns")["ports"].contains("metrics:9153/TCP"));
    let eps = csv(&out.join("endpoints.csv"));
    let api = row(&eps, "service", "kubernetes");
    assert_eq!(
        (api["endpoint_pod"].as_str(), api["endpoint_ip"].as_str(), api["endpoint_port"].as_str()),
        ("kube-apiserver-node-0", "192.168.0.1", "6443")
    );
    assert_eq!(api["requests"], "50");
    // kube-proxy's chain for it carries the name every cluster has.
    let o = emu(&["rules", sc.to_str().unwrap(), "--node", "node-2"]);
    let rules = String::from_utf8(o.stdout).unwrap();
    assert!(
        rules.contains("-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment \"default/kubernetes:https cluster IP\" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y"),
        "{rules}"
    );
    assert!(rules.contains("-j DNAT --to-destination 192.168.0.1:6443"), "{rules}");
    // Without it: no Service, and the name is an error.
    std::fs::write(
        &sc,
        std::fs::read_to_string(&sc).unwrap().replace("nodes = 3", "nodes = 3\nkubernetes_service = false"),
    )
    .unwrap();
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`kubernetes.default` resolves to no Service"), "{}", stderr(&o));
}

#[test]
fn a_rolling_host_network_deployment_surges_onto_a_free_node() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(
        tmp.path(),
        "s.toml",
        r#"[cluster]
nodes = 3
[[pods]]
name = "client"
node = "node-0"
[[pods]]
name = "exporter"
replicas = 2
host_network = true
labels = { app = "exporter" }
ports = [9100]
max_surge = 1
max_unavailable = 0
[[services]]
name = "exporter"
selector = { app = "exporter" }
ports = [{ port = 9100 }]
[[flows]]
name = "scrape"
from = "client"
to = "exporter:9100"
rate = 200
duration = "20s"
[[changes]]
at = "2s"
rollout = "exporter"
"#,
    );
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let pods = csv(&out.join("pods.csv"));
    let started: Vec<_> = pods.iter().filter(|r| r["pod"].starts_with("exporter-") && r["step"] == "started").collect();
    assert!(started.len() >= 2, "{started:?}");
    // Each new pod has its node's address; the first surge pod goes to
    // node-2, the only node without an exporter.
    for r in &started {
        let i: u32 = r["node"].strip_prefix("node-").unwrap().parse().unwrap();
        assert_eq!(r["pod_ip"], format!("192.168.0.{}", i + 1), "{r:?}");
    }
    assert_eq!(started[0]["node"], "node-2", "{started:?}");
    // At no time do two running exporters share a node.
    let mut on: std::collections::BTreeMap<String, String> = Default::default();
    for r in pods.iter().filter(|r| r["pod"].starts_with("exporter")) {
        match r["step"].as_str() {
            "started" => {
                assert!(!on.values().any(|n| *n == r["node"]), "two exporters on {}: {pods:?}", r["node"]);
                on.insert(r["pod"].clone(), r["node"].clone());
            }
            "gone" => {
                on.remove(&r["pod"]);
            }
            _ => {}
        }
    }
}
