//! Runs a prepared scenario and writes its results: `summary.csv`,
//! `hops.csv`, `endpoints.csv`, `failures.csv`, `sources.csv`, `cluster.csv` and
//! `run.toml` (docs/output.md is the contract). Files are written into a
//! temporary directory beside the target and renamed into place at the
//! end, so a failed run never leaves half-written results.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use emu_models::addr::Ipv4;
use emu_models::datapath::HopKind;
use emu_models::traffic::Failure;
use emu_models::world::{simulate, Results};

use crate::scenario::Prepared;

fn us(ns: f64) -> String {
    format!("{:.3}", ns / 1_000.0)
}

fn csv_writer(dir: &Path, name: &str) -> Result<csv::Writer<fs::File>, String> {
    csv::Writer::from_path(dir.join(name)).map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
}

fn io<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// Writes every result file of `res` into `dir`.
pub fn write_all(p: &Prepared, res: &Results, dir: &Path) -> Result<(), String> {
    let cl = &p.cluster;
    let mut w = csv_writer(dir, "summary.csv")?;
    io(w.write_record([
        "flow",
        "requests",
        "completed",
        "failed",
        "throughput_rps",
        "latency_mean_us",
        "latency_p50_us",
        "latency_p90_us",
        "latency_p99_us",
        "latency_p999_us",
        "latency_max_us",
        "connections",
    ]))?;
    for f in &res.flows {
        let l = &f.latency;
        let q = |x: f64| us(l.quantile_ns(x) as f64);
        io(w.write_record([
            f.name.clone(),
            f.requests.to_string(),
            f.completed.to_string(),
            f.failed().to_string(),
            format!("{:.3}", f.throughput_rps()),
            us(l.mean_ns()),
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            us(l.max_ns() as f64),
            f.connections.to_string(),
        ]))?;
    }
    io(w.flush())?;

    let mut w = csv_writer(dir, "hops.csv")?;
    io(w.write_record(["flow", "hop", "traversals", "total_us", "mean_us", "per_request_us"]))?;
    for f in &res.flows {
        for k in HopKind::ALL {
            let t = f.hops[k as usize];
            if t.count == 0 {
                continue;
            }
            let per_req = if f.requests == 0 { 0.0 } else { t.sum as f64 / f.requests as f64 };
            io(w.write_record([
                f.name.clone(),
                k.name().into(),
                t.count.to_string(),
                us(t.sum as f64),
                us(t.mean()),
                us(per_req),
            ]))?;
        }
    }
    io(w.flush())?;

    let mut w = csv_writer(dir, "endpoints.csv")?;
    io(w.write_record(["namespace", "service", "port", "endpoint_pod", "endpoint_ip", "node", "requests", "share"]))?;
    for (spi, sp) in cl.service_ports.iter().enumerate() {
        let hits = &res.endpoint_hits[spi];
        let total: u64 = hits.iter().sum();
        let svc = &cl.services[sp.service as usize];
        for (e, &n) in sp.endpoints.iter().zip(hits) {
            let pod = &cl.pods[e.pod as usize];
            let share = if total == 0 { 0.0 } else { n as f64 / total as f64 };
            io(w.write_record([
                cl.namespaces[svc.namespace as usize].clone(),
                svc.name.clone(),
                format!("{}/{}", sp.port, sp.protocol),
                pod.name.clone(),
                pod.ip.to_string(),
                cl.nodes[pod.node as usize].name.clone(),
                n.to_string(),
                format!("{share:.6}"),
            ]))?;
        }
    }
    io(w.flush())?;

    let mut w = csv_writer(dir, "failures.csv")?;
    io(w.write_record(["flow", "reason", "count"]))?;
    for f in &res.flows {
        for r in Failure::ALL {
            io(w.write_record([f.name.clone(), r.name().into(), f.failures[r as usize].to_string()]))?;
        }
    }
    io(w.flush())?;

    let mut w = csv_writer(dir, "sources.csv")?;
    io(w.write_record(["flow", "server_pod", "server_node", "source_ip", "source_kind", "source_name", "requests"]))?;
    for (&(flow, pod, ip), &n) in &res.sources {
        let (kind, name) = describe(p, ip);
        let sp = &cl.pods[pod as usize];
        io(w.write_record([
            res.flows[flow as usize].name.clone(),
            cl.pod_ref(pod),
            cl.nodes[sp.node as usize].name.clone(),
            ip.to_string(),
            kind.into(),
            name,
            n.to_string(),
        ]))?;
    }
    io(w.flush())?;

    let mut w = csv_writer(dir, "cluster.csv")?;
    io(w.write_record(["metric", "value"]))?;
    let r = res.rules;
    let endpoints: usize = cl.service_ports.iter().map(|sp| sp.endpoints.len()).sum();
    let rows: [(&str, u64); 12] = [
        ("nodes", cl.nodes.len() as u64),
        ("namespaces", cl.namespaces.len() as u64),
        ("pods", cl.pods.len() as u64),
        ("services", cl.services.len() as u64),
        ("service_ports", cl.service_ports.len() as u64),
        ("endpoints", endpoints as u64),
        ("iptables_kube_services_rules_per_node", r.kube_services),
        ("iptables_kube_nodeports_rules_per_node", r.kube_nodeports),
        ("iptables_kube_svc_rules_per_node", r.kube_svc),
        ("iptables_kube_sep_rules_per_node", r.kube_sep),
        ("iptables_nat_rules_per_node", r.total()),
        ("events", res.events),
    ];
    for (k, v) in rows {
        io(w.write_record([k.to_string(), v.to_string()]))?;
    }
    io(w.write_record(["simulated_ns".to_string(), res.end_ns.to_string()]))?;
    io(w.flush())?;

    // run.toml: the scenario with every default filled in, the seed used,
    // and the manifests copied beside it, so the directory re-runs alone.
    let mut sc = p.scenario.clone();
    if !p.manifests.is_empty() {
        fs::create_dir_all(dir.join("manifests")).map_err(|e| e.to_string())?;
        sc.manifests.clear();
        for (i, (_, src, text)) in p.manifests.iter().enumerate() {
            let base = src.file_name().map_or("manifest.yaml".into(), |s| s.to_string_lossy().into_owned());
            let name = format!("{i:02}-{base}");
            fs::write(dir.join("manifests").join(&name), text).map_err(|e| e.to_string())?;
            sc.manifests.push(format!("manifests/{name}"));
        }
    }
    let body = toml::to_string(&sc).map_err(|e| format!("cannot serialize run.toml: {e}"))?;
    let mut f = fs::File::create(dir.join("run.toml")).map_err(|e| e.to_string())?;
    io(write!(
        f,
        "# Resolved by emu {}: every default filled in. Re-run with `emu run <this file>`.\n{body}",
        env!("CARGO_PKG_VERSION")
    ))?;
    Ok(())
}

/// What a source address seen by a server is.
fn describe(p: &Prepared, ip: Ipv4) -> (&'static str, String) {
    let cl = &p.cluster;
    if ip == Ipv4(0x7f00_0001) {
        return ("localhost", "127.0.0.1".into());
    }
    if let Some(pod) = cl.pod_by_ip(ip) {
        return ("pod", cl.pod_ref(pod));
    }
    if let Some(n) = cl.node_by_ip(ip) {
        return ("node", cl.nodes[n as usize].name.clone());
    }
    if let Some(n) = cl.nodes.iter().find(|n| n.bridge_ip == ip) {
        return ("node", format!("{} (cbr0)", n.name));
    }
    ("external", ip.to_string())
}

fn temp_beside(out: &Path) -> PathBuf {
    let name = out.file_name().map_or("results".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Runs `p` and writes its results to `out` atomically. Returns a one-line
/// account of the run.
pub fn run_and_write(p: &Prepared, out: &Path) -> Result<String, String> {
    let wall = Instant::now();
    let res = simulate(&p.cluster, p.params.clone(), p.flows.clone(), p.servers.clone()).map_err(|e| e.to_string())?;
    let secs = wall.elapsed().as_secs_f64();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let tmp = temp_beside(out);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    if let Err(e) = write_all(p, &res, &tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if out.exists() {
        let old =
            out.with_file_name(format!(".{}.old-{}", out.file_name().unwrap().to_string_lossy(), std::process::id()));
        fs::rename(out, &old).map_err(|e| format!("cannot replace {}: {e}", out.display()))?;
        fs::rename(&tmp, out).map_err(|e| format!("cannot move results into {}: {e}", out.display()))?;
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&tmp, out).map_err(|e| format!("cannot move results into {}: {e}", out.display()))?;
    }
    let requests: u64 = res.flows.iter().map(|f| f.requests).sum();
    Ok(format!(
        "wrote {}: {} flows, {} requests, {} events, {:.3} s simulated in {:.2} s wall ({:.2} M events/s)",
        out.display(),
        res.flows.len(),
        requests,
        res.events,
        res.end_ns as f64 / 1e9,
        secs,
        res.events as f64 / secs.max(1e-9) / 1e6
    ))
}
