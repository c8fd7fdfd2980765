//! The upstream Kubernetes NetworkPolicy e2e tests (test/e2e/network/netpol:
//! namespaces x, y, z with pods a, b, c), reproduced by `emu reach`: every
//! case of tests/netpol/cases (policies as YAML, the truth tables upstream
//! expects) must print exactly the expected table.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{emu, root, stderr};

/// A YAML document's (kind, namespace, name), read from its first lines.
fn identity(doc: &str) -> (String, String, String) {
    let (mut kind, mut ns, mut name) = (String::new(), "default".to_string(), String::new());
    for line in doc.lines() {
        let t = line.trim();
        if let Some(k) = line.strip_prefix("kind:") {
            kind = k.trim().to_string();
        } else if let Some(n) = t.strip_prefix("name:").filter(|_| line.starts_with("  name:")) {
            name = n.trim().to_string();
        } else if let Some(n) = t.strip_prefix("namespace:").filter(|_| line.starts_with("  namespace:")) {
            ns = n.trim().to_string();
        }
    }
    (kind, ns, name)
}

fn documents(text: &str) -> Vec<String> {
    text.split("\n---\n").map(str::to_string).filter(|d| d.lines().any(|l| l.starts_with("kind:"))).collect()
}

/// One expected table: port, protocol, and the rows as written.
struct Probe {
    port: String,
    protocol: String,
    table: Vec<String>,
}

fn probes(expect: &str) -> (String, Vec<Probe>) {
    let name = expect.lines().next().and_then(|l| l.strip_prefix("# upstream: ")).expect("a # upstream: line").into();
    let mut out: Vec<Probe> = Vec::new();
    for line in expect.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        if let Some(p) = line.strip_prefix("probe: ") {
            let (port, protocol) = p.trim().split_once(' ').expect("probe: PORT PROTOCOL");
            out.push(Probe { port: port.into(), protocol: protocol.into(), table: Vec::new() });
        } else {
            let norm = line.split_whitespace().collect::<Vec<_>>().join(" ");
            out.last_mut().expect("a probe: line first").table.push(norm);
        }
    }
    (name, out)
}

/// The pods' IPs, by `ns/pod`, from the fixture alone (policies do not
/// move pods).
fn ips(dir: &Path) -> BTreeMap<String, String> {
    let o = emu(&[
        "reach",
        dir.join("s.toml").to_str().unwrap(),
        "--port",
        "80",
        "--out",
        dir.join("ips").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // reach.csv has no IPs; the run's pods come from validate's cluster via the library.
    let loaded = emu::scenario::load_cluster(&dir.join("s.toml")).expect("the fixture loads");
    let cl = &loaded.points[0].prepared.cluster;
    cl.pods.iter().map(|p| (format!("{}/{}", cl.namespaces[p.namespace as usize], p.name), p.ip.to_string())).collect()
}

fn substitute(text: &str, ips: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (pod, ip) in ips {
        out = out.replace(&format!("{{ip:{pod}}}"), ip);
    }
    assert!(!out.contains("{ip:"), "an unknown pod in a placeholder:\n{out}");
    out
}

/// The table `emu reach` printed, rows normalised to single spaces.
fn printed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("reachability "))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn cases() -> Vec<(PathBuf, PathBuf)> {
    let dir = root().join("tests/netpol/cases");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v.into_iter().map(|y| (y.clone(), y.with_extension("expect"))).collect()
}

#[test]
fn every_upstream_truth_table_is_reproduced() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fs::read_to_string(root().join("tests/netpol/base.yaml")).unwrap();
    let scenario = "seed = 1\nmanifests = [\"base.yaml\", \"case.yaml\"]\n[cluster]\nnodes = 3\n";
    fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    fs::write(tmp.path().join("base.yaml"), &base).unwrap();
    fs::write(tmp.path().join("case.yaml"), "").unwrap();
    let ips = ips(tmp.path());
    assert_eq!(ips.keys().filter(|k| ["x/", "y/", "z/"].iter().any(|n| k.starts_with(n))).count(), 9);
    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let (mut failures, mut tables) = (Vec::new(), 0);
    for (yaml, expect) in &cases {
        let case = fs::read_to_string(yaml).unwrap();
        let (name, probes) = probes(&fs::read_to_string(expect).unwrap());
        assert!(!probes.is_empty(), "{}: no probe", expect.display());
        // Overrides replace the base object of the same kind, namespace and
        // name, in its place (pod order is the cluster's order).
        let (overrides, policies): (Vec<String>, Vec<String>) =
            documents(&case).into_iter().partition(|d| d.contains("# overrides base"));
        let docs: Vec<String> = documents(&base)
            .into_iter()
            .map(|d| overrides.iter().find(|o| identity(o) == identity(&d)).cloned().unwrap_or(d))
            .collect();
        fs::write(tmp.path().join("base.yaml"), docs.join("\n---\n")).unwrap();
        fs::write(tmp.path().join("case.yaml"), substitute(&policies.join("\n---\n"), &ips)).unwrap();
        for p in probes {
            let out = tmp.path().join("out");
            let o = emu(&[
                "reach",
                tmp.path().join("s.toml").to_str().unwrap(),
                "--port",
                &p.port,
                "--protocol",
                &p.protocol,
                "--out",
                out.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}: {}", yaml.display(), stderr(&o));
            let got = printed(&String::from_utf8_lossy(&o.stdout));
            tables += 1;
            if got != p.table {
                failures.push(format!(
                    "{} ({name}) {} {}:\nexpected\n{}\ngot\n{}",
                    yaml.file_name().unwrap().to_string_lossy(),
                    p.port,
                    p.protocol,
                    p.table.join("\n"),
                    got.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {tables} tables differ:\n\n{}", failures.len(), failures.join("\n\n"));
    assert!(tables >= 70, "{tables} tables");
}

#[test]
fn reach_csv_says_which_policy_decided_and_matches_the_printed_table() {
    let tmp = tempfile::tempdir().unwrap();
    fs::copy(root().join("tests/netpol/base.yaml"), tmp.path().join("base.yaml")).unwrap();
    fs::copy(root().join("tests/netpol/cases/03-pod-selector-same-namespace.yaml"), tmp.path().join("case.yaml"))
        .unwrap();
    let sc = tmp.path().join("s.toml");
    fs::write(&sc, "manifests = [\"base.yaml\", \"case.yaml\"]\n[cluster]\nnodes = 2\n").unwrap();
    let out = tmp.path().join("out");
    let o = emu(&["reach", sc.to_str().unwrap(), "--port", "80", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = printed(&String::from_utf8_lossy(&o.stdout));
    let rows = crate::util::csv(&out.join("reach.csv"));
    assert_eq!(rows.len(), 81);
    let header: Vec<&str> = table[0].split(' ').collect();
    let mut decided = 0;
    for r in &rows {
        let (from, to) = (r["from"].as_str(), r["to"].as_str());
        let col = header.iter().position(|c| *c == to).unwrap();
        let line: Vec<&str> = table.iter().find(|l| l.split(' ').next() == Some(from)).unwrap().split(' ').collect();
        assert_eq!(r["allowed"] == "true", line[col] == ".", "{from} -> {to}");
        assert_eq!(r["egress"], "open", "no egress policy in this case");
        let want = match (to, from) {
            ("x/a", "x/a") => "open", // a pod reaching itself
            ("x/a", "x/b") => "allow x/x-a-allows-x-b",
            ("x/a", _) => "deny",
            _ => "open",
        };
        assert_eq!(r["ingress"], want, "{from} -> {to}");
        decided += usize::from(want.starts_with("allow"));
    }
    assert_eq!(decided, 1);
}
