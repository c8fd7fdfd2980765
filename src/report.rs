//! Runs a loaded scenario (every point of its sweep, in parallel) and
//! writes its results: `summary.csv`, `hops.csv`, `endpoints.csv`,
//! `balance.csv`, `failures.csv`, `sources.csv`, `services.csv`,
//! `cluster.csv` and `run.toml` (docs/output.md is the contract). With a
//! sweep every CSV starts with one column per swept key, named by its key
//! path. Files are written into a temporary directory beside the target
//! and renamed into place at the end, so a failed run never leaves
//! half-written results.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use emu_engine::stats::chi_square;
use emu_models::addr::Ipv4;
use emu_models::cluster::{Cluster, TrafficPolicy};
use emu_models::datapath::HopKind;
use emu_models::proxy::{ipvs::Scheduler, Mode};
use emu_models::traffic::Failure;
use emu_models::world::{simulate, Results};
use rayon::prelude::*;

use crate::scenario::{Loaded, Point, Prepared};

fn us(ns: f64) -> String {
    format!("{:.3}", ns / 1_000.0)
}

/// One CSV file of a run: rows of every point, each prefixed with the
/// point's swept values.
struct Table {
    w: csv::Writer<fs::File>,
    path: PathBuf,
}

impl Table {
    fn new(dir: &Path, name: &str, keys: &[String], columns: &[&str]) -> Result<Table, String> {
        let path = dir.join(name);
        let w = csv::Writer::from_path(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut t = Table { w, path };
        let header: Vec<&str> = keys.iter().map(String::as_str).chain(columns.iter().copied()).collect();
        t.row(&[], &header)?;
        Ok(t)
    }

    fn row<S: AsRef<str>>(&mut self, prefix: &[(String, String)], cells: &[S]) -> Result<(), String> {
        let record = prefix.iter().map(|(_, v)| v.as_str()).chain(cells.iter().map(AsRef::as_ref));
        self.w.write_record(record).map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    fn finish(mut self) -> Result<(), String> {
        self.w.flush().map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// Writes every result file of `runs` into `dir`.
pub fn write_all(loaded: &Loaded, runs: &[(&Point, Results)], dir: &Path) -> Result<(), String> {
    let keys = &loaded.keys;
    let mut summary = Table::new(
        dir,
        "summary.csv",
        keys,
        &[
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
            "first_packet_p01_us",
            "first_packet_p50_us",
            "first_packet_p90_us",
            "first_packet_p99_us",
        ],
    )?;
    let mut hops =
        Table::new(dir, "hops.csv", keys, &["flow", "hop", "traversals", "total_us", "mean_us", "per_request_us"])?;
    let mut endpoints = Table::new(
        dir,
        "endpoints.csv",
        keys,
        &["namespace", "service", "port", "endpoint_pod", "endpoint_ip", "node", "requests", "share"],
    )?;
    let mut balance = Table::new(
        dir,
        "balance.csv",
        keys,
        &[
            "namespace",
            "service",
            "port",
            "endpoints",
            "requests",
            "min_share",
            "max_share",
            "max_min_ratio",
            "cv",
            "chi2",
            "p_value",
            "expected",
        ],
    )?;
    let mut failures = Table::new(dir, "failures.csv", keys, &["flow", "reason", "count"])?;
    let mut sources = Table::new(
        dir,
        "sources.csv",
        keys,
        &["flow", "server_pod", "server_node", "source_ip", "source_kind", "source_name", "requests"],
    )?;
    let mut services = Table::new(
        dir,
        "services.csv",
        keys,
        &[
            "namespace",
            "service",
            "type",
            "cluster_ip",
            "load_balancer_ip",
            "ports",
            "endpoints",
            "external_traffic_policy",
            "internal_traffic_policy",
            "session_affinity_timeout_s",
            "health_check_node_port",
        ],
    )?;
    let mut cluster_t = Table::new(dir, "cluster.csv", keys, &["metric", "value"])?;

    for (point, res) in runs {
        let pre = &point.values;
        let p = &point.prepared;
        let cl = &p.cluster;
        for f in &res.flows {
            let l = &f.latency;
            let q = |x: f64| us(l.quantile_ns(x) as f64);
            let fp = |x: f64| us(f.first_packet.quantile_ns(x) as f64);
            summary.row(
                pre,
                &[
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
                    fp(0.01),
                    fp(0.5),
                    fp(0.9),
                    fp(0.99),
                ],
            )?;
            for k in HopKind::ALL {
                let t = f.hops[k as usize];
                if t.count == 0 {
                    continue;
                }
                let per_req = if f.requests == 0 { 0.0 } else { t.sum as f64 / f.requests as f64 };
                hops.row(
                    pre,
                    &[
                        f.name.clone(),
                        k.name().into(),
                        t.count.to_string(),
                        us(t.sum as f64),
                        us(t.mean()),
                        us(per_req),
                    ],
                )?;
            }
            for r in Failure::ALL {
                failures.row(pre, &[f.name.clone(), r.name().into(), f.failures[r as usize].to_string()])?;
            }
        }
        let weighted = p.params.proxy.mode == Mode::Ipvs && p.params.proxy.ipvs.scheduler == Scheduler::Wrr;
        for (spi, sp) in cl.service_ports.iter().enumerate() {
            let hits = &res.endpoint_hits[spi];
            let total: u64 = hits.iter().sum();
            let svc = &cl.services[sp.service as usize];
            let ns = cl.namespaces[svc.namespace as usize].clone();
            let port = format!("{}/{}", sp.port, sp.protocol);
            for (e, &n) in sp.endpoints.iter().zip(hits) {
                let pod = &cl.pods[e.pod as usize];
                let share = if total == 0 { 0.0 } else { n as f64 / total as f64 };
                endpoints.row(
                    pre,
                    &[
                        ns.clone(),
                        svc.name.clone(),
                        port.clone(),
                        pod.name.clone(),
                        pod.ip.to_string(),
                        cl.nodes[pod.node as usize].name.clone(),
                        n.to_string(),
                        format!("{share:.6}"),
                    ],
                )?;
            }
            if total == 0 {
                continue;
            }
            let expected: Vec<f64> = sp
                .endpoints
                .iter()
                .map(|e| if weighted { cl.pods[e.pod as usize].weight as f64 } else { 1.0 })
                .collect();
            let shares: Vec<f64> = hits.iter().map(|&h| h as f64 / total as f64).collect();
            let (min, max) = shares.iter().fold((f64::MAX, 0f64), |(a, b), &s| (a.min(s), b.max(s)));
            let mean = 1.0 / shares.len() as f64;
            let var = shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / shares.len() as f64;
            let (chi2, pv) = chi_square(hits, &expected);
            balance.row(
                pre,
                &[
                    ns,
                    svc.name.clone(),
                    port,
                    sp.endpoints.len().to_string(),
                    total.to_string(),
                    format!("{min:.6}"),
                    format!("{max:.6}"),
                    if min > 0.0 { format!("{:.4}", max / min) } else { "inf".into() },
                    format!("{:.6}", var.sqrt() / mean),
                    format!("{chi2:.4}"),
                    format!("{pv:.6}"),
                    if weighted { "weights" } else { "uniform" }.into(),
                ],
            )?;
        }
        for (&(flow, pod, ip), &n) in &res.sources {
            let (kind, name) = describe(cl, ip);
            let sp = &cl.pods[pod as usize];
            sources.row(
                pre,
                &[
                    res.flows[flow as usize].name.clone(),
                    cl.pod_ref(pod),
                    cl.nodes[sp.node as usize].name.clone(),
                    ip.to_string(),
                    kind.into(),
                    name,
                    n.to_string(),
                ],
            )?;
        }
        for svc in &cl.services {
            let ports: Vec<String> = svc
                .ports
                .iter()
                .map(|&i| {
                    let sp = &cl.service_ports[i as usize];
                    let np = sp.node_port.map(|n| format!(" nodePort {n}")).unwrap_or_default();
                    format!("{}/{}->{}{np}", sp.port, sp.protocol, sp.target_port)
                })
                .collect();
            let eps: usize = svc.ports.first().map_or(0, |&i| cl.service_ports[i as usize].endpoints.len());
            let policy = |p: TrafficPolicy| p.to_string();
            services.row(
                pre,
                &[
                    cl.namespaces[svc.namespace as usize].clone(),
                    svc.name.clone(),
                    svc.kind.to_string(),
                    svc.cluster_ip.map_or("None".into(), |ip| ip.to_string()),
                    svc.load_balancer_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                    ports.join(" "),
                    eps.to_string(),
                    policy(svc.external_traffic_policy),
                    policy(svc.internal_traffic_policy),
                    svc.affinity_timeout_ns.map(|t| (t / 1_000_000_000).to_string()).unwrap_or_default(),
                    svc.health_check_node_port.map(|p| p.to_string()).unwrap_or_default(),
                ],
            )?;
        }
        write_cluster(&mut cluster_t, pre, cl, res)?;
    }
    for t in [summary, hops, endpoints, balance, failures, sources, services, cluster_t] {
        t.finish()?;
    }
    write_run_toml(loaded, dir)
}

fn write_cluster(t: &mut Table, pre: &[(String, String)], cl: &Cluster, res: &Results) -> Result<(), String> {
    let endpoints: usize = cl.service_ports.iter().map(|sp| sp.endpoints.len()).sum();
    let mut rows: Vec<(String, u64)> = vec![
        ("nodes".into(), cl.nodes.len() as u64),
        ("namespaces".into(), cl.namespaces.len() as u64),
        ("pods".into(), cl.pods.len() as u64),
        ("services".into(), cl.services.len() as u64),
        ("service_ports".into(), cl.service_ports.len() as u64),
        ("endpoints".into(), endpoints as u64),
    ];
    rows.extend(res.proxy_counts.iter().map(|(k, v)| (format!("{k}_per_node"), *v)));
    rows.push(("events".into(), res.events));
    rows.push(("simulated_ns".into(), res.end_ns));
    for (k, v) in rows {
        t.row(pre, &[k, v.to_string()])?;
    }
    Ok(())
}

/// run.toml: the scenario (with its sweep) and every default filled in,
/// the seed used, and the manifests copied beside it, so the directory
/// re-runs alone.
fn write_run_toml(loaded: &Loaded, dir: &Path) -> Result<(), String> {
    let mut sc = loaded.base.clone();
    let manifests = &loaded.points[0].prepared.manifests;
    if !manifests.is_empty() {
        fs::create_dir_all(dir.join("manifests")).map_err(|e| e.to_string())?;
        sc.manifests.clear();
        for (i, (_, src, text)) in manifests.iter().enumerate() {
            let base = src.file_name().map_or("manifest.yaml".into(), |s| s.to_string_lossy().into_owned());
            let name = format!("{i:02}-{base}");
            fs::write(dir.join("manifests").join(&name), text).map_err(|e| e.to_string())?;
            sc.manifests.push(format!("manifests/{name}"));
        }
    }
    let body = toml::to_string(&sc).map_err(|e| format!("cannot serialize run.toml: {e}"))?;
    let mut f = fs::File::create(dir.join("run.toml")).map_err(|e| e.to_string())?;
    write!(
        f,
        "# Resolved by emu {}: every default filled in. Re-run with `emu run <this file>`.\n{body}",
        env!("CARGO_PKG_VERSION")
    )
    .map_err(|e| e.to_string())
}

/// What a source address seen by a server is.
fn describe(cl: &Cluster, ip: Ipv4) -> (&'static str, String) {
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

fn run_point(p: &Prepared) -> Result<Results, String> {
    simulate(&p.cluster, p.params.clone(), p.flows.clone(), p.servers.clone()).map_err(|e| e.to_string())
}

/// Runs every point of `loaded` (in parallel, on at most `threads` threads;
/// 0 means one per core) and writes the results to `out` atomically.
/// Returns a one-line account of the run.
pub fn run_and_write(loaded: &Loaded, out: &Path, threads: usize) -> Result<String, String> {
    let wall = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| e.to_string())?;
    let results: Vec<Result<Results, String>> =
        pool.install(|| loaded.points.par_iter().map(|pt| run_point(&pt.prepared)).collect());
    let mut runs = Vec::with_capacity(results.len());
    for (pt, r) in loaded.points.iter().zip(results) {
        runs.push((pt, r?));
    }
    let secs = wall.elapsed().as_secs_f64();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let tmp = temp_beside(out);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    if let Err(e) = write_all(loaded, &runs, &tmp) {
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
    let requests: u64 = runs.iter().flat_map(|(_, r)| r.flows.iter().map(|f| f.requests)).sum();
    let events: u64 = runs.iter().map(|(_, r)| r.events).sum();
    Ok(format!(
        "wrote {}: {} point(s), {} flows, {} requests, {} events in {:.2} s wall ({:.2} M events/s)",
        out.display(),
        runs.len(),
        runs.iter().map(|(_, r)| r.flows.len()).sum::<usize>(),
        requests,
        events,
        secs,
        events as f64 / secs.max(1e-9) / 1e6
    ))
}
