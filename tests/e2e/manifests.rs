//! Real applications' manifests: the workload kinds emu reads (StatefulSet,
//! DaemonSet, ReplicaSet, Job, CronJob, `kind: List`, native sidecars),
//! what it skips with one warning per kind, and the Kubernetes
//! documentation's own examples (tests/manifests/k8s-docs, source named in
//! its README), loaded as published.

use std::path::Path;

use crate::util::{emu, root, run_ok, stderr, write};

/// `emu validate` of `scenario`.
fn validate(scenario: &Path) -> std::process::Output {
    emu(&["validate", scenario.to_str().unwrap()])
}

/// The cluster of `scenario` (a file in `dir`), as `emu run` builds it.
fn cluster(scenario: &Path) -> emu_models::cluster::Cluster {
    let loaded = emu::scenario::load(scenario, None, None, 1).unwrap_or_else(|e| panic!("{e}"));
    loaded.points.into_iter().next().unwrap().prepared.cluster
}

fn pods<'a>(cl: &'a emu_models::cluster::Cluster, prefix: &str) -> Vec<(&'a str, String)> {
    cl.pods
        .iter()
        .filter(|p| p.name.starts_with(prefix))
        .map(|p| (p.name.as_str(), cl.nodes[p.node.index()].name.clone()))
        .collect()
}

#[test]
fn the_kubernetes_docs_statefulset_and_daemonset_load_as_published() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = root().join("tests/manifests/k8s-docs");
    let sc = write(
        tmp.path(),
        "s.toml",
        &format!(
            "manifests = [\"{0}/web.yaml\", \"{0}/daemonset.yaml\"]\n[cluster]\nnodes = 4\n\
             [[pods]]\nname = \"client\"\nnode = \"node-0\"\n\
             [[flows]]\nname = \"to-nginx\"\nfrom = \"client\"\nto = \"http://nginx:80\"\nconcurrency = 1\nrequests = 200\n",
            docs.display()
        ),
    );
    let cl = cluster(&sc);
    // The StatefulSet's two pods by their stable names, behind the
    // headless Service `nginx`.
    let web = pods(&cl, "web-");
    assert_eq!(web.iter().map(|p| p.0).collect::<Vec<_>>(), ["web-0", "web-1"]);
    // The DaemonSet: one pod on every node, in kube-system.
    let ds = pods(&cl, "fluentd-elasticsearch");
    assert_eq!(ds.len(), 4);
    let mut nodes: Vec<&str> = ds.iter().map(|p| p.1.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["node-0", "node-1", "node-2", "node-3"]);
    // Requests to the headless Service reach both StatefulSet pods.
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let eps = std::fs::read_to_string(out.join("endpoints.csv")).unwrap();
    for pod in ["web-0", "web-1"] {
        let row = eps.lines().find(|l| l.contains(",nginx,") && l.contains(&format!(",{pod},"))).unwrap();
        let requests: u64 = row.split(',').nth(7).unwrap().parse().unwrap();
        assert!(requests > 50, "{row}");
    }
    // What the examples carry and emu does not model is said, not refused.
    let o = validate(&sc);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn other_kinds_are_skipped_once_per_kind_and_lists_jobs_and_sidecars_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("app.yaml"),
        r#"apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata: {name: api}
  spec:
    replicas: 3
    selector: {matchLabels: {app: api}}
    template:
      metadata: {labels: {app: api}}
      spec:
        initContainers:
        - name: proxy
          restartPolicy: Always
          ports: [{containerPort: 15001, name: mesh}]
        - name: migrate
          ports: [{containerPort: 9999}]
        containers:
        - name: api
          ports: [{containerPort: 8080}]
- apiVersion: v1
  kind: Service
  metadata: {name: api}
  spec:
    selector: {app: api}
    ports: [{port: 80, targetPort: mesh}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: load}
spec:
  parallelism: 2
  template:
    metadata: {labels: {role: load}}
    spec:
      containers: [{name: curl}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {role: nightly}}
        spec:
          containers: [{name: c}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: b}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
"#,
    )
    .unwrap();
    let sc = write(
        tmp.path(),
        "s.toml",
        "manifests = [\"app.yaml\"]\n[cluster]\nnodes = 2\n\
         [[flows]]\nname = \"load\"\nfrom = { selector = { role = \"load\" } }\nto = \"http://api:80\"\nconcurrency = 2\nrequests = 300\n",
    );
    let o = validate(&sc);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    // One warning per skipped kind, with its count.
    assert_eq!(err.matches("kind Role: 2 objects").count(), 1, "{err}");
    assert_eq!(err.matches("kind PodDisruptionBudget: 1 object").count(), 1, "{err}");
    assert_eq!(err.matches("kind Widget: 1 object").count(), 1, "{err}");
    assert!(err.contains("schedule `0 3 * * *` is not modelled"), "{err}");
    let cl = cluster(&sc);
    assert_eq!(pods(&cl, "api-").len(), 3);
    assert_eq!(pods(&cl, "load-").len(), 2);
    assert_eq!(pods(&cl, "nightly").len(), 1);
    // The native sidecar's port serves the Service; the finished init
    // container's does not exist.
    let api = cl.pods.iter().find(|p| p.name == "api-0").unwrap();
    let tcp = emu_models::cluster::Protocol::Tcp;
    assert!(api.listens_on(15001, tcp).is_some() && api.listens_on(8080, tcp).is_some());
    assert!(api.listens_on(9999, tcp).is_none());
    assert_eq!(api.containers[..], ["api", "proxy"]);
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let eps = std::fs::read_to_string(out.join("endpoints.csv")).unwrap();
    let api_rows: Vec<&str> = eps.lines().filter(|l| l.contains(",api,")).collect();
    assert_eq!(api_rows.len(), 3, "{eps}");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.contains("load,300,300,0,"), "the Job's pods are the flow's clients: {summary}");
}

#[test]
fn a_daemonset_cannot_be_pinned_and_a_list_item_error_names_its_item() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("l.yaml"),
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: ok}\n  spec: {containers: [{name: a}]}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: bad}\n",
    )
    .unwrap();
    let sc = write(tmp.path(), "s.toml", "manifests = [\"l.yaml\"]\n[cluster]\nnodes = 2\n");
    let o = validate(&sc);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("document 1 item 1 (Pod bad): spec is required"), "{}", stderr(&o));
    std::fs::write(
        tmp.path().join("l.yaml"),
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      nodeName: node-1\n      containers: [{name: a}]\n",
    )
    .unwrap();
    let o = validate(&sc);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot be pinned"), "{}", stderr(&o));
}

#[test]
fn an_ingress_backend_by_port_name_the_legacy_class_annotation_and_names_in_capitals() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("ing.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: shop\n  annotations:\n    kubernetes.io/ingress.class: traefik\nspec:\n  rules:\n    - host: shop.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: web\n                port:\n                  name: http\n",
    )
    .unwrap();
    let text = r#"
manifests = ["ing.yaml"]
[cluster]
nodes = 2
[[pods]]
name = "client"
[[pods]]
name = "web"
labels = { app = "web" }
ports = [8080, 9090]
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ name = "metrics", port = 9090 }, { name = "http", port = 80, target_port = 8080 }]
[[flows]]
name = "shop"
from = "external"
to = "http://shop.example.com/"
requests = 30
[[flows]]
name = "capitals"
from = "client"
to = "http://WEB.Default:80/"
requests = 10
"#;
    let sc = write(tmp.path(), "s.toml", text);
    let o = validate(&sc);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("the kubernetes.io/ingress.class annotation `traefik`"), "{}", stderr(&o));
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let s = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(s.contains("\nshop,30,30,0,"), "{s}");
    assert!(s.contains("\ncapitals,10,10,0,"), "{s}");
    // The named port is the Service's 80, whose endpoints are on 8080.
    let eps = std::fs::read_to_string(out.join("endpoints.csv")).unwrap();
    let http = eps.lines().find(|l| l.contains(",web,80/TCP,")).unwrap();
    assert!(http.ends_with(",40,1.000000"), "{http}");
    // A name no Service port has is an error naming it.
    std::fs::write(
        tmp.path().join("ing.yaml"),
        std::fs::read_to_string(tmp.path().join("ing.yaml")).unwrap().replace("name: http", "name: htp"),
    )
    .unwrap();
    let o = validate(&sc);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Service `web` has no TCP port `htp`"), "{}", stderr(&o));
}

#[test]
fn a_node_port_by_its_services_name_and_an_unknown_one_lists_those_that_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = root().join("workloads/seed/myweb.yaml");
    let text = format!(
        "manifests = [\"{}\"]\n[cluster]\nnodes = 3\n[[pods]]\nname = \"web\"\nreplicas = 2\nlabels = {{ app = \"web\" }}\nports = [8080]\n\
         [[flows]]\nname = \"by-name\"\nfrom = \"external\"\nto = \"http://<NodePort:default/myweb>/\"\nrequests = 25\n\
         [[flows]]\nname = \"inside\"\nfrom = \"external\"\nto = \"<NodePort:default/myweb:80>\"\nrequests = 25\n",
        seed.display()
    );
    let sc = write(tmp.path(), "s.toml", &text);
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let s = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(s.contains("\nby-name,25,25,0,") && s.contains("\ninside,25,25,0,"), "{s}");
    let bad = write(tmp.path(), "b.toml", &text.replace("http://<NodePort:default/myweb>/", "<NodeIP>:30008"));
    let o = validate(&bad);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no Service owns node port 30008 (node ports: 30007 (default/myweb:80)"),
        "{}",
        stderr(&o)
    );
    let bad = write(tmp.path(), "c.toml", &text.replace("<NodePort:default/myweb>", "<NodePort:default/myweb:81>"));
    let o = validate(&bad);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Service `default/myweb` has no TCP port 81"), "{}", stderr(&o));
}

#[test]
fn a_statefulset_pod_is_reachable_by_its_own_name_under_its_headless_service() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = root().join("tests/manifests/k8s-docs");
    let sc = write(
        tmp.path(),
        "s.toml",
        &format!(
            "manifests = [\"{}/web.yaml\"]\n[cluster]\nnodes = 3\n[[pods]]\nname = \"client\"\nnode = \"node-0\"\n\
             [[flows]]\nname = \"short\"\nfrom = \"client\"\nto = \"http://web-1.nginx:80\"\nconcurrency = 1\nrequests = 40\n\
             [[flows]]\nname = \"full\"\nfrom = \"client\"\nto = \"http://web-0.nginx.default.svc.cluster.local:80\"\nconcurrency = 1\nrequests = 30\n",
            docs.display()
        ),
    );
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let s = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(s.contains("\nshort,40,40,0,") && s.contains("\nfull,30,30,0,"), "{s}");
    // Each name reaches its own pod, counted under the headless Service.
    let eps = std::fs::read_to_string(out.join("endpoints.csv")).unwrap();
    let requests = |pod: &str| -> u64 {
        let row = eps.lines().find(|l| l.contains(",nginx,") && l.contains(&format!(",{pod},"))).unwrap();
        row.split(',').nth(7).unwrap().parse().unwrap()
    };
    assert_eq!((requests("web-0"), requests("web-1")), (30, 40));
    // The trace shows the pod's own address as the answer.
    let o = emu(&["trace", sc.to_str().unwrap(), "--flow", "short"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("answer web-1.nginx.default.svc.cluster.local. A 10.244.")
            && text.contains("(the pod's own name)"),
        "{text}"
    );
    // A name the Service does not publish is NXDOMAIN, an error for a flow.
    let bad = write(tmp.path(), "b.toml", &std::fs::read_to_string(&sc).unwrap().replace("web-1.nginx", "web-7.nginx"));
    let o = validate(&bad);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_service_without_selector_gets_the_endpoints_written_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("m.yaml"),
        r#"apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  ports: [{name: sql, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: sql, port: 5433, protocol: TCP}]
endpoints:
- addresses: ["10.1.2.3"]
  targetRef: {kind: Pod, name: pg-0}
- addresses: ["192.0.2.10"]
---
apiVersion: v1
kind: Service
metadata: {name: legacy}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: legacy}
subsets:
- addresses: [{ip: 10.9.9.9, targetRef: {kind: Pod, name: pg-1}}]
  ports: [{port: 5433}]
"#,
    )
    .unwrap();
    let text = "manifests = [\"m.yaml\"]\n[cluster]\nnodes = 2\n[[pods]]\nname = \"client\"\n\
                [[pods]]\nname = \"pg\"\nreplicas = 2\nports = [5433]\n\
                [[flows]]\nname = \"db\"\nfrom = \"client\"\nto = \"db:5432\"\nconcurrency = 1\nrequests = 20\n\
                [[flows]]\nname = \"legacy\"\nfrom = \"client\"\nto = \"legacy:80\"\nconcurrency = 1\nrequests = 10\n";
    let sc = write(tmp.path(), "s.toml", text);
    let o = validate(&sc);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("endpoint 192.0.2.10: an address without a Pod targetRef"), "{}", stderr(&o));
    let out = tmp.path().join("out");
    run_ok(&sc, &out, &[]);
    let s = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(s.contains("\ndb,20,20,0,") && s.contains("\nlegacy,10,10,0,"), "{s}");
    let eps = std::fs::read_to_string(out.join("endpoints.csv")).unwrap();
    assert!(
        eps.lines()
            .any(|l| l.starts_with("default,db,5432/TCP,pg-0,") && l.contains(",5433,") && l.ends_with(",20,1.000000")),
        "{eps}"
    );
    assert!(eps.lines().any(|l| l.starts_with("default,legacy,80/TCP,pg-1,") && l.ends_with(",10,1.000000")), "{eps}");
    // Endpoints naming a pod that does not exist are an error.
    std::fs::write(
        tmp.path().join("m.yaml"),
        std::fs::read_to_string(tmp.path().join("m.yaml")).unwrap().replace("name: pg-1", "name: pg-9"),
    )
    .unwrap();
    let o = validate(&sc);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no pod `pg-9` in namespace `default` for Service `legacy`"), "{}", stderr(&o));
}
