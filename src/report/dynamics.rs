//! The result files and rows of a changing cluster: `programming.csv`
//! (network programming latency per change), `timeseries_failures.csv`
//! (failures per interval by reason, every run), the control plane's
//! `cluster.csv` metrics, and the names and places of pods created at run
//! time.

use emu_models::addr::Ipv4;
use emu_models::cluster::{Cluster, Endpoint};
use emu_models::ids::{EpId, PodId, SpId};
use emu_models::world::Results;

use super::Table;

/// The columns of `programming.csv`.
pub(super) const PROGRAMMING: [&str; 13] = [
    "change",
    "action",
    "target",
    "at_s",
    "pods_created",
    "pods_deleted",
    "updates",
    "node_updates",
    "latency_p50_s",
    "latency_p90_s",
    "latency_p99_s",
    "latency_max_s",
    "within_30s",
];

/// The columns of `pods.csv`.
pub(super) const PODS: [&str; 6] = ["time_s", "namespace", "pod", "node", "pod_ip", "step"];

/// `pods.csv` rows of one run: every step of every pod's life during it.
pub(super) fn pod_steps(t: &mut Table, pre: &[(String, String)], cl: &Cluster, res: &Results) -> Result<(), String> {
    let Some(c) = &res.control else { return Ok(()) };
    for &(at, pod, step) in &c.steps {
        let (ns, name, ip, node) = pod_info(cl, res, pod);
        t.row(pre, &[&secs(at), ns, name, node, &ip.to_string(), step])?;
    }
    Ok(())
}

/// The columns of `timeseries_failures.csv`.
pub(super) const FAILURE_SERIES: [&str; 4] = ["flow", "time_s", "reason", "failed"];

/// (namespace, name, IP, node name) of `pod`, a base pod or one created at
/// run time.
pub(super) fn pod_info<'a>(cl: &'a Cluster, res: &'a Results, pod: PodId) -> (&'a str, &'a str, Ipv4, &'a str) {
    let (namespace, name, ip, node) = match cl.pods.get(pod.index()) {
        Some(p) => (p.namespace, &p.name, p.ip, p.node),
        None => {
            let c = res.control.as_ref().expect("run-time pods come from the control plane");
            let p = &c.pods[pod.index() - cl.pods.len()];
            (p.namespace, &p.name, p.ip, p.node)
        }
    };
    (&cl.namespaces[namespace as usize], name, ip, &cl.nodes[node.index()].name)
}

/// Every endpoint `sp` ever had, by id.
pub(super) fn endpoints_ever(cl: &Cluster, res: &Results, sp: SpId) -> Vec<(EpId, Endpoint)> {
    let base = &cl.service_ports[sp.index()].endpoints;
    let extra = res.control.as_ref().map_or(&[][..], |c| c.extra_endpoints[sp.index()].as_slice());
    base.iter().chain(extra).enumerate().map(|(i, &e)| (EpId::from_index(i), e)).collect()
}

/// Whether `sp`'s endpoints changed during the run (its balance over time
/// is then no single distribution).
pub(super) fn changed(res: &Results, sp: SpId) -> bool {
    res.control.as_ref().is_some_and(|c| c.changed_ports[sp.index()])
}

fn secs(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

/// The rows of `programming.csv` for one run: one per change. The latency
/// is SIG-scalability's network programming latency: from each pod (or
/// Service) change that reached the EndpointSlices to its rules on each
/// node, over every node.
pub(super) fn programming(t: &mut Table, pre: &[(String, String)], res: &Results) -> Result<(), String> {
    let Some(c) = &res.control else { return Ok(()) };
    for ch in &c.changes {
        let l = &ch.latency;
        let q = |x: f64| if l.count() == 0 { String::new() } else { secs(l.quantile_ns(x)) };
        let within = if l.count() == 0 { String::new() } else { format!("{:.4}", l.fraction_at_most(30_000_000_000)) };
        t.row(
            pre,
            &[
                ch.change.to_string(),
                ch.key.to_string(),
                ch.target.clone(),
                secs(ch.at_ns),
                ch.created.to_string(),
                ch.deleted.to_string(),
                ch.versions.to_string(),
                l.count().to_string(),
                q(0.5),
                q(0.9),
                q(0.99),
                if l.count() == 0 { String::new() } else { secs(l.max_ns()) },
                within,
            ],
        )?;
    }
    Ok(())
}

/// `timeseries_failures.csv` rows of every flow of one run.
pub(super) fn failure_series(t: &mut Table, pre: &[(String, String)], res: &Results) -> Result<(), String> {
    for f in &res.flows {
        for &(start, why, n) in &f.failure_series {
            t.row(pre, &[f.name.clone(), secs(start), why.name().to_string(), n.to_string()])?;
        }
    }
    Ok(())
}

/// The control plane's `cluster.csv` rows (a changing cluster only).
pub(super) fn cluster_rows(res: &Results) -> Vec<(String, u64)> {
    let Some(c) = &res.control else { return Vec::new() };
    vec![
        ("changes".into(), c.changes.len() as u64),
        ("pods_created".into(), c.pods_created),
        ("pods_ready_at_end".into(), c.ready_pods),
        ("endpointslices_at_end".into(), c.slices),
        ("proxy_syncs".into(), c.syncs),
        ("proxy_full_syncs".into(), c.full_syncs),
        ("proxy_sync_mean_ns".into(), c.sync_ns.mean() as u64),
        ("proxy_sync_max_ns".into(), c.sync_max_ns),
    ]
}
