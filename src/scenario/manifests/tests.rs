//! The manifest reader's unit tests.

use super::*;

/// `super::load` of `text` whose documents get an `apiVersion` line at
/// their end when they have none (the tests' line numbers stay put).
fn load(file: &str, text: &str) -> Result<Loaded, String> {
    let docs: Vec<String> = text
        .split("\n---\n")
        .map(|d| if d.contains("apiVersion:") { d.to_string() } else { format!("{}\napiVersion: v1\n", d.trim_end()) })
        .collect();
    super::load(file, &docs.join("\n---\n"))
}
use emu_models::dynamics::{IntOrPercent, Lifecycle, Probe};

#[test]
fn reads_pods_services_and_deployments() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: mypod\nspec:\n  containers:\n    - name: app\n      image: nginx\n      ports:\n        - containerPort: 80\n    - name: sidecar\n      image: busybox\n      command: ['sh', '-c', 'curl http://localhost:80']\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: myweb\nspec:\n  type: NodePort\n  selector:\n    app: web\n  ports:\n    - port: 80\n      targetPort: 8080\n      nodePort: 30007\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          ports: [{containerPort: 8080, name: http}]\n";
    let l = load("m.yaml", text).unwrap();
    assert_eq!(l.pods.len(), 2);
    assert_eq!(l.pods[0].containers.len(), 2);
    assert_eq!(l.pods[0].containers[0].ports[0].port, 80);
    assert_eq!(l.pods[1].replicas, 3);
    assert_eq!(l.services[0].ports[0].node_port, Some(30007));
    assert_eq!(l.services[0].origin.line, 16);
}

#[test]
fn rejects_what_it_does_not_model() {
    let e = load("m.yaml", "kind: CronJob\nmetadata: {name: x}\n").err().unwrap();
    assert!(e.starts_with("m.yaml:1: document 1 (CronJob x)"), "{e}");
    let e = load("m.yaml", "kind: Service\nmetadata: {name: x}\nspec:\n  type: ExternalName\n  ports: [{port: 80}]\n")
        .err()
        .unwrap();
    assert!(e.contains("spec.externalName is required"), "{e}");
    let e = load("m.yaml", "kind: Service\nmetadata: {name: x}\nspec:\n  externalName: a.b\n  ports: [{port: 80}]\n")
        .err()
        .unwrap();
    assert!(e.contains("needs spec.type ExternalName"), "{e}");
    let l = load("m.yaml", "kind: Service\nmetadata: {name: x}\nspec:\n  type: ExternalName\n  externalName: db.example.com\n  ports: [{port: 5432}]\n")
        .unwrap();
    assert_eq!(l.services[0].external_name.as_deref(), Some("db.example.com"));
    assert!(l.services[0].ports.is_empty() && l.services[0].selector.is_none());
    let e = load(
        "m.yaml",
        "kind: Service\nmetadata: {name: x}\nspec:\n  sessionAffinty: ClientIP\n  ports: [{port: 80}]\n",
    )
    .err()
    .unwrap();
    assert!(e.contains("spec.sessionAffinty is not a Service field"), "{e}");
    let e = load(
        "m.yaml",
        "kind: Service\nmetadata: {name: x}\nspec:\n  loadBalancerSourceRanges: [10.0.0.0/8]\n  ports: [{port: 80}]\n",
    )
    .err()
    .unwrap();
    assert!(e.contains("loadBalancerSourceRanges"), "{e}");
    let ok = load(
        "m.yaml",
        "kind: Service\nmetadata: {name: x}\nspec:\n  clusterIP: None\n  type: ClusterIP\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n  internalTrafficPolicy: Local\n  ports: [{port: 80}]\n",
    )
    .unwrap();
    let s = &ok.services[0];
    assert!(s.headless);
    assert_eq!(s.affinity_timeout_s, Some(60));
    // hostNetwork pods: ClusterFirst falls back to the node's resolver.
    let pod =
        |extra: &str| load("m.yaml", &format!("kind: Pod\nmetadata: {{name: x}}\nspec:\n{extra}  containers: []\n"));
    let p = &pod("  hostNetwork: true\n").unwrap().pods[0];
    assert!(p.host_network && !p.cluster_dns);
    let p = &pod("  hostNetwork: true\n  dnsPolicy: ClusterFirstWithHostNet\n").unwrap().pods[0];
    assert!(p.host_network && p.cluster_dns);
    let p = &pod("  dnsPolicy: Default\n").unwrap().pods[0];
    assert!(!p.host_network && !p.cluster_dns);
    // hostPort: said on a pod (no portmap DNAT), checked on a hostNetwork one.
    let port = |host: &str, hp: u32| {
        load("m.yaml", &format!("kind: Pod\nmetadata: {{name: x}}\nspec:\n{host}  containers:\n    - name: a\n      ports: [{{containerPort: 80, hostPort: {hp}}}]\n"))
    };
    let l = port("", 8080).unwrap();
    assert_eq!(l.pods[0].containers[0].ports[0].port, 80);
    assert!(l.warnings.iter().any(|w| w.contains("hostPort 8080") && w.contains("portmap")), "{:?}", l.warnings);
    let l = port("  hostNetwork: true\n", 80).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let e = port("  hostNetwork: true\n", 8080).err().unwrap();
    assert!(e.contains("must equal containerPort 80"), "{e}");
    let e = pod("  dnsPolicy: None\n").err().unwrap();
    assert!(e.contains("spec.dnsPolicy") && e.contains("dnsConfig"), "{e}");
    let e = load("m.yaml", "kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n    - name: a\n      ports:\n        - containerPort: [1]\n").err().unwrap();
    assert!(e.starts_with("m.yaml:7:"), "{e}");
}

/// A Deployment `web` whose spec has `spec` (indented 2) and whose
/// template spec has `pod` (indented 6) before its containers.
fn deployment(spec: &str, pod: &str, container: &str) -> String {
    format!(
        "kind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 4\n  selector: {{matchLabels: {{app: web}}}}\n{spec}  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n{pod}      containers:\n        - name: side\n        - name: app\n{container}"
    )
}

fn lc(text: &str) -> (Lifecycle, Vec<String>) {
    let l = load("m.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    (l.pods[0].lifecycle.clone(), l.warnings)
}

#[test]
fn reads_the_rolling_update_strategy() {
    let (l, w) = lc(&deployment(
        "  minReadySeconds: 7\n  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 2, maxUnavailable: 10%}\n",
        "",
        "",
    ));
    assert_eq!(l.max_surge, IntOrPercent::Int(2));
    assert_eq!(l.max_unavailable, IntOrPercent::Percent(10));
    assert_eq!(l.min_ready_ns, 7_000_000_000);
    assert!(w.is_empty(), "{w:?}");
    // Absent: Kubernetes' defaults, 25% and 25%, no minReadySeconds.
    let (l, _) = lc(&deployment("", "", ""));
    assert_eq!(l, Lifecycle::default());
    let (l, _) = lc(&deployment("  strategy: {rollingUpdate: {maxSurge: 0%}}\n", "", ""));
    assert_eq!((l.max_surge, l.max_unavailable), (IntOrPercent::Percent(0), IntOrPercent::Percent(25)));
}

#[test]
fn recreate_is_no_surge_and_all_unavailable() {
    let (l, w) = lc(&deployment("  strategy: {type: Recreate}\n", "", ""));
    assert_eq!(l.max_surge, IntOrPercent::Int(0));
    assert_eq!(l.max_unavailable, IntOrPercent::Percent(100));
    assert!(w.is_empty(), "{w:?}");
    let e = load("m.yaml", &deployment("  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n", "", ""))
        .err()
        .unwrap();
    assert!(e.starts_with("m.yaml:6: document 1 (Deployment web): spec.strategy.rollingUpdate: not allowed"), "{e}");
    let e = load("m.yaml", &deployment("  strategy: {type: BlueGreen}\n", "", "")).err().unwrap();
    assert!(e.contains("spec.strategy.type `BlueGreen` is not RollingUpdate or Recreate"), "{e}");
}

#[test]
fn rejects_bad_strategy_values_with_line_and_field() {
    let cases = [
        ("  strategy:\n    rollingUpdate:\n      maxSurge: 150%\n", "m.yaml:8: document 1 (Deployment web): spec.strategy.rollingUpdate.maxSurge: `150%` is not a count"),
        ("  strategy:\n    rollingUpdate:\n      maxUnavailable: -1\n", "m.yaml:8: document 1 (Deployment web): spec.strategy.rollingUpdate.maxUnavailable: `-1` is not a count"),
        ("  strategy:\n    rollingUpdate:\n      maxUnavailable: ten\n", "spec.strategy.rollingUpdate.maxUnavailable: `ten` is not a count"),
        ("  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: 0%}\n", "m.yaml:7: document 1 (Deployment web): spec.strategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0"),
        ("  minReadySeconds: -3\n", "m.yaml:6: document 1 (Deployment web): spec.minReadySeconds: -3 is not a number of seconds"),
    ];
    for (spec, want) in cases {
        let e = load("m.yaml", &deployment(spec, "", "")).err().unwrap_or_else(|| panic!("{spec} loaded"));
        assert!(e.starts_with(want) || e.contains(want), "{spec}: {e}");
    }
}

#[test]
fn reads_the_grace_period_and_the_first_readiness_probe() {
    for handler in [
        "httpGet: {path: /healthz, port: 8080}",
        "tcpSocket: {port: 8080}",
        "exec: {command: [cat, /ready]}",
        "grpc: {port: 9090}",
    ] {
        let (l, w) = lc(&deployment(
            "",
            "      terminationGracePeriodSeconds: 45\n",
            &format!("          readinessProbe:\n            {handler}\n            initialDelaySeconds: 2\n            periodSeconds: 3\n            successThreshold: 2\n            failureThreshold: 4\n"),
        ));
        assert_eq!(l.grace_ns, 45_000_000_000);
        assert_eq!(
            l.readiness,
            Some(Probe {
                initial_delay_ns: 2_000_000_000,
                period_ns: 3_000_000_000,
                success_threshold: 2,
                failure_threshold: 4
            }),
            "{handler}"
        );
        assert!(w.is_empty(), "{w:?}");
    }
    // Unset or 0 fields take Kubernetes' defaults (10 s, 1, 3).
    let (l, _) = lc(&deployment("", "", "          readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 0}\n"));
    assert_eq!(l.readiness, Some(Probe::default()));
    // A Pod reads the same fields.
    let (l, _) = lc("kind: Pod\nmetadata: {name: p}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n    - name: a\n      readinessProbe: {exec: {command: [true]}, periodSeconds: 1}\n");
    assert_eq!(l.grace_ns, 0);
    assert_eq!(l.readiness.unwrap().period_ns, 1_000_000_000);
}

#[test]
fn rejects_bad_probe_and_grace_values() {
    let e = load("m.yaml", &deployment("", "      terminationGracePeriodSeconds: -1\n", "")).err().unwrap();
    assert!(e.starts_with("m.yaml:9: document 1 (Deployment web): spec.template.spec.terminationGracePeriodSeconds: -1 is not a number of seconds"), "{e}");
    for (field, line) in
        [("initialDelaySeconds", 14), ("periodSeconds", 14), ("successThreshold", 14), ("failureThreshold", 14)]
    {
        let e = load(
            "m.yaml",
            &deployment(
                "",
                "",
                &format!("          readinessProbe:\n            httpGet: {{port: 80}}\n            {field}: -2\n"),
            ),
        )
        .err()
        .unwrap();
        let want = format!(
            "m.yaml:{line}: document 1 (Deployment web): spec.template.spec.containers[1].readinessProbe.{field}: -2"
        );
        assert!(e.starts_with(&want), "{field}: {e}");
    }
    let e = load("m.yaml", "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: a\n      lifecycle: {preStop: {sleep: {seconds: -5}}}\n").err().unwrap();
    assert!(
        e.starts_with("m.yaml:6: document 1 (Pod p): spec.containers[0].lifecycle.preStop.sleep.seconds: -5"),
        "{e}"
    );
}

#[test]
fn reads_a_sleeping_pre_stop_hook() {
    let hooks: [(&str, u64); 6] = [
        ("exec: {command: [sleep, '5']}", 5_000_000_000),
        ("exec: {command: [/bin/sh, -c, sleep 5]}", 5_000_000_000),
        ("exec: {command: [sh, -c, 'sleep 15']}", 15_000_000_000),
        ("exec: {command: [sh, -c, 'sleep 0.5']}", 500_000_000),
        ("exec: {command: [sleep, 2s]}", 2_000_000_000),
        ("sleep: {seconds: 10}", 10_000_000_000),
    ];
    for (hook, ns) in hooks {
        let (l, w) =
            lc(&deployment("", "", &format!("          lifecycle:\n            preStop:\n              {hook}\n")));
        assert_eq!(l.pre_stop_ns, ns, "{hook}");
        assert!(w.is_empty(), "{hook}: {w:?}");
    }
}

#[test]
fn warns_about_a_pre_stop_hook_that_is_not_a_sleep() {
    for hook in [
        "exec: {command: [nginx, -s, quit]}",
        "exec: {command: [sh, -c, 'sleep 5 && nginx -s quit']}",
        "httpGet: {path: /drain, port: 8080}",
    ] {
        let (l, w) =
            lc(&deployment("", "", &format!("          lifecycle:\n            preStop:\n              {hook}\n")));
        assert_eq!(l.pre_stop_ns, 0, "{hook}");
        assert_eq!(w.len(), 1, "{hook}: {w:?}");
        assert!(
            w[0].starts_with("m.yaml:14: document 1 (Deployment web): spec.template.spec.containers[1].lifecycle.preStop: only a sleep"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("emu models this hook as no delay"), "{}", w[0]);
    }
}
