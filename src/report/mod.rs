//! Runs a loaded scenario (every point of its sweep and every replication,
//! in parallel) and writes its results: `summary.csv`, `hops.csv`,
//! `endpoints.csv`, `balance.csv`, `failures.csv`, `sources.csv`,
//! `services.csv`, `cluster.csv`, `timeseries.csv` and `run.toml`
//! (docs/output.md is the contract). With a
//! sweep every CSV starts with one column per swept key, named by its key
//! path. Files are written into a temporary directory beside the target
//! and renamed into place at the end ([`crate::outdir`]), so a failed run
//! never leaves half-written results.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use emu_engine::stats::chi_square;
use emu_models::addr::Ipv4;
use emu_models::cluster::{Cluster, TrafficPolicy};
use emu_models::datapath::HopKind;
use emu_models::proxy::{ipvs::Scheduler, Mode};
use emu_models::traffic::Failure;
use emu_models::world::{simulate_observed, Results};
use rayon::prelude::*;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::outdir::{TempDir, RUN_TOML_HEADER};
use crate::scenario::limits::MAX_SERIES_ROWS;
use crate::scenario::{Loaded, Prepared};
use table::Cells;
pub(crate) use table::Table;

mod dynamics;
mod policy;
mod replication;
mod resume;
pub mod shard;
pub mod summary;
mod table;

fn us(ns: f64) -> String {
    format!("{:.3}", ns / 1_000.0)
}

/// One run: the values of the keys that tell it apart, and its scenario.
pub struct Run<'a> {
    /// Its job number: point * replications + replication.
    pub job: u32,
    /// (key, value) of every swept key, and the replication when there are several.
    pub values: Vec<(String, String)>,
    /// The scenario it ran.
    pub prepared: &'a Prepared,
}

/// Writes every result file of `runs` into `dir`; `keys` name the leading
/// columns (swept keys, then `replication`).
/// Returns the warnings about what was left out (rows past the
/// time-series limit).
pub fn write_all(loaded: &Loaded, keys: &[String], runs: &[(Run, Results)], dir: &Path) -> Result<Vec<String>, String> {
    let refs: Vec<(&Run, &Results)> = runs.iter().map(|(r, res)| (r, res)).collect();
    let mut tables = tables(keys, &refs, true)?;
    replication::add_ci(&mut tables[0]);
    for t in &tables {
        t.write(dir, false)?;
    }
    write_run_toml(loaded, dir)?;
    Ok(tables.iter().filter_map(|t| t.dropped.clone()).collect())
}

/// Every result table of `runs` (in job order), always in the same order;
/// `limit`: keep the time series to emu's limit.
pub(crate) fn tables(keys: &[String], runs: &[(&Run, &Results)], limit: bool) -> Result<Vec<Table>, String> {
    let mut summary = Table::new(
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
            "dns_questions",
            "first_packet_p01_us",
            "first_packet_p50_us",
            "first_packet_p90_us",
            "first_packet_p99_us",
            "retransmits",
            "drops_cpu",
            "drops_nic",
        ],
    )?;
    let mut hops =
        Table::new("hops.csv", keys, &["flow", "hop", "traversals", "total_us", "mean_us", "per_request_us"])?;
    let mut endpoints = Table::new(
        "endpoints.csv",
        keys,
        &["namespace", "service", "port", "endpoint_pod", "endpoint_ip", "endpoint_port", "node", "requests", "share"],
    )?;
    let mut balance = Table::new(
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
    let mut failures = Table::new("failures.csv", keys, &["flow", "reason", "count"])?;
    let mut sources = Table::new(
        "sources.csv",
        keys,
        &["flow", "server_pod", "server_node", "source_ip", "source_kind", "source_name", "requests"],
    )?;
    let mut services = Table::new(
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
            "external_name",
        ],
    )?;
    let mut cluster_t = Table::new("cluster.csv", keys, &["metric", "value"])?;
    let mut series = Table::new(
        "timeseries.csv",
        keys,
        &["flow", "time_s", "completed", "failed", "throughput_rps", "latency_p50_us", "latency_p99_us"],
    )?;

    let mut programming = Table::new("programming.csv", keys, &dynamics::PROGRAMMING)?;
    let mut failure_series = Table::new("timeseries_failures.csv", keys, &dynamics::FAILURE_SERIES)?;
    let mut pods = Table::new("pods.csv", keys, &dynamics::PODS)?;
    let mut policies = Table::new("policies.csv", keys, &policy::POLICIES)?;
    series.limit = limit.then_some(MAX_SERIES_ROWS);
    for &(run, res) in runs {
        for t in [
            &mut summary,
            &mut hops,
            &mut endpoints,
            &mut balance,
            &mut failures,
            &mut sources,
            &mut services,
            &mut cluster_t,
            &mut series,
            &mut programming,
            &mut failure_series,
            &mut pods,
            &mut policies,
        ] {
            t.job = run.job;
        }
        let pre = &run.values;
        let p = run.prepared;
        let cl = &p.cluster;
        for f in &res.flows {
            let l = &f.latency;
            let [p50, p90, p99, p999] = l.quantiles_ns([0.5, 0.9, 0.99, 0.999]).map(|ns| us(ns as f64));
            let [f01, f50, f90, f99] = f.first_packet.quantiles_ns([0.01, 0.5, 0.9, 0.99]).map(|ns| us(ns as f64));
            summary.row(
                pre,
                &[
                    f.name.clone(),
                    f.requests.to_string(),
                    f.completed.to_string(),
                    f.failed().to_string(),
                    format!("{:.3}", f.throughput_rps()),
                    us(l.mean_ns()),
                    p50,
                    p90,
                    p99,
                    p999,
                    us(l.max_ns() as f64),
                    f.connections.to_string(),
                    f.dns_questions.to_string(),
                    f01,
                    f50,
                    f90,
                    f99,
                    f.retransmits.to_string(),
                    f.cpu_drops.to_string(),
                    f.nic_drops.to_string(),
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
                if res.control.is_none() && Failure::DYNAMIC.contains(&r) {
                    continue; // only a changing cluster has these
                }
                if cl.policies.is_empty() && Failure::POLICY.contains(&r) {
                    continue; // only a cluster with policies has these
                }
                failures.row(pre, &[f.name.clone(), r.name().into(), f.failures[r as usize].to_string()])?;
            }
            let width_s = p.params.interval_ns as f64 / 1e9;
            for row in &f.series {
                series.row(
                    pre,
                    &[
                        f.name.clone(),
                        format!("{:.3}", row.start_ns as f64 / 1e9),
                        row.completed.to_string(),
                        row.failed.to_string(),
                        format!("{:.3}", row.completed as f64 / width_s),
                        us(row.p50_ns as f64),
                        us(row.p99_ns as f64),
                    ],
                )?;
            }
        }
        let weighted = p.params.proxy.mode == Mode::Ipvs
            && matches!(
                p.params.proxy.ipvs.scheduler,
                Scheduler::Wrr | Scheduler::Wlc | Scheduler::Sed | Scheduler::Nq
            );
        for spi in 0..cl.service_ports.len() {
            port_rows((&mut endpoints, &mut balance), pre, cl, res, weighted, spi)?;
        }
        let mut cell = Cells::default();
        for (&(flow, pod, ip), &n) in &res.sources {
            let (kind, name) = describe(cl, ip);
            let (pns, pname, _, pnode) = dynamics::pod_info(cl, res, pod);
            cell.clear();
            let (server, source, count) = (cell.put(format_args!("{pns}/{pname}")), cell.put(ip), cell.put(n));
            let flow = &res.flows[flow as usize].name;
            sources
                .row(pre, &[flow.as_str(), cell.get(server), pnode, cell.get(source), kind, &name, cell.get(count)])?;
        }
        for (&(flow, pod, kind), &n) in &res.sources_overflow {
            let (pns, pname, _, pnode) = dynamics::pod_info(cl, res, pod);
            sources.row(
                pre,
                &[
                    res.flows[flow as usize].name.clone(),
                    format!("{pns}/{pname}"),
                    pnode.into(),
                    "*".into(),
                    kind.into(),
                    "(more sources)".into(),
                    n.to_string(),
                ],
            )?;
        }
        for svc in &cl.services {
            let ports: Vec<String> = svc
                .ports
                .iter()
                .map(|&i| {
                    let sp = &cl.service_ports[i.index()];
                    let np = sp.node_port.map(|n| format!(" nodePort {n}")).unwrap_or_default();
                    let name = sp.name.as_ref().map(|n| format!("{n}:")).unwrap_or_default();
                    // A named target port: the numbers it resolved to on
                    // the endpoints (pods may name different ports alike).
                    let resolved = match &sp.target_port {
                        emu_models::cluster::TargetPort::Name(_) => {
                            let mut nums: Vec<u16> = sp.endpoints.iter().map(|e| e.port).collect();
                            nums.sort_unstable();
                            nums.dedup();
                            let nums: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
                            format!("={}", if nums.is_empty() { "none".into() } else { nums.join("|") })
                        }
                        emu_models::cluster::TargetPort::Number(_) => String::new(),
                    };
                    format!("{name}{}/{}->{}{resolved}{np}", sp.port, sp.protocol, sp.target_port)
                })
                .collect();
            let eps: usize = svc.ports.first().map_or(0, |&i| cl.service_ports[i.index()].endpoints.len());
            let policy = |p: TrafficPolicy| p.to_string();
            services.row(
                pre,
                &[
                    cl.namespaces[svc.namespace as usize].clone(),
                    svc.name.clone(),
                    if svc.external_name.is_some() { "ExternalName".into() } else { svc.kind.to_string() },
                    match (svc.cluster_ip, &svc.external_name) {
                        (Some(ip), _) => ip.to_string(),
                        (None, Some(_)) => String::new(),
                        (None, None) => "None".into(),
                    },
                    svc.load_balancer_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                    ports.join(" "),
                    eps.to_string(),
                    policy(svc.external_traffic_policy),
                    policy(svc.internal_traffic_policy),
                    svc.affinity_timeout_ns.map(|t| (t / 1_000_000_000).to_string()).unwrap_or_default(),
                    svc.health_check_node_port.map(|p| p.to_string()).unwrap_or_default(),
                    svc.external_name.clone().unwrap_or_default(),
                ],
            )?;
        }
        write_cluster(&mut cluster_t, pre, cl, res)?;
        dynamics::programming(&mut programming, pre, res)?;
        dynamics::failure_series(&mut failure_series, pre, res)?;
        dynamics::pod_steps(&mut pods, pre, cl, res)?;
        policy::policies(&mut policies, pre, cl, res)?;
    }
    Ok(vec![
        summary,
        hops,
        endpoints,
        balance,
        failures,
        sources,
        services,
        cluster_t,
        series,
        programming,
        failure_series,
        pods,
        policies,
    ])
}

/// The rows of service port `spi` in `endpoints.csv` (one per endpoint it
/// ever had) and, if its endpoints stayed, in `balance.csv`.
fn port_rows(
    (endpoints, balance): (&mut Table, &mut Table),
    pre: &[(String, String)],
    cl: &Cluster,
    res: &Results,
    weighted: bool,
    spi: usize,
) -> Result<(), String> {
    let sp = &cl.service_ports[spi];
    let hits = &res.endpoint_hits[spi];
    let total: u64 = hits.iter().sum();
    let svc = &cl.services[sp.service.index()];
    let ns = &cl.namespaces[svc.namespace as usize];
    let port = format!("{}/{}", sp.port, sp.protocol);
    let sp_id = emu_models::ids::SpId::from_index(spi);
    let mut cell = Cells::default();
    for ((_, e), &n) in dynamics::endpoints_ever(cl, res, sp_id).iter().zip(hits) {
        let (_, name, ip, node) = dynamics::pod_info(cl, res, e.pod);
        let share = if total == 0 { 0.0 } else { n as f64 / total as f64 };
        cell.clear();
        let (ip, target, count) = (cell.put(ip), cell.put(e.port), cell.put(n));
        let share = cell.put(format_args!("{share:.6}"));
        let (ip, target, count, share) = (cell.get(ip), cell.get(target), cell.get(count), cell.get(share));
        endpoints.row(pre, &[ns.as_str(), &svc.name, &port, name, ip, target, node, count, share])?;
    }
    if total == 0 || dynamics::changed(res, sp_id) {
        // (A port whose endpoints changed has no one distribution to
        // test: balance.csv covers the ports that stayed.)
        return Ok(());
    }
    let expected: Vec<f64> =
        sp.endpoints.iter().map(|e| if weighted { cl.pods[e.pod.index()].weight as f64 } else { 1.0 }).collect();
    let shares: Vec<f64> = hits.iter().map(|&h| h as f64 / total as f64).collect();
    let (min, max) = shares.iter().fold((f64::MAX, 0f64), |(a, b), &s| (a.min(s), b.max(s)));
    let mean = 1.0 / shares.len() as f64;
    let var = shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / shares.len() as f64;
    let (chi2, pv) = chi_square(hits, &expected);
    balance.row(
        pre,
        &[
            ns.clone(),
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
    )
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
    rows.push(("conntrack_max_per_node".into(), res.conntrack_max as u64));
    rows.push(("conntrack_peak_entries".into(), res.conntrack_peak as u64));
    rows.push(("conntrack_drops".into(), res.conntrack_drops));
    rows.push(("conntrack_early_drops".into(), res.conntrack_early_drops));
    rows.push(("max_node_queue".into(), res.max_queue as u64));
    rows.push(("events".into(), res.events));
    rows.push(("simulated_ns".into(), res.end_ns));
    rows.extend(dynamics::cluster_rows(res));
    for (k, v) in rows {
        t.row(pre, &[k, v.to_string()])?;
    }
    Ok(())
}

/// run.toml: the scenario (with its sweep) and every default filled in,
/// the seed used, and the manifests copied beside it, so the directory
/// re-runs alone.
/// Writes the resolved scenario (and its manifests) as `run.toml` into `dir`.
pub fn write_run_toml(loaded: &Loaded, dir: &Path) -> Result<(), String> {
    let mut sc = loaded.base.clone();
    sc.emu_version = Some(env!("CARGO_PKG_VERSION").to_string());
    let manifests = &loaded.points[0].prepared.manifests;
    if !manifests.is_empty() {
        fs::create_dir_all(dir.join("manifests")).map_err(|e| e.to_string())?;
        sc.manifests.clear();
        for (i, (_, src, text)) in manifests.iter().enumerate() {
            let base = src.file_name().map_or("manifest.yaml".into(), |s| s.to_string_lossy().into_owned());
            // A run of an earlier run.toml reads `manifests/NN-name`: keep
            // that name rather than prefixing it again.
            let prefix = format!("{i:02}-");
            let name = if base.starts_with(&prefix) { base } else { format!("{prefix}{base}") };
            fs::write(dir.join("manifests").join(&name), text).map_err(|e| e.to_string())?;
            sc.manifests.push(format!("manifests/{name}"));
        }
    }
    let body = toml::to_string(&sc).map_err(|e| format!("cannot serialize run.toml: {e}"))?;
    let mut f = fs::File::create(dir.join("run.toml")).map_err(|e| e.to_string())?;
    write!(
        f,
        "{RUN_TOML_HEADER} {}: every default filled in. Re-run with `emu run <this file>`.\n{body}",
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
        return ("node", cl.nodes[n.index()].name.clone());
    }
    if let Some(n) = cl.node_by_bridge_ip(ip) {
        return ("node", format!("{} (cbr0)", cl.nodes[n.index()].name));
    }
    ("external", ip.to_string())
}

/// Progress shared by the running points.
#[derive(Default)]
struct Progress {
    events: AtomicU64,
    requests: AtomicU64,
    sim_ns: AtomicU64,
    done: AtomicU64,
    finished: AtomicBool,
}

/// Shows a progress bar on stderr for runs longer than a second: requests
/// issued of all the runs' requests, runs done, simulated time, events/s
/// and the time left. indicatif draws nothing when stderr is not a terminal.
fn show_progress(p: Arc<Progress>, runs: u64, requests: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            if p.finished.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let bar = ProgressBar::with_draw_target(Some(requests.max(1)), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {percent}% of requests, {eta} left {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        while !p.finished.load(Ordering::Relaxed) {
            let ev = p.events.load(Ordering::Relaxed);
            bar.set_position(p.requests.load(Ordering::Relaxed).min(requests));
            bar.set_message(format!(
                "| {}/{runs} runs | simulated {:.3} s | {:.2} M events/s",
                p.done.load(Ordering::Relaxed),
                p.sim_ns.load(Ordering::Relaxed) as f64 / 1e9,
                ev as f64 / start.elapsed().as_secs_f64() / 1e6
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    })
}

fn run_point(p: &Prepared, seed_offset: u64, progress: &Progress) -> Result<Results, String> {
    let mut params = p.params.clone();
    params.seed = params.seed.wrapping_add(seed_offset);
    let (mut last, mut last_req) = (0, 0);
    let mut tick = |sim_ns: u64, events: u64, requests: u64| {
        progress.events.fetch_add(events - last, Ordering::Relaxed);
        progress.requests.fetch_add(requests - last_req, Ordering::Relaxed);
        progress.sim_ns.fetch_max(sim_ns, Ordering::Relaxed);
        (last, last_req) = (events, requests);
    };
    let r =
        simulate_observed(&p.cluster, params, p.flows.clone(), p.servers.clone(), &mut tick).map_err(|e| e.to_string());
    progress.done.fetch_add(1, Ordering::Relaxed);
    r
}

/// How `emu run` runs: threads, replications, report, and which shard.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Replace an output directory emu did not write.
    pub force: bool,
    /// At most this many jobs at once (0: one per core).
    pub threads: usize,
    /// Runs of every point (replication `r` with seed + `r`).
    pub replications: u32,
    /// Also write the report.
    pub plot: bool,
    /// Only this shard's jobs, written as a shard directory.
    pub shard: Option<shard::Shard>,
    /// Keep finished jobs beside `out` and skip the ones kept there.
    pub resume: bool,
}

/// The warnings of `run` about flows that met the simulated horizon.
fn horizon_warnings(run: &Run, res: &Results) -> Vec<(u32, String)> {
    let at: Vec<String> = run.values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    res.flows
        .iter()
        .filter(|f| f.stopped_at_horizon)
        .map(|f| {
            let text = format!(
                "flow `{}`{} stopped issuing requests at the simulated horizon, {} s ({} issued)",
                f.name,
                if at.is_empty() { String::new() } else { format!(" ({})", at.join(", ")) },
                emu_engine::HORIZON_NS / 1_000_000_000,
                f.requests
            );
            (run.job, text)
        })
        .collect()
}

/// Runs every point of `loaded`, `replications` times each (replication
/// `r` with seed + `r`), in parallel on at most `threads` threads (0: one
/// per core), and writes the results to `out` atomically (a shard's jobs
/// only, as a shard directory, with `shard`). Returns a one-line account
/// of the run.
pub fn run_and_write(loaded: &Loaded, out: &Path, o: RunOptions) -> Result<Done, String> {
    let RunOptions { force, threads, replications, plot, shard, resume } = o;
    let wall = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| e.to_string())?;
    let mut keys = loaded.keys.clone();
    if replications > 1 {
        keys.push("replication".into());
    }
    let mut warnings = Vec::new();
    let jobs_total = loaded.points.len() as u32 * replications;
    let store = match resume {
        true => Some(resume::Store::open(out, loaded, &keys, jobs_total, &mut warnings)?),
        false => None,
    };
    let wanted: Vec<u32> = (0..jobs_total).filter(|&j| shard.is_none_or(|s| s.holds(j))).collect();
    let jobs: Vec<(usize, u32)> = wanted
        .iter()
        .filter(|j| store.as_ref().is_none_or(|(_, done)| !done.contains(j)))
        .map(|&j| ((j / replications) as usize, j % replications))
        .collect();
    let run_of = |p: usize, r: u32| {
        let pt = &loaded.points[p];
        let mut values = pt.values.clone();
        if replications > 1 {
            values.push(("replication".into(), r.to_string()));
        }
        Run { job: p as u32 * replications + r, values, prepared: &pt.prepared }
    };
    let progress = Arc::new(Progress::default());
    let points: Vec<&Prepared> = loaded.points.iter().map(|p| &p.prepared).collect();
    let requests = crate::scenario::limits::estimate(&points, 1, replications, threads as u64).requests;
    let bar = show_progress(progress.clone(), jobs.len() as u64, requests);
    let results: Vec<Result<Results, String>> = pool.install(|| {
        jobs.par_iter()
            .map(|&(p, r)| {
                let res = run_point(&loaded.points[p].prepared, r as u64, &progress)?;
                if let Some((st, _)) = &store {
                    // Kept as soon as it is done: an interruption loses
                    // only the jobs still running.
                    let run = run_of(p, r);
                    st.save(&run, &res, &horizon_warnings(&run, &res))?;
                }
                Ok(res)
            })
            .collect()
    });
    progress.finished.store(true, Ordering::Relaxed);
    let _ = bar.join();
    let mut runs = Vec::with_capacity(results.len());
    for (&(p, r), res) in jobs.iter().zip(results) {
        runs.push((run_of(p, r), res?));
    }
    let secs = wall.elapsed().as_secs_f64();
    let tmp = TempDir::beside(out)?;
    let horizon: Vec<(u32, String)> = runs.iter().flat_map(|(run, res)| horizon_warnings(run, res)).collect();
    let mut kept = None;
    if let Some((st, done)) = store {
        // Every job's rows from the store, as `emu merge` assembles them.
        warnings.extend(st.assemble(tmp.path(), &wanted, shard)?);
        if plot && shard.is_none() {
            if let Err(e) = crate::plot::write(tmp.path(), tmp.path(), out) {
                warnings.push(format!("no report: {e}"));
            }
        }
        kept = Some((st, wanted.iter().filter(|j| done.contains(j)).count()));
    } else if let Some(sh) = shard {
        write_run_toml(loaded, tmp.path())?;
        let manifest = shard::Manifest {
            emu_version: env!("CARGO_PKG_VERSION").into(),
            scenario_hash: shard::scenario_hash(tmp.path())?,
            shards: sh.count,
            shard: sh.index,
            jobs_total: loaded.points.len() as u32 * replications,
            keys: keys.clone(),
            jobs: runs.iter().map(|(r, _)| r.job).collect(),
        };
        let refs: Vec<(&Run, &Results)> = runs.iter().map(|(r, res)| (r, res)).collect();
        shard::write_shard(tmp.path(), &tables(&keys, &refs, false)?, &manifest, &horizon)?;
    } else {
        warnings.extend(write_all(loaded, &keys, &runs, tmp.path())?);
        if plot {
            // A report that cannot be drawn costs the report, not the results.
            if let Err(e) = crate::plot::write(tmp.path(), tmp.path(), out) {
                warnings.push(format!("no report: {e}"));
            }
        }
    }
    tmp.commit(out, force)?;
    let mut resumed = String::new();
    match kept {
        Some((st, n)) => {
            st.remove()?;
            if n > 0 {
                resumed = format!("; {n} of {} jobs resumed from an earlier run", wanted.len());
            }
        }
        None => warnings.extend(horizon.into_iter().map(|(_, w)| w)),
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let requests: u64 = runs.iter().flat_map(|(_, r)| r.flows.iter().map(|f| f.requests)).sum();
    let events: u64 = runs.iter().map(|(_, r)| r.events).sum();
    let table = summary::table(&runs);
    let line = format!(
        "wrote {}: {} run(s), {} flows, {} requests, {} events in {:.2} s wall ({:.2} M events/s){resumed}",
        out.display(),
        runs.len(),
        runs.iter().map(|(_, r)| r.flows.len()).sum::<usize>(),
        requests,
        events,
        secs,
        events as f64 / secs.max(1e-9) / 1e6
    );
    Ok(Done { line, table })
}

/// What a finished `emu run` reports.
pub struct Done {
    /// One line: where the results went, what ran, how fast.
    pub line: String,
    /// The summary table ([`summary::table`]).
    pub table: String,
}
